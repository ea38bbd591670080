//! [`JobHandle`]: an agent's line to its task's job status and claim.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::report::Reporter;
use super::testing::{JobRecord, JobRecorder, Recording};
use crate::error_code::ErrorCode;
use crate::status::{Artifact, JobEvent, JobStatus, Progress};
use crate::task::{ClaimToken, StoreError, Task, TaskId, TaskStore};

/// What an agent can do about its running job: report progress, attach
/// artifacts, and ask for input.
///
/// Cheap to clone (clones share the claim). Status reports never fail: a
/// sink that refuses an event is logged and counted in the worker's
/// [`WorkerStats::sink_errors`](super::WorkerStats::sink_errors), because the
/// task store, not the sink, is the source of truth.
///
/// A [`Worker`](super::Worker) makes one per claimed task. Once it gives the
/// claim up (lost to another worker, or its lease ran out while the store
/// was unreachable) the handle reports nothing more and
/// [`claim_lost`](Self::claim_lost) turns true. To unit-test an agent without
/// a worker or a store, use [`JobHandle::recording`].
#[derive(Clone)]
pub struct JobHandle {
    inner: Arc<Inner>,
}

struct Inner {
    task: Task,
    backend: Backend,
    revoked: AtomicBool,
    input_wait: Mutex<InputWait>,
}

/// Where a handle's calls go.
enum Backend {
    /// A worker's claim: the task store and the status sink.
    Worker {
        token: ClaimToken,
        store: Arc<dyn TaskStore>,
        reporter: Reporter,
        input_poll: Duration,
    },
    /// A test double's record.
    Recording(Arc<Recording>),
}

/// Time spent waiting for input, which does not count against the run's
/// timeout.
#[derive(Debug, Default)]
struct InputWait {
    since: Option<Instant>,
    total: Duration,
}

/// Why a [`JobHandle`] call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobError {
    /// The claim was lost (the lease ran out and another worker holds the
    /// task, or it was released): stop working on it.
    LeaseLost {
        /// The task.
        id: TaskId,
    },
    /// The task store failed.
    Store(StoreError),
}

impl From<StoreError> for JobError {
    /// A token that no longer holds the task, or a task someone else already
    /// finished, both mean the claim is gone.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotHeld { id } => Self::LeaseLost { id },
            StoreError::InvalidTransition { id, from, .. } if from.is_terminal() => {
                Self::LeaseLost { id }
            }
            other => Self::Store(other),
        }
    }
}

impl ErrorCode for JobError {
    fn code(&self) -> &'static str {
        match self {
            Self::LeaseLost { .. } => "lease_lost",
            Self::Store(err) => err.code(),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LeaseLost { id } => write!(f, "claim on task `{id}` was lost"),
            Self::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::LeaseLost { .. } => None,
            Self::Store(err) => Some(err),
        }
    }
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The claim token is a capability over the task: never printed.
        f.debug_struct("JobHandle")
            .field("task_id", &self.inner.task.id)
            .field("attempt", &self.inner.task.attempts)
            .finish_non_exhaustive()
    }
}

impl JobHandle {
    pub(crate) fn new(
        task: Task,
        token: ClaimToken,
        store: Arc<dyn TaskStore>,
        reporter: Reporter,
        input_poll: Duration,
    ) -> Self {
        Self::with_backend(
            task,
            Backend::Worker {
                token,
                store,
                reporter,
                input_poll,
            },
        )
    }

    /// A handle for unit-testing an agent without a worker or a store: it
    /// records every report, artifact and question in order, and answers
    /// [`ask_input`](Self::ask_input) with what the returned
    /// [`JobRecorder`] provides. See [`testing`](super::testing) for an
    /// example.
    pub fn recording(task: Task) -> (Self, JobRecorder) {
        let shared = Arc::new(Recording::default());
        let handle = Self::with_backend(task, Backend::Recording(Arc::clone(&shared)));
        (handle, JobRecorder { shared })
    }

    fn with_backend(task: Task, backend: Backend) -> Self {
        Self {
            inner: Arc::new(Inner {
                task,
                backend,
                revoked: AtomicBool::new(false),
                input_wait: Mutex::new(InputWait::default()),
            }),
        }
    }

    /// Whether the claim is gone: the worker lost it, or gave it up when its
    /// lease ran out while the store could not be reached. The handle then
    /// reports nothing and [`ask_input`](Self::ask_input) fails; an agent
    /// that does work outside its own future (spawned tasks) should stop.
    pub fn claim_lost(&self) -> bool {
        self.inner.revoked.load(Ordering::SeqCst)
            || matches!(&self.inner.backend, Backend::Recording(recording) if recording.is_lost())
    }

    /// Gives the claim up: nothing more is reported through this handle.
    pub(crate) fn revoke(&self) {
        self.inner.revoked.store(true, Ordering::SeqCst);
    }

    /// The task's id (also the job id).
    pub fn task_id(&self) -> &TaskId {
        &self.inner.task.id
    }

    /// The room the task was claimed from.
    pub fn room(&self) -> &str {
        &self.inner.task.room
    }

    /// Which try this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.task.attempts
    }

    /// Reports progress: the job stays `RUNNING` with this progress.
    /// Progress out of the protocol's range ([`Progress::validate`]) is
    /// refused: logged, and not reported.
    pub async fn progress(&self, progress: Progress) {
        self.report(Some(progress), None).await;
    }

    /// Reports a message: the job stays `RUNNING`, the message goes into its
    /// history.
    pub async fn message(&self, message: impl Into<String>) {
        self.report(None, Some(message.into())).await;
    }

    /// Reports progress and a message at once. Progress out of the
    /// protocol's range ([`Progress::validate`]) is refused: logged, and left
    /// out; the message is still reported.
    pub async fn report(&self, progress: Option<Progress>, message: Option<String>) {
        if self.claim_lost() {
            return;
        }
        let progress = progress.filter(|progress| match progress.validate() {
            Ok(()) => true,
            Err(invalid) => {
                tracing::warn!(task_id = %self.inner.task.id, error = %invalid, "job progress refused");
                false
            }
        });
        if progress.is_none() && message.is_none() {
            return;
        }
        let inner = &self.inner;
        match &inner.backend {
            Backend::Worker { reporter, .. } => {
                reporter
                    .status(&inner.task, JobStatus::Running, progress, message)
                    .await;
            }
            Backend::Recording(recording) => {
                recording.record(JobRecord::Status { progress, message });
            }
        }
    }

    /// Attaches an artifact to the running job.
    pub async fn attach(&self, artifact: Artifact) {
        if self.claim_lost() {
            return;
        }
        match &self.inner.backend {
            Backend::Worker { reporter, .. } => {
                reporter
                    .publish(JobEvent::Artifact {
                        job_id: self.inner.task.id.to_string(),
                        at: reporter.now(),
                        artifact,
                    })
                    .await;
            }
            Backend::Recording(recording) => recording.record(JobRecord::Artifact(artifact)),
        }
    }

    /// Asks for input and waits for it.
    ///
    /// The task goes to `NEEDS_INPUT` in the store (recording `prompt`) and
    /// in the status sink; whoever answers calls
    /// [`TaskStore::provide_input`]. The handle polls
    /// [`TaskStore::take_input`] until the input arrives, then reports
    /// `RUNNING` again and returns it. The worker keeps heartbeating the
    /// claim meanwhile, and the wait does not count against the run's
    /// timeout. A [recording](Self::recording) handle records the prompt and
    /// answers with the recorder's next provided input.
    ///
    /// # Errors
    /// [`JobError::LeaseLost`] when the claim is gone; [`JobError::Store`]
    /// when the store refuses the request. Backend failures while polling
    /// are logged and polled again.
    pub async fn ask_input(&self, prompt: &str) -> Result<Value, JobError> {
        let inner = &self.inner;
        let lost = || JobError::LeaseLost {
            id: inner.task.id.clone(),
        };
        if self.claim_lost() {
            return Err(lost());
        }
        match &inner.backend {
            Backend::Worker {
                token,
                store,
                reporter,
                input_poll,
            } => {
                let id = &inner.task.id;
                store
                    .request_input(id, token, prompt)
                    .await
                    .map_err(JobError::from)?;
                let _waiting = WaitGuard::start(self);
                if self.claim_lost() {
                    return Err(lost());
                }
                reporter
                    .status(
                        &inner.task,
                        JobStatus::NeedsInput,
                        None,
                        Some(prompt.to_owned()),
                    )
                    .await;
                loop {
                    if self.claim_lost() {
                        return Err(lost());
                    }
                    match store.take_input(id, token).await {
                        Ok(Some(input)) => {
                            if self.claim_lost() {
                                return Err(lost());
                            }
                            reporter
                                .status(
                                    &inner.task,
                                    JobStatus::Running,
                                    None,
                                    Some("input received".to_owned()),
                                )
                                .await;
                            return Ok(input);
                        }
                        Ok(None) => {}
                        Err(StoreError::Backend { store, source }) => {
                            tracing::warn!(task_id = %id, store, error = %source, "polling for input failed");
                        }
                        Err(err) => return Err(err.into()),
                    }
                    tokio::time::sleep(*input_poll).await;
                }
            }
            Backend::Recording(recording) => {
                recording.record(JobRecord::InputRequested {
                    prompt: prompt.to_owned(),
                });
                let _waiting = WaitGuard::start(self);
                let input = recording.next_input().await.ok_or_else(lost)?;
                recording.record(JobRecord::InputReceived {
                    input: input.clone(),
                });
                Ok(input)
            }
        }
    }

    /// Time spent waiting for input so far, including a wait in progress.
    pub(crate) fn input_wait(&self) -> Duration {
        let wait = self.lock_wait();
        wait.total + wait.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    fn lock_wait(&self) -> std::sync::MutexGuard<'_, InputWait> {
        self.inner
            .input_wait
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the handle as waiting for input until dropped (also when the wait
/// is cancelled).
struct WaitGuard<'a> {
    handle: &'a JobHandle,
}

impl<'a> WaitGuard<'a> {
    fn start(handle: &'a JobHandle) -> Self {
        handle.lock_wait().since = Some(Instant::now());
        Self { handle }
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let mut wait = self.handle.lock_wait();
        if let Some(since) = wait.since.take() {
            wait.total += since.elapsed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::test_helpers::EmptyStore;
    use crate::agent::testing;
    use crate::clock::SystemClock;
    use crate::status::InMemoryStatusSink;
    use serde_json::json;

    fn percent(p: f64) -> Progress {
        Progress {
            percentage: Some(p),
            ..Progress::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_recording_handle_records_everything_in_order() {
        let task = testing::task("r", "t", "{}");
        let (job, recorder) = JobHandle::recording(task.clone());
        assert_eq!(job.task_id(), &task.id);
        assert_eq!((job.room(), job.attempt()), ("r", 1));
        recorder.provide_input(json!("yes"));
        job.progress(percent(10.0)).await;
        job.message("reading").await;
        let artifact = Artifact {
            name: "a.json".into(),
            ..Artifact::default()
        };
        job.attach(artifact.clone()).await;
        assert_eq!(job.ask_input("ok?").await.unwrap(), json!("yes"));
        job.report(Some(percent(90.0)), Some("done".into())).await;
        assert_eq!(
            recorder.records(),
            [
                JobRecord::Status {
                    progress: Some(percent(10.0)),
                    message: None
                },
                JobRecord::Status {
                    progress: None,
                    message: Some("reading".into())
                },
                JobRecord::Artifact(artifact.clone()),
                JobRecord::InputRequested {
                    prompt: "ok?".into()
                },
                JobRecord::InputReceived {
                    input: json!("yes")
                },
                JobRecord::Status {
                    progress: Some(percent(90.0)),
                    message: Some("done".into())
                },
            ]
        );
        assert_eq!(recorder.progress(), [percent(10.0), percent(90.0)]);
        assert_eq!(recorder.messages(), ["reading", "done"]);
        assert_eq!(recorder.artifacts(), [artifact]);
        assert_eq!(recorder.prompts(), ["ok?"]);
        assert!(!job.claim_lost());
    }

    #[tokio::test(start_paused = true)]
    async fn progress_out_of_range_is_refused_and_the_message_kept() {
        let (job, recorder) = JobHandle::recording(testing::task("r", "t", "{}"));
        job.progress(percent(140.0)).await;
        let steps = Progress {
            completed_steps: Some(4),
            total_steps: Some(3),
            ..Progress::default()
        };
        job.report(Some(steps), Some("step 4".into())).await;
        job.progress(percent(100.0)).await;
        assert_eq!(
            recorder.records(),
            [
                JobRecord::Status {
                    progress: None,
                    message: Some("step 4".into())
                },
                JobRecord::Status {
                    progress: Some(percent(100.0)),
                    message: None
                },
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_recording_ask_waits_for_input_and_the_wait_is_counted() {
        let (job, recorder) = JobHandle::recording(testing::task("r", "t", "{}"));
        let asking = tokio::spawn({
            let job = job.clone();
            async move { job.ask_input("which label?").await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!asking.is_finished(), "no answer yet");
        assert_eq!(recorder.prompts(), ["which label?"]);
        recorder.provide_input(json!("bug"));
        assert_eq!(asking.await.unwrap().unwrap(), json!("bug"));
        assert!(job.input_wait() >= Duration::from_secs(5));
        // Answers queue up in order.
        recorder.provide_input(json!(1));
        recorder.provide_input(json!(2));
        assert_eq!(job.ask_input("a").await.unwrap(), json!(1));
        assert_eq!(job.ask_input("b").await.unwrap(), json!(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_recording_claim_fails_asks_and_records_nothing() {
        let (job, recorder) = JobHandle::recording(testing::task("r", "t", "{}"));
        let asking = tokio::spawn({
            let job = job.clone();
            async move { job.ask_input("still there?").await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        recorder.lose_claim();
        let err = asking.await.unwrap().unwrap_err();
        assert!(matches!(err, JobError::LeaseLost { .. }), "{err:?}");
        assert!(job.claim_lost());
        job.message("after the loss").await;
        job.attach(Artifact::default()).await;
        recorder.provide_input(json!("late"));
        assert!(matches!(
            job.ask_input("again?").await,
            Err(JobError::LeaseLost { .. })
        ));
        assert_eq!(recorder.prompts(), ["still there?"]);
        assert!(recorder.messages().is_empty());
        assert!(recorder.artifacts().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_worker_handle_reports_nothing() {
        let sink = InMemoryStatusSink::new();
        let reporter = Reporter {
            sink: Arc::new(sink.clone()),
            clock: Arc::new(SystemClock),
            counters: Arc::default(),
        };
        let task = testing::task("r", "t", "{}");
        let job = JobHandle::new(
            task.clone(),
            ClaimToken::new("token".to_owned()),
            Arc::new(EmptyStore),
            reporter,
            Duration::from_secs(1),
        );
        job.message("before").await;
        assert!(sink.get(task.id.as_str(), false).is_some(), "reported");
        job.revoke();
        assert!(job.claim_lost());
        job.message("after").await;
        job.attach(Artifact::default()).await;
        let history = sink.get(task.id.as_str(), true).unwrap().history.unwrap();
        assert!(
            !history
                .iter()
                .any(|entry| entry.message.as_deref() == Some("after")),
            "{history:?}"
        );
        assert!(
            sink.get(task.id.as_str(), false)
                .unwrap()
                .job
                .artifacts
                .is_empty()
        );
        // Refused before the store is asked (the empty store would answer
        // `task_not_found`).
        let err = job.ask_input("?").await.unwrap_err();
        assert!(matches!(err, JobError::LeaseLost { .. }), "{err:?}");
    }

    #[test]
    fn not_held_means_the_lease_is_lost() {
        let err = JobError::from(StoreError::NotHeld {
            id: TaskId::from("t"),
        });
        assert!(matches!(err, JobError::LeaseLost { .. }));
        assert_eq!(err.code(), "lease_lost");
        assert_eq!(err.to_string(), "claim on task `t` was lost");
        let finished = JobError::from(StoreError::InvalidTransition {
            id: TaskId::from("t"),
            from: crate::status::JobStatus::Done,
            operation: crate::task::TaskOperation::RequestInput,
        });
        assert!(matches!(finished, JobError::LeaseLost { .. }));
        let refused = JobError::from(StoreError::InvalidTransition {
            id: TaskId::from("t"),
            from: crate::status::JobStatus::NeedsInput,
            operation: crate::task::TaskOperation::RequestInput,
        });
        assert!(matches!(refused, JobError::Store(_)));
        let err = JobError::from(StoreError::NotFound {
            id: TaskId::from("t"),
        });
        assert_eq!(err.code(), "task_not_found");
        assert!(std::error::Error::source(&err).is_some());
    }
}
