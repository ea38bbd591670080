//! `PostgresTaskStore` against a throwaway PostgreSQL server.
#![cfg(all(feature = "postgres", feature = "integration"))]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use hookroom::clock::ManualClock;
use hookroom::postgres::PostgresTaskStore;
use hookroom::task::{ClaimRequest, StoreError, TaskStore};
use support::postgres::TestPostgres;
use support::tasks::push_task;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_task_store() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("smoke_tasks")
        .with_clock(Arc::new(clock.clone()))
        .build()
        .await
        .expect("connect");

    let first = store.insert(push_task("room", "d1")).await.expect("insert");
    let again = store
        .insert(push_task("room", "d1"))
        .await
        .expect("insert again");
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);

    let request = ClaimRequest {
        room: "room".into(),
        agent: "w1".into(),
        capabilities: vec![],
        lease: Duration::from_secs(30),
    };
    let claimed = store.claim(&request).await.expect("claim").expect("a task");
    assert!(store.claim(&request).await.expect("claim").is_none());
    clock.advance(Duration::from_secs(31));
    let reclaimed = store
        .claim(&request)
        .await
        .expect("claim")
        .expect("lease ran out");
    let err = store
        .complete(&claimed.task.id, &claimed.token, None)
        .await
        .expect_err("stale token");
    assert!(matches!(err, StoreError::NotHeld { .. }));
    store
        .complete(&reclaimed.task.id, &reclaimed.token, None)
        .await
        .expect("holder completes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_task_store_conformance() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("conformance_tasks")
        .with_clock(Arc::new(clock.clone()))
        .build()
        .await
        .expect("connect");
    hookroom::conformance::task_store::run_all(Arc::new(store), &clock).await;
}
