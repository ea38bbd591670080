//! Step 3 of the data flow: turning a verified request into an [`Event`].
//!
//! One module per provider; each implements [`Source`]:
//!
//! | source | event name | delivery id |
//! | --- | --- | --- |
//! | [`GithubSource`] | `{X-GitHub-Event}.{action}` | `X-GitHub-Delivery` |
//! | [`SlackSource`] | inner `event.type`; `slash_command.{cmd}`; interaction `type` | `event_id` / `trigger_id` |
//! | [`JiraSource`] | `webhookEvent` without `jira:` | `X-Atlassian-Webhook-Identifier` |
//! | [`HuggingFaceSource`] | `{event.scope}.{event.action}` | configured header, else body SHA-256 |
//! | [`GenericSource`] | configurable header / JSON pointer | configurable, else body SHA-256 |
//!
//! Parsers read only the fields they need through small borrowed structs;
//! the rest of the body is skipped, never built into a JSON tree, and the raw
//! bytes become the event payload untouched.

mod generic;
mod github;
mod huggingface;
mod jira;
pub(crate) mod json;
mod slack;

pub use generic::{GENERIC_FALLBACK_EVENT, GenericSource, InvalidPointer, JsonPointer, Locator};
pub use github::GithubSource;
pub use huggingface::HuggingFaceSource;
pub use jira::JiraSource;
pub use slack::SlackSource;

use bytes::Bytes;
use http::HeaderMap;

use crate::error_code::ErrorCode;
use crate::event::{Event, Verified};
use crate::verify::Verification;

/// What a source parser made of a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A delivery to route and store.
    Event(Verified<Event>),
    /// A handshake to answer directly with this body and no task (Slack's
    /// `url_verification` challenge).
    Challenge(String),
}

/// Parses a provider's verified request into an [`Event`].
///
/// # Contract
/// Never panics on any input: a missing or wrongly-typed field is a
/// [`ParseError`]. `body` is the raw body; the resulting event keeps it as its
/// payload without re-serializing.
pub trait Source: std::fmt::Debug + Send + Sync + 'static {
    /// Parses one request that `proof` says was verified. `source` is the name
    /// the request arrived on (`/webhook/{source}`).
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError>;
}

/// Why a verified request could not be parsed into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is not valid JSON (or not a valid form body).
    InvalidBody {
        /// What the parser said, without echoing the body.
        reason: String,
    },
    /// A required header is absent or not valid text.
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A required field is absent or has the wrong type.
    MissingField {
        /// A JSON-pointer-like path to the field, e.g. `/pull_request/number`.
        field: String,
    },
}

impl ErrorCode for ParseError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidBody { .. } => "invalid_body",
            Self::MissingHeader { .. } => "missing_event_header",
            Self::MissingField { .. } => "missing_field",
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidBody { reason } => write!(f, "invalid body: {reason}"),
            Self::MissingHeader { header } => write!(f, "missing header `{header}`"),
            Self::MissingField { field } => write!(f, "missing or mistyped field `{field}`"),
        }
    }
}

impl std::error::Error for ParseError {}
