//! The gateway's Task API: tokens from the environment, and the service
//! that sends `/api/rooms…`, `/api/tasks/…` and `/api/events` to the
//! [`TaskApi`] and everything else to the [`Gateway`].
//!
//! Agent tokens come from `HOOKROOM_API_TOKEN`, admin tokens from
//! `HOOKROOM_ADMIN_TOKEN` (each comma-separated, for rotation; an admin
//! token may do what an agent token may). In development mode, with no
//! agent token set, the development token `hookroom-dev-hookroom-api-token`
//! stands in and is printed. With `--config` or `--strict` and no token at
//! all, the APIs are off and the banner says so.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use hookroom::service::task_api::{ResponseBody, TaskApiFuture as ResponseFuture};
use hookroom::service::{ApiTokens, BearerTokens, Gateway, ServiceBody, TaskApi};
use hookroom::status::StatusSink;
use hookroom::task::{TaskEvents, TaskStore};

use super::banner::{ADMIN_TOKEN_VAR, dev_secret};

/// The variable the gateway reads its agent tokens from.
pub(crate) const API_TOKEN_VAR: &str = "HOOKROOM_API_TOKEN";

/// The tokens of the gateway's APIs, and the development token standing in
/// for an unset [`API_TOKEN_VAR`], if one does.
pub(crate) struct ApiAuth {
    pub(crate) tokens: ApiTokens,
    pub(crate) dev_token: Option<String>,
}

impl ApiAuth {
    /// Reads the variables; in `dev_mode` an unset agent token is the
    /// development token.
    pub(crate) fn from_env(dev_mode: bool) -> Result<Self, String> {
        let admin = BearerTokens::from_env(ADMIN_TOKEN_VAR)
            .map_err(|e| format!("{ADMIN_TOKEN_VAR}: {e}"))?;
        let mut agent =
            BearerTokens::from_env(API_TOKEN_VAR).map_err(|e| format!("{API_TOKEN_VAR}: {e}"))?;
        let mut dev_token = None;
        if agent.is_empty() && dev_mode {
            let token = dev_secret(API_TOKEN_VAR);
            agent = BearerTokens::parse_list(&token).map_err(|e| e.to_string())?;
            dev_token = Some(token);
        }
        Ok(Self {
            tokens: ApiTokens::new(agent, admin),
            dev_token,
        })
    }

    /// Whether the APIs are served.
    pub(crate) fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// The Task API over `store` (announcing to `events`), reporting to the
/// jobs in `sink`, answering waiting claims before `request_timeout` cuts
/// them.
pub(crate) fn task_api(
    store: Arc<dyn TaskStore>,
    events: Arc<TaskEvents>,
    sink: Arc<dyn StatusSink>,
    auth: &ApiAuth,
    request_timeout: Duration,
) -> TaskApi {
    TaskApi::builder(store, auth.tokens.clone())
        .events(events)
        .status_sink(sink)
        .max_wait(request_timeout.saturating_sub(Duration::from_secs(2)))
        .build()
}

/// The banner's lines about the APIs.
pub(crate) fn banner(listen: SocketAddr, auth: &ApiAuth) -> String {
    let mut out = String::new();
    if !auth.enabled() {
        let _ = writeln!(
            out,
            "  Task API: off ({API_TOKEN_VAR} and {ADMIN_TOKEN_VAR} are not set)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  Task API: http://{listen}/api/rooms, /api/rooms/{{room}}/claim, /api/tasks/{{id}}, /api/events \
         (agent or admin token)"
    );
    match &auth.dev_token {
        Some(token) => {
            let _ = writeln!(
                out,
                "  agent token (development; set {API_TOKEN_VAR} to replace it): {token}"
            );
            let _ = writeln!(
                out,
                "  claim: curl -H 'Authorization: Bearer {token}' -X POST http://{listen}/api/rooms/pr-review/claim \
                 -d '{{\"agent_id\":\"a1\",\"lease_seconds\":30}}'"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  agent tokens: {} from {API_TOKEN_VAR}; send `Authorization: Bearer <token>`",
                auth.tokens.agent().len()
            );
        }
    }
    out
}

/// The gateway with the Task API beside it: a request whose path is the
/// Task API's goes to it, every other one to the gateway (or a service
/// wrapping it).
#[derive(Debug, Clone)]
pub(crate) struct WithTaskApi<S = Gateway> {
    gateway: S,
    task_api: Option<TaskApi>,
}

impl<S> WithTaskApi<S> {
    pub(crate) fn new(gateway: S, task_api: Option<TaskApi>) -> Self {
        Self { gateway, task_api }
    }
}

impl<S, B> Service<Request<B>> for WithTaskApi<S>
where
    S: Service<Request<B>, Response = Response<ServiceBody>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.gateway.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if let Some(task_api) = &mut self.task_api
            && TaskApi::handles(request.uri().path())
        {
            return task_api.call(request);
        }
        let answer = self.gateway.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(ResponseBody::from))
        })
    }
}
