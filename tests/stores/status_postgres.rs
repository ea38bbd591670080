//! `PostgresJobRegistry` against a throwaway PostgreSQL server: the
//! `StatusSink` conformance suite, the Jobs API over it, and jobs kept
//! across a reconnect beside the task store's tables.
#![cfg(all(feature = "postgres", feature = "integration"))]

use crate::support;

use std::sync::Arc;

use async_trait::async_trait;
use hookroom::api::jobs::{JobCreateRequest, JobView};
use hookroom::conformance::status_sink::{JobReader, run_all};
use hookroom::postgres::PostgresJobRegistry;
use hookroom::postgres::PostgresTaskStore;
use hookroom::status::{JobEvent, JobQuery, JobRegistry, JobStatus, StatusSink};
use support::postgres::TestPostgres;
use time::OffsetDateTime;

struct Reader(PostgresJobRegistry);

#[async_trait]
impl JobReader for Reader {
    async fn read_job(&self, job_id: &str) -> Option<JobView> {
        self.0.job(job_id, true).await.unwrap()
    }
}

fn running(id: &str, message: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.into(),
        at: OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: None,
        message: Some(message.into()),
        step: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_job_registry() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    // The task store's tables share the database.
    let _tasks = PostgresTaskStore::connect(&pg.url)
        .await
        .expect("task store");
    let registry = PostgresJobRegistry::connect(&pg.url)
        .await
        .expect("connect");
    run_all(Arc::new(registry.clone()), &Reader(registry.clone())).await;

    // Kept across a reconnect (a gateway restart), bounded history, pages.
    let created = registry
        .create_job(JobCreateRequest::default(), OffsetDateTime::now_utc())
        .await
        .unwrap();
    drop(registry);
    let registry = PostgresJobRegistry::connect(&pg.url)
        .await
        .unwrap()
        .with_max_history(3);
    for i in 0..5 {
        registry
            .publish(running(&created.job_id, &format!("m{i}")))
            .await
            .unwrap();
    }
    let view = registry.job(&created.job_id, true).await.unwrap().unwrap();
    let messages: Vec<_> = view
        .history
        .unwrap()
        .into_iter()
        .map(|e| e.message.unwrap_or_default())
        .collect();
    assert_eq!(messages, ["m2", "m3", "m4"]);
    let page = registry
        .jobs(JobQuery {
            status: Some(JobStatus::Running),
            limit: 1,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].job_id, created.job_id);
    let cutoff = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    assert!(registry.purge_finished_before(cutoff).await.unwrap() >= 1);
    assert!(
        registry
            .job(&created.job_id, false)
            .await
            .unwrap()
            .is_some()
    );
}
