//! Job status: every task's life reported as a job (the Jobs API's model).

// The SQL registries apply whole events with it; the in-memory one, whose
// records are compact, only its shared pieces.
mod announce;
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) mod change;
mod hook;
pub mod job;
#[cfg(feature = "memory")]
mod memory;
pub(crate) mod outbox;
pub(crate) mod registry;

pub use announce::{AnnouncingJobRegistry, JobAnnouncer};
pub use hook::{FnStatusSink, status_fn};
pub use job::{Artifact, HistoryEntry, InvalidProgress, Job, JobStatus, Progress};
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use memory::InMemoryStatusSink;
pub use outbox::{DEFAULT_OUTBOX_CAPACITY, OutboxStats, OutboxStatusSink, TeeStatusSink};
pub use registry::{
    Applied, DEFAULT_MAX_KEYS_PER_JOB, DEFAULT_PAGE_SIZE, JobPage, JobQuery, JobRegistry,
    MAX_PAGE_SIZE,
};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error_code::ErrorCode;

/// What a job was created with, as JSON text.
///
/// Held as text rather than a [`Value`] tree because most sinks only store
/// it or forward it (an HTTP sink embeds it in its request body as is): text
/// is one allocation where a tree is one per key and value, and a job is
/// created for every accepted webhook. [`to_value`](Self::to_value) parses
/// it when a tree is wanted.
///
/// ```
/// use hookroom::status::JobInput;
/// use serde_json::json;
///
/// let input = JobInput::from(json!({"room": "pr-review"}));
/// assert_eq!(input.as_str(), r#"{"room":"pr-review"}"#);
/// assert_eq!(input.to_value()["room"], "pr-review");
/// assert!(JobInput::default().is_null());
/// ```
#[derive(Clone, Default)]
pub struct JobInput(Option<Box<RawValue>>);

impl JobInput {
    /// `null`: no input (allocates nothing).
    pub const fn null() -> Self {
        Self(None)
    }

    /// Serializes `value` as the input.
    ///
    /// # Errors
    /// When `value`'s `Serialize` fails (e.g. a map with non-string keys).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        Ok(Self((raw.get() != "null").then_some(raw)))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }

    /// Whether the input is `null`.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The input parsed into a [`Value`]; `Null` when it cannot be read
    /// back, which happens only for input nested deeper than serde_json's
    /// recursion limit (128 levels).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.as_str()).unwrap_or(Value::Null)
    }
}

impl From<Value> for JobInput {
    fn from(value: Value) -> Self {
        Self::from(&value)
    }
}

impl From<&Value> for JobInput {
    fn from(value: &Value) -> Self {
        // A `Value` always serializes: its map keys are strings.
        Self::from_serialize(value).unwrap_or_else(|_| Self::null())
    }
}

impl PartialEq for JobInput {
    /// The same text, or equal JSON values whatever their spacing or key
    /// order. Input too deeply nested to read back equals only its own text.
    fn eq(&self, other: &Self) -> bool {
        if self.as_str() == other.as_str() {
            return true;
        }
        let parse = |input: &Self| serde_json::from_str::<Value>(input.as_str());
        match (parse(self), parse(other)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for JobInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JobInput").field(&self.as_str()).finish()
    }
}

/// Writes the JSON it holds, as is. That holds for `serde_json`
/// serializers; other formats see `serde_json`'s raw-value wrapper instead.
impl Serialize for JobInput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_unit(),
        }
    }
}

/// The input of a job made from a task: what the task is about, without its
/// payload. The ingest service and the agent runtime both describe tasks
/// this way.
#[derive(Serialize)]
pub(crate) struct TaskSummary<'a> {
    pub(crate) room: &'a str,
    pub(crate) source: &'a str,
    pub(crate) event: &'a str,
    pub(crate) delivery_id: &'a str,
    pub(crate) title: &'a str,
    pub(crate) url: Option<&'a str>,
    pub(crate) priority: u32,
}

impl TaskSummary<'_> {
    /// The summary as a job's input.
    pub(crate) fn to_input(&self) -> JobInput {
        // Plain strings and a number always serialize.
        JobInput::from_serialize(self).unwrap_or_default()
    }
}

/// The `Created` event of a task's job: its id, created when the task was,
/// the task's summary (never its payload) as input.
pub(crate) fn task_job_created(task: &crate::task::Task) -> JobEvent {
    JobEvent::Created {
        job_id: task.id.to_string(),
        at: task.created_at,
        input_data: TaskSummary {
            room: &task.room,
            source: &task.source,
            event: &task.source_event,
            delivery_id: &task.delivery_id,
            title: &task.title,
            url: task.source_url.as_deref(),
            priority: task.priority,
        }
        .to_input(),
        metadata: Map::new(),
    }
}

/// One lifecycle change of a job, as pushed to a [`StatusSink`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobEvent {
    /// A job was created (status `PENDING`): `POST /api/jobs`.
    Created {
        /// Job id (the task id).
        job_id: String,
        /// When.
        at: OffsetDateTime,
        /// What the job is about (room, source, event, title, …).
        input_data: JobInput,
        /// Free-form metadata.
        metadata: Map<String, Value>,
    },
    /// Status or progress changed: `POST /api/jobs/{id}/status`.
    Status {
        /// Job id.
        job_id: String,
        /// When.
        at: OffsetDateTime,
        /// New status (`RUNNING`, `NEEDS_INPUT`, or `PENDING` when a task is
        /// put back for a retry).
        status: JobStatus,
        /// Progress report, if any.
        progress: Option<Progress>,
        /// Human message.
        message: Option<String>,
        /// Step name.
        step: Option<String>,
    },
    /// An artifact was attached while running.
    Artifact {
        /// Job id.
        job_id: String,
        /// When.
        at: OffsetDateTime,
        /// The artifact.
        artifact: Artifact,
    },
    /// The job ended: `POST /api/jobs/{id}/complete`.
    Completed {
        /// Job id.
        job_id: String,
        /// When.
        at: OffsetDateTime,
        /// `DONE` or `FAILED`.
        final_status: JobStatus,
        /// Summary (result, or failure reason such as `{"reason":"expired"}`).
        summary: Option<Value>,
        /// Final artifacts.
        artifacts: Vec<crate::status::Artifact>,
        /// Human message.
        message: Option<String>,
    },
}

impl JobEvent {
    /// The job this event is about.
    pub fn job_id(&self) -> &str {
        match self {
            Self::Created { job_id, .. }
            | Self::Status { job_id, .. }
            | Self::Artifact { job_id, .. }
            | Self::Completed { job_id, .. } => job_id,
        }
    }
}

/// Receives every job lifecycle change.
///
/// # Contract
/// A sink failure is reported to the caller but never loses the task: the
/// task store stays the source of truth.
#[async_trait::async_trait]
pub trait StatusSink: std::fmt::Debug + Send + Sync + 'static {
    /// Records one lifecycle change.
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError>;

    /// Records one lifecycle change that may repeat an earlier call with the
    /// same `key` (a redelivery after a crash, say). A sink that can tell
    /// repeats apart applies it once: `HttpStatusSink` sends the key as the
    /// `Idempotency-Key` of its request. The default ignores the key.
    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let _ = key;
        self.publish(event).await
    }
}

#[async_trait::async_trait]
impl<S: StatusSink + ?Sized> StatusSink for std::sync::Arc<S> {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        (**self).publish(event).await
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        (**self).publish_once(event, key).await
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopStatusSink;

#[async_trait::async_trait]
impl StatusSink for NoopStatusSink {
    async fn publish(&self, _event: JobEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Why a sink could not record an event. Codes follow the Jobs API's `E_*` set.
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// The job is unknown to the sink (`E_JOB_NOT_FOUND`).
    JobNotFound {
        /// The job id.
        job_id: String,
    },
    /// The transition is not allowed, e.g. updating a finished job (`E_INVALID_STATUS`).
    InvalidStatus {
        /// What was wrong.
        reason: String,
    },
    /// The backend did not answer in time, also after the last retry
    /// (`E_TIMEOUT`).
    Timeout {
        /// Which sink.
        sink: &'static str,
    },
    /// The backend could not be reached, also after the last retry
    /// (`E_NETWORK_ERROR`).
    Network {
        /// Which sink.
        sink: &'static str,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend refused the sink's credentials (`E_AUTHENTICATION_FAILED`).
    AuthenticationFailed {
        /// Which sink.
        sink: &'static str,
    },
    /// An event or an answer could not be written or read
    /// (`E_SERIALIZATION_ERROR`).
    Serialization {
        /// Which sink.
        sink: &'static str,
        /// What could not be read or written.
        reason: String,
    },
    /// The registry holds as many jobs as it may and none it may evict
    /// for this one (`E_TOO_MANY_JOBS`): see
    /// [`InMemoryStatusSink::with_max_jobs`](crate::status::InMemoryStatusSink).
    TooManyJobs {
        /// The cap.
        limit: usize,
    },
    /// The backend failed (`E_WEBHOOK_FAILED`).
    Backend {
        /// Which sink.
        sink: &'static str,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ErrorCode for SinkError {
    fn code(&self) -> &'static str {
        match self {
            Self::JobNotFound { .. } => "E_JOB_NOT_FOUND",
            Self::InvalidStatus { .. } => "E_INVALID_STATUS",
            Self::Timeout { .. } => "E_TIMEOUT",
            Self::Network { .. } => "E_NETWORK_ERROR",
            Self::AuthenticationFailed { .. } => "E_AUTHENTICATION_FAILED",
            Self::Serialization { .. } => "E_SERIALIZATION_ERROR",
            Self::TooManyJobs { .. } => "E_TOO_MANY_JOBS",
            Self::Backend { .. } => "E_WEBHOOK_FAILED",
        }
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::JobNotFound { job_id } => write!(f, "job `{job_id}` not found"),
            Self::InvalidStatus { reason } => write!(f, "invalid status change: {reason}"),
            Self::Timeout { sink } => write!(f, "{sink} status sink timed out"),
            Self::Network { sink, source } => {
                write!(
                    f,
                    "{sink} status sink could not reach its backend: {source}"
                )
            }
            Self::AuthenticationFailed { sink } => {
                write!(f, "{sink} status sink: the backend refused its credentials")
            }
            Self::Serialization { sink, reason } => {
                write!(
                    f,
                    "{sink} status sink: cannot read or write the data: {reason}"
                )
            }
            Self::TooManyJobs { limit } => write!(
                f,
                "the job registry holds its cap of {limit} jobs and none it may evict"
            ),
            Self::Backend { sink, source } => write!(f, "{sink} status sink failed: {source}"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend { source, .. } | Self::Network { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_errors_carry_jobs_api_codes_and_format() {
        let errors = [
            SinkError::JobNotFound { job_id: "j".into() },
            SinkError::InvalidStatus {
                reason: "job `j` already ended DONE".into(),
            },
            SinkError::Backend {
                sink: "http",
                source: "connection refused".into(),
            },
        ];
        let codes: Vec<_> = errors.iter().map(ErrorCode::code).collect();
        assert_eq!(
            codes,
            ["E_JOB_NOT_FOUND", "E_INVALID_STATUS", "E_WEBHOOK_FAILED"]
        );
        let http = [
            SinkError::Timeout { sink: "http" },
            SinkError::Network {
                sink: "http",
                source: "refused".into(),
            },
            SinkError::AuthenticationFailed { sink: "http" },
            SinkError::Serialization {
                sink: "http",
                reason: "bad".into(),
            },
        ];
        let codes: Vec<_> = http.iter().map(ErrorCode::code).collect();
        assert_eq!(
            codes,
            [
                "E_TIMEOUT",
                "E_NETWORK_ERROR",
                "E_AUTHENTICATION_FAILED",
                "E_SERIALIZATION_ERROR"
            ]
        );
        assert!(http.iter().all(|e| !e.to_string().is_empty()));
        assert_eq!(errors[0].to_string(), "job `j` not found");
        assert_eq!(
            errors[2].to_string(),
            "http status sink failed: connection refused"
        );
        assert!(std::error::Error::source(&errors[2]).is_some());
        assert!(std::error::Error::source(&errors[0]).is_none());
    }

    #[tokio::test]
    async fn noop_sink_accepts_everything() {
        let event = JobEvent::Artifact {
            job_id: "j".into(),
            at: OffsetDateTime::UNIX_EPOCH,
            artifact: Artifact::default(),
        };
        assert_eq!(event.job_id(), "j");
        assert!(NoopStatusSink.publish(event).await.is_ok());
    }
}
