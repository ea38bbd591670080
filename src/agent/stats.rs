//! [`WorkerStats`]: what a worker did, counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of what a [`Worker`](super::Worker) did since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Tasks claimed.
    pub claimed: u64,
    /// Runs that completed their task `DONE`.
    pub completed: u64,
    /// Runs that failed and put their task back for another try.
    pub retried: u64,
    /// Runs that failed their task for good.
    pub failed: u64,
    /// Runs stopped by the agent timeout (also counted as retried or failed).
    pub timed_out: u64,
    /// Runs ended because the claim was lost, or its lease ran out on the
    /// worker's clock while heartbeats could not reach the store (the task
    /// was left alone).
    pub lease_lost: u64,
    /// Tasks given back unfinished at shutdown.
    pub released: u64,
    /// Pending tasks this worker's reaper expired.
    pub expired: u64,
    /// Status events the sink refused or could not take (logged, never fatal).
    pub sink_errors: u64,
    /// Task store calls that failed with a backend error (logged).
    pub store_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) claimed: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) lease_lost: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) sink_errors: AtomicU64,
    pub(crate) store_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            claimed: get(&self.claimed),
            completed: get(&self.completed),
            retried: get(&self.retried),
            failed: get(&self.failed),
            timed_out: get(&self.timed_out),
            lease_lost: get(&self.lease_lost),
            released: get(&self.released),
            expired: get(&self.expired),
            sink_errors: get(&self.sink_errors),
            store_errors: get(&self.store_errors),
        }
    }
}
