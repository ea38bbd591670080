//! [`report_to_job`]: a task changed; tell its job.

use std::fmt;

use crate::error_code::ErrorCode;
use crate::status::{JobEvent, SinkError, StatusSink, task_job_created};
use crate::task::Task;

/// Publishes `event`, a change of `task`, to the task's job in `sink`. When
/// the sink never heard of the job ([`SinkError::JobNotFound`]: a task
/// stored without a job, or a job the registry has since evicted), creates
/// it first from `task` (created when the task was, with the task's summary
/// as input) and publishes `event` again.
///
/// The agent runtime, the Task API and the MCP task tools each report
/// through this, so a task's job tells the same story whoever changed the
/// task.
///
/// A creation refused with [`SinkError::InvalidStatus`] means the job exists
/// after all (someone created it in between, as the webhook service does for
/// a task it just stored), so the event is published anyway.
///
/// # Errors
/// [`JobReportError::Create`] when the job was missing and the sink refused
/// to create it (the event was then not published again);
/// [`JobReportError::Publish`] when the sink refused the event itself. The
/// task is unaffected either way: the task store is the source of truth, so
/// callers log the error rather than undo the change.
///
/// # Example
/// ```
/// use hookroom::ops::report_to_job;
/// use hookroom::status::{InMemoryStatusSink, JobEvent, JobRegistry, JobStatus};
/// use hookroom::task::{InMemoryTaskStore, NewTask, TaskStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = InMemoryTaskStore::new();
/// let sink = InMemoryStatusSink::new();
/// // A task stored without a job (as a bare `TaskStore::insert` does).
/// # let new = NewTask {
/// #     room: "dev".into(), title: "push to main".into(), description: String::new(),
/// #     priority: 2, source: "github".into(), source_event: "push".into(), source_url: None,
/// #     delivery_id: "d-1".into(), payload: Default::default(),
/// #     required_capabilities: Vec::new(), ttl: None,
/// # };
/// let inserted = store.insert(new).await?;
/// let task = store.get(&inserted.id).await?.expect("just stored");
///
/// let running = JobEvent::Status {
///     job_id: task.id.to_string(),
///     at: time::OffsetDateTime::now_utc(),
///     status: JobStatus::Running,
///     progress: None,
///     message: Some("claimed by agent-1".into()),
///     step: None,
/// };
/// report_to_job(&sink, &task, running).await?;
/// let job = sink.job(task.id.as_str(), true).await?.expect("created on the way");
/// let statuses: Vec<_> = job.history.unwrap().iter().map(|h| h.status).collect();
/// assert_eq!(statuses, [JobStatus::Pending, JobStatus::Running]);
/// # Ok(())
/// # }
/// ```
pub async fn report_to_job(
    sink: &dyn StatusSink,
    task: &Task,
    event: JobEvent,
) -> Result<(), JobReportError> {
    // Kept for the second try only when the first one finds no job, which
    // is rare: the clone is the price of not rebuilding the event.
    match sink.publish(event.clone()).await {
        Ok(()) => return Ok(()),
        Err(SinkError::JobNotFound { .. }) => {}
        Err(error) => return Err(JobReportError::Publish(error)),
    }
    match sink.publish(task_job_created(task)).await {
        Ok(()) | Err(SinkError::InvalidStatus { .. }) => {}
        Err(error) => return Err(JobReportError::Create(error)),
    }
    sink.publish(event).await.map_err(JobReportError::Publish)
}

/// Why [`report_to_job`] did not record a task change in its job.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobReportError {
    /// The sink refused the event.
    Publish(SinkError),
    /// The job was missing and the sink refused to create it; the event was
    /// not published.
    Create(SinkError),
}

impl JobReportError {
    /// The sink's error.
    pub fn sink_error(&self) -> &SinkError {
        match self {
            Self::Publish(error) | Self::Create(error) => error,
        }
    }
}

/// The sink's code (`E_*`, as the Jobs API's).
impl ErrorCode for JobReportError {
    fn code(&self) -> &'static str {
        self.sink_error().code()
    }
}

impl fmt::Display for JobReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Publish(error) => write!(f, "the status sink refused the job event: {error}"),
            Self::Create(error) => write!(
                f,
                "the job was missing and the status sink refused to create it: {error}"
            ),
        }
    }
}

impl std::error::Error for JobReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.sink_error())
    }
}
