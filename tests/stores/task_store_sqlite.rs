//! `SqliteTaskStore`: the conformance suite, and what only a file-backed
//! store can show (reopening, corrupt rows, waiting for the write lock).
#![cfg(all(feature = "sqlite", feature = "integration"))]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use hookroom::JobStatus;
use hookroom::clock::{Clock, ManualClock};
use hookroom::sqlite::SqliteTaskStore;
use hookroom::task::{ClaimRequest, Inserted, NewTask, Payload, StoreError, TaskStore};
use support::tasks::push_task;

fn new_task(delivery: &str, priority: u32) -> NewTask {
    NewTask {
        priority,
        payload: Payload::from(format!("{{\"d\":\"{delivery}\"}}").into_bytes()),
        ..push_task("room", delivery)
    }
}

fn claim_req(agent: &str) -> ClaimRequest {
    ClaimRequest {
        room: "room".into(),
        agent: agent.into(),
        capabilities: vec![],
        lease: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
    hookroom::conformance::task_store::run_all(Arc::new(store), &clock).await;
}

#[tokio::test]
async fn survives_reopen_of_the_same_file() {
    let path = std::env::temp_dir().join(format!("hookroom-{}.db", uuid::Uuid::new_v4()));
    let id = {
        let store = SqliteTaskStore::open(&path).expect("open");
        store.insert(new_task("d1", 1)).await.expect("insert").id
    };
    let reopened = SqliteTaskStore::open(&path).expect("reopen");
    let task = reopened.get(&id).await.expect("get").expect("task kept");
    assert_eq!(task.delivery_id, "d1");
    assert_eq!(task.payload.as_bytes(), br#"{"d":"d1"}"#);
    let dup = reopened.insert(new_task("d1", 1)).await.expect("insert");
    assert_eq!(
        dup,
        Inserted {
            id,
            duplicate: true
        }
    );
    drop(reopened);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn stale_token_is_fenced_out_after_reclaim() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
    store.insert(new_task("a", 2)).await.expect("insert");
    let first = store
        .claim(&claim_req("w1"))
        .await
        .expect("claim")
        .expect("some");
    clock.advance(Duration::from_secs(31));
    let second = store
        .claim(&claim_req("w2"))
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_eq!(first.task.id, second.task.id);
    assert_eq!(second.task.attempts, 2);
    let err = store
        .complete(&first.task.id, &first.token, None)
        .await
        .expect_err("old token refused");
    assert!(matches!(err, StoreError::NotHeld { .. }));
    let done = store
        .complete(
            &second.task.id,
            &second.token,
            Some(serde_json::json!({"ok": true})),
        )
        .await
        .expect("new holder completes");
    assert_eq!(done.status, JobStatus::Done);
}

fn temp_db() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hookroom-{}.db", uuid::Uuid::new_v4()))
}

fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// A damaged JSON column is an error that names the task and the column,
/// never a task read back with a default in its place.
#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_the_task() {
    let path = temp_db();
    let store = SqliteTaskStore::open(&path).expect("open");
    let id = store.insert(new_task("d1", 1)).await.expect("insert").id;
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute(
            "UPDATE hookroom_tasks SET result = '{not json' WHERE id = ?1",
            [id.as_str()],
        )
        .expect("damage the row");
    let error = store.get(&id).await.expect_err("a corrupt row");
    assert!(matches!(
        error,
        StoreError::Backend {
            store: "sqlite",
            ..
        }
    ));
    let cause = std::error::Error::source(&error)
        .expect("a cause")
        .to_string();
    assert!(cause.contains(id.as_str()), "{cause}");
    assert!(cause.contains("`result`"), "{cause}");

    other
        .execute(
            "UPDATE hookroom_tasks SET result = NULL, required_capabilities = 'oops' WHERE id = ?1",
            [id.as_str()],
        )
        .expect("damage the row");
    let cause = store.get(&id).await.expect_err("a corrupt row").to_string();
    assert!(cause.contains("required_capabilities"), "{cause}");
    drop(store);
    remove_db(&path);
}

/// A lease is granted from the time the write lock is held, not from when
/// the call began to wait for it: another process holding the file's write
/// lock must not shorten (or expire) the lease being granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_is_read_after_waiting_for_the_write_lock() {
    let path = temp_db();
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = SqliteTaskStore::open_with_clock(&path, Arc::new(clock.clone())).expect("open");
    store.insert(new_task("a", 1)).await.expect("insert");
    let claimed = store
        .claim(&claim_req("w1"))
        .await
        .expect("claim")
        .expect("a task");

    // Another connection takes the write lock and keeps it.
    let mut other = rusqlite::Connection::open(&path).expect("second connection");
    let blocker = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .expect("write lock");
    let heartbeat = {
        let store = store.clone();
        let (id, token) = (claimed.task.id.clone(), claimed.token.clone());
        tokio::spawn(async move { store.heartbeat(&id, &token, Duration::from_secs(30)).await })
    };
    // While the heartbeat waits for the lock, 20 seconds pass.
    tokio::time::sleep(Duration::from_millis(300)).await;
    clock.advance(Duration::from_secs(20));
    let after_wait = clock.now();
    drop(blocker);
    let task = heartbeat.await.expect("joined").expect("heartbeat");
    assert_eq!(
        task.lease_expires_at,
        Some(after_wait + time::Duration::seconds(30)),
        "the lease runs from when the lock was held"
    );
    drop(store);
    remove_db(&path);
}

/// Concurrent inserts share commits: every one is acknowledged, each
/// delivery is stored once (both senders of a redelivery get the same id),
/// and all of them are in the file when it is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_are_group_committed_and_all_kept() {
    let path = temp_db();
    let store = SqliteTaskStore::open(&path).expect("open");
    let mut senders = Vec::new();
    for n in 0..200 {
        for _twice in 0..2 {
            let store = store.clone();
            senders.push(tokio::spawn(async move {
                (n, store.insert(new_task(&format!("d{n}"), 1)).await)
            }));
        }
    }
    let mut ids = std::collections::HashMap::new();
    let mut new = 0;
    for sender in senders {
        let (n, inserted) = sender.await.expect("joined");
        let inserted = inserted.expect("acknowledged");
        new += usize::from(!inserted.duplicate);
        let first = ids.entry(n).or_insert_with(|| inserted.id.clone());
        assert_eq!(*first, inserted.id, "both deliveries of d{n} name one task");
    }
    assert_eq!(new, 200, "each delivery is new exactly once");
    drop(store);
    let reopened = SqliteTaskStore::open(&path).expect("reopen");
    for (n, id) in &ids {
        let task = reopened.get(id).await.expect("get").expect("kept");
        assert_eq!(task.delivery_id, format!("d{n}"));
    }
    drop(reopened);
    remove_db(&path);
}

/// One insert that fails (here: refused by a trigger) fails alone; the
/// inserts committed with it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_insert_fails_alone_in_its_batch() {
    let path = temp_db();
    let store = SqliteTaskStore::open(&path).expect("open");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON hookroom_tasks \
             WHEN NEW.delivery_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .expect("trigger");
    drop(other);
    let mut senders = Vec::new();
    for delivery in ["a", "poison", "b", "c"] {
        let store = store.clone();
        senders.push(tokio::spawn(async move {
            (delivery, store.insert(new_task(delivery, 1)).await)
        }));
    }
    for sender in senders {
        let (delivery, result) = sender.await.expect("joined");
        match (delivery, result) {
            ("poison", Err(StoreError::Backend { .. })) => {}
            ("poison", other) => panic!("the poisoned insert must fail: {other:?}"),
            (_, Ok(inserted)) => {
                assert!(store.get(&inserted.id).await.expect("get").is_some());
            }
            (delivery, Err(e)) => panic!("{delivery} failed with the poisoned one: {e}"),
        }
    }
    drop(store);
    remove_db(&path);
}

/// A job registry opened `beside` the store shares its connection and
/// group-commit writer: concurrent task inserts and job creations all
/// commit, and both survive reopening the file (with `open`, on a
/// connection of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_beside_the_store_shares_its_commits_and_file() {
    use hookroom::sqlite::SqliteJobRegistry;
    use hookroom::status::{JobEvent, JobInput, JobRegistry, StatusSink};

    let path = temp_db();
    let store = SqliteTaskStore::open(&path).expect("open");
    let registry = Arc::new(SqliteJobRegistry::beside(&store).expect("registry beside"));
    let mut senders = Vec::new();
    for n in 0..100 {
        let (store, registry) = (store.clone(), Arc::clone(&registry));
        senders.push(tokio::spawn(async move {
            let inserted = store.insert(new_task(&format!("d{n}"), 1)).await?;
            registry
                .publish(JobEvent::Created {
                    job_id: inserted.id.to_string(),
                    at: time::OffsetDateTime::now_utc(),
                    input_data: JobInput::null(),
                    metadata: serde_json::Map::new(),
                })
                .await
                .map_err(|e| StoreError::Backend {
                    store: "test",
                    source: e.into(),
                })?;
            Ok::<_, StoreError>(inserted.id)
        }));
    }
    let mut ids = Vec::new();
    for sender in senders {
        ids.push(sender.await.expect("joined").expect("stored"));
    }
    drop((store, registry));
    let tasks = SqliteTaskStore::open(&path).expect("reopen tasks");
    let jobs = SqliteJobRegistry::open(&path).expect("reopen jobs");
    for id in &ids {
        assert!(tasks.get(id).await.expect("get").is_some(), "task {id}");
        let job = jobs
            .job(id.as_str(), true)
            .await
            .expect("job")
            .expect("kept");
        assert_eq!(job.job.status, JobStatus::Pending);
        assert_eq!(job.history.map(|h| h.len()), Some(1));
    }
    drop((tasks, jobs));
    remove_db(&path);
}

/// A file whose expiry and lease indexes still hold every row (as earlier
/// versions made them) gets the partial ones on open, and claims by lease
/// and expiry still work through them.
#[tokio::test]
async fn full_time_indexes_of_an_older_file_are_replaced_by_partial_ones() {
    let path = temp_db();
    {
        let store = SqliteTaskStore::open(&path).expect("open");
        store.insert(new_task("d1", 1)).await.expect("insert");
    }
    let indexes = |conn: &rusqlite::Connection| -> Vec<String> {
        let mut statement = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'index' \
                 AND name LIKE 'hookroom_tasks_%' ORDER BY name",
            )
            .expect("prepare");
        let names = statement.query_map([], |r| r.get(0)).expect("query");
        names.collect::<Result<_, _>>().expect("names")
    };
    {
        // The file as an earlier version left it.
        let conn = rusqlite::Connection::open(&path).expect("second connection");
        conn.execute_batch(
            "DROP INDEX hookroom_tasks_expiring; DROP INDEX hookroom_tasks_leased;
             CREATE INDEX hookroom_tasks_expiry ON hookroom_tasks (status, expires_at);
             CREATE INDEX hookroom_tasks_lease ON hookroom_tasks (status, lease_expires_at);",
        )
        .expect("old indexes");
    }
    let store = SqliteTaskStore::open(&path).expect("reopen");
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    let names = indexes(&conn);
    assert!(
        names.contains(&"hookroom_tasks_expiring".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"hookroom_tasks_leased".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"hookroom_tasks_expiry".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"hookroom_tasks_lease".to_owned()),
        "{names:?}"
    );
    // Only the claimed task has a lease, so only it is in the lease index.
    let claimed = store.claim(&claim_req("a")).await.expect("claim");
    assert!(claimed.is_some());
    let leased: i64 = conn
        .query_row(
            "SELECT count(*) FROM hookroom_tasks INDEXED BY hookroom_tasks_leased \
             WHERE status = 'RUNNING' AND lease_expires_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(leased, 1);
}
