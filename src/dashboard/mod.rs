//! The dashboard: a web page over the Task, Jobs and Routes APIs, served as
//! a tower service with its assets embedded (feature `dashboard`).
//!
//! [`Dashboard`] answers `GET` and `HEAD` for its page and assets under a
//! prefix (`/dashboard` unless [told otherwise](DashboardBuilder::prefix));
//! mount it at the prefix and below, beside the APIs, in any server. The
//! page is static: it holds no data and no secret, and reads everything
//! from the APIs with the bearer token a person signs in with (kept in the
//! browser's session storage, sent in an `Authorization` header, never in
//! a URL). Live changes come from `GET /api/events` read with `fetch`
//! streaming. It shows only the actions the signed-in role may take; the
//! APIs decide.
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles
//! and connections from the same origin only, no inline script or style,
//! `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`. The page renders every value from a
//! webhook as text.
//!
//! ```
//! # async fn demo() {
//! use hookroom::dashboard::Dashboard;
//! use tower::ServiceExt;
//!
//! let dashboard = Dashboard::builder().prefix("/ops").build();
//! let page = http::Request::get("/ops/").body(()).unwrap();
//! let response = dashboard.oneshot(page).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
//! # }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

/// Where a [`Dashboard`] serves its page unless told otherwise.
pub const DEFAULT_DASHBOARD_PREFIX: &str = "/dashboard";

/// The policy every answer carries: nothing but same-origin scripts,
/// styles, images and API calls; no framing, no plugins, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// The placeholder in the page for the API base URL.
const API_BASE_PLACEHOLDER: &str = "{{api_base}}";

/// The web page as a tower service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Dashboard {
    prefix: String,
    index: Bytes,
}

/// Builds a [`Dashboard`].
#[derive(Debug, Clone)]
pub struct DashboardBuilder {
    prefix: String,
    api_base: String,
}

impl Default for DashboardBuilder {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_DASHBOARD_PREFIX.to_owned(),
            api_base: String::new(),
        }
    }
}

impl DashboardBuilder {
    /// Serves the page at `prefix` (`/dashboard` by default; a trailing
    /// `/` is dropped, and `/` or the empty string serves it at the root).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// Where the page finds the APIs (`/api/...` below it): the same origin
    /// at its root by default (an empty base); a path such as `/hooks` when
    /// the APIs are mounted under one. The Content-Security-Policy allows
    /// the page's own origin only, so the base is a path, not another host.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The service.
    pub fn build(self) -> Dashboard {
        let index = INDEX_HTML.replace(API_BASE_PLACEHOLDER, &escape_attribute(&self.api_base));
        Dashboard {
            prefix: self.prefix,
            index: Bytes::from(index),
        }
    }
}

impl Default for Dashboard {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Dashboard {
    /// A builder with the defaults: served at [`DEFAULT_DASHBOARD_PREFIX`],
    /// the APIs at the same origin's root.
    pub fn builder() -> DashboardBuilder {
        DashboardBuilder::default()
    }

    /// The prefix the page is served at (empty for the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `path` is the page or one of its assets.
    pub fn serves_path(&self, path: &str) -> bool {
        path == self.prefix
            || path
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The answer to `method` on `path`.
    fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let Some(rest) = path.strip_prefix(&self.prefix) else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        if method != Method::GET && method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let (body, content_type) = match rest {
            // Relative asset links resolve below the prefix only from `prefix/`.
            "" => return redirect(&format!("{}/", self.prefix)),
            "/" | "/index.html" => (self.index.clone(), "text/html; charset=utf-8"),
            "/app.js" => (
                Bytes::from_static(APP_JS.as_bytes()),
                "text/javascript; charset=utf-8",
            ),
            "/app.css" => (
                Bytes::from_static(APP_CSS.as_bytes()),
                "text/css; charset=utf-8",
            ),
            "/icon.svg" => (Bytes::from_static(ICON_SVG.as_bytes()), "image/svg+xml"),
            _ => return plain(StatusCode::NOT_FOUND, "not found"),
        };
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        let mut response = Response::new(Full::new(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        // The assets change with the binary: revalidate rather than cache.
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        secure(response)
    }
}

impl<B> tower_service::Service<Request<B>> for Dashboard {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.answer(request.method(), request.uri().path())))
    }
}

/// Adds the security headers every answer carries.
fn secure(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    secure(response)
}

fn redirect(to: &str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::PERMANENT_REDIRECT, "moved");
    match HeaderValue::from_str(to) {
        Ok(location) => {
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        // A prefix that is not a header value cannot be redirected to.
        Err(_) => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Escapes `text` for a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
