//! [`InMemoryStatusSink`]: a job registry with history, the backing store of
//! the Jobs API and the sink tests read back from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::change;
use super::registry::{
    Applied, DEFAULT_MAX_KEYS_PER_JOB, JobPage, JobQuery, JobRegistry, MAX_PAGE_SIZE,
    check_same_job,
};
use super::{
    Artifact, HistoryEntry, Job, JobEvent, JobInput, JobStatus, Progress, SinkError, StatusSink,
};
use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};

/// Default cap of [`InMemoryStatusSink::list`] when no limit is given.
const DEFAULT_LIST_LIMIT: usize = 100;

/// Keeps every job with its history and answers queries.
///
/// Events are applied atomically, one at a time, under one lock that is never
/// held across an `.await`. Clones share the same registry.
///
/// | event | effect |
/// | --- | --- |
/// | [`JobEvent::Created`] | new `PENDING` job; history `Job created` |
/// | [`JobEvent::Status`] | status and progress replaced; history entry (step defaults to the progress's current step) |
/// | [`JobEvent::Artifact`] | artifact appended; history entry `artifact attached: {name}` |
/// | [`JobEvent::Completed`] | final status; summary in `metadata.summary`, failure reason in `metadata.error_message`, seconds since creation in `metadata.processing_time`; artifacts appended; history entry |
///
/// Refused, with nothing changed: any event but `Created` for an unknown job
/// ([`SinkError::JobNotFound`]); `Created` for a known job, `Status` with a
/// final status, `Completed` with a non-final one, and every event after the
/// job ended ([`SinkError::InvalidStatus`]).
///
/// # Bounded memory
/// [`with_max_jobs`](Self::with_max_jobs) caps the number of jobs. At the
/// cap, a job created through [`publish`](StatusSink::publish) (a webhook
/// task's job) evicts the job that finished longest ago, or, when none has
/// finished, the oldest job. A job created through the Jobs API
/// ([`JobRegistry::create_job`], [`JobRegistry::apply_once`]) evicts only a
/// finished Jobs API job; when there is none, its creation is refused with
/// [`SinkError::TooManyJobs`] (`429 E_TOO_MANY_JOBS`), so that Jobs API
/// callers never push a webhook task's job out. [`with_max_history`](Self::with_max_history)
/// keeps only the newest entries of each history. Each job remembers the
/// newest [`DEFAULT_MAX_KEYS_PER_JOB`] idempotency keys of
/// [`apply_once`](JobRegistry::apply_once), in memory, and forgets them
/// with the job; [`purge_finished`](Self::purge_finished) removes finished
/// jobs by age.
///
/// # Example
/// ```
/// use hookroom::status::{InMemoryStatusSink, JobEvent, JobStatus, StatusSink};
/// use time::OffsetDateTime;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sink = InMemoryStatusSink::new();
/// let at = OffsetDateTime::now_utc();
/// sink.publish(JobEvent::Created {
///     job_id: "job-1".into(),
///     at,
///     input_data: serde_json::json!({"room": "github"}).into(),
///     metadata: Default::default(),
/// })
/// .await
/// .unwrap();
/// sink.publish(JobEvent::Completed {
///     job_id: "job-1".into(),
///     at,
///     final_status: JobStatus::Done,
///     summary: Some(serde_json::json!({"labels": 2})),
///     artifacts: vec![],
///     message: Some("tagged".into()),
/// })
/// .await
/// .unwrap();
///
/// let view = sink.get("job-1", true).unwrap();
/// assert_eq!(view.job.status, JobStatus::Done);
/// assert_eq!(view.history.unwrap().len(), 2);
/// assert_eq!(sink.list(Some(JobStatus::Done), None).len(), 1);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStatusSink {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    /// One allocation per job id, shared by the three indexes. Hashed with
    /// foldhash, seeded at random per registry: a job is created per
    /// accepted webhook, and SipHash was a visible share of that.
    jobs: HashMap<Arc<str>, Record, foldhash::fast::RandomState>,
    /// Creation sequence → job id, oldest first.
    by_creation: BTreeMap<u64, Arc<str>>,
    /// Finished job ids, in the order they finished.
    finished: VecDeque<Arc<str>>,
    /// Finished ids of jobs created through the Jobs API, in the order they
    /// finished: the only jobs such a creation may evict.
    finished_api: VecDeque<Arc<str>>,
    next_seq: u64,
    max_jobs: Option<usize>,
    max_history: Option<usize>,
}

/// One job, kept compact: a job is created for every accepted webhook, so
/// what `Created` stores is what the registry costs per delivery. The
/// [`Job`] view is built when asked for.
#[derive(Debug, Clone)]
struct Record {
    seq: u64,
    id: Arc<str>,
    /// Created through the Jobs API rather than for a webhook task.
    api: bool,
    status: JobStatus,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    input: JobInput,
    progress: Option<Progress>,
    artifacts: Vec<Artifact>,
    metadata: Map<String, Value>,
    /// Whether the history still starts with the `Job created` entry, which
    /// is implied by `created_at` rather than stored.
    created_entry: bool,
    /// Every later entry, oldest first.
    history: VecDeque<HistoryEntry>,
    /// The idempotency keys of the updates applied, oldest first (at most
    /// [`DEFAULT_MAX_KEYS_PER_JOB`]).
    keys: VecDeque<Box<str>>,
}

impl InMemoryStatusSink {
    /// An empty, unbounded registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at most `max` jobs (at least one), evicting the longest-finished
    /// job (or, when none has finished, the oldest) to make room.
    pub fn with_max_jobs(self, max: usize) -> Self {
        self.lock().max_jobs = Some(max.max(1));
        self
    }

    /// Keeps at most the newest `max` history entries (at least one) per job.
    pub fn with_max_history(self, max: usize) -> Self {
        self.lock().max_history = Some(max.max(1));
        self
    }

    /// One job, with its history (oldest first) when `include_history`.
    pub fn get(&self, job_id: &str, include_history: bool) -> Option<JobView> {
        let registry = self.lock();
        let record = registry.jobs.get(job_id)?;
        Some(JobView {
            job: record.job(),
            history: include_history.then(|| record.history()),
        })
    }

    /// Jobs newest first, only those in `status` when given, at most `limit`
    /// (default 100).
    pub fn list(&self, status: Option<JobStatus>, limit: Option<usize>) -> Vec<Job> {
        let registry = self.lock();
        registry
            .by_creation
            .values()
            .rev()
            .filter_map(|id| registry.jobs.get(id))
            .filter(|record| status.is_none_or(|s| record.status == s))
            .take(limit.unwrap_or(DEFAULT_LIST_LIMIT))
            .map(Record::job)
            .collect()
    }

    /// One page of jobs, newest first, as `query` asks (the limit is
    /// clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub fn page(&self, query: JobQuery) -> JobPage {
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        let registry = self.lock();
        let mut matching = registry
            .by_creation
            .range(..query.cursor.unwrap_or(u64::MAX))
            .rev()
            .filter_map(|(_, id)| registry.jobs.get(id))
            .filter(|record| query.status.is_none_or(|s| record.status == s));
        let jobs: Vec<Job> = matching.by_ref().take(limit).map(Record::job).collect();
        let more = matching.next().is_some();
        let next = if more {
            jobs.last()
                .and_then(|job| registry.jobs.get(job.job_id.as_str()))
                .map(|record| record.seq)
        } else {
            None
        };
        JobPage { jobs, next }
    }

    /// Creates a job from a `POST /api/jobs` body, under the request's
    /// `job_id` or a fresh UUID, and returns what the Jobs API's
    /// `POST /api/jobs` answers.
    ///
    /// # Errors
    /// [`SinkError::InvalidStatus`] when the requested id is taken.
    pub fn create(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError> {
        let event = request.into_event(uuid::Uuid::new_v4().to_string(), at);
        let job_id = event.job_id().to_owned();
        let mut registry = self.lock();
        registry.apply(event, Origin::Api)?;
        let record = registry
            .jobs
            .get(job_id.as_str())
            .ok_or(SinkError::JobNotFound { job_id })?;
        Ok(JobCreateResponse::for_job(&record.job()))
    }

    /// Number of jobs kept.
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Whether no job is kept.
    pub fn is_empty(&self) -> bool {
        self.lock().jobs.is_empty()
    }

    /// Applies one event; the contract is in the type's docs.
    ///
    /// # Errors
    /// [`SinkError::JobNotFound`] or [`SinkError::InvalidStatus`]; nothing is
    /// changed then.
    pub fn apply(&self, event: JobEvent) -> Result<(), SinkError> {
        match event {
            // Every new job is built, and every job it evicts is dropped,
            // outside the lock: allocation and deallocation are most of the
            // cost, and holding the lock through them makes concurrent
            // publishers queue on it.
            JobEvent::Created {
                job_id,
                at,
                input_data,
                metadata,
            } => {
                let record = Record::created(job_id, at, input_data, metadata);
                let evicted = self.lock().insert_created(record)?;
                drop(evicted);
                Ok(())
            }
            other => self.lock().apply(other, Origin::Task),
        }
    }

    /// Applies `events` about `job_id` once per `key`, under one lock:
    /// [`JobRegistry::apply_once`]'s contract. When a later event of the
    /// update is refused, the job is put back as it was.
    ///
    /// # Errors
    /// As [`apply`](Self::apply); [`SinkError::InvalidStatus`] for an event
    /// about another job.
    pub fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        self.apply_once_from(Origin::Task, job_id, key, events)
    }

    /// [`apply_once`](Self::apply_once) for a job made by `origin`.
    fn apply_once_from(
        &self,
        origin: Origin,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        check_same_job(job_id, &events)?;
        let mut registry = self.lock();
        let existing = registry.jobs.get(job_id);
        if existing.is_some_and(|record| record.keys.iter().any(|k| &**k == key)) {
            return Ok(Applied::Before);
        }
        // One event is checked before anything changes; several may fail
        // half-way, so the job is kept to be put back.
        let snapshot = (events.len() > 1).then(|| existing.cloned());
        for event in events {
            if let Err(error) = registry.apply(event, origin) {
                if let Some(snapshot) = snapshot {
                    registry.restore(job_id, snapshot);
                }
                return Err(error);
            }
        }
        let Some(record) = registry.jobs.get_mut(job_id) else {
            return Err(SinkError::JobNotFound {
                job_id: job_id.to_owned(),
            });
        };
        if record.keys.len() >= DEFAULT_MAX_KEYS_PER_JOB {
            record.keys.pop_front();
        }
        record.keys.push_back(key.into());
        Ok(Applied::Now)
    }

    /// Removes at most `limit` finished jobs last changed before `cutoff`,
    /// in the order they finished, with their history and keys; returns
    /// how many.
    pub fn purge_finished(&self, cutoff: OffsetDateTime, limit: usize) -> usize {
        let mut registry = self.lock();
        let Registry {
            jobs,
            by_creation,
            finished,
            ..
        } = &mut *registry;
        let mut doomed = Vec::new();
        finished.retain(|id| {
            if doomed.len() >= limit {
                return true;
            }
            match jobs.get(id) {
                // Evicted already.
                None => false,
                Some(record) if record.status.is_terminal() && record.updated_at < cutoff => {
                    doomed.push(Arc::clone(id));
                    false
                }
                Some(_) => true,
            }
        });
        let removed: Vec<Record> = doomed
            .iter()
            .filter_map(|id| {
                let record = jobs.remove(id)?;
                by_creation.remove(&record.seq);
                Some(record)
            })
            .collect();
        registry.prune_finished_api();
        drop(registry);
        removed.len()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave a half-applied event:
        // every event is validated before anything is changed.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl StatusSink for InMemoryStatusSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        self.apply(event)
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let job_id = event.job_id().to_owned();
        self.apply_once(&job_id, key, vec![event]).map(drop)
    }
}

#[async_trait]
impl JobRegistry for InMemoryStatusSink {
    async fn create_job(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError> {
        self.create(request, at)
    }

    async fn job(&self, job_id: &str, include_history: bool) -> Result<Option<JobView>, SinkError> {
        Ok(self.get(job_id, include_history))
    }

    async fn jobs(&self, query: JobQuery) -> Result<JobPage, SinkError> {
        Ok(self.page(query))
    }

    async fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        // The Jobs API's keyed updates and creations.
        self.apply_once_from(Origin::Api, job_id, key, events)
    }

    async fn purge_finished(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, SinkError> {
        Ok(InMemoryStatusSink::purge_finished(self, cutoff, limit))
    }
}

/// Who creates a job, which decides what its creation may evict at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The Jobs API's callers.
    Api,
    /// A webhook task, through [`StatusSink::publish`].
    Task,
}

impl Registry {
    fn apply(&mut self, event: JobEvent, origin: Origin) -> Result<(), SinkError> {
        match event {
            JobEvent::Created {
                job_id,
                at,
                input_data,
                metadata,
            } => {
                let mut record = Record::created(job_id, at, input_data, metadata);
                record.api = origin == Origin::Api;
                self.insert_created(record).map(drop)
            }
            JobEvent::Status {
                job_id,
                at,
                status,
                progress,
                message,
                step,
            } => {
                change::precheck_progress(progress.as_ref())?;
                change::precheck_status(status)?;
                let max_history = self.max_history;
                let record = self.running_record(&job_id)?;
                let step = step.or_else(|| progress.as_ref()?.current_step.clone());
                if progress.is_some() {
                    record.progress = progress;
                }
                record.status = status;
                record.push(at, message, step, max_history);
                Ok(())
            }
            JobEvent::Artifact {
                job_id,
                at,
                artifact,
            } => {
                let max_history = self.max_history;
                let record = self.running_record(&job_id)?;
                let message = format!("artifact attached: {}", artifact.name);
                record.artifacts.push(artifact);
                record.push(at, Some(message), None, max_history);
                Ok(())
            }
            JobEvent::Completed {
                job_id,
                at,
                final_status,
                summary,
                artifacts,
                message,
            } => {
                change::precheck_final_status(final_status)?;
                let max_history = self.max_history;
                let record = self.running_record(&job_id)?;
                record.complete(at, final_status, summary, artifacts, message, max_history);
                let id = Arc::clone(&record.id);
                if record.api {
                    self.finished_api.push_back(Arc::clone(&id));
                }
                self.finished.push_back(id);
                Ok(())
            }
        }
    }

    /// Stores a new job's record, evicting as `max_jobs` requires; returns
    /// the evicted records so the caller can drop them after unlocking (the
    /// usual single eviction needs no `Vec`).
    fn insert_created(
        &mut self,
        mut record: Record,
    ) -> Result<(Option<Record>, Vec<Record>), SinkError> {
        if self.jobs.contains_key(&record.id) {
            return Err(SinkError::InvalidStatus {
                reason: format!("job `{}` already exists", record.id),
            });
        }
        let mut first = None;
        let mut rest = Vec::new();
        if let Some(max) = self.max_jobs {
            if record.api && self.jobs.len() >= max {
                // One finished Jobs API job makes room; a webhook task's job
                // is never evicted for a Jobs API job.
                first = Some(
                    self.evict_finished_api()
                        .ok_or(SinkError::TooManyJobs { limit: max })?,
                );
            }
            while self.jobs.len() >= max {
                match self.evict_one() {
                    Some(evicted) if first.is_none() => first = Some(evicted),
                    Some(evicted) => rest.push(evicted),
                    None => break,
                }
            }
        }
        self.prune_finished_api();
        record.trim(self.max_history);
        record.seq = self.next_seq;
        self.next_seq += 1;
        self.by_creation.insert(record.seq, Arc::clone(&record.id));
        self.jobs.insert(Arc::clone(&record.id), record);
        Ok((first, rest))
    }

    /// Puts job `job_id` back as `snapshot` was (`None`: it did not exist).
    fn restore(&mut self, job_id: &str, snapshot: Option<Record>) {
        match snapshot {
            Some(record) => {
                self.jobs.insert(Arc::clone(&record.id), record);
            }
            None => {
                if let Some(record) = self.jobs.remove(job_id) {
                    self.by_creation.remove(&record.seq);
                }
            }
        }
    }

    /// Removes the longest-finished job, or the oldest one; `None` when empty.
    fn evict_one(&mut self) -> Option<Record> {
        while let Some(id) = self.finished.pop_front() {
            if let Some(record) = self.jobs.remove(&id) {
                self.by_creation.remove(&record.seq);
                return Some(record);
            }
        }
        let (_, id) = self.by_creation.pop_first()?;
        self.jobs.remove(&id)
    }

    /// Forgets the ids of Jobs API jobs no longer kept once they outnumber
    /// the jobs kept (evictions by webhook jobs leave them behind), so the
    /// list stays within twice the cap.
    fn prune_finished_api(&mut self) {
        // Twice the jobs kept: each pass frees at least half, so passes
        // stay rare.
        if self.finished_api.len() > 2 * self.jobs.len() + 16 {
            let jobs = &self.jobs;
            self.finished_api
                .retain(|id| jobs.get(id).is_some_and(|record| record.api));
        }
    }

    /// Removes the Jobs API job that finished longest ago; `None` when no
    /// Jobs API job has finished.
    fn evict_finished_api(&mut self) -> Option<Record> {
        while let Some(id) = self.finished_api.pop_front() {
            // An id whose job was evicted may be in use by a newer job.
            let finished_api = self
                .jobs
                .get(&id)
                .is_some_and(|record| record.api && record.status.is_terminal());
            if finished_api && let Some(record) = self.jobs.remove(&id) {
                self.by_creation.remove(&record.seq);
                return Some(record);
            }
        }
        None
    }

    /// The record of a job that may still change.
    fn running_record(&mut self, job_id: &str) -> Result<&mut Record, SinkError> {
        let record = self
            .jobs
            .get_mut(job_id)
            .ok_or_else(|| SinkError::JobNotFound {
                job_id: job_id.to_owned(),
            })?;
        if record.status.is_terminal() {
            return Err(SinkError::InvalidStatus {
                reason: format!("job `{job_id}` already ended {}", record.status),
            });
        }
        Ok(record)
    }
}

impl Record {
    /// A new `PENDING` job; its first history entry is implied.
    fn created(
        job_id: String,
        at: OffsetDateTime,
        input: JobInput,
        metadata: Map<String, Value>,
    ) -> Self {
        Record {
            seq: 0,
            id: Arc::from(job_id),
            status: JobStatus::Pending,
            api: false,
            created_at: at,
            updated_at: at,
            input,
            progress: None,
            artifacts: Vec::new(),
            metadata,
            created_entry: true,
            history: VecDeque::new(),
            keys: VecDeque::new(),
        }
    }

    /// The job as the Jobs API shows it.
    fn job(&self) -> Job {
        Job {
            job_id: self.id.to_string(),
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            input_data: self.input.to_value(),
            progress: self.progress.clone(),
            artifacts: self.artifacts.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// The whole history, oldest first.
    fn history(&self) -> Vec<HistoryEntry> {
        let created = self
            .created_entry
            .then(|| change::created_entry(self.created_at));
        created
            .into_iter()
            .chain(self.history.iter().cloned())
            .collect()
    }

    /// Drops the oldest entries beyond `max_history`.
    fn trim(&mut self, max_history: Option<usize>) {
        let Some(max) = max_history else {
            return;
        };
        while self.history.len() + usize::from(self.created_entry) > max {
            if self.created_entry {
                self.created_entry = false;
            } else {
                self.history.pop_front();
            }
        }
    }

    fn push(
        &mut self,
        at: OffsetDateTime,
        message: Option<String>,
        step: Option<String>,
        max_history: Option<usize>,
    ) {
        // A late event never moves `updated_at` backwards.
        self.updated_at = self.updated_at.max(at);
        self.history.push_back(HistoryEntry {
            timestamp: at,
            status: self.status,
            message,
            step,
        });
        self.trim(max_history);
    }

    fn complete(
        &mut self,
        at: OffsetDateTime,
        final_status: JobStatus,
        summary: Option<Value>,
        artifacts: Vec<Artifact>,
        message: Option<String>,
        max_history: Option<usize>,
    ) {
        change::complete_metadata(
            &mut self.metadata,
            self.created_at,
            at,
            final_status,
            summary,
            &message,
        );
        self.artifacts.extend(artifacts);
        self.status = final_status;
        self.push(at, message, None, max_history);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::status::Progress;

    const T0: OffsetDateTime = datetime!(2024-01-15 10:30:00 UTC);

    fn created(id: &str) -> JobEvent {
        JobEvent::Created {
            job_id: id.into(),
            at: T0,
            input_data: json!({"room": "r"}).into(),
            metadata: Map::new(),
        }
    }

    fn status(id: &str, status: JobStatus) -> JobEvent {
        JobEvent::Status {
            job_id: id.into(),
            at: T0,
            status,
            progress: None,
            message: None,
            step: None,
        }
    }

    fn completed(id: &str, final_status: JobStatus, summary: Option<Value>) -> JobEvent {
        JobEvent::Completed {
            job_id: id.into(),
            at: T0 + time::Duration::seconds(90),
            final_status,
            summary,
            artifacts: vec![],
            message: None,
        }
    }

    #[tokio::test]
    async fn passes_the_status_sink_conformance_suite() {
        let sink = InMemoryStatusSink::new();
        crate::conformance::status_sink::run_all(Arc::new(sink.clone()), &sink).await;
    }

    #[tokio::test]
    async fn passes_the_suite_through_dyn_and_bounded() {
        let sink = InMemoryStatusSink::new().with_max_jobs(10_000);
        let dynamic: Arc<dyn StatusSink> = Arc::new(sink.clone());
        crate::conformance::status_sink::run_all(dynamic, &sink).await;
    }

    #[test]
    fn failure_reason_and_processing_time_land_in_metadata() {
        let sink = InMemoryStatusSink::new();
        sink.apply(created("a")).unwrap();
        sink.apply(completed(
            "a",
            JobStatus::Failed,
            Some(json!({"reason": "expired"})),
        ))
        .unwrap();
        let job = sink.get("a", false).unwrap().job;
        assert_eq!(job.metadata["error_message"], json!("expired"));
        assert_eq!(job.metadata["summary"], json!({"reason": "expired"}));
        assert_eq!(job.metadata["processing_time"], json!(90.0));
        assert_eq!(job.updated_at, T0 + time::Duration::seconds(90));
    }

    #[test]
    fn step_defaults_to_the_progress_step_and_progress_is_kept() {
        let sink = InMemoryStatusSink::new();
        sink.apply(created("a")).unwrap();
        sink.apply(JobEvent::Status {
            job_id: "a".into(),
            at: T0,
            status: JobStatus::Running,
            progress: Some(Progress {
                current_step: Some("parse".into()),
                percentage: Some(10.0),
                ..Progress::default()
            }),
            message: None,
            step: None,
        })
        .unwrap();
        // A status change without progress keeps the last report.
        sink.apply(status("a", JobStatus::NeedsInput)).unwrap();
        let view = sink.get("a", true).unwrap();
        let history = view.history.unwrap();
        assert_eq!(history[1].step.as_deref(), Some("parse"));
        assert_eq!(history[2].step, None);
        assert_eq!(view.job.progress.unwrap().percentage, Some(10.0));
    }

    #[test]
    fn refused_events_change_nothing() {
        let sink = InMemoryStatusSink::new();
        sink.apply(created("a")).unwrap();
        assert!(matches!(
            sink.apply(created("a")),
            Err(SinkError::InvalidStatus { .. })
        ));
        assert!(matches!(
            sink.apply(status("a", JobStatus::Done)),
            Err(SinkError::InvalidStatus { .. })
        ));
        assert!(matches!(
            sink.apply(completed("a", JobStatus::Running, None)),
            Err(SinkError::InvalidStatus { .. })
        ));
        let view = sink.get("a", true).unwrap();
        assert_eq!(view.job.status, JobStatus::Pending);
        assert_eq!(view.history.unwrap().len(), 1);
    }

    #[test]
    fn eviction_prefers_the_longest_finished_job() {
        let sink = InMemoryStatusSink::new().with_max_jobs(3);
        for id in ["a", "b", "c"] {
            sink.apply(created(id)).unwrap();
        }
        sink.apply(completed("c", JobStatus::Done, None)).unwrap();
        sink.apply(completed("b", JobStatus::Done, None)).unwrap();
        sink.apply(created("d")).unwrap();
        // `c` finished first, so it goes; the unfinished `a` stays.
        assert!(sink.get("c", false).is_none());
        assert!(sink.get("a", false).is_some());
        sink.apply(created("e")).unwrap();
        assert!(sink.get("b", false).is_none());
        // Nothing finished: the oldest job makes room.
        sink.apply(created("f")).unwrap();
        assert!(sink.get("a", false).is_none());
        assert_eq!(sink.len(), 3);
        let ids: Vec<_> = sink
            .list(None, None)
            .into_iter()
            .map(|job| job.job_id)
            .collect();
        assert_eq!(ids, ["f", "e", "d"]);
    }

    #[tokio::test]
    async fn jobs_api_jobs_never_evict_a_webhook_tasks_job() {
        let sink = InMemoryStatusSink::new().with_max_jobs(3);
        sink.apply(created("task-1")).unwrap();
        sink.apply(created("task-2")).unwrap();
        let request = || serde_json::from_value(json!({"input_data": {}})).unwrap();
        let api = sink.create(request(), T0).unwrap().job_id;
        // At the cap with no finished Jobs API job: refused, nothing lost.
        for _ in 0..5 {
            assert!(matches!(
                sink.create(request(), T0),
                Err(SinkError::TooManyJobs { limit: 3 })
            ));
        }
        let keyed = JobRegistry::apply_once(&sink, "api-2", "create k", vec![created("api-2")]);
        assert!(matches!(keyed.await, Err(SinkError::TooManyJobs { .. })));
        assert!(sink.get("task-1", false).is_some() && sink.get("task-2", false).is_some());
        // A finished Jobs API job makes room for the next one.
        sink.apply(completed(&api, JobStatus::Done, None)).unwrap();
        let next = sink.create(request(), T0).unwrap().job_id;
        assert!(sink.get(&api, false).is_none());
        assert!(sink.get(&next, false).is_some());
        // A finished webhook job is no room for a Jobs API job either.
        sink.apply(completed("task-1", JobStatus::Done, None))
            .unwrap();
        assert!(sink.create(request(), T0).is_err());
        assert!(sink.get("task-1", false).is_some());
        // Webhook jobs still make room as before.
        sink.apply(created("task-3")).unwrap();
        assert!(sink.get("task-1", false).is_none());
        assert_eq!(sink.len(), 3);
    }

    #[test]
    fn history_is_capped_to_the_newest_entries() {
        let sink = InMemoryStatusSink::new().with_max_history(2);
        sink.apply(created("a")).unwrap();
        for _ in 0..5 {
            sink.apply(status("a", JobStatus::Running)).unwrap();
        }
        sink.apply(completed("a", JobStatus::Done, None)).unwrap();
        let history = sink.get("a", true).unwrap().history.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].status, JobStatus::Done);
    }

    #[test]
    fn create_answers_like_the_jobs_api() {
        let sink = InMemoryStatusSink::new();
        let response = sink.create(JobCreateRequest::default(), T0).unwrap();
        assert_eq!(response.status, JobStatus::Pending);
        assert_eq!(response.created_at, T0);
        assert!(uuid::Uuid::parse_str(&response.job_id).is_ok());
        assert!(sink.get(&response.job_id, false).is_some());

        let named = JobCreateRequest {
            job_id: Some("task-7".into()),
            ..JobCreateRequest::default()
        };
        assert_eq!(sink.create(named.clone(), T0).unwrap().job_id, "task-7");
        assert!(matches!(
            sink.create(named, T0),
            Err(SinkError::InvalidStatus { .. })
        ));
    }

    #[test]
    fn pages_follow_the_cursor_newest_first() {
        let sink = InMemoryStatusSink::new();
        for i in 0..5 {
            sink.apply(created(&format!("j{i}"))).unwrap();
        }
        sink.apply(status("j2", JobStatus::Running)).unwrap();
        let ids = |page: &JobPage| -> Vec<String> {
            page.jobs.iter().map(|job| job.job_id.clone()).collect()
        };
        let first = sink.page(JobQuery {
            limit: 2,
            ..JobQuery::default()
        });
        assert_eq!(ids(&first), ["j4", "j3"]);
        let second = sink.page(JobQuery {
            limit: 2,
            cursor: first.next,
            ..JobQuery::default()
        });
        assert_eq!(ids(&second), ["j2", "j1"]);
        let last = sink.page(JobQuery {
            limit: 2,
            cursor: second.next,
            ..JobQuery::default()
        });
        assert_eq!(ids(&last), ["j0"]);
        assert_eq!(last.next, None);
        let pending = sink.page(JobQuery {
            status: Some(JobStatus::Pending),
            limit: 3,
            cursor: None,
        });
        assert_eq!(ids(&pending), ["j4", "j3", "j1"]);
        assert!(pending.next.is_some());
    }

    #[test]
    fn list_filters_by_status_and_limits() {
        let sink = InMemoryStatusSink::new();
        assert!(sink.is_empty());
        for i in 0..5 {
            sink.apply(created(&format!("j{i}"))).unwrap();
        }
        sink.apply(status("j1", JobStatus::Running)).unwrap();
        sink.apply(status("j3", JobStatus::Running)).unwrap();
        let running: Vec<_> = sink
            .list(Some(JobStatus::Running), None)
            .into_iter()
            .map(|job| job.job_id)
            .collect();
        assert_eq!(running, ["j3", "j1"]);
        assert_eq!(sink.list(None, Some(2)).len(), 2);
        assert_eq!(sink.list(Some(JobStatus::Done), None).len(), 0);
    }
}
