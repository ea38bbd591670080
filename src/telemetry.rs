//! The metrics this crate records, through the [`metrics`] facade.
//!
//! Nothing is exported until the application installs a recorder of its
//! choice (for Prometheus, `metrics-exporter-prometheus`; the gateway
//! example serves its text at `/metrics`). Without a recorder, recording is
//! a no-op.
//!
//! Names and labels follow Prometheus conventions: counters end in
//! `_total`, durations are `_seconds` histograms, and every label has a
//! bounded set of values that never comes from a sender: a source label is
//! one of the service's configured source names, or `unknown`.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `hookroom_webhook_deliveries_total` | counter | `source`, `outcome` | deliveries by outcome: `accepted`, `duplicate`, `ignored`, `challenge`, `refused` |
//! | `hookroom_webhook_verification_failures_total` | counter | `source`, `reason` | signature checks that failed, by error code |
//! | `hookroom_http_request_duration_seconds` | histogram | `endpoint` | time to answer a request, by endpoint (`webhook`, …) |
//! | `hookroom_store_operation_duration_seconds` | histogram | `operation` | task store calls through [`MeteredTaskStore`](crate::task::MeteredTaskStore) |
//! | `hookroom_store_operation_errors_total` | counter | `operation`, `code` | task store calls that failed, by error code |
//! | `hookroom_task_claim_latency_seconds` | histogram | | from a task's creation to its claim |
//! | `hookroom_job_duration_seconds` | histogram | `status` | from a task's creation to `DONE` or `FAILED` |
//! | `hookroom_tasks_finished_total` | counter | `status` | tasks that ended `DONE` or `FAILED` |

/// Deliveries by source and outcome.
pub const WEBHOOK_DELIVERIES: &str = "hookroom_webhook_deliveries_total";
/// Failed signature checks by source and reason.
pub const VERIFICATION_FAILURES: &str = "hookroom_webhook_verification_failures_total";
/// Request duration by endpoint.
pub const REQUEST_DURATION: &str = "hookroom_http_request_duration_seconds";
/// Task store call duration by operation.
pub const STORE_OPERATION_DURATION: &str = "hookroom_store_operation_duration_seconds";
/// Failed task store calls by operation and error code.
pub const STORE_OPERATION_ERRORS: &str = "hookroom_store_operation_errors_total";
/// Creation to claim.
pub const CLAIM_LATENCY: &str = "hookroom_task_claim_latency_seconds";
/// Creation to `DONE` or `FAILED`, by final status.
pub const JOB_DURATION: &str = "hookroom_job_duration_seconds";
/// Tasks that ended, by final status.
pub const TASKS_FINISHED: &str = "hookroom_tasks_finished_total";

/// The label value for a source name no route or service configured.
pub const UNKNOWN_SOURCE: &str = "unknown";

/// Describes every metric to the installed recorder (units and help text),
/// so exporters can print them. Call once after installing a recorder.
pub fn describe() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook deliveries by source and outcome."
    );
    describe_counter!(
        VERIFICATION_FAILURES,
        "Webhook signature checks that failed, by source and reason."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by endpoint."
    );
    describe_histogram!(
        STORE_OPERATION_DURATION,
        Unit::Seconds,
        "Task store call duration, by operation."
    );
    describe_counter!(
        STORE_OPERATION_ERRORS,
        "Task store calls that failed, by operation and error code."
    );
    describe_histogram!(
        CLAIM_LATENCY,
        Unit::Seconds,
        "Time from a task's creation to its claim."
    );
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Time from a task's creation to DONE or FAILED, by final status."
    );
    describe_counter!(TASKS_FINISHED, "Tasks that ended, by final status.");
}
