//! The in-memory store's own tests, and the conformance suite on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::conformance::task_store as suite;

fn store() -> (InMemoryTaskStore, ManualClock) {
    let clock = ManualClock::at_unix(1_700_000_000);
    (
        InMemoryTaskStore::with_clock(Arc::new(clock.clone())),
        clock,
    )
}

/// Every check, each on the concrete store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_conformance() {
    let (store, clock) = store();
    suite::insert_idempotent(&store, &clock).await;
    suite::get_and_list(&store, &clock).await;
    suite::claim_order(&store, &clock).await;
    suite::claim_capabilities(&store, &clock).await;
    suite::claim_exclusive_and_fenced(&store, &clock).await;
    suite::claim_by_id(&store, &clock).await;
    suite::heartbeat_extends_lease(&store, &clock).await;
    suite::complete_fail_release(&store, &clock).await;
    suite::illegal_transitions(&store, &clock).await;
    suite::retry_not_before(&store, &clock).await;
    suite::needs_input_round_trip(&store, &clock).await;
    suite::lease_expiry(&store, &clock).await;
    suite::ttl_expiry(&store, &clock).await;
    suite::watch_notifies(&store, &clock).await;
    suite::state_machine(&store, &clock, 512).await;
    let report = suite::claim_race(Arc::new(store), 8, 10_000).await;
    assert_eq!(report.claims_per_agent.len(), 8);
    assert!(
        report.claims_per_agent.iter().all(|claims| *claims > 0),
        "every agent got work: {report:?}"
    );
    println!("claim race: {report:?}");
}

fn new_task(delivery: &str) -> NewTask {
    NewTask {
        room: "room".into(),
        title: "title".into(),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "push".into(),
        source_url: None,
        delivery_id: delivery.into(),
        payload: "{}".into(),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

fn request() -> ClaimRequest {
    ClaimRequest {
        room: "room".into(),
        agent: "agent".into(),
        capabilities: Vec::new(),
        lease: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn only_the_exact_id_spelling_finds_a_task() {
    let (store, _) = store();
    let id = store.insert(new_task("1")).await.expect("insert").id;
    assert!(store.get(&id).await.expect("get").is_some());
    let braced = TaskId::from(format!("{{{id}}}"));
    let upper = TaskId::from(id.as_str().to_uppercase());
    for other in [braced, upper, TaskId::from("not a uuid"), TaskId::from("")] {
        assert!(store.get(&other).await.expect("get").is_none(), "{other}");
        assert!(matches!(
            store.provide_input(&other, serde_json::json!(1)).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}

#[tokio::test]
async fn texts_and_capabilities_read_back_as_given() {
    let (store, _) = store();
    let mut with_url = new_task("1");
    with_url.title = "tïtle ✓".into();
    with_url.description = "multi\nline".into();
    with_url.source_url = Some(String::new());
    with_url.required_capabilities = vec!["b".into(), "a".into(), "b".into()];
    let mut without_url = new_task("2");
    without_url.title = String::new();
    without_url.required_capabilities = vec!["a".into(), "b".into()];
    for new in [with_url, without_url] {
        let id = store.insert(new.clone()).await.expect("insert").id;
        let task = store.get(&id).await.expect("get").expect("stored");
        assert_eq!(task.title, new.title);
        assert_eq!(task.description, new.description);
        assert_eq!(task.source_url, new.source_url);
        assert_eq!(task.delivery_id, new.delivery_id);
        assert_eq!(task.source_event, new.source_event);
        assert_eq!(task.required_capabilities, new.required_capabilities);
    }
}

#[tokio::test]
async fn purging_a_middle_task_keeps_its_neighbours_reachable() {
    let (store, clock) = store();
    let ids = [
        store.insert(new_task("a")).await.expect("insert").id,
        store.insert(new_task("b")).await.expect("insert").id,
        store.insert(new_task("c")).await.expect("insert").id,
    ];
    // Claim order is insertion order. The second task is finished and
    // purged while the first and third live on.
    let first = store.claim(&request()).await.expect("claim").expect("task");
    let second = store.claim(&request()).await.expect("claim").expect("task");
    assert_eq!(second.task.id, ids[1]);
    store
        .complete(&ids[1], &second.token, None)
        .await
        .expect("complete");
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.purge_finished(clock.now()), 1);
    assert!(store.get(&ids[1]).await.expect("get").is_none());
    assert!(store.get(&ids[2]).await.expect("get").is_some());
    store
        .complete(&ids[0], &first.token, None)
        .await
        .expect("complete");
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.purge_finished(clock.now()), 1);
    let left = store.list(&TaskQuery::default()).await.expect("list");
    assert_eq!(left.iter().map(|t| &t.id).collect::<Vec<_>>(), [&ids[2]]);
    let next = store.insert(new_task("d")).await.expect("insert").id;
    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    assert_eq!(claimed.task.id, ids[2]);
    assert!(store.get(&next).await.expect("get").is_some());
}

#[tokio::test]
async fn watchers_hear_of_tasks_they_could_now_claim() {
    let (store, _) = store();
    let mut watch = store.watch("room").expect("memory store notifies");
    let id = store.insert(new_task("1")).await.expect("insert").id;
    assert_eq!(watch.try_recv().ok(), Some(id.clone()), "insert");
    let duplicate = store.insert(new_task("1")).await.expect("insert");
    assert!(duplicate.duplicate);
    assert!(watch.try_recv().is_err(), "a duplicate is not news");

    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    assert!(watch.try_recv().is_err(), "a claim is not news");
    store.release(&id, &claimed.token).await.expect("release");
    assert_eq!(watch.try_recv().ok(), Some(id.clone()), "release");

    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    let retry = FailAction::Retry {
        after: Duration::ZERO,
    };
    store
        .fail(&id, &claimed.token, "x", retry)
        .await
        .expect("fail");
    assert_eq!(watch.try_recv().ok(), Some(id.clone()), "retry");

    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    store
        .request_input(&id, &claimed.token, "?")
        .await
        .expect("request_input");
    store
        .provide_input(&id, serde_json::json!("answer"))
        .await
        .expect("provide_input");
    assert_eq!(watch.try_recv().ok(), Some(id), "input");
}

#[test]
fn a_poisoned_lock_is_recovered_not_panicked_on() {
    let mutex = Arc::new(Mutex::new(7));
    let poisoner = mutex.clone();
    let _ = std::thread::spawn(move || {
        let _guard = poisoner.lock();
        panic!("poison the lock");
    })
    .join();
    assert!(mutex.is_poisoned());
    assert_eq!(*lock(&mutex), 7);
}

#[tokio::test]
async fn debug_counts_rooms_without_dumping_tasks() {
    let (store, _) = store();
    store.insert(new_task("1")).await.expect("insert");
    let debug = format!("{store:?}");
    assert!(debug.contains("rooms: 1"), "{debug}");
    assert!(!debug.contains("title"), "{debug}");
}

#[tokio::test]
async fn purge_forgets_only_old_finished_tasks() {
    let (store, clock) = store();
    let done = store.insert(new_task("done")).await.expect("insert").id;
    let failed = store.insert(new_task("failed")).await.expect("insert").id;
    let pending = store.insert(new_task("pending")).await.expect("insert").id;
    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    store
        .complete(&done, &claimed.token, None)
        .await
        .expect("complete");
    clock.advance(Duration::from_secs(10));
    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    store
        .fail(&failed, &claimed.token, "no", FailAction::Fail)
        .await
        .expect("fail");

    let cutoff = clock.now() - time::Duration::seconds(5);
    assert_eq!(store.purge_finished(cutoff), 1);
    assert!(store.get(&done).await.expect("get").is_none());
    assert!(
        store.get(&failed).await.expect("get").is_some(),
        "too recent"
    );
    assert!(
        store.get(&pending).await.expect("get").is_some(),
        "not finished"
    );
    let redelivered = store.insert(new_task("done")).await.expect("insert");
    assert!(!redelivered.duplicate, "the purged delivery is forgotten");
    assert_ne!(redelivered.id, done);
    assert!(
        store
            .insert(new_task("failed"))
            .await
            .expect("insert")
            .duplicate
    );

    assert_eq!(
        store.purge_finished(clock.now() + time::Duration::seconds(1)),
        1
    );
    assert!(store.get(&failed).await.expect("get").is_none());
    let all = store.list(&TaskQuery::default()).await.expect("list");
    assert_eq!(all.len(), 2, "the pending task and the redelivery remain");
}

/// The whole list again through `Arc<dyn TaskStore>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arc_dyn_conformance() {
    let (store, clock) = store();
    let store: Arc<dyn TaskStore> = Arc::new(store);
    suite::run_all(store, &clock).await;
}

#[tokio::test]
async fn rooms_exist_while_they_hold_tasks() {
    let (store, clock) = store();
    // Watching creates no room, and a dropped watcher leaves no channel.
    for n in 0..100 {
        drop(
            store
                .watch(&format!("watched-{n}"))
                .expect("memory store notifies"),
        );
    }
    let _kept = store.watch("kept").expect("memory store notifies");
    assert_eq!(read(&store.rooms).len(), 0);
    assert_eq!(
        read(&store.watchers).len(),
        1,
        "only the live watcher's channel"
    );

    let id = store.insert(new_task("1")).await.expect("insert").id;
    assert_eq!(read(&store.rooms).len(), 1);
    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    store
        .complete(&id, &claimed.token, None)
        .await
        .expect("complete");
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.purge_finished(clock.now()), 1);
    assert_eq!(read(&store.rooms).len(), 0, "the empty room went");
    assert!(lock(&store.ids[0]).is_empty() && store.ids.iter().all(|s| lock(s).is_empty()));
    // And comes back with the next task.
    let again = store.insert(new_task("2")).await.expect("insert").id;
    let claimed = store.claim(&request()).await.expect("claim").expect("task");
    assert_eq!(claimed.task.id, again);
}

#[tokio::test]
async fn ids_are_random_uuids() {
    let (store, _) = store();
    let id = store.insert(new_task("1")).await.expect("insert").id;
    let uuid = uuid::Uuid::try_parse(id.as_str()).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(uuid.hyphenated().to_string(), id.as_str());
}
