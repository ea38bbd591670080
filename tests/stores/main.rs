//! The stores: every `TaskStore` and `JobRegistry` backend against its
//! conformance suite, and what only one backend can show (SQLite files,
//! PostgreSQL notifications, pipelining, TLS and clocks, racing HTTP clients),
//! plus the public task state machine a custom store builds on.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod job_registry;
mod postgres_batch;
mod postgres_clock;
mod postgres_notify;
mod postgres_pipeline;
mod postgres_tls;
mod retention;
mod retention_jobs;
mod status_memory;
mod status_postgres;
mod task_http_race;
mod task_state;
mod task_store_http;
mod task_store_postgres;
mod task_store_sqlite;
