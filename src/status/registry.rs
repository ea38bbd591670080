//! [`JobRegistry`]: a [`StatusSink`] that keeps jobs and can be read back, the
//! backing store of the Jobs API.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::api::{JobCreateRequest, JobCreateResponse, JobView};
use super::{Job, JobStatus, SinkError, StatusSink};

/// Default page size of [`JobQuery`] and of `GET /api/jobs`.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Largest page size a [`JobRegistry`] is asked for.
pub const MAX_PAGE_SIZE: usize = 1000;

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
}
