//! The job model of the Jobs API: status, progress, artifacts, history.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use crate::lifecycle::{JobStatus, UnknownStatus};

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
    /// Percentage done, 0–100. A whole number is written without a fraction
    /// (`40`, not `40.0`), as senders wrote it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_numbers_as_integers"
    )]
    pub percentage: Option<f64>,
    /// Human estimate of the time left, e.g. `"5 minutes"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_remaining: Option<String>,
}

impl Progress {
    /// Checks the report as the Jobs protocol defines it: `percentage` from
    /// 0 to 100, `completed_steps` at most `total_steps` (a negative count
    /// cannot be held: both are unsigned). Every path that sets progress
    /// (the Jobs API, the MCP job tools, `JobHandle`, the registries) calls
    /// this.
    ///
    /// ```
    /// use hookroom::status::{InvalidProgress, Progress};
    ///
    /// let fine = Progress { percentage: Some(40.0), ..Progress::default() };
    /// assert!(fine.validate().is_ok());
    /// let over = Progress { percentage: Some(140.0), ..Progress::default() };
    /// assert!(matches!(over.validate(), Err(InvalidProgress::Percentage { .. })));
    /// ```
    ///
    /// # Errors
    /// [`InvalidProgress`] naming the value out of range.
    pub fn validate(&self) -> Result<(), InvalidProgress> {
        if let Some(percentage) = self.percentage
            && !(0.0..=100.0).contains(&percentage)
        {
            return Err(InvalidProgress::Percentage { percentage });
        }
        if let (Some(completed), Some(total)) = (self.completed_steps, self.total_steps)
            && completed > total
        {
            return Err(InvalidProgress::CompletedSteps { completed, total });
        }
        Ok(())
    }
}

/// Why a [`Progress`] was refused ([`Progress::validate`]). The Jobs API
/// answers it with `400 E_SERIALIZATION_ERROR`, the protocol's code for bad
/// data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InvalidProgress {
    /// `percentage` is not a number from 0 to 100.
    Percentage {
        /// The value given.
        percentage: f64,
    },
    /// `completed_steps` is above `total_steps`.
    CompletedSteps {
        /// Steps said to be finished.
        completed: u32,
        /// Steps in all.
        total: u32,
    },
}

impl std::fmt::Display for InvalidProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Percentage { percentage } => write!(
                f,
                "progress `percentage` must be from 0 to 100, not {percentage}"
            ),
            Self::CompletedSteps { completed, total } => write!(
                f,
                "progress `completed_steps` ({completed}) must not exceed `total_steps` ({total})"
            ),
        }
    }
}

impl std::error::Error for InvalidProgress {}

/// Writes a whole `f64` as a JSON integer so that `40` read from the wire is
/// written back as `40`, not `40.0` (equal JSON values compare equal).
fn whole_numbers_as_integers<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Below 2^53 every whole f64 is exactly representable as an i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match *value {
        Some(v) if v.fract() == 0.0 && v.abs() < EXACT => serializer.serialize_i64(v as i64),
        Some(v) => serializer.serialize_f64(v),
        None => serializer.serialize_none(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_done_and_failed_are_terminal() {
        assert!(JobStatus::Done.is_terminal());
        assert!(JobStatus::Failed.is_terminal());
        assert!(!JobStatus::Pending.is_terminal());
        assert!(!JobStatus::Running.is_terminal());
        assert!(!JobStatus::NeedsInput.is_terminal());
    }

    #[test]
    fn display_is_the_wire_name() {
        assert_eq!(JobStatus::NeedsInput.to_string(), "NEEDS_INPUT");
        assert!(UnknownStatus.to_string().contains("NEEDS_INPUT"));
    }

    #[test]
    fn empty_progress_and_artifact_write_only_what_is_set() {
        let progress = Progress::default();
        assert_eq!(serde_json::to_string(&progress).unwrap(), "{}");
        let artifact = Artifact {
            name: "a.txt".into(),
            kind: Some("text".into()),
            ..Artifact::default()
        };
        assert_eq!(
            serde_json::to_string(&artifact).unwrap(),
            r#"{"name":"a.txt","type":"text"}"#
        );
    }

    #[test]
    fn progress_is_checked_as_the_protocol_defines_it() {
        let with = |percentage, completed, total| Progress {
            percentage,
            completed_steps: completed,
            total_steps: total,
            ..Progress::default()
        };
        assert!(with(Some(0.0), Some(0), Some(0)).validate().is_ok());
        assert!(with(Some(100.0), Some(3), Some(3)).validate().is_ok());
        assert!(with(None, Some(7), None).validate().is_ok());
        assert_eq!(
            with(Some(140.0), None, None).validate(),
            Err(InvalidProgress::Percentage { percentage: 140.0 })
        );
        assert!(with(Some(-0.5), None, None).validate().is_err());
        assert!(with(Some(f64::NAN), None, None).validate().is_err());
        assert_eq!(
            with(None, Some(4), Some(3)).validate(),
            Err(InvalidProgress::CompletedSteps {
                completed: 4,
                total: 3
            })
        );
    }

    #[test]
    fn large_and_fractional_percentages_stay_floats() {
        let progress = Progress {
            percentage: Some(99.75),
            ..Progress::default()
        };
        assert_eq!(
            serde_json::to_string(&progress).unwrap(),
            r#"{"percentage":99.75}"#
        );
        let progress = Progress {
            percentage: Some(100.0),
            ..Progress::default()
        };
        assert_eq!(
            serde_json::to_string(&progress).unwrap(),
            r#"{"percentage":100}"#
        );
    }
}
