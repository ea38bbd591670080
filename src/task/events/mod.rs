//! Lifecycle announcements: [`AnnouncingTaskStore`] wraps any
//! [`TaskStore`] and publishes a [`TaskEvent`] to a [`TaskEvents`] hub after
//! each operation that changed a task.
//!
//! The hub keeps the last events in a bounded buffer, so a subscriber that
//! lost its connection resumes after the last event it saw; every live
//! subscriber has a bounded queue of its own, and one that falls that far
//! behind is cut off (its stream ends) rather than buffered without bound.
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # async fn demo() -> Result<(), hookroom::task::StoreError> {
//! use std::sync::Arc;
//! use hookroom::task::{AnnouncingTaskStore, InMemoryTaskStore, TaskEventKind, TaskEvents, TaskStore};
//!
//! let events = Arc::new(TaskEvents::new());
//! let store = AnnouncingTaskStore::new(Arc::new(InMemoryTaskStore::new()), Arc::clone(&events));
//! let mut subscription = events.subscribe(None, None);
//! # let task = hookroom::task::NewTask {
//! #     room: "pr-review".into(), title: "t".into(), description: String::new(), priority: 1,
//! #     source: "github".into(), source_event: "e".into(), source_url: None,
//! #     delivery_id: "d1".into(), payload: "{}".into(), required_capabilities: vec![], ttl: None,
//! # };
//! store.insert(task).await?;
//! let event = subscription.recv().await.unwrap();
//! assert_eq!((event.kind, event.room.as_str()), (TaskEventKind::Created, "pr-review"));
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use crate::lifecycle::JobStatus;
use crate::status::{Job, Progress};

/// How many events a hub keeps for resumption unless told otherwise.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1024;

/// How many undelivered events a subscriber may have before it is cut off,
/// unless told otherwise.
pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 256;

/// Capacity of each room's new-work notification channel.
const WATCH_CAPACITY: usize = 64;

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskEventKind {
    /// A new task was stored (`task.created`; duplicates are not announced).
    Created,
    /// An agent claimed the task (`task.claimed`).
    Claimed,
    /// The holder asked for input (`task.needs_input`).
    NeedsInput,
    /// Input was provided for a `NEEDS_INPUT` task (`task.input_provided`).
    InputProvided,
    /// The holder gave the task back to `PENDING` (`task.released`).
    Released,
    /// The task is `DONE` (`task.done`).
    Done,
    /// A claim ended in failure (`task.failed`); the status says whether the
    /// task went back to `PENDING` for a retry or is `FAILED` for good.
    Failed,
    /// A pending task expired unclaimed (`task.expired`).
    Expired,
    /// The task's job changed: status, progress, message or artifacts
    /// (`job.updated`, published by
    /// [`AnnouncingJobRegistry`](crate::status::AnnouncingJobRegistry)).
    /// The event carries the job's status and progress after the change.
    JobUpdated,
}

impl TaskEventKind {
    /// The event name on the wire, e.g. `task.needs_input`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "task.created",
            Self::Claimed => "task.claimed",
            Self::NeedsInput => "task.needs_input",
            Self::InputProvided => "task.input_provided",
            Self::Released => "task.released",
            Self::Done => "task.done",
            Self::Failed => "task.failed",
            Self::Expired => "task.expired",
            Self::JobUpdated => "job.updated",
        }
    }
}

impl std::fmt::Display for TaskEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One announced change. Serializes as its data:
/// `{"id":"<task id>","room":…,"title":…,"status":"PENDING"}`, and for
/// `job.updated` also the job's `progress` when it has one (the job id is
/// the task id; `room` and `title` are the job's input's, empty when it
/// names none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskEvent {
    /// The hub's sequence number (from 1, in publication order): the
    /// server-sent event id, for resumption.
    #[serde(skip)]
    pub seq: u64,
    /// What happened.
    #[serde(skip)]
    pub kind: TaskEventKind,
    /// The task.
    #[serde(rename = "id")]
    pub task: TaskId,
    /// Its room.
    pub room: String,
    /// Its title.
    pub title: String,
    /// Its status after the change.
    pub status: JobStatus,
    /// The job's progress after the change (`job.updated` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// A hub of task lifecycle events: a bounded replay buffer and the live
/// subscribers. Share it through an `Arc` between the
/// [`AnnouncingTaskStore`] that publishes and the services that subscribe.
#[derive(Debug)]
pub struct TaskEvents {
    state: Mutex<Hub>,
    replay_capacity: usize,
    subscriber_capacity: usize,
}

#[derive(Debug, Default)]
struct Hub {
    /// The sequence number of the last event published (0: none yet).
    last_seq: u64,
    replay: VecDeque<Arc<TaskEvent>>,
    subscribers: Vec<Subscriber>,
    /// New-work notifications per room, for [`TaskStore::watch`].
    rooms: HashMap<String, broadcast::Sender<TaskId>>,
}

#[derive(Debug)]
struct Subscriber {
    room: Option<String>,
    sender: mpsc::Sender<Arc<TaskEvent>>,
    cut_off: Arc<AtomicBool>,
}

impl Default for TaskEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskEvents {
    /// A hub keeping [`DEFAULT_REPLAY_CAPACITY`] events for resumption and
    /// [`DEFAULT_SUBSCRIBER_CAPACITY`] undelivered events per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_REPLAY_CAPACITY, DEFAULT_SUBSCRIBER_CAPACITY)
    }

    /// A hub keeping `replay` events for resumption and letting each
    /// subscriber fall `per_subscriber` events behind before it is cut off
    /// (each at least 1).
    pub fn with_capacity(replay: usize, per_subscriber: usize) -> Self {
        Self {
            state: Mutex::new(Hub::default()),
            replay_capacity: replay.max(1),
            subscriber_capacity: per_subscriber.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sequence number of the last event published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// How many live subscribers there are.
    pub fn subscriber_count(&self) -> usize {
        let mut hub = self.lock();
        hub.subscribers.retain(|s| !s.sender.is_closed());
        hub.subscribers.len()
    }

    /// Announces that `task` went through `kind`, and returns the event.
    /// Subscribers whose queue is full are cut off.
    pub fn publish(&self, kind: TaskEventKind, task: &Task) -> Arc<TaskEvent> {
        self.publish_parts(kind, &task.id, &task.room, &task.title, task.status)
    }

    pub(crate) fn publish_parts(
        &self,
        kind: TaskEventKind,
        id: &TaskId,
        room: &str,
        title: &str,
        status: JobStatus,
    ) -> Arc<TaskEvent> {
        self.publish_event(kind, id, room, title, status, None)
    }

    /// Announces that `job` changed (`job.updated`), and returns the event.
    /// Its room and title are the job's input's `room` and `title` (empty
    /// when it has none: then only subscribers to every room get it). Job
    /// changes are not new work: room watchers are not woken.
    pub fn publish_job(&self, job: &Job) -> Arc<TaskEvent> {
        let text = |key: &str| {
            job.input_data
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("")
        };
        self.publish_job_parts(
            &TaskId::from(job.job_id.as_str()),
            text("room"),
            text("title"),
            job.status,
            job.progress.clone(),
        )
    }

    pub(crate) fn publish_job_parts(
        &self,
        id: &TaskId,
        room: &str,
        title: &str,
        status: JobStatus,
        progress: Option<Progress>,
    ) -> Arc<TaskEvent> {
        self.publish_event(TaskEventKind::JobUpdated, id, room, title, status, progress)
    }

    fn publish_event(
        &self,
        kind: TaskEventKind,
        id: &TaskId,
        room: &str,
        title: &str,
        status: JobStatus,
        progress: Option<Progress>,
    ) -> Arc<TaskEvent> {
        let mut hub = self.lock();
        hub.last_seq += 1;
        let event = Arc::new(TaskEvent {
            seq: hub.last_seq,
            kind,
            task: id.clone(),
            room: room.to_owned(),
            title: title.to_owned(),
            status,
            progress,
        });
        if hub.replay.len() == self.replay_capacity {
            hub.replay.pop_front();
        }
        hub.replay.push_back(Arc::clone(&event));
        hub.subscribers.retain(|subscriber| {
            if subscriber.room.as_deref().is_some_and(|r| r != room) {
                return !subscriber.sender.is_closed();
            }
            match subscriber.sender.try_send(Arc::clone(&event)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Too slow: dropping the sender ends its stream once it
                    // has read what is queued.
                    subscriber.cut_off.store(true, Ordering::Release);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        // New work for the room: a new task, or one back in PENDING.
        if kind != TaskEventKind::JobUpdated
            && status == JobStatus::Pending
            && let Some(sender) = hub.rooms.get(room)
            && sender.send(id.clone()).is_err()
        {
            hub.rooms.remove(room);
        }
        event
    }

    /// Subscribes to the events of `room` (every room with `None`).
    ///
    /// With `after` (the last event id a previous subscription saw), the
    /// subscription first replays the buffered events after it. When some of
    /// them are no longer buffered (or `after` is not an id this hub gave
    /// out, e.g. from before a restart), [`Subscription::missed`] is `true`
    /// and every buffered event is replayed: the subscriber should re-read
    /// the state it cares about.
    pub fn subscribe(&self, room: Option<&str>, after: Option<u64>) -> Subscription {
        let (sender, receiver) = mpsc::channel(self.subscriber_capacity);
        let cut_off = Arc::new(AtomicBool::new(false));
        let mut hub = self.lock();
        let mut missed = false;
        let mut replay = Vec::new();
        if let Some(after) = after {
            let oldest = hub.replay.front().map_or(hub.last_seq + 1, |e| e.seq);
            let from = if after > hub.last_seq || after + 1 < oldest {
                missed = true;
                0
            } else {
                after
            };
            replay = hub
                .replay
                .iter()
                .filter(|e| e.seq > from && room.is_none_or(|r| r == e.room))
                .cloned()
                .collect();
        }
        hub.subscribers.push(Subscriber {
            room: room.map(str::to_owned),
            sender,
            cut_off: Arc::clone(&cut_off),
        });
        Subscription {
            replay: replay.into(),
            missed,
            receiver,
            cut_off,
        }
    }

    /// Wakes every watcher of every room once with an empty task id: work
    /// may have arrived unannounced (e.g. while a database listener was
    /// reconnecting), so each should look again.
    pub fn wake_watchers(&self) {
        let mut hub = self.lock();
        hub.rooms
            .retain(|_, sender| sender.send(TaskId::from(String::new())).is_ok());
    }

    /// Records that events may have been lost (e.g. while a database
    /// listener was reconnecting): one sequence number is skipped and the
    /// replay buffer emptied, so a subscription resuming from before the gap
    /// is told it [`missed`](Subscription::missed) events; every live
    /// subscription ends (its client reconnects and learns the same); and
    /// every room's watchers are woken once
    /// ([`wake_watchers`](Self::wake_watchers)).
    pub fn mark_gap(&self) {
        let mut hub = self.lock();
        hub.last_seq += 1;
        hub.replay.clear();
        hub.subscribers.clear();
        drop(hub);
        self.wake_watchers();
    }

    /// New-work notifications for `room`: the id of every task announced in
    /// `PENDING` there (created, released, or put back for a retry), and an
    /// empty id after [`wake_watchers`](Self::wake_watchers).
    pub fn watch(&self, room: &str) -> broadcast::Receiver<TaskId> {
        let mut hub = self.lock();
        hub.rooms.retain(|_, sender| sender.receiver_count() > 0);
        hub.rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(WATCH_CAPACITY).0)
            .subscribe()
    }
}

/// A live subscription to a [`TaskEvents`] hub: the replayed events first,
/// then the new ones.
#[derive(Debug)]
pub struct Subscription {
    replay: VecDeque<Arc<TaskEvent>>,
    missed: bool,
    receiver: mpsc::Receiver<Arc<TaskEvent>>,
    cut_off: Arc<AtomicBool>,
}

impl Subscription {
    /// Whether events after the resumption id were lost (see
    /// [`TaskEvents::subscribe`]).
    pub fn missed(&self) -> bool {
        self.missed
    }

    /// Whether the hub cut this subscriber off for falling too far behind.
    /// Its stream ends after the queued events.
    pub fn is_cut_off(&self) -> bool {
        self.cut_off.load(Ordering::Acquire)
    }

    /// The next event; `None` once the subscription ended (cut off, or the
    /// hub dropped).
    pub async fn recv(&mut self) -> Option<Arc<TaskEvent>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next event (see [`recv`](Self::recv)).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<TaskEvent>>> {
        if let Some(event) = self.replay.pop_front() {
            return Poll::Ready(Some(event));
        }
        self.receiver.poll_recv(cx)
    }
}

/// A [`TaskStore`] that publishes every change it makes to a [`TaskEvents`]
/// hub, after the inner store's operation succeeded:
///
/// | operation | event |
/// | --- | --- |
/// | `insert` (not a duplicate) | `task.created` |
/// | `claim`, `claim_task` | `task.claimed` |
/// | `request_input` | `task.needs_input` |
/// | `provide_input` | `task.input_provided` |
/// | `release` | `task.released` |
/// | `complete` | `task.done` |
/// | `fail` | `task.failed` (status `PENDING` when retried) |
/// | `expire_pending` | `task.expired`, one per task |
///
/// Heartbeats and `take_input` are not announced. Only changes made through
/// this wrapper are seen: several processes sharing one database each
/// announce their own. For changes made anywhere on a PostgreSQL database,
/// build the store with
/// [`PostgresTaskStoreBuilder::with_events`](crate::postgres::PostgresTaskStoreBuilder::with_events)
/// instead of wrapping it (it listens with `LISTEN/NOTIFY`).
///
/// Its [`watch`](TaskStore::watch) is fed by the hub: every task announced
/// in `PENDING` (new, released, or put back for a retry).
#[derive(Debug, Clone)]
pub struct AnnouncingTaskStore {
    inner: Arc<dyn TaskStore>,
    events: Arc<TaskEvents>,
}

impl AnnouncingTaskStore {
    /// Wraps `inner`, announcing to `events`.
    pub fn new(inner: Arc<dyn TaskStore>, events: Arc<TaskEvents>) -> Self {
        Self { inner, events }
    }

    /// The hub this store announces to.
    pub fn events(&self) -> &Arc<TaskEvents> {
        &self.events
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn TaskStore> {
        &self.inner
    }

    fn announce(
        &self,
        kind: TaskEventKind,
        task: Result<Task, StoreError>,
    ) -> Result<Task, StoreError> {
        if let Ok(task) = &task {
            self.events.publish(kind, task);
        }
        task
    }
}

#[async_trait]
impl TaskStore for AnnouncingTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        let (room, title) = (task.room.clone(), task.title.clone());
        let inserted = self.inner.insert(task).await?;
        if !inserted.duplicate {
            self.events.publish_parts(
                TaskEventKind::Created,
                &inserted.id,
                &room,
                &title,
                JobStatus::Pending,
            );
        }
        Ok(inserted)
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.inner.get(id).await
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.inner.list(query).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let claimed = self.inner.claim(request).await?;
        if let Some(claimed) = &claimed {
            self.events.publish(TaskEventKind::Claimed, &claimed.task);
        }
        Ok(claimed)
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let claimed = self.inner.claim_task(id, request).await?;
        self.events.publish(TaskEventKind::Claimed, &claimed.task);
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        self.inner.heartbeat(id, token, lease).await
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let task = self.inner.complete(id, token, result).await;
        self.announce(TaskEventKind::Done, task)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let task = self.inner.fail(id, token, reason, action).await;
        self.announce(TaskEventKind::Failed, task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let task = self.inner.release(id, token).await;
        self.announce(TaskEventKind::Released, task)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let task = self.inner.request_input(id, token, prompt).await;
        self.announce(TaskEventKind::NeedsInput, task)
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let task = self.inner.provide_input(id, input).await;
        self.announce(TaskEventKind::InputProvided, task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.take_input(id, token).await
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let expired = self.inner.expire_pending().await?;
        for task in &expired {
            self.events.publish(TaskEventKind::Expired, task);
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        Some(self.events.watch(room))
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests;
