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
//! | `hookroom_tasks` | gauge | `room`, `status` | tasks per room and status, as of the last [`record_task_gauges`] |
//! | `hookroom_oldest_pending_task_age_seconds` | gauge | `room` | age of the room's oldest `PENDING` task (0 when none) |
//! | `hookroom_status_pushes_total` | counter | `outcome` | job changes an `HttpStatusSink` pushed: `delivered`, or the final error code (`E_TIMEOUT`, `E_NETWORK_ERROR`, …) |
//! | `hookroom_status_push_retries_total` | counter | `reason` | retried attempts of HTTP pushes (status and alert webhooks): `server_error`, `request_timeout`, `rate_limited`, `timeout`, `network_error` |
//! | `hookroom_status_outbox_depth` | gauge | | job changes waiting in the process's [`OutboxStatusSink`](crate::status::OutboxStatusSink)s |
//! | `hookroom_status_outbox_dropped_total` | counter | `reason` | changes an outbox dropped: `full` (refused at the door) or `refused` (the backend refused them for good) |
//! | `hookroom_alert_deliveries_total` | counter | `outcome` | alerts the signed alert webhook sent: `delivered`, `failed`, or `dropped` (its queue was full) |
//!
//! Room labels are the rooms tasks were routed to: names from the routes
//! configuration (or the store's own API), never from a webhook's sender.

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

/// Tasks per room and status (gauge).
pub const TASKS: &str = "hookroom_tasks";
/// Age of each room's oldest pending task (gauge).
pub const OLDEST_PENDING_AGE: &str = "hookroom_oldest_pending_task_age_seconds";

/// Job changes pushed by `HttpStatusSink`, by outcome.
pub const STATUS_PUSHES: &str = "hookroom_status_pushes_total";
/// Retried attempts of HTTP pushes, by reason.
pub const STATUS_PUSH_RETRIES: &str = "hookroom_status_push_retries_total";
/// Job changes waiting in outboxes (gauge).
pub const OUTBOX_DEPTH: &str = "hookroom_status_outbox_depth";
/// Changes outboxes dropped, by reason.
pub const OUTBOX_DROPPED: &str = "hookroom_status_outbox_dropped_total";
/// Alerts sent by the signed alert webhook, by outcome.
pub const ALERT_DELIVERIES: &str = "hookroom_alert_deliveries_total";

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
    ::metrics::describe_gauge!(TASKS, "Tasks per room and status.");
    ::metrics::describe_gauge!(
        OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of each room's oldest PENDING task."
    );
    describe_counter!(
        STATUS_PUSHES,
        "Job changes pushed to a Jobs API, by outcome (delivered or the final error code)."
    );
    describe_counter!(
        STATUS_PUSH_RETRIES,
        "Retried attempts of HTTP pushes (job status and alert webhooks), by reason."
    );
    ::metrics::describe_gauge!(OUTBOX_DEPTH, "Job changes waiting in outboxes.");
    describe_counter!(
        OUTBOX_DROPPED,
        "Job changes outboxes dropped: full, or refused for good by the backend."
    );
    describe_counter!(
        ALERT_DELIVERIES,
        "Alerts sent by the signed alert webhook, by outcome."
    );
}

/// Reads every task of `store` (page by page, so any store works) and sets
/// the [`TASKS`] and [`OLDEST_PENDING_AGE`] gauges. A whole-store scan: call
/// it on a timer (the gateway does every 15 s), not per request.
///
/// # Errors
/// The store's, when a page cannot be read; the gauges keep their values.
pub async fn record_task_gauges(
    store: &dyn crate::task::TaskStore,
    now: time::OffsetDateTime,
) -> Result<(), crate::task::StoreError> {
    use std::collections::BTreeMap;

    use crate::lifecycle::JobStatus;
    use crate::task::TaskQuery;

    const PAGE: usize = 500;
    const STATUSES: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::NeedsInput,
        JobStatus::Failed,
        JobStatus::Done,
    ];
    let mut rooms: BTreeMap<String, ([u64; 5], Option<time::OffsetDateTime>)> = BTreeMap::new();
    let mut before = None;
    loop {
        let page = store
            .list(&TaskQuery {
                limit: Some(PAGE),
                before: before.take(),
                ..TaskQuery::default()
            })
            .await?;
        for task in &page {
            let (counts, oldest) = rooms.entry(task.room.clone()).or_default();
            if let Some(slot) = STATUSES.iter().position(|s| *s == task.status) {
                counts[slot] += 1;
            }
            if task.status == JobStatus::Pending && oldest.is_none_or(|o| task.created_at < o) {
                *oldest = Some(task.created_at);
            }
        }
        if page.len() < PAGE {
            break;
        }
        before = page.last().map(|task| task.id.clone());
    }
    for (room, (counts, oldest)) in rooms {
        for (status, count) in STATUSES.iter().zip(counts) {
            ::metrics::gauge!(TASKS, "room" => room.clone(), "status" => status.as_str())
                .set(count as f64);
        }
        let age = oldest.map_or(0.0, |o| (now - o).as_seconds_f64().max(0.0));
        ::metrics::gauge!(OLDEST_PENDING_AGE, "room" => room).set(age);
    }
    Ok(())
}
