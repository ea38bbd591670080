//! [`AnnouncingJobRegistry`]: a [`JobRegistry`] that announces every job
//! change as `job.updated` on a [`TaskEvents`] hub, so a page follows a
//! job's progress without polling.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Applied, JobEvent, JobPage, JobQuery, JobRegistry, SinkError, StatusSink};
use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};
use crate::task::TaskEvents;

/// Wraps any [`JobRegistry`] and publishes a `job.updated` event
/// ([`TaskEvents::publish_job`]) after each change it applied: a created
/// job, a status or progress report, an artifact, a completion. The event
/// carries the job as it is after the change, read back from the registry,
/// so a report that leaves the progress out still shows the progress the
/// job has.
///
/// Every writer of jobs goes through one registry (the webhook ingest's and
/// the Task API's status sink, the Jobs API), so wrapping it once announces
/// every change. Reads, purges and repeats of an applied idempotency key
/// are not announced. Only changes made through this wrapper are seen.
///
/// ```
/// # #[cfg(feature = "memory")]
/// # async fn demo() -> Result<(), hookroom::status::SinkError> {
/// use std::sync::Arc;
/// use hookroom::status::{AnnouncingJobRegistry, InMemoryStatusSink, JobEvent, JobInput, StatusSink};
/// use hookroom::task::{TaskEventKind, TaskEvents};
///
/// let events = Arc::new(TaskEvents::new());
/// let jobs = AnnouncingJobRegistry::new(Arc::new(InMemoryStatusSink::new()), Arc::clone(&events));
/// let mut subscription = events.subscribe(None, None);
/// jobs.publish(JobEvent::Created {
///     job_id: "task-1".into(),
///     at: time::OffsetDateTime::now_utc(),
///     input_data: JobInput::null(),
///     metadata: Default::default(),
/// })
/// .await?;
/// let event = subscription.recv().await.unwrap();
/// assert_eq!((event.kind, event.task.as_str()), (TaskEventKind::JobUpdated, "task-1"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AnnouncingJobRegistry {
    inner: Arc<dyn JobRegistry>,
    events: Arc<TaskEvents>,
}

impl AnnouncingJobRegistry {
    /// Wraps `inner`, announcing to `events`.
    pub fn new(inner: Arc<dyn JobRegistry>, events: Arc<TaskEvents>) -> Self {
        Self { inner, events }
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &Arc<dyn JobRegistry> {
        &self.inner
    }

    /// Announces job `job_id` as it is now. A job that cannot be read back
    /// (gone, or the backend failing) is not announced: the change itself
    /// succeeded, and a reader that misses it sees it on its next read.
    async fn announce(&self, job_id: &str) {
        match self.inner.job(job_id, false).await {
            Ok(Some(view)) => {
                self.events.publish_job(&view.job);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%error, job_id, "job changed but could not be read back to announce it");
            }
        }
    }
}

#[async_trait]
impl StatusSink for AnnouncingJobRegistry {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        let job_id = event.job_id().to_owned();
        self.inner.publish(event).await?;
        self.announce(&job_id).await;
        Ok(())
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let job_id = event.job_id().to_owned();
        self.inner.publish_once(event, key).await?;
        self.announce(&job_id).await;
        Ok(())
    }
}

#[async_trait]
impl JobRegistry for AnnouncingJobRegistry {
    async fn create_job(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError> {
        let created = self.inner.create_job(request, at).await?;
        self.announce(&created.job_id).await;
        Ok(created)
    }

    async fn job(&self, job_id: &str, include_history: bool) -> Result<Option<JobView>, SinkError> {
        self.inner.job(job_id, include_history).await
    }

    async fn jobs(&self, query: JobQuery) -> Result<JobPage, SinkError> {
        self.inner.jobs(query).await
    }

    async fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        let applied = self.inner.apply_once(job_id, key, events).await?;
        if applied == Applied::Now {
            self.announce(job_id).await;
        }
        Ok(applied)
    }

    async fn purge_finished(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, SinkError> {
        self.inner.purge_finished(cutoff, limit).await
    }
}
