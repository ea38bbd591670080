//! `GET /health`: whether each component can do its part.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::error::{IngestError, json_response};
use super::{ResponseFuture, ServiceBody};
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::task::{TaskId, TaskStore};

/// How long the store probe may take before the store counts as down.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts the routes currently configured (for the `routes` component).
pub type RouteCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// The `/health` service.
///
/// Answers `200` with `"status":"healthy"` when the store answers a cheap
/// probe (a lookup of an id that never exists) within the timeout and at
/// least one source is configured, `503` `"unhealthy"` otherwise:
///
/// ```json
/// {"status":"healthy","timestamp":"…",
///  "components":{"store":{"status":"up"},
///                "sources":{"status":"up","configured":["github","slack"]},
///                "routes":{"status":"up","count":4}}}
/// ```
///
/// Path matching is the caller's (see [`Gateway`](super::Gateway)).
#[derive(Clone)]
pub struct HealthService {
    store: Arc<dyn TaskStore>,
    sources: Arc<[String]>,
    routes: Option<RouteCount>,
    probe_timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("store", &self.store)
            .field("sources", &self.sources)
            .field("routes", &self.routes.as_ref().map(|_| "fn"))
            .field("probe_timeout", &self.probe_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Component {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    configured: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
}

#[derive(Serialize)]
struct Components {
    store: Component,
    sources: Component,
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Component>,
}

#[derive(Serialize)]
struct Report {
    status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: time::OffsetDateTime,
    components: Components,
}

impl HealthService {
    /// Probes `store`; no sources, no route count.
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        Self {
            store,
            sources: Arc::from(Vec::new()),
            routes: None,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }

    /// The configured source names to report.
    pub fn sources(mut self, names: Vec<String>) -> Self {
        self.sources = Arc::from(names);
        self
    }

    /// Reports `count()` as the number of routes.
    pub fn routes_count(mut self, count: RouteCount) -> Self {
        self.routes = Some(count);
        self
    }

    /// How long the store probe may take (default [`DEFAULT_PROBE_TIMEOUT`]).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The clock for the report's timestamp.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn report(&self) -> Response<ServiceBody> {
        let probe_id = TaskId::from("hookroom-health-probe");
        let store = match tokio::time::timeout(self.probe_timeout, self.store.get(&probe_id)).await
        {
            Ok(Ok(_)) => Component::up(),
            Ok(Err(error)) => {
                tracing::warn!(%error, "health: task store probe failed");
                Component::down(error.code())
            }
            Err(_) => Component::down("timeout"),
        };
        let sources = Component {
            configured: Some(self.sources.to_vec()),
            ..if self.sources.is_empty() {
                Component::down("no_sources")
            } else {
                Component::up()
            }
        };
        let routes = self.routes.as_ref().map(|count| Component {
            count: Some(count()),
            ..Component::up()
        });
        let healthy = store.status == "up" && sources.status == "up";
        json_response(
            if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            &Report {
                status: if healthy { "healthy" } else { "unhealthy" },
                timestamp: self.clock.now(),
                components: Components {
                    store,
                    sources,
                    routes,
                },
            },
        )
    }
}

impl Component {
    fn up() -> Self {
        Self {
            status: "up",
            error: None,
            configured: None,
            count: None,
        }
    }

    fn down(code: &'static str) -> Self {
        Self {
            status: "down",
            error: Some(code),
            ..Self::up()
        }
    }
}

impl<B> tower_service::Service<Request<B>> for HealthService {
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let response = IngestError::MethodNotAllowed { allow: "GET" }.to_response();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let this = self.clone();
        Box::pin(async move { Ok(this.report().await) })
    }
}
