//! The effect of one event on a stored job, shared by the SQL registries
//! (the contract is `InMemoryStatusSink`'s).

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{Artifact, HistoryEntry, Job, JobEvent, JobStatus, Progress, SinkError};

/// The message of a new job's first history entry.
pub(crate) const CREATED_MESSAGE: &str = "Job created";
/// The step of a new job's first history entry.
pub(crate) const CREATED_STEP: &str = "initialization";

/// Refuses what no job could take, before the job is looked up: a final
/// status through `Status`, a non-final one through `Completed`, progress
/// out of the protocol's range.
pub(crate) fn precheck(event: &JobEvent) -> Result<(), SinkError> {
    match event {
        JobEvent::Status {
            status, progress, ..
        } => {
            precheck_progress(progress.as_ref())?;
            precheck_status(*status)
        }
        JobEvent::Completed { final_status, .. } => precheck_final_status(*final_status),
        _ => Ok(()),
    }
}

/// Refuses progress out of the protocol's range ([`Progress::validate`]).
pub(crate) fn precheck_progress(progress: Option<&Progress>) -> Result<(), SinkError> {
    match progress.map(Progress::validate) {
        Some(Err(invalid)) => Err(SinkError::Serialization {
            sink: "job registry",
            reason: invalid.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Refuses a status update to a final status: completion ends a job.
pub(crate) fn precheck_status(status: JobStatus) -> Result<(), SinkError> {
    if status.is_terminal() {
        return Err(SinkError::InvalidStatus {
            reason: format!("{status} ends a job; use completion"),
        });
    }
    Ok(())
}

/// Refuses a completion to a status that is not final.
pub(crate) fn precheck_final_status(final_status: JobStatus) -> Result<(), SinkError> {
    if !final_status.is_terminal() {
        return Err(SinkError::InvalidStatus {
            reason: format!("{final_status} is not a final status"),
        });
    }
    Ok(())
}

/// The first history entry of a job created at `at`.
pub(crate) fn created_entry(at: OffsetDateTime) -> HistoryEntry {
    HistoryEntry {
        timestamp: at,
        status: JobStatus::Pending,
        message: Some(CREATED_MESSAGE.to_owned()),
        step: Some(CREATED_STEP.to_owned()),
    }
}

/// Applies `event` (anything but `Created`, already prechecked) to `job`
/// and returns the history entry to append.
///
/// # Errors
/// [`SinkError::InvalidStatus`] once the job has ended; nothing is changed.
pub(crate) fn apply(job: &mut Job, event: JobEvent) -> Result<HistoryEntry, SinkError> {
    precheck(&event)?;
    if job.status.is_terminal() {
        return Err(SinkError::InvalidStatus {
            reason: format!("job `{}` already ended {}", job.job_id, job.status),
        });
    }
    let (at, message, step) = match event {
        JobEvent::Created { job_id, .. } => {
            return Err(SinkError::InvalidStatus {
                reason: format!("job `{job_id}` already exists"),
            });
        }
        JobEvent::Status {
            at,
            status,
            progress,
            message,
            step,
            ..
        } => {
            let step = step.or_else(|| progress.as_ref()?.current_step.clone());
            if progress.is_some() {
                job.progress = progress;
            }
            job.status = status;
            (at, message, step)
        }
        JobEvent::Artifact { at, artifact, .. } => {
            let message = format!("artifact attached: {}", artifact.name);
            job.artifacts.push(artifact);
            (at, Some(message), None)
        }
        JobEvent::Completed {
            at,
            final_status,
            summary,
            artifacts,
            message,
            ..
        } => {
            complete(job, at, final_status, summary, artifacts, &message);
            (at, message, None)
        }
    };
    // A late event never moves `updated_at` backwards.
    job.updated_at = job.updated_at.max(at);
    Ok(HistoryEntry {
        timestamp: at,
        status: job.status,
        message,
        step,
    })
}

/// The completion's effect: summary and failure reason in the metadata,
/// processing time, artifacts, final status.
fn complete(
    job: &mut Job,
    at: OffsetDateTime,
    final_status: JobStatus,
    summary: Option<Value>,
    artifacts: Vec<Artifact>,
    message: &Option<String>,
) {
    complete_metadata(
        &mut job.metadata,
        job.created_at,
        at,
        final_status,
        summary,
        message,
    );
    job.artifacts.extend(artifacts);
    job.status = final_status;
}

/// What a completion at `at` writes into the metadata of a job created at
/// `created_at`: the failure reason (`error_message`, from the completion
/// message or the summary's `reason`), the summary, and the processing time
/// unless one was already reported. Every registry's completion goes
/// through this.
pub(crate) fn complete_metadata(
    metadata: &mut Map<String, Value>,
    created_at: OffsetDateTime,
    at: OffsetDateTime,
    final_status: JobStatus,
    summary: Option<Value>,
    message: &Option<String>,
) {
    if final_status == JobStatus::Failed {
        let reason = message
            .clone()
            .or_else(|| summary.as_ref()?.get("reason")?.as_str().map(str::to_owned));
        if let Some(reason) = reason {
            metadata.insert("error_message".to_owned(), Value::String(reason));
        }
    }
    if let Some(summary) = summary {
        metadata.insert("summary".to_owned(), summary);
    }
    if !metadata.contains_key("processing_time") {
        let seconds = (at - created_at).as_seconds_f64().max(0.0);
        if let Some(n) = serde_json::Number::from_f64(seconds) {
            metadata.insert("processing_time".to_owned(), Value::Number(n));
        }
    }
}
