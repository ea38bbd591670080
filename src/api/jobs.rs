//! Request and response bodies of the Jobs API.
//!
//! | endpoint | request | response |
//! | --- | --- | --- |
//! | `POST /api/jobs` | [`JobCreateRequest`] | [`JobCreateResponse`] |
//! | `POST /api/jobs/{id}/status` | [`StatusUpdateRequest`], or [`ArtifactUpdateRequest`] | [`JobView`] |
//! | `GET /api/jobs/{id}?include_history=` | | [`JobView`] |
//! | `POST /api/jobs/{id}/complete` | [`JobCompleteRequest`] | [`JobView`] |
//! | `GET /api/jobs?status=&limit=&cursor=` | | [`JobListResponse`] |
//! | any refusal | | [`ApiErrorBody`] |
//!
//! Job-status clients in Python commonly send `null` for absent
//! fields (`"progress": null`, `"final_artifacts": null`); every optional field
//! here reads `null` as absent.
//!
//! ```
//! use hookroom::api::jobs::StatusUpdateRequest;
//! use hookroom::status::JobStatus;
//!
//! let body = r#"{"status":"RUNNING","progress":{"percentage":40},"message":null}"#;
//! let update: StatusUpdateRequest = serde_json::from_str(body).unwrap();
//! assert_eq!(update.status, JobStatus::Running);
//! assert_eq!(update.progress.unwrap().percentage, Some(40.0));
//! assert_eq!(update.message, None);
//! ```

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::status::{Artifact, HistoryEntry, Job, JobEvent, JobStatus, Progress};

/// The key of a job's `metadata` naming the principal that created it
/// through the Jobs API. It travels with the job, so every registry keeps it
/// without a column of its own; a request may not set it.
pub const CREATED_BY: &str = "hookroom.created_by";

/// Body of `POST /api/jobs`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct JobCreateRequest {
    /// Caller-chosen job id; the server picks a UUID when absent (plain
    /// clients never send one; the runtime sends the task id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// What the job works on.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input_data: Value,
    /// Free-form metadata (`user_id`, `session_id`, …).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub metadata: Map<String, Value>,
}

/// Answer to `POST /api/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCreateResponse {
    /// The new job's id.
    pub job_id: String,
    /// Always `PENDING` for a new job.
    pub status: JobStatus,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Human message, e.g. `Job created successfully`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Body of `POST /api/jobs/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdateRequest {
    /// New status: `PENDING`, `RUNNING` or `NEEDS_INPUT` (a job ends through
    /// the completion endpoint).
    pub status: JobStatus,
    /// Progress report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Human message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Step name for the history entry (defaults to the progress's current
    /// step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Artifacts produced so far, attached after the status change (each
    /// with its own history entry).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub artifacts: Vec<Artifact>,
}

/// Body of `POST /api/jobs/{id}/status` that only attaches artifacts: no
/// `status`, the job's status is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArtifactUpdateRequest {
    /// The artifacts, attached in order.
    pub artifacts: Vec<Artifact>,
}

impl ArtifactUpdateRequest {
    /// The [`JobEvent::Artifact`]s this request asks for, in order.
    pub fn into_events(self, job_id: &str, at: OffsetDateTime) -> Vec<JobEvent> {
        self.artifacts
            .into_iter()
            .map(|artifact| JobEvent::Artifact {
                job_id: job_id.to_owned(),
                at,
                artifact,
            })
            .collect()
    }
}

/// Body of `POST /api/jobs/{id}/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCompleteRequest {
    /// `DONE` or `FAILED`.
    pub final_status: JobStatus,
    /// What the job produced or why it failed (e.g. `{"reason":"expired"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    /// Artifacts produced at the end.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub final_artifacts: Vec<Artifact>,
    /// Human message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_message: Option<String>,
}

/// Answer to `GET /api/jobs/{id}`: the job and, when asked for, its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job.
    pub job: Job,
    /// Its history, oldest first (`None` unless `include_history` was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

/// Answer to `GET /api/jobs`: one page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobListResponse {
    /// The jobs of this page, newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to read the next (older) page; absent on the last
    /// page. Opaque to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The body of every Jobs API refusal:
/// `{"error":{"code":"E_JOB_NOT_FOUND","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The refusal.
    pub error: ApiErrorDetail,
}

/// The code and message of an [`ApiErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// Stable code: `E_JOB_NOT_FOUND`, `E_INVALID_STATUS`,
    /// `E_AUTHENTICATION_FAILED`, `E_SERIALIZATION_ERROR`, …
    pub code: String,
    /// Human message; never carries a token.
    pub message: String,
}

impl JobCreateRequest {
    /// The [`JobEvent::Created`] this request asks for, under `job_id` (the
    /// server's choice when the request names none).
    pub fn into_event(self, job_id: impl Into<String>, at: OffsetDateTime) -> JobEvent {
        JobEvent::Created {
            job_id: self.job_id.unwrap_or_else(|| job_id.into()),
            at,
            input_data: self.input_data.into(),
            metadata: self.metadata,
        }
    }
}

impl JobCreateResponse {
    /// The answer for a newly created job.
    pub fn for_job(job: &Job) -> Self {
        Self {
            job_id: job.job_id.clone(),
            status: job.status,
            created_at: job.created_at,
            message: Some("Job created successfully".to_owned()),
        }
    }
}

impl StatusUpdateRequest {
    /// The [`JobEvent::Status`] this request asks for (its artifacts are
    /// dropped: see [`into_events`](Self::into_events)).
    pub fn into_event(self, job_id: impl Into<String>, at: OffsetDateTime) -> JobEvent {
        JobEvent::Status {
            job_id: job_id.into(),
            at,
            status: self.status,
            progress: self.progress,
            message: self.message,
            step: self.step,
        }
    }

    /// The [`JobEvent::Status`] and then one [`JobEvent::Artifact`] per
    /// artifact, in order.
    pub fn into_events(mut self, job_id: &str, at: OffsetDateTime) -> Vec<JobEvent> {
        let artifacts = std::mem::take(&mut self.artifacts);
        let mut events = Vec::with_capacity(1 + artifacts.len());
        events.push(self.into_event(job_id, at));
        events.extend(ArtifactUpdateRequest { artifacts }.into_events(job_id, at));
        events
    }
}

impl JobCompleteRequest {
    /// The [`JobEvent::Completed`] this request asks for.
    pub fn into_event(self, job_id: impl Into<String>, at: OffsetDateTime) -> JobEvent {
        JobEvent::Completed {
            job_id: job_id.into(),
            at,
            final_status: self.final_status,
            summary: self.summary,
            artifacts: self.final_artifacts,
            message: self.completion_message,
        }
    }
}

/// Reads JSON `null` as the type's default (an empty map or list).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// Parses `value` as `T`, writes it back, and checks the JSON is equal.
    fn round_trip<T: Serialize + DeserializeOwned>(value: Value) -> T {
        let parsed: T = serde_json::from_value(value.clone()).expect("parses");
        let written = serde_json::to_value(&parsed).expect("serializes");
        assert_eq!(written, value, "round trip changed the JSON");
        parsed
    }

    fn reference_job() -> Value {
        json!({
            "job_id": "550e8400-e29b-41d4-a716-446655440000",
            "status": "RUNNING",
            "created_at": "2024-01-15T10:30:00Z",
            "updated_at": "2024-01-15T10:35:00Z",
            "input_data": {
                "pop_file_path": "populacja/data.xlsx",
                "pdf_directory": "pdfs/",
                "validation_mode": "full",
                "custom_rules": {"max_age": 120}
            },
            "progress": {
                "current_step": "PDF Processing",
                "total_steps": 5,
                "completed_steps": 2,
                "percentage": 40,
                "estimated_remaining": "5 minutes"
            },
            "artifacts": [{
                "name": "audit_report.xlsx",
                "path": "outputs/reports/audit_report_20240115.xlsx",
                "type": "excel_report",
                "size": 2048576,
                "download_url": "https://example.com/dl/audit_report.xlsx"
            }],
            "metadata": {
                "user_id": "user123",
                "session_id": "session456",
                "processing_time": 180.5,
                "error_message": ""
            }
        })
    }

    #[test]
    fn reference_job_data_round_trips() {
        let job: Job = round_trip(reference_job());
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.created_at, datetime!(2024-01-15 10:30:00 UTC));
        let progress = job.progress.expect("progress");
        assert_eq!(progress.percentage, Some(40.0));
        assert_eq!(progress.completed_steps, Some(2));
        assert_eq!(job.artifacts[0].kind.as_deref(), Some("excel_report"));
        assert_eq!(job.artifacts[0].size, Some(2_048_576));
        assert_eq!(job.metadata["processing_time"], json!(180.5));
    }

    #[test]
    fn fractional_percentage_round_trips() {
        let progress: Progress = round_trip(json!({"percentage": 33.5}));
        assert_eq!(progress.percentage, Some(33.5));
    }

    #[test]
    fn reference_job_view_with_history_round_trips() {
        let view: JobView = round_trip(json!({
            "job": reference_job(),
            "history": [
                {
                    "timestamp": "2024-01-15T10:30:00Z",
                    "status": "PENDING",
                    "message": "Job created",
                    "step": "initialization"
                },
                {
                    "timestamp": "2024-01-15T10:32:00Z",
                    "status": "RUNNING",
                    "message": "Processing POP data",
                    "step": "pop_processing"
                }
            ]
        }));
        let history = view.history.expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].status, JobStatus::Running);
        assert_eq!(history[1].step.as_deref(), Some("pop_processing"));
        assert!(history[0].timestamp < history[1].timestamp);
    }

    #[test]
    fn job_view_without_history_omits_the_field() {
        let view = JobView {
            job: serde_json::from_value(reference_job()).expect("job"),
            history: None,
        };
        let written = serde_json::to_value(&view).expect("serializes");
        assert!(written.get("history").is_none());
    }

    #[test]
    fn reference_job_creation_round_trips() {
        let request: JobCreateRequest = round_trip(json!({
            "input_data": {
                "pop_file_path": "populacja/data.xlsx",
                "pdf_directory": "pdfs/",
                "validation_mode": "full"
            },
            "metadata": {"user_id": "user123", "session_id": "session456"}
        }));
        assert_eq!(request.job_id, None);
        assert_eq!(request.metadata["user_id"], json!("user123"));

        let response: JobCreateResponse = round_trip(json!({
            "job_id": "550e8400-e29b-41d4-a716-446655440000",
            "status": "PENDING",
            "created_at": "2024-01-15T10:30:00Z",
            "message": "Job created successfully"
        }));
        assert_eq!(response.status, JobStatus::Pending);
    }

    #[test]
    fn reference_status_update_round_trips() {
        let update: StatusUpdateRequest = round_trip(json!({
            "status": "RUNNING",
            "progress": {
                "current_step": "PDF Processing",
                "total_steps": 5,
                "completed_steps": 2,
                "percentage": 40,
                "estimated_remaining": "5 minutes"
            },
            "message": "Processing PDF files..."
        }));
        assert_eq!(update.status, JobStatus::Running);
        assert_eq!(update.message.as_deref(), Some("Processing PDF files..."));
    }

    #[test]
    fn reference_completion_round_trips() {
        let complete: JobCompleteRequest = round_trip(json!({
            "final_status": "DONE",
            "summary": {
                "total_records_processed": 1500,
                "validation_issues_found": 23,
                "high_risk_records": 5,
                "processing_time": 180.5,
                "artifacts_generated": 4
            },
            "final_artifacts": [
                {
                    "name": "audit_report.xlsx",
                    "path": "outputs/reports/audit_report_20240115.xlsx",
                    "type": "excel_report",
                    "size": 2048576,
                    "description": "Comprehensive audit report"
                },
                {
                    "name": "evidence_package.zip",
                    "path": "outputs/evidence/evidence_20240115.zip",
                    "type": "evidence_package",
                    "size": 15728640,
                    "description": "Complete evidence package"
                }
            ],
            "completion_message": "Audit completed successfully"
        }));
        assert_eq!(complete.final_status, JobStatus::Done);
        assert_eq!(complete.final_artifacts.len(), 2);
        assert_eq!(complete.final_artifacts[1].size, Some(15_728_640));
    }

    #[test]
    fn python_client_nulls_read_as_absent() {
        let update: StatusUpdateRequest = serde_json::from_value(
            json!({"status": "NEEDS_INPUT", "progress": null, "message": null}),
        )
        .expect("parses");
        assert_eq!(update.progress, None);
        let complete: JobCompleteRequest = serde_json::from_value(
            json!({"final_status": "FAILED", "summary": null, "final_artifacts": null}),
        )
        .expect("parses");
        assert!(complete.final_artifacts.is_empty());
        assert_eq!(complete.summary, None);
        let create: JobCreateRequest =
            serde_json::from_value(json!({"input_data": null, "metadata": null})).expect("parses");
        assert_eq!(create, JobCreateRequest::default());
    }

    #[test]
    fn statuses_serialize_exactly() {
        for (status, wire) in [
            (JobStatus::Pending, "PENDING"),
            (JobStatus::Running, "RUNNING"),
            (JobStatus::NeedsInput, "NEEDS_INPUT"),
            (JobStatus::Failed, "FAILED"),
            (JobStatus::Done, "DONE"),
        ] {
            assert_eq!(
                serde_json::to_value(status).expect("serializes"),
                json!(wire)
            );
            assert_eq!(status.as_str(), wire);
            assert_eq!(wire.parse::<JobStatus>(), Ok(status));
            assert_eq!(
                serde_json::from_value::<JobStatus>(json!(wire)).expect("parses"),
                status
            );
        }
        assert!(serde_json::from_value::<JobStatus>(json!("running")).is_err());
        assert!("Done".parse::<JobStatus>().is_err());
    }

    #[test]
    fn bodies_become_the_events_they_ask_for() {
        let at = datetime!(2024-01-15 10:30:00 UTC);
        let create = JobCreateRequest {
            job_id: None,
            input_data: json!({"room": "r"}),
            metadata: Map::new(),
        };
        let event = create.into_event("server-id", at);
        assert_eq!(event.job_id(), "server-id");
        let named = JobCreateRequest {
            job_id: Some("task-1".into()),
            ..JobCreateRequest::default()
        };
        assert_eq!(named.into_event("server-id", at).job_id(), "task-1");

        let update = StatusUpdateRequest {
            status: JobStatus::NeedsInput,
            progress: None,
            message: Some("approve?".into()),
            step: None,
            artifacts: vec![],
        };
        assert!(matches!(
            update.into_event("j", at),
            JobEvent::Status { status: JobStatus::NeedsInput, message: Some(ref m), .. } if m == "approve?"
        ));
        let complete = JobCompleteRequest {
            final_status: JobStatus::Failed,
            summary: Some(json!({"reason": "expired"})),
            final_artifacts: vec![Artifact::default()],
            completion_message: None,
        };
        assert!(matches!(
            complete.into_event("j", at),
            JobEvent::Completed { final_status: JobStatus::Failed, ref artifacts, .. } if artifacts.len() == 1
        ));
    }

    #[test]
    fn created_response_describes_the_job() {
        let job: Job = serde_json::from_value(reference_job()).expect("job");
        let response = JobCreateResponse::for_job(&job);
        assert_eq!(response.job_id, job.job_id);
        assert_eq!(response.created_at, job.created_at);
    }

    #[test]
    fn unknown_status_is_rejected() {
        let err = serde_json::from_value::<StatusUpdateRequest>(json!({"status": "PAUSED"}));
        assert!(err.is_err());
    }
}
