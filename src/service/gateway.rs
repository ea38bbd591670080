//! [`Gateway`]: ingest, health and operations under one prefix, as one service.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::error::IngestError;
use super::health::HealthService;
use super::ingest::{REQUEST_ID, WebhookService, request_id};
use super::operations::OperationsService;
use super::{ResponseFuture, ServiceBody};
use crate::auth::Principals;

/// One tower service serving, under the ingest service's prefix:
///
/// | path | service |
/// | --- | --- |
/// | `{prefix}/webhook/{source}` | [`WebhookService`] |
/// | `{prefix}/health` | [`HealthService`] (unless [removed](GatewayBuilder::without_health)) |
/// | `{prefix}/operations` | [`OperationsService`] (unless [removed](GatewayBuilder::without_operations)) |
///
/// Anything else is `404 not_found`. Matching is plain string comparison: no
/// router dependency. `/operations` and `/health`'s component detail need
/// one of the gateway's [admin tokens](GatewayBuilder::principals); without any,
/// they are refused.
///
/// ```
/// # async fn demo(ingest: hookroom::service::WebhookService) {
/// use hookroom::service::{BearerTokens, Gateway};
/// use tower::ServiceExt;
///
/// let gateway = Gateway::builder(ingest)
///     .principals(BearerTokens::parse_list("s3cret").unwrap())
///     .build();
/// let request = http::Request::get("/operations?limit=5")
///     .header("authorization", "Bearer s3cret")
///     .body(String::new())
///     .unwrap();
/// assert_eq!(gateway.oneshot(request).await.unwrap().status(), 200);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gateway {
    ingest: WebhookService,
    health: Option<HealthService>,
    operations: Option<OperationsService>,
    health_path: String,
    operations_path: String,
    admin: Principals,
}

impl Gateway {
    /// A builder of the gateway over `ingest`, with its default
    /// [`HealthService`] and an [`OperationsService`] over its operations
    /// log.
    pub fn builder(ingest: WebhookService) -> GatewayBuilder {
        let prefix = ingest.prefix();
        GatewayBuilder {
            gateway: Self {
                health_path: format!("{prefix}/health"),
                operations_path: format!("{prefix}/operations"),
                health: Some(ingest.health_service()),
                operations: Some(OperationsService::new(ingest.operations_log())),
                ingest,
                admin: Principals::none(),
            },
        }
    }
}

/// Builds a [`Gateway`]; from [`Gateway::builder`].
#[derive(Debug)]
pub struct GatewayBuilder {
    gateway: Gateway,
}

impl GatewayBuilder {
    /// The bearer tokens that may read `/operations` and `/health`'s
    /// component detail, for every service the gateway serves (they replace
    /// the services' own).
    pub fn principals(mut self, principals: impl Into<Principals>) -> Self {
        let tokens: Principals = principals.into();
        let gateway = &mut self.gateway;
        gateway.health = gateway.health.take().map(|h| h.principals(tokens.clone()));
        gateway.operations = gateway
            .operations
            .take()
            .map(|o| o.principals(tokens.clone()));
        gateway.admin = tokens;
        self
    }

    /// Replaces the health service (e.g. one that also reports a route
    /// count); it answers with the gateway's admin tokens.
    pub fn health(mut self, health: HealthService) -> Self {
        self.gateway.health = Some(health.principals(self.gateway.admin.clone()));
        self
    }

    /// Serves no `/health`.
    pub fn without_health(mut self) -> Self {
        self.gateway.health = None;
        self
    }

    /// Serves no `/operations`.
    pub fn without_operations(mut self) -> Self {
        self.gateway.operations = None;
        self
    }

    /// The gateway.
    pub fn build(self) -> Gateway {
        self.gateway
    }
}

impl<B> Service<Request<B>> for Gateway
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let path = request.uri().path();
        if path == self.health_path {
            if let Some(health) = &mut self.health {
                return health.call(request);
            }
        } else if path == self.operations_path {
            if let Some(operations) = &mut self.operations {
                return Box::pin(operations.call(request));
            }
        } else if self.ingest.source_in_path(path).is_some() {
            return self.ingest.call(request);
        }
        // Every answer carries a request id, this one too.
        let id = request_id(request.headers());
        let mut response = IngestError::NotFound.to_response_for(id.to_str().ok());
        response.headers_mut().insert(REQUEST_ID, id);
        Box::pin(std::future::ready(Ok(response)))
    }
}

// The in-memory store answers the health probe.
#[cfg(all(test, feature = "memory"))]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::*;
    use crate::event::{Event, Verified};
    use crate::route::{RouteDecision, Router};
    use crate::service::BearerTokens;
    use crate::status::NoopStatusSink;
    use crate::task::InMemoryTaskStore;

    #[derive(Debug)]
    struct Nowhere;

    impl Router for Nowhere {
        fn route(&self, _: &Verified<Event>) -> RouteDecision {
            RouteDecision::Ignore {
                reason: "nowhere".into(),
            }
        }
    }

    fn ingest() -> WebhookService {
        WebhookService::builder(Arc::new(Nowhere), Arc::new(InMemoryTaskStore::new()))
            .status_sink(Arc::new(NoopStatusSink))
            .prefix("/api")
            .build()
    }

    async fn get(gateway: &mut Gateway, path: &str) -> (u16, serde_json::Value) {
        let request = Request::get(path)
            .header("authorization", "Bearer admin")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = gateway.call(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn paths_dispatch_under_the_prefix() {
        let health = ingest().health_service().routes_count(Arc::new(|| 7));
        let mut gateway = Gateway::builder(ingest())
            .principals(BearerTokens::parse_list("admin").unwrap())
            .health(health)
            .build();
        let (status, body) = get(&mut gateway, "/api/health").await;
        // No sources configured: the gateway cannot ingest anything.
        assert_eq!(status, 503);
        assert_eq!(body["components"]["sources"]["error"], "no_sources");
        assert_eq!(body["components"]["routes"]["count"], 7);
        assert_eq!(body["components"]["store"]["status"], "up");

        let (status, body) = get(&mut gateway, "/api/operations").await;
        assert_eq!((status, body["total"].as_u64()), (200, Some(0)));
        let (status, body) = get(&mut gateway, "/api/webhook/x").await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (405, &"method_not_allowed".into())
        );
        let (status, body) = get(&mut gateway, "/health").await;
        assert_eq!(status, 404);
        assert!(body["error"]["request_id"].is_string(), "{body}");
    }

    #[tokio::test]
    async fn removed_services_answer_404() {
        let mut gateway = Gateway::builder(ingest())
            .without_health()
            .without_operations()
            .build();
        for path in ["/api/health", "/api/operations"] {
            let (status, body) = get(&mut gateway, path).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (404, &"not_found".into()),
                "{path}"
            );
        }
    }
}
