//! The gateway's HTTP surface: the library's services mounted on one axum
//! router, the way a user mounts them in their own server.
//!
//! Each API owns its paths; a path no API owns goes to the webhook
//! [`Gateway`] (`/webhook/{source}`, `/health`, `/operations`, and its JSON
//! `404` for anything else). An API that is off (no token for it) mounts
//! nothing, so its paths answer that `404`. The dashboard is served at
//! `/dashboard/`, and `/` leads there.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use hookroom::auth::{Operation, Principals};
use hookroom::dashboard::Dashboard;
use hookroom::mcp::McpHttpService;
use hookroom::service::{Gateway, JobsApi, OriginCheckLayer, RoutesApi, TaskApi};
use tower_layer::Layer;

/// The services the gateway serves; `None` for one that is off.
#[derive(Debug)]
pub(crate) struct Services {
    /// Webhooks, `/health` and `/operations`.
    pub(crate) gateway: Gateway,
    /// The Task API.
    pub(crate) task_api: Option<TaskApi>,
    /// The Jobs API.
    pub(crate) jobs_api: Option<JobsApi>,
    /// The Routes API.
    pub(crate) routes_api: Option<RoutesApi>,
    /// MCP over streamable HTTP.
    pub(crate) mcp: Option<McpHttpService>,
    /// `/metrics`.
    pub(crate) metrics: Option<Metrics>,
    /// The `Host` and `Origin` check in front of `/api` and `/mcp`.
    pub(crate) origin: OriginCheckLayer,
}

/// `/metrics` and who may read it.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// The Prometheus exporter.
    pub(crate) handle: PrometheusHandle,
    /// Admins may read it.
    pub(crate) principals: Principals,
    /// Anyone may read it (development mode without an admin).
    pub(crate) open: bool,
}

/// The `Host` and `Origin` check for a gateway listening on `listen`: the
/// hosts given, or for a loopback listener its loopback names; the origins
/// given besides a page's own.
pub(crate) fn origin_check(
    listen: std::net::SocketAddr,
    hosts: &[String],
    origins: &[String],
) -> OriginCheckLayer {
    let mut layer = if !hosts.is_empty() {
        hosts.iter().fold(OriginCheckLayer::new(), |layer, host| {
            layer.allow_host(host)
        })
    } else if listen.ip().is_loopback() {
        OriginCheckLayer::loopback(listen.port())
    } else {
        OriginCheckLayer::new()
    };
    for origin in origins {
        layer = layer.allow_origin(origin);
    }
    layer
}

/// The paths each API owns: the path itself and everything below it.
const TASK_API_PATHS: [&str; 4] = ["/api/rooms", "/api/tasks", "/api/events", "/api/whoami"];
const JOBS_API_PATHS: [&str; 1] = ["/api/jobs"];
const ROUTES_API_PATHS: [&str; 2] = ["/api/routes", "/api/deliveries"];

/// Mounts `service` at each of `paths` and below.
fn mount<S>(mut router: Router, paths: &[&str], service: S) -> Router
where
    S: tower_service::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    for path in paths {
        router = router
            .route_service(path, service.clone())
            .route_service(&format!("{path}/{{*rest}}"), service.clone());
    }
    router
}

/// The router serving `services`.
pub(crate) fn router(services: Services) -> Router {
    let mut router = Router::new();
    let origin = services.origin;
    if let Some(api) = services.task_api {
        router = mount(router, &TASK_API_PATHS, origin.layer(api));
    }
    if let Some(api) = services.jobs_api {
        router = mount(router, &JOBS_API_PATHS, origin.layer(api));
    }
    if let Some(api) = services.routes_api {
        router = mount(router, &ROUTES_API_PATHS, origin.layer(api));
    }
    if let Some(mcp) = services.mcp {
        router = router.route_service("/mcp", origin.layer(mcp));
    }
    if let Some(metrics) = services.metrics.map(std::sync::Arc::new) {
        router = router.route(
            "/metrics",
            get(move |headers: HeaderMap| async move { serve_metrics(&metrics, &headers) }),
        );
    }
    // `{*rest}` matches no empty rest: the page itself is its own route.
    let dashboard = Dashboard::default();
    let page = format!("{}/", dashboard.prefix());
    router = mount(router, &[dashboard.prefix()], dashboard.clone())
        .route_service(&page, dashboard)
        .route(
            "/",
            get(move || async move { axum::response::Redirect::temporary(&page) }),
        );
    router.fallback_service(services.gateway)
}

/// `GET /metrics`: Prometheus text, for an admin (or anyone, when open).
fn serve_metrics(metrics: &Metrics, headers: &HeaderMap) -> Response {
    let allowed = metrics.open
        || metrics
            .principals
            .authenticate(headers)
            .is_ok_and(|who| who.authorize(&Operation::ReadMetrics).is_ok());
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            Body::from(
                r#"{"error":{"code":"unauthorized","message":"/metrics needs an admin bearer token"}}"#,
            ),
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.handle.render(),
    )
        .into_response()
}
