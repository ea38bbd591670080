//! The `Host` and `Origin` check before an API: [`OriginCheckLayer`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode, header};
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

use super::ServiceBody;
use super::json_error::JsonError;

/// What an [`OriginCheckLayer`] lets through.
#[derive(Debug, Clone, Default)]
struct Allowed {
    /// `host[:port]`, lowercase; empty: any host.
    hosts: BTreeSet<String>,
    /// `scheme://host[:port]`, lowercase.
    origins: BTreeSet<String>,
}

/// [`OriginCheckLayer`]: refuses requests a web page could send on its
/// visitor's behalf (cross-site requests and DNS rebinding), before they
/// reach an API.
///
/// A page on another site can make a browser send requests to
/// `http://127.0.0.1:8935`; with DNS rebinding it can even make them look
/// same-origin, under a host name it controls. Two checks stop both:
///
/// - **`Host`** must be one of the allowed hosts (for a loopback listener:
///   `localhost`, `127.0.0.1` and `[::1]` at its port), so a rebinding
///   page's own host name is refused;
/// - **`Origin`**, when present (browsers send it on every cross-origin and
///   every non-`GET` request), must be the request's own origin or one of
///   the allowed origins.
///
/// Requests without `Origin` (curl, SDKs, agents) pass the `Origin` check.
/// MCP's streamable HTTP transport requires servers to validate `Origin`.
///
/// ```
/// use hookroom::service::OriginCheckLayer;
/// use tower::ServiceExt;
///
/// # async fn demo() {
/// let layer = OriginCheckLayer::loopback(8935).allow_origin("https://dash.example.com");
/// let api = tower::service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// });
/// let service = tower::Layer::layer(&layer, api);
/// let evil = http::Request::post("/api/tasks")
///     .header("host", "127.0.0.1:8935")
///     .header("origin", "https://evil.example")
///     .body(String::new())
///     .unwrap();
/// assert_eq!(service.clone().oneshot(evil).await.unwrap().status(), 403);
/// let curl = http::Request::get("/api/tasks")
///     .header("host", "127.0.0.1:8935")
///     .body(String::new())
///     .unwrap();
/// assert_eq!(service.oneshot(curl).await.unwrap().status(), 200);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct OriginCheckLayer {
    allowed: Arc<Allowed>,
}

impl OriginCheckLayer {
    /// Any `Host`; `Origin`, when present, must be the request's own.
    pub fn new() -> Self {
        Self::default()
    }

    /// For a listener on loopback at `port`: `Host` must be `localhost`,
    /// `127.0.0.1` or `[::1]` at that port.
    pub fn loopback(port: u16) -> Self {
        ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .fold(Self::new(), |layer, host| {
                layer.allow_host(format!("{host}:{port}"))
            })
    }

    /// Also allows this `Host` (`name` or `name:port`). Once any host is
    /// allowed, every other is refused.
    #[must_use]
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.allowed)
            .hosts
            .insert(host.into().to_ascii_lowercase());
        self
    }

    /// Also allows this `Origin` (`scheme://host[:port]`, as browsers send
    /// it), for a page served elsewhere that may call the API.
    #[must_use]
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.allowed)
            .origins
            .insert(origin.into().trim_end_matches('/').to_ascii_lowercase());
        self
    }
}

impl<S> Layer<S> for OriginCheckLayer {
    type Service = OriginCheck<S>;

    fn layer(&self, inner: S) -> OriginCheck<S> {
        OriginCheck {
            inner,
            allowed: Arc::clone(&self.allowed),
        }
    }
}

/// The service of [`OriginCheckLayer`].
#[derive(Debug, Clone)]
pub struct OriginCheck<S> {
    inner: S,
    allowed: Arc<Allowed>,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Host,
    Origin,
}

impl Allowed {
    fn check<B>(&self, request: &Request<B>) -> Result<(), Refusal> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))
            .map(str::to_ascii_lowercase);
        if !self.hosts.is_empty() && !host.as_ref().is_some_and(|h| self.hosts.contains(h)) {
            return Err(Refusal::Host);
        }
        let Some(origin) = request.headers().get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin
            .to_str()
            .map_err(|_| Refusal::Origin)?
            .to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return Ok(());
        }
        // The page's own origin: the gateway's pages call its APIs.
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| host.as_deref() == Some(authority));
        if own { Ok(()) } else { Err(Refusal::Origin) }
    }
}

impl<S, B, ResBody> Service<Request<B>> for OriginCheck<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<Either<ResBody, ServiceBody>>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.allowed.check(&request) {
            Ok(()) => {
                let future = self.inner.call(request);
                Box::pin(async move { Ok(future.await?.map(Either::Left)) })
            }
            Err(refusal) => {
                let (code, message) = match refusal {
                    Refusal::Host => (
                        "host_not_allowed",
                        "the Host header is not one this server answers to (DNS rebinding?); \
                         add it to the allowed hosts if it is yours",
                    ),
                    Refusal::Origin => (
                        "origin_not_allowed",
                        "requests from this page's Origin are refused; add it to the allowed \
                         origins if it is yours",
                    ),
                };
                let response = JsonError::new(StatusCode::FORBIDDEN, code, message)
                    .into_response()
                    .map(Either::Right);
                Box::pin(std::future::ready(Ok(response)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, origin: Option<&str>) -> Request<()> {
        let mut builder = Request::post("/api/x");
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn rebinding_and_cross_site_pages_are_refused() {
        let allowed = &OriginCheckLayer::loopback(8935)
            .allow_origin("https://dash.example.com/")
            .allowed;
        let cases = [
            (Some("127.0.0.1:8935"), None, Ok(())),
            (
                Some("localhost:8935"),
                Some("http://localhost:8935"),
                Ok(()),
            ),
            (
                Some("LOCALHOST:8935"),
                Some("https://dash.example.com"),
                Ok(()),
            ),
            (
                Some("evil.example:8935"),
                Some("http://evil.example:8935"),
                Err(Refusal::Host),
            ),
            (
                Some("127.0.0.1:8935"),
                Some("http://evil.example"),
                Err(Refusal::Origin),
            ),
            (Some("127.0.0.1:8935"), Some("null"), Err(Refusal::Origin)),
            (Some("127.0.0.1:9999"), None, Err(Refusal::Host)),
            (None, None, Err(Refusal::Host)),
        ];
        for (host, origin, expected) in cases {
            assert_eq!(
                allowed.check(&request(host, origin)),
                expected,
                "{host:?} {origin:?}"
            );
        }
        let open = &OriginCheckLayer::new().allowed;
        assert_eq!(open.check(&request(Some("any:1"), None)), Ok(()));
        assert_eq!(
            open.check(&request(Some("any:1"), Some("http://other:1"))),
            Err(Refusal::Origin)
        );
    }
}
