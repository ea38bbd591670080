//! Conformance suites: one set of behaviour checks that every backend of a
//! trait must pass, written once and called from each backend's tests (and
//! from third-party backends' tests through the `integration` feature).
//!
//! Each suite lists its checks by name (`checks()`) and runs them one by one
//! (`run`), catching a failed assertion so that the next check still runs;
//! the [`Report`] says, check by check, what passed and what failed with
//! which message. `run_all` runs the whole list and panics with that report
//! when a check failed, for a backend's test that only needs a yes or no.
//!
//! Not semver-stable: new checks are added in minor releases.

pub mod job_registry;
mod report;
pub mod status_sink;
pub mod task_store;

pub use report::{Check, CheckFuture, Failure, Outcome, Report};
