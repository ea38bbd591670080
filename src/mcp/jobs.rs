//! The job registry the job tools read and change: any
//! [`JobRegistry`](crate::status::JobRegistry), or a gateway's Jobs API
//! through an [`HttpStatusSink`](crate::http::HttpStatusSink), to read jobs,
//! and the [`StatusSink`](crate::status::StatusSink) that records changes.

use std::sync::Arc;

use crate::api::jobs::JobView;
use crate::status::{JobEvent, JobRegistry, SinkError, StatusSink};

/// Where jobs are read.
#[derive(Debug, Clone)]
pub(crate) enum JobSource {
    /// A registry in this process (memory, SQLite, PostgreSQL).
    Registry(Arc<dyn JobRegistry>),
    /// A gateway's Jobs API.
    #[cfg(feature = "http-client")]
    Gateway(crate::http::HttpStatusSink),
}

/// Where jobs are read, and the sink that changes them (often the same
/// object).
#[derive(Debug, Clone)]
pub(crate) struct Jobs {
    pub(crate) source: JobSource,
    pub(crate) sink: Arc<dyn StatusSink>,
}

impl Jobs {
    /// One job, with its history when asked; `None` when unknown.
    pub(crate) async fn job(
        &self,
        job_id: &str,
        include_history: bool,
    ) -> Result<Option<JobView>, SinkError> {
        match &self.source {
            JobSource::Registry(registry) => registry.job(job_id, include_history).await,
            #[cfg(feature = "http-client")]
            JobSource::Gateway(jobs) => jobs.pull_job(job_id, include_history).await,
        }
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
            source: JobSource::Registry(registry.clone()),
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
