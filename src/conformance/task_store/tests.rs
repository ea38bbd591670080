//! The runner itself: every check reported by name, a failure with the
//! check's own message, the race sized by the caller.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Settings, checks, run, run_checks};
use crate::clock::ManualClock;
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, InMemoryTaskStore, Inserted, NewTask,
    StoreError, Task, TaskId, TaskQuery, TaskStore,
};

/// How [`Faulty`] breaks the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// None: a plain in-memory store that counts its inserts.
    None,
    /// `insert` never reports a duplicate.
    ForgetsDuplicates,
    /// `claim` never finds a task.
    ClaimsNothing,
}

/// An in-memory store with one fault, counting the inserts it is asked for.
#[derive(Debug)]
struct Faulty {
    inner: InMemoryTaskStore,
    fault: Fault,
    inserts: AtomicUsize,
}

fn faulty(fault: Fault) -> (Arc<Faulty>, ManualClock) {
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = Faulty {
        inner: InMemoryTaskStore::with_clock(Arc::new(clock.clone())),
        fault,
        inserts: AtomicUsize::new(0),
    };
    (Arc::new(store), clock)
}

#[async_trait]
impl TaskStore for Faulty {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.inserts.fetch_add(1, Ordering::Relaxed);
        let mut inserted = self.inner.insert(task).await?;
        if self.fault == Fault::ForgetsDuplicates {
            inserted.duplicate = false;
        }
        Ok(inserted)
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.inner.get(id).await
    }
    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.inner.list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        if self.fault == Fault::ClaimsNothing {
            return Ok(None);
        }
        self.inner.claim(request).await
    }
    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        self.inner.claim_task(id, request).await
    }
    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        self.inner.heartbeat(id, token, lease).await
    }
    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        self.inner.complete(id, token, result).await
    }
    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        self.inner.fail(id, token, reason, action).await
    }
    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        self.inner.release(id, token).await
    }
    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        self.inner.request_input(id, token, prompt).await
    }
    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        self.inner.provide_input(id, input).await
    }
    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.take_input(id, token).await
    }
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        self.inner.expire_pending().await
    }
    fn watch(&self, room: &str) -> Option<tokio::sync::broadcast::Receiver<TaskId>> {
        self.inner.watch(room)
    }
}

fn quick() -> Settings {
    Settings::default().claim_race(2, 30).state_machine_cases(8)
}

#[test]
fn checks_have_distinct_names_and_the_long_ones_run_last() {
    let names: Vec<&str> = checks().iter().map(|c| c.name).collect();
    let distinct: HashSet<&str> = names.iter().copied().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    assert_eq!(names.len(), 16);
    assert_eq!(names[..2], ["insert_idempotent", "get_and_list"]);
    assert_eq!(names[14..], ["state_machine", "claim_race"]);
}

#[test]
fn default_settings_are_the_full_race() {
    let settings = Settings::default();
    assert_eq!(settings.race_size(), (8, 10_000));
    assert_eq!(
        settings.claim_race(2, 50).state_machine_cases(3),
        Settings {
            race_agents: 2,
            race_tasks: 50,
            state_machine_cases: 3,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_store_passes_every_check_by_name() {
    let (store, clock) = faulty(Fault::None);
    let report = run(store, &clock, &quick()).await;
    assert_eq!(report.suite(), "task_store");
    assert_eq!(report.passed(), checks().len(), "{report}");
    assert_eq!(report.failed(), 0);
    assert!(report.all_passed());
    let ran: Vec<&str> = report.outcomes().iter().map(|o| o.check).collect();
    let listed: Vec<&str> = checks().iter().map(|c| c.name).collect();
    assert_eq!(ran, listed);
    assert!(
        report.to_string().starts_with(
            "task_store conformance: 16 passed, 0 failed\n  ok    insert_idempotent ("
        )
    );
}

/// The failure names the check and carries its assertion's message; the
/// checks after it still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_forgets_duplicates_fails_by_check() {
    let (store, clock) = faulty(Fault::ForgetsDuplicates);
    let report = run(store, &clock, &quick()).await;
    assert_eq!(report.outcomes().len(), checks().len());
    assert_eq!(report.passed() + report.failed(), checks().len());

    let failed = report.outcome("insert_idempotent").expect("ran");
    let message = &failed.result.as_ref().expect_err("fails").message;
    assert_eq!(message, "same (source, delivery_id) is a duplicate");
    let race = report.outcome("claim_race").expect("ran");
    assert!(
        race.result.as_ref().is_err_and(|f| f
            .message
            .contains("exactly one insert per delivery is fresh")),
        "{report}"
    );
    for unaffected in ["claim_order", "claim_capabilities", "lease_expiry"] {
        assert!(
            report.outcome(unaffected).is_some_and(|o| o.passed()),
            "{unaffected}: {report}"
        );
    }
    let failures: Vec<&str> = report.failures().map(|o| o.check).collect();
    assert!(failures.contains(&"insert_idempotent"));
    assert!(!report.all_passed());
    let text = report.to_string();
    assert!(
        text.contains("\n  FAIL  insert_idempotent: same (source, delivery_id) is a duplicate"),
        "{text}"
    );
}

/// A store that never hands out a task fails both claim checks, each by its
/// own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_claims_nothing_fails_each_claim_check() {
    let (store, clock) = faulty(Fault::ClaimsNothing);
    let claims = checks()
        .iter()
        .filter(|c| ["claim_order", "claim_exclusive_and_fenced"].contains(&c.name));
    let report = run_checks(claims, store, &clock, &quick()).await;
    assert_eq!(report.failed(), 2, "{report}");
    // The order check sees an empty sequence of claims where it expected six.
    let order = report.outcome("claim_order").expect("ran");
    assert!(
        order
            .result
            .as_ref()
            .is_err_and(|f| f.message.contains("left: []")),
        "{report}"
    );
    let fenced = report.outcome("claim_exclusive_and_fenced").expect("ran");
    assert!(
        fenced
            .result
            .as_ref()
            .is_err_and(|f| f.message.starts_with("a claimable task in fenced-")),
        "{report}"
    );
}

/// The race inserts every delivery twice: its size shows in the inserts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_sizes_the_claim_race() {
    let (store, clock) = faulty(Fault::None);
    let race = checks().iter().filter(|c| c.name == "claim_race");
    let dynamic: Arc<dyn TaskStore> = store.clone();
    let settings = Settings::default().claim_race(3, 40);
    let report = run_checks(race, dynamic, &clock, &settings).await;
    assert_eq!(report.passed(), 1, "{report}");
    assert_eq!(report.outcomes().len(), 1);
    assert_eq!(store.inserts.load(Ordering::Relaxed), 2 * 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(
    expected = "task_store conformance: 0 passed, 1 failed\n  FAIL  insert_idempotent: same (source, delivery_id) is a duplicate"
)]
async fn asserting_a_failed_report_panics_with_it() {
    let (store, clock) = faulty(Fault::ForgetsDuplicates);
    let first = checks().iter().take(1);
    run_checks(first, store, &clock, &quick())
        .await
        .assert_all_passed();
}
