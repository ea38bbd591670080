//! Retention: each store's `purge_finished` deletes finished tasks older
//! than a cutoff in bounded batches, the SQLite file stays bounded under
//! insert / complete / purge cycles and gives a purged burst's pages back,
//! and the purger (`hookroom::retention`)
//! applies `log_retention_days`.
#![cfg(all(feature = "memory", feature = "sqlite"))]

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hookroom::clock::{Clock, ManualClock};
use hookroom::sqlite::SqliteTaskStore;
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, TaskQuery, TaskStore};
use support::tasks::push_task;

use hookroom::retention;

const DAY: Duration = Duration::from_secs(86_400);

fn new_task(delivery: &str, payload_bytes: usize) -> NewTask {
    NewTask {
        payload: format!(r#"{{"pad":"{}"}}"#, "x".repeat(payload_bytes))
            .into_bytes()
            .into(),
        ..push_task("room", delivery)
    }
}

fn claim_request() -> ClaimRequest {
    ClaimRequest {
        room: "room".into(),
        agent: "agent".into(),
        capabilities: vec![],
        lease: Duration::from_secs(60),
    }
}

/// Inserts `n` tasks concurrently (so they are group-committed).
async fn insert_many(store: &SqliteTaskStore, prefix: &str, n: usize, payload_bytes: usize) {
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        let task = new_task(&format!("{prefix}-{i}"), payload_bytes);
        inserts.spawn(async move { store.insert(task).await });
    }
    while let Some(done) = inserts.join_next().await {
        done.expect("insert task").expect("insert");
    }
}

/// Inserts a task and claims it by id.
async fn claim_new(store: &dyn TaskStore, delivery: &str) -> hookroom::task::Claimed {
    let inserted = store.insert(new_task(delivery, 10)).await.expect("insert");
    store
        .claim_task(&inserted.id, &claim_request())
        .await
        .expect("claim")
}

/// Claims and completes every claimable task; returns how many.
async fn complete_all(store: &dyn TaskStore) -> usize {
    let mut done = 0;
    while let Some(claimed) = store.claim(&claim_request()).await.expect("claim") {
        store
            .complete(&claimed.task.id, &claimed.token, None)
            .await
            .expect("complete");
        done += 1;
    }
    done
}

/// The database file's size once the write-ahead log is checkpointed into
/// it (through a second connection, as another process would).
fn checkpointed_size(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).expect("second connection");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    std::fs::metadata(path).expect("db file").len()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hookroom-retention-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("tasks.db")
}

async fn count(store: &dyn TaskStore) -> usize {
    store
        .list(&TaskQuery {
            limit: Some(usize::MAX),
            ..TaskQuery::default()
        })
        .await
        .expect("list")
        .len()
}

/// Tasks keep arriving and finishing, a day's worth each cycle, and each
/// cycle purges what finished more than a day ago: the file stops growing
/// after the first cycles although ten times its size was written through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_stays_bounded_under_insert_complete_purge_cycles() {
    const CYCLES: usize = 8;
    const PER_CYCLE: usize = 150;
    const PAYLOAD: usize = 8 * 1024;
    let path = temp_db("cycles");
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_with_clock(&path, Arc::new(clock.clone())).expect("open");
    let mut sizes = Vec::new();
    for cycle in 0..CYCLES {
        insert_many(&store, &format!("c{cycle}"), PER_CYCLE, PAYLOAD).await;
        assert_eq!(complete_all(&store).await, PER_CYCLE);
        clock.advance(DAY);
        let cutoff = clock.now() - time::Duration::days(1);
        let mut purged = 0;
        loop {
            let n = store.purge_finished(cutoff, 64).await.expect("purge");
            assert!(n <= 64, "a batch is bounded: {n}");
            purged += n;
            if n < 64 {
                break;
            }
        }
        // What finished a day ago is kept; the cycle before it is gone.
        assert_eq!(
            purged,
            if cycle == 0 { 0 } else { PER_CYCLE },
            "cycle {cycle}"
        );
        assert_eq!(count(&store).await, PER_CYCLE, "cycle {cycle}");
        sizes.push(checkpointed_size(&path));
    }
    let written = (CYCLES * PER_CYCLE * PAYLOAD) as u64;
    eprintln!("file size after each cycle (bytes): {sizes:?}; payload written: {written}");
    let settled = sizes[2];
    let last = *sizes.last().expect("cycles ran");
    assert!(
        last <= settled + settled / 5,
        "the file kept growing: {sizes:?}"
    );
    assert!(last < written / 2, "{last} bytes for {written} written");
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}

/// Without `auto_vacuum = INCREMENTAL`, pages freed by a purge stay in the
/// file (SQLite reuses them but never gives them back), so a burst would
/// leave the file at its peak size forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_gives_a_purged_burst_back_to_the_file_system() {
    let path = temp_db("burst");
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_with_clock(&path, Arc::new(clock.clone())).expect("open");
    let empty = checkpointed_size(&path);
    insert_many(&store, "burst", 400, 16 * 1024).await;
    complete_all(&store).await;
    let peak = checkpointed_size(&path);
    clock.advance(2 * DAY);
    let cutoff = clock.now() - time::Duration::days(1);
    while store.purge_finished(cutoff, 100).await.expect("purge") == 100 {}
    assert_eq!(count(&store).await, 0);
    let after = checkpointed_size(&path);
    eprintln!("empty {empty} bytes, after the burst {peak}, after the purge {after}");
    assert!(peak > 6_000_000, "the burst was written: {peak}");
    assert!(
        after < peak / 10,
        "the purge gave back too little: {after} of {peak}"
    );
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}

/// A database made before incremental vacuum existed is converted on open.
#[tokio::test]
async fn sqlite_turns_on_incremental_vacuum_for_an_existing_file() {
    let path = temp_db("existing");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE other (x INTEGER); INSERT INTO other VALUES (1);")
            .expect("an older file");
        let mode: i64 = conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, 0);
    }
    let store = SqliteTaskStore::open(&path).expect("open");
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, 2, "INCREMENTAL");
    let kept: i64 = conn
        .query_row("SELECT x FROM other", [], |r| r.get(0))
        .expect("data kept");
    assert_eq!(kept, 1);
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}

/// Only finished tasks older than the cutoff go, at most `limit` a call,
/// oldest first; pending and running tasks stay whatever their age.
#[tokio::test]
async fn sqlite_purge_takes_only_old_finished_tasks_in_bounded_batches() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
    for i in 0..5 {
        store
            .insert(new_task(&format!("old-{i}"), 10))
            .await
            .expect("insert");
    }
    assert_eq!(complete_all(&store).await, 5);
    let running = claim_new(&store, "running").await;
    store.insert(new_task("pending", 10)).await.expect("insert");
    clock.advance(2 * DAY);
    let recent = claim_new(&store, "recent").await;
    store
        .complete(&recent.task.id, &recent.token, None)
        .await
        .expect("complete");
    let cutoff = clock.now() - time::Duration::days(1);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 0);
    let left = store.list(&TaskQuery::default()).await.expect("list");
    let mut statuses: Vec<&str> = left.iter().map(|t| t.status.as_str()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["DONE", "PENDING", "RUNNING"], "{left:?}");
    assert!(left.iter().any(|t| t.id == running.task.id));
    assert!(left.iter().any(|t| t.id == recent.task.id));
}

/// The gateway's purger applies `log_retention_days` to the memory and
/// SQLite stores: a task finished 8 days ago goes with 7 days' retention,
/// one finished 6 days ago stays.
#[tokio::test]
async fn the_gateway_purger_applies_log_retention_days() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let memory = Arc::new(InMemoryTaskStore::with_clock(Arc::new(clock.clone())));
    let sqlite = SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
    let stores: [(Arc<dyn TaskStore>, retention::PurgeBatch); 2] = [
        (memory.clone(), retention::memory(memory)),
        (Arc::new(sqlite.clone()), retention::sqlite(sqlite)),
    ];
    for (store, _) in &stores {
        store
            .insert(new_task("eight-days", 10))
            .await
            .expect("insert");
        complete_all(&**store).await;
    }
    clock.advance(2 * DAY);
    for (store, _) in &stores {
        store
            .insert(new_task("six-days", 10))
            .await
            .expect("insert");
        complete_all(&**store).await;
    }
    clock.advance(6 * DAY);
    for (store, purge) in &stores {
        assert_eq!(
            retention::purge_pass(purge, &clock, 7)
                .await
                .expect("purge"),
            1
        );
        let left = store.list(&TaskQuery::default()).await.expect("list");
        let deliveries: Vec<&str> = left.iter().map(|t| t.delivery_id.as_str()).collect();
        assert_eq!(deliveries, ["six-days"]);
        assert_eq!(
            retention::purge_pass(purge, &clock, 7)
                .await
                .expect("purge"),
            0
        );
    }
}

/// The purger goes on past one batch until nothing old is left.
#[tokio::test]
async fn the_gateway_purger_runs_batch_after_batch() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let sqlite = SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
    let n = retention::BATCH * 2 + 7;
    insert_many(&sqlite, "many", n, 10).await;
    assert_eq!(complete_all(&sqlite).await, n);
    clock.advance(3 * DAY);
    let purge = retention::sqlite(sqlite.clone());
    assert_eq!(
        retention::purge_pass(&purge, &clock, 1)
            .await
            .expect("purge"),
        n
    );
    assert_eq!(count(&sqlite).await, 0);
}

/// PostgreSQL: the same bounded, oldest-first purge of finished tasks.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_purge_takes_only_old_finished_tasks_in_bounded_batches() {
    use hookroom::postgres::PostgresTaskStore;
    let Some(pg) = support::postgres::TestPostgres::start() else {
        return;
    };
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("retention_tasks")
        .with_clock(Arc::new(clock.clone()))
        .build()
        .await
        .expect("connect");
    for i in 0..5 {
        store
            .insert(new_task(&format!("old-{i}"), 10))
            .await
            .expect("insert");
    }
    assert_eq!(complete_all(&store).await, 5);
    let running = claim_new(&store, "running").await;
    clock.advance(2 * DAY);
    let recent = claim_new(&store, "recent").await;
    store
        .complete(&recent.task.id, &recent.token, None)
        .await
        .expect("complete");
    let cutoff = clock.now() - time::Duration::days(1);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 2);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 1);
    assert_eq!(store.purge_finished(cutoff, 2).await.expect("purge"), 0);
    let left = store.list(&TaskQuery::default()).await.expect("list");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().any(|t| t.id == running.task.id));
    let purge = retention::postgres(store.clone());
    clock.advance(2 * DAY);
    assert_eq!(
        retention::purge_pass(&purge, &clock, 1)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(count(&store).await, 1);
}
