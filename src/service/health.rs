//! `GET /health`: liveness for anyone, whether each component can do its
//! part for an admin.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use super::auth::Access;
use super::error::{IngestError, json_response};
use super::{ResponseFuture, ServiceBody};
use crate::alert::{Alert, AlertMonitor};
use crate::auth::{Operation, Principals};
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::task::{TaskId, TaskStore};

/// How long the store probe may take before the store counts as down.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a store probe's result answers `/health` before the store is
/// probed again: a flood of `/health` requests costs the store one lookup a
/// second.
pub const DEFAULT_PROBE_CACHE: Duration = Duration::from_secs(1);

/// The last store probe: when (on the service's clock) and its result.
type LastProbe = Arc<tokio::sync::Mutex<Option<(time::OffsetDateTime, Result<(), &'static str>)>>>;

/// Counts the routes currently configured (for the `routes` component).
pub type RouteCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// Reports one extra component of the detail (an outbox's depth, say) as
/// JSON; called on every detailed `/health` answer.
pub type ComponentReport = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The `/health` service.
///
/// Healthy means: the store answers a cheap probe (a lookup of an id that
/// never exists) within the timeout, and at least one source is configured.
/// The probe's result is reused for [`DEFAULT_PROBE_CACHE`] (on the
/// service's [`Clock`]), and concurrent requests share one probe.
///
/// Without an `Authorization` header it answers liveness only:
/// `200 {"status":"ok"}` or `503 {"status":"unavailable"}`. With a valid
/// admin bearer token ([`principals`](Self::principals)) it answers
/// `200` `"healthy"` or `503` `"unhealthy"` with each component; a wrong
/// token is `401 unauthorized`, any token while none is configured
/// `403 admin_not_configured`:
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
    probe_cache: Duration,
    clock: Arc<dyn Clock>,
    admin: Principals,
    last_probe: LastProbe,
    alerts: Option<Arc<AlertMonitor>>,
    extra: Vec<(String, ComponentReport)>,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("store", &self.store)
            .field("sources", &self.sources)
            .field("routes", &self.routes.as_ref().map(|_| "fn"))
            .field("probe_timeout", &self.probe_timeout)
            .field("probe_cache", &self.probe_cache)
            .field("admin", &self.admin)
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
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Report {
    status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: time::OffsetDateTime,
    components: Components,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alerts: Vec<Alert>,
}

impl HealthService {
    /// Probes `store`; no sources, no route count.
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        Self {
            store,
            sources: Arc::from(Vec::new()),
            routes: None,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            probe_cache: DEFAULT_PROBE_CACHE,
            clock: Arc::new(SystemClock),
            admin: Principals::none(),
            last_probe: LastProbe::default(),
            alerts: None,
            extra: Vec::new(),
        }
    }

    /// Adds a component to the detail (admin token), under `name`, as
    /// `report` describes it: for what the store and sources do not show,
    /// such as a status outbox's depth. It does not change the status.
    pub fn component(mut self, name: impl Into<String>, report: ComponentReport) -> Self {
        self.extra.push((name.into(), report));
        self
    }

    /// Shows the alerts `monitor` has firing: while any fires, a healthy
    /// gateway answers `degraded` (still `200`), and the component detail
    /// lists them.
    pub fn alerts(mut self, monitor: Arc<AlertMonitor>) -> Self {
        self.alerts = Some(monitor);
        self
    }

    fn firing(&self) -> Vec<Alert> {
        self.alerts
            .as_ref()
            .map(|monitor| monitor.firing())
            .unwrap_or_default()
    }

    /// The configured source names to report.
    pub fn sources<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.sources = names.into_iter().map(Into::into).collect();
        self
    }

    /// The bearer tokens that may read the component detail (default: none,
    /// and the detail is refused).
    pub fn principals(mut self, principals: impl Into<Principals>) -> Self {
        self.admin = principals.into();
        self
    }

    /// How long a probe's result is reused (default [`DEFAULT_PROBE_CACHE`];
    /// zero probes on every request).
    pub fn probe_cache(mut self, ttl: Duration) -> Self {
        self.probe_cache = ttl;
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

    /// The clock for the report's timestamp and the probe cache.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store probe's result, from the cache while it is fresh.
    async fn probe_store(&self) -> Result<(), &'static str> {
        // Held across the probe: concurrent requests wait for one probe.
        let mut last = self.last_probe.lock().await;
        let now = self.clock.now();
        if let Some((at, result)) = *last {
            // A clock stepped back makes the entry stale, not eternal.
            if at <= now && now - at < self.probe_cache {
                return result;
            }
        }
        let probe_id = TaskId::from("hookroom-health-probe");
        let result = match tokio::time::timeout(self.probe_timeout, self.store.get(&probe_id)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "health: task store probe failed");
                Err(error.code())
            }
            Err(_) => Err("timeout"),
        };
        *last = Some((self.clock.now(), result));
        result
    }

    /// `{"status":"ok"}` (`"degraded"` while an alert fires) or
    /// `503 {"status":"unavailable"}`, nothing else.
    async fn liveness(&self) -> Response<ServiceBody> {
        #[derive(Serialize)]
        struct Liveness {
            status: &'static str,
        }
        let up = self.probe_store().await.is_ok() && !self.sources.is_empty();
        if up {
            let status = if self.firing().is_empty() {
                "ok"
            } else {
                "degraded"
            };
            json_response(StatusCode::OK, &Liveness { status })
        } else {
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &Liveness {
                    status: "unavailable",
                },
            )
        }
    }

    async fn report(&self) -> Response<ServiceBody> {
        let store = match self.probe_store().await {
            Ok(()) => Component::up(),
            Err(code) => Component::down(code),
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
        let alerts = self.firing();
        json_response(
            if healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            &Report {
                status: match (healthy, alerts.is_empty()) {
                    (false, _) => "unhealthy",
                    (true, true) => "healthy",
                    (true, false) => "degraded",
                },
                timestamp: self.clock.now(),
                components: Components {
                    store,
                    sources,
                    routes,
                    extra: self
                        .extra
                        .iter()
                        .map(|(name, report)| (name.clone(), report()))
                        .collect(),
                },
                alerts,
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
        match self
            .admin
            .admin_access(request.headers(), &Operation::ReadHealthDetail)
        {
            Access::Anonymous => Box::pin(async move { Ok(this.liveness().await) }),
            Access::Granted => Box::pin(async move { Ok(this.report().await) }),
            Access::Denied => Box::pin(std::future::ready(Ok(
                IngestError::Unauthorized.to_response()
            ))),
            Access::NotConfigured => Box::pin(std::future::ready(Ok(
                IngestError::AdminNotConfigured.to_response(),
            ))),
        }
    }
}
