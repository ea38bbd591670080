//! `PostgresTaskStore` reads the time from the database (`clock_timestamp()`)
//! unless it is given a clock: creation times and leases fall between two
//! readings of the database's clock taken around the operations.
#![cfg(feature = "postgres")]

use crate::support;

use std::time::Duration;

use hookroom::postgres::PostgresTaskStore;
use hookroom::task::{ClaimRequest, NewTask, TaskStore};
use support::postgres::TestPostgres;
use time::OffsetDateTime;

async fn database_now(client: &tokio_postgres::Client) -> OffsetDateTime {
    let row = client
        .query_one("SELECT clock_timestamp()::TEXT", &[])
        .await
        .expect("clock_timestamp");
    let text: String = row.get(0);
    // e.g. `2026-12-01 15:40:00.123456+00`
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond][offset_hour]"
    );
    OffsetDateTime::parse(&text, &format).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_come_from_the_database_clock_by_default() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let client = pg.client().await;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .expect("utc");
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("clock_tasks")
        .build()
        .await
        .expect("store");

    let before = database_now(&client).await;
    store
        .insert(NewTask {
            room: "room".into(),
            title: "t".into(),
            description: String::new(),
            priority: 1,
            source: "github".into(),
            source_event: "push".into(),
            source_url: None,
            delivery_id: "d1".into(),
            payload: "{}".into(),
            required_capabilities: vec![],
            ttl: None,
        })
        .await
        .expect("insert");
    let lease = Duration::from_secs(60);
    let claimed = store
        .claim(&ClaimRequest {
            room: "room".into(),
            agent: "a".into(),
            capabilities: vec![],
            lease,
        })
        .await
        .expect("claim")
        .expect("a task");
    let after = database_now(&client).await;

    let created = claimed.task.created_at;
    assert!(
        before <= created && created <= after,
        "{before} {created} {after}"
    );
    let expires = claimed.task.lease_expires_at.expect("a lease");
    assert!(
        before + lease <= expires && expires <= after + lease,
        "{before} {expires} {after}"
    );
}
