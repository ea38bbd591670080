//! Conformance checks for [`JobRegistry`] backends: what the Jobs API needs
//! beyond a [`StatusSink`](crate::status::StatusSink) (whose suite is
//! [`status_sink`](super::status_sink)): updates applied once per
//! idempotency key, and finished jobs purged by age in bounded batches.
//!
//! Each check uses fresh random job ids. The purge check stamps its jobs in
//! 2001 (on a [`ManualClock`]) and purges only before 2002, so it leaves the
//! jobs of other checks alone.
//!
//! [`checks`] lists the checks by name; [`run`] runs them all and reports
//! each; [`run_all`] panics with that report when one failed.
//!
//! ```
//! use std::sync::Arc;
//! use hookroom::conformance::job_registry;
//! use hookroom::status::InMemoryStatusSink;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let report = job_registry::run(Arc::new(InMemoryStatusSink::new())).await;
//! assert_eq!(report.passed(), job_registry::checks().len(), "{report}");
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, json};
use time::OffsetDateTime;

use super::report::{Check as NamedCheck, CheckFuture, Report};
use crate::clock::{Clock, ManualClock};
use crate::status::{Applied, JobEvent, JobRegistry, JobStatus, SinkError};

/// The function of one registry check: runs it and panics on the first
/// broken rule.
pub type CheckFn = for<'a> fn(&'a Arc<dyn JobRegistry>) -> CheckFuture<'a>;

/// One registry check: its name and its function.
pub type Check = NamedCheck<CheckFn>;

/// A check that takes the registry by reference.
macro_rules! plain {
    ($name:ident) => {
        Check {
            name: stringify!($name),
            run: |registry| Box::pin($name(registry.as_ref())),
        }
    };
}

const CHECKS: &[Check] = &[
    plain!(apply_once),
    plain!(refused_update_keeps_no_key),
    plain!(keys_are_per_job),
    Check {
        name: "concurrent_apply_once",
        run: |registry| Box::pin(concurrent_apply_once(Arc::clone(registry))),
    },
    plain!(purge_finished),
];

/// Every check, in the order [`run`] runs them.
pub fn checks() -> &'static [Check] {
    CHECKS
}

/// Runs every check against one registry, one after the other; a failed
/// check is reported and the next one runs.
pub async fn run(registry: Arc<dyn JobRegistry>) -> Report {
    let mut report = Report::new("job_registry");
    for check in checks() {
        report.run(check.name, (check.run)(&registry)).await;
    }
    report
}

/// Runs every check and panics with the [`Report`] when any failed.
///
/// # Panics
/// When a check failed.
pub async fn run_all(registry: Arc<dyn JobRegistry>) {
    run(registry).await.assert_all_passed();
}

/// A creation, a status update with an artifact, and a completion, each
/// given twice under its key: each is applied once, and the second answer
/// is [`Applied::Before`].
pub async fn apply_once(registry: &dyn JobRegistry) {
    let id = fresh_id("once");
    let at = OffsetDateTime::now_utc();
    for _ in 0..2 {
        let _ = registry
            .apply_once(&id, "create-1", vec![created(&id, at)])
            .await
            .expect("apply_once(create)");
    }
    let update = || {
        vec![
            running(&id, at, "working"),
            JobEvent::Artifact {
                job_id: id.clone(),
                at,
                artifact: crate::status::Artifact {
                    name: "out.csv".into(),
                    ..crate::status::Artifact::default()
                },
            },
        ]
    };
    let first = registry.apply_once(&id, "update-1", update()).await;
    assert_eq!(first.expect("first update"), Applied::Now);
    let again = registry.apply_once(&id, "update-1", update()).await;
    assert_eq!(again.expect("repeated update"), Applied::Before);
    let done = registry
        .apply_once(&id, "done-1", vec![completed(&id, at)])
        .await;
    assert_eq!(done.expect("completion"), Applied::Now);
    // A finished job refuses updates, but a repeated key is not an update.
    let again = registry
        .apply_once(&id, "done-1", vec![completed(&id, at)])
        .await;
    assert_eq!(again.expect("repeated completion"), Applied::Before);

    let view = read(registry, &id).await;
    assert_eq!(view.job.status, JobStatus::Done);
    assert_eq!(
        view.job.artifacts.len(),
        1,
        "the artifact was attached once"
    );
    let statuses: Vec<JobStatus> = history(&view);
    assert_eq!(
        statuses,
        [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Running,
            JobStatus::Done
        ],
        "created, running, artifact, done: once each"
    );
    let created_again = registry
        .apply_once(&id, "create-2", vec![created(&id, at)])
        .await;
    assert!(
        matches!(created_again, Err(SinkError::InvalidStatus { .. })),
        "a new key does not create a job twice: {created_again:?}"
    );
}

/// An update that is refused is not remembered: once the job exists, the
/// same key applies it. An update holding another job's change is refused.
pub async fn refused_update_keeps_no_key(registry: &dyn JobRegistry) {
    let id = fresh_id("refused");
    let at = OffsetDateTime::now_utc();
    let early = registry
        .apply_once(&id, "k", vec![running(&id, at, "too early")])
        .await;
    assert!(
        matches!(early, Err(SinkError::JobNotFound { .. })),
        "{early:?}"
    );
    registry
        .apply_once(&id, "create", vec![created(&id, at)])
        .await
        .expect("create");
    // Two events, the second refused: nothing of the update stays.
    let half = registry
        .apply_once(
            &id,
            "half",
            vec![running(&id, at, "half"), created(&id, at)],
        )
        .await;
    assert!(
        matches!(half, Err(SinkError::InvalidStatus { .. })),
        "{half:?}"
    );
    let view = read(registry, &id).await;
    assert_eq!(
        view.job.status,
        JobStatus::Pending,
        "the update rolled back"
    );
    assert_eq!(history(&view).len(), 1);

    let later = registry
        .apply_once(&id, "k", vec![running(&id, at, "now")])
        .await;
    assert_eq!(later.expect("retried update"), Applied::Now);
    let other = fresh_id("other");
    let mixed = registry
        .apply_once(&id, "mixed", vec![running(&other, at, "elsewhere")])
        .await;
    assert!(
        matches!(mixed, Err(SinkError::InvalidStatus { .. })),
        "{mixed:?}"
    );
    let view = read(registry, &id).await;
    assert_eq!(history(&view), [JobStatus::Pending, JobStatus::Running]);
}

/// The same key names different updates of different jobs.
pub async fn keys_are_per_job(registry: &dyn JobRegistry) {
    let at = OffsetDateTime::now_utc();
    let (a, b) = (fresh_id("per-job-a"), fresh_id("per-job-b"));
    for id in [&a, &b] {
        registry
            .apply_once(id, "create", vec![created(id, at)])
            .await
            .expect("create");
        let applied = registry
            .apply_once(id, "same-key", vec![running(id, at, "go")])
            .await;
        assert_eq!(applied.expect("update"), Applied::Now, "job {id}");
    }
    for id in [&a, &b] {
        assert_eq!(
            history(&read(registry, id).await),
            [JobStatus::Pending, JobStatus::Running]
        );
    }
}

/// Eight callers race to apply one key: exactly one applies it.
pub async fn concurrent_apply_once(registry: Arc<dyn JobRegistry>) {
    let id = fresh_id("race");
    let at = OffsetDateTime::now_utc();
    registry
        .apply_once(&id, "create", vec![created(&id, at)])
        .await
        .expect("create");
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let registry = Arc::clone(&registry);
        let id = id.clone();
        racers.spawn(async move {
            registry
                .apply_once(&id, "raced", vec![running(&id, at, "raced")])
                .await
        });
    }
    let mut now = 0;
    while let Some(result) = racers.join_next().await {
        if result.expect("racer").expect("apply_once") == Applied::Now {
            now += 1;
        }
    }
    assert_eq!(now, 1, "exactly one racer applies the key");
    assert_eq!(history(&read(registry.as_ref(), &id).await).len(), 2);
}

/// Finished jobs older than the cutoff go, in batches of `limit`, with
/// their history and keys; running and newer jobs stay.
pub async fn purge_finished(registry: &dyn JobRegistry) {
    const DAY: Duration = Duration::from_secs(86_400);
    // 2001-01-01: older than anything the other checks write.
    let clock = ManualClock::at_unix(978_307_200);
    let old_done = fresh_id("purge-done");
    let old_failed = fresh_id("purge-failed");
    let old_running = fresh_id("purge-running");
    let fresh_done = fresh_id("purge-fresh");
    for id in [&old_done, &old_failed, &old_running, &fresh_done] {
        registry
            .apply_once(id, "create", vec![created(id, clock.now())])
            .await
            .expect("create");
    }
    registry
        .apply_once(
            &old_running,
            "run",
            vec![running(&old_running, clock.now(), "")],
        )
        .await
        .expect("run");
    registry
        .apply_once(&old_done, "done", vec![completed(&old_done, clock.now())])
        .await
        .expect("done");
    let failed = JobEvent::Completed {
        job_id: old_failed.clone(),
        at: clock.now(),
        final_status: JobStatus::Failed,
        summary: Some(json!({"reason": "expired"})),
        artifacts: vec![],
        message: None,
    };
    registry
        .apply_once(&old_failed, "failed", vec![failed])
        .await
        .expect("failed");
    clock.advance(30 * DAY);
    registry
        .apply_once(
            &fresh_done,
            "done",
            vec![completed(&fresh_done, clock.now())],
        )
        .await
        .expect("done");
    clock.advance(DAY);
    // Keep 7 days: the two old finished jobs go, one per batch.
    let cutoff = clock.now() - time::Duration::days(7);
    let first = registry.purge_finished(cutoff, 1).await.expect("purge");
    assert_eq!(first, 1, "a batch is bounded by its limit");
    let second = registry.purge_finished(cutoff, 1).await.expect("purge");
    assert_eq!(second, 1);
    let third = registry.purge_finished(cutoff, 1).await.expect("purge");
    assert_eq!(third, 0, "nothing else is old and finished");
    for gone in [&old_done, &old_failed] {
        let job = registry.job(gone, true).await.expect("job");
        assert!(job.is_none(), "{gone} was purged");
    }
    for kept in [&old_running, &fresh_done] {
        let job = registry.job(kept, false).await.expect("job");
        assert!(job.is_some(), "{kept} was kept");
    }
    // The purged job's keys went with it: a new job of the same id takes
    // them afresh.
    registry
        .apply_once(&old_done, "create", vec![created(&old_done, clock.now())])
        .await
        .expect("re-create");
    let again = registry
        .apply_once(&old_done, "done", vec![completed(&old_done, clock.now())])
        .await;
    assert_eq!(again.expect("done again"), Applied::Now);
    let view = read(registry, &old_done).await;
    assert_eq!(history(&view), [JobStatus::Pending, JobStatus::Done]);
}

fn fresh_id(check: &str) -> String {
    format!("conformance-registry-{check}-{}", uuid::Uuid::new_v4())
}

fn created(id: &str, at: OffsetDateTime) -> JobEvent {
    JobEvent::Created {
        job_id: id.to_owned(),
        at,
        input_data: json!({"check": "job_registry"}).into(),
        metadata: Map::new(),
    }
}

fn running(id: &str, at: OffsetDateTime, message: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.to_owned(),
        at,
        status: JobStatus::Running,
        progress: None,
        message: Some(message.to_owned()),
        step: None,
    }
}

fn completed(id: &str, at: OffsetDateTime) -> JobEvent {
    JobEvent::Completed {
        job_id: id.to_owned(),
        at,
        final_status: JobStatus::Done,
        summary: None,
        artifacts: vec![],
        message: Some("done".into()),
    }
}

async fn read(registry: &dyn JobRegistry, id: &str) -> crate::api::jobs::JobView {
    match registry.job(id, true).await {
        Ok(Some(view)) => view,
        other => panic!("job {id} should read back: {other:?}"),
    }
}

fn history(view: &crate::api::jobs::JobView) -> Vec<JobStatus> {
    view.history
        .iter()
        .flatten()
        .map(|entry| entry.status)
        .collect()
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_check_is_reported_by_name() {
        let report = run(Arc::new(crate::status::InMemoryStatusSink::new())).await;
        let names: Vec<&str> = report.outcomes().iter().map(|o| o.check).collect();
        let listed: Vec<&str> = checks().iter().map(|c| c.name).collect();
        assert_eq!(names, listed);
        assert_eq!(listed.len(), 5);
        assert_eq!(report.suite(), "job_registry");
        assert_eq!((report.passed(), report.failed()), (5, 0), "{report}");
    }
}
