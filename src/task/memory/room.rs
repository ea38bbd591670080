//! One room of the in-memory store: its tasks and the indexes that make a
//! claim cheap.
//!
//! The indexes are derived from each task's fields and nothing else:
//! [`RoomState::unindex`] takes a task out of every index before an
//! operation, [`RoomState::index`] files it again afterwards from what the
//! [state machine](crate::task::state) left in its fields. So the indexes
//! cannot disagree with the tasks, whatever the operation did.

use std::collections::{BTreeSet, HashMap};

use time::OffsetDateTime;

use crate::clock::to_unix_nanos;
use crate::lifecycle::JobStatus;
use crate::task::state::StoredTask;

/// A task in its room, with its place in the store-wide insertion order.
/// The place is unique in the store: the room's map and indexes are keyed by
/// it, and it breaks ties between tasks created at the same instant.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) stored: StoredTask,
    pub(super) order: u64,
}

/// Claim order: lowest priority number, then oldest, then the earlier insert.
///
/// Index keys are plain integers (times as Unix nanoseconds, the task as its
/// place): every insert and claim compares several of them, and small integer
/// keys keep each index node to a few cache lines.
type ClaimKey = (u32, i64, u64);

/// A time-ordered index entry: when (Unix nanoseconds), then the task's place.
type TimeKey = (i64, u64);

/// Hashes places. They come from the store's own counter, never from a
/// sender, but a fast seeded hasher costs nothing in safety here.
type PlaceHasher = foldhash::fast::RandomState;

/// A room's tasks and indexes; kept behind the room's lock.
#[derive(Debug, Default)]
pub(super) struct RoomState {
    /// The room's tasks by place. Boxed, so the map holds pointers: growing
    /// it moves 8 bytes per task, not a whole task.
    pub(super) tasks: HashMap<u64, Box<Entry>, PlaceHasher>,
    /// Claimable tasks, grouped by their sorted set of required capabilities,
    /// so a claim looks at the best task of each group it qualifies for
    /// instead of scanning the room.
    ready: HashMap<Vec<String>, BTreeSet<ClaimKey>>,
    /// Held tasks by lease end: when a lease ends, its task is claimable.
    leases: BTreeSet<TimeKey>,
    /// Tasks put back for a retry, by when the retry is due.
    delayed: BTreeSet<TimeKey>,
    /// Claimable tasks with a TTL, by when it ends.
    ttl: BTreeSet<TimeKey>,
    /// Pending tasks past their TTL, waiting for `expire_pending`, by place.
    overdue: BTreeSet<u64>,
}

impl RoomState {
    /// Adds a new task and files it.
    pub(super) fn insert(&mut self, entry: Box<Entry>, now: OffsetDateTime) {
        let place = entry.order;
        self.tasks.insert(place, entry);
        self.index(place, now);
    }

    /// Removes a task from the room and its indexes.
    pub(super) fn remove(&mut self, place: u64) -> Option<Box<Entry>> {
        self.unindex(place);
        self.tasks.remove(&place)
    }

    /// Applies what the passing of time did to the indexes: tasks whose
    /// lease ran out and retries that are due become claimable, claimable
    /// tasks past their TTL become overdue. The tasks' fields do not change
    /// (the state machine reads the time itself); only where they are filed.
    pub(super) fn catch_up(&mut self, now: OffsetDateTime) {
        let now_nanos = to_unix_nanos(now);
        let mut due: Vec<u64> = Vec::new();
        for index in [&mut self.leases, &mut self.delayed, &mut self.ttl] {
            while let Some(&(when, place)) = index.first() {
                if when > now_nanos {
                    break;
                }
                index.pop_first();
                due.push(place);
            }
        }
        for place in due {
            self.unindex(place);
            self.index(place, now);
        }
    }

    /// The place of the first task in claim order whose required
    /// capabilities `capabilities` covers.
    pub(super) fn best_claimable(&self, capabilities: &[String]) -> Option<u64> {
        self.ready
            .iter()
            .filter(|(required, _)| required.iter().all(|need| capabilities.contains(need)))
            .filter_map(|(_, group)| group.first())
            .min()
            .map(|&(_, _, place)| place)
    }

    /// Runs `op` on the task at `place`, with the task out of the indexes
    /// while it runs and filed again, from its new fields, after. `None` when
    /// the room has no such task.
    pub(super) fn update<R>(
        &mut self,
        place: u64,
        now: OffsetDateTime,
        op: impl FnOnce(&mut StoredTask) -> R,
    ) -> Option<R> {
        if !self.unindex(place) {
            return None;
        }
        let out = self
            .tasks
            .get_mut(&place)
            .map(|entry| op(&mut entry.stored));
        self.index(place, now);
        out
    }

    /// The overdue tasks' places, oldest insert first.
    pub(super) fn overdue(&self) -> Vec<u64> {
        self.overdue.iter().copied().collect()
    }

    /// Files the task at `place` under the indexes its fields call for at
    /// `now`.
    fn index(&mut self, place: u64, now: OffsetDateTime) {
        let Some(entry) = self.tasks.get(&place) else {
            return;
        };
        let task = &entry.stored.task;
        let ready = match task.status {
            JobStatus::Done | JobStatus::Failed => false,
            JobStatus::Running | JobStatus::NeedsInput => match task.lease_expires_at {
                Some(lease) if lease > now => {
                    self.leases.insert((to_unix_nanos(lease), place));
                    false
                }
                // A lease that ended leaves the task claimable.
                _ => true,
            },
            JobStatus::Pending => match (task.expires_at, task.not_before) {
                (Some(expires), _) if expires <= now => {
                    self.overdue.insert(place);
                    false
                }
                (_, Some(due)) if due > now => {
                    self.delayed.insert((to_unix_nanos(due), place));
                    false
                }
                (expires, _) => {
                    if let Some(expires) = expires {
                        self.ttl.insert((to_unix_nanos(expires), place));
                    }
                    true
                }
            },
        };
        if ready {
            let key = (task.priority, to_unix_nanos(task.created_at), place);
            match self.ready.get_mut(task.required_capabilities.as_slice()) {
                // The common case (a group that exists, its set already
                // sorted) allocates nothing.
                Some(group) if is_capability_set(&task.required_capabilities) => {
                    group.insert(key);
                }
                _ => {
                    self.ready
                        .entry(capability_set(&task.required_capabilities))
                        .or_default()
                        .insert(key);
                }
            }
        }
    }

    /// Takes the task at `place` out of every index it could be filed
    /// under; `false` when the room has no such task.
    fn unindex(&mut self, place: u64) -> bool {
        let Some(entry) = self.tasks.get(&place) else {
            return false;
        };
        let task = &entry.stored.task;
        let key = (task.priority, to_unix_nanos(task.created_at), place);
        let group = if is_capability_set(&task.required_capabilities) {
            std::borrow::Cow::Borrowed(task.required_capabilities.as_slice())
        } else {
            std::borrow::Cow::Owned(capability_set(&task.required_capabilities))
        };
        if let Some(ready) = self.ready.get_mut(group.as_ref()) {
            ready.remove(&key);
            if ready.is_empty() {
                self.ready.remove(group.as_ref());
            }
        }
        for (index, when) in [
            (&mut self.leases, task.lease_expires_at),
            (&mut self.delayed, task.not_before),
            (&mut self.ttl, task.expires_at),
        ] {
            if let Some(when) = when {
                index.remove(&(to_unix_nanos(when), place));
            }
        }
        self.overdue.remove(&place);
        true
    }
}

/// Whether `capabilities` is already sorted and free of repeats, i.e. its
/// own claim group key.
fn is_capability_set(capabilities: &[String]) -> bool {
    capabilities.windows(2).all(|pair| pair[0] < pair[1])
}

/// The sorted, de-duplicated set of `capabilities`: the key of a claim group.
fn capability_set(capabilities: &[String]) -> Vec<String> {
    let mut set = capabilities.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}
