//! Conformance checks for [`TaskStore`] backends.
//!
//! Each `pub async fn` checks one behaviour area and panics (like `assert!`)
//! when the backend breaks the contract. [`checks`] lists them by name, in
//! the order [`run`] runs them; [`run`] goes through the list, catches each
//! failure, and returns a [`Report`] naming every check with its outcome.
//! [`Settings`] sizes the two long checks ([`claim_race`] and
//! [`state_machine`]). A backend's tests run the list once per way the
//! backend can be built:
//!
//! ```
//! use std::sync::Arc;
//! use hookroom::clock::ManualClock;
//! use hookroom::conformance::task_store::{self, Settings};
//! use hookroom::task::{InMemoryTaskStore, TaskStore};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let clock = ManualClock::at_unix(1_700_000_000);
//! let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::with_clock(Arc::new(clock.clone())));
//! // 2 agents racing over 200 tasks, 32 state machine cases: a quick run.
//! let settings = Settings::default().claim_race(2, 200).state_machine_cases(32);
//! let report = task_store::run(store, &clock, &settings).await;
//! println!("{report}");
//! assert_eq!(report.failed(), 0);
//! assert_eq!(report.passed(), task_store::checks().len());
//! # }
//! ```
//!
//! One check alone is a call of its function (it panics on failure), or
//! [`run_checks`] over a part of the list:
//!
//! ```
//! # use std::sync::Arc;
//! # use hookroom::clock::ManualClock;
//! # use hookroom::conformance::task_store::{self, Settings};
//! # use hookroom::task::{InMemoryTaskStore, TaskStore};
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! # let clock = ManualClock::at_unix(1_700_000_000);
//! # let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::with_clock(Arc::new(clock.clone())));
//! task_store::claim_order(&*store, &clock).await;
//! let claims = task_store::checks().iter().filter(|c| c.name.starts_with("claim_"));
//! let report = task_store::run_checks(claims, store, &clock, &Settings::default().claim_race(2, 100)).await;
//! report.assert_all_passed();
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
//! # The rules checked
//! The transition rules (error order, time boundaries, fields each operation
//! sets and clears) are the [state machine's](crate::task::state): a store
//! that runs every operation through [`StoredTask`](crate::task::StoredTask)
//! gets them right by construction, and these checks confirm it did (the
//! [`state_machine`] check compares the store with a reference model of its
//! own, written independently of that module). Beyond them, the checks hold
//! each store to what only the store decides:
//! - claim order: lowest `priority`, then oldest `created_at`, then the
//!   earlier insert; a claim skips tasks it may not take (see
//!   [`StoredTask::claim_refusal`](crate::task::StoredTask::claim_refusal));
//! - `list`: newest `created_at` first, the later insert first on ties;
//! - `insert` is idempotent on `(source, delivery_id)`;
//! - `expire_pending` fails every `PENDING` task with `expires_at <= now`;
//! - claims are exclusive under concurrency ([`claim_race`]);
//! - tokens need only differ among the claims of one task.
//!
//! # Layout
//! `checks.rs` holds one check per behaviour area, `race.rs` the concurrency
//! check, `model.rs` the state machine check and its reference model; this
//! file the list of checks and the runner.

mod checks;
mod fixtures;
mod model;
mod race;
#[cfg(all(test, feature = "memory"))]
mod tests;

use std::sync::Arc;

use proptest::test_runner::Config;

use super::report::{Check as NamedCheck, CheckFuture, Report};
use crate::clock::ManualClock;
use crate::task::TaskStore;

pub use checks::*;
pub use model::state_machine;
pub use race::{RaceReport, claim_race};

/// The function of one task store check: runs it against the store (built
/// on the clock), sized by the settings, and panics on the first broken
/// rule.
pub type CheckFn =
    for<'a> fn(&'a Arc<dyn TaskStore>, &'a ManualClock, &'a Settings) -> CheckFuture<'a>;

/// One task store check: its name and its function.
pub type Check = NamedCheck<CheckFn>;

/// How large the two long checks are.
///
/// The default is what [`run_all`] uses: [`claim_race`] with 8 agents over
/// 10,000 tasks, and proptest's default number of [`state_machine`] cases
/// (256, or `PROPTEST_CASES`). On a store that syncs every write to disk the
/// race dominates the run; a smaller race still proves exclusive claims, only
/// with fewer chances to catch a rare interleaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    race_agents: usize,
    race_tasks: usize,
    state_machine_cases: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            race_agents: 8,
            race_tasks: 10_000,
            state_machine_cases: Config::default().cases,
        }
    }
}

impl Settings {
    /// [`claim_race`] runs `agents` agents (at least 1) claiming from one
    /// room of `tasks` tasks.
    #[must_use]
    pub fn claim_race(mut self, agents: usize, tasks: usize) -> Self {
        self.race_agents = agents;
        self.race_tasks = tasks;
        self
    }

    /// [`state_machine`] tries `cases` random operation sequences.
    #[must_use]
    pub fn state_machine_cases(mut self, cases: u32) -> Self {
        self.state_machine_cases = cases;
        self
    }

    /// The agents and tasks of [`claim_race`].
    pub fn race_size(&self) -> (usize, usize) {
        (self.race_agents, self.race_tasks)
    }

    /// The number of [`state_machine`] cases.
    pub fn cases(&self) -> u32 {
        self.state_machine_cases
    }
}

/// A check that takes the store and the clock and nothing else.
macro_rules! plain {
    ($name:ident) => {
        Check {
            name: stringify!($name),
            run: |store, clock, _| Box::pin($name(&**store, clock)),
        }
    };
}

const CHECKS: &[Check] = &[
    plain!(insert_idempotent),
    plain!(get_and_list),
    plain!(claim_order),
    plain!(claim_capabilities),
    plain!(claim_exclusive_and_fenced),
    plain!(claim_by_id),
    plain!(heartbeat_extends_lease),
    plain!(complete_fail_release),
    plain!(illegal_transitions),
    plain!(retry_not_before),
    plain!(needs_input_round_trip),
    plain!(lease_expiry),
    plain!(ttl_expiry),
    plain!(watch_notifies),
    Check {
        name: "state_machine",
        run: |store, clock, settings| {
            Box::pin(state_machine(&**store, clock, settings.state_machine_cases))
        },
    },
    Check {
        name: "claim_race",
        run: |store, _, settings| {
            Box::pin(async move {
                claim_race(Arc::clone(store), settings.race_agents, settings.race_tasks).await;
            })
        },
    },
];

/// Every check, in the order [`run`] runs them: the quick ones first, then
/// [`state_machine`], then [`claim_race`].
pub fn checks() -> &'static [Check] {
    CHECKS
}

/// Runs every check against `store`, which must be built on `clock`, one
/// after the other; a failed check is reported and the next one runs.
///
/// [`claim_race`] spawns tokio tasks, so call this from a multi-thread
/// runtime (`#[tokio::test(flavor = "multi_thread")]`).
pub async fn run(store: Arc<dyn TaskStore>, clock: &ManualClock, settings: &Settings) -> Report {
    run_checks(checks(), store, clock, settings).await
}

/// Runs the given checks (a part of [`checks`], or checks of the caller's
/// own) in order, as [`run`] does.
pub async fn run_checks<'c>(
    checks: impl IntoIterator<Item = &'c Check>,
    store: Arc<dyn TaskStore>,
    clock: &ManualClock,
    settings: &Settings,
) -> Report {
    let mut report = Report::new("task_store");
    for check in checks {
        report
            .run(check.name, (check.run)(&store, clock, settings))
            .await;
    }
    report
}

/// Runs every check with the default [`Settings`] and panics with the
/// [`Report`] (each check by name, the failed ones with their messages)
/// when any failed.
///
/// # Panics
/// When a check failed.
pub async fn run_all(store: Arc<dyn TaskStore>, clock: &ManualClock) {
    run(store, clock, &Settings::default())
        .await
        .assert_all_passed();
}
