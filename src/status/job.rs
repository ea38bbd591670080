//! The job model of the Jobs API: status, progress, artifacts, history.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A job's (and a task's) lifecycle state, serialized exactly as
/// `PENDING | RUNNING | NEEDS_INPUT | FAILED | DONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Created, waiting for an agent.
    Pending,
    /// Claimed by an agent and in progress.
    Running,
    /// Waiting for input from a person or another system.
    NeedsInput,
    /// Ended with an error (or expired unclaimed).
    Failed,
    /// Ended successfully.
    Done,
}

impl JobStatus {
    /// The wire name, e.g. `"NEEDS_INPUT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::NeedsInput => "NEEDS_INPUT",
            Self::Failed => "FAILED",
            Self::Done => "DONE",
        }
    }

    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Done)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "NEEDS_INPUT" => Self::NeedsInput,
            "FAILED" => Self::Failed,
            "DONE" => Self::Done,
            _ => return Err(UnknownStatus),
        })
    }
}

/// A string that is not one of the five job statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStatus;

impl std::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unknown job status (expected PENDING, RUNNING, NEEDS_INPUT, FAILED or DONE)")
    }
}

impl std::error::Error for UnknownStatus {}

/// How far a running job has come.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Name of the step in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<String>,
    /// Number of steps in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_steps: Option<u32>,
    /// Number of steps finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_steps: Option<u32>,
    /// Percentage done, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// Human estimate of the time left, e.g. `"5 minutes"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_remaining: Option<String>,
}

/// A file or object a job produced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Artifact {
    /// File name.
    pub name: String,
    /// Storage path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Kind of artifact, e.g. `excel_report`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where to download it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One job as the Jobs API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job id (for jobs made from tasks, the task id).
    pub job_id: String,
    /// Current status.
    pub status: JobStatus,
    /// When the job was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the job last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// What the job was created with.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input_data: Value,
    /// Latest progress report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Artifacts produced so far.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Free-form metadata (`user_id`, `session_id`, `error_message`, …).
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// One entry of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Status after the change.
    pub status: JobStatus,
    /// Human message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}
