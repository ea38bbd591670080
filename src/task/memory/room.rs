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

use crate::lifecycle::JobStatus;
use crate::task::TaskId;
use crate::task::state::StoredTask;

/// A task in its room, with its place in the store-wide insertion order
/// (which breaks ties between tasks created at the same instant).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) stored: StoredTask,
    pub(super) order: u64,
}

/// Claim order: lowest priority number, then oldest, then the earlier insert.
/// Times in index keys are Unix nanoseconds: the indexes compare keys on
/// every insert and claim, and integers compare several times faster than
/// `OffsetDateTime`s.
type ClaimKey = (u32, i128, u64, TaskId);

/// A time-ordered index entry: when (Unix nanoseconds), then insertion order.
type TimeKey = (i128, u64, TaskId);

/// Hashes task ids. Ids are random UUIDs the store made, never a sender's
/// choice, but a fast seeded hasher costs nothing in safety here.
type IdHasher = foldhash::fast::RandomState;

/// A room's tasks and indexes; kept behind the room's lock.
#[derive(Debug, Default)]
pub(super) struct RoomState {
    /// Boxed, so the map holds pointers: growing it moves 8 bytes per task,
    /// not a whole task, and its spare capacity costs as little.
    pub(super) tasks: HashMap<TaskId, Box<Entry>, IdHasher>,
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
    /// Pending tasks past their TTL, waiting for `expire_pending`.
    overdue: BTreeSet<(u64, TaskId)>,
}

impl RoomState {
    /// Adds a new task and files it.
    pub(super) fn insert(&mut self, entry: Box<Entry>, now: OffsetDateTime) {
        let id = entry.stored.task.id.clone();
        self.tasks.insert(id.clone(), entry);
        self.index(&id, now);
    }

    /// Removes a task from the room and its indexes.
    pub(super) fn remove(&mut self, id: &TaskId) -> Option<Box<Entry>> {
        self.unindex(id);
        self.tasks.remove(id)
    }

    /// Applies what the passing of time did to the indexes: tasks whose
    /// lease ran out and retries that are due become claimable, claimable
    /// tasks past their TTL become overdue. The tasks' fields do not change
    /// (the state machine reads the time itself); only where they are filed.
    pub(super) fn catch_up(&mut self, now: OffsetDateTime) {
        let mut due: Vec<TaskId> = Vec::new();
        for index in [&mut self.leases, &mut self.delayed, &mut self.ttl] {
            let now = now.unix_timestamp_nanos();
            while let Some((when, _, _)) = index.first() {
                if *when > now {
                    break;
                }
                if let Some((_, _, id)) = index.pop_first() {
                    due.push(id);
                }
            }
        }
        for id in due {
            self.unindex(&id);
            self.index(&id, now);
        }
    }

    /// The first task in claim order whose required capabilities
    /// `capabilities` covers.
    pub(super) fn best_claimable(&self, capabilities: &[String]) -> Option<TaskId> {
        self.ready
            .iter()
            .filter(|(required, _)| required.iter().all(|need| capabilities.contains(need)))
            .filter_map(|(_, group)| group.first())
            .min()
            .map(|(_, _, _, id)| id.clone())
    }

    /// Runs `op` on a task, with the task out of the indexes while it runs
    /// and filed again, from its new fields, after. `None` when the room has
    /// no such task.
    pub(super) fn update<R>(
        &mut self,
        id: &TaskId,
        now: OffsetDateTime,
        op: impl FnOnce(&mut StoredTask) -> R,
    ) -> Option<R> {
        if !self.tasks.contains_key(id) {
            return None;
        }
        self.unindex(id);
        let out = self.tasks.get_mut(id).map(|entry| op(&mut entry.stored));
        self.index(id, now);
        out
    }

    /// The overdue tasks' ids, oldest insert first.
    pub(super) fn overdue(&self) -> Vec<TaskId> {
        self.overdue.iter().map(|(_, id)| id.clone()).collect()
    }

    /// Files a task under the indexes its fields call for at `now`.
    fn index(&mut self, id: &TaskId, now: OffsetDateTime) {
        let Some(entry) = self.tasks.get(id) else {
            return;
        };
        let task = &entry.stored.task;
        let order = entry.order;
        let ready = match task.status {
            JobStatus::Done | JobStatus::Failed => false,
            JobStatus::Running | JobStatus::NeedsInput => match task.lease_expires_at {
                Some(lease) if lease > now => {
                    self.leases
                        .insert((lease.unix_timestamp_nanos(), order, id.clone()));
                    false
                }
                // A lease that ended leaves the task claimable.
                _ => true,
            },
            JobStatus::Pending => match (task.expires_at, task.not_before) {
                (Some(expires), _) if expires <= now => {
                    self.overdue.insert((order, id.clone()));
                    false
                }
                (_, Some(due)) if due > now => {
                    self.delayed
                        .insert((due.unix_timestamp_nanos(), order, id.clone()));
                    false
                }
                (expires, _) => {
                    if let Some(expires) = expires {
                        self.ttl
                            .insert((expires.unix_timestamp_nanos(), order, id.clone()));
                    }
                    true
                }
            },
        };
        if ready {
            let key = (
                task.priority,
                task.created_at.unix_timestamp_nanos(),
                order,
                id.clone(),
            );
            self.ready
                .entry(capability_set(&task.required_capabilities))
                .or_default()
                .insert(key);
        }
    }

    /// Takes a task out of every index it could be filed under.
    fn unindex(&mut self, id: &TaskId) {
        let Some(entry) = self.tasks.get(id) else {
            return;
        };
        let task = &entry.stored.task;
        let order = entry.order;
        let group = capability_set(&task.required_capabilities);
        if let Some(ready) = self.ready.get_mut(&group) {
            ready.remove(&(
                task.priority,
                task.created_at.unix_timestamp_nanos(),
                order,
                id.clone(),
            ));
            if ready.is_empty() {
                self.ready.remove(&group);
            }
        }
        for (index, when) in [
            (&mut self.leases, task.lease_expires_at),
            (&mut self.delayed, task.not_before),
            (&mut self.ttl, task.expires_at),
        ] {
            if let Some(when) = when {
                index.remove(&(when.unix_timestamp_nanos(), order, id.clone()));
            }
        }
        self.overdue.remove(&(order, id.clone()));
    }
}

/// The sorted, de-duplicated set of `capabilities`: the key of a claim group.
fn capability_set(capabilities: &[String]) -> Vec<String> {
    let mut set = capabilities.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}
