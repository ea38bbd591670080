//! The HTTP surface, as tower services.
//!
//! | service | path | answers |
//! | --- | --- | --- |
//! | [`WebhookService`] | `POST {prefix}/webhook/{source}`, or any path for one source ([`WebhookService::for_source`], [`SourceName`]) | `202` accepted, `200` duplicate / ignored / Slack challenge, `401`, `400`, `403`, `404`, `405`, `413`, `429`, `503` |
//! | [`HealthService`] | `GET {prefix}/health` | liveness: `200 {"status":"ok"}` / `503`; component detail with an admin token |
//! | [`OperationsService`] | `GET {prefix}/operations?limit=N` | admin token: `200`, newest first, with the total; else `401` / `403` |
//! | [`Gateway`] | all three under one prefix | |
//! | [`RoutesApi`] | `{prefix}/routes`, `{prefix}/routes/{id}`, `{prefix}/routes/explain`, `{prefix}/deliveries` | admin token: list, add, remove and explain routes; delivery history |
//! | [`JobsApi`] | `{prefix}` (default `/api/jobs`) and below | the Jobs API: `201`/`200`, `400`, `401`, `404`, `405`, `413`, `503` with `E_*` codes |
//! | [`VerifyLayer`] | wraps a service of yours | the request with its verified body, or the `401` |
//! | [`TaskApi`] | `/api/rooms…`, `/api/tasks/…`, `/api/events` | the [Task API](task_api): agents list, claim and finish tasks over HTTP (agent or admin bearer token) |
//!
//! Every error body is `{"error":{"code":"<stable code>","message":"…"}}`;
//! [`IngestError::status`] is the one place that maps errors to statuses
//! ([`task_api::ApiError::status`] for the Task API).
//! The services are plain [`tower_service::Service`]s over any
//! [`http_body::Body`], so they mount in hyper, axum (`route_service`,
//! `nest_service`) or any tower stack.
//!
//! Admin answers (`/operations`, `/health`'s detail) need a bearer token
//! from [`BearerTokens`]; with none configured they are refused.
//!
//! # Mounting
//!
//! In axum, next to the application's own routes, at any path (axum's
//! `ConnectInfo` can be copied into [`PeerAddr`] by a small middleware; see
//! `examples/axum.rs`):
//!
//! ```
//! # fn app(ingest: hookroom::service::WebhookService, admin: hookroom::service::BearerTokens)
//! #     -> Option<axum::Router> {
//! use hookroom::service::OperationsService;
//!
//! Some(axum::Router::new()
//!     .route_service("/hooks/gh", ingest.for_source("github")?)
//!     .route_service("/webhook/{source}", ingest.clone())
//!     .route_service("/health", ingest.health_service().principals(admin.clone()))
//!     .route_service("/operations", OperationsService::new(ingest.operations_log()).principals(admin)))
//! # }
//! ```
//!
//! In hyper, or anything else taking a tower service, serve a [`Gateway`]
//! (see `examples/hyper.rs`, and the `hookroom-gateway` crate, which mounts every service on one axum router).
//!
//! Client addresses for allowlists come from a [`PeerAddr`] the server puts
//! in the request extensions, and from `Forwarded` / `X-Forwarded-For` only
//! when that peer is a configured trusted proxy.

pub(crate) mod auth;
mod body;
mod client_addr;
mod error;
mod gateway;
mod health;
mod ingest;
mod jobs_api;
pub(crate) mod json_error;
mod operations;
mod origin;
mod rate_limit;
mod routes_api;
pub mod task_api;
mod verify;

pub use auth::{ApiAccess, ApiTokens, BearerTokens, TokenListError};
pub use client_addr::{PeerAddr, ProxyHeader};
pub use error::IngestError;
pub use gateway::{Gateway, GatewayBuilder};
pub use health::{
    ComponentReport, DEFAULT_PROBE_CACHE, DEFAULT_PROBE_TIMEOUT, HealthService, RouteCount,
};
pub use ingest::{
    DEFAULT_BODY_LIMIT, SENSITIVE_HEADERS, SourceName, SourceOptions, WebhookService,
    WebhookServiceBuilder,
};
pub use jobs_api::{
    DEFAULT_IDEMPOTENCY_CAPACITY, DEFAULT_JOBS_BODY_LIMIT, DEFAULT_JOBS_PREFIX,
    DEFAULT_MAX_ARTIFACT_BYTES, DEFAULT_MAX_ARTIFACTS_PER_JOB, DEFAULT_MAX_INPUT_DATA_BYTES,
    DEFAULT_MAX_METADATA_BYTES, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, JobBound, JobsApi,
    JobsApiBuilder, JobsApiError,
};
pub use operations::{
    DEFAULT_OPERATIONS_CAPACITY, DEFAULT_OPERATIONS_LIMIT, Operation, OperationsLog,
    OperationsService, Outcome,
};
pub use origin::{OriginCheck, OriginCheckLayer};
pub use rate_limit::RateLimit;
pub use routes_api::{
    DEFAULT_DELIVERIES_LIMIT, DEFAULT_ROUTES_API_BODY_LIMIT, MAX_DELIVERIES_LIMIT, RoutesApi,
    RoutesApiBuilder, RoutesApiError,
};
pub use task_api::TaskApi;
pub use verify::{Verify, VerifyFuture, VerifyLayer};

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

/// The response body of every service here: a complete JSON document.
pub type ServiceBody = http_body_util::Full<bytes::Bytes>;

/// The future of the services here.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<ServiceBody>, Infallible>> + Send + 'static>>;
