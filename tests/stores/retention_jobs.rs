//! Retention of jobs: the purger
//! (`hookroom::retention`) removes finished jobs older than
//! `log_retention_days` from the job registry, batch after batch, and keeps
//! running and recent ones.
#![cfg(all(feature = "memory", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use hookroom::clock::{Clock, ManualClock};
use hookroom::sqlite::SqliteJobRegistry;
use hookroom::status::{InMemoryStatusSink, JobEvent, JobRegistry, JobStatus};

use hookroom::retention;

const DAY: Duration = Duration::from_secs(86_400);

async fn job(registry: &dyn JobRegistry, id: &str, clock: &ManualClock, finish: bool) {
    registry
        .publish(JobEvent::Created {
            job_id: id.into(),
            at: clock.now(),
            input_data: serde_json::json!({"room": "r"}).into(),
            metadata: Default::default(),
        })
        .await
        .expect("create");
    if finish {
        registry
            .publish(JobEvent::Completed {
                job_id: id.into(),
                at: clock.now(),
                final_status: JobStatus::Done,
                summary: None,
                artifacts: vec![],
                message: None,
            })
            .await
            .expect("complete");
    }
}

async fn purges_old_finished_jobs_in_batches(registry: Arc<dyn JobRegistry>) {
    let clock = ManualClock::at_unix(1_700_000_000);
    let old = retention::BATCH * 2 + 7;
    for i in 0..old {
        job(registry.as_ref(), &format!("old-{i}"), &clock, true).await;
    }
    job(registry.as_ref(), "old-running", &clock, false).await;
    clock.advance(10 * DAY);
    job(registry.as_ref(), "recent", &clock, true).await;

    let purged = retention::purge_jobs_pass(registry.as_ref(), &clock, 7)
        .await
        .expect("purge");
    assert_eq!(purged, old, "every old finished job, over three batches");
    assert!(registry.job("old-0", false).await.unwrap().is_none());
    assert!(registry.job("old-running", false).await.unwrap().is_some());
    assert!(registry.job("recent", false).await.unwrap().is_some());
    // Nothing is left to purge until the recent job ages.
    let again = retention::purge_jobs_pass(registry.as_ref(), &clock, 7).await;
    assert_eq!(again.expect("purge"), 0);
    clock.advance(8 * DAY);
    let later = retention::purge_jobs_pass(registry.as_ref(), &clock, 7).await;
    assert_eq!(later.expect("purge"), 1);
}

#[tokio::test]
async fn the_purger_removes_old_finished_jobs_from_memory() {
    purges_old_finished_jobs_in_batches(Arc::new(InMemoryStatusSink::new())).await;
}

#[tokio::test]
async fn the_purger_removes_old_finished_jobs_from_sqlite() {
    let registry = SqliteJobRegistry::open_in_memory().expect("open");
    purges_old_finished_jobs_in_batches(Arc::new(registry)).await;
}
