//! The job registry the job tools read and change: any
//! [`JobRegistry`](crate::status::JobRegistry) to read jobs, and the
//! [`StatusSink`](crate::status::StatusSink) that records changes to it.

use std::sync::Arc;

use crate::api::jobs::JobView;
use crate::status::{JobEvent, JobRegistry, SinkError, StatusSink};

/// A registry and the sink that writes to it (often the same object).
#[derive(Debug, Clone)]
pub(crate) struct Jobs {
    pub(crate) registry: Arc<dyn JobRegistry>,
    pub(crate) sink: Arc<dyn StatusSink>,
}

impl Jobs {
    /// One job, with its history when asked; `None` when unknown.
    pub(crate) async fn job(
        &self,
        job_id: &str,
        include_history: bool,
    ) -> Result<Option<JobView>, SinkError> {
        self.registry.job(job_id, include_history).await
    }

    /// Applies one change; progress out of the protocol's range is refused
    /// here (`E_SERIALIZATION_ERROR`) whatever the sink.
    pub(crate) async fn change(&self, event: JobEvent) -> Result<(), SinkError> {
        if let JobEvent::Status {
            progress: Some(progress),
            ..
        } = &event
        {
            progress
                .validate()
                .map_err(|invalid| SinkError::Serialization {
                    sink: "mcp",
                    reason: invalid.to_string(),
                })?;
        }
        self.sink.publish(event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;
    use crate::status::{InMemoryStatusSink, JobInput, JobStatus, Progress};
    use time::macros::datetime;

    #[tokio::test]
    async fn progress_out_of_the_protocols_range_is_refused() {
        let registry = Arc::new(InMemoryStatusSink::new());
        let jobs = Jobs {
            registry: registry.clone(),
            sink: registry.clone(),
        };
        let at = datetime!(2024-01-15 10:30:00 UTC);
        jobs.change(JobEvent::Created {
            job_id: "j".into(),
            at,
            input_data: JobInput::null(),
            metadata: serde_json::Map::new(),
        })
        .await
        .unwrap();
        let status = |progress| JobEvent::Status {
            job_id: "j".into(),
            at,
            status: JobStatus::Running,
            progress: Some(progress),
            message: None,
            step: None,
        };
        let over = Progress {
            percentage: Some(140.0),
            ..Progress::default()
        };
        let steps = Progress {
            completed_steps: Some(4),
            total_steps: Some(3),
            ..Progress::default()
        };
        for progress in [over, steps] {
            let refused = jobs.change(status(progress)).await.unwrap_err();
            assert_eq!(refused.code(), "E_SERIALIZATION_ERROR");
        }
        let view = jobs.job("j", false).await.unwrap().unwrap();
        assert_eq!(
            (view.job.status, view.job.progress),
            (JobStatus::Pending, None)
        );
    }
}
