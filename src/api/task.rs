//! The Task API's request and response bodies, for its server
//! ([`TaskApi`](crate::service::TaskApi)) and its clients.
//!
//! Requests are JSON objects; fields not listed are ignored. The server
//! reads each field itself, so a refusal names the field
//! ([`BodyError::MissingField`], [`BodyError::InvalidField`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error_code::ErrorCode;
use crate::task::{ClaimRefusal, ClaimToken, Task, TaskId, TaskOperation};

/// The longest `agent_id` accepted, in bytes.
pub const MAX_AGENT_ID_LEN: usize = 256;
/// The most capabilities one agent may declare.
pub const MAX_CAPABILITIES: usize = 64;
/// The longest lease a claim or heartbeat may ask for, in seconds (one day).
pub const MAX_LEASE_SECONDS: u64 = 86_400;
/// The longest a room claim may wait for work, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 30;
/// The most tasks one page of a task list holds (`limit` is at most this).
pub const MAX_PAGE_LIMIT: usize = 500;

/// Why a request body was refused: the `400` answers about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not a JSON object (`invalid_json`).
    InvalidJson {
        /// What the JSON parser said (position included).
        detail: String,
    },
    /// A required field is absent (`missing_field`).
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong type or an out-of-range value
    /// (`invalid_field`).
    InvalidField {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

impl BodyError {
    /// The field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { field } | Self::InvalidField { field, .. } => Some(field),
            Self::InvalidJson { .. } => None,
        }
    }
}

impl ErrorCode for BodyError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "invalid_json",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidJson { detail } => write!(f, "the body is not a JSON object: {detail}"),
            Self::MissingField { field } => write!(f, "field `{field}` is required"),
            Self::InvalidField { field, expected } => {
                write!(f, "field `{field}` must be {expected}")
            }
        }
    }
}

impl std::error::Error for BodyError {}

/// `POST /api/rooms/{room}/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The agent's name (1 to [`MAX_AGENT_ID_LEN`] bytes).
    pub agent_id: String,
    /// What it can do (at most [`MAX_CAPABILITIES`]; default none).
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `POST /api/rooms/{room}/claim` and `POST /api/tasks/{id}/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimBody {
    /// The agent's name (1 to [`MAX_AGENT_ID_LEN`] bytes).
    pub agent_id: String,
    /// What it can do (default none).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Lease length, 1 to [`MAX_LEASE_SECONDS`].
    pub lease_seconds: u64,
    /// Room claims only: how long to wait for work when none is claimable
    /// (0 to [`MAX_WAIT_SECONDS`]; default 0, answer at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
}

/// `POST /api/tasks/{id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatBody {
    /// The claim's token.
    pub claim_token: ClaimToken,
    /// New lease length from now, 1 to [`MAX_LEASE_SECONDS`].
    pub lease_seconds: u64,
}

/// `POST /api/tasks/{id}/done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneBody {
    /// The claim's token.
    pub claim_token: ClaimToken,
    /// The result, any JSON (default none).
    #[serde(default)]
    pub result: Option<Value>,
}

/// `POST /api/tasks/{id}/fail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailBody {
    /// The claim's token.
    pub claim_token: ClaimToken,
    /// Why.
    pub reason: String,
    /// `true`: back to `PENDING` for another attempt; `false` (default):
    /// `FAILED` for good.
    #[serde(default)]
    pub retry: bool,
    /// With `retry`: seconds before the task is claimable again (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

/// `POST /api/tasks/{id}/release` and `POST /api/tasks/{id}/take_input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBody {
    /// The claim's token.
    pub claim_token: ClaimToken,
}

/// `POST /api/tasks/{id}/ask`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskBody {
    /// The claim's token.
    pub claim_token: ClaimToken,
    /// What the agent needs to know.
    pub prompt: String,
}

/// `POST /api/tasks/{id}/input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputBody {
    /// The answer, any JSON (required; `null` counts).
    pub input: Value,
}

/// `200` answer of both claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResponse {
    /// The task, `RUNNING`.
    pub task: Task,
    /// The fencing token for every later call on this claim.
    pub claim_token: ClaimToken,
    /// When the lease runs out unless renewed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
}

/// Answer of `GET /api/tasks/{id}` and of the calls that change a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResponse {
    /// The task as it is now.
    pub task: Task,
}

/// Answer of `POST /api/tasks/{id}/take_input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputResponse {
    /// The provided input (the task is `RUNNING` again), or `null` while
    /// none has arrived.
    pub input: Option<Value>,
}

/// Answer of `GET /api/rooms/{room}/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPage {
    /// Newest first.
    pub tasks: Vec<Task>,
    /// Pass as `cursor` for the next page; `null` when this page was not
    /// full (a full last page leads to one empty page).
    pub next_cursor: Option<TaskId>,
}

/// Answer of `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomsResponse {
    /// Every room holding a task or a joined agent, by name.
    pub rooms: Vec<RoomSummary>,
}

/// One room in [`RoomsResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room's name.
    pub room: String,
    /// Its tasks per status.
    pub counts: StatusCounts,
    /// Age in seconds of its oldest `PENDING` task, if any.
    pub oldest_pending_age_seconds: Option<u64>,
    /// Its joined agents, by id.
    pub agents: Vec<AgentInfo>,
}

/// Tasks per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// `PENDING`.
    pub pending: u64,
    /// `RUNNING`.
    pub running: u64,
    /// `NEEDS_INPUT`.
    pub needs_input: u64,
    /// `DONE`.
    pub done: u64,
    /// `FAILED`.
    pub failed: u64,
}

/// A joined agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its name.
    pub agent_id: String,
    /// What it declared it can do (at its last join or room claim).
    pub capabilities: Vec<String>,
    /// Its last join, claim or heartbeat in the room.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// Answer of `POST /api/rooms/{room}/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The room.
    pub room: String,
    /// The membership as recorded.
    pub agent: AgentInfo,
    /// Seconds of silence after which the membership lapses.
    pub expires_after_seconds: u64,
}

/// `POST /api/rooms/{room}/tasks` (admin token): stores a task as an
/// ingested webhook would, for tools and remote stores
/// ([`HttpTaskStore`](crate::http::HttpTaskStore)). The room is the path's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsertBody {
    /// One-line title.
    pub title: String,
    /// Longer description (default empty).
    #[serde(default)]
    pub description: String,
    /// 1 is claimed before 2 (default 0).
    #[serde(default)]
    pub priority: u32,
    /// Source name.
    pub source: String,
    /// Provider event name.
    pub source_event: String,
    /// Link to what the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Provider delivery id; `(source, delivery_id)` is unique.
    pub delivery_id: String,
    /// The body: embedded JSON, or a string for a body that is not JSON.
    pub payload: crate::task::Payload,
    /// Capabilities an agent must declare to claim the task.
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// Unclaimed lifetime in seconds (default: never expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl InsertBody {
    /// The body of `task`, whose room goes in the path.
    pub fn from_new_task(task: &crate::task::NewTask) -> Self {
        Self {
            title: task.title.clone(),
            description: task.description.clone(),
            priority: task.priority,
            source: task.source.clone(),
            source_event: task.source_event.clone(),
            source_url: task.source_url.clone(),
            delivery_id: task.delivery_id.clone(),
            payload: task.payload.clone(),
            required_capabilities: task.required_capabilities.clone(),
            ttl_seconds: task.ttl.map(|ttl| ttl.as_secs()),
        }
    }

    /// The task to store in `room`.
    pub fn into_new_task(self, room: String) -> crate::task::NewTask {
        crate::task::NewTask {
            room,
            title: self.title,
            description: self.description,
            priority: self.priority,
            source: self.source,
            source_event: self.source_event,
            source_url: self.source_url,
            delivery_id: self.delivery_id,
            payload: self.payload,
            required_capabilities: self.required_capabilities,
            ttl: self.ttl_seconds.map(std::time::Duration::from_secs),
        }
    }

    /// Reads a request body.
    ///
    /// # Errors
    /// [`BodyError::InvalidJson`], its detail naming the field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        object(body)?;
        serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson {
            detail: e.to_string(),
        })
    }
}

/// Answer of `POST /api/rooms/{room}/tasks`: `201` when stored, `200` for a
/// duplicate delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertResponse {
    /// The stored task's id (the first one's, for a duplicate).
    pub id: TaskId,
    /// `true` when `(source, delivery_id)` was already stored.
    pub duplicate: bool,
}

/// Answer of `POST /api/tasks/expire` (admin token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiredResponse {
    /// The `PENDING` tasks past their TTL, now `FAILED` with reason `expired`.
    pub tasks: Vec<Task>,
}

/// The error body's `refusal` for a [`ClaimRefusal`].
pub fn refusal_code(refusal: ClaimRefusal) -> &'static str {
    match refusal {
        ClaimRefusal::Held => "held",
        ClaimRefusal::NotYetDue => "not_yet_due",
        ClaimRefusal::Expired => "expired",
        ClaimRefusal::Finished => "finished",
        ClaimRefusal::MissingCapabilities => "missing_capabilities",
    }
}

/// The [`ClaimRefusal`] of an error body's `refusal`, if known.
pub fn refusal_from_code(code: &str) -> Option<ClaimRefusal> {
    Some(match code {
        "held" => ClaimRefusal::Held,
        "not_yet_due" => ClaimRefusal::NotYetDue,
        "expired" => ClaimRefusal::Expired,
        "finished" => ClaimRefusal::Finished,
        "missing_capabilities" => ClaimRefusal::MissingCapabilities,
        _ => return None,
    })
}

/// The [`TaskOperation`] of an error body's `operation` (its
/// [`as_str`](TaskOperation::as_str)), if known.
pub fn operation_from_str(name: &str) -> Option<TaskOperation> {
    Some(match name {
        "claim" => TaskOperation::Claim,
        "heartbeat" => TaskOperation::Heartbeat,
        "complete" => TaskOperation::Complete,
        "fail" => TaskOperation::Fail,
        "release" => TaskOperation::Release,
        "request_input" => TaskOperation::RequestInput,
        "provide_input" => TaskOperation::ProvideInput,
        "take_input" => TaskOperation::TakeInput,
        "expire" => TaskOperation::Expire,
        _ => return None,
    })
}

// ---- reading request bodies, field by field ----

type Object = Map<String, Value>;

fn object(body: &[u8]) -> Result<Object, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::InvalidJson {
            detail: "expected an object".into(),
        }),
        Err(e) => Err(BodyError::InvalidJson {
            detail: e.to_string(),
        }),
    }
}

fn present<'a>(map: &'a Object, field: &'static str) -> Option<&'a Value> {
    map.get(field).filter(|v| !v.is_null())
}

fn string(map: &Object, field: &'static str, expected: &'static str) -> Result<String, BodyError> {
    match present(map, field) {
        None => Err(BodyError::MissingField { field }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(BodyError::InvalidField { field, expected }),
    }
}

fn agent_id(map: &Object) -> Result<String, BodyError> {
    const EXPECTED: &str = "a non-empty string of at most 256 bytes";
    let id = string(map, "agent_id", EXPECTED)?;
    if id.trim().is_empty() || id.len() > MAX_AGENT_ID_LEN {
        return Err(BodyError::InvalidField {
            field: "agent_id",
            expected: EXPECTED,
        });
    }
    Ok(id)
}

fn capabilities(map: &Object) -> Result<Vec<String>, BodyError> {
    const EXPECTED: &str = "a list of at most 64 strings";
    let invalid = BodyError::InvalidField {
        field: "capabilities",
        expected: EXPECTED,
    };
    match present(map, "capabilities") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_CAPABILITIES => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(invalid),
        Some(_) => Err(invalid),
    }
}

fn seconds(
    map: &Object,
    field: &'static str,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<Option<u64>, BodyError> {
    match present(map, field) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or(BodyError::InvalidField { field, expected }),
    }
}

fn lease_seconds(map: &Object) -> Result<u64, BodyError> {
    seconds(
        map,
        "lease_seconds",
        1..=MAX_LEASE_SECONDS,
        "a whole number of seconds from 1 to 86400",
    )?
    .ok_or(BodyError::MissingField {
        field: "lease_seconds",
    })
}

fn claim_token(map: &Object) -> Result<ClaimToken, BodyError> {
    const EXPECTED: &str = "a non-empty string";
    let token = string(map, "claim_token", EXPECTED)?;
    if token.is_empty() {
        return Err(BodyError::InvalidField {
            field: "claim_token",
            expected: EXPECTED,
        });
    }
    Ok(ClaimToken::new(token))
}

impl JoinRequest {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        Ok(Self {
            agent_id: agent_id(&map)?,
            capabilities: capabilities(&map)?,
        })
    }
}

impl ClaimBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        Ok(Self {
            agent_id: agent_id(&map)?,
            capabilities: capabilities(&map)?,
            lease_seconds: lease_seconds(&map)?,
            wait_seconds: seconds(
                &map,
                "wait_seconds",
                0..=MAX_WAIT_SECONDS,
                "a whole number of seconds from 0 to 30",
            )?,
        })
    }
}

impl HeartbeatBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        Ok(Self {
            claim_token: claim_token(&map)?,
            lease_seconds: lease_seconds(&map)?,
        })
    }
}

impl DoneBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let mut map = object(body)?;
        Ok(Self {
            claim_token: claim_token(&map)?,
            result: map.remove("result").filter(|v| !v.is_null()),
        })
    }
}

impl FailBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        let retry = match present(&map, "retry") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(BodyError::InvalidField {
                    field: "retry",
                    expected: "true or false",
                });
            }
        };
        Ok(Self {
            claim_token: claim_token(&map)?,
            reason: string(&map, "reason", "a string")?,
            retry,
            retry_after_seconds: seconds(
                &map,
                "retry_after_seconds",
                0..=MAX_LEASE_SECONDS,
                "a whole number of seconds from 0 to 86400",
            )?,
        })
    }
}

impl TokenBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        Ok(Self {
            claim_token: claim_token(&map)?,
        })
    }
}

impl AskBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let map = object(body)?;
        Ok(Self {
            claim_token: claim_token(&map)?,
            prompt: string(&map, "prompt", "a string")?,
        })
    }
}

impl InputBody {
    /// Reads a request body.
    ///
    /// # Errors
    /// The [`BodyError`] naming the first field at fault.
    pub fn from_json(body: &[u8]) -> Result<Self, BodyError> {
        let mut map = object(body)?;
        Ok(Self {
            input: map
                .remove("input")
                .ok_or(BodyError::MissingField { field: "input" })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: BodyError) -> (&'static str, Option<&'static str>) {
        (e.code(), e.field())
    }

    #[test]
    fn refusals_name_the_field() {
        let claim = |s: &str| ClaimBody::from_json(s.as_bytes()).map_err(field_of);
        assert_eq!(
            claim(r#"{"lease_seconds":30}"#),
            Err(("missing_field", Some("agent_id")))
        );
        assert_eq!(
            claim(r#"{"agent_id":"a","lease_seconds":"30"}"#),
            Err(("invalid_field", Some("lease_seconds")))
        );
        assert_eq!(
            claim(r#"{"agent_id":"a","lease_seconds":0}"#),
            Err(("invalid_field", Some("lease_seconds")))
        );
        assert_eq!(
            claim(r#"{"agent_id":"a","lease_seconds":5,"wait_seconds":31}"#),
            Err(("invalid_field", Some("wait_seconds")))
        );
        assert_eq!(
            claim(r#"{"agent_id":"a","lease_seconds":5,"capabilities":[1]}"#),
            Err(("invalid_field", Some("capabilities")))
        );
        assert_eq!(
            claim(r#"{"agent_id":" ","lease_seconds":5}"#),
            Err(("invalid_field", Some("agent_id")))
        );
        assert_eq!(claim("[1]"), Err(("invalid_json", None)));
        assert_eq!(claim("{"), Err(("invalid_json", None)));
        assert_eq!(
            claim(r#"{"agent_id":"a1","lease_seconds":30}"#),
            Ok(ClaimBody {
                agent_id: "a1".into(),
                capabilities: vec![],
                lease_seconds: 30,
                wait_seconds: None,
            })
        );
        assert_eq!(
            InputBody::from_json(b"{}").map_err(field_of),
            Err(("missing_field", Some("input")))
        );
        assert_eq!(
            FailBody::from_json(br#"{"claim_token":"t","reason":"x","retry":1}"#).map_err(field_of),
            Err(("invalid_field", Some("retry")))
        );
    }

    #[test]
    fn bodies_round_trip_through_serde_for_clients() {
        let body = ClaimBody {
            agent_id: "a".into(),
            capabilities: vec!["rust".into()],
            lease_seconds: 30,
            wait_seconds: Some(5),
        };
        let json = serde_json::to_vec(&body).unwrap();
        assert_eq!(ClaimBody::from_json(&json).unwrap(), body);
        let fail = FailBody {
            claim_token: ClaimToken::new("tok"),
            reason: "r".into(),
            retry: true,
            retry_after_seconds: Some(3),
        };
        let json = serde_json::to_vec(&fail).unwrap();
        assert_eq!(FailBody::from_json(&json).unwrap(), fail);
    }
}
