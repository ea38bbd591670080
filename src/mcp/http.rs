//! [`McpHttpService`]: streamable HTTP behind the agent token.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::server::{McpServer, McpSession};
use crate::auth::Principals;

/// The response body of [`McpHttpService`]: JSON, or a server-sent event
/// stream.
pub type McpBody = BoxBody<Bytes, Infallible>;

/// MCP over streamable HTTP (rmcp's server), for the gateway to mount at
/// `/mcp` behind the agent token.
///
/// Every request must carry `Authorization: Bearer <token>` of one of its
/// [`Principals`]; anything else answers `401` with a JSON error and never
/// reaches MCP. The session acts as that principal: an admin also gets the
/// route tools. Each MCP session (`Mcp-Session-Id`) has its own rooms and
/// claims; a session that ends or idles out stops heartbeating, and its
/// claims lapse with their lease.
///
/// Built by [`McpServer::http_service`]; it serves any path, so mount it
/// where it belongs.
#[derive(Clone)]
pub struct McpHttpService {
    principals: Principals,
    inner: StreamableHttpService<McpSession, LocalSessionManager>,
}

impl fmt::Debug for McpHttpService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpHttpService")
            .field("principals", &self.principals)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// Streamable HTTP for `principals` (an
    /// [`ApiTokens`](crate::service::ApiTokens) pair converts into the
    /// environment quick start's), with rmcp's default settings except
    /// the `Host` allow-list, which is off: every request needs a bearer
    /// token, which a DNS-rebinding page cannot send.
    pub fn http_service(&self, principals: impl Into<Principals>) -> McpHttpService {
        self.http_service_with(
            principals,
            StreamableHttpServerConfig::default().disable_allowed_hosts(),
        )
    }

    /// Streamable HTTP for `principals` with rmcp settings of your own
    /// (allowed hosts and origins, keep-alive, body limit, …).
    pub fn http_service_with(
        &self,
        principals: impl Into<Principals>,
        config: StreamableHttpServerConfig,
    ) -> McpHttpService {
        let server = self.clone();
        McpHttpService {
            principals: principals.into(),
            inner: StreamableHttpService::new(
                move || Ok(server.session()),
                Arc::new({
                    let mut sessions = LocalSessionManager::default();
                    sessions.session_config.keep_alive = Some(self.inner.session_idle);
                    sessions
                }),
                config,
            ),
        }
    }
}

fn unauthorized() -> Response<McpBody> {
    crate::service::json_error::JsonError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "MCP needs Authorization: Bearer <agent token>",
    )
    .bearer_challenge()
    .into_response()
    .map(BodyExt::boxed)
}

impl<B> tower_service::Service<Request<B>> for McpHttpService
where
    B: http_body::Body + Send + 'static,
    B::Error: fmt::Display,
    B::Data: Send + 'static,
{
    type Response = Response<McpBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let Ok(principal) = self.principals.authenticate(request.headers()) else {
            return Box::pin(std::future::ready(Ok(unauthorized())));
        };
        // The tools act as the principal (route tools need an admin).
        request.extensions_mut().insert(principal);
        let inner = self.inner.clone();
        Box::pin(async move { Ok(super::wire::forward(inner, request).await) })
    }
}

/// Serves one path with an [`McpHttpService`] and every other path with
/// `inner` (the gateway, say), both answering [`McpBody`].
///
/// ```
/// # use std::sync::Arc;
/// use hookroom::mcp::{McpServer, MountMcp};
/// use hookroom::service::ApiTokens;
/// # let store = Arc::new(hookroom::task::InMemoryTaskStore::new());
/// # let inner = tower::service_fn(|_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
/// let mcp = McpServer::builder(store).build();
/// let tokens = ApiTokens::default(); // e.g. ApiTokens::from_env("HOOKROOM_API_TOKEN", "HOOKROOM_ADMIN_TOKEN")?
/// let app = MountMcp::new("/mcp", mcp.http_service(tokens), inner);
/// ```
#[derive(Debug, Clone)]
pub struct MountMcp<S> {
    path: Arc<str>,
    mcp: McpHttpService,
    inner: S,
}

impl<S> MountMcp<S> {
    /// `path` (exactly, e.g. `/mcp`) to `mcp`, the rest to `inner`.
    pub fn new(path: impl Into<String>, mcp: McpHttpService, inner: S) -> Self {
        Self {
            path: Arc::from(path.into()),
            mcp,
            inner,
        }
    }
}

impl<S, B, RB> tower_service::Service<Request<B>> for MountMcp<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RB: http_body::Body<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Error: fmt::Display,
    B::Data: Send + 'static,
{
    type Response = Response<McpBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.uri().path() == &*self.path {
            return self.mcp.call(request);
        }
        // The clone is the one driven; `self.inner` stays ready for the next.
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(response.map(BodyExt::boxed))
        })
    }
}
