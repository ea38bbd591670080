//! One check per behaviour area of the `TaskStore` contract.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::clock::{Clock, ManualClock};
use crate::lifecycle::JobStatus;
use crate::task::{ClaimRefusal, ClaimToken, FailAction, StoreError, TaskId, TaskQuery, TaskStore};

use super::fixtures::*;
use super::model::*;

/// The second insert of a `(source, delivery_id)` returns the first task's
/// id, flagged duplicate, and changes nothing; either half alone is new.
pub async fn insert_idempotent(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("inbox");
    let source = ns.source("github");
    let now = clock.now();

    let first = insert(store, new_task(&room, &source, "d-1")).await;
    assert!(!first.duplicate, "a first insert is not a duplicate");
    let mut again = new_task(&room, &source, "d-1");
    again.title = "another title".into();
    again.priority = 9;
    let second = store.insert(again).await.expect("insert duplicate");
    assert!(
        second.duplicate,
        "same (source, delivery_id) is a duplicate"
    );
    assert_eq!(second.id, first.id, "a duplicate returns the first id");

    let other_source = insert(store, new_task(&room, &ns.source("slack"), "d-1")).await;
    assert!(
        !other_source.duplicate,
        "delivery ids are unique per source"
    );
    let other_delivery = insert(store, new_task(&room, &source, "d-2")).await;
    assert!(!other_delivery.duplicate);
    let ids: HashSet<_> = [&first.id, &other_source.id, &other_delivery.id]
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 3, "new tasks get distinct ids");

    let stored = get(store, &first.id).await;
    let expected = new_task(&room, &source, "d-1");
    assert_eq!(stored.id, first.id);
    assert_eq!(
        stored.title, expected.title,
        "the duplicate changed nothing"
    );
    assert_eq!(stored.priority, expected.priority);
    assert_eq!(stored.room, room);
    assert_eq!(stored.source, source);
    assert_eq!(stored.source_event, expected.source_event);
    assert_eq!(stored.source_url, expected.source_url);
    assert_eq!(stored.description, expected.description);
    assert_eq!(stored.payload.as_bytes(), expected.payload.as_bytes());
    assert_eq!(stored.status, JobStatus::Pending);
    assert_eq!(stored.attempts, 0);
    assert_eq!(stored.created_at, now);
    assert_eq!(stored.updated_at, now);
    assert_eq!(stored.expires_at, None);
    assert_eq!(stored.not_before, None);
    assert_eq!(stored.claimed_by, None);
    assert_eq!(stored.lease_expires_at, None);

    let mut with_ttl = new_task(&room, &source, "d-3");
    with_ttl.ttl = Some(Duration::from_secs(60));
    with_ttl.required_capabilities = vec!["gpu".into()];
    let id = insert(store, with_ttl).await.id;
    let stored = get(store, &id).await;
    assert_eq!(stored.expires_at, Some(now + secs(60)));
    assert_eq!(stored.required_capabilities, vec!["gpu".to_owned()]);
}

/// `get` of an unknown id is `None`; `list` filters by room, status and
/// source, returns newest first and honours the limit.
pub async fn get_and_list(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let (room, other_room) = (ns.room("one"), ns.room("two"));
    let (github, slack) = (ns.source("github"), ns.source("slack"));
    assert!(
        store
            .get(&TaskId::random())
            .await
            .expect("get unknown")
            .is_none()
    );

    let t1 = insert(store, new_task(&room, &github, "1")).await.id;
    clock.advance(secs(1));
    let t2 = insert(store, new_task(&room, &slack, "2")).await.id;
    clock.advance(secs(1));
    let t3 = insert(store, new_task(&room, &github, "3")).await.id;
    // Same instant as t3: the later insert is newer.
    let t4 = insert(store, new_task(&room, &github, "4")).await.id;
    let t5 = insert(store, new_task(&other_room, &github, "5")).await.id;

    let by_room = list(store, Some(&room), None, None, None).await;
    assert_eq!(
        by_room,
        vec![t4.clone(), t3.clone(), t2.clone(), t1.clone()]
    );
    let limited = list(store, Some(&room), None, None, Some(2)).await;
    assert_eq!(limited, vec![t4.clone(), t3.clone()]);
    assert!(
        list(store, Some(&room), None, None, Some(0))
            .await
            .is_empty()
    );
    let by_source = list(store, None, None, Some(&github), None).await;
    assert_eq!(
        by_source,
        vec![t5.clone(), t4.clone(), t3.clone(), t1.clone()]
    );
    let room_and_source = list(store, Some(&room), None, Some(&slack), None).await;
    assert_eq!(room_and_source, vec![t2.clone()]);
    assert!(
        list(store, Some(&ns.room("empty")), None, None, None)
            .await
            .is_empty()
    );

    let claimed = claim(store, &room, "agent", &[], 60).await;
    assert_eq!(claimed.task.id, t1, "the oldest of equal priority");
    let running = list(store, Some(&room), Some(JobStatus::Running), None, None).await;
    assert_eq!(running, vec![t1.clone()]);
    let pending = list(store, Some(&room), Some(JobStatus::Pending), None, None).await;
    assert_eq!(pending, vec![t4, t3, t2]);
    let listed = store
        .list(&TaskQuery {
            room: Some(room.clone()),
            status: Some(JobStatus::Running),
            ..TaskQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        listed,
        vec![get(store, &t1).await],
        "list returns whole tasks"
    );

    // Pages: each continues after the last task of the one before, and
    // together they list the room once, newest first.
    let whole = list(store, Some(&room), None, None, None).await;
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page: Vec<TaskId> = store
            .list(&TaskQuery {
                room: Some(room.clone()),
                limit: Some(2),
                before: cursor.clone(),
                ..TaskQuery::default()
            })
            .await
            .expect("list a page")
            .into_iter()
            .map(|task| task.id)
            .collect();
        assert!(page.len() <= 2);
        cursor = page.last().cloned();
        paged.extend(page);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, whole, "pages list the room once, in order");
    let unknown = store
        .list(&TaskQuery {
            before: Some(TaskId::random()),
            ..TaskQuery::default()
        })
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "an unknown cursor is NotFound: {unknown:?}"
    );
}

/// Claims take the lowest priority number first, then the oldest, then the
/// earlier insert; an empty or unknown room gives `None`.
pub async fn claim_order(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("queue");
    let source = ns.source("github");
    let p2_oldest = insert(store, with_priority(new_task(&room, &source, "a"), 2)).await;
    clock.advance(secs(1));
    let p1_old = insert(store, with_priority(new_task(&room, &source, "b"), 1)).await;
    clock.advance(secs(1));
    let p3 = insert(store, with_priority(new_task(&room, &source, "c"), 3)).await;
    let p1_new = insert(store, with_priority(new_task(&room, &source, "d"), 1)).await;
    let p1_same_instant = insert(store, with_priority(new_task(&room, &source, "e"), 1)).await;
    let p2_new = insert(store, with_priority(new_task(&room, &source, "f"), 2)).await;

    let mut order = Vec::new();
    while let Some(claimed) = store
        .claim(&request(&room, "agent", &[], 60))
        .await
        .expect("claim")
    {
        order.push(claimed.task.id);
        assert!(order.len() <= 6, "a held task was handed out again");
    }
    assert_eq!(
        order,
        vec![
            p1_old.id,
            p1_new.id,
            p1_same_instant.id,
            p2_oldest.id,
            p2_new.id,
            p3.id
        ]
    );
    assert!(
        store
            .claim(&request(&ns.room("nowhere"), "agent", &[], 60))
            .await
            .expect("claim unknown room")
            .is_none()
    );
}

/// An agent claims only tasks whose required capabilities it all has, and
/// still in claim order among those.
pub async fn claim_capabilities(store: &dyn TaskStore, _clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("caps");
    let source = ns.source("github");
    let needs = |delivery: &str, caps: &[&str], priority: u32| {
        let mut task = with_priority(new_task(&room, &source, delivery), priority);
        task.required_capabilities = caps.iter().map(|c| (*c).to_owned()).collect();
        task
    };
    let gpu_net = insert(store, needs("1", &["gpu", "net"], 1)).await.id;
    let gpu = insert(store, needs("2", &["gpu"], 1)).await.id;
    let plain = insert(store, needs("3", &[], 2)).await.id;
    let gpu_low = insert(store, needs("4", &["gpu"], 3)).await.id;

    let none = claim(store, &room, "plain-agent", &[], 60).await;
    assert_eq!(none.task.id, plain, "no capabilities: only the plain task");
    assert!(
        store
            .claim(&request(&room, "plain-agent", &[], 60))
            .await
            .expect("claim")
            .is_none()
    );
    let first = claim(store, &room, "gpu-agent", &["gpu"], 60).await;
    assert_eq!(first.task.id, gpu);
    let second = claim(store, &room, "gpu-agent", &["gpu"], 60).await;
    assert_eq!(second.task.id, gpu_low, "gpu+net is out of reach");
    let both = claim(store, &room, "big-agent", &["net", "extra", "gpu"], 60).await;
    assert_eq!(both.task.id, gpu_net);
    assert_eq!(both.task.claimed_by.as_deref(), Some("big-agent"));
}

/// While a lease runs nobody else claims the task; once it runs out the
/// task is claimed again with a new token, and the old token is refused by
/// every operation that needs one.
pub async fn claim_exclusive_and_fenced(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("fenced");
    let source = ns.source("github");
    let id = insert(store, new_task(&room, &source, "1")).await.id;
    let other = insert(store, new_task(&room, &source, "2")).await.id;

    let first = claim(store, &room, "a", &[], 10).await;
    assert_eq!(first.task.id, id);
    let claimed_at = clock.now();
    assert_eq!(first.task.status, JobStatus::Running);
    assert_eq!(first.task.claimed_by.as_deref(), Some("a"));
    assert_eq!(first.task.lease_expires_at, Some(claimed_at + secs(10)));
    assert_eq!(first.task.attempts, 1);
    assert_eq!(first.task.updated_at, claimed_at);
    assert_eq!(get(store, &id).await, first.task, "claim returns the task");

    let second = claim(store, &room, "b", &[], 10).await;
    assert_eq!(second.task.id, other, "the held task is not offered again");
    assert!(
        store
            .claim(&request(&room, "c", &[], 10))
            .await
            .expect("claim")
            .is_none()
    );

    let bogus = ClaimToken::new("not-a-token");
    assert_eq!(
        err(store.complete(&id, &bogus, None).await),
        ErrKind::NotHeld
    );

    clock.advance(secs(10));
    // `second` ran out too; re-claim `id` (the older one) first.
    let regained = claim(store, &room, "c", &[], 10).await;
    assert_eq!(regained.task.id, id);
    assert_ne!(regained.token, first.token, "a new claim gets a new token");
    assert_eq!(regained.task.attempts, 2);
    assert_eq!(regained.task.claimed_by.as_deref(), Some("c"));
    assert_eq!(regained.task.lease_expires_at, Some(clock.now() + secs(10)));
    assert_eq!(regained.task.updated_at, clock.now());

    let stale = &first.token;
    assert_eq!(
        err(store.heartbeat(&id, stale, secs(10)).await),
        ErrKind::NotHeld
    );
    assert_eq!(
        err(store.complete(&id, stale, None).await),
        ErrKind::NotHeld
    );
    assert_eq!(
        err(store.fail(&id, stale, "x", FailAction::Fail).await),
        ErrKind::NotHeld
    );
    assert_eq!(err(store.release(&id, stale).await), ErrKind::NotHeld);
    assert_eq!(
        err(store.request_input(&id, stale, "?").await),
        ErrKind::NotHeld
    );
    assert_eq!(err(store.take_input(&id, stale).await), ErrKind::NotHeld);
    assert_eq!(
        get(store, &id).await.claimed_by.as_deref(),
        Some("c"),
        "refused calls changed nothing"
    );

    let done = store
        .complete(&id, &regained.token, Some(json!({"ok": true})))
        .await
        .expect("the current holder completes");
    assert_eq!(done.status, JobStatus::Done);
}

/// A heartbeat moves the lease end to `now + lease`, which keeps the task
/// from being claimed past the first lease.
pub async fn heartbeat_extends_lease(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("beat");
    let id = insert(store, new_task(&room, &ns.source("s"), "1"))
        .await
        .id;
    let claimed = claim(store, &room, "a", &[], 10).await;
    clock.advance(secs(8));
    let beat = store
        .heartbeat(&id, &claimed.token, secs(10))
        .await
        .expect("heartbeat");
    assert_eq!(beat.lease_expires_at, Some(clock.now() + secs(10)));
    assert_eq!(beat.updated_at, clock.now());
    assert_eq!(beat.status, JobStatus::Running);
    assert_eq!(beat.attempts, 1, "a heartbeat is not an attempt");
    assert_eq!(get(store, &id).await, beat);

    clock.advance(secs(8));
    assert!(
        store
            .claim(&request(&room, "b", &[], 10))
            .await
            .expect("claim")
            .is_none(),
        "the extended lease still runs"
    );
    assert_eq!(get(store, &id).await.status, JobStatus::Running);
    clock.advance(secs(2));
    let taken = claim(store, &room, "b", &[], 10).await;
    assert_eq!(taken.task.id, id, "the extended lease ran out");
}

/// `complete`, `fail` and `release` end a claim as documented.
pub async fn complete_fail_release(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("end");
    let source = ns.source("s");
    let to_complete = insert(store, new_task(&room, &source, "1")).await.id;
    let to_fail = insert(store, new_task(&room, &source, "2")).await.id;
    let to_release = insert(store, new_task(&room, &source, "3")).await.id;

    let a = claim(store, &room, "a", &[], 60).await;
    let b = claim(store, &room, "b", &[], 60).await;
    let c = claim(store, &room, "c", &[], 60).await;
    assert_eq!(
        (&a.task.id, &b.task.id, &c.task.id),
        (&to_complete, &to_fail, &to_release)
    );
    clock.advance(secs(5));

    let done = store
        .complete(&to_complete, &a.token, Some(json!({"labels": ["bug"]})))
        .await
        .expect("complete");
    assert_eq!(done.status, JobStatus::Done);
    assert_eq!(done.result, Some(json!({"labels": ["bug"]})));
    assert_eq!(done.claimed_by.as_deref(), Some("a"));
    assert_eq!(done.lease_expires_at, None);
    assert_eq!(done.updated_at, clock.now());
    assert_eq!(done.attempts, 1);
    assert_eq!(get(store, &to_complete).await, done);

    let failed = store
        .fail(&to_fail, &b.token, "agent crashed", FailAction::Fail)
        .await
        .expect("fail");
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.failure.as_deref(), Some("agent crashed"));
    assert_eq!(failed.claimed_by.as_deref(), Some("b"));
    assert_eq!(failed.lease_expires_at, None);
    assert_eq!(failed.updated_at, clock.now());
    assert_eq!(get(store, &to_fail).await, failed);

    let released = store.release(&to_release, &c.token).await.expect("release");
    assert_eq!(released.status, JobStatus::Pending);
    assert_eq!(released.attempts, 0, "a release does not count the attempt");
    assert_eq!(released.claimed_by, None);
    assert_eq!(released.lease_expires_at, None);
    assert_eq!(released.updated_at, clock.now());
    assert_eq!(get(store, &to_release).await, released);
    assert_eq!(
        err(store.heartbeat(&to_release, &c.token, secs(5)).await),
        ErrKind::NotHeld,
        "a released claim's token is dead"
    );
    let again = claim(store, &room, "d", &[], 60).await;
    assert_eq!(again.task.id, to_release, "a released task is claimable");
    assert_eq!(again.task.attempts, 1);
}

/// Operations the state forbids are errors, never silent: finished tasks
/// refuse everything, unheld tasks refuse tokens, unknown ids are not found.
pub async fn illegal_transitions(store: &dyn TaskStore, _clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("illegal");
    let source = ns.source("s");
    let done_id = insert(store, new_task(&room, &source, "1")).await.id;
    let failed_id = insert(store, new_task(&room, &source, "2")).await.id;
    let pending_id = insert(store, new_task(&room, &source, "3")).await.id;

    let done = claim(store, &room, "a", &[], 60).await;
    store
        .complete(&done_id, &done.token, None)
        .await
        .expect("complete");
    let failed = claim(store, &room, "a", &[], 60).await;
    store
        .fail(&failed_id, &failed.token, "no", FailAction::Fail)
        .await
        .expect("fail");

    for (id, token, from) in [
        (&done_id, &done.token, JobStatus::Done),
        (&failed_id, &failed.token, JobStatus::Failed),
    ] {
        let invalid = |operation| ErrKind::InvalidTransition { from, operation };
        assert_eq!(
            err(store.complete(id, token, None).await),
            invalid("complete")
        );
        assert_eq!(
            err(store.fail(id, token, "x", FailAction::Fail).await),
            invalid("fail")
        );
        assert_eq!(
            err(store
                .fail(id, token, "x", FailAction::Retry { after: secs(0) })
                .await),
            invalid("fail")
        );
        assert_eq!(err(store.release(id, token).await), invalid("release"));
        assert_eq!(
            err(store.heartbeat(id, token, secs(5)).await),
            invalid("heartbeat")
        );
        assert_eq!(
            err(store.request_input(id, token, "?").await),
            invalid("request_input")
        );
        assert_eq!(
            err(store.take_input(id, token).await),
            invalid("take_input")
        );
        assert_eq!(
            err(store.provide_input(id, json!(1)).await),
            invalid("provide_input")
        );
        // Anyone but the last holder is simply not holding it.
        let stranger = ClaimToken::new("not-the-last-claim");
        assert_eq!(
            err(store.complete(id, &stranger, None).await),
            ErrKind::NotHeld
        );
        assert_eq!(
            err(store.heartbeat(id, &stranger, secs(5)).await),
            ErrKind::NotHeld
        );
        assert_eq!(get(store, id).await.status, from, "still {from}");
    }

    // Nobody holds a pending task: every token is refused.
    let token = ClaimToken::new("1");
    assert_eq!(
        err(store.complete(&pending_id, &token, None).await),
        ErrKind::NotHeld
    );
    assert_eq!(
        err(store.release(&pending_id, &token).await),
        ErrKind::NotHeld
    );
    assert_eq!(
        err(store.provide_input(&pending_id, json!(1)).await),
        ErrKind::InvalidTransition {
            from: JobStatus::Pending,
            operation: "provide_input"
        }
    );
    assert_eq!(get(store, &pending_id).await.status, JobStatus::Pending);

    let unknown = TaskId::random();
    assert_eq!(
        err(store.heartbeat(&unknown, &token, secs(1)).await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.complete(&unknown, &token, None).await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.fail(&unknown, &token, "x", FailAction::Fail).await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.release(&unknown, &token).await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.request_input(&unknown, &token, "?").await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.provide_input(&unknown, json!(1)).await),
        ErrKind::NotFound
    );
    assert_eq!(
        err(store.take_input(&unknown, &token).await),
        ErrKind::NotFound
    );
}

/// `fail(Retry { after })` puts the task back, claimable from `now + after`,
/// keeping its place in claim order.
pub async fn retry_not_before(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("retry");
    let source = ns.source("s");
    let id = insert(store, new_task(&room, &source, "1")).await.id;
    let claimed = claim(store, &room, "a", &[], 60).await;
    clock.advance(secs(1));
    let newer = insert(store, new_task(&room, &source, "2")).await.id;

    let retried = store
        .fail(
            &id,
            &claimed.token,
            "timeout",
            FailAction::Retry { after: secs(30) },
        )
        .await
        .expect("fail with retry");
    assert_eq!(retried.status, JobStatus::Pending);
    assert_eq!(retried.not_before, Some(clock.now() + secs(30)));
    assert_eq!(retried.failure.as_deref(), Some("timeout"));
    assert_eq!(retried.attempts, 1, "the failed attempt counts");
    assert_eq!(retried.claimed_by, None);
    assert_eq!(retried.lease_expires_at, None);
    assert_eq!(get(store, &id).await, retried);
    assert_eq!(
        err(store.release(&id, &claimed.token).await),
        ErrKind::NotHeld
    );

    let other = claim(store, &room, "b", &[], 60).await;
    assert_eq!(
        other.task.id, newer,
        "the retry waits, the newer task does not"
    );
    store
        .release(&newer, &other.token)
        .await
        .expect("release newer");
    clock.advance(secs(29));
    let still_newer = claim(store, &room, "b", &[], 60).await;
    assert_eq!(still_newer.task.id, newer);
    store
        .release(&newer, &still_newer.token)
        .await
        .expect("release newer");

    clock.advance(secs(1));
    let again = claim(store, &room, "b", &[], 60).await;
    assert_eq!(
        again.task.id, id,
        "due retry, older than `newer`, goes first"
    );
    assert_eq!(again.task.attempts, 2);
    assert_eq!(again.task.not_before, None);
    assert_eq!(again.task.failure.as_deref(), Some("timeout"));
}

/// `request_input` → `provide_input` → `take_input` round trip, with the
/// states in between.
pub async fn needs_input_round_trip(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("input");
    let id = insert(store, new_task(&room, &ns.source("s"), "1"))
        .await
        .id;
    let claimed = claim(store, &room, "a", &[], 60).await;
    let token = &claimed.token;
    let invalid = |from, operation| ErrKind::InvalidTransition { from, operation };

    assert_eq!(
        err(store.take_input(&id, token).await),
        invalid(JobStatus::Running, "take_input")
    );
    assert_eq!(
        err(store.provide_input(&id, json!("early")).await),
        invalid(JobStatus::Running, "provide_input")
    );
    clock.advance(secs(1));
    let asked = store
        .request_input(&id, token, "which label?")
        .await
        .expect("request_input");
    assert_eq!(asked.status, JobStatus::NeedsInput);
    assert_eq!(asked.input_request.as_deref(), Some("which label?"));
    assert_eq!(asked.input, None);
    assert_eq!(asked.claimed_by.as_deref(), Some("a"), "the claim stays");
    assert_eq!(asked.updated_at, clock.now());
    assert_eq!(get(store, &id).await, asked);

    assert_eq!(
        err(store.complete(&id, token, None).await),
        invalid(JobStatus::NeedsInput, "complete")
    );
    assert_eq!(
        err(store.request_input(&id, token, "again?").await),
        invalid(JobStatus::NeedsInput, "request_input")
    );
    assert_eq!(
        store.take_input(&id, token).await.expect("take_input"),
        None,
        "no input yet"
    );
    assert_eq!(
        get(store, &id).await,
        asked,
        "an empty take changes nothing"
    );
    let beat = store
        .heartbeat(&id, token, secs(60))
        .await
        .expect("heartbeat keeps a NEEDS_INPUT claim");
    assert_eq!(beat.status, JobStatus::NeedsInput);

    clock.advance(secs(1));
    let answered = store
        .provide_input(&id, json!({"label": "bug"}))
        .await
        .expect("provide_input");
    assert_eq!(answered.status, JobStatus::NeedsInput);
    assert_eq!(answered.input, Some(json!({"label": "bug"})));
    assert_eq!(answered.updated_at, clock.now());
    let replaced = store
        .provide_input(&id, json!({"label": "feature"}))
        .await
        .expect("provide_input again");
    assert_eq!(replaced.input, Some(json!({"label": "feature"})));
    assert_eq!(
        err(store.take_input(&id, &ClaimToken::new("bogus")).await),
        ErrKind::NotHeld
    );

    clock.advance(secs(1));
    let input = store.take_input(&id, token).await.expect("take_input");
    assert_eq!(input, Some(json!({"label": "feature"})));
    let resumed = get(store, &id).await;
    assert_eq!(resumed.status, JobStatus::Running);
    assert_eq!(resumed.input, None);
    assert_eq!(resumed.input_request, None);
    assert_eq!(resumed.updated_at, clock.now());
    assert_eq!(
        err(store.take_input(&id, token).await),
        invalid(JobStatus::Running, "take_input")
    );
    let done = store
        .complete(&id, token, Some(json!({"applied": "feature"})))
        .await
        .expect("complete after input");
    assert_eq!(done.status, JobStatus::Done);

    // A NEEDS_INPUT claim that is not kept alive is lost like any other.
    let id = insert(store, new_task(&room, &ns.source("s"), "2"))
        .await
        .id;
    let claimed = claim(store, &room, "a", &[], 10).await;
    store
        .request_input(&id, &claimed.token, "?")
        .await
        .expect("request_input");
    // Answered, but the claim that asked lapses before it takes the answer.
    store
        .provide_input(&id, json!("too late"))
        .await
        .expect("provide_input");
    clock.advance(secs(10));
    assert_eq!(
        err(store.take_input(&id, &claimed.token).await),
        ErrKind::NotHeld
    );
    assert_eq!(
        err(store.heartbeat(&id, &claimed.token, secs(10)).await),
        ErrKind::NotHeld
    );
    let taken_over = claim(store, &room, "b", &[], 10).await;
    assert_eq!(taken_over.task.id, id);
    assert_eq!(taken_over.task.status, JobStatus::Running);
    assert_eq!(
        taken_over.task.input_request, None,
        "the old claim's question went with it"
    );
    assert_eq!(
        taken_over.task.input, None,
        "nor does the answer it never took"
    );
    assert_eq!(get(store, &id).await.input, None);
}

/// A lease that runs out kills its token at once, even before anyone
/// re-claims the task; the task reads as it was until a claim takes it over.
pub async fn lease_expiry(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("lease");
    let id = insert(store, new_task(&room, &ns.source("s"), "1"))
        .await
        .id;
    let claimed = claim(store, &room, "a", &[], 10).await;

    clock.advance(secs(9));
    store
        .heartbeat(&id, &claimed.token, secs(1))
        .await
        .expect("one second of lease is left");
    clock.advance(secs(1));
    let lapsed = get(store, &id).await;
    assert_eq!(
        (lapsed.status, lapsed.claimed_by.as_deref()),
        (JobStatus::Running, Some("a")),
        "a lapsed claim reads as it was"
    );
    assert_eq!(lapsed.lease_expires_at, Some(clock.now()));
    assert_eq!(
        list(store, Some(&room), Some(JobStatus::Running), None, None).await,
        vec![id.clone()]
    );
    assert_eq!(
        err(store.heartbeat(&id, &claimed.token, secs(10)).await),
        ErrKind::NotHeld,
        "a lost lease cannot be revived"
    );
    assert_eq!(
        err(store.complete(&id, &claimed.token, None).await),
        ErrKind::NotHeld
    );

    let again = claim(store, &room, "b", &[], 10).await;
    assert_eq!(again.task.id, id, "the lease's end made it claimable");
    assert_eq!(again.task.attempts, 2);
    assert_eq!(again.task.claimed_by.as_deref(), Some("b"));
    assert_eq!(again.task.lease_expires_at, Some(clock.now() + secs(10)));
    assert_ne!(again.token, claimed.token);
    assert_eq!(
        err(store.release(&id, &claimed.token).await),
        ErrKind::NotHeld
    );
}

/// A pending task past its TTL is not claimable, and `expire_pending` fails
/// it with reason `expired` exactly once. Claimed tasks don't expire.
pub async fn ttl_expiry(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("ttl");
    let source = ns.source("s");
    let with_ttl = |delivery: &str, ttl: Option<u64>, priority: u32| {
        let mut task = with_priority(new_task(&room, &source, delivery), priority);
        task.ttl = ttl.map(Duration::from_secs);
        task
    };
    let short = insert(store, with_ttl("1", Some(60), 1)).await.id;
    let forever = insert(store, with_ttl("2", None, 2)).await.id;
    let long = insert(store, with_ttl("3", Some(120), 3)).await.id;
    let claimed_early = insert(store, with_ttl("4", Some(60), 0)).await.id;
    let held = claim(store, &room, "a", &[], 1_000).await;
    assert_eq!(held.task.id, claimed_early);
    assert_eq!(held.task.expires_at, None, "a claim ends the TTL");

    clock.advance(secs(59));
    assert!(expired_in(store, &room).await.is_empty());
    clock.advance(secs(1));
    let next = claim(store, &room, "a", &[], 1_000).await;
    assert_eq!(next.task.id, forever, "the expired task is skipped");
    store.release(&forever, &next.token).await.expect("release");
    assert_eq!(
        get(store, &short).await.status,
        JobStatus::Pending,
        "expiry is reported by expire_pending, not done silently"
    );

    let expired = expired_in(store, &room).await;
    assert_eq!(
        expired.iter().map(|t| &t.id).collect::<Vec<_>>(),
        vec![&short]
    );
    let task = &expired[0];
    assert_eq!(task.status, JobStatus::Failed);
    assert_eq!(task.failure.as_deref(), Some("expired"));
    assert_eq!(task.updated_at, clock.now());
    assert_eq!(&get(store, &short).await, task);
    assert!(expired_in(store, &room).await.is_empty(), "reported once");

    clock.advance(secs(60));
    let expired = expired_in(store, &room).await;
    assert_eq!(
        expired.iter().map(|t| &t.id).collect::<Vec<_>>(),
        vec![&long]
    );
    assert_eq!(get(store, &claimed_early).await.status, JobStatus::Running);
    assert_eq!(get(store, &forever).await.status, JobStatus::Pending);
}

/// When the backend offers [`TaskStore::watch`], a watcher of a room hears
/// of a task inserted there, and only there.
pub async fn watch_notifies(store: &dyn TaskStore, _clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("watched");
    let Some(mut receiver) = store.watch(&room) else {
        return;
    };
    let mut quiet = store
        .watch(&ns.room("quiet"))
        .expect("a backend with notifications has them for every room");
    let id = insert(store, new_task(&room, &ns.source("s"), "1"))
        .await
        .id;
    let heard = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
        .await
        .expect("notified in time")
        .expect("notification");
    assert_eq!(heard, id);
    assert!(quiet.try_recv().is_err(), "other rooms are not told");
}

/// `claim_task` takes the very task asked for, out of claim order, and
/// refuses one it may not take with the reason.
pub async fn claim_by_id(store: &dyn TaskStore, clock: &ManualClock) {
    let ns = Namespace::new();
    let room = ns.room("pick");
    let source = ns.source("github");
    let first = insert(store, new_task(&room, &source, "first")).await.id;
    let mut gpu = new_task(&room, &source, "second");
    gpu.required_capabilities = vec!["gpu".into()];
    let second = insert(store, gpu).await.id;

    let refusal = |result: Result<crate::task::Claimed, StoreError>| match result {
        Err(StoreError::NotClaimable { reason, .. }) => reason,
        other => panic!("expected NotClaimable, got {other:?}"),
    };
    assert_eq!(
        refusal(
            store
                .claim_task(&second, &request(&room, "a", &[], 30))
                .await
        ),
        ClaimRefusal::MissingCapabilities
    );
    // Out of claim order: the second task, not the first.
    let claimed = store
        .claim_task(&second, &request("any room", "a", &["gpu"], 30))
        .await
        .expect("claimable");
    assert_eq!(claimed.task.id, second);
    assert_eq!(claimed.task.status, JobStatus::Running);
    assert_eq!(claimed.task.claimed_by.as_deref(), Some("a"));
    assert_eq!(claimed.task.attempts, 1);
    assert_eq!(
        claimed.task.lease_expires_at,
        Some(clock.now() + time::Duration::seconds(30))
    );
    assert_eq!(get(store, &second).await, claimed.task);
    assert_eq!(
        refusal(
            store
                .claim_task(&second, &request(&room, "b", &["gpu"], 30))
                .await
        ),
        ClaimRefusal::Held
    );
    // The room's own claim order is untouched: the first task is next.
    assert_eq!(claim(store, &room, "b", &[], 30).await.task.id, first);

    // A lease that ended makes it claimable by id again, with a new token.
    clock.advance(Duration::from_secs(30));
    let again = store
        .claim_task(&second, &request(&room, "c", &["gpu"], 30))
        .await
        .expect("claimable after the lease");
    assert_ne!(again.token, claimed.token);
    assert_eq!(again.task.attempts, 2);
    store
        .complete(&second, &again.token, None)
        .await
        .expect("complete");
    assert_eq!(
        refusal(
            store
                .claim_task(&second, &request(&room, "c", &["gpu"], 30))
                .await
        ),
        ClaimRefusal::Finished
    );
    let unknown = TaskId::from(format!("{}-missing", ns.room("x")));
    assert!(matches!(
        store
            .claim_task(&unknown, &request(&room, "c", &[], 30))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}
