//! [`AnnouncingJobRegistry`]: a [`JobRegistry`] that announces every job
//! change as `job.updated` (to a [`TaskEvents`] hub, or through any
//! [`JobAnnouncer`]), so a page follows a job's progress without polling.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Applied, Job, JobEvent, JobPage, JobQuery, JobRegistry, SinkError, StatusSink};
use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};
use crate::task::TaskEvents;

/// Where an [`AnnouncingJobRegistry`] announces a changed job.
///
/// A [`TaskEvents`] hub publishes it in this process
/// ([`TaskEvents::publish_job`]); a `PostgresTaskStore` (feature
/// `postgres`) sends it with `NOTIFY`, so the hubs of every gateway
/// listening on the database publish it.
#[async_trait]
pub trait JobAnnouncer: Send + Sync + std::fmt::Debug {
    /// Announces `job` as it is after a change. An announcement is best
    /// effort: one that cannot be made is logged, never an error of the
    /// change.
    async fn announce_job(&self, job: &Job);
}

#[async_trait]
impl JobAnnouncer for TaskEvents {
    async fn announce_job(&self, job: &Job) {
        self.publish_job(job);
    }
}

/// Wraps any [`JobRegistry`] and announces a `job.updated` event (to a
/// [`TaskEvents`] hub, or through a [`JobAnnouncer`]) after each change it
/// applied: a created
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
    announcer: Arc<dyn JobAnnouncer>,
}

impl AnnouncingJobRegistry {
    /// Wraps `inner`, announcing to the hub `events` in this process.
    pub fn new(inner: Arc<dyn JobRegistry>, events: Arc<TaskEvents>) -> Self {
        Self::with_announcer(inner, events)
    }

    /// Wraps `inner`, announcing through `announcer` (a `PostgresTaskStore`
    /// built with events, for every gateway on its database to hear).
    pub fn with_announcer(inner: Arc<dyn JobRegistry>, announcer: Arc<dyn JobAnnouncer>) -> Self {
        Self { inner, announcer }
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
            Ok(Some(view)) => self.announcer.announce_job(&view.job).await,
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

#[cfg(all(test, feature = "memory"))]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::status::{Artifact, InMemoryStatusSink, JobInput, JobStatus, Progress};
    use crate::task::{Subscription, TaskEventKind};

    fn registry() -> (AnnouncingJobRegistry, Arc<TaskEvents>) {
        let events = Arc::new(TaskEvents::new());
        let registry =
            AnnouncingJobRegistry::new(Arc::new(InMemoryStatusSink::new()), Arc::clone(&events));
        (registry, events)
    }

    fn created(job_id: &str) -> JobEvent {
        JobEvent::Created {
            job_id: job_id.into(),
            at: OffsetDateTime::now_utc(),
            input_data: JobInput::from(json!({"room": "pr-review", "title": "Fix"})),
            metadata: Default::default(),
        }
    }

    fn running(job_id: &str, progress: Option<Progress>) -> JobEvent {
        JobEvent::Status {
            job_id: job_id.into(),
            at: OffsetDateTime::now_utc(),
            status: JobStatus::Running,
            progress,
            message: None,
            step: None,
        }
    }

    fn percent(percentage: f64) -> Progress {
        Progress {
            current_step: Some("tests".into()),
            total_steps: Some(4),
            completed_steps: Some(2),
            percentage: Some(percentage),
            estimated_remaining: None,
        }
    }

    async fn next(subscription: &mut Subscription) -> Arc<crate::task::TaskEvent> {
        tokio::time::timeout(std::time::Duration::from_secs(1), subscription.recv())
            .await
            .expect("an event")
            .expect("a live subscription")
    }

    #[tokio::test]
    async fn every_change_is_announced_with_the_job_as_it_is_after_it() {
        let (registry, events) = registry();
        let mut all = events.subscribe(None, None);
        let mut room = events.subscribe(Some("pr-review"), None);
        let mut other = events.subscribe(Some("elsewhere"), None);

        registry.publish(created("j1")).await.unwrap();
        let event = next(&mut all).await;
        assert_eq!(event.kind, TaskEventKind::JobUpdated);
        assert_eq!(
            (
                event.task.as_str(),
                event.room.as_str(),
                event.title.as_str()
            ),
            ("j1", "pr-review", "Fix")
        );
        assert_eq!(event.status, JobStatus::Pending);
        assert_eq!(next(&mut room).await.seq, event.seq);

        registry
            .publish(running("j1", Some(percent(50.0))))
            .await
            .unwrap();
        let event = next(&mut all).await;
        assert_eq!(event.status, JobStatus::Running);
        assert_eq!(event.progress.as_ref().unwrap().percentage, Some(50.0));
        let wire = serde_json::to_value(&*event).unwrap();
        assert_eq!(wire["progress"]["percentage"], 50);
        assert_eq!(wire["id"], "j1");

        // A report without progress keeps the job's progress.
        registry.publish(running("j1", None)).await.unwrap();
        assert_eq!(
            next(&mut all).await.progress.as_ref().unwrap().percentage,
            Some(50.0)
        );

        let artifact = Artifact {
            name: "report.md".into(),
            path: None,
            kind: None,
            size: Some(3),
            download_url: None,
            description: None,
        };
        registry
            .publish(JobEvent::Artifact {
                job_id: "j1".into(),
                at: OffsetDateTime::now_utc(),
                artifact,
            })
            .await
            .unwrap();
        assert_eq!(next(&mut all).await.status, JobStatus::Running);

        registry
            .publish(JobEvent::Completed {
                job_id: "j1".into(),
                at: OffsetDateTime::now_utc(),
                final_status: JobStatus::Done,
                summary: None,
                artifacts: vec![],
                message: None,
            })
            .await
            .unwrap();
        assert_eq!(next(&mut all).await.status, JobStatus::Done);
        let heard = tokio::time::timeout(std::time::Duration::from_millis(50), other.recv()).await;
        assert!(heard.is_err(), "another room hears nothing: {heard:?}");
    }

    #[tokio::test]
    async fn refusals_and_repeated_keys_are_not_announced() {
        let (registry, events) = registry();
        let mut all = events.subscribe(None, None);
        assert!(registry.publish(running("missing", None)).await.is_err());
        registry
            .apply_once("j2", "k", vec![created("j2")])
            .await
            .unwrap();
        assert_eq!(next(&mut all).await.task.as_str(), "j2");
        assert_eq!(
            registry
                .apply_once("j2", "k", vec![created("j2")])
                .await
                .unwrap(),
            Applied::Before
        );
        assert_eq!(events.last_seq(), 1, "one announcement in all");
    }

    #[tokio::test]
    async fn job_changes_wake_no_claim_waiting_for_work() {
        let (registry, events) = registry();
        let mut watch = events.watch("pr-review");
        registry.publish(created("j3")).await.unwrap();
        assert!(watch.try_recv().is_err(), "a job is not new work");
    }
}
