//! The gateway's Routes API (`/api/routes`, `/api/deliveries`): the
//! library's [`RoutesApi`] over the gateway's router and task store, and a
//! small service that sends those paths to it and everything else on.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use hookroom::route::{RoutesFile, RuleRouter};
use hookroom::service::{ApiTokens, ResponseFuture, RoutesApi, ServiceBody};
use hookroom::task::TaskStore;

/// The variable agent tokens come from (an agent token gets `403` here).
pub(crate) const API_TOKEN_VAR: &str = "HOOKROOM_API_TOKEN";

/// The Routes API for the gateway: admin tokens from `admin_var`, changes
/// written back to `routes_file` when there is one (an explicit
/// `--config`; the shipped example file is never rewritten).
pub(crate) fn routes_api(
    router: Arc<RuleRouter>,
    store: Arc<dyn TaskStore>,
    admin_var: &str,
    routes_file: Option<PathBuf>,
) -> Result<RoutesApi, String> {
    let tokens = ApiTokens::from_env(API_TOKEN_VAR, admin_var).map_err(|e| e.to_string())?;
    let api = RoutesApi::new(router, store).tokens(tokens);
    Ok(match routes_file {
        Some(path) => api.routes_file(RoutesFile::new(path)),
        None => api,
    })
}

/// `banner` with the Routes API's lines added at the end of its endpoint
/// list (before the first blank line).
pub(crate) fn with_banner_lines(
    banner: String,
    listen: SocketAddr,
    persistent_file: Option<&Path>,
) -> String {
    let saved = match persistent_file {
        Some(path) => format!("changes are written back to {}", path.display()),
        None => "changes last until exit (only a --config file is rewritten)".to_owned(),
    };
    let lines = format!(
        "  GET|POST http://{listen}/api/routes, DELETE /api/routes/{{id}}, POST /api/routes/explain   \
         (admin token; {saved})\n  \
         GET  http://{listen}/api/deliveries?room=&source=&limit=&cursor=   (admin token)\n"
    );
    match banner.find("\n\n") {
        Some(end) => {
            let (endpoints, rest) = banner.split_at(end + 1);
            format!("{endpoints}{lines}{rest}")
        }
        None => banner + &lines,
    }
}

/// Sends the Routes API's paths to it and every other request to `inner`.
#[derive(Debug, Clone)]
pub(crate) struct WithRoutesApi<S> {
    api: RoutesApi,
    inner: S,
}

impl<S> WithRoutesApi<S> {
    pub(crate) fn new(api: RoutesApi, inner: S) -> Self {
        Self { api, inner }
    }
}

impl<S, B> Service<Request<B>> for WithRoutesApi<S>
where
    S: Service<Request<B>, Response = Response<ServiceBody>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        if self.api.handles(request.uri().path()) {
            self.api.call(request)
        } else {
            Box::pin(self.inner.call(request))
        }
    }
}
