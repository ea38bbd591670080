//! Conformance checks for [`StatusSink`] backends.
//!
//! A sink is write-only, so every check takes the sink and a [`JobReader`]
//! that reads back what it stored: [`InMemoryStatusSink`](crate::status::InMemoryStatusSink) reads its own
//! registry; an HTTP sink tested against a Jobs API server reads through
//! `GET /api/jobs/{id}?include_history=true`. Each check uses fresh random job
//! ids, so checks can share one backend and run in any order.
//!
//! [`checks`] lists the checks by name; [`run`] runs them all and reports
//! each; [`run_all`] panics with that report when one failed.
//!
//! The checks assert on error variants and on the order of history entries,
//! never on exact timestamps (a server stamps its own).
//!
//! ```
//! use std::sync::Arc;
//! use hookroom::status::InMemoryStatusSink;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let sink = InMemoryStatusSink::new();
//! hookroom::conformance::status_sink::run_all(Arc::new(sink.clone()), &sink).await;
//! # }
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::report::{Check as NamedCheck, CheckFuture, Report};
use crate::api::jobs::JobView;
use crate::status::{Artifact, JobEvent, JobStatus, Progress, SinkError, StatusSink};

/// Reads back what a sink stored.
#[async_trait]
pub trait JobReader: Send + Sync {
    /// The job with its full history (oldest first), or `None` when the
    /// backend has no such job.
    async fn read_job(&self, job_id: &str) -> Option<JobView>;
}

#[cfg(feature = "memory")]
#[async_trait]
impl JobReader for crate::status::InMemoryStatusSink {
    async fn read_job(&self, job_id: &str) -> Option<JobView> {
        self.get(job_id, true)
    }
}

/// The function of one sink check: runs it against the sink, reading back
/// through the reader, and panics on the first broken rule.
pub type CheckFn = for<'a> fn(&'a Arc<dyn StatusSink>, &'a dyn JobReader) -> CheckFuture<'a>;

/// One sink check: its name and its function.
pub type Check = NamedCheck<CheckFn>;

/// A check that takes the sink by reference.
macro_rules! plain {
    ($name:ident) => {
        Check {
            name: stringify!($name),
            run: |sink, reader| Box::pin($name(sink.as_ref(), reader)),
        }
    };
}

const CHECKS: &[Check] = &[
    plain!(lifecycle),
    plain!(history_order),
    plain!(unknown_job),
    plain!(created_once),
    plain!(terminal_is_final),
    Check {
        name: "concurrent_updates",
        run: |sink, reader| Box::pin(concurrent_updates(Arc::clone(sink), reader)),
    },
];

/// Every check, in the order [`run`] runs them.
pub fn checks() -> &'static [Check] {
    CHECKS
}

/// Runs every check against one backend, one after the other; a failed
/// check is reported and the next one runs.
pub async fn run(sink: Arc<dyn StatusSink>, reader: &dyn JobReader) -> Report {
    let mut report = Report::new("status_sink");
    for check in checks() {
        report.run(check.name, (check.run)(&sink, reader)).await;
    }
    report
}

/// Runs every check and panics with the [`Report`] when any failed.
///
/// # Panics
/// When a check failed.
pub async fn run_all(sink: Arc<dyn StatusSink>, reader: &dyn JobReader) {
    run(sink, reader).await.assert_all_passed();
}

/// Created → RUNNING with progress → artifact → DONE with summary and final
/// artifacts: every field reads back.
pub async fn lifecycle(sink: &dyn StatusSink, reader: &dyn JobReader) {
    let id = fresh_id("lifecycle");
    let mut metadata = Map::new();
    metadata.insert("user_id".into(), json!("user123"));
    publish_ok(sink, created(&id, json!({"room": "github"}), metadata)).await;

    let view = read(reader, &id).await;
    assert_eq!(view.job.job_id, id);
    assert_eq!(view.job.status, JobStatus::Pending);
    assert_eq!(view.job.input_data, json!({"room": "github"}));
    assert_eq!(view.job.metadata.get("user_id"), Some(&json!("user123")));
    assert!(view.job.artifacts.is_empty());

    let progress = Progress {
        current_step: Some("PDF Processing".into()),
        total_steps: Some(5),
        completed_steps: Some(2),
        percentage: Some(40.0),
        estimated_remaining: Some("5 minutes".into()),
    };
    publish_ok(
        sink,
        status_event(
            &id,
            JobStatus::Running,
            Some(progress.clone()),
            "Processing PDF files...",
        ),
    )
    .await;
    let view = read(reader, &id).await;
    assert_eq!(view.job.status, JobStatus::Running);
    assert_eq!(view.job.progress.as_ref(), Some(&progress));

    let running_artifact = artifact("partial.csv", "csv");
    publish_ok(
        sink,
        JobEvent::Artifact {
            job_id: id.clone(),
            at: now(),
            artifact: running_artifact.clone(),
        },
    )
    .await;

    let summary = json!({"total_records_processed": 1500, "processing_time": 180.5});
    let final_artifact = artifact("audit_report.xlsx", "excel_report");
    publish_ok(
        sink,
        JobEvent::Completed {
            job_id: id.clone(),
            at: now(),
            final_status: JobStatus::Done,
            summary: Some(summary.clone()),
            artifacts: vec![final_artifact.clone()],
            message: Some("Audit completed successfully".into()),
        },
    )
    .await;

    let view = read(reader, &id).await;
    assert_eq!(view.job.status, JobStatus::Done);
    assert_eq!(view.job.artifacts, [running_artifact, final_artifact]);
    assert_eq!(view.job.metadata.get("summary"), Some(&summary));
    assert!(view.job.updated_at >= view.job.created_at);
    let history = view.history.unwrap_or_default();
    let last = history.last().expect("history has entries");
    assert_eq!(last.status, JobStatus::Done);
    assert_eq!(
        last.message.as_deref(),
        Some("Audit completed successfully")
    );
}

/// History keeps every change, oldest first, with its message and step, and
/// timestamps never go backwards. A failure records its reason.
pub async fn history_order(sink: &dyn StatusSink, reader: &dyn JobReader) {
    let id = fresh_id("history");
    publish_ok(sink, created(&id, Value::Null, Map::new())).await;
    let steps = [
        (JobStatus::Running, "claimed"),
        (JobStatus::NeedsInput, "approve?"),
        (JobStatus::Running, "input received"),
        (JobStatus::Pending, "retry after 1s"),
        (JobStatus::Running, "claimed again"),
    ];
    for (status, message) in steps {
        let mut event = status_event(&id, status, None, message);
        if let JobEvent::Status { step, .. } = &mut event {
            *step = Some(format!("step-{message}"));
        }
        publish_ok(sink, event).await;
    }
    publish_ok(
        sink,
        JobEvent::Completed {
            job_id: id.clone(),
            at: now(),
            final_status: JobStatus::Failed,
            summary: Some(json!({"reason": "timeout"})),
            artifacts: vec![],
            message: Some("timeout".into()),
        },
    )
    .await;

    let view = read(reader, &id).await;
    assert_eq!(view.job.status, JobStatus::Failed);
    assert_eq!(
        view.job.metadata.get("summary"),
        Some(&json!({"reason": "timeout"}))
    );
    let history = view.history.expect("history was asked for");
    let statuses: Vec<_> = history.iter().map(|entry| entry.status).collect();
    let mut expected = vec![JobStatus::Pending];
    expected.extend(steps.iter().map(|(status, _)| *status));
    expected.push(JobStatus::Failed);
    assert_eq!(statuses, expected);
    for (entry, (_, message)) in history[1..].iter().zip(steps) {
        assert_eq!(entry.message.as_deref(), Some(message));
        assert_eq!(
            entry.step.as_deref(),
            Some(format!("step-{message}").as_str())
        );
    }
    assert!(
        history.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "history timestamps go backwards"
    );
}

/// Updates to a job the sink never saw are refused with `JobNotFound`, and
/// create nothing.
pub async fn unknown_job(sink: &dyn StatusSink, reader: &dyn JobReader) {
    let id = fresh_id("unknown");
    let refused = [
        status_event(&id, JobStatus::Running, None, "claimed"),
        JobEvent::Artifact {
            job_id: id.clone(),
            at: now(),
            artifact: artifact("a.txt", "text"),
        },
        JobEvent::Completed {
            job_id: id.clone(),
            at: now(),
            final_status: JobStatus::Done,
            summary: None,
            artifacts: vec![],
            message: None,
        },
    ];
    for event in refused {
        let result = sink.publish(event).await;
        assert!(
            matches!(result, Err(SinkError::JobNotFound { ref job_id }) if *job_id == id),
            "expected JobNotFound, got {result:?}"
        );
    }
    assert!(reader.read_job(&id).await.is_none());
}

/// A second `Created` for a job that exists is refused with
/// `InvalidStatus` and changes nothing: the first input, metadata and
/// history stand.
pub async fn created_once(sink: &dyn StatusSink, reader: &dyn JobReader) {
    let id = fresh_id("created-once");
    publish_ok(sink, created(&id, json!({"first": true}), Map::new())).await;
    let mut metadata = Map::new();
    metadata.insert("second".into(), json!(true));
    let again = sink
        .publish(created(&id, json!({"second": true}), metadata))
        .await;
    assert!(
        matches!(again, Err(SinkError::InvalidStatus { .. })),
        "expected InvalidStatus, got {again:?}"
    );
    let view = read(reader, &id).await;
    assert_eq!(view.job.status, JobStatus::Pending);
    assert_eq!(view.job.input_data, json!({"first": true}));
    assert!(view.job.metadata.is_empty(), "{:?}", view.job.metadata);
    let history = view.history.expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
}

/// After `DONE` or `FAILED`, every change is refused with `InvalidStatus`
/// and the job reads back unchanged.
pub async fn terminal_is_final(sink: &dyn StatusSink, reader: &dyn JobReader) {
    for final_status in [JobStatus::Done, JobStatus::Failed] {
        let id = fresh_id("terminal");
        publish_ok(sink, created(&id, Value::Null, Map::new())).await;
        publish_ok(sink, status_event(&id, JobStatus::Running, None, "claimed")).await;
        publish_ok(sink, completed(&id, final_status)).await;
        let before = read(reader, &id).await;

        let refused = [
            status_event(&id, JobStatus::Running, None, "late progress"),
            status_event(&id, JobStatus::Pending, None, "late retry"),
            JobEvent::Artifact {
                job_id: id.clone(),
                at: now(),
                artifact: artifact("late.txt", "text"),
            },
            completed(&id, JobStatus::Done),
            completed(&id, JobStatus::Failed),
        ];
        for event in refused {
            let result = sink.publish(event).await;
            assert!(
                matches!(result, Err(SinkError::InvalidStatus { .. })),
                "expected InvalidStatus after {final_status}, got {result:?}"
            );
        }
        let after = read(reader, &id).await;
        assert_eq!(after.job.status, final_status);
        assert_eq!(after, before, "a refused event changed the job");
    }
}

/// Eight publishers at once: each one's updates land in its order, none is
/// lost on a shared job, and of eight racing completions exactly one wins.
pub async fn concurrent_updates(sink: Arc<dyn StatusSink>, reader: &dyn JobReader) {
    const WRITERS: usize = 8;
    const UPDATES: usize = 25;
    let shared = fresh_id("shared");
    publish_ok(sink.as_ref(), created(&shared, Value::Null, Map::new())).await;
    let own: Vec<String> = (0..WRITERS).map(|_| fresh_id("own")).collect();
    for id in &own {
        publish_ok(sink.as_ref(), created(id, Value::Null, Map::new())).await;
    }

    let mut writers = tokio::task::JoinSet::new();
    for (w, id) in own.iter().enumerate() {
        let (sink, id, shared) = (Arc::clone(&sink), id.clone(), shared.clone());
        writers.spawn(async move {
            for i in 0..UPDATES {
                let message = format!("w{w}-{i}");
                for job in [&id, &shared] {
                    publish_ok(
                        sink.as_ref(),
                        status_event(job, JobStatus::Running, None, &message),
                    )
                    .await;
                }
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.expect("writer panicked");
    }

    for (w, id) in own.iter().enumerate() {
        let messages = messages(&read(reader, id).await);
        let expected: Vec<String> = (0..UPDATES).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(messages[1..], expected[..], "writer {w}'s order was lost");
    }
    let shared_messages = messages(&read(reader, &shared).await);
    assert_eq!(shared_messages.len(), 1 + WRITERS * UPDATES);
    let unique: HashSet<&String> = shared_messages[1..].iter().collect();
    assert_eq!(unique.len(), WRITERS * UPDATES, "an update was lost");
    for w in 0..WRITERS {
        let prefix = format!("w{w}-");
        let mine: Vec<&String> = shared_messages
            .iter()
            .filter(|m| m.starts_with(&prefix))
            .collect();
        let expected: Vec<String> = (0..UPDATES).map(|i| format!("w{w}-{i}")).collect();
        assert!(
            mine.iter().zip(&expected).all(|(a, b)| *a == b),
            "writer {w}'s order was lost on the shared job"
        );
    }

    let mut racers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let (sink, shared) = (Arc::clone(&sink), shared.clone());
        let status = if w % 2 == 0 {
            JobStatus::Done
        } else {
            JobStatus::Failed
        };
        racers.spawn(async move { sink.publish(completed(&shared, status)).await });
    }
    let mut wins = 0;
    while let Some(joined) = racers.join_next().await {
        match joined.expect("racer panicked") {
            Ok(()) => wins += 1,
            Err(SinkError::InvalidStatus { .. }) => {}
            Err(other) => panic!("unexpected error from a racing completion: {other:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one completion may win");
    let view = read(reader, &shared).await;
    assert!(view.job.status.is_terminal());
    let history = view.history.unwrap_or_default();
    assert_eq!(
        history.iter().filter(|e| e.status.is_terminal()).count(),
        1,
        "a job ends once"
    );
}

fn fresh_id(check: &str) -> String {
    format!("conformance-{check}-{}", uuid::Uuid::new_v4())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn created(id: &str, input_data: Value, metadata: Map<String, Value>) -> JobEvent {
    JobEvent::Created {
        job_id: id.to_owned(),
        at: now(),
        input_data: input_data.into(),
        metadata,
    }
}

fn status_event(
    id: &str,
    status: JobStatus,
    progress: Option<Progress>,
    message: &str,
) -> JobEvent {
    JobEvent::Status {
        job_id: id.to_owned(),
        at: now(),
        status,
        progress,
        message: Some(message.to_owned()),
        step: None,
    }
}

fn completed(id: &str, final_status: JobStatus) -> JobEvent {
    JobEvent::Completed {
        job_id: id.to_owned(),
        at: now(),
        final_status,
        summary: None,
        artifacts: vec![],
        message: None,
    }
}

fn artifact(name: &str, kind: &str) -> Artifact {
    Artifact {
        name: name.to_owned(),
        path: Some(format!("outputs/{name}")),
        kind: Some(kind.to_owned()),
        size: Some(1024),
        ..Artifact::default()
    }
}

async fn publish_ok(sink: &dyn StatusSink, event: JobEvent) {
    let what = format!("{event:?}");
    if let Err(err) = sink.publish(event).await {
        panic!("publishing {what} failed: {err:?}");
    }
}

async fn read(reader: &dyn JobReader, id: &str) -> JobView {
    match reader.read_job(id).await {
        Some(view) => view,
        None => panic!("job `{id}` was not stored"),
    }
}

fn messages(view: &JobView) -> Vec<String> {
    view.history
        .iter()
        .flatten()
        .map(|entry| entry.message.clone().unwrap_or_default())
        .collect()
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::status::InMemoryStatusSink;

    /// Reads nothing back, whatever the sink stored.
    struct Blind;

    #[async_trait]
    impl JobReader for Blind {
        async fn read_job(&self, _job_id: &str) -> Option<JobView> {
            None
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_check_is_reported_by_name() {
        let sink = InMemoryStatusSink::new();
        let report = run(Arc::new(sink.clone()), &sink).await;
        let names: Vec<&str> = report.outcomes().iter().map(|o| o.check).collect();
        let listed: Vec<&str> = checks().iter().map(|c| c.name).collect();
        assert_eq!(names, listed);
        assert_eq!(report.passed(), 6, "{report}");

        let blind = run(Arc::new(sink), &Blind).await;
        assert_eq!(blind.outcomes().len(), 6);
        let lifecycle = blind.outcome("lifecycle").expect("ran");
        assert!(
            lifecycle
                .result
                .as_ref()
                .is_err_and(|f| f.message.starts_with("job `conformance-lifecycle-")
                    && f.message.ends_with("` was not stored")),
            "{blind}"
        );
    }
}
