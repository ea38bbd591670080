//! Agents at work: the worker runtime (claim, lease, heartbeat), `HttpAgent`,
//! and the HTTP clients over TLS.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod agent_http;
mod agent_runtime;
mod http_client_tls;
