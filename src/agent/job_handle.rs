//! [`JobHandle`]: an agent's line to its task's job status and claim.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::report::Reporter;
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
#[derive(Clone)]
pub struct JobHandle {
    inner: Arc<Inner>,
}

struct Inner {
    task: Task,
    token: ClaimToken,
    store: Arc<dyn TaskStore>,
    reporter: Reporter,
    input_poll: Duration,
    input_wait: Mutex<InputWait>,
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
        Self {
            inner: Arc::new(Inner {
                task,
                token,
                store,
                reporter,
                input_poll,
                input_wait: Mutex::new(InputWait::default()),
            }),
        }
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
    pub async fn progress(&self, progress: Progress) {
        self.report(Some(progress), None).await;
    }

    /// Reports a message: the job stays `RUNNING`, the message goes into its
    /// history.
    pub async fn message(&self, message: impl Into<String>) {
        self.report(None, Some(message.into())).await;
    }

    /// Reports progress and a message at once.
    pub async fn report(&self, progress: Option<Progress>, message: Option<String>) {
        let inner = &self.inner;
        inner
            .reporter
            .status(&inner.task, JobStatus::Running, progress, message)
            .await;
    }

    /// Attaches an artifact to the running job.
    pub async fn attach(&self, artifact: Artifact) {
        let reporter = &self.inner.reporter;
        reporter
            .publish(JobEvent::Artifact {
                job_id: self.inner.task.id.to_string(),
                at: reporter.now(),
                artifact,
            })
            .await;
    }

    /// Asks for input and waits for it.
    ///
    /// The task goes to `NEEDS_INPUT` in the store (recording `prompt`) and
    /// in the status sink; whoever answers calls
    /// [`TaskStore::provide_input`]. The handle polls
    /// [`TaskStore::take_input`] until the input arrives, then reports
    /// `RUNNING` again and returns it. The worker keeps heartbeating the
    /// claim meanwhile, and the wait does not count against the run's
    /// timeout.
    ///
    /// # Errors
    /// [`JobError::LeaseLost`] when the claim is gone; [`JobError::Store`]
    /// when the store refuses the request. Backend failures while polling
    /// are logged and polled again.
    pub async fn ask_input(&self, prompt: &str) -> Result<Value, JobError> {
        let inner = &self.inner;
        let id = &inner.task.id;
        inner
            .store
            .request_input(id, &inner.token, prompt)
            .await
            .map_err(JobError::from)?;
        let _waiting = WaitGuard::start(self);
        inner
            .reporter
            .status(
                &inner.task,
                JobStatus::NeedsInput,
                None,
                Some(prompt.to_owned()),
            )
            .await;
        loop {
            match inner.store.take_input(id, &inner.token).await {
                Ok(Some(input)) => {
                    inner
                        .reporter
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
            tokio::time::sleep(inner.input_poll).await;
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
            operation: crate::task::Operation::RequestInput,
        });
        assert!(matches!(finished, JobError::LeaseLost { .. }));
        let refused = JobError::from(StoreError::InvalidTransition {
            id: TaskId::from("t"),
            from: crate::status::JobStatus::NeedsInput,
            operation: crate::task::Operation::RequestInput,
        });
        assert!(matches!(refused, JobError::Store(_)));
        let err = JobError::from(StoreError::NotFound {
            id: TaskId::from("t"),
        });
        assert_eq!(err.code(), "task_not_found");
        assert!(std::error::Error::source(&err).is_some());
    }
}
