//! Status reporting shared by the worker and job handles: sink failures are
//! logged and counted, never returned.

use std::sync::Arc;
use tracing::Instrument;

use serde_json::Value;
use time::OffsetDateTime;

use super::stats::Counters;
use crate::clock::Clock;
use crate::error_code::ErrorCode;
use crate::ops::report_to_job;
use crate::status::{JobEvent, JobStatus, Progress, StatusSink};
use crate::task::Task;

#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(crate) sink: Arc<dyn StatusSink>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) counters: Arc<Counters>,
}

impl Reporter {
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Publishes `event`; a refusal is logged and counted.
    pub(crate) async fn publish(&self, event: JobEvent) {
        let kind = match &event {
            JobEvent::Created { .. } => "created",
            JobEvent::Status { .. } => "status",
            JobEvent::Artifact { .. } => "artifact",
            JobEvent::Completed { .. } => "completed",
        };
        // One span per status push, naming the job and the kind of change.
        let span = tracing::debug_span!("status_push", job_id = %event.job_id(), kind);
        let result = self.sink.publish(event.clone()).instrument(span).await;
        if let Err(err) = result {
            self.refused(event.job_id(), &err);
        }
    }

    /// A status change; when the sink has never heard of the job (a task
    /// inserted without a `Created` event), creates it first.
    pub(crate) async fn status(
        &self,
        task: &Task,
        status: JobStatus,
        progress: Option<Progress>,
        message: Option<String>,
    ) {
        let event = JobEvent::Status {
            job_id: task.id.to_string(),
            at: self.now(),
            status,
            progress,
            message,
            step: None,
        };
        self.publish_for(task, event).await;
    }

    /// The end of a task's job (creating the job first if the sink never
    /// heard of it).
    pub(crate) async fn completed(
        &self,
        task: &Task,
        final_status: JobStatus,
        summary: Option<Value>,
        artifacts: Vec<crate::status::Artifact>,
        message: Option<String>,
    ) {
        let event = JobEvent::Completed {
            job_id: task.id.to_string(),
            at: self.now(),
            final_status,
            summary,
            artifacts,
            message,
        };
        self.publish_for(task, event).await;
    }

    /// Publishes `event` through [`report_to_job`]; a refusal is logged and
    /// counted.
    async fn publish_for(&self, task: &Task, event: JobEvent) {
        if let Err(err) = report_to_job(self.sink.as_ref(), task, event).await {
            self.refused(task.id.as_str(), &err);
        }
    }

    fn refused<E: ErrorCode + std::fmt::Display>(&self, job_id: &str, err: &E) {
        Counters::bump(&self.counters.sink_errors);
        tracing::warn!(
            job_id,
            code = err.code(),
            error = %err,
            "status sink did not take a job event; the task is unaffected"
        );
    }
}
