//! [`InMemoryTaskStore`]: the always-compiled [`TaskStore`] backend, and the
//! fixture every other component's tests run against.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use async_trait::async_trait;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::sync::broadcast;

use super::fence::{ClaimView, check_held};
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, Payload, StoreError, Task,
    TaskId, TaskQuery, TaskStore,
};
use crate::clock::{Clock, SystemClock};
use crate::lifecycle::JobStatus;

/// How many shards the idempotency index is split into, so inserts of
/// different deliveries seldom wait on each other.
const SHARDS: usize = 16;
/// Notifications a slow watcher may fall behind by before it sees `Lagged`
/// (they are hints, so a small buffer per room is enough).
const NOTIFY_CAPACITY: usize = 256;
/// `TaskQuery::limit` when the caller gives none.
const DEFAULT_LIST_LIMIT: usize = 100;
/// Where a deadline lands when `now + duration` does not fit in a date.
const FAR_FUTURE: OffsetDateTime = PrimitiveDateTime::MAX.assume_utc();
/// Distinct event names a room shares among its tasks; past this, a task
/// keeps its own copy, so names a sender makes up cannot grow the table.
const MAX_SHARED_EVENT_NAMES: usize = 1024;

/// A [`TaskStore`] that keeps every task in process memory.
///
/// Nothing survives a restart, so it suits tests, examples and gateways whose
/// webhooks can be redelivered. Time comes from the [`Clock`] it is built
/// with, so tests move leases and TTLs forward by hand. Finished tasks stay
/// until [`purge_finished`](Self::purge_finished) forgets them.
///
/// # Concurrency
/// Each room has its own lock, so agents of different rooms never contend.
/// A task's id says which room it lives in and where (see [`TaskId`] below),
/// so finding a task by id needs no shared index; the idempotency index is
/// sharded. Inside a room, claimable tasks sit in ordered indexes (one per
/// distinct set of required capabilities), so a claim costs `O(g · log n)`
/// for `g` capability sets, not a scan of the room. No lock is held across an
/// `.await`, and a poisoned lock is recovered rather than turned into a
/// panic.
///
/// Expired leases and due retries are applied lazily, by whichever call next
/// touches the room. A `RUNNING` or `NEEDS_INPUT` task whose lease ran out
/// keeps reading as it was (with its lease end in the past) until a claim
/// takes it over, as in every backend; its token is refused from the moment
/// the lease ends. The clock is assumed not to run backwards.
///
/// # Memory
/// A stored task costs its payload plus about 800 bytes: one compact record
/// (room, source and event names are shared, the other texts are kept in one
/// allocation), its idempotency entry and its place in the room's indexes.
/// [`Task`] values are built when a task is read.
///
/// # Task ids
/// Ids are UUIDs (version 8, lowercase, hyphenated) whose low bits hold the
/// room's number and the task's place in it, and whose other 60 bits are
/// random. Only the exact spelling this store handed out finds a task.
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
    rooms: RwLock<Rooms>,
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
            .field("rooms", &read(&self.rooms).by_index.len())
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
            rooms: RwLock::new(Rooms::default()),
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
    /// task: purge only what its sender no longer retries. A forgotten task
    /// leaves 8 bytes behind in its room until every older task of the room
    /// is forgotten too.
    pub fn purge_finished(&self, finished_before: OffsetDateTime) -> usize {
        let mut forgotten: Vec<Box<Record>> = Vec::new();
        for room in self.all_rooms() {
            let mut state = lock(&room.state);
            let finished: Vec<u64> = state
                .iter()
                .filter(|(_, record)| {
                    record.status.is_terminal() && record.updated_at < finished_before
                })
                .map(|(seq, _)| seq)
                .collect();
            for seq in finished {
                if let Some(record) = state.remove(seq) {
                    forgotten.push(record);
                }
            }
        }
        // The room locks are released first: inserts take the index locks
        // before a room's.
        for record in &forgotten {
            let delivery_id = record.text.delivery_id();
            let shard = self.shard(&(&*record.source, delivery_id));
            if let Some(dedup) = self.dedup.get(shard) {
                let mut dedup = lock(dedup);
                if let Some(by_delivery) = dedup.get_mut(&*record.source) {
                    if by_delivery.get(delivery_id) == Some(&record.id) {
                        by_delivery.remove(delivery_id);
                    }
                    if by_delivery.is_empty() {
                        dedup.remove(&*record.source);
                    }
                }
            }
        }
        forgotten.len()
    }

    fn room(&self, name: &str) -> Option<Arc<Room>> {
        read(&self.rooms).by_name.get(name).cloned()
    }

    fn room_or_create(&self, name: &str) -> Result<Arc<Room>, StoreError> {
        if let Some(room) = self.room(name) {
            return Ok(room);
        }
        let mut rooms = write(&self.rooms);
        if let Some(room) = rooms.by_name.get(name) {
            return Ok(room.clone());
        }
        let index = u32::try_from(rooms.by_index.len())
            .ok()
            .filter(|index| u64::from(*index) <= ROOM_MASK)
            .ok_or_else(|| internal("no room numbers left"))?;
        let name: Arc<str> = Arc::from(name);
        let room = Arc::new(Room::new(index, name.clone()));
        rooms.by_name.insert(name, room.clone());
        rooms.by_index.push(room.clone());
        Ok(room)
    }

    fn all_rooms(&self) -> Vec<Arc<Room>> {
        read(&self.rooms).by_index.clone()
    }

    fn shard<T: std::hash::Hash + ?Sized>(&self, key: &T) -> usize {
        // `SHARDS` is a power of two, so the remainder keeps the hash's low bits.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// The room and place the id names, and the id's bits.
    fn locate(&self, id: &TaskId) -> Result<(Arc<Room>, u64, u128), StoreError> {
        let not_found = || StoreError::NotFound { id: id.clone() };
        let text = id.as_str();
        // The UUID parser also accepts braced, simple and uppercase
        // spellings: only the one this store hands out names a task.
        if text.len() != 36 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(not_found());
        }
        let bits = uuid::Uuid::try_parse(text)
            .map_err(|_| not_found())?
            .as_u128();
        let (room, seq) = split_id(bits).ok_or_else(not_found)?;
        let room = read(&self.rooms)
            .by_index
            .get(room)
            .cloned()
            .ok_or_else(not_found)?;
        Ok((room, seq, bits))
    }

    /// Runs `op` on the task under its room's lock, after applying expired
    /// leases and due retries.
    fn with_task<R>(
        &self,
        id: &TaskId,
        op: impl FnOnce(&mut RoomState, u64, OffsetDateTime, &str) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let (room, seq, bits) = self.locate(id)?;
        let now = self.clock.now();
        let mut state = lock(&room.state);
        state.normalize(now);
        // The random bits must match too: an id made up from a room number
        // and a place finds nothing.
        if state.record(seq).is_none_or(|record| record.id != bits) {
            return Err(StoreError::NotFound { id: id.clone() });
        }
        op(&mut state, seq, now, &room.name)
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
        if let Some(&bits) = dedup
            .get(new.source.as_str())
            .and_then(|by_delivery| by_delivery.get(new.delivery_id.as_str()))
        {
            return Ok(Inserted {
                id: task_id(bits),
                duplicate: true,
            });
        }

        let room = self.room_or_create(&new.room)?;
        // The idempotency index keeps each source's name once; the task
        // shares it.
        let source = match dedup.get_key_value(new.source.as_str()) {
            Some((source, _)) => source.clone(),
            None => {
                let source: Arc<str> = Arc::from(new.source.as_str());
                dedup.insert(source.clone(), HashMap::default());
                source
            }
        };
        let text = Text::new(
            &new.title,
            &new.description,
            new.source_url.as_deref(),
            &new.delivery_id,
        )?;
        let capabilities = {
            let mut caps = new.required_capabilities.clone();
            caps.sort_unstable();
            caps.dedup();
            caps
        };
        // Kept only when it differs from the sorted set the indexes use.
        let given_capabilities = (capabilities != new.required_capabilities)
            .then(|| new.required_capabilities.into_boxed_slice());
        let random = uuid::Uuid::new_v4().as_u64_pair().0;
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        let bits = {
            let mut state = lock(&room.state);
            let seq = state.next_seq();
            if seq > SEQ_MASK {
                return Err(internal("room has no task numbers left"));
            }
            let bits = make_id(random, room.index, seq);
            let capabilities = state.intern(capabilities);
            let event = state.event_name(&new.source_event);
            state.tasks.push_back(Some(Box::new(Record {
                id: bits,
                order,
                source: source.clone(),
                event,
                text,
                payload: new.payload,
                capabilities,
                priority: new.priority,
                status: JobStatus::Pending,
                attempts: 0,
                created_at: now,
                updated_at: now,
                expires_at: new.ttl.map(|ttl| deadline(now, ttl)),
                extra: given_capabilities.map(|given| {
                    Box::new(Extra {
                        given_capabilities: Some(given),
                        ..Extra::default()
                    })
                }),
            })));
            state.enqueue(seq, now);
            bits
        };
        // The idempotency entry goes in only once the task is stored: were
        // anything in between to fail, a redelivery must make a new task,
        // not be answered as a duplicate of nothing.
        let Some(by_delivery) = dedup.get_mut(&*source) else {
            return Err(internal("idempotency index lost a source"));
        };
        by_delivery.insert(Box::from(new.delivery_id.as_str()), bits);
        drop(dedup);

        let id = task_id(bits);
        // No receiver is not an error: nobody is waiting.
        let _ = room.notify.send(id.clone());
        Ok(Inserted {
            id,
            duplicate: false,
        })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let found = self.with_task(id, |state, seq, _, room| {
            Ok(state.record(seq).map(|record| record.to_task(room)))
        });
        match found {
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
                .iter()
                .filter(|(_, record)| matches(record, &room.name, query))
                .map(|(seq, record)| (record.created_at, record.order, seq))
                .collect();
            keys.sort_unstable_by(|a, b| b.cmp(a));
            keys.truncate(limit);
            found.extend(keys.into_iter().filter_map(|(created, order, seq)| {
                state
                    .record(seq)
                    .map(|record| (created, order, record.to_task(&room.name)))
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
        let Some(record) = state.record_mut(seq) else {
            return Err(internal("claimable task missing"));
        };
        record.status = JobStatus::Running;
        record.attempts = record.attempts.saturating_add(1);
        record.updated_at = now;
        record.expires_at = None;
        let extra = record.extra_mut();
        extra.token = token;
        extra.claimed_by = Some(request.agent.clone());
        extra.lease_expires_at = Some(lease_until);
        extra.not_before = None;
        // A task taken over from a lapsed claim drops that claim's question.
        extra.input_request = None;
        extra.input = None;
        let task = record.to_task(&room.name);
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
        self.with_task(id, |state, seq, now, room| {
            let record = state.held(id, seq, token, now, "heartbeat", HELD)?;
            let until = deadline(now, lease);
            let old = record.extra_mut().lease_expires_at.replace(until);
            record.updated_at = now;
            let task = record.to_task(room);
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
        self.with_task(id, |state, seq, now, room| {
            let record = state.held(id, seq, token, now, "complete", &[JobStatus::Running])?;
            record.status = JobStatus::Done;
            record.updated_at = now;
            let extra = record.extra_mut();
            let lease = extra.lease_expires_at.take();
            extra.result = result;
            let task = record.to_task(room);
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
        let task = self.with_task(id, |state, seq, now, room| {
            let record = state.held(id, seq, token, now, "fail", HELD)?;
            record.updated_at = now;
            let extra = record.extra_mut();
            let lease = extra.lease_expires_at.take();
            extra.failure = Some(reason.to_owned());
            match action {
                FailAction::Fail => record.status = JobStatus::Failed,
                FailAction::Retry { after } => {
                    back_to_pending(record);
                    record.extra_mut().not_before = Some(deadline(now, after));
                }
            }
            let task = record.to_task(room);
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
        let task = self.with_task(id, |state, seq, now, room| {
            let record = state.held(id, seq, token, now, "release", HELD)?;
            let lease = record.extra_mut().lease_expires_at.take();
            back_to_pending(record);
            record.attempts = record.attempts.saturating_sub(1);
            record.updated_at = now;
            let task = record.to_task(room);
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
        self.with_task(id, |state, seq, now, room| {
            let record = state.held(id, seq, token, now, "request_input", &[JobStatus::Running])?;
            record.status = JobStatus::NeedsInput;
            record.updated_at = now;
            let extra = record.extra_mut();
            extra.input_request = Some(prompt.to_owned());
            extra.input = None;
            Ok(record.to_task(room))
        })
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let task = self.with_task(id, |state, seq, now, room| {
            let Some(record) = state.record_mut(seq) else {
                return Err(StoreError::NotFound { id: id.clone() });
            };
            if record.status != JobStatus::NeedsInput {
                return Err(StoreError::InvalidTransition {
                    id: id.clone(),
                    from: record.status,
                    operation: "provide_input",
                });
            }
            record.extra_mut().input = Some(input);
            record.updated_at = now;
            Ok(record.to_task(room))
        })?;
        self.notify(&task.id, &task.room);
        Ok(task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.with_task(id, |state, seq, now, _| {
            let record = state.held(id, seq, token, now, "take_input", &[JobStatus::NeedsInput])?;
            let extra = record.extra_mut();
            let Some(input) = extra.input.take() else {
                return Ok(None);
            };
            extra.input_request = None;
            record.status = JobStatus::Running;
            record.updated_at = now;
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
                if let Some(record) = state.record_mut(seq) {
                    record.status = JobStatus::Failed;
                    record.extra_mut().failure = Some("expired".to_owned());
                    record.updated_at = now;
                    expired.push(record.to_task(&room.name));
                }
            }
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        // `None` only once every room number is taken.
        self.room_or_create(room)
            .ok()
            .map(|room| room.notify.subscribe())
    }
}

/// source → delivery id → task id bits. Nested so each source name is
/// stored once (and shared with the source's tasks).
type DedupShard = HashMap<Arc<str>, HashMap<Box<str>, u128, SenderKeyHasher>, SenderKeyHasher>;

/// Hashes keys that senders choose (source names, delivery ids): foldhash,
/// seeded at random per map like SipHash, at a fraction of its cost per key.
/// The seed is what stands between a sender and crafted collisions: not
/// every provider signs its delivery id (GitHub's is a header outside the
/// signature), so a replayed body can carry any id.
type SenderKeyHasher = foldhash::fast::RandomState;

/// Bits of a task's place in its room (2^38 tasks per room).
const SEQ_BITS: u32 = 38;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Bits of a room's number (2^24 rooms per store).
const ROOM_MASK: u64 = (1 << 24) - 1;

/// A task id's 128 bits, in UUID order:
/// `random 48 | version 8 (4) | random 12 | variant 0b10 (2) | room 24 | seq 38`.
fn make_id(random: u64, room: u32, seq: u64) -> u128 {
    let high = (random & !0xF000) | 0x8000;
    let low = (0b10 << 62) | ((u64::from(room) & ROOM_MASK) << SEQ_BITS) | (seq & SEQ_MASK);
    (u128::from(high) << 64) | u128::from(low)
}

/// The room number and place `make_id` put in `bits`; `None` for ids it
/// did not make.
fn split_id(bits: u128) -> Option<(usize, u64)> {
    let high = (bits >> 64) as u64;
    let low = bits as u64;
    if (high >> 12) & 0xF != 8 || low >> 62 != 0b10 {
        return None;
    }
    let room = usize::try_from((low >> SEQ_BITS) & ROOM_MASK).ok()?;
    Some((room, low & SEQ_MASK))
}

/// The id's text: the lowercase hyphenated UUID.
fn task_id(bits: u128) -> TaskId {
    TaskId::from_uuid(uuid::Uuid::from_u128(bits))
}

/// States in which a claim is held (and may be heartbeaten, failed, released).
const HELD: &[JobStatus] = &[JobStatus::Running, JobStatus::NeedsInput];

#[derive(Default)]
struct Rooms {
    by_name: HashMap<Arc<str>, Arc<Room>>,
    /// Rooms by number, the number being the position; rooms are never
    /// removed.
    by_index: Vec<Arc<Room>>,
}

struct Room {
    index: u32,
    name: Arc<str>,
    state: Mutex<RoomState>,
    notify: broadcast::Sender<TaskId>,
}

impl Room {
    fn new(index: u32, name: Arc<str>) -> Self {
        Self {
            index,
            name,
            state: Mutex::new(RoomState::default()),
            notify: broadcast::channel(NOTIFY_CAPACITY).0,
        }
    }
}

/// A claim token's wire form: 32 lowercase hex digits.
fn token_text(token: u128) -> String {
    format!("{token:032x}")
}

/// A stored task: what every task has, inline, and what claims add, boxed
/// apart so that a task nobody has claimed yet stays small.
struct Record {
    /// The id's bits (see [`make_id`]).
    id: u128,
    /// Store-wide insertion order (places are per room).
    order: u64,
    /// Shared with the idempotency index.
    source: Arc<str>,
    /// Shared with the room's other tasks of the same event, up to
    /// [`MAX_SHARED_EVENT_NAMES`] names.
    event: Arc<str>,
    text: Text,
    payload: Payload,
    /// `required_capabilities`, sorted and deduplicated, shared with every
    /// task of the room that requires the same set.
    capabilities: Arc<[String]>,
    priority: u32,
    status: JobStatus,
    attempts: u32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
    extra: Option<Box<Extra>>,
}

/// The fields a task gets from its claims (and the rare ones it may come
/// with).
#[derive(Default)]
struct Extra {
    /// The last claim's fencing token (128 random bits); 0 before the first
    /// claim.
    token: u128,
    claimed_by: Option<String>,
    lease_expires_at: Option<OffsetDateTime>,
    not_before: Option<OffsetDateTime>,
    input_request: Option<String>,
    input: Option<serde_json::Value>,
    result: Option<serde_json::Value>,
    failure: Option<String>,
    /// `required_capabilities` as given, when that is not sorted and free of
    /// repeats.
    given_capabilities: Option<Box<[String]>>,
}

/// A task's title, description, URL and delivery id in one allocation.
struct Text {
    all: Box<str>,
    title_end: u32,
    description_end: u32,
    /// Equal to `description_end` when the URL is empty or absent.
    url_end: u32,
    has_url: bool,
}

impl Text {
    fn new(
        title: &str,
        description: &str,
        url: Option<&str>,
        delivery_id: &str,
    ) -> Result<Self, StoreError> {
        let url_text = url.unwrap_or("");
        let len = title.len() + description.len() + url_text.len() + delivery_id.len();
        let mut all = String::with_capacity(len);
        let mut end = |part: &str| {
            all.push_str(part);
            u32::try_from(all.len()).map_err(|_| StoreError::Backend {
                store: "memory",
                source: "a task's texts must stay under 4 GiB".into(),
            })
        };
        let title_end = end(title)?;
        let description_end = end(description)?;
        let url_end = end(url_text)?;
        end(delivery_id)?;
        Ok(Self {
            all: all.into_boxed_str(),
            title_end,
            description_end,
            url_end,
            has_url: url.is_some(),
        })
    }

    fn part(&self, from: u32, to: u32) -> &str {
        self.all.get(from as usize..to as usize).unwrap_or("")
    }

    fn title(&self) -> &str {
        self.part(0, self.title_end)
    }

    fn description(&self) -> &str {
        self.part(self.title_end, self.description_end)
    }

    fn url(&self) -> Option<&str> {
        self.has_url
            .then(|| self.part(self.description_end, self.url_end))
    }

    fn delivery_id(&self) -> &str {
        self.all.get(self.url_end as usize..).unwrap_or("")
    }
}

impl Record {
    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn not_before(&self) -> Option<OffsetDateTime> {
        self.extra.as_ref().and_then(|extra| extra.not_before)
    }

    fn lease_expires_at(&self) -> Option<OffsetDateTime> {
        self.extra.as_ref().and_then(|extra| extra.lease_expires_at)
    }

    /// The task as callers see it.
    fn to_task(&self, room: &str) -> Task {
        let extra = self.extra.as_deref();
        Task {
            id: task_id(self.id),
            room: room.to_owned(),
            title: self.text.title().to_owned(),
            description: self.text.description().to_owned(),
            priority: self.priority,
            status: self.status,
            source: self.source.to_string(),
            source_event: self.event.to_string(),
            source_url: self.text.url().map(str::to_owned),
            delivery_id: self.text.delivery_id().to_owned(),
            payload: self.payload.clone(),
            required_capabilities: match extra.and_then(|e| e.given_capabilities.as_deref()) {
                Some(given) => given.to_vec(),
                None => self.capabilities.to_vec(),
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            not_before: self.not_before(),
            claimed_by: extra.and_then(|e| e.claimed_by.clone()),
            lease_expires_at: self.lease_expires_at(),
            attempts: self.attempts,
            input_request: extra.and_then(|e| e.input_request.clone()),
            input: extra.and_then(|e| e.input.clone()),
            result: extra.and_then(|e| e.result.clone()),
            failure: extra.and_then(|e| e.failure.clone()),
        }
    }
}

/// Claim order: priority, then creation time, then insertion order.
type ReadyKey = (u32, OffsetDateTime, u64);

/// One room. Every `PENDING` task is in exactly one of `ready`, `delayed`
/// or `overdue`; every held task is in `leases`.
#[derive(Default)]
struct RoomState {
    /// The task numbered `seq` is at `tasks[seq - first_seq]`; purged ones
    /// leave `None` until the front catches up with them.
    tasks: VecDeque<Option<Box<Record>>>,
    first_seq: u64,
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
    /// Event names shared by the room's tasks.
    event_names: HashSet<Arc<str>>,
}

impl RoomState {
    /// The number the next task gets.
    fn next_seq(&self) -> u64 {
        self.first_seq + self.tasks.len() as u64
    }

    fn slot(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq.checked_sub(self.first_seq)?).ok()
    }

    fn record(&self, seq: u64) -> Option<&Record> {
        self.tasks.get(self.slot(seq)?)?.as_deref()
    }

    fn record_mut(&mut self, seq: u64) -> Option<&mut Record> {
        let slot = self.slot(seq)?;
        self.tasks.get_mut(slot)?.as_deref_mut()
    }

    /// Every stored task with its number.
    fn iter(&self) -> impl Iterator<Item = (u64, &Record)> {
        let first = self.first_seq;
        self.tasks
            .iter()
            .zip(first..)
            .filter_map(|(slot, seq)| slot.as_deref().map(|record| (seq, record)))
    }

    /// Takes a task out (its index entries are the caller's business), then
    /// drops the empty slots at the front.
    fn remove(&mut self, seq: u64) -> Option<Box<Record>> {
        let slot = self.slot(seq)?;
        let record = self.tasks.get_mut(slot)?.take();
        while matches!(self.tasks.front(), Some(None)) {
            self.tasks.pop_front();
            self.first_seq += 1;
        }
        record
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

    /// The room's shared copy of `name`, or a task's own once the room
    /// shares [`MAX_SHARED_EVENT_NAMES`].
    fn event_name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.event_names.get(name) {
            return shared.clone();
        }
        let name: Arc<str> = Arc::from(name);
        if self.event_names.len() < MAX_SHARED_EVENT_NAMES {
            self.event_names.insert(name.clone());
        }
        name
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
        let Some(record) = self.record(seq) else {
            return;
        };
        if let Some(due) = record.not_before().filter(|due| *due > now) {
            self.delayed.insert((due, seq));
        } else if record.expires_at.is_some_and(|expires| expires <= now) {
            self.overdue.insert(seq);
        } else {
            let key = (record.priority, record.created_at, seq);
            let expires = record.expires_at;
            let capabilities = record.capabilities.clone();
            if let Some(expires) = expires {
                self.ttl.insert((expires, seq));
            }
            self.ready.entry(capabilities).or_default().insert(key);
        }
    }

    fn remove_ready(&mut self, seq: u64) {
        let Some(record) = self.record(seq) else {
            return;
        };
        let key = (record.priority, record.created_at, seq);
        let capabilities = record.capabilities.clone();
        if let Some(group) = self.ready.get_mut(&capabilities) {
            group.remove(&key);
            if group.is_empty() {
                self.ready.remove(&capabilities);
            }
        }
    }

    /// Takes a task being claimed out of the pending indexes.
    fn dequeue_pending(&mut self, seq: u64) {
        self.remove_ready(seq);
        if let Some(expires) = self.record(seq).and_then(|record| record.expires_at) {
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
    ) -> Result<&mut Record, StoreError> {
        let Some(record) = self.record_mut(seq) else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        let current = record
            .extra
            .as_ref()
            .filter(|extra| extra.token != 0)
            .map(|extra| token_text(extra.token));
        let view = ClaimView {
            id,
            status: record.status,
            lease_expires_at: record.lease_expires_at(),
            current: current.as_deref(),
        };
        check_held(view, token, now, operation, allowed)?;
        Ok(record)
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
fn back_to_pending(record: &mut Record) {
    record.status = JobStatus::Pending;
    let extra = record.extra_mut();
    extra.claimed_by = None;
    extra.lease_expires_at = None;
    extra.input_request = None;
    extra.input = None;
}

fn matches(record: &Record, room: &str, query: &TaskQuery) -> bool {
    query.room.as_ref().is_none_or(|wanted| wanted == room)
        && query.status.is_none_or(|status| status == record.status)
        && query
            .source
            .as_ref()
            .is_none_or(|source| **source == *record.source)
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
    async fn ids_name_room_and_place_but_need_their_random_bits() {
        let (store, _) = store();
        let first = store.insert(new_task("1")).await.expect("insert").id;
        let mut other_room = new_task("2");
        other_room.room = "other".into();
        let second = store.insert(other_room).await.expect("insert").id;
        for id in [&first, &second] {
            let uuid = uuid::Uuid::try_parse(id.as_str()).expect("a UUID");
            assert_eq!(uuid.get_version_num(), 8, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        let bits = uuid::Uuid::try_parse(first.as_str())
            .expect("a UUID")
            .as_u128();
        assert_eq!(split_id(bits), Some((0, 0)));
        let second_bits = uuid::Uuid::try_parse(second.as_str())
            .expect("a UUID")
            .as_u128();
        assert_eq!(split_id(second_bits), Some((1, 0)));
        // Same room and place, other random bits: not the task.
        let forged = task_id(bits ^ (1 << 100));
        assert_eq!(split_id(bits ^ (1 << 100)), Some((0, 0)));
        assert!(store.get(&forged).await.expect("get").is_none());
        // A room or place that does not exist.
        for (room, seq) in [(7, 0), (0, 5)] {
            let id = task_id(make_id(1, room, seq));
            assert!(store.get(&id).await.expect("get").is_none(), "{id}");
        }
        // A v4 UUID is not one of this store's ids.
        let v4 = TaskId::random();
        assert!(store.get(&v4).await.expect("get").is_none());
    }

    proptest::proptest! {
        /// Room number and place come back out of every id, the id is a
        /// version 8 UUID, and a version 4 UUID never reads as one.
        #[test]
        fn ids_round_trip(random: u64, room in 0..=ROOM_MASK as u32, seq in 0..=SEQ_MASK, v4: u128) {
            let bits = make_id(random, room, seq);
            proptest::prop_assert_eq!(split_id(bits), Some((room as usize, seq)));
            let uuid = uuid::Uuid::from_u128(bits);
            proptest::prop_assert_eq!(uuid.get_version_num(), 8);
            proptest::prop_assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            let v4 = uuid::Builder::from_random_bytes(v4.to_be_bytes()).into_uuid();
            proptest::prop_assert_eq!(split_id(v4.as_u128()), None);
        }
    }

    #[tokio::test]
    async fn texts_and_capabilities_read_back_as_given() {
        let (store, _) = store();
        let mut with_url = new_task("1");
        with_url.title = "tïtle ✓".into();
        with_url.description = "multi\nline".into();
        with_url.source_url = Some(String::new());
        with_url.required_capabilities = vec!["b".into(), "a".into(), "b".into()];
        let mut without_url = new_task("2");
        without_url.title = String::new();
        without_url.required_capabilities = vec!["a".into(), "b".into()];
        for new in [with_url, without_url] {
            let id = store.insert(new.clone()).await.expect("insert").id;
            let task = store.get(&id).await.expect("get").expect("stored");
            assert_eq!(task.title, new.title);
            assert_eq!(task.description, new.description);
            assert_eq!(task.source_url, new.source_url);
            assert_eq!(task.delivery_id, new.delivery_id);
            assert_eq!(task.source_event, new.source_event);
            assert_eq!(task.required_capabilities, new.required_capabilities);
        }
    }

    #[tokio::test]
    async fn purging_a_middle_task_keeps_its_neighbours_reachable() {
        let (store, clock) = store();
        let ids = [
            store.insert(new_task("a")).await.expect("insert").id,
            store.insert(new_task("b")).await.expect("insert").id,
            store.insert(new_task("c")).await.expect("insert").id,
        ];
        // Claim order is insertion order. The second task is finished and
        // purged while the first and third live on.
        let first = store.claim(&request()).await.expect("claim").expect("task");
        let second = store.claim(&request()).await.expect("claim").expect("task");
        assert_eq!(second.task.id, ids[1]);
        store
            .complete(&ids[1], &second.token, None)
            .await
            .expect("complete");
        clock.advance(Duration::from_secs(1));
        assert_eq!(store.purge_finished(clock.now()), 1);
        assert!(store.get(&ids[1]).await.expect("get").is_none());
        assert!(store.get(&ids[2]).await.expect("get").is_some());
        store
            .complete(&ids[0], &first.token, None)
            .await
            .expect("complete");
        clock.advance(Duration::from_secs(1));
        assert_eq!(store.purge_finished(clock.now()), 1);
        let left = store.list(&TaskQuery::default()).await.expect("list");
        assert_eq!(left.iter().map(|t| &t.id).collect::<Vec<_>>(), [&ids[2]]);
        let next = store.insert(new_task("d")).await.expect("insert").id;
        let claimed = store.claim(&request()).await.expect("claim").expect("task");
        assert_eq!(claimed.task.id, ids[2]);
        assert!(store.get(&next).await.expect("get").is_some());
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
