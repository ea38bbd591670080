//! [`IngestError`]: every way a webhook request can be refused, and the one
//! place that maps each to an HTTP status.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use super::ServiceBody;
use super::json_error::JsonError;
use crate::error_code::ErrorCode;
use crate::source::ParseError;
use crate::task::StoreError;
use crate::verify::VerifyError;

/// Why a service here refused a request: the ingest service, the admin
/// answers (`/operations`, `/health`'s detail), [`VerifyLayer`](super::VerifyLayer).
///
/// Each variant has a stable [`code`](ErrorCode::code) and exactly one HTTP
/// status, given by [`IngestError::status`]. Messages carry header and field
/// names, never header values, secrets or signatures.
#[derive(Debug)]
#[non_exhaustive]
pub enum IngestError {
    /// The path is not one this service serves (`404 not_found`).
    NotFound,
    /// The webhook service was asked for a path that names no source: it
    /// serves `{prefix}/webhook/{source}`, or one source at any path through
    /// `WebhookService::for_source` (`404 not_found`, with that hint).
    NoSourceInPath {
        /// The paths the service does serve, e.g. `/hooks/webhook/{source}`.
        serves: String,
    },
    /// The path is a webhook path but no source has that name (`404 unknown_source`).
    UnknownSource,
    /// A method other than the ones allowed (`405 method_not_allowed`).
    MethodNotAllowed {
        /// The methods the path accepts, for the `Allow` header.
        allow: &'static str,
    },
    /// The client address is not in the source's allowlist, or could not be
    /// determined while an allowlist is configured (`403 address_not_allowed`).
    AddressNotAllowed,
    /// The source's rate limit is exhausted (`429 rate_limited`).
    RateLimited {
        /// When a request would next be admitted.
        retry_after: Duration,
    },
    /// The body is larger than the limit (`413 payload_too_large`).
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body could not be read to its end (`400 body_read_failed`).
    BodyRead,
    /// The signature check failed (`401`, code from [`VerifyError`]).
    Verify(VerifyError),
    /// The verified body could not be parsed (`400`, code from [`ParseError`]).
    Parse(ParseError),
    /// The task store did not take the task; nothing was acknowledged
    /// (`503 store_unavailable`).
    Store(StoreError),
    /// An admin answer without a valid admin bearer token
    /// (`401 unauthorized`, with `WWW-Authenticate: Bearer`).
    Unauthorized,
    /// An admin answer while no admin token is configured
    /// (`403 admin_not_configured`).
    AdminNotConfigured,
    /// The request was not received and answered in time
    /// (`408 request_timeout`); for servers that bound a request's time.
    RequestTimeout,
}

impl IngestError {
    /// The HTTP status of this error: the only mapping from errors to statuses
    /// in the service.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::NoSourceInPath { .. } | Self::UnknownSource => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::AddressNotAllowed => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead | Self::Parse(_) => StatusCode::BAD_REQUEST,
            Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AdminNotConfigured => StatusCode::FORBIDDEN,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The JSON error response: `{"error":{"code":"…","message":"…"}}`, with
    /// `Allow` on 405, `Retry-After` on 429, `WWW-Authenticate` on 401 for
    /// an admin token and `Connection: close` on 408.
    pub fn to_response(&self) -> Response<ServiceBody> {
        self.to_response_for(None)
    }

    /// The JSON error response, with `request_id` in the body (and the
    /// `x-request-id` header) so a caller can quote it when asking why.
    pub fn to_response_for(&self, request_id: Option<&str>) -> Response<ServiceBody> {
        let message = match self {
            // The store's own message may name backend details (paths, hosts);
            // the caller only needs to know to retry.
            Self::Store(_) => "the task store is unavailable; the delivery was not accepted".into(),
            other => other.to_string(),
        };
        let error = JsonError::new(self.status(), self.code(), &message).request_id(request_id);
        match self {
            Self::MethodNotAllowed { allow } => error.allow(allow),
            Self::RateLimited { retry_after } => error.retry_after(*retry_after),
            Self::Unauthorized => error.bearer_challenge(),
            Self::RequestTimeout => error.close(),
            _ => error,
        }
        .into_response()
    }
}

impl ErrorCode for IngestError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound | Self::NoSourceInPath { .. } => "not_found",
            Self::UnknownSource => "unknown_source",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::AddressNotAllowed => "address_not_allowed",
            Self::RateLimited { .. } => "rate_limited",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyRead => "body_read_failed",
            Self::Verify(e) => e.code(),
            Self::Parse(e) => e.code(),
            Self::Store(_) => "store_unavailable",
            Self::Unauthorized => "unauthorized",
            Self::AdminNotConfigured => "admin_not_configured",
            Self::RequestTimeout => "request_timeout",
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such endpoint"),
            Self::NoSourceInPath { serves } => write!(
                f,
                "no webhook source in this path: this service serves {serves}; \
                 to serve one source at a path of your choosing, mount \
                 WebhookService::for_source(name) there"
            ),
            Self::UnknownSource => f.write_str("no webhook source is configured under this name"),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::AddressNotAllowed => {
                f.write_str("the client address is not allowed for this source")
            }
            Self::RateLimited { .. } => f.write_str("rate limit exceeded for this source"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body exceeds the limit of {limit} bytes")
            }
            Self::BodyRead => f.write_str("the request body could not be read"),
            Self::Verify(e) => write!(f, "signature verification failed: {e}"),
            Self::Parse(e) => e.fmt(f),
            Self::Store(e) => write!(f, "task store unavailable: {e}"),
            Self::Unauthorized => f.write_str("a valid admin bearer token is required"),
            Self::AdminNotConfigured => {
                f.write_str("no admin token is configured; admin answers are disabled")
            }
            Self::RequestTimeout => f.write_str("the request was not received in time"),
        }
    }
}

impl std::error::Error for IngestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Verify(e) => Some(e),
            Self::Parse(e) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<VerifyError> for IngestError {
    fn from(e: VerifyError) -> Self {
        Self::Verify(e)
    }
}

impl From<ParseError> for IngestError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Response<ServiceBody> {
    // Serializing our own plain structs cannot fail; fall back to an empty
    // object rather than panicking if it ever did.
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(ServiceBody::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn all() -> Vec<IngestError> {
        vec![
            IngestError::NotFound,
            IngestError::NoSourceInPath {
                serves: "/hooks/webhook/{source}".into(),
            },
            IngestError::UnknownSource,
            IngestError::MethodNotAllowed { allow: "POST" },
            IngestError::AddressNotAllowed,
            IngestError::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            IngestError::PayloadTooLarge { limit: 10 },
            IngestError::BodyRead,
            IngestError::Verify(VerifyError::SignatureMismatch),
            IngestError::Parse(ParseError::MissingField {
                field: "/action".into(),
            }),
            IngestError::Unauthorized,
            IngestError::AdminNotConfigured,
            IngestError::RequestTimeout,
            IngestError::Store(StoreError::Backend {
                store: "test",
                source: "disk on fire at /secret/path".into(),
            }),
        ]
    }

    #[test]
    fn every_variant_formats_and_has_a_code() {
        for e in all() {
            assert!(!format!("{e:?}").is_empty());
            assert!(!e.to_string().is_empty());
            assert!(
                e.code()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[test]
    fn statuses_follow_the_design_table() {
        let statuses: Vec<u16> = all().iter().map(|e| e.status().as_u16()).collect();
        assert_eq!(
            statuses,
            [
                404, 404, 404, 405, 403, 429, 413, 400, 401, 400, 401, 403, 408, 503
            ]
        );
    }

    #[tokio::test]
    async fn response_is_json_with_code_and_headers() {
        let r = IngestError::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .to_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let r = IngestError::MethodNotAllowed { allow: "POST" }.to_response();
        assert_eq!(r.headers()[header::ALLOW], "POST");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed");
    }

    #[tokio::test]
    async fn store_error_details_stay_out_of_the_body() {
        let r = all().pop().unwrap().to_response();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("/secret/path"), "{text}");
        assert!(text.contains("store_unavailable"));
    }
}
