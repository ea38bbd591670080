//! [`JobRegistry`]: a [`StatusSink`] that keeps jobs and can be read back, the
//! backing store of the Jobs API.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Job, JobEvent, JobStatus, SinkError, StatusSink};
use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};

/// Default page size of [`JobQuery`] and of `GET /api/jobs`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Largest page size a [`JobRegistry`] is asked for.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Idempotency keys each job remembers unless its registry is told
/// otherwise: as many as the history entries it keeps by default, since
/// each applied update adds at least one entry.
pub const DEFAULT_MAX_KEYS_PER_JOB: usize = 1000;

/// What [`JobRegistry::apply_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The update was applied now, and its key remembered with it.
    Now,
    /// The job already remembered the key: nothing changed.
    Before,
}

/// Which jobs to list: newest first, optionally only those in one status,
/// starting after a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs currently in this status.
    pub status: Option<JobStatus>,
    /// At most this many jobs (1 to [`MAX_PAGE_SIZE`]).
    pub limit: usize,
    /// Only jobs created before the position this cursor names (from a
    /// previous [`JobPage::next`]).
    pub cursor: Option<u64>,
}

impl Default for JobQuery {
    fn default() -> Self {
        Self {
            status: None,
            limit: DEFAULT_PAGE_SIZE,
            cursor: None,
        }
    }
}

/// One page of a job listing.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    /// The jobs, newest first.
    pub jobs: Vec<Job>,
    /// The cursor of the next (older) page; `None` on the last page.
    pub next: Option<u64>,
}

/// A [`StatusSink`] that keeps every job it is told about and answers the
/// Jobs API's reads.
///
/// Implemented by `InMemoryStatusSink` (feature `memory`) and
/// `SqliteJobRegistry` (feature `sqlite`) and `PostgresJobRegistry`
/// (feature `postgres`), each in its task store's database.
/// Backend failures are [`SinkError::Backend`].
#[async_trait]
pub trait JobRegistry: StatusSink {
    /// Creates a job from a `POST /api/jobs` body, under the request's
    /// `job_id` or a fresh UUID.
    ///
    /// # Errors
    /// [`SinkError::InvalidStatus`] when the requested id is taken.
    async fn create_job(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError>;

    /// One job, with its history (oldest first) when `include_history`;
    /// `Ok(None)` for an unknown job.
    async fn job(&self, job_id: &str, include_history: bool) -> Result<Option<JobView>, SinkError>;

    /// Jobs newest first, as `query` asks.
    async fn jobs(&self, query: JobQuery) -> Result<JobPage, SinkError>;

    /// Applies `events`, all about job `job_id`, once per `(job_id, key)`:
    /// the first call applies them and remembers `key` in the same
    /// transaction, so "applied" and "remembered" never diverge, even
    /// across a restart of a durable registry; a later call with the same
    /// key changes nothing and answers [`Applied::Before`]. An update that
    /// fails leaves nothing applied and the key not remembered, so a retry
    /// applies it afresh. The events may start with the job's
    /// [`JobEvent::Created`].
    ///
    /// Keys are bounded per job (the newest [`DEFAULT_MAX_KEYS_PER_JOB`]
    /// unless the registry says otherwise) and go with their job when it is
    /// evicted or [purged](Self::purge_finished).
    ///
    /// # Errors
    /// The first event's refusal ([`SinkError::JobNotFound`],
    /// [`SinkError::InvalidStatus`]); [`SinkError::InvalidStatus`] when an
    /// event is about another job; [`SinkError::Backend`].
    async fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError>;

    /// Removes at most `limit` finished jobs (`DONE` or `FAILED`) that last
    /// changed before `cutoff`, oldest first, with their history and their
    /// idempotency keys; returns how many. Retention calls it until it
    /// returns less than `limit`, so each call is one short transaction.
    ///
    /// # Errors
    /// [`SinkError::Backend`].
    async fn purge_finished(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, SinkError>;
}

/// Refuses `events` that are not all about `job_id`.
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn check_same_job(job_id: &str, events: &[JobEvent]) -> Result<(), SinkError> {
    match events.iter().find(|event| event.job_id() != job_id) {
        Some(other) => Err(SinkError::InvalidStatus {
            reason: format!(
                "an update of job `{job_id}` holds a change of job `{}`",
                other.job_id()
            ),
        }),
        None => Ok(()),
    }
}

/// `value` as the JSON text a SQL registry stores in a column; a failure is
/// the registry's [`SinkError::Backend`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(
    sink: &'static str,
    value: &T,
) -> Result<String, SinkError> {
    serde_json::to_string(value).map_err(|e| SinkError::Backend {
        sink,
        source: e.into(),
    })
}

/// A SQL registry's JSON column read back; text that does not read is the
/// registry's [`SinkError::Backend`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    sink: &'static str,
    text: &str,
) -> Result<T, SinkError> {
    serde_json::from_str(text).map_err(|e| SinkError::Backend {
        sink,
        source: e.into(),
    })
}
