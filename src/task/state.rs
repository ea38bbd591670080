//! The task state machine every [`TaskStore`](super::TaskStore) runs.
//!
//! A store's job is to load a task, ask this module what an operation does to
//! it, and write the result back atomically. The rules themselves (which
//! states allow which operation, which error wins when several apply, where
//! the time boundaries fall and which fields each operation sets or clears)
//! are written once, here, as code. The in-memory, SQLite and PostgreSQL
//! stores all call it, and a store of your own can too: then it refuses the
//! same calls with the same errors as every other backend, and the
//! [conformance suite](crate::conformance) has little left to catch.
//!
//! # The record
//! [`StoredTask`] is a [`Task`] plus the one thing a store keeps that readers
//! never see: the current claim's [`ClaimToken`]. Persist both.
//!
//! # The rules
//! - **Time boundaries are inclusive.** A lease, a retry delay or a TTL that
//!   ends at `t` has ended when `now == t`.
//! - **Held.** A token holds its task while the task is `RUNNING` or
//!   `NEEDS_INPUT`, the token is the task's last claim's (compared in constant
//!   time) and the lease runs (`now < lease_expires_at`).
//! - **Claimable.** A `PENDING` task whose `not_before` has come and whose
//!   `expires_at` has not, or a `RUNNING`/`NEEDS_INPUT` task whose lease has
//!   ended. A held task whose lease ends reads as it was (status,
//!   `claimed_by`, the past `lease_expires_at`) until a claim takes it over;
//!   its token is refused from the lease's end.
//! - **Errors, first match wins.** For the operations that take a token:
//!   1. the task is `DONE` or `FAILED`: [`StoreError::InvalidTransition`] for
//!      its last claim's token, [`StoreError::NotHeld`] for any other;
//!   2. the token does not hold the task: [`StoreError::NotHeld`];
//!   3. the state does not allow the operation:
//!      [`StoreError::InvalidTransition`].
//!
//!   A store answers [`StoreError::NotFound`] itself, before any of these,
//!   when it has no task with the id.
//! - **Allowed states.** `heartbeat`, `fail`, `release`: `RUNNING` or
//!   `NEEDS_INPUT`. `complete`, `request_input`: `RUNNING`. `take_input`:
//!   `NEEDS_INPUT`. `provide_input` needs no token and only `NEEDS_INPUT`, so
//!   any other state (finished ones included) answers `InvalidTransition`.
//! - **Every change sets `updated_at = now`.** A call that changes nothing
//!   (`take_input` before input arrived) leaves it alone.
//!
//! What each operation sets and clears is in its method's docs.
//!
//! # Example: a store's `complete`
//! ```
//! use std::time::Duration;
//! use hookroom::task::state::StoredTask;
//! use hookroom::task::{StoreError, Task};
//! use hookroom::JobStatus;
//! # use hookroom::task::{NewTask, TaskId};
//! # let now = time::OffsetDateTime::UNIX_EPOCH;
//! # let new = NewTask {
//! #     room: "r".into(), title: "t".into(), description: String::new(), priority: 1,
//! #     source: "github".into(), source_event: "push".into(), source_url: None,
//! #     delivery_id: "d".into(), payload: "{}".into(), required_capabilities: vec![], ttl: None,
//! # };
//! // A new task, as `insert` stores it.
//! let mut stored = StoredTask::new(TaskId::random(), new, now);
//!
//! // `claim`: the store picked this task; the state machine takes it.
//! let token = stored.claim("bot", &[], Duration::from_secs(30), now)?;
//! assert_eq!(stored.task.status, JobStatus::Running);
//!
//! // `complete`: load, apply, write back.
//! stored.complete(&token, Some(serde_json::json!({"ok": true})), now)?;
//! assert_eq!(stored.task.status, JobStatus::Done);
//!
//! // The same call again is refused, as by every store.
//! let again = stored.complete(&token, None, now);
//! assert!(matches!(again, Err(StoreError::InvalidTransition { .. })));
//! # Ok::<(), StoreError>(())
//! ```

use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime};

use super::{ClaimToken, FailAction, NewTask, StoreError, Task, TaskId};
use crate::lifecycle::JobStatus;

/// The failure reason [`StoredTask::expire`] records.
pub const EXPIRED_REASON: &str = "expired";

/// The operations of the state machine, named as the
/// [`TaskStore`](super::TaskStore) methods that run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskOperation {
    /// [`StoredTask::claim`].
    Claim,
    /// [`StoredTask::heartbeat`].
    Heartbeat,
    /// [`StoredTask::complete`].
    Complete,
    /// [`StoredTask::fail`].
    Fail,
    /// [`StoredTask::release`].
    Release,
    /// [`StoredTask::request_input`].
    RequestInput,
    /// [`StoredTask::provide_input`].
    ProvideInput,
    /// [`StoredTask::take_input`].
    TakeInput,
    /// [`StoredTask::expire`].
    Expire,
}

impl TaskOperation {
    /// The method's name, e.g. `"request_input"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Heartbeat => "heartbeat",
            Self::Complete => "complete",
            Self::Fail => "fail",
            Self::Release => "release",
            Self::RequestInput => "request_input",
            Self::ProvideInput => "provide_input",
            Self::TakeInput => "take_input",
            Self::Expire => "expire",
        }
    }

    /// The states a holder may run this operation in.
    fn allowed(self) -> &'static [JobStatus] {
        const HELD: &[JobStatus] = &[JobStatus::Running, JobStatus::NeedsInput];
        match self {
            Self::Heartbeat | Self::Fail | Self::Release => HELD,
            Self::Complete | Self::RequestInput => &[JobStatus::Running],
            Self::TakeInput | Self::ProvideInput => &[JobStatus::NeedsInput],
            Self::Claim | Self::Expire => &[JobStatus::Pending],
        }
    }
}

impl std::fmt::Display for TaskOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`StoredTask::claim`] refused a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimRefusal {
    /// Another claim holds it and its lease runs.
    Held,
    /// A retry that is not due yet (`not_before` is in the future).
    NotYetDue,
    /// Its TTL has passed: it waits for [`StoredTask::expire`].
    Expired,
    /// It is `DONE` or `FAILED`.
    Finished,
    /// The agent lacks one of its `required_capabilities`.
    MissingCapabilities,
}

impl ClaimRefusal {
    /// A short description, e.g. `"held by another claim"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held by another claim",
            Self::NotYetDue => "not due for a retry yet",
            Self::Expired => "expired unclaimed",
            Self::Finished => "finished",
            Self::MissingCapabilities => "requires capabilities the agent lacks",
        }
    }
}

impl std::fmt::Display for ClaimRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task as a store keeps it: the [`Task`] every reader sees, and the
/// current claim's token, which only the state machine reads.
///
/// Each operation checks the rules of the [module docs](self), and either
/// changes the record and returns `Ok`, or returns the error and leaves the
/// record exactly as it was.
///
/// A store that writes whole records can write this one: it serializes as
/// `{"task": …, "token": …}`, the token in clear (the store must keep it to
/// check the holder's calls), and reads back equal. Reading one back needs
/// a `serde_json` deserializer, for its [`Payload`](super::Payload).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredTask {
    /// The task.
    pub task: Task,
    /// The last claim's fencing token; `None` until the first claim. It stays
    /// after the claim ends, so the last holder gets
    /// [`StoreError::InvalidTransition`] rather than
    /// [`StoreError::NotHeld`] for a call on a finished task.
    pub token: Option<ClaimToken>,
}

impl std::fmt::Debug for StoredTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTask")
            .field("task", &self.task)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl StoredTask {
    /// The record `insert` stores for `new`: `PENDING`, created and updated
    /// `now`, never claimed, expiring at `now + ttl` when it has a TTL.
    pub fn new(id: TaskId, new: NewTask, now: OffsetDateTime) -> Self {
        let NewTask {
            room,
            title,
            description,
            priority,
            source,
            source_event,
            source_url,
            delivery_id,
            payload,
            required_capabilities,
            ttl,
        } = new;
        Self {
            task: Task {
                id,
                room,
                title,
                description,
                priority,
                status: JobStatus::Pending,
                source,
                source_event,
                source_url,
                delivery_id,
                payload,
                required_capabilities,
                created_at: now,
                updated_at: now,
                expires_at: ttl.map(|ttl| deadline(now, ttl)),
                not_before: None,
                claimed_by: None,
                lease_expires_at: None,
                attempts: 0,
                input_request: None,
                input: None,
                result: None,
                failure: None,
            },
            token: None,
        }
    }

    /// Why an agent with `capabilities` cannot claim the task at `now`, or
    /// `None` when it can. Stores that pick a task with a query of their own
    /// (SQL's `ORDER BY priority, created_at`) need not call this first:
    /// [`claim`](Self::claim) checks it again.
    pub fn claim_refusal(
        &self,
        capabilities: &[String],
        now: OffsetDateTime,
    ) -> Option<ClaimRefusal> {
        let task = &self.task;
        let refusal = match task.status {
            JobStatus::Done | JobStatus::Failed => Some(ClaimRefusal::Finished),
            JobStatus::Running | JobStatus::NeedsInput => task
                .lease_expires_at
                .is_some_and(|lease| lease > now)
                .then_some(ClaimRefusal::Held),
            JobStatus::Pending => {
                if task.expires_at.is_some_and(|expires| expires <= now) {
                    Some(ClaimRefusal::Expired)
                } else if task.not_before.is_some_and(|due| due > now) {
                    Some(ClaimRefusal::NotYetDue)
                } else {
                    None
                }
            }
        };
        refusal.or_else(|| {
            (!has_capabilities(task, capabilities)).then_some(ClaimRefusal::MissingCapabilities)
        })
    }

    /// Whether an agent with `capabilities` can claim the task at `now`.
    pub fn is_claimable(&self, capabilities: &[String], now: OffsetDateTime) -> bool {
        self.claim_refusal(capabilities, now).is_none()
    }

    /// Claims the task for `agent` and returns the new claim's token.
    ///
    /// Sets `RUNNING`, `claimed_by = agent`, `lease_expires_at = now + lease`
    /// and `attempts += 1`; clears `not_before`, `expires_at` (a TTL bounds
    /// how long a task waits for its *first* claim), `input_request` and
    /// `input` (a question belongs to the claim that asked it). The token is
    /// random, so one seen on the wire cannot be turned into another's.
    ///
    /// # Errors
    /// [`StoreError::NotClaimable`] with the [`ClaimRefusal`].
    pub fn claim(
        &mut self,
        agent: &str,
        capabilities: &[String],
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<ClaimToken, StoreError> {
        if let Some(reason) = self.claim_refusal(capabilities, now) {
            return Err(StoreError::NotClaimable {
                id: self.task.id.clone(),
                reason,
            });
        }
        let token = ClaimToken::random();
        let task = &mut self.task;
        task.status = JobStatus::Running;
        task.claimed_by = Some(agent.to_owned());
        task.lease_expires_at = Some(deadline(now, lease));
        task.attempts = task.attempts.saturating_add(1);
        task.not_before = None;
        task.expires_at = None;
        task.input_request = None;
        task.input = None;
        task.updated_at = now;
        self.token = Some(token.clone());
        Ok(token)
    }

    /// Extends the lease to `now + lease`.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `RUNNING` or `NEEDS_INPUT`.
    pub fn heartbeat(
        &mut self,
        token: &ClaimToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check_held(token, TaskOperation::Heartbeat, now)?;
        self.task.lease_expires_at = Some(deadline(now, lease));
        self.task.updated_at = now;
        Ok(())
    }

    /// Ends the claim with `DONE` and its `result`. Keeps `claimed_by` (who
    /// did it), clears `lease_expires_at`.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `RUNNING`.
    pub fn complete(
        &mut self,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check_held(token, TaskOperation::Complete, now)?;
        let task = &mut self.task;
        task.status = JobStatus::Done;
        task.result = result;
        task.lease_expires_at = None;
        task.updated_at = now;
        Ok(())
    }

    /// Ends the claim with a failure, recorded as `failure = reason`.
    ///
    /// [`FailAction::Fail`] sets `FAILED`, keeps `claimed_by` and clears
    /// `lease_expires_at`. [`FailAction::Retry`] puts the task back to
    /// `PENDING` (as [`release`](Self::release) does, but the attempt counts)
    /// with `not_before = now + after`.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `RUNNING` or `NEEDS_INPUT`.
    pub fn fail(
        &mut self,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check_held(token, TaskOperation::Fail, now)?;
        let task = &mut self.task;
        task.failure = Some(reason.to_owned());
        match action {
            FailAction::Fail => {
                task.status = JobStatus::Failed;
                task.lease_expires_at = None;
            }
            FailAction::Retry { after } => {
                back_to_pending(task);
                task.not_before = Some(deadline(now, after));
            }
        }
        task.updated_at = now;
        Ok(())
    }

    /// Gives the task back to `PENDING` without counting the attempt
    /// (`attempts -= 1`). Clears `claimed_by`, `lease_expires_at`,
    /// `input_request` and `input`.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `RUNNING` or `NEEDS_INPUT`.
    pub fn release(&mut self, token: &ClaimToken, now: OffsetDateTime) -> Result<(), StoreError> {
        self.check_held(token, TaskOperation::Release, now)?;
        let task = &mut self.task;
        back_to_pending(task);
        task.attempts = task.attempts.saturating_sub(1);
        task.updated_at = now;
        Ok(())
    }

    /// Moves the task to `NEEDS_INPUT` with `input_request = prompt`, and
    /// clears any earlier `input`. The claim (token and lease) stays.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `RUNNING`.
    pub fn request_input(
        &mut self,
        token: &ClaimToken,
        prompt: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check_held(token, TaskOperation::RequestInput, now)?;
        let task = &mut self.task;
        task.status = JobStatus::NeedsInput;
        task.input_request = Some(prompt.to_owned());
        task.input = None;
        task.updated_at = now;
        Ok(())
    }

    /// Provides `input` to a `NEEDS_INPUT` task, replacing input not taken
    /// yet. Needs no token: whoever answers the question calls it.
    ///
    /// # Errors
    /// [`StoreError::InvalidTransition`] in any state but `NEEDS_INPUT`.
    pub fn provide_input(
        &mut self,
        input: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.task.status != JobStatus::NeedsInput {
            return Err(self.invalid(TaskOperation::ProvideInput));
        }
        self.task.input = Some(input);
        self.task.updated_at = now;
        Ok(())
    }

    /// Takes the provided input, if any: then the task is `RUNNING` again
    /// with `input` and `input_request` cleared. `Ok(None)` changes nothing.
    ///
    /// # Errors
    /// As the [module docs](self) say, in `NEEDS_INPUT`.
    pub fn take_input(
        &mut self,
        token: &ClaimToken,
        now: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.check_held(token, TaskOperation::TakeInput, now)?;
        let task = &mut self.task;
        let Some(input) = task.input.take() else {
            return Ok(None);
        };
        task.input_request = None;
        task.status = JobStatus::Running;
        task.updated_at = now;
        Ok(Some(input))
    }

    /// Whether the task is `PENDING` with a TTL that has passed at `now`.
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.task.status == JobStatus::Pending
            && self.task.expires_at.is_some_and(|expires| expires <= now)
    }

    /// Fails an overdue task (see [`is_overdue`](Self::is_overdue)) with
    /// `failure = "expired"` and returns `true`; leaves any other task alone
    /// and returns `false`.
    pub fn expire(&mut self, now: OffsetDateTime) -> bool {
        if !self.is_overdue(now) {
            return false;
        }
        let task = &mut self.task;
        task.status = JobStatus::Failed;
        task.failure = Some(EXPIRED_REASON.to_owned());
        task.updated_at = now;
        true
    }

    /// Checks that `token` holds the task at `now` and that its state allows
    /// `operation`, in the order the [module docs](self) give.
    ///
    /// # Errors
    /// [`StoreError::InvalidTransition`] or [`StoreError::NotHeld`].
    pub fn check_held(
        &self,
        token: &ClaimToken,
        operation: TaskOperation,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let task = &self.task;
        let token_matches = self
            .token
            .as_ref()
            .is_some_and(|current| current.ct_eq(token));
        if task.status.is_terminal() {
            return Err(if token_matches {
                self.invalid(operation)
            } else {
                self.not_held()
            });
        }
        let held = matches!(task.status, JobStatus::Running | JobStatus::NeedsInput)
            && token_matches
            && task.lease_expires_at.is_some_and(|lease| lease > now);
        if !held {
            return Err(self.not_held());
        }
        if !operation.allowed().contains(&task.status) {
            return Err(self.invalid(operation));
        }
        Ok(())
    }

    fn invalid(&self, operation: TaskOperation) -> StoreError {
        StoreError::InvalidTransition {
            id: self.task.id.clone(),
            from: self.task.status,
            operation,
        }
    }

    fn not_held(&self) -> StoreError {
        StoreError::NotHeld {
            id: self.task.id.clone(),
        }
    }
}

/// Whether an agent with `capabilities` has every capability `task` requires.
pub fn has_capabilities(task: &Task, capabilities: &[String]) -> bool {
    task.required_capabilities
        .iter()
        .all(|need| capabilities.iter().any(|have| have == need))
}

/// `now + duration`, saturating at the largest representable time (a lease
/// of `Duration::MAX` never ends).
pub fn deadline(now: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    const FAR_FUTURE: OffsetDateTime = PrimitiveDateTime::MAX.assume_utc();
    time::Duration::try_from(duration)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(FAR_FUTURE)
}

/// A held task goes back to the room: nobody holds it, and the question it
/// asked belonged to the claim that ended.
fn back_to_pending(task: &mut Task) {
    task.status = JobStatus::Pending;
    task.claimed_by = None;
    task.lease_expires_at = None;
    task.input_request = None;
    task.input = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Payload;

    #[test]
    fn a_stored_task_round_trips_through_json() {
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let new = NewTask {
            room: "dev".into(),
            title: "push".into(),
            description: "to main".into(),
            priority: 2,
            source: "github".into(),
            source_event: "push".into(),
            source_url: Some("https://github.com/o/r".into()),
            delivery_id: "d-1".into(),
            payload: Payload::from(r#"{"z":1, "a":[true,null]}"#),
            required_capabilities: vec!["rust".into()],
            ttl: Some(Duration::from_secs(60)),
        };
        let mut record = StoredTask::new(TaskId::from("t-1"), new, now);
        record.token = Some(ClaimToken::new("token-1"));
        let json = serde_json::to_string(&record).unwrap();
        let back: StoredTask = serde_json::from_str(&json).unwrap();
        assert!(back == record, "{json}");
        assert_eq!(back.token.as_ref().map(ClaimToken::as_str), Some("token-1"));
        assert_eq!(back.task.payload.as_bytes(), br#"{"z":1, "a":[true,null]}"#);
    }
}
