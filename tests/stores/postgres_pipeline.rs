//! `PostgresTaskStore` sends `BEGIN` together with an operation's first
//! statements: an operation that fails after taking its row lock (here a
//! completion with the wrong token) rolls back before its connection's next
//! use, so the lock is free and no transaction is left open.
#![cfg(feature = "postgres")]

use crate::support;

use std::time::Duration;

use hookroom::postgres::PostgresTaskStore;
use hookroom::task::{ClaimRequest, ClaimToken, StoreError, TaskStore};
use support::postgres::TestPostgres;
use support::tasks::push_task;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_operation_leaves_no_transaction_or_lock_behind() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let client = pg.client().await;
    // One connection: every operation below runs on it, in order.
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("pipeline_tasks")
        .with_pool_size(1)
        .build()
        .await
        .expect("store");
    let id = store
        .insert(push_task("room", "d1"))
        .await
        .expect("insert")
        .id;
    let claimed = store
        .claim(&ClaimRequest {
            room: "room".into(),
            agent: "a".into(),
            capabilities: vec![],
            lease: Duration::from_secs(60),
        })
        .await
        .expect("claim")
        .expect("a task");
    assert_eq!(claimed.task.id, id);

    let wrong = ClaimToken::new("not-the-token");
    let refused = store.complete(&id, &wrong, None).await;
    assert!(
        matches!(refused, Err(StoreError::NotHeld { .. })),
        "{refused:?}"
    );
    let missing = store
        .complete(
            &hookroom::task::TaskId::from("no-such-task".to_owned()),
            &wrong,
            None,
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    // Runs after whatever the failed operations left queued on the connection.
    assert!(store.get(&id).await.expect("get").is_some());

    let open: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .expect("activity")
        .get(0);
    assert_eq!(open, 0, "a transaction was left open");
    client
        .query_one(
            "SELECT id FROM pipeline_tasks WHERE id = $1 FOR UPDATE NOWAIT",
            &[&id.as_str()],
        )
        .await
        .expect("the row lock was released");

    let done = store
        .complete(&id, &claimed.token, None)
        .await
        .expect("complete with the right token");
    assert_eq!(done.status, hookroom::JobStatus::Done);
}
