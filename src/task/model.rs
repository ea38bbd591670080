//! The task model: what a webhook becomes in a room.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Payload;
use crate::lifecycle::JobStatus;

/// A task's id: for tasks this crate's stores create, a UUID in lowercase
/// hyphenated text. Stores of your own may use any text that is unique
/// among their tasks.
///
/// The SQLite and PostgreSQL stores make time-ordered ids
/// ([`time_ordered`](Self::time_ordered), version 7: a millisecond
/// timestamp, then 74 random bits), so that their unique indexes on ids
/// (tasks, and jobs, whose ids are their tasks') take new ids at their end:
/// a batch of inserts then shares a few index pages, where random ids would
/// each touch, and write to the log, a page of their own. The in-memory
/// store, whose hash maps gain nothing from order, makes random ones
/// ([`random`](Self::random), version 4).
///
/// Cloning is cheap (a reference count): an id is handed to the answer, the
/// job and the operations log of every delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(Arc<str>);

impl TaskId {
    /// A fresh random id (a version 4 UUID).
    pub fn random() -> Self {
        Self::from_uuid(uuid::Uuid::new_v4())
    }

    /// A fresh time-ordered id (a version 7 UUID): what this crate's stores
    /// give new tasks.
    pub fn time_ordered() -> Self {
        Self::from_uuid(uuid::Uuid::now_v7())
    }

    /// `uuid` in its lowercase hyphenated form.
    fn from_uuid(uuid: uuid::Uuid) -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        Self(Arc::from(&*uuid.hyphenated().encode_lower(&mut buffer)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for TaskId {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<&str> for TaskId {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fencing token of one claim. Every call that changes a claimed task
/// must present it; once the lease is lost and the task re-claimed, the old
/// token is refused.
///
/// It is a bearer secret for its task: `Debug` prints `ClaimToken(<redacted>)`.
/// Use [`as_str`](Self::as_str) where the token must travel.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// Wraps a backend-chosen token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// A fresh random token (122 random bits, as UUID text).
    pub fn random() -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        Self(
            uuid::Uuid::new_v4()
                .simple()
                .encode_lower(&mut buffer)
                .to_owned(),
        )
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares two tokens in constant time (for their common length).
    pub fn ct_eq(&self, other: &ClaimToken) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for ClaimToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimToken(<redacted>)")
    }
}

/// A task in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique id.
    pub id: TaskId,
    /// Room the task lives in.
    pub room: String,
    /// One-line title, e.g. `[PR] opened #42: Test PR`.
    pub title: String,
    /// Longer description.
    #[serde(default)]
    pub description: String,
    /// 1 is claimed before 2.
    pub priority: u32,
    /// Lifecycle state.
    pub status: JobStatus,
    /// Source name (`github`, `slack`, …).
    pub source: String,
    /// Provider event name (`pull_request.opened`, …).
    pub source_event: String,
    /// Link to what the event is about.
    #[serde(default)]
    pub source_url: Option<String>,
    /// Provider delivery id; unique per source.
    pub delivery_id: String,
    /// The request body as received.
    pub payload: Payload,
    /// Capabilities an agent must declare to claim this task (all of them).
    #[serde(default)]
    pub required_capabilities: Vec<String>,
    /// When the task was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the task last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// A pending task not claimed by then expires (`FAILED`, reason `expired`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// A pending task put back for a retry is not claimable before then.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    /// The agent holding the task.
    #[serde(default)]
    pub claimed_by: Option<String>,
    /// When the current lease runs out.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    /// Number of claims so far (a released claim does not count).
    pub attempts: u32,
    /// What the agent asked for when the task went to `NEEDS_INPUT`.
    #[serde(default)]
    pub input_request: Option<String>,
    /// Input provided for a `NEEDS_INPUT` task, not yet taken by its agent.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// Result of a `DONE` task.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// Reason of the last failure (`expired` for a task nobody claimed in time).
    #[serde(default)]
    pub failure: Option<String>,
}

/// What to insert: a task before the store gives it an id and times.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Room.
    pub room: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Priority (1 first).
    pub priority: u32,
    /// Source name.
    pub source: String,
    /// Provider event name.
    pub source_event: String,
    /// Link.
    pub source_url: Option<String>,
    /// Provider delivery id; `(source, delivery_id)` is unique.
    pub delivery_id: String,
    /// Raw body.
    pub payload: Payload,
    /// Capabilities required to claim.
    pub required_capabilities: Vec<String>,
    /// Unclaimed lifetime (`None`: never expires).
    pub ttl: Option<Duration>,
}

/// What [`TaskStore::insert`](super::TaskStore::insert) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted {
    /// The stored task's id (the first one's, for a duplicate).
    pub id: TaskId,
    /// `true` when `(source, delivery_id)` was already stored.
    pub duplicate: bool,
}

/// Filter for [`TaskStore::list`](super::TaskStore::list). Results are newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskQuery {
    /// Only this room.
    pub room: Option<String>,
    /// Only this status.
    pub status: Option<JobStatus>,
    /// Only this source.
    pub source: Option<String>,
    /// At most this many (`None`: a backend default of 100).
    pub limit: Option<usize>,
    /// Only tasks that come after this one in list order (older ones): the
    /// cursor of the next page is the last task of a full page. An id the
    /// store does not hold is [`StoreError::NotFound`](super::StoreError).
    pub before: Option<TaskId>,
}

/// A claim request: the best claimable task of `room` for `agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Room to claim from.
    pub room: String,
    /// Agent name (recorded as `claimed_by`).
    pub agent: String,
    /// Capabilities the agent has.
    pub capabilities: Vec<String>,
    /// Lease length; the task becomes claimable again when it runs out.
    pub lease: Duration,
}

/// A successful claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The task, in `RUNNING` state.
    pub task: Task,
    /// The fencing token for every later call on this claim.
    pub token: ClaimToken,
}

/// How [`TaskStore::fail`](super::TaskStore::fail) ends a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// Put the task back to `PENDING`, claimable after `after`.
    Retry {
        /// Backoff before the next claim.
        after: Duration,
    },
    /// Mark it `FAILED` for good.
    Fail,
}

#[cfg(test)]
mod tests {
    use super::TaskId;

    #[test]
    fn time_ordered_ids_sort_as_they_were_made() {
        let ids: Vec<TaskId> = (0..1000).map(|_| TaskId::time_ordered()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        let parsed = uuid::Uuid::parse_str(ids[0].as_str()).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
    }
}
