//! How the Task API's answers become `StoreError`s, and whether a retry is safe.

use http::StatusCode;
use serde::de::DeserializeOwned;

use super::{ClaimRequest, Claimed, StoreError, TaskId};
use crate::api::task::{ClaimBody, ClaimResponse, operation_from_str, refusal_from_code};
use crate::lifecycle::JobStatus;

use super::HTTP_STORE;

/// Why a request of an [`HttpTaskStore`](super::HttpTaskStore) failed, as the source of a
/// [`StoreError::Backend`]. Never carries the bearer token or claim tokens.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpStoreError {
    /// The builder's URL or token is not usable.
    InvalidUrl {
        /// What is wrong.
        reason: &'static str,
    },
    /// No connection could be made: the request was not sent, a retry is
    /// safe.
    Connect {
        /// The connector's error.
        detail: String,
    },
    /// The TLS handshake failed (e.g. the server's certificate is not
    /// trusted by the store's roots), or the TLS settings are unusable.
    /// Nothing was sent, so a retry is safe, but it fails the same way
    /// until the trust settings or the server's certificate change.
    Tls {
        /// What rustls said.
        detail: String,
    },
    /// No whole answer within the timeout.
    Timeout {
        /// Whether the operation changes nothing (a read), so that a retry
        /// is safe.
        idempotent: bool,
    },
    /// The connection failed after the request may have been sent.
    Transport {
        /// The client's error.
        detail: String,
        /// Whether the operation changes nothing (a read).
        idempotent: bool,
    },
    /// The server answered with an error that is not a task store refusal
    /// (e.g. `401`, `403`, `400`, or `503 store_unavailable`).
    Status {
        /// The HTTP status.
        status: u16,
        /// The error body's `code`, if there was one.
        code: Option<String>,
        /// The error body's `message`, or a note about the body.
        message: String,
        /// Whether the operation changes nothing (a read).
        idempotent: bool,
    },
    /// The answer's body is longer than the store's
    /// [`max_response_bytes`](super::HttpTaskStoreBuilder::max_response_bytes);
    /// reading stopped there. The same request gets the same answer.
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
        /// Whether the operation changes nothing (a read).
        idempotent: bool,
    },
    /// An event of a room's event stream is longer than the store's
    /// [`max_event_bytes`](super::HttpTaskStoreBuilder::max_event_bytes):
    /// `watch` skipped it.
    EventTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A success answer whose body is not what the Task API sends.
    Decode {
        /// What the JSON parser said.
        detail: String,
    },
}

impl HttpStoreError {
    /// Whether sending the same request again cannot apply a change twice:
    /// the request was not sent, or it changes nothing. A `4xx` status other
    /// than `408`/`429` will fail again the same way.
    pub fn retry_safe(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Tls { .. } => true,
            Self::Timeout { idempotent } | Self::Transport { idempotent, .. } => *idempotent,
            Self::Status {
                status, idempotent, ..
            } => {
                // 503 is the server's store failing: a change may have been
                // applied before it failed.
                *idempotent && (*status >= 500 || *status == 408 || *status == 429)
            }
            Self::InvalidUrl { .. }
            | Self::Decode { .. }
            | Self::ResponseTooLarge { .. }
            | Self::EventTooLarge { .. } => false,
        }
    }

    fn retry_note(&self) -> &'static str {
        if matches!(self, Self::Tls { .. }) {
            "nothing was sent, so a retry is safe, but it fails the same way until the TLS trust settings change"
        } else if self.retry_safe() {
            "a retry is safe"
        } else if matches!(
            self,
            Self::InvalidUrl { .. } | Self::Decode { .. } | Self::EventTooLarge { .. }
        ) || matches!(
            self,
            Self::ResponseTooLarge {
                idempotent: true,
                ..
            }
        ) || matches!(self, Self::Status { status, .. } if *status < 500 && *status != 408 && *status != 429)
        {
            "a retry would fail the same way"
        } else {
            "the request may have been applied: read the task before retrying"
        }
    }
}

impl std::fmt::Display for HttpStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let note = self.retry_note();
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid Task API base URL: {reason}"),
            Self::Connect { detail } => {
                write!(f, "could not connect to the Task API ({detail}); {note}")
            }
            Self::Tls { detail } => {
                write!(f, "TLS with the Task API failed ({detail}); {note}")
            }
            Self::Timeout { .. } => write!(f, "the Task API did not answer in time; {note}"),
            Self::Transport { detail, .. } => {
                write!(
                    f,
                    "the connection to the Task API failed ({detail}); {note}"
                )
            }
            Self::Status {
                status,
                code,
                message,
                ..
            } => match code {
                Some(code) => write!(
                    f,
                    "the Task API answered {status} {code}: {message}; {note}"
                ),
                None => write!(f, "the Task API answered {status}: {message}; {note}"),
            },
            Self::ResponseTooLarge { limit, .. } => write!(
                f,
                "the Task API's answer is larger than the limit of {limit} bytes; {note}"
            ),
            Self::EventTooLarge { limit } => write!(
                f,
                "an event of the Task API's event stream is larger than the limit of {limit} bytes and was skipped"
            ),
            Self::Decode { detail } => {
                write!(
                    f,
                    "the Task API's answer could not be read ({detail}); {note}"
                )
            }
        }
    }
}

impl std::error::Error for HttpStoreError {}

pub(super) fn backend(error: HttpStoreError) -> StoreError {
    StoreError::Backend {
        store: HTTP_STORE,
        source: Box::new(error),
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
pub(super) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(serde::Deserialize)]
pub(super) struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(serde::Deserialize)]
pub(super) struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    task_status: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// Whether sending a call twice has the effect of sending it once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// A read, or an idempotent write (`insert`).
    Read,
    /// A change.
    Write,
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        backend(HttpStoreError::Decode {
            detail: e.to_string(),
        })
    })
}

/// The [`StoreError`] of an error answer.
pub(super) fn refusal(
    status: StatusCode,
    bytes: &[u8],
    id: Option<&TaskId>,
    effect: Effect,
) -> StoreError {
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(bytes) else {
        return backend(HttpStoreError::Status {
            status: status.as_u16(),
            code: None,
            message: "the body is not a Task API error".into(),
            idempotent: effect == Effect::Read,
        });
    };
    let task = || {
        error
            .task_id
            .as_deref()
            .map(TaskId::from)
            .or_else(|| id.cloned())
    };
    let rebuilt = match error.code.as_str() {
        "task_not_found" => task().map(|id| StoreError::NotFound { id }),
        "not_held" => task().map(|id| StoreError::NotHeld { id }),
        "invalid_transition" => {
            let from = error
                .task_status
                .as_deref()
                .and_then(|s| s.parse::<JobStatus>().ok());
            let operation = error.operation.as_deref().and_then(operation_from_str);
            match (task(), from, operation) {
                (Some(id), Some(from), Some(operation)) => Some(StoreError::InvalidTransition {
                    id,
                    from,
                    operation,
                }),
                _ => None,
            }
        }
        "task_not_claimable" => {
            match (task(), error.refusal.as_deref().and_then(refusal_from_code)) {
                (Some(id), Some(reason)) => Some(StoreError::NotClaimable { id, reason }),
                _ => None,
            }
        }
        _ => None,
    };
    rebuilt.unwrap_or_else(|| {
        backend(HttpStoreError::Status {
            status: status.as_u16(),
            code: Some(error.code),
            message: error.message,
            idempotent: effect == Effect::Read,
        })
    })
}

pub(super) fn claim_body(request: &ClaimRequest) -> ClaimBody {
    ClaimBody {
        agent_id: request.agent.clone(),
        capabilities: request.capabilities.clone(),
        // The API counts whole seconds, at least one.
        lease_seconds: request.lease.as_secs().max(1),
        wait_seconds: None,
    }
}

pub(super) fn claimed(answer: ClaimResponse) -> Claimed {
    Claimed {
        task: answer.task,
        token: answer.claim_token,
    }
}
