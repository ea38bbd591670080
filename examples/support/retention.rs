//! Retention for the gateway example: a background task that applies the
//! routes file's `log_retention_days` by purging finished tasks (`DONE` or
//! `FAILED`) last changed longer ago than that, in bounded batches, through
//! the store's own `purge_finished`, and likewise finished jobs with their
//! history and idempotency keys, through the job registry's
//! `purge_finished`. Held to it by `tests/retention.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hookroom::clock::Clock;
use hookroom::status::{JobRegistry, SinkError};
use hookroom::task::{InMemoryTaskStore, StoreError};
use time::OffsetDateTime;

/// The most tasks one purge call deletes: one short transaction, so claims
/// and inserts wait at most for that.
pub(crate) const BATCH: usize = 1_000;

/// How often the purger wakes up.
#[allow(dead_code)]
pub(crate) const EVERY: Duration = Duration::from_secs(600);

/// One purge call: deletes at most `limit` finished tasks last changed
/// before the cutoff and says how many it deleted.
pub(crate) type PurgeBatch = Arc<
    dyn Fn(OffsetDateTime, usize) -> Pin<Box<dyn Future<Output = Result<usize, StoreError>> + Send>>
        + Send
        + Sync,
>;

/// The in-memory store's purge (it has no batches: one call forgets all).
#[allow(dead_code)]
pub(crate) fn memory(store: Arc<InMemoryTaskStore>) -> PurgeBatch {
    Arc::new(move |cutoff, _limit| {
        let purged = store.purge_finished(cutoff);
        Box::pin(async move { Ok(purged) })
    })
}

/// The SQLite store's purge.
#[cfg(feature = "sqlite")]
#[allow(dead_code)]
pub(crate) fn sqlite(store: hookroom::sqlite::SqliteTaskStore) -> PurgeBatch {
    Arc::new(move |cutoff, limit| {
        let store = store.clone();
        Box::pin(async move { store.purge_finished(cutoff, limit).await })
    })
}

/// The PostgreSQL store's purge.
#[cfg(feature = "postgres")]
#[allow(dead_code)]
pub(crate) fn postgres(store: hookroom::postgres::PostgresTaskStore) -> PurgeBatch {
    Arc::new(move |cutoff, limit| {
        let store = store.clone();
        Box::pin(async move { store.purge_finished(cutoff, limit).await })
    })
}

/// One pass: purges, batch after batch, every finished task last changed
/// more than `days` days before `clock`'s now; returns how many.
pub(crate) async fn purge_pass(
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
pub(crate) async fn purge_jobs_pass(
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
#[allow(dead_code)]
pub(crate) fn spawn(
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
                Ok(n) => {
                    println!("retention: purged {n} finished task(s) older than {days} day(s)")
                }
                Err(e) => eprintln!("retention: purge failed (retried in {EVERY:?}): {e}"),
            }
            match purge_jobs_pass(&*jobs, &*clock, days).await {
                Ok(0) => {}
                Ok(n) => {
                    println!("retention: purged {n} finished job(s) older than {days} day(s)")
                }
                Err(e) => eprintln!("retention: job purge failed (retried in {EVERY:?}): {e}"),
            }
        }
    })
}
