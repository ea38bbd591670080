//! The lifecycle both tasks and jobs share.
//!
//! A webhook's task and the job that reports it move through the same five
//! states, so the state type lives here, where neither [`task`](crate::task)
//! nor [`status`](crate::status) has to import the other.
//!
//! | from | operation | to |
//! | --- | --- | --- |
//! | `PENDING` | claim | `RUNNING` |
//! | `PENDING`, TTL passed | expire | `FAILED` |
//! | `RUNNING` | complete | `DONE` |
//! | `RUNNING` | request input | `NEEDS_INPUT` |
//! | `NEEDS_INPUT`, input provided | take input | `RUNNING` |
//! | `RUNNING`, `NEEDS_INPUT` | fail | `FAILED`, or `PENDING` for a retry |
//! | `RUNNING`, `NEEDS_INPUT` | release | `PENDING` |
//! | `RUNNING`, `NEEDS_INPUT`, lease ended | claim | `RUNNING` (a new claim) |
//!
//! The rules of each step are [`task::state`](crate::task::state)'s.

use serde::{Deserialize, Serialize};

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
