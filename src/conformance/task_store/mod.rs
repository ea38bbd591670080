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
//! check, `model.rs` the state machine check and its reference model.

mod checks;
mod fixtures;
mod model;
mod race;

use std::sync::Arc;

use proptest::test_runner::Config;

use crate::clock::ManualClock;
use crate::task::TaskStore;

pub use checks::*;
pub use model::state_machine;
pub use race::{RaceReport, claim_race};

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
    claim_by_id(&*store, clock).await;
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
