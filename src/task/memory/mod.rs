//! [`InMemoryTaskStore`]: the reference [`TaskStore`].
//!
//! Read this module to write a store of your own. It does what every store
//! does, and no more:
//! - keep tasks and the idempotency index (`mod.rs`, this file);
//! - find the best claimable task of a room (`room.rs`: indexes derived from
//!   each task's fields);
//! - leave every rule to the [state machine](crate::task::state): load the
//!   task, call the operation, store the result.

mod room;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use self::room::{Entry, RoomState};
use super::state::StoredTask;
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use crate::clock::{Clock, SystemClock};
use crate::lifecycle::JobStatus;

/// Number of shards of the id and idempotency maps: enough that concurrent
/// inserts rarely meet on one lock.
const SHARDS: usize = 16;
/// Notifications a slow watcher may fall behind by before it misses some.
const NOTIFY_CAPACITY: usize = 256;
/// `list`'s limit when the query gives none.
const DEFAULT_LIST_LIMIT: usize = 100;

/// Hashes keys that senders choose (source names, delivery ids): foldhash,
/// seeded at random per map like SipHash. The seed is what stands between a
/// sender and crafted collisions: not every provider signs its delivery id
/// (GitHub's is a header outside the signature), so a replayed body can
/// carry any id.
type SenderKeyHasher = foldhash::fast::RandomState;

/// source → delivery id → task id.
type DedupShard = HashMap<String, HashMap<String, TaskId, SenderKeyHasher>, SenderKeyHasher>;

/// A [`TaskStore`] that keeps every task in process memory.
///
/// Nothing survives a restart, so it suits tests, examples and gateways whose
/// webhooks can be redelivered. Time comes from the [`Clock`] it is built
/// with, so tests move leases and TTLs forward by hand. Finished tasks stay
/// until [`purge_finished`](Self::purge_finished) forgets them; a room exists
/// while it holds tasks.
///
/// # Concurrency
/// Each room has its own lock, so agents of different rooms never contend;
/// the id and idempotency maps are sharded. Inside a room, claimable tasks
/// sit in ordered indexes (one per distinct set of required capabilities),
/// so a claim costs `O(g · log n)` for `g` capability sets, not a scan of the
/// room. No lock is held across an `.await`, and a poisoned lock is recovered
/// rather than turned into a panic.
///
/// Leases that run out, retries that come due and TTLs that pass are noticed
/// by whichever call next touches the room. The clock is assumed not to run
/// backwards.
///
/// # Task ids
/// Random UUIDs ([`TaskId::random`], version 4, lowercase, hyphenated): a
/// hash map gains nothing from ordered ids, unlike the SQL stores' indexes
/// ([`TaskId::time_ordered`]). Only the exact spelling
/// the store handed out finds a task.
///
/// # Notifications
/// [`watch`](TaskStore::watch) returns a per-room broadcast receiver. It gets
/// the task id when a task is inserted, released, put back for a retry, or
/// given input. Treat these as wake-up hints: a receiver that lags only misses
/// hints, and leases that run out send nothing, so waiting agents should also
/// claim on a timer. Watching a room does not create it.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, TaskStore};
/// use hookroom::JobStatus;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hookroom::task::StoreError> {
/// let store = InMemoryTaskStore::new();
/// let new = NewTask {
///     room: "reviews".into(),
///     title: "[PR] opened #42".into(),
///     description: String::new(),
///     priority: 1,
///     source: "github".into(),
///     source_event: "pull_request.opened".into(),
///     source_url: None,
///     delivery_id: "d-1".into(),
///     payload: r#"{"number":42}"#.into(),
///     required_capabilities: vec![],
///     ttl: None,
/// };
/// let first = store.insert(new.clone()).await?;
/// assert!(store.insert(new).await?.duplicate);
///
/// let request = ClaimRequest {
///     room: "reviews".into(),
///     agent: "bot".into(),
///     capabilities: vec![],
///     lease: Duration::from_secs(30),
/// };
/// let claimed = store.claim(&request).await?.expect("one pending task");
/// assert_eq!(claimed.task.id, first.id);
/// let done = store.complete(&claimed.task.id, &claimed.token, None).await?;
/// assert_eq!(done.status, JobStatus::Done);
/// # Ok(())
/// # }
/// ```
pub struct InMemoryTaskStore {
    clock: Arc<dyn Clock>,
    /// Rooms that hold tasks, by name. Inserts hold the read lock while they
    /// file a task, so a room is only dropped (under the write lock) when no
    /// insert is about to fill it.
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    /// Task id → where the task is, sharded by id.
    ids: [Mutex<HashMap<TaskId, Place, SenderKeyHasher>>; SHARDS],
    /// The idempotency index, sharded by `(source, delivery id)`.
    dedup: [Mutex<DedupShard>; SHARDS],
    hasher: SenderKeyHasher,
    /// Notification channels of watched rooms, by room name; a channel goes
    /// when its last receiver has.
    watchers: RwLock<HashMap<String, broadcast::Sender<TaskId>>>,
    /// Store-wide insertion order, for claim and list order among tasks
    /// created at the same instant.
    next_order: AtomicU64,
}

/// Where a task is: its room, and its place (store-wide insertion order),
/// which the room's map and indexes are keyed by.
#[derive(Debug, Clone)]
struct Place {
    room: Arc<Room>,
    order: u64,
}

/// A room: its lock and what it guards.
#[derive(Debug, Default)]
struct Room {
    state: Mutex<RoomState>,
}

impl std::fmt::Debug for InMemoryTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryTaskStore")
            .field("clock", &self.clock)
            .field("rooms", &read(&self.rooms).len())
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryTaskStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryTaskStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store on `clock` (a [`ManualClock`](crate::clock::ManualClock)
    /// in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            rooms: RwLock::new(HashMap::new()),
            ids: std::array::from_fn(|_| Mutex::new(HashMap::default())),
            dedup: std::array::from_fn(|_| Mutex::new(DedupShard::default())),
            hasher: SenderKeyHasher::default(),
            watchers: RwLock::new(HashMap::new()),
            next_order: AtomicU64::new(0),
        }
    }

    /// Forgets every `DONE` or `FAILED` task last changed before
    /// `finished_before`, and returns how many it forgot. A room left without
    /// tasks goes too.
    ///
    /// The store keeps finished tasks (and their idempotency entries) until
    /// told otherwise, so a long-running process calls this now and then to
    /// bound its memory. A redelivery of a forgotten task's webhook is a new
    /// task: purge only what its sender no longer retries.
    pub fn purge_finished(&self, finished_before: OffsetDateTime) -> usize {
        let mut forgotten: Vec<Task> = Vec::new();
        {
            let mut rooms = write(&self.rooms);
            rooms.retain(|_, room| {
                let mut state = lock(&room.state);
                let finished: Vec<u64> = state
                    .tasks
                    .values()
                    .filter(|entry| {
                        let task = &entry.stored.task;
                        task.status.is_terminal() && task.updated_at < finished_before
                    })
                    .map(|entry| entry.order)
                    .collect();
                for place in finished {
                    if let Some(entry) = state.remove(place) {
                        forgotten.push(entry.stored.task);
                    }
                }
                !state.tasks.is_empty()
            });
        }
        // The room locks are released first: inserts take these before a
        // room's.
        for task in &forgotten {
            lock(self.shard_of(&self.ids, &task.id)).remove(&task.id);
            let mut dedup = lock(self.shard_of(
                &self.dedup,
                &(task.source.as_str(), task.delivery_id.as_str()),
            ));
            if let Some(by_delivery) = dedup.get_mut(&task.source) {
                if by_delivery.get(&task.delivery_id) == Some(&task.id) {
                    by_delivery.remove(&task.delivery_id);
                }
                if by_delivery.is_empty() {
                    dedup.remove(&task.source);
                }
            }
        }
        forgotten.len()
    }

    fn shard_of<'a, T, K: std::hash::Hash + ?Sized>(
        &self,
        shards: &'a [Mutex<T>; SHARDS],
        key: &K,
    ) -> &'a Mutex<T> {
        // The remainder is below `SHARDS`, so the index is in bounds.
        &shards[(self.hasher.hash_one(key) % SHARDS as u64) as usize]
    }

    fn place_of(&self, id: &TaskId) -> Option<Place> {
        lock(self.shard_of(&self.ids, id)).get(id).cloned()
    }

    /// Runs a state machine operation on a task under its room's lock, and
    /// returns what it returned with the task as it left it.
    fn update<R>(
        &self,
        id: &TaskId,
        op: impl FnOnce(&mut StoredTask, OffsetDateTime) -> Result<R, StoreError>,
    ) -> Result<(R, Task), StoreError> {
        let not_found = || StoreError::NotFound { id: id.clone() };
        let place = self.place_of(id).ok_or_else(not_found)?;
        let mut state = lock(&place.room.state);
        // Read after the lock: time spent waiting for it does not shorten a
        // lease granted now.
        let now = self.clock.now();
        state.catch_up(now);
        let out = state
            .update(place.order, now, |stored| {
                op(stored, now).map(|out| (out, stored.task.clone()))
            })
            .ok_or_else(not_found)??;
        Ok(out)
    }

    fn notify(&self, room: &str, id: &TaskId) {
        // Every insert notifies, so this takes the shared lock; only a room
        // whose last watcher is gone needs the exclusive one.
        let gone = match read(&self.watchers).get(room) {
            Some(sender) => sender.send(id.clone()).is_err(),
            None => false,
        };
        if gone {
            let mut watchers = write(&self.watchers);
            if watchers
                .get(room)
                .is_some_and(|sender| sender.receiver_count() == 0)
            {
                watchers.remove(room);
            }
        }
    }
}

#[async_trait]
impl TaskStore for InMemoryTaskStore {
    async fn insert(&self, new: NewTask) -> Result<Inserted, StoreError> {
        // The shard stays locked until the task is filed, so two deliveries
        // of one webhook cannot both be new.
        let mut dedup = lock(self.shard_of(
            &self.dedup,
            &(new.source.as_str(), new.delivery_id.as_str()),
        ));
        if let Some(id) = dedup
            .get(&new.source)
            .and_then(|by_delivery| by_delivery.get(&new.delivery_id))
        {
            return Ok(Inserted {
                id: id.clone(),
                duplicate: true,
            });
        }

        let id = TaskId::random();
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        let (source, delivery_id, room_name) = (
            new.source.clone(),
            new.delivery_id.clone(),
            new.room.clone(),
        );
        loop {
            let rooms = read(&self.rooms);
            let Some(room) = rooms.get(&room_name) else {
                drop(rooms);
                write(&self.rooms).entry(room_name.clone()).or_default();
                // Filed under the read lock next time round.
                continue;
            };
            // The id is findable before the task is claimable, so whoever
            // claims it can call on it at once.
            let place = Place {
                room: Arc::clone(room),
                order,
            };
            lock(self.shard_of(&self.ids, &id)).insert(id.clone(), place);
            let mut state = lock(&room.state);
            let now = self.clock.now();
            let entry = Box::new(Entry {
                stored: StoredTask::new(id.clone(), new, now),
                order,
            });
            state.insert(entry, now);
            break;
        }
        // The idempotency entry goes in only once the task is stored: were
        // anything in between to fail, a redelivery must make a new task,
        // not be answered as a duplicate of nothing.
        dedup
            .entry(source)
            .or_default()
            .insert(delivery_id, id.clone());
        drop(dedup);

        self.notify(&room_name, &id);
        Ok(Inserted {
            id,
            duplicate: false,
        })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let Some(place) = self.place_of(id) else {
            return Ok(None);
        };
        let state = lock(&place.room.state);
        Ok(state
            .tasks
            .get(&place.order)
            .map(|entry| entry.stored.task.clone()))
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The cursor's place in list order: its creation time and insert.
        let before = match &query.before {
            None => None,
            Some(id) => {
                let not_found = || StoreError::NotFound { id: id.clone() };
                let place = self.place_of(id).ok_or_else(not_found)?;
                let state = lock(&place.room.state);
                let entry = state.tasks.get(&place.order).ok_or_else(not_found)?;
                Some((entry.stored.task.created_at, entry.order))
            }
        };
        let rooms: Vec<Arc<Room>> = {
            let rooms = read(&self.rooms);
            match &query.room {
                Some(name) => rooms.get(name).cloned().into_iter().collect(),
                None => rooms.values().cloned().collect(),
            }
        };
        let mut found: Vec<(OffsetDateTime, u64, Task)> = Vec::new();
        for room in rooms {
            let state = lock(&room.state);
            // Newest first: creation time, then insertion order.
            let mut matching: Vec<&Box<Entry>> = state
                .tasks
                .values()
                .filter(|entry| matches(&entry.stored.task, query))
                .filter(|entry| {
                    before.is_none_or(|cursor| (entry.stored.task.created_at, entry.order) < cursor)
                })
                .collect();
            matching.sort_unstable_by_key(|entry| {
                std::cmp::Reverse((entry.stored.task.created_at, entry.order))
            });
            matching.truncate(limit);
            found.extend(matching.into_iter().map(|entry| {
                (
                    entry.stored.task.created_at,
                    entry.order,
                    entry.stored.task.clone(),
                )
            }));
        }
        found.sort_unstable_by_key(|(created, order, _)| std::cmp::Reverse((*created, *order)));
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, _, task)| task).collect())
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let Some(room) = read(&self.rooms).get(&request.room).cloned() else {
            return Ok(None);
        };
        let mut state = lock(&room.state);
        let now = self.clock.now();
        state.catch_up(now);
        let Some(place) = state.best_claimable(&request.capabilities) else {
            return Ok(None);
        };
        let claimed = state.update(place, now, |stored| {
            stored
                .claim(&request.agent, &request.capabilities, request.lease, now)
                .map(|token| Claimed {
                    task: stored.task.clone(),
                    token,
                })
        });
        match claimed {
            Some(claimed) => claimed.map(Some),
            None => Err(StoreError::Backend {
                store: "memory",
                source: "a claimable task is missing from its room".into(),
            }),
        }
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let (token, task) = self.update(id, |stored, now| {
            stored.claim(&request.agent, &request.capabilities, request.lease, now)
        })?;
        Ok(Claimed { task, token })
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.heartbeat(token, lease, now))?;
        Ok(task)
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.complete(token, result, now))?;
        Ok(task)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.fail(token, reason, action, now))?;
        if task.status == JobStatus::Pending {
            self.notify(&task.room, &task.id);
        }
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.release(token, now))?;
        self.notify(&task.room, &task.id);
        Ok(task)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.request_input(token, prompt, now))?;
        Ok(task)
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let ((), task) = self.update(id, |stored, now| stored.provide_input(input, now))?;
        self.notify(&task.room, &task.id);
        Ok(task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (input, _) = self.update(id, |stored, now| stored.take_input(token, now))?;
        Ok(input)
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let rooms: Vec<Arc<Room>> = read(&self.rooms).values().cloned().collect();
        let mut expired = Vec::new();
        for room in rooms {
            let mut state = lock(&room.state);
            let now = self.clock.now();
            state.catch_up(now);
            for place in state.overdue() {
                let task = state.update(place, now, |stored| {
                    stored.expire(now).then(|| stored.task.clone())
                });
                expired.extend(task.flatten());
            }
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        let mut watchers = write(&self.watchers);
        // Channels whose receivers are all gone go now, so watching many
        // rooms once leaves nothing behind.
        watchers.retain(|_, sender| sender.receiver_count() > 0);
        let sender = watchers
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(NOTIFY_CAPACITY).0);
        Some(sender.subscribe())
    }
}

fn matches(task: &Task, query: &TaskQuery) -> bool {
    query.room.as_ref().is_none_or(|room| *room == task.room)
        && query.status.is_none_or(|status| status == task.status)
        && query
            .source
            .as_ref()
            .is_none_or(|source| *source == task.source)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
