//! Unit-testing agents without a worker or a store: a [`JobHandle`] that
//! records what the agent reports ([`JobHandle::recording`]) and a task to
//! hand it ([`task`]).
//!
//! ```
//! use hookroom::agent::testing::{self, JobRecord};
//! use hookroom::agent::{Agent, AgentOutput, JobHandle, agent_fn};
//! use hookroom::status::Progress;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let agent = agent_fn(|_task, job: JobHandle| async move {
//!     job.progress(Progress { percentage: Some(50.0), ..Progress::default() }).await;
//!     let answer = job.ask_input("label as bug?").await?;
//!     Ok(AgentOutput::new().with_result(answer))
//! });
//!
//! let task = testing::task("github", "issue opened", r#"{"number": 1}"#);
//! let (job, recorder) = JobHandle::recording(task.clone());
//! recorder.provide_input(serde_json::json!("yes"));
//! let output = agent.handle(task, &job).await.expect("the agent succeeds");
//!
//! assert_eq!(output.result, Some(serde_json::json!("yes")));
//! assert_eq!(recorder.prompts(), ["label as bug?"]);
//! assert!(matches!(
//!     recorder.records()[0],
//!     JobRecord::Status { progress: Some(_), .. }
//! ));
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Notify;

#[cfg(doc)]
use super::JobHandle;
use crate::lifecycle::JobStatus;
use crate::status::{Artifact, Progress};
use crate::task::{Payload, Task, TaskId};

/// A `RUNNING` task on its first attempt, as a worker hands it to an agent:
/// source `test`, a fresh random id (also its delivery id), created now.
pub fn task(
    room: impl Into<String>,
    title: impl Into<String>,
    payload: impl Into<Payload>,
) -> Task {
    let id = uuid::Uuid::new_v4().to_string();
    let now = OffsetDateTime::now_utc();
    Task {
        id: TaskId::from(id.as_str()),
        room: room.into(),
        title: title.into(),
        description: String::new(),
        priority: 1,
        status: JobStatus::Running,
        source: "test".to_owned(),
        source_event: "test".to_owned(),
        source_url: None,
        delivery_id: id,
        payload: payload.into(),
        required_capabilities: Vec::new(),
        created_at: now,
        updated_at: now,
        expires_at: None,
        not_before: None,
        claimed_by: Some("test".to_owned()),
        lease_expires_at: None,
        attempts: 1,
        input_request: None,
        input: None,
        result: None,
        failure: None,
    }
}

/// One thing an agent did through a recording [`JobHandle`], in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobRecord {
    /// [`JobHandle::progress`], [`message`](JobHandle::message) or
    /// [`report`](JobHandle::report).
    Status {
        /// The progress reported, if any.
        progress: Option<Progress>,
        /// The message reported, if any.
        message: Option<String>,
    },
    /// [`JobHandle::attach`].
    Artifact(Artifact),
    /// [`JobHandle::ask_input`] was called with this prompt.
    InputRequested {
        /// What the agent asked.
        prompt: String,
    },
    /// [`JobHandle::ask_input`] returned this input.
    InputReceived {
        /// The input the agent got.
        input: Value,
    },
}

/// The test side of a recording [`JobHandle`]: reads what the agent
/// reported and scripts the input it asks for. Made by
/// [`JobHandle::recording`]; cheap to clone (clones share the record).
#[derive(Debug, Clone)]
pub struct JobRecorder {
    pub(super) shared: Arc<Recording>,
}

/// What a recording handle and its recorder share.
#[derive(Debug, Default)]
pub(super) struct Recording {
    records: Mutex<Vec<JobRecord>>,
    inputs: Mutex<VecDeque<Value>>,
    changed: Notify,
    lost: AtomicBool,
}

impl Recording {
    pub(super) fn record(&self, record: JobRecord) {
        lock(&self.records).push(record);
    }

    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The next scripted input, waiting for one; `None` once the claim is
    /// lost.
    pub(super) async fn next_input(&self) -> Option<Value> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_lost() {
                return None;
            }
            if let Some(input) = lock(&self.inputs).pop_front() {
                return Some(input);
            }
            changed.await;
        }
    }
}

impl JobRecorder {
    /// Everything recorded so far, in order.
    pub fn records(&self) -> Vec<JobRecord> {
        lock(&self.shared.records).clone()
    }

    /// The progress reports so far, in order.
    pub fn progress(&self) -> Vec<Progress> {
        self.filter(|record| match record {
            JobRecord::Status { progress, .. } => progress.clone(),
            _ => None,
        })
    }

    /// The messages reported so far, in order.
    pub fn messages(&self) -> Vec<String> {
        self.filter(|record| match record {
            JobRecord::Status { message, .. } => message.clone(),
            _ => None,
        })
    }

    /// The artifacts attached so far, in order.
    pub fn artifacts(&self) -> Vec<Artifact> {
        self.filter(|record| match record {
            JobRecord::Artifact(artifact) => Some(artifact.clone()),
            _ => None,
        })
    }

    /// The prompts of every [`ask_input`](JobHandle::ask_input) so far.
    pub fn prompts(&self) -> Vec<String> {
        self.filter(|record| match record {
            JobRecord::InputRequested { prompt } => Some(prompt.clone()),
            _ => None,
        })
    }

    /// Queues the answer to the next [`ask_input`](JobHandle::ask_input)
    /// (answers are used in order). An `ask_input` with no queued answer
    /// waits for one, as it waits for a person with a worker.
    pub fn provide_input(&self, input: Value) {
        lock(&self.shared.inputs).push_back(input);
        self.shared.changed.notify_waiters();
    }

    /// Simulates the loss of the claim: from now on the handle reports
    /// [`claim_lost`](JobHandle::claim_lost), records nothing, and
    /// [`ask_input`](JobHandle::ask_input) (also one already waiting) fails
    /// with [`JobError::LeaseLost`](super::JobError::LeaseLost).
    pub fn lose_claim(&self) {
        self.shared.lost.store(true, Ordering::SeqCst);
        self.shared.changed.notify_waiters();
    }

    fn filter<T>(&self, pick: impl Fn(&JobRecord) -> Option<T>) -> Vec<T> {
        lock(&self.shared.records).iter().filter_map(pick).collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
