//! The example gateway's Jobs API: its tokens, its registry and the service
//! that puts it next to the `Gateway` under `/api/jobs`. Shared by
//! `examples/gateway.rs` and `tests/jobs_api_gateway.rs`.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Request;
use http_body::Body;
use tower_service::Service;

use hookroom::service::{ApiTokens, BearerTokens, Gateway, JobsApi, ResponseFuture};
use hookroom::status::{InMemoryStatusSink, JobRegistry, StatusSink};

/// The variable the gateway reads its agent tokens from (comma-separated).
pub(crate) const API_TOKEN_VAR: &str = "HOOKROOM_API_TOKEN";

/// How many jobs the in-memory registry keeps.
pub(crate) const MEMORY_MAX_JOBS: usize = 10_000;

/// How many history entries each job keeps.
pub(crate) const MAX_HISTORY: usize = 200;

/// The agent tokens, and the development token when one stands in for an
/// unset variable.
#[derive(Debug)]
pub(crate) struct JobsTokens {
    pub(crate) tokens: ApiTokens,
    pub(crate) dev_token: Option<String>,
}

/// The Jobs API's tokens: `HOOKROOM_API_TOKEN` (agents) and the admin
/// tokens. In development mode an unset variable stands in for the printed
/// development token `hookroom-dev-hookroom-api-token`; otherwise, with no
/// token at all, the Jobs API is off.
pub(crate) fn tokens(
    agent_env: Option<&str>,
    admin: &BearerTokens,
    dev_mode: bool,
) -> Result<JobsTokens, String> {
    let (agent, dev_token) = match agent_env {
        Some(list) => (
            BearerTokens::parse_list(list).map_err(|e| format!("{API_TOKEN_VAR}: {e}"))?,
            None,
        ),
        None if dev_mode => {
            let token = super::banner::dev_secret(API_TOKEN_VAR);
            (
                BearerTokens::parse_list(&token).map_err(|e| e.to_string())?,
                Some(token),
            )
        }
        None => (BearerTokens::none(), None),
    };
    Ok(JobsTokens {
        tokens: ApiTokens::new(agent, admin.clone()),
        dev_token,
    })
}

/// One registry, as the ingest service's sink and as the Jobs API's
/// registry.
pub(crate) type Registries = (Arc<dyn StatusSink>, Arc<dyn JobRegistry>);

/// The job registry for a `--store` spec: the same SQLite file as the
/// tasks for `sqlite:PATH`, memory otherwise. Returned twice, as the ingest
/// service's sink and as the Jobs API's registry.
pub(crate) fn registry(store_spec: &str) -> Result<Registries, String> {
    #[cfg(feature = "sqlite")]
    if let Some(path) = store_spec.strip_prefix("sqlite:") {
        let registry = Arc::new(
            hookroom::status::SqliteJobRegistry::open(path)
                .map_err(|e| format!("--store {store_spec}: job registry: {e}"))?
                .with_max_history(MAX_HISTORY),
        );
        return Ok((registry.clone(), registry));
    }
    let _ = store_spec;
    let registry = Arc::new(
        InMemoryStatusSink::new()
            .with_max_jobs(MEMORY_MAX_JOBS)
            .with_max_history(MAX_HISTORY),
    );
    Ok((registry.clone(), registry))
}

/// The `Gateway`, with the Jobs API under its prefix when it is on.
#[derive(Debug, Clone)]
pub(crate) struct WithJobs {
    gateway: Gateway,
    jobs: Option<JobsApi>,
}

impl WithJobs {
    /// Serves `gateway`, and `jobs` (when `Some`) under `/api/jobs`.
    pub(crate) fn new(gateway: Gateway, jobs: Option<JobsApi>) -> Self {
        Self { gateway, jobs }
    }
}

impl<B> Service<Request<B>> for WithJobs
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<hookroom::service::ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        match &mut self.jobs {
            Some(jobs) if jobs.serves_path(request.uri().path()) => jobs.call(request),
            _ => self.gateway.call(request),
        }
    }
}

/// The banner's Jobs API lines.
pub(crate) fn banner(listen: SocketAddr, tokens: &JobsTokens) -> String {
    let mut out = String::new();
    if tokens.tokens.is_empty() {
        let _ = writeln!(
            out,
            "  jobs: {API_TOKEN_VAR} is not set: the Jobs API (/api/jobs) is off"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  POST http://{listen}/api/jobs   GET /api/jobs?status=&limit=&cursor=   (Jobs API, bearer token)"
    );
    let _ = writeln!(
        out,
        "  POST /api/jobs/{{job_id}}/status   GET /api/jobs/{{job_id}}?include_history=true   POST /api/jobs/{{job_id}}/complete"
    );
    match &tokens.dev_token {
        Some(token) => {
            let _ = writeln!(
                out,
                "  jobs: WARNING (development mode): {API_TOKEN_VAR} is not set; \
                 use the development token: Authorization: Bearer {token}"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  jobs: {} agent token(s) from {API_TOKEN_VAR} (admin tokens too); \
                 send `Authorization: Bearer <token>`",
                tokens.tokens.agent().len()
            );
        }
    }
    out
}
