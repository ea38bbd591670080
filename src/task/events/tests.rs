//! The event hub and the announcing store.

use super::*;
use crate::task::InMemoryTaskStore;

fn new_task(room: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.into(),
        title: format!("task {delivery}"),
        description: String::new(),
        priority: 1,
        source: "test".into(),
        source_event: "e".into(),
        source_url: None,
        delivery_id: delivery.into(),
        payload: "{}".into(),
        required_capabilities: vec![],
        ttl: None,
    }
}

fn store() -> (AnnouncingTaskStore, Arc<TaskEvents>) {
    let events = Arc::new(TaskEvents::with_capacity(4, 2));
    let store = AnnouncingTaskStore::new(Arc::new(InMemoryTaskStore::new()), Arc::clone(&events));
    (store, events)
}

fn request(room: &str) -> ClaimRequest {
    ClaimRequest {
        room: room.into(),
        agent: "a".into(),
        capabilities: vec![],
        lease: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn lifecycle_changes_are_announced_in_order_and_duplicates_are_not() {
    let events = Arc::new(TaskEvents::new());
    let store = AnnouncingTaskStore::new(Arc::new(InMemoryTaskStore::new()), Arc::clone(&events));
    let mut all = events.subscribe(None, None);
    let id = store.insert(new_task("r", "1")).await.unwrap().id;
    store.insert(new_task("r", "1")).await.unwrap();
    let claimed = store.claim(&request("r")).await.unwrap().unwrap();
    store
        .heartbeat(&id, &claimed.token, Duration::from_secs(5))
        .await
        .unwrap();
    store
        .request_input(&id, &claimed.token, "which?")
        .await
        .unwrap();
    // A refused operation announces nothing.
    assert!(
        store
            .complete(&id, &ClaimToken::new("stale"), None)
            .await
            .is_err()
    );
    let mut kinds = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(20), all.recv()).await {
        assert_eq!(event.task, id);
        kinds.push((event.seq, event.kind, event.status));
    }
    assert_eq!(
        kinds,
        [
            (1, TaskEventKind::Created, JobStatus::Pending),
            (2, TaskEventKind::Claimed, JobStatus::Running),
            (3, TaskEventKind::NeedsInput, JobStatus::NeedsInput),
        ]
    );
}

#[tokio::test]
async fn resumption_replays_what_follows_and_flags_what_was_lost() {
    let (store, events) = store();
    for n in 0..3 {
        store.insert(new_task("r", &n.to_string())).await.unwrap();
    }
    let mut resumed = events.subscribe(None, Some(1));
    assert!(!resumed.missed());
    assert_eq!(resumed.recv().await.unwrap().seq, 2);
    assert_eq!(resumed.recv().await.unwrap().seq, 3);
    for n in 3..6 {
        store
            .insert(new_task("other", &n.to_string()))
            .await
            .unwrap();
    }
    // The buffer holds 4 events (3..=6): 1 is gone, so 2 was missed.
    let late = events.subscribe(Some("r"), Some(1));
    assert!(late.missed());
    // An id this hub never gave out.
    assert!(events.subscribe(None, Some(99)).missed());
    assert!(!events.subscribe(None, Some(6)).missed());
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_and_others_are_not() {
    let (store, events) = store();
    let mut slow = events.subscribe(None, None);
    let mut other_room = events.subscribe(Some("quiet"), None);
    for n in 0..3 {
        store.insert(new_task("r", &n.to_string())).await.unwrap();
    }
    // Two queued, the third cut it off: it reads the two, then ends.
    assert!(slow.is_cut_off());
    assert_eq!(slow.recv().await.unwrap().seq, 1);
    assert_eq!(slow.recv().await.unwrap().seq, 2);
    assert!(slow.recv().await.is_none());
    assert!(!other_room.is_cut_off());
    store.insert(new_task("quiet", "q")).await.unwrap();
    assert_eq!(other_room.recv().await.unwrap().room, "quiet");
}

#[tokio::test]
async fn watch_wakes_on_new_and_returned_work() {
    let (store, _) = store();
    let mut watch = store.watch("r").unwrap();
    let id = store.insert(new_task("r", "1")).await.unwrap().id;
    assert_eq!(watch.recv().await.unwrap(), id);
    let claimed = store.claim(&request("r")).await.unwrap().unwrap();
    store.release(&id, &claimed.token).await.unwrap();
    assert_eq!(watch.recv().await.unwrap(), id);
    assert!(watch.try_recv().is_err());
}
