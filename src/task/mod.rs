//! Step 5 of the data flow: tasks in rooms, and the [`TaskStore`] that keeps
//! them durable, claimable and fenced.
//!
//! - [`Task`] and the values the trait takes and returns;
//! - [`state`]: the state machine every store runs;
//! - [`InMemoryTaskStore`] (feature `memory`); the other stores sit with
//!   their backends: `sqlite::SqliteTaskStore` (`sqlite`),
//!   `postgres::PostgresTaskStore` (`postgres`), `http::HttpTaskStore`
//!   (`http-client`: a store served by a Task API).

mod error;
mod events;
pub use events::{
    AnnouncingTaskStore, DEFAULT_REPLAY_CAPACITY, DEFAULT_SUBSCRIBER_CAPACITY, Subscription,
    TaskEvent, TaskEventKind, TaskEvents,
};
#[cfg(feature = "memory")]
mod memory;
mod metered;
mod model;
mod payload;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
pub mod state;

pub use error::StoreError;
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use memory::InMemoryTaskStore;
pub use metered::MeteredTaskStore;
pub use model::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, Task, TaskId, TaskQuery,
};
pub use payload::Payload;
pub use state::{ClaimRefusal, StoredTask, TaskOperation};

use std::time::Duration;

use async_trait::async_trait;

/// Where tasks live between a webhook's acknowledgement and an agent's result.
///
/// # Contract (checked by the conformance suite)
/// - `insert` is durable when it returns, and idempotent on
///   `(source, delivery_id)`: a second insert returns the first task's id
///   with `duplicate: true`.
/// - `claim` is exclusive: while a lease runs, no other claim gets the task.
///   It picks the lowest `priority` number first, then the oldest, among the
///   tasks [`StoredTask::is_claimable`] accepts for the agent.
/// - Every operation on a task follows the [state machine](state): which
///   states allow it, which error wins, where lease and TTL boundaries fall,
///   which fields it sets and clears. The simplest way to get all of that
///   right is to load the task as a [`StoredTask`], call the operation of the
///   same name on it and write it back in one atomic step, as the stores of
///   this crate do.
/// - Time comes from the store's [`Clock`](crate::clock::Clock), read once
///   the store holds whatever lock or transaction the operation waits for.
///
/// # Writing a store
/// Start from [`InMemoryTaskStore`]'s source (`src/task/memory/`): it keeps
/// tasks and indexes and leaves every rule to [`state`]. Then run
/// [`conformance::task_store::run_all`](crate::conformance::task_store::run_all)
/// (feature `integration`) from your store's tests.
#[async_trait]
pub trait TaskStore: std::fmt::Debug + Send + Sync + 'static {
    /// Stores a new task in `PENDING`, or reports the duplicate.
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError>;

    /// One task by id.
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError>;

    /// Tasks matching `query`, newest first.
    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError>;

    /// Claims the best claimable task of a room, or `None` when there is none.
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError>;

    /// Claims the task `id` itself, wherever it sits in its room's order:
    /// for agents that chose a task from a list. `request.room` is not
    /// consulted; the agent, its capabilities and the lease are.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id;
    /// [`StoreError::NotClaimable`] with the [`ClaimRefusal`] when the task
    /// cannot be claimed now (held, a retry not due, expired, finished, or
    /// requiring capabilities the agent lacks).
    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError>;

    /// Extends the lease to `now + lease`; returns the task.
    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError>;

    /// Marks a held task `DONE` with its result.
    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError>;

    /// Ends a held claim with a failure: back to `PENDING` for a retry, or
    /// `FAILED` for good.
    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError>;

    /// Gives a held task back to `PENDING` without counting the attempt.
    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError>;

    /// Moves a held task to `NEEDS_INPUT`, recording what is asked. The claim
    /// (and its token) stays with the agent; heartbeats keep it.
    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError>;

    /// Provides input to a `NEEDS_INPUT` task (called by whoever answers; no
    /// token needed).
    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError>;

    /// For the holder of a `NEEDS_INPUT` task: takes the provided input, if
    /// any, and moves the task back to `RUNNING`. `Ok(None)` while no input
    /// has arrived.
    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// Marks every `PENDING` task whose `expires_at` has passed `FAILED` with
    /// reason `expired` and returns them, so the caller reports each to the
    /// status sink.
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError>;

    /// A stream of new-task notifications for `room`, for agents that wait
    /// instead of polling. `None` when the backend has no notifications.
    fn watch(&self, room: &str) -> Option<tokio::sync::broadcast::Receiver<TaskId>> {
        let _ = room;
        None
    }
}
