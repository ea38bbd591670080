//! The narrow view of a job registry the job tools need, so that another
//! registry can stand in with one `impl`.

use crate::status::api::JobView;
use crate::status::{JobEvent, SinkError};

/// Reads one job and applies changes to it.
pub(crate) trait JobRegistry: std::fmt::Debug + Send + Sync + 'static {
    /// One job, with its history when asked.
    fn job(&self, job_id: &str, include_history: bool) -> Option<JobView>;
    /// Applies one change.
    fn change(&self, event: JobEvent) -> Result<(), SinkError>;
}

#[cfg(feature = "memory")]
impl JobRegistry for crate::status::InMemoryStatusSink {
    fn job(&self, job_id: &str, include_history: bool) -> Option<JobView> {
        self.get(job_id, include_history)
    }

    fn change(&self, event: JobEvent) -> Result<(), SinkError> {
        self.apply(event)
    }
}
