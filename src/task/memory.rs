//! [`InMemoryTaskStore`]: the always-compiled [`TaskStore`] backend, and the
//! fixture every other component's tests run against.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::broadcast;

use super::fence::check_held;
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use crate::clock::{Clock, SystemClock};
use crate::status::JobStatus;

/// How many shards the id directory and the idempotency index are split into,
/// so inserts and lookups in different shards never wait on each other.
const SHARDS: usize = 16;
/// Notifications a slow watcher may fall behind by before it sees `Lagged`
/// (they are hints, so a small buffer per room is enough).
const NOTIFY_CAPACITY: usize = 256;
/// `TaskQuery::limit` when the caller gives none.
const DEFAULT_LIST_LIMIT: usize = 100;
/// Where a deadline lands when `now + duration` does not fit in a date.
const FAR_FUTURE: OffsetDateTime = PrimitiveDateTime::MAX.assume_utc();

/// A [`TaskStore`] that keeps every task in process memory.
///
/// Nothing survives a restart, so it suits tests, examples and gateways whose
/// webhooks can be redelivered. Time comes from the [`Clock`] it is built
/// with, so tests move leases and TTLs forward by hand. Finished tasks stay
/// until [`purge_finished`](Self::purge_finished) forgets them.
///
/// # Concurrency
/// Each room has its own lock, so agents of different rooms never contend;
/// the task directory and the idempotency index are sharded. Inside a room,
/// claimable tasks sit in ordered indexes (one per distinct set of required
/// capabilities), so a claim costs `O(g · log n)` for `g` capability sets, not
/// a scan of the room. No lock is held across an `.await`, and a poisoned lock
/// is recovered rather than turned into a panic.
///
/// Expired leases and due retries are applied lazily, by whichever call next
/// touches the room. A `RUNNING` or `NEEDS_INPUT` task whose lease ran out
/// keeps reading as it was (with its lease end in the past) until a claim
/// takes it over, as in every backend; its token is refused from the moment
/// the lease ends. The clock is assumed not to run backwards.
///
/// # Notifications
/// [`watch`](TaskStore::watch) returns a per-room broadcast receiver. It gets
/// the task id when a task is inserted, released, put back for a retry, or
/// given input. Treat these as wake-up hints: a receiver that lags only misses
/// hints, and leases that run out send nothing, so waiting agents should also
/// claim on a timer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, TaskStore};
/// use hookroom::status::JobStatus;
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
    rooms: RwLock<HashMap<Arc<str>, Arc<Room>>>,
    /// Task id (the UUID's 128 bits) → where the task lives.
    directory: [RwLock<IntMap<u128, Location>>; SHARDS],
    /// source → delivery id → task id, sharded by `(source, delivery id)`.
    dedup: [Mutex<DedupShard>; SHARDS],
    hasher: SenderKeyHasher,
    /// Store-wide insertion order, for listing across rooms.
    next_order: AtomicU64,
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
            directory: std::array::from_fn(|_| RwLock::new(IntMap::default())),
            dedup: std::array::from_fn(|_| Mutex::new(DedupShard::default())),
            hasher: SenderKeyHasher::default(),
            next_order: AtomicU64::new(1),
        }
    }

    /// Forgets every `DONE` or `FAILED` task last changed before
    /// `finished_before`, and returns how many it forgot.
    ///
    /// The store keeps finished tasks (and their idempotency entries) until
    /// told otherwise, so a long-running process calls this now and then to
    /// bound its memory. A redelivery of a forgotten task's webhook is a new
    /// task: purge only what its sender no longer retries.
    pub fn purge_finished(&self, finished_before: OffsetDateTime) -> usize {
        let mut forgotten = Vec::new();
        for room in self.all_rooms() {
            let mut state = lock(&room.state);
            let finished: Vec<u64> = state
                .tasks
                .iter()
                .filter(|(_, stored)| {
                    stored.task.status.is_terminal() && stored.task.updated_at < finished_before
                })
                .map(|(seq, _)| *seq)
                .collect();
            for seq in finished {
                if let Some(stored) = state.tasks.remove(&seq) {
                    forgotten.push(stored.task);
                }
            }
        }
        // The room locks are released first: inserts take the index locks
        // before a room's.
        for task in &forgotten {
            let Ok(uuid) = uuid::Uuid::try_parse(task.id.as_str()) else {
                continue;
            };
            let key = uuid.as_u128();
            if let Some(directory) = self.directory.get(directory_shard(key)) {
                write(directory).remove(&key);
            }
            let shard = self.shard(&(task.source.as_str(), task.delivery_id.as_str()));
            if let Some(dedup) = self.dedup.get(shard) {
                let mut dedup = lock(dedup);
                if let Some(by_delivery) = dedup.get_mut(task.source.as_str()) {
                    if by_delivery.get(task.delivery_id.as_str()) == Some(&task.id) {
                        by_delivery.remove(task.delivery_id.as_str());
                    }
                    if by_delivery.is_empty() {
                        dedup.remove(task.source.as_str());
                    }
                }
            }
        }
        forgotten.len()
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        read(&self.rooms).get(name).cloned()
    }

    fn room_or_create(&self, name: &str) -> Arc<Room> {
        if let Some(room) = self.room(name) {
            return room;
        }
        write(&self.rooms)
            .entry(Arc::from(name))
            .or_insert_with(|| Arc::new(Room::new()))
            .clone()
    }

    fn all_rooms(&self) -> Vec<Arc<Room>> {
        read(&self.rooms).values().cloned().collect()
    }

    fn shard<T: std::hash::Hash + ?Sized>(&self, key: &T) -> usize {
        // `SHARDS` is a power of two, so the remainder keeps the hash's low bits.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    fn locate(&self, id: &TaskId) -> Result<Location, StoreError> {
        // Every id this store hands out is a UUID; anything else is unknown.
        let key = uuid::Uuid::try_parse(id.as_str())
            .map_err(|_| StoreError::NotFound { id: id.clone() })?
            .as_u128();
        self.directory
            .get(directory_shard(key))
            .and_then(|d| read(d).get(&key).cloned())
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })
    }

    /// Runs `op` on the task under its room's lock, after applying expired
    /// leases and due retries.
    fn with_task<R>(
        &self,
        id: &TaskId,
        op: impl FnOnce(&mut RoomState, u64, OffsetDateTime) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let location = self.locate(id)?;
        let now = self.clock.now();
        let mut state = lock(&location.room.state);
        state.normalize(now);
        // The UUID parser also accepts other spellings of the id: only the
        // exact id names the task.
        if state.task(location.seq).is_none_or(|task| task.id != *id) {
            return Err(StoreError::NotFound { id: id.clone() });
        }
        op(&mut state, location.seq, now)
    }

    fn notify(&self, id: &TaskId, room: &str) {
        if let Some(room) = self.room(room) {
            // No receiver is not an error: nobody is waiting.
            let _ = room.notify.send(id.clone());
        }
    }
}

#[async_trait]
impl TaskStore for InMemoryTaskStore {
    async fn insert(&self, new: NewTask) -> Result<Inserted, StoreError> {
        let now = self.clock.now();
        let dedup_shard = self.shard(&(new.source.as_str(), new.delivery_id.as_str()));
        let Some(dedup) = self.dedup.get(dedup_shard) else {
            return Err(internal("dedup shard out of range"));
        };
        let mut dedup = lock(dedup);
        if let Some(id) = dedup
            .get(new.source.as_str())
            .and_then(|by_delivery| by_delivery.get(new.delivery_id.as_str()))
        {
            return Ok(Inserted {
                id: id.clone(),
                duplicate: true,
            });
        }

        let uuid = uuid::Uuid::new_v4();
        let key = uuid.as_u128();
        let id = TaskId::from_uuid(uuid);
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        let room = self.room_or_create(&new.room);
        let seq = room.next_seq.fetch_add(1, Ordering::Relaxed);
        // The directory entry goes in before the task becomes claimable, so
        // whoever claims it can always find it by id.
        let Some(directory) = self.directory.get(directory_shard(key)) else {
            return Err(internal("directory shard out of range"));
        };
        write(directory).insert(
            key,
            Location {
                room: room.clone(),
                seq,
            },
        );

        // The idempotency index keeps its own copy of the delivery id and
        // stores a source's name once. Its entry goes in only once the task
        // is stored: were anything in between to panic, a redelivery must
        // make a new task, not be answered as a duplicate of nothing.
        let delivery_key = Box::<str>::from(new.delivery_id.as_str());
        if !dedup.contains_key(new.source.as_str()) {
            dedup.insert(Box::from(new.source.as_str()), HashMap::default());
        }
        let Some(by_delivery) = dedup.get_mut(new.source.as_str()) else {
            return Err(internal("idempotency index lost a source"));
        };

        let capabilities = {
            let mut caps = new.required_capabilities.clone();
            caps.sort_unstable();
            caps.dedup();
            caps
        };
        let task = Task {
            id: id.clone(),
            room: new.room,
            title: new.title,
            description: new.description,
            priority: new.priority,
            status: JobStatus::Pending,
            source: new.source,
            source_event: new.source_event,
            source_url: new.source_url,
            delivery_id: new.delivery_id,
            payload: new.payload,
            required_capabilities: new.required_capabilities,
            created_at: now,
            updated_at: now,
            expires_at: new.ttl.map(|ttl| deadline(now, ttl)),
            not_before: None,
            claimed_by: None,
            lease_expires_at: None,
            attempts: 0,
            input_request: None,
            input: None,
            result: None,
            failure: None,
        };
        {
            let mut state = lock(&room.state);
            let capabilities = state.intern(capabilities);
            state.tasks.insert(
                seq,
                Stored {
                    task: Box::new(task),
                    token: 0,
                    capabilities,
                    order,
                },
            );
            state.enqueue(seq, now);
        }
        by_delivery.insert(delivery_key, id.clone());
        drop(dedup);

        // No receiver is not an error: nobody is waiting.
        let _ = room.notify.send(id.clone());
        Ok(Inserted {
            id,
            duplicate: false,
        })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        match self.with_task(id, |state, seq, _| Ok(state.task(seq).cloned())) {
            Ok(task) => Ok(task),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rooms = match &query.room {
            Some(name) => self.room(name).into_iter().collect(),
            None => self.all_rooms(),
        };
        let now = self.clock.now();
        let mut found: Vec<(OffsetDateTime, u64, Task)> = Vec::new();
        for room in rooms {
            let mut state = lock(&room.state);
            state.normalize(now);
            // Newest first across rooms: creation time, then store-wide
            // insertion order.
            let mut keys: Vec<(OffsetDateTime, u64, u64)> = state
                .tasks
                .iter()
                .filter(|(_, stored)| matches(&stored.task, query))
                .map(|(seq, stored)| (stored.task.created_at, stored.order, *seq))
                .collect();
            keys.sort_unstable_by(|a, b| b.cmp(a));
            keys.truncate(limit);
            found.extend(keys.into_iter().filter_map(|(created, order, seq)| {
                state.task(seq).map(|task| (created, order, task.clone()))
            }));
        }
        found.sort_unstable_by_key(|(created, order, _)| std::cmp::Reverse((*created, *order)));
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, _, task)| task).collect())
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let Some(room) = self.room(&request.room) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let mut state = lock(&room.state);
        state.normalize(now);
        let Some(seq) = state.best_claimable(&request.capabilities) else {
            return Ok(None);
        };
        state.dequeue_pending(seq);
        // Random, so a token seen on the wire (or guessed) cannot be turned
        // into another claim's.
        let token = uuid::Uuid::new_v4().as_u128();
        let lease_until = deadline(now, request.lease);
        let Some(stored) = state.tasks.get_mut(&seq) else {
            return Err(internal("claimable task missing"));
        };
        stored.token = token;
        let task = &mut stored.task;
        task.status = JobStatus::Running;
        task.claimed_by = Some(request.agent.clone());
        task.lease_expires_at = Some(lease_until);
        task.attempts = task.attempts.saturating_add(1);
        task.updated_at = now;
        task.not_before = None;
        task.expires_at = None;
        // A task taken over from a lapsed claim drops that claim's question.
        task.input_request = None;
        task.input = None;
        let task = (**task).clone();
        state.leases.insert((lease_until, seq));
        Ok(Some(Claimed {
            task,
            token: ClaimToken::new(token_text(token)),
        }))
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "heartbeat", HELD)?;
            let old = task.lease_expires_at;
            let until = deadline(now, lease);
            task.lease_expires_at = Some(until);
            task.updated_at = now;
            let task = task.clone();
            if let Some(old) = old {
                state.leases.remove(&(old, seq));
            }
            state.leases.insert((until, seq));
            Ok(task)
        })
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "complete", &[JobStatus::Running])?;
            let lease = task.lease_expires_at.take();
            task.status = JobStatus::Done;
            task.result = result;
            task.updated_at = now;
            let task = task.clone();
            state.end_claim(seq, lease);
            Ok(task)
        })
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let task = self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "fail", HELD)?;
            let lease = task.lease_expires_at.take();
            task.failure = Some(reason.to_owned());
            task.updated_at = now;
            match action {
                FailAction::Fail => task.status = JobStatus::Failed,
                FailAction::Retry { after } => {
                    back_to_pending(task);
                    task.not_before = Some(deadline(now, after));
                }
            }
            let task = task.clone();
            state.end_claim(seq, lease);
            if task.status == JobStatus::Pending {
                state.enqueue(seq, now);
            }
            Ok(task)
        })?;
        if task.status == JobStatus::Pending {
            self.notify(&task.id, &task.room);
        }
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let task = self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "release", HELD)?;
            let lease = task.lease_expires_at.take();
            back_to_pending(task);
            task.attempts = task.attempts.saturating_sub(1);
            task.updated_at = now;
            let task = task.clone();
            state.end_claim(seq, lease);
            state.enqueue(seq, now);
            Ok(task)
        })?;
        self.notify(&task.id, &task.room);
        Ok(task)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "request_input", &[JobStatus::Running])?;
            task.status = JobStatus::NeedsInput;
            task.input_request = Some(prompt.to_owned());
            task.input = None;
            task.updated_at = now;
            Ok(task.clone())
        })
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let task = self.with_task(id, |state, seq, now| {
            let Some(task) = state.task_mut(seq) else {
                return Err(StoreError::NotFound { id: id.clone() });
            };
            if task.status != JobStatus::NeedsInput {
                return Err(StoreError::InvalidTransition {
                    id: id.clone(),
                    from: task.status,
                    operation: "provide_input",
                });
            }
            task.input = Some(input);
            task.updated_at = now;
            Ok(task.clone())
        })?;
        self.notify(&task.id, &task.room);
        Ok(task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.with_task(id, |state, seq, now| {
            let task = state.held(id, seq, token, now, "take_input", &[JobStatus::NeedsInput])?;
            let Some(input) = task.input.take() else {
                return Ok(None);
            };
            task.status = JobStatus::Running;
            task.input_request = None;
            task.updated_at = now;
            Ok(Some(input))
        })
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let now = self.clock.now();
        let mut expired = Vec::new();
        for room in self.all_rooms() {
            let mut state = lock(&room.state);
            state.normalize(now);
            let overdue = std::mem::take(&mut state.overdue);
            for seq in overdue {
                if let Some(task) = state.task_mut(seq) {
                    task.status = JobStatus::Failed;
                    task.failure = Some("expired".to_owned());
                    task.updated_at = now;
                    expired.push(task.clone());
                }
            }
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        Some(self.room_or_create(room).notify.subscribe())
    }
}

/// source → delivery id → task id. Nested so each source name is stored
/// once.
type DedupShard = HashMap<Box<str>, HashMap<Box<str>, TaskId, SenderKeyHasher>, SenderKeyHasher>;

/// Hashes keys that senders choose (source names, delivery ids): foldhash,
/// seeded at random per map like SipHash, at a fraction of its cost per key.
/// The seed is what stands between a sender and crafted collisions: not
/// every provider signs its delivery id (GitHub's is a header outside the
/// signature), so a replayed body can carry any id.
type SenderKeyHasher = foldhash::fast::RandomState;

/// A map keyed by integers this store makes itself: sequence numbers and
/// the random bits of task ids.
type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntKeyHasher>>;

/// Hashes [`IntMap`] keys without SipHash. Nobody outside the store
/// chooses those keys, so resistance to crafted collisions buys nothing
/// there, while SipHash's cost is paid on every insert and again for every
/// entry each time a map grows.
///
/// - A sequence number keeps its low bits: a room numbers its tasks densely,
///   so consecutive tasks land in consecutive buckets and appending to and
///   growing a room's map walk memory in order instead of jumping across
///   it. The top seven bits, which the table compares first, come from a
///   multiply-and-fold so they still tell neighbours apart.
/// - A task id's random bits are folded and mixed the same way.
#[derive(Debug, Default, Clone, Copy)]
struct IntKeyHasher(u64);

/// The bits of a hash the table uses for its one-byte tag.
const TAG_BITS: u64 = 0x7F << 57;

fn mix(x: u64) -> u64 {
    // Fibonacci hashing: the product spreads nearby keys over the high
    // bits, the fold brings some of them down.
    let x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 32)
}

impl Hasher for IntKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for integer keys; kept correct for any other use.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix(self.0 ^ u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n & !TAG_BITS) | (mix(n) & TAG_BITS);
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = mix(n as u64 ^ (n >> 64) as u64);
    }
}

/// The directory shard of a task: v4 UUIDs are random in their low bits.
fn directory_shard(key: u128) -> usize {
    (key % SHARDS as u128) as usize
}

/// States in which a claim is held (and may be heartbeaten, failed, released).
const HELD: &[JobStatus] = &[JobStatus::Running, JobStatus::NeedsInput];

/// Where a task lives: its room and its sequence number there.
#[derive(Clone)]
struct Location {
    room: Arc<Room>,
    seq: u64,
}

struct Room {
    state: Mutex<RoomState>,
    notify: broadcast::Sender<TaskId>,
    /// The room's next sequence number. Dense per room, so the room's task
    /// map (see [`IntKeyHasher`]) fills consecutive buckets whatever the
    /// other rooms receive meanwhile.
    next_seq: AtomicU64,
}

impl Room {
    fn new() -> Self {
        Self {
            state: Mutex::new(RoomState::default()),
            notify: broadcast::channel(NOTIFY_CAPACITY).0,
            next_seq: AtomicU64::new(1),
        }
    }
}

/// A claim token's wire form: 32 lowercase hex digits.
fn token_text(token: u128) -> String {
    format!("{token:032x}")
}

struct Stored {
    /// Boxed so the room's map stays dense; tasks are large.
    task: Box<Task>,
    /// The last claim's fencing token (128 random bits); 0 before the
    /// first claim.
    token: u128,
    /// `required_capabilities`, sorted and deduplicated, shared with every
    /// task of the room that requires the same set.
    capabilities: Arc<[String]>,
    /// Store-wide insertion order (sequence numbers are per room).
    order: u64,
}

/// Claim order: priority, then creation time, then insertion order.
type ReadyKey = (u32, OffsetDateTime, u64);

/// One room. Every `PENDING` task is in exactly one of `ready`, `delayed`
/// or `overdue`; every held task is in `leases`.
#[derive(Default)]
struct RoomState {
    tasks: IntMap<u64, Stored>,
    /// Claimable now, grouped by the capabilities they require.
    ready: HashMap<Arc<[String]>, BTreeSet<ReadyKey>>,
    /// Put back for a retry, claimable from `not_before`.
    delayed: BTreeSet<(OffsetDateTime, u64)>,
    /// Ready tasks with a TTL, by `expires_at`.
    ttl: BTreeSet<(OffsetDateTime, u64)>,
    /// Past their TTL and unclaimed: waiting for `expire_pending`.
    overdue: BTreeSet<u64>,
    /// Held tasks, by lease end.
    leases: BTreeSet<(OffsetDateTime, u64)>,
    /// Every distinct set of required capabilities seen in the room.
    capability_sets: HashSet<Arc<[String]>>,
}

impl RoomState {
    fn task(&self, seq: u64) -> Option<&Task> {
        self.tasks.get(&seq).map(|stored| &*stored.task)
    }

    fn task_mut(&mut self, seq: u64) -> Option<&mut Task> {
        self.tasks.get_mut(&seq).map(|stored| &mut *stored.task)
    }

    /// Shares one allocation among the tasks needing the same capabilities.
    fn intern(&mut self, capabilities: Vec<String>) -> Arc<[String]> {
        if let Some(shared) = self.capability_sets.get(&capabilities[..]) {
            return shared.clone();
        }
        let shared: Arc<[String]> = Arc::from(capabilities);
        self.capability_sets.insert(shared.clone());
        shared
    }

    /// Applies what the passing of time did to the indexes: tasks whose
    /// lease ran out and retries that are due become claimable, pending
    /// tasks past their TTL stop being claimable.
    fn normalize(&mut self, now: OffsetDateTime) {
        while let Some(&(until, seq)) = self.leases.first() {
            if until > now {
                break;
            }
            self.leases.pop_first();
            // The task reads as it was until a claim takes it over; `held`
            // already refuses its token, as the lease is in the past.
            self.enqueue(seq, now);
        }
        while let Some(&(due, seq)) = self.delayed.first() {
            if due > now {
                break;
            }
            self.delayed.pop_first();
            self.enqueue(seq, now);
        }
        while let Some(&(expires, seq)) = self.ttl.first() {
            if expires > now {
                break;
            }
            self.ttl.pop_first();
            self.remove_ready(seq);
            self.overdue.insert(seq);
        }
    }

    /// Files a `PENDING` task (or a held one whose lease ran out) under the
    /// index its times call for.
    fn enqueue(&mut self, seq: u64, now: OffsetDateTime) {
        let Some(stored) = self.tasks.get(&seq) else {
            return;
        };
        let task = &stored.task;
        if let Some(due) = task.not_before.filter(|due| *due > now) {
            self.delayed.insert((due, seq));
        } else if task.expires_at.is_some_and(|expires| expires <= now) {
            self.overdue.insert(seq);
        } else {
            let key = (task.priority, task.created_at, seq);
            if let Some(expires) = task.expires_at {
                self.ttl.insert((expires, seq));
            }
            self.ready
                .entry(stored.capabilities.clone())
                .or_default()
                .insert(key);
        }
    }

    fn remove_ready(&mut self, seq: u64) {
        let Some(stored) = self.tasks.get(&seq) else {
            return;
        };
        let key = (stored.task.priority, stored.task.created_at, seq);
        if let Some(group) = self.ready.get_mut(&stored.capabilities) {
            group.remove(&key);
            if group.is_empty() {
                self.ready.remove(&stored.capabilities);
            }
        }
    }

    /// Takes a task being claimed out of the pending indexes.
    fn dequeue_pending(&mut self, seq: u64) {
        self.remove_ready(seq);
        if let Some(expires) = self.task(seq).and_then(|task| task.expires_at) {
            self.ttl.remove(&(expires, seq));
        }
    }

    /// The first claimable task, in claim order, whose required
    /// capabilities `agent_capabilities` covers.
    fn best_claimable(&self, agent_capabilities: &[String]) -> Option<u64> {
        self.ready
            .iter()
            .filter(|(required, _)| required.iter().all(|c| agent_capabilities.contains(c)))
            .filter_map(|(_, group)| group.first())
            .min()
            .map(|&(_, _, seq)| seq)
    }

    /// The task, if `token` holds it at `now` and its state allows
    /// `operation`.
    ///
    /// The rules are every backend's: [`check_held`].
    fn held(
        &mut self,
        id: &TaskId,
        seq: u64,
        token: &ClaimToken,
        now: OffsetDateTime,
        operation: &'static str,
        allowed: &[JobStatus],
    ) -> Result<&mut Task, StoreError> {
        let Some(stored) = self.tasks.get_mut(&seq) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        let current = (stored.token != 0).then(|| token_text(stored.token));
        check_held(
            &stored.task,
            current.as_deref(),
            token,
            now,
            operation,
            allowed,
        )?;
        Ok(&mut stored.task)
    }

    /// Drops an ended claim's lease index entry (the caller has updated the
    /// task's fields; the token stays as the last claim's).
    fn end_claim(&mut self, seq: u64, lease: Option<OffsetDateTime>) {
        if let Some(lease) = lease {
            self.leases.remove(&(lease, seq));
        }
    }
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

fn matches(task: &Task, query: &TaskQuery) -> bool {
    query.room.as_ref().is_none_or(|room| *room == task.room)
        && query.status.is_none_or(|status| status == task.status)
        && query
            .source
            .as_ref()
            .is_none_or(|source| *source == task.source)
}

/// `now + duration`, saturating at the largest representable time.
fn deadline(now: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(FAR_FUTURE)
}

fn internal(what: &'static str) -> StoreError {
    StoreError::Backend {
        store: "memory",
        source: what.into(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::conformance::task_store as suite;

    fn store() -> (InMemoryTaskStore, ManualClock) {
        let clock = ManualClock::at_unix(1_700_000_000);
        (
            InMemoryTaskStore::with_clock(Arc::new(clock.clone())),
            clock,
        )
    }

    /// Every check, each on the concrete store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_memory_conformance() {
        let (store, clock) = store();
        suite::insert_idempotent(&store, &clock).await;
        suite::get_and_list(&store, &clock).await;
        suite::claim_order(&store, &clock).await;
        suite::claim_capabilities(&store, &clock).await;
        suite::claim_exclusive_and_fenced(&store, &clock).await;
        suite::heartbeat_extends_lease(&store, &clock).await;
        suite::complete_fail_release(&store, &clock).await;
        suite::illegal_transitions(&store, &clock).await;
        suite::retry_not_before(&store, &clock).await;
        suite::needs_input_round_trip(&store, &clock).await;
        suite::lease_expiry(&store, &clock).await;
        suite::ttl_expiry(&store, &clock).await;
        suite::watch_notifies(&store, &clock).await;
        suite::state_machine(&store, &clock, 512).await;
        let report = suite::claim_race(Arc::new(store), 8, 10_000).await;
        assert_eq!(report.claims_per_agent.len(), 8);
        assert!(
            report.claims_per_agent.iter().all(|claims| *claims > 0),
            "every agent got work: {report:?}"
        );
        println!("claim race: {report:?}");
    }

    fn new_task(delivery: &str) -> NewTask {
        NewTask {
            room: "room".into(),
            title: "title".into(),
            description: String::new(),
            priority: 1,
            source: "github".into(),
            source_event: "push".into(),
            source_url: None,
            delivery_id: delivery.into(),
            payload: "{}".into(),
            required_capabilities: Vec::new(),
            ttl: None,
        }
    }

    fn request() -> ClaimRequest {
        ClaimRequest {
            room: "room".into(),
            agent: "agent".into(),
            capabilities: Vec::new(),
            lease: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn only_the_exact_id_spelling_finds_a_task() {
        let (store, _) = store();
        let id = store.insert(new_task("1")).await.expect("insert").id;
        assert!(store.get(&id).await.expect("get").is_some());
        let braced = TaskId::from(format!("{{{id}}}"));
        let upper = TaskId::from(id.as_str().to_uppercase());
        for other in [braced, upper, TaskId::from("not a uuid"), TaskId::from("")] {
            assert!(store.get(&other).await.expect("get").is_none(), "{other}");
            assert!(matches!(
                store.provide_input(&other, serde_json::json!(1)).await,
                Err(StoreError::NotFound { .. })
            ));
        }
    }

    #[tokio::test]
    async fn watchers_hear_of_tasks_they_could_now_claim() {
        let (store, _) = store();
        let mut watch = store.watch("room").expect("memory store notifies");
        let id = store.insert(new_task("1")).await.expect("insert").id;
        assert_eq!(watch.try_recv().ok(), Some(id.clone()), "insert");
        let duplicate = store.insert(new_task("1")).await.expect("insert");
        assert!(duplicate.duplicate);
        assert!(watch.try_recv().is_err(), "a duplicate is not news");

        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        assert!(watch.try_recv().is_err(), "a claim is not news");
        store.release(&id, &claimed.token).await.expect("release");
        assert_eq!(watch.try_recv().ok(), Some(id.clone()), "release");

        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        let retry = FailAction::Retry {
            after: Duration::ZERO,
        };
        store
            .fail(&id, &claimed.token, "x", retry)
            .await
            .expect("fail");
        assert_eq!(watch.try_recv().ok(), Some(id.clone()), "retry");

        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        store
            .request_input(&id, &claimed.token, "?")
            .await
            .expect("request_input");
        store
            .provide_input(&id, serde_json::json!("answer"))
            .await
            .expect("provide_input");
        assert_eq!(watch.try_recv().ok(), Some(id), "input");
    }

    #[test]
    fn a_poisoned_lock_is_recovered_not_panicked_on() {
        let mutex = Arc::new(Mutex::new(7));
        let poisoner = mutex.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 7);
    }

    #[tokio::test]
    async fn debug_counts_rooms_without_dumping_tasks() {
        let (store, _) = store();
        store.insert(new_task("1")).await.expect("insert");
        let debug = format!("{store:?}");
        assert!(debug.contains("rooms: 1"), "{debug}");
        assert!(!debug.contains("title"), "{debug}");
    }

    #[tokio::test]
    async fn purge_forgets_only_old_finished_tasks() {
        let (store, clock) = store();
        let done = store.insert(new_task("done")).await.expect("insert").id;
        let failed = store.insert(new_task("failed")).await.expect("insert").id;
        let pending = store.insert(new_task("pending")).await.expect("insert").id;
        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        store
            .complete(&done, &claimed.token, None)
            .await
            .expect("complete");
        clock.advance(Duration::from_secs(10));
        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        store
            .fail(&failed, &claimed.token, "no", FailAction::Fail)
            .await
            .expect("fail");

        let cutoff = clock.now() - time::Duration::seconds(5);
        assert_eq!(store.purge_finished(cutoff), 1);
        assert!(store.get(&done).await.expect("get").is_none());
        assert!(
            store.get(&failed).await.expect("get").is_some(),
            "too recent"
        );
        assert!(
            store.get(&pending).await.expect("get").is_some(),
            "not finished"
        );
        let redelivered = store.insert(new_task("done")).await.expect("insert");
        assert!(!redelivered.duplicate, "the purged delivery is forgotten");
        assert_ne!(redelivered.id, done);
        assert!(
            store
                .insert(new_task("failed"))
                .await
                .expect("insert")
                .duplicate
        );

        assert_eq!(
            store.purge_finished(clock.now() + time::Duration::seconds(1)),
            1
        );
        assert!(store.get(&failed).await.expect("get").is_none());
        let all = store.list(&TaskQuery::default()).await.expect("list");
        assert_eq!(all.len(), 2, "the pending task and the redelivery remain");
    }

    /// The whole list again through `Arc<dyn TaskStore>`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn arc_dyn_conformance() {
        let (store, clock) = store();
        let store: Arc<dyn TaskStore> = Arc::new(store);
        suite::run_all(store, &clock).await;
    }
}
