//! [`VerifyLayer`] and [`Verify`]: signature checking in front of a handler
//! of your own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use tower_layer::Layer;
use tower_service::Service;

use super::ServiceBody;
use super::body::read_limited;
use super::error::IngestError;
use super::ingest::{DEFAULT_BODY_LIMIT, mark_sensitive};
use crate::verify::{Verification, Verifier};

/// Signature checking in front of a handler of your own: the middleware
/// reads the body (up to a limit), checks it with a
/// [`Verifier`], and hands the inner service the same request with the
/// buffered body and the [`Verification`] (which configured secret matched)
/// in its extensions. A request that fails gets the same JSON answers as
/// [`WebhookService`](super::WebhookService): `401` with the verifier's
/// stable code (`signature_mismatch`, `missing_header`, …), `413
/// payload_too_large`, `400 body_read_failed`; the inner service never sees
/// it.
///
/// ```
/// # use std::sync::Arc;
/// # use http::HeaderMap;
/// # use hookroom::verify::{Verification, Verifier, VerifyError};
/// # #[derive(Debug)] struct MyVerifier;
/// # impl Verifier for MyVerifier {
/// #     fn verify(&self, headers: &HeaderMap, _: &[u8]) -> Result<Verification, VerifyError> {
/// #         match headers.get("x-signature") {
/// #             Some(v) if v == "ok" => Ok(hookroom::verify::dangerous::assume_verified(0)),
/// #             _ => Err(VerifyError::SignatureMismatch),
/// #         }
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum::{Extension, Router, routing::post};
/// use bytes::Bytes;
/// use hookroom::service::VerifyLayer;
/// use tower::ServiceExt;
///
/// async fn handler(Extension(proof): Extension<Verification>, body: Bytes) -> String {
///     format!("{} verified bytes, secret #{}", body.len(), proof.key_index())
/// }
///
/// // Any `Verifier`: `GithubVerifier`, `StandardWebhooksVerifier`, your own.
/// let verifier: Arc<dyn Verifier> = Arc::new(MyVerifier);
/// let app = Router::new()
///     .route("/my-hook", post(handler))
///     .layer(VerifyLayer::new(verifier).body_limit(64 * 1024));
///
/// let signed = http::Request::post("/my-hook").header("x-signature", "ok");
/// let response = app.clone().oneshot(signed.body(axum::body::Body::from("{}")).unwrap()).await.unwrap();
/// assert_eq!(response.status(), 200);
///
/// let forged = http::Request::post("/my-hook").header("x-signature", "no");
/// let response = app.oneshot(forged.body(axum::body::Body::from("{}")).unwrap()).await.unwrap();
/// assert_eq!(response.status(), 401);
/// # }
/// ```
///
/// The layer of [`Verify`].
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Arc<dyn Verifier>,
    body_limit: usize,
}

impl VerifyLayer {
    /// Checks every request with `verifier`, bodies up to
    /// [`DEFAULT_BODY_LIMIT`].
    pub fn new(verifier: Arc<dyn Verifier>) -> Self {
        Self {
            verifier,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The largest accepted body in bytes; larger ones get `413`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = Verify<S>;

    fn layer(&self, inner: S) -> Verify<S> {
        Verify {
            inner,
            layer: self.clone(),
        }
    }
}

/// Verifies each request's signature before `S` sees it; see
/// [`VerifyLayer`].
///
/// `S` receives a `Request<Full<Bytes>>` (the verified bytes, exactly as
/// received) with the [`Verification`] in its extensions. The response body
/// is `Either<`[`ServiceBody`]` (a refusal), S's body>`.
#[derive(Debug, Clone)]
pub struct Verify<S> {
    inner: S,
    layer: VerifyLayer,
}

impl<S> Verify<S> {
    /// Wraps `inner`, checking with `verifier`.
    pub fn new(inner: S, verifier: Arc<dyn Verifier>) -> Self {
        VerifyLayer::new(verifier).layer(inner)
    }

    /// A layer checking with `verifier`.
    pub fn layer(verifier: Arc<dyn Verifier>) -> VerifyLayer {
        VerifyLayer::new(verifier)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The future of [`Verify`].
pub type VerifyFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, B, ResBody> Service<Request<B>> for Verify<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Either<ServiceBody, ResBody>>;
    type Error = S::Error;
    type Future = VerifyFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not known to be ready: call the one that is.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            mark_sensitive(&mut parts.headers);
            let checked = match read_limited(&parts.headers, body, layer.body_limit).await {
                Ok(body) => layer
                    .verifier
                    .verify(&parts.headers, &body)
                    .map(|proof| (body, proof))
                    .map_err(IngestError::from),
                Err(error) => Err(error),
            };
            match checked {
                Ok((body, proof)) => {
                    parts.extensions.insert::<Verification>(proof);
                    let response = inner
                        .call(Request::from_parts(parts, Full::new(body)))
                        .await?;
                    Ok(response.map(Either::Right))
                }
                Err(error) => {
                    tracing::debug!(%error, "webhook rejected");
                    Ok(error.to_response().map(Either::Left))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderMap;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::verify::VerifyError;

    /// Accepts `x-hub-signature-256: key-N` as a match of secret `N`, if the header
    /// reached it marked sensitive.
    #[derive(Debug)]
    struct KeyedVerifier;

    impl Verifier for KeyedVerifier {
        fn verify(&self, headers: &HeaderMap, _: &[u8]) -> Result<Verification, VerifyError> {
            let value = headers
                .get("x-hub-signature-256")
                .ok_or(VerifyError::MissingHeader {
                    header: "x-hub-signature-256",
                })?;
            assert!(value.is_sensitive());
            match value.to_str().ok().and_then(|v| v.strip_prefix("key-")) {
                Some(n) => Ok(Verification::new(n.parse().unwrap_or(0))),
                None => Err(VerifyError::SignatureMismatch),
            }
        }
    }

    fn request(signature: Option<&str>, body: &'static str) -> Request<Full<Bytes>> {
        let mut request = Request::post("/my-hook");
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    /// Answers `"<key index>:<body>"`, counting its calls.
    fn echo(
        calls: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                let index = request
                    .extensions()
                    .get::<Verification>()
                    .map(|p| p.key_index());
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let text = format!("{index:?}:{}", String::from_utf8_lossy(&body));
                Ok(Response::new(Full::new(Bytes::from(text))))
            }
        })
    }

    async fn send(calls: &Arc<AtomicUsize>, request: Request<Full<Bytes>>) -> (u16, String) {
        let service = VerifyLayer::new(Arc::new(KeyedVerifier))
            .body_limit(8)
            .layer(echo(Arc::clone(calls)));
        let response = service.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_verified_request_reaches_the_inner_service_with_its_body_and_key() {
        let calls = Arc::new(AtomicUsize::new(0));
        let answer = send(&calls, request(Some("key-1"), "{\"a\":1}")).await;
        assert_eq!(answer, (200, "Some(1):{\"a\":1}".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_request_gets_the_json_error_and_never_reaches_the_inner_service() {
        let calls = Arc::new(AtomicUsize::new(0));
        for (signature, body, status, code) in [
            (Some("forged"), "{}", 401, "signature_mismatch"),
            (None, "{}", 401, "missing_header"),
            (Some("key-0"), "123456789", 413, "payload_too_large"),
        ] {
            let (got, text) = send(&calls, request(signature, body)).await;
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!((got, json["error"]["code"].as_str()), (status, Some(code)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
