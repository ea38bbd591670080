//! What happens to a webhook before it is a task: signature checks (provider
//! vectors, malformed and hostile input, properties, the fuzz seeds), the
//! providers' payload parsers, and the routes file and router.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod errors;
mod fuzz_seeds;
mod hardening;
mod malformed;
mod properties;
mod route_config;
mod source_fixtures;
mod vectors;
