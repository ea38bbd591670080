//! The claim rules every backend shares: who holds a task, and which
//! operations its state allows. Every backend (memory, SQLite, PostgreSQL)
//! asks these functions, so all refuse the same calls with the same error.

use time::OffsetDateTime;

use super::{ClaimToken, StoreError, Task, TaskId};
use crate::lifecycle::JobStatus;

/// What the claim rules look at in a stored task.
pub(crate) struct ClaimView<'a> {
    /// The task's id (for errors).
    pub(crate) id: &'a TaskId,
    /// Its state.
    pub(crate) status: JobStatus,
    /// When its current lease runs out.
    pub(crate) lease_expires_at: Option<OffsetDateTime>,
    /// The backend's current claim token, `None` when never claimed.
    pub(crate) current: Option<&'a str>,
}

impl<'a> ClaimView<'a> {
    /// The view of a whole [`Task`] whose current token is `current`.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn of(task: &'a Task, current: Option<&'a str>) -> Self {
        Self {
            id: &task.id,
            status: task.status,
            lease_expires_at: task.lease_expires_at,
            current,
        }
    }
}

/// Checks that `token` holds the task `view` shows at `now`, and that the
/// task's state allows `operation`, which is legal only in the `allowed`
/// states.
///
/// Errors, first match wins: a finished task → `InvalidTransition` for its
/// last claim's token, `NotHeld` for any other; a token that is not the live
/// claim's, or whose lease has run out → `NotHeld`; a state `operation` is
/// not allowed in → `InvalidTransition`.
#[cfg_attr(
    not(any(feature = "memory", feature = "sqlite", feature = "postgres")),
    allow(dead_code)
)]
pub(crate) fn check_held(
    view: ClaimView<'_>,
    token: &ClaimToken,
    now: OffsetDateTime,
    operation: &'static str,
    allowed: &[JobStatus],
) -> Result<(), StoreError> {
    let ClaimView {
        id,
        status,
        lease_expires_at,
        current,
    } = view;
    let token_matches = current.is_some_and(|current| {
        subtle::ConstantTimeEq::ct_eq(current.as_bytes(), token.as_str().as_bytes()).into()
    });
    if status.is_terminal() {
        return Err(if token_matches {
            StoreError::InvalidTransition {
                id: id.clone(),
                from: status,
                operation,
            }
        } else {
            StoreError::NotHeld { id: id.clone() }
        });
    }
    let held = matches!(status, JobStatus::Running | JobStatus::NeedsInput)
        && token_matches
        && lease_expires_at.is_some_and(|lease| lease > now);
    if !held {
        return Err(StoreError::NotHeld { id: id.clone() });
    }
    if !allowed.contains(&status) {
        return Err(StoreError::InvalidTransition {
            id: id.clone(),
            from: status,
            operation,
        });
    }
    Ok(())
}

/// Whether an agent with `capabilities` may claim `task`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn has_capabilities(task: &Task, capabilities: &[String]) -> bool {
    task.required_capabilities
        .iter()
        .all(|need| capabilities.iter().any(|have| have == need))
}
