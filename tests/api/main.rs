//! The tower services as a client sees them: ingest, the Task, Jobs and Routes
//! APIs, the status sinks that feed the Jobs API, alerts and metrics.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod alert_webhook;
mod alerts;
mod authz_matrix;
mod http_ingest;
mod jobs_api;
mod recorded_metrics;
mod routes_api;
mod routes_api_explain;
mod status_http;
mod status_metrics;
mod status_outbox;
mod task_api;
