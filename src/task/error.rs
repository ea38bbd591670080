//! Errors of [`TaskStore`](super::TaskStore) operations.

use super::TaskId;
use super::state::{ClaimRefusal, TaskOperation};
use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;

/// Why a task store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// No task has this id.
    NotFound {
        /// The id asked for.
        id: TaskId,
    },
    /// The claim token does not hold the task (lease lost and re-granted,
    /// released, or never claimed with this token).
    NotHeld {
        /// The task.
        id: TaskId,
    },
    /// The operation is not allowed in the task's current state (e.g.
    /// completing a task that is already `DONE`).
    InvalidTransition {
        /// The task.
        id: TaskId,
        /// Its current status.
        from: JobStatus,
        /// The refused operation.
        operation: TaskOperation,
    },
    /// The task cannot be claimed now (held by a live claim, a retry not due
    /// yet, expired, finished, or requiring capabilities the agent lacks).
    NotClaimable {
        /// The task.
        id: TaskId,
        /// Why.
        reason: ClaimRefusal,
    },
    /// The backend failed.
    Backend {
        /// Which store (`memory`, `sqlite`, …).
        store: &'static str,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "task_not_found",
            Self::NotHeld { .. } => "not_held",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::NotClaimable { .. } => "task_not_claimable",
            Self::Backend { .. } => "store_unavailable",
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound { id } => write!(f, "task `{id}` not found"),
            Self::NotHeld { id } => write!(f, "claim on task `{id}` is not held by this token"),
            Self::InvalidTransition {
                id,
                from,
                operation,
            } => write!(f, "cannot {operation} task `{id}` in state {from}"),
            Self::NotClaimable { id, reason } => {
                write!(f, "task `{id}` cannot be claimed: {reason}")
            }
            Self::Backend { store, source } => write!(f, "{store} task store failed: {source}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
