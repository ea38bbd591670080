//! Retention: a background task that applies a routes file's
//! `log_retention_days` by purging finished tasks (`DONE` or `FAILED`)
//! last changed longer ago than that, in bounded batches, through the
//! store's own `purge_finished`, and likewise finished jobs with their
//! history and idempotency keys, through the job registry's
//! `purge_finished`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::sync::Arc;
//! use hookroom::clock::SystemClock;
//! use hookroom::status::InMemoryStatusSink;
//! use hookroom::task::InMemoryTaskStore;
//!
//! let store = Arc::new(InMemoryTaskStore::new());
//! let jobs = Arc::new(InMemoryStatusSink::new());
//! let purge = hookroom::retention::memory(store);
//! let purger = hookroom::retention::spawn(purge, jobs, Arc::new(SystemClock), 7);
//! # purger.abort();
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::status::{JobRegistry, SinkError};
#[cfg(feature = "memory")]
use crate::task::InMemoryTaskStore;
use crate::task::StoreError;
use time::OffsetDateTime;

/// The most tasks one purge call deletes: one short transaction, so claims
/// and inserts wait at most for that.
pub const BATCH: usize = 1_000;

/// How often the purger wakes up.
pub const EVERY: Duration = Duration::from_secs(600);

/// One purge call: deletes at most `limit` finished tasks last changed
/// before the cutoff and says how many it deleted.
pub type PurgeBatch = Arc<
    dyn Fn(OffsetDateTime, usize) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send>>
        + Send
        + Sync,
>;

#[cfg(feature = "memory")]
/// The in-memory store's purge (it has no batches: one call forgets all).
pub fn memory(store: Arc<InMemoryTaskStore>) -> PurgeBatch {
    Arc::new(move |cutoff, _limit| {
        let purged = store.purge_finished(cutoff);
        Box::pin(async move { Ok(purged) })
    })
}

/// The SQLite store's purge.
#[cfg(feature = "sqlite")]
pub fn sqlite(store: crate::sqlite::SqliteTaskStore) -> PurgeBatch {
    Arc::new(move |cutoff, limit| {
        let store = store.clone();
        Box::pin(async move { store.purge_finished(cutoff, limit).await })
    })
}

/// The PostgreSQL store's purge.
#[cfg(feature = "postgres")]
pub fn postgres(store: crate::postgres::PostgresTaskStore) -> PurgeBatch {
    Arc::new(move |cutoff, limit| {
        let store = store.clone();
        Box::pin(async move { store.purge_finished(cutoff, limit).await })
    })
}

/// One pass: purges, batch after batch, every finished task last changed
/// more than `days` days before `clock`'s now; returns how many.
pub async fn purge_pass(
    purge: &PurgeBatch,
    clock: &dyn Clock,
    days: u32,
) -> Result<usize, StoreError> {
    let cutoff = clock.now() - time::Duration::days(i64::from(days));
    let mut total = 0;
    loop {
        let purged = purge(cutoff, BATCH).await?;
        total += purged;
        if purged < BATCH {
            return Ok(total);
        }
        // Let the requests waiting for the store go first.
        tokio::task::yield_now().await;
    }
}

/// One pass over the job registry: purges, batch after batch, every
/// finished job (with its history and idempotency keys) last changed more
/// than `days` days before `clock`'s now; returns how many.
pub async fn purge_jobs_pass(
    jobs: &dyn JobRegistry,
    clock: &dyn Clock,
    days: u32,
) -> Result<usize, SinkError> {
    let cutoff = clock.now() - time::Duration::days(i64::from(days));
    let mut total = 0;
    loop {
        let purged = jobs.purge_finished(cutoff, BATCH).await?;
        total += purged;
        if purged < BATCH {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Starts the purger: a pass over the tasks and one over the jobs now, then
/// again every [`EVERY`]; a failed pass is reported and retried at the
/// next.
pub fn spawn(
    purge: PurgeBatch,
    jobs: Arc<dyn JobRegistry>,
    clock: Arc<dyn Clock>,
    days: u32,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match purge_pass(&purge, &*clock, days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, days, "retention: finished tasks purged"),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?EVERY, "retention: task purge failed");
                }
            }
            match purge_jobs_pass(&*jobs, &*clock, days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, days, "retention: finished jobs purged"),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?EVERY, "retention: job purge failed");
                }
            }
        }
    })
}
