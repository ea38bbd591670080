//! Conformance suites: one set of behaviour checks that every backend of a
//! trait must pass, written once and called from each backend's tests (and
//! from third-party backends' tests through the `integration` feature).
//!
//! Not semver-stable: new checks are added in minor releases.

pub mod job_registry;
pub mod status_sink;
pub mod task_store;
