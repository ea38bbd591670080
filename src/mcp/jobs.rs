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

    /// Applies one change.
    pub(crate) async fn change(&self, event: JobEvent) -> Result<(), SinkError> {
        self.sink.publish(event).await
    }
}
