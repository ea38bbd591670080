//! Conformance checks for [`TaskStore`] backends.
//!
//! Each `pub async fn` checks one behaviour area and panics (like `assert!`)
//! when the backend breaks the contract. [`run_all`] runs every check; a
//! backend's tests call it once per way the backend can be built:
//!
//! ```
//! use std::sync::Arc;
//! use hookroom::clock::ManualClock;
//! use hookroom::conformance::task_store;
//! use hookroom::task::{InMemoryTaskStore, TaskStore};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let clock = ManualClock::at_unix(1_700_000_000);
//! let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::with_clock(Arc::new(clock.clone())));
//! task_store::claim_order(&*store, &clock).await;
//! # }
//! ```
//!
//! # The store and the clock
//! Every check takes the store **and the [`ManualClock`] the store was built
//! with**: checks move time by hand (never sleep) and compare the store's
//! timestamps with `clock.now()`. A store that reads another clock fails.
//!
//! Checks don't need an empty store: each works in rooms, sources and
//! delivery ids of its own (random names), so a database shared with other
//! data works. Don't run checks concurrently on one store, though:
//! [`TaskStore::expire_pending`] and the clock are store-wide.
//!
//! # The rules checked, beyond the trait's docs
//! - Time boundaries are inclusive: a lease, a retry delay or a TTL that ends
//!   at `t` has ended when `now == t`.
//! - Claim order: lowest `priority`, then oldest `created_at`, then the
//!   earlier insert.
//! - `list`: newest `created_at` first, the later insert first on ties.
//! - A claim sets `status = RUNNING`, `claimed_by`, `lease_expires_at = now +
//!   lease`, `attempts += 1`, and clears `not_before`, `expires_at` (a TTL
//!   bounds how long a task waits for its *first* claim), `input_request` and
//!   `input`.
//! - A token holds its task while the task is `RUNNING` or `NEEDS_INPUT`,
//!   the token is the task's last claim's, and the lease runs (`now <
//!   lease_expires_at`). Tokens need only differ among the claims of one task.
//! - A held task whose lease ends is claimable again at once, but reads as it
//!   was (status, `claimed_by`, the past `lease_expires_at`, `updated_at`)
//!   until a claim takes it over; its token is refused from the lease's end.
//! - `release` and `fail(Retry)` set `PENDING` and clear `claimed_by`,
//!   `lease_expires_at`, `input_request` and `input`; `release` takes one off
//!   `attempts`; `fail(Retry { after })` sets `not_before = now + after` and
//!   `failure`. `complete` and `fail(Fail)` keep `claimed_by` and clear
//!   `lease_expires_at`.
//! - Errors, first match wins: unknown id → `NotFound`; task `DONE` or
//!   `FAILED` → `InvalidTransition` for its last claim's token, `NotHeld` for
//!   any other; (token operations) token not holding the task → `NotHeld`;
//!   state not allowed → `InvalidTransition`. Allowed states: `heartbeat`,
//!   `fail`, `release`: `RUNNING` or `NEEDS_INPUT`; `complete`,
//!   `request_input`: `RUNNING`; `take_input`, `provide_input`:
//!   `NEEDS_INPUT` (`provide_input` needs no token, so a finished task answers
//!   it `InvalidTransition`). `InvalidTransition::operation` is the method's
//!   name.
//! - `request_input` clears any earlier `input`; `provide_input` replaces an
//!   untaken one; `take_input` with input moves to `RUNNING` and clears
//!   `input` and `input_request`, without input it changes nothing.
//! - `expire_pending` fails every `PENDING` task with `expires_at <= now`
//!   (`failure = "expired"`, `updated_at = now`); claims skip such tasks.
//! - Every change sets `updated_at = now`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use time::OffsetDateTime;

use crate::clock::{Clock, ManualClock};
use crate::lifecycle::JobStatus;
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, NewTask, StoreError, Task, TaskId, TaskQuery,
    TaskStore,
};

/// Runs every check against `store`, which must be built on `clock`.
///
/// The concurrency check uses 8 agents and 10,000 tasks and spawns tokio
/// tasks, so call this from a multi-thread runtime
/// (`#[tokio::test(flavor = "multi_thread")]`). The state machine runs
/// proptest's default number of cases (256; `PROPTEST_CASES` overrides it).
pub async fn run_all(store: Arc<dyn TaskStore>, clock: &ManualClock) {
    insert_idempotent(&*store, clock).await;
    get_and_list(&*store, clock).await;
    claim_order(&*store, clock).await;
    claim_capabilities(&*store, clock).await;
    claim_exclusive_and_fenced(&*store, clock).await;
    heartbeat_extends_lease(&*store, clock).await;
    complete_fail_release(&*store, clock).await;
    illegal_transitions(&*store, clock).await;
    retry_not_before(&*store, clock).await;
    needs_input_round_trip(&*store, clock).await;
    lease_expiry(&*store, clock).await;
    ttl_expiry(&*store, clock).await;
    watch_notifies(&*store, clock).await;
    // proptest's default case count: 256, or `PROPTEST_CASES`.
    state_machine(&*store, clock, Config::default().cases).await;
    claim_race(store, 8, 10_000).await;
}

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
    assert_eq!(taken_over.task.input, None);
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

/// What [`claim_race`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceReport {
    /// Claims made by each agent.
    pub claims_per_agent: Vec<usize>,
    /// Tasks released (and claimed again later).
    pub releases: usize,
    /// Tasks failed with a retry (and claimed again later).
    pub retries: usize,
}

/// `agents` tokio tasks claim from one room holding `tasks` tasks until it is
/// empty. Some claims are released or failed for a retry and claimed again;
/// the rest complete. Proves that no task is handed to two agents while
/// leased (every holder's calls succeed, no task is held twice at once) and
/// that none is lost (every task ends `DONE` exactly once, with the right
/// attempt count). Inserts race too: every delivery is sent twice, from two
/// tasks at once, and both must get the same id.
///
/// Needs a multi-thread tokio runtime to race for real.
pub async fn claim_race(store: Arc<dyn TaskStore>, agents: usize, tasks: usize) -> RaceReport {
    let ns = Namespace::new();
    let room = ns.room("race");
    let source = ns.source("s");
    let agents = agents.max(1);

    // Every delivery is inserted by two inserters, concurrently.
    let inserters = agents.max(2);
    let mut handles = Vec::new();
    for inserter in 0..inserters {
        let store = store.clone();
        let (room, source) = (room.clone(), source.clone());
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for index in 0..tasks {
                let owner = index % inserters;
                if owner != inserter && (owner + 1) % inserters != inserter {
                    continue;
                }
                let mut task = new_task(&room, &source, &format!("race-{index}"));
                task.description = index.to_string();
                let inserted = store.insert(task).await.expect("insert");
                got.push((index, inserted));
                // A store that never waits would let one task run to the end.
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut id_of: HashMap<usize, TaskId> = HashMap::new();
    let mut fresh = 0;
    for handle in handles {
        for (index, inserted) in handle.await.expect("inserter") {
            fresh += usize::from(!inserted.duplicate);
            match id_of.get(&index) {
                Some(known) => assert_eq!(known, &inserted.id, "one id per delivery"),
                None => {
                    id_of.insert(index, inserted.id);
                }
            }
        }
    }
    assert_eq!(id_of.len(), tasks);
    assert_eq!(fresh, tasks, "exactly one insert per delivery is fresh");

    let held = Arc::new(Mutex::new(HashSet::<TaskId>::new()));
    let completed = Arc::new(Mutex::new(vec![0_u32; tasks]));
    let released = Arc::new(Mutex::new(HashSet::<usize>::new()));
    let mut handles = Vec::new();
    for agent in 0..agents {
        let store = store.clone();
        let room = room.clone();
        let held = held.clone();
        let completed = completed.clone();
        let released = released.clone();
        handles.push(tokio::spawn(async move {
            let name = format!("agent-{agent}");
            let (mut claims, mut releases, mut retries) = (0, 0, 0);
            let request = request(&room, &name, &[], 3_600);
            while let Some(Claimed { task, token }) = store.claim(&request).await.expect("claim") {
                claims += 1;
                // Each task is claimed at most twice; more means a loop.
                assert!(claims <= 2 * tasks, "{name} claimed more than there is");
                // Let the other agents in between, even on a store that
                // never waits.
                tokio::task::yield_now().await;
                let fresh_hold = held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(task.id.clone());
                assert!(fresh_hold, "task {} handed out twice at once", task.id);
                assert_eq!(task.status, JobStatus::Running);
                assert_eq!(task.claimed_by.as_deref(), Some(name.as_str()));
                let index: usize = task.description.parse().expect("index in description");
                // Forget the hold before giving the task back, so the next
                // holder's insert cannot see a stale entry.
                let unhold = |id: &TaskId| {
                    held.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(id)
                };
                let release_once = index % 10 == 3
                    && released
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(index);
                if release_once {
                    assert!(unhold(&task.id));
                    let back = store.release(&task.id, &token).await.expect("release");
                    assert_eq!(back.status, JobStatus::Pending);
                    releases += 1;
                } else if index % 10 == 7 && task.attempts == 1 {
                    assert!(unhold(&task.id));
                    let back = store
                        .fail(
                            &task.id,
                            &token,
                            "flaky",
                            FailAction::Retry {
                                after: Duration::ZERO,
                            },
                        )
                        .await
                        .expect("fail with retry");
                    assert_eq!(back.status, JobStatus::Pending);
                    retries += 1;
                } else {
                    assert!(unhold(&task.id));
                    let done = store
                        .complete(&task.id, &token, Some(json!({ "agent": agent })))
                        .await
                        .expect("the holder completes");
                    assert_eq!(done.status, JobStatus::Done);
                    if let Some(count) = completed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_mut(index)
                    {
                        *count += 1;
                    }
                }
            }
            (claims, releases, retries)
        }));
    }
    let mut report = RaceReport {
        claims_per_agent: Vec::new(),
        releases: 0,
        retries: 0,
    };
    for handle in handles {
        let (claims, releases, retries) = handle.await.expect("agent");
        report.claims_per_agent.push(claims);
        report.releases += releases;
        report.retries += retries;
    }

    let wrong: Vec<(usize, u32)> = completed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .enumerate()
        .filter(|(_, count)| **count != 1)
        .map(|(index, count)| (index, *count))
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks not completed exactly once: {wrong:?}"
    );
    let total_claims: usize = report.claims_per_agent.iter().sum();
    assert_eq!(total_claims, tasks + report.releases + report.retries);
    assert_eq!(report.releases, count_with(tasks, 3));
    assert_eq!(report.retries, count_with(tasks, 7));

    let done = store
        .list(&TaskQuery {
            room: Some(room.clone()),
            status: Some(JobStatus::Done),
            source: None,
            limit: Some(tasks + 1),
        })
        .await
        .expect("list done");
    assert_eq!(done.len(), tasks, "every task is DONE");
    for task in &done {
        let index: usize = task.description.parse().expect("index");
        let expected_attempts = if index % 10 == 7 { 2 } else { 1 };
        assert_eq!(task.attempts, expected_attempts, "attempts of task {index}");
    }
    assert!(
        store
            .claim(&request(&room, "late", &[], 60))
            .await
            .expect("claim")
            .is_none()
    );
    report
}

fn count_with(tasks: usize, remainder: usize) -> usize {
    (0..tasks).filter(|i| i % 10 == remainder).count()
}

// ---------------------------------------------------------------------------
// State machine: random operation sequences against a reference model.
// ---------------------------------------------------------------------------

/// Applies `cases` random operation sequences to `store` and to a simple
/// reference model of the contract, comparing every result and, after each
/// operation, every task. A divergence is shrunk to a minimal sequence and
/// reported.
pub async fn state_machine(store: &dyn TaskStore, clock: &ManualClock, cases: u32) {
    let strategy = proptest::collection::vec(op_strategy(), 1..40);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    for _ in 0..cases {
        let mut tree = strategy
            .new_tree(&mut runner)
            .expect("operation strategy never rejects");
        let Err(failure) = run_ops(store, clock, &tree.current()).await else {
            continue;
        };
        let mut smallest = (tree.current(), failure);
        let mut more = tree.simplify();
        let mut steps = 0;
        while more && steps < 1_000 {
            steps += 1;
            match run_ops(store, clock, &tree.current()).await {
                Err(failure) => {
                    smallest = (tree.current(), failure);
                    more = tree.simplify();
                }
                Ok(()) => more = tree.complicate(),
            }
        }
        let (ops, failure) = smallest;
        let mut listing = String::new();
        for (n, op) in ops.iter().enumerate() {
            let _ = writeln!(listing, "  {n}: {op:?}");
        }
        panic!(
            "TaskStore diverged from the reference model: {failure}\nminimal sequence:\n{listing}"
        );
    }
}

/// One operation of the state machine. Indexes pick among the tasks and
/// tokens seen so far (modulo their count; one past the end means "unknown").
#[derive(Debug, Clone)]
enum Op {
    Insert {
        room: usize,
        source: usize,
        delivery: usize,
        priority: u32,
        capabilities: Vec<&'static str>,
        ttl: Option<u64>,
    },
    Claim {
        room: usize,
        agent: usize,
        capabilities: Vec<&'static str>,
        lease: u64,
    },
    Heartbeat {
        task: usize,
        token: usize,
        lease: u64,
    },
    Complete {
        task: usize,
        token: usize,
    },
    Fail {
        task: usize,
        token: usize,
        retry_after: Option<u64>,
    },
    Release {
        task: usize,
        token: usize,
    },
    RequestInput {
        task: usize,
        token: usize,
    },
    ProvideInput {
        task: usize,
        value: u8,
    },
    TakeInput {
        task: usize,
        token: usize,
    },
    Advance {
        seconds: u64,
    },
    ExpirePending,
    List {
        room: Option<usize>,
        status: Option<JobStatus>,
        limit: usize,
    },
}

const ROOMS: usize = 2;
const CAPABILITIES: [&str; 2] = ["gpu", "net"];

fn op_strategy() -> impl Strategy<Value = Op> {
    let index = || 0..64_usize;
    let capabilities = || proptest::sample::subsequence(CAPABILITIES.to_vec(), 0..=2);
    let status = prop_oneof![
        Just(JobStatus::Pending),
        Just(JobStatus::Running),
        Just(JobStatus::NeedsInput),
        Just(JobStatus::Done),
        Just(JobStatus::Failed),
    ];
    prop_oneof![
        6 => (0..ROOMS, 0..2_usize, 0..8_usize, 1..4_u32, capabilities(), proptest::option::of(0..6_u64))
            .prop_map(|(room, source, delivery, priority, capabilities, ttl)| Op::Insert {
                room, source, delivery, priority, capabilities, ttl
            }),
        6 => (0..ROOMS, 0..2_usize, capabilities(), 1..6_u64)
            .prop_map(|(room, agent, capabilities, lease)| Op::Claim { room, agent, capabilities, lease }),
        2 => (index(), index(), 1..6_u64).prop_map(|(task, token, lease)| Op::Heartbeat { task, token, lease }),
        3 => (index(), index()).prop_map(|(task, token)| Op::Complete { task, token }),
        2 => (index(), index(), proptest::option::of(0..4_u64))
            .prop_map(|(task, token, retry_after)| Op::Fail { task, token, retry_after }),
        2 => (index(), index()).prop_map(|(task, token)| Op::Release { task, token }),
        2 => (index(), index()).prop_map(|(task, token)| Op::RequestInput { task, token }),
        2 => (index(), any::<u8>()).prop_map(|(task, value)| Op::ProvideInput { task, value }),
        2 => (index(), index()).prop_map(|(task, token)| Op::TakeInput { task, token }),
        3 => (0..5_u64).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::ExpirePending),
        1 => (proptest::option::of(0..ROOMS), proptest::option::of(status), 0..6_usize)
            .prop_map(|(room, status, limit)| Op::List { room, status, limit }),
    ]
}

/// An error reduced to what the contract fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrKind {
    NotFound,
    NotHeld,
    InvalidTransition {
        from: JobStatus,
        operation: &'static str,
    },
    Backend(String),
}

fn kind(error: &StoreError) -> ErrKind {
    match error {
        StoreError::NotFound { .. } => ErrKind::NotFound,
        StoreError::NotHeld { .. } => ErrKind::NotHeld,
        StoreError::InvalidTransition {
            from, operation, ..
        } => ErrKind::InvalidTransition {
            from: *from,
            operation: operation.as_str(),
        },
        // Includes `NotClaimable`, which `claim` never returns: it answers
        // `None` when nothing is claimable.
        _ => ErrKind::Backend(error.to_string()),
    }
}

/// The reference model: the contract written as plainly as possible.
#[derive(Debug, Default)]
struct Model {
    /// In insert order.
    tasks: Vec<Task>,
    /// The store's token of each task's last claim.
    last_token: Vec<Option<ClaimToken>>,
    /// Every token each task's claims got, to check fencing.
    tokens_of: Vec<Vec<ClaimToken>>,
    dedup: HashMap<(String, String), usize>,
}

type ModelResult<T> = Result<T, ErrKind>;

impl Model {
    fn insert(&mut self, new: NewTask, id: TaskId, now: OffsetDateTime) -> (usize, bool) {
        let key = (new.source.clone(), new.delivery_id.clone());
        if let Some(&index) = self.dedup.get(&key) {
            return (index, true);
        }
        let index = self.tasks.len();
        self.dedup.insert(key, index);
        self.tasks.push(Task {
            id,
            room: new.room,
            title: new.title,
            description: new.description,
            priority: new.priority,
            status: JobStatus::Pending,
            source: new.source,
            source_event: new.source_event,
            source_url: new.source_url,
            delivery_id: new.delivery_id,
            payload: new.payload,
            required_capabilities: new.required_capabilities,
            created_at: now,
            updated_at: now,
            expires_at: new.ttl.map(|ttl| now + ttl),
            not_before: None,
            claimed_by: None,
            lease_expires_at: None,
            attempts: 0,
            input_request: None,
            input: None,
            result: None,
            failure: None,
        });
        self.last_token.push(None);
        self.tokens_of.push(Vec::new());
        (index, false)
    }

    /// Claims the best claimable task; the caller records the token.
    fn claim(&mut self, request: &ClaimRequest, now: OffsetDateTime) -> Option<usize> {
        let index = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                let waiting = t.status == JobStatus::Pending
                    && t.not_before.is_none_or(|due| due <= now)
                    && t.expires_at.is_none_or(|end| end > now);
                let lapsed =
                    HELD.contains(&t.status) && t.lease_expires_at.is_some_and(|end| end <= now);
                t.room == request.room
                    && (waiting || lapsed)
                    && t.required_capabilities
                        .iter()
                        .all(|c| request.capabilities.contains(c))
            })
            .min_by_key(|(index, t)| (t.priority, t.created_at, *index))
            .map(|(index, _)| index)?;
        let task = &mut self.tasks[index];
        task.status = JobStatus::Running;
        task.claimed_by = Some(request.agent.clone());
        task.lease_expires_at = Some(now + request.lease);
        task.attempts += 1;
        task.updated_at = now;
        task.not_before = None;
        task.expires_at = None;
        task.input_request = None;
        task.input = None;
        Some(index)
    }

    /// The held task, or the error the contract names.
    fn held(
        &self,
        index: Option<usize>,
        token: &ClaimToken,
        now: OffsetDateTime,
        operation: &'static str,
        allowed: &[JobStatus],
    ) -> ModelResult<usize> {
        let index = index.ok_or(ErrKind::NotFound)?;
        let task = &self.tasks[index];
        let from = task.status;
        let last_claim = self.last_token[index].as_ref() == Some(token);
        if from.is_terminal() {
            return Err(if last_claim {
                ErrKind::InvalidTransition { from, operation }
            } else {
                ErrKind::NotHeld
            });
        }
        let lease_runs = task.lease_expires_at.is_some_and(|end| end > now);
        if !(last_claim && HELD.contains(&from) && lease_runs) {
            return Err(ErrKind::NotHeld);
        }
        if !allowed.contains(&from) {
            return Err(ErrKind::InvalidTransition { from, operation });
        }
        Ok(index)
    }
}

fn to_pending(task: &mut Task) {
    task.status = JobStatus::Pending;
    task.claimed_by = None;
    task.lease_expires_at = None;
    task.input_request = None;
    task.input = None;
}

const HELD: &[JobStatus] = &[JobStatus::Running, JobStatus::NeedsInput];

/// Runs one sequence on a fresh namespace of the store and on a fresh model.
async fn run_ops(store: &dyn TaskStore, clock: &ManualClock, ops: &[Op]) -> Result<(), String> {
    let ns = Namespace::new();
    let rooms: Vec<String> = (0..ROOMS).map(|r| ns.room(&format!("r{r}"))).collect();
    let sources = [ns.source("s0"), ns.source("s1")];
    let mut model = Model::default();
    let mut tokens: Vec<ClaimToken> = Vec::new();
    let unknown_id = TaskId::random();
    let bogus_token = ClaimToken::new("bogus");

    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        let pick_task = |n: usize| -> (Option<usize>, TaskId) {
            let len = model.tasks.len();
            let n = n % (len + 1);
            match model.tasks.get(n) {
                Some(task) => (Some(n), task.id.clone()),
                None => (None, unknown_id.clone()),
            }
        };
        let pick_token = |n: usize| -> ClaimToken {
            let n = n % (tokens.len() + 1);
            tokens.get(n).unwrap_or(&bogus_token).clone()
        };
        let fail = |what: String| Err(format!("step {step} ({op:?}): {what}"));
        match op {
            Op::Insert {
                room,
                source,
                delivery,
                priority,
                capabilities,
                ttl,
            } => {
                let mut new = new_task(
                    &rooms[*room % ROOMS],
                    &sources[*source % 2],
                    &format!("d{delivery}"),
                );
                new.priority = *priority;
                new.required_capabilities = capabilities.iter().map(|c| (*c).to_owned()).collect();
                new.ttl = ttl.map(Duration::from_secs);
                let got = match store.insert(new.clone()).await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("insert failed: {e}")),
                };
                let (index, duplicate) = model.insert(new, got.id.clone(), now);
                if got.duplicate != duplicate || got.id != model.tasks[index].id {
                    return fail(format!(
                        "insert gave {got:?}, model: task {index} duplicate {duplicate}"
                    ));
                }
            }
            Op::Claim {
                room,
                agent,
                capabilities,
                lease,
            } => {
                let request = ClaimRequest {
                    room: rooms[*room % ROOMS].clone(),
                    agent: format!("agent-{agent}"),
                    capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
                    lease: Duration::from_secs(*lease),
                };
                let got = match store.claim(&request).await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("claim failed: {e}")),
                };
                let expected = model.claim(&request, now);
                match (got, expected) {
                    (None, None) => {}
                    (Some(claimed), Some(index)) => {
                        if claimed.task != model.tasks[index] {
                            return fail(format!(
                                "claimed {:?}, model expected {:?}",
                                claimed.task, model.tasks[index]
                            ));
                        }
                        if model.tokens_of[index].contains(&claimed.token) {
                            return fail("a new claim of the task got an old token".into());
                        }
                        model.tokens_of[index].push(claimed.token.clone());
                        model.last_token[index] = Some(claimed.token.clone());
                        tokens.push(claimed.token);
                    }
                    (got, expected) => {
                        return fail(format!(
                            "claim gave {:?}, model expected task {:?}",
                            got.map(|c| c.task.id),
                            expected.map(|index| &model.tasks[index].id)
                        ));
                    }
                }
            }
            Op::Heartbeat { task, token, lease } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store
                    .heartbeat(&id, &token, Duration::from_secs(*lease))
                    .await;
                let expected = model.held(index, &token, now, "heartbeat", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    t.lease_expires_at = Some(now + Duration::from_secs(*lease));
                    t.updated_at = now;
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::Complete { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let result = json!({"step": step});
                let got = store.complete(&id, &token, Some(result.clone())).await;
                let expected = model
                    .held(index, &token, now, "complete", &[JobStatus::Running])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        t.status = JobStatus::Done;
                        t.result = Some(result);
                        t.lease_expires_at = None;
                        t.updated_at = now;
                        t.clone()
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::Fail {
                task,
                token,
                retry_after,
            } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let action = match retry_after {
                    Some(after) => FailAction::Retry {
                        after: Duration::from_secs(*after),
                    },
                    None => FailAction::Fail,
                };
                let reason = format!("reason {step}");
                let got = store.fail(&id, &token, &reason, action).await;
                let expected = model.held(index, &token, now, "fail", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    t.failure = Some(reason);
                    t.updated_at = now;
                    t.lease_expires_at = None;
                    match retry_after {
                        Some(after) => {
                            to_pending(t);
                            t.not_before = Some(now + Duration::from_secs(*after));
                        }
                        None => t.status = JobStatus::Failed,
                    }
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::Release { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store.release(&id, &token).await;
                let expected = model.held(index, &token, now, "release", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    to_pending(t);
                    t.attempts -= 1;
                    t.updated_at = now;
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::RequestInput { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let prompt = format!("question {step}");
                let got = store.request_input(&id, &token, &prompt).await;
                let expected = model
                    .held(index, &token, now, "request_input", &[JobStatus::Running])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        t.status = JobStatus::NeedsInput;
                        t.input_request = Some(prompt);
                        t.input = None;
                        t.updated_at = now;
                        t.clone()
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::ProvideInput { task, value } => {
                let (index, id) = pick_task(*task);
                let got = store.provide_input(&id, json!(value)).await;
                let expected = match index {
                    None => Err(ErrKind::NotFound),
                    Some(i) if model.tasks[i].status != JobStatus::NeedsInput => {
                        Err(ErrKind::InvalidTransition {
                            from: model.tasks[i].status,
                            operation: "provide_input",
                        })
                    }
                    Some(i) => {
                        let t = &mut model.tasks[i];
                        t.input = Some(json!(value));
                        t.updated_at = now;
                        Ok(t.clone())
                    }
                };
                compare(got, expected).or_else(fail)?;
            }
            Op::TakeInput { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store.take_input(&id, &token).await;
                let expected = model
                    .held(index, &token, now, "take_input", &[JobStatus::NeedsInput])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        let input = t.input.take();
                        if input.is_some() {
                            t.status = JobStatus::Running;
                            t.input_request = None;
                            t.updated_at = now;
                        }
                        input
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::Advance { seconds } => clock.advance(Duration::from_secs(*seconds)),
            Op::ExpirePending => {
                let mut got = match store.expire_pending().await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("expire_pending failed: {e}")),
                };
                got.retain(|t| rooms.contains(&t.room));
                got.sort_by(|a, b| a.id.cmp(&b.id));
                let mut expected = Vec::new();
                for t in &mut model.tasks {
                    if t.status == JobStatus::Pending && t.expires_at.is_some_and(|end| end <= now)
                    {
                        t.status = JobStatus::Failed;
                        t.failure = Some("expired".into());
                        t.updated_at = now;
                        expected.push(t.clone());
                    }
                }
                expected.sort_by(|a, b| a.id.cmp(&b.id));
                if got != expected {
                    return fail(format!("expired {got:?}, model expected {expected:?}"));
                }
            }
            Op::List {
                room,
                status,
                limit,
            } => {
                // Without a room, scope the query by source (this run's own).
                let query = TaskQuery {
                    room: room.map(|r| rooms[r % ROOMS].clone()),
                    status: *status,
                    source: if room.is_none() {
                        Some(sources[0].clone())
                    } else {
                        None
                    },
                    limit: Some(*limit),
                };
                let got: Vec<TaskId> = match store.list(&query).await {
                    Ok(tasks) => tasks.into_iter().map(|t| t.id).collect(),
                    Err(e) => return fail(format!("list failed: {e}")),
                };
                let mut expected: Vec<(usize, &Task)> = model
                    .tasks
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        query.room.as_ref().is_none_or(|r| *r == t.room)
                            && query.status.is_none_or(|s| s == t.status)
                            && query.source.as_ref().is_none_or(|s| *s == t.source)
                    })
                    .collect();
                expected.sort_by_key(|(index, t)| std::cmp::Reverse((t.created_at, *index)));
                let expected: Vec<TaskId> = expected
                    .into_iter()
                    .take(*limit)
                    .map(|(_, t)| t.id.clone())
                    .collect();
                if got != expected {
                    return fail(format!("list gave {got:?}, model expected {expected:?}"));
                }
            }
        }

        // Every task, as `get` sees it now, must equal the model's.
        for expected in &model.tasks {
            match store.get(&expected.id).await {
                Ok(Some(got)) if got == *expected => {}
                Ok(got) => {
                    return fail(format!(
                        "after the step, task is {got:?}, model expected {expected:?}"
                    ));
                }
                Err(e) => return fail(format!("get failed: {e}")),
            }
        }
    }
    Ok(())
}

fn compare<T: PartialEq + std::fmt::Debug>(
    got: Result<T, StoreError>,
    expected: ModelResult<T>,
) -> Result<(), String> {
    let got = got.map_err(|e| kind(&e));
    if got == expected {
        Ok(())
    } else {
        Err(format!("store gave {got:?}, model expected {expected:?}"))
    }
}

// ---------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------

/// Random names so checks never see each other's tasks.
#[derive(Debug)]
struct Namespace(String);

impl Namespace {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self(id.get(..12).unwrap_or(&id).to_owned())
    }

    fn room(&self, name: &str) -> String {
        format!("{name}-{}", self.0)
    }

    fn source(&self, name: &str) -> String {
        format!("{name}-{}", self.0)
    }
}

fn new_task(room: &str, source: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.to_owned(),
        title: format!("[PR] opened #{delivery}"),
        description: "conformance task".to_owned(),
        priority: 2,
        source: source.to_owned(),
        source_event: "pull_request.opened".to_owned(),
        source_url: Some(format!("https://example.com/pr/{delivery}")),
        delivery_id: delivery.to_owned(),
        payload: format!(r#"{{"delivery":"{delivery}","n":[1,2,3]}}"#)
            .into_bytes()
            .into(),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

fn with_priority(mut task: NewTask, priority: u32) -> NewTask {
    task.priority = priority;
    task
}

fn request(room: &str, agent: &str, capabilities: &[&str], lease_seconds: u64) -> ClaimRequest {
    ClaimRequest {
        room: room.to_owned(),
        agent: agent.to_owned(),
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        lease: Duration::from_secs(lease_seconds),
    }
}

async fn insert(store: &dyn TaskStore, task: NewTask) -> crate::task::Inserted {
    store.insert(task).await.expect("insert")
}

async fn get(store: &dyn TaskStore, id: &TaskId) -> Task {
    store
        .get(id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("task {id} exists"))
}

async fn claim(
    store: &dyn TaskStore,
    room: &str,
    agent: &str,
    capabilities: &[&str],
    lease_seconds: u64,
) -> Claimed {
    store
        .claim(&request(room, agent, capabilities, lease_seconds))
        .await
        .expect("claim")
        .unwrap_or_else(|| panic!("a claimable task in {room}"))
}

async fn list(
    store: &dyn TaskStore,
    room: Option<&str>,
    status: Option<JobStatus>,
    source: Option<&str>,
    limit: Option<usize>,
) -> Vec<TaskId> {
    store
        .list(&TaskQuery {
            room: room.map(str::to_owned),
            status,
            source: source.map(str::to_owned),
            limit,
        })
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

async fn expired_in(store: &dyn TaskStore, room: &str) -> Vec<Task> {
    let mut expired = store.expire_pending().await.expect("expire_pending");
    expired.retain(|t| t.room == room);
    expired
}

fn err<T: std::fmt::Debug>(result: Result<T, StoreError>) -> ErrKind {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => kind(&e),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
