//! Job status for changes made through the Task API, as the agent runtime
//! reports its own.

use std::sync::Arc;

use serde_json::json;

use crate::clock::Clock;
use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;
use crate::ops::report_to_job;
use crate::status::{JobEvent, StatusSink};
use crate::task::Task;

/// What a Task API call did to a task, for its job.
pub(crate) enum Change<'a> {
    /// Claimed, input taken back, or asked for input: a status.
    Status(&'a Task, Option<&'a str>),
    /// Put back to `PENDING` (release, retry).
    Pending(&'a Task, Option<&'a str>),
    /// Finished: `DONE` with the result, or `FAILED` with the reason.
    Completed(&'a Task),
}

/// Publishes `change` to `sink` through [`report_to_job`] (which creates the
/// job first when the sink never heard of it); a refusal is logged, never
/// returned: the task store is the source of truth.
pub(crate) async fn report(sink: &Arc<dyn StatusSink>, clock: &Arc<dyn Clock>, change: Change<'_>) {
    let at = clock.now();
    let (task, event) = match change {
        Change::Status(task, message) | Change::Pending(task, message) => (
            task,
            JobEvent::Status {
                job_id: task.id.to_string(),
                at,
                status: task.status,
                progress: None,
                message: message.map(str::to_owned),
                step: None,
            },
        ),
        Change::Completed(task) => (
            task,
            JobEvent::Completed {
                job_id: task.id.to_string(),
                at,
                final_status: task.status,
                summary: match task.status {
                    JobStatus::Done => task.result.clone(),
                    _ => task
                        .failure
                        .as_ref()
                        .map(|reason| json!({ "reason": reason })),
                },
                artifacts: Vec::new(),
                message: None,
            },
        ),
    };
    if let Err(error) = report_to_job(sink.as_ref(), task, event).await {
        tracing::warn!(
            job_id = task.id.as_str(),
            code = error.code(),
            %error,
            "status sink did not take a job event; the task is unaffected"
        );
    }
}
