//! [`ApiError`]: every refusal of the Task API, and its one status mapping.

use http::{Response, StatusCode};
use serde::Serialize;

use super::body::ResponseBody;
use crate::api::task::{BodyError, refusal_code};
use crate::auth::{AuthError, Forbidden};
use crate::error_code::ErrorCode;
use crate::service::json_error::JsonError;
use crate::task::StoreError;

/// Why the Task API refused a request.
///
/// Each variant has a stable [`code`](ErrorCode::code) and one status
/// ([`ApiError::status`]). The body is
/// `{"error":{"code":"…","message":"…"}}`, with a `"field"` naming the body
/// field or query parameter at fault for the `400` answers about one.
/// Messages never carry bearer or claim tokens.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// No principal: no `Authorization: Bearer` header, an unknown or
    /// expired token (`401 unauthorized` / `401 token_expired`, with
    /// `WWW-Authenticate: Bearer`), or too many requests from the principal
    /// (`429 rate_limited`, with `Retry-After`).
    Auth(AuthError),
    /// The principal's role or rooms do not allow the operation
    /// (`403 forbidden`).
    Forbidden(Forbidden),
    /// No such endpoint (`404 not_found`).
    NotFound,
    /// The path exists, the method does not (`405 method_not_allowed`).
    MethodNotAllowed {
        /// The methods the path accepts, for the `Allow` header.
        allow: &'static str,
    },
    /// The body is larger than the limit (`413 payload_too_large`).
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read to its end (`400 body_read_failed`).
    BodyRead,
    /// The body is not a JSON object (`400 invalid_json`).
    InvalidJson {
        /// What the JSON parser said (position included).
        detail: String,
    },
    /// A required body field is absent (`400 missing_field`).
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A body field has the wrong type or an out-of-range value
    /// (`400 invalid_field`).
    InvalidField {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A query parameter is not valid (`400 invalid_query`).
    InvalidQuery {
        /// The parameter.
        parameter: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A path segment is not valid percent-encoded UTF-8 (`400 invalid_path`).
    InvalidPath,
    /// The `cursor` of a task list is not a task the store holds
    /// (`400 invalid_cursor`).
    InvalidCursor,
    /// The event routes are served only with an event hub
    /// (`404 events_not_configured`).
    EventsNotConfigured,
    /// The task store refused or failed. Status by variant:
    /// [`NotFound`](StoreError::NotFound) `404 task_not_found`,
    /// [`NotHeld`](StoreError::NotHeld) `409 not_held`,
    /// [`InvalidTransition`](StoreError::InvalidTransition)
    /// `409 invalid_transition`,
    /// [`NotClaimable`](StoreError::NotClaimable) `409 task_not_claimable`,
    /// anything else `503 store_unavailable`. The codes are the store
    /// error's own.
    Store(StoreError),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(e) => e.status(),
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::EventsNotConfigured => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead
            | Self::InvalidJson { .. }
            | Self::MissingField { .. }
            | Self::InvalidField { .. }
            | Self::InvalidQuery { .. }
            | Self::InvalidPath
            | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::Store(e) => match e {
                StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
                StoreError::NotHeld { .. }
                | StoreError::InvalidTransition { .. }
                | StoreError::NotClaimable { .. } => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The body field or query parameter at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field } | Self::InvalidField { field, .. } => Some(field),
            Self::InvalidQuery { parameter, .. } => Some(parameter),
            Self::InvalidCursor => Some("cursor"),
            _ => None,
        }
    }

    /// The JSON error response, with `WWW-Authenticate` on 401 and `Allow`
    /// on 405.
    pub fn to_response(&self) -> Response<ResponseBody> {
        let message = match self {
            // Backend details (paths, hosts) stay in the logs.
            Self::Store(StoreError::Backend { .. }) => {
                "the task store is unavailable; retry later".to_owned()
            }
            other => other.to_string(),
        };
        let error = JsonError::new(self.status(), self.code(), &message).detail(Detail {
            field: self.field(),
            task_id: match self {
                Self::Store(
                    StoreError::NotFound { id }
                    | StoreError::NotHeld { id }
                    | StoreError::InvalidTransition { id, .. }
                    | StoreError::NotClaimable { id, .. },
                ) => Some(id.as_str()),
                _ => None,
            },
            task_status: match self {
                Self::Store(StoreError::InvalidTransition { from, .. }) => Some(from.as_str()),
                _ => None,
            },
            operation: match self {
                Self::Store(StoreError::InvalidTransition { operation, .. }) => {
                    Some(operation.as_str())
                }
                _ => None,
            },
            refusal: match self {
                Self::Store(StoreError::NotClaimable { reason, .. }) => Some(refusal_code(*reason)),
                _ => None,
            },
        });
        match self {
            Self::Auth(AuthError::RateLimited { retry_after }) => error.retry_after(*retry_after),
            Self::Auth(_) => error.bearer_challenge(),
            Self::MethodNotAllowed { allow } => error.allow(allow),
            _ => error,
        }
        .into_response()
        .map(ResponseBody::from)
    }
}

impl ErrorCode for ApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyRead => "body_read_failed",
            Self::InvalidJson { .. } => "invalid_json",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidPath => "invalid_path",
            Self::InvalidCursor => "invalid_cursor",
            Self::EventsNotConfigured => "events_not_configured",
            Self::Store(e) => e.code(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auth(e) => e.fmt(f),
            Self::Forbidden(e) => e.fmt(f),
            Self::NotFound => f.write_str("no such endpoint"),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body exceeds the limit of {limit} bytes")
            }
            Self::BodyRead => f.write_str("the request body could not be read"),
            Self::InvalidJson { detail } => write!(f, "the body is not a JSON object: {detail}"),
            Self::MissingField { field } => write!(f, "field `{field}` is required"),
            Self::InvalidField { field, expected } => {
                write!(f, "field `{field}` must be {expected}")
            }
            Self::InvalidQuery {
                parameter,
                expected,
            } => write!(f, "query parameter `{parameter}` must be {expected}"),
            Self::InvalidPath => f.write_str("a path segment is not valid percent-encoded UTF-8"),
            Self::InvalidCursor => {
                f.write_str("`cursor` is not a task of this store; start again without it")
            }
            Self::EventsNotConfigured => f.write_str("this server publishes no task events"),
            Self::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::InvalidJson { detail } => Self::InvalidJson { detail },
            BodyError::MissingField { field } => Self::MissingField { field },
            BodyError::InvalidField { field, expected } => Self::InvalidField { field, expected },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The Task API's fields beside `code` and `message`: what a client needs
/// to act on a refusal without parsing the message.
#[derive(Serialize)]
struct Detail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'static str>,
}
