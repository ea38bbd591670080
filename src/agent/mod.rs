//! Agents: what claims a task and does the work, and the [`Worker`] runtime
//! that runs them.
//!
//! An [`Agent`] handles one task at a time through a [`JobHandle`] (progress,
//! artifacts, questions). A [`Worker`] joins rooms of a
//! [`TaskStore`](crate::task::TaskStore) and, for each claimed task:
//!
//! 1. reports `RUNNING` to the [`StatusSink`](crate::status::StatusSink);
//! 2. runs the agent under a timeout (default 30 s; time waiting for input
//!    does not count), heartbeating the lease meanwhile;
//! 3. on success, completes the task and reports `DONE` with the summary and
//!    artifacts;
//! 4. on a retryable failure or a timeout, puts the task back with
//!    exponential backoff ([`AttemptPolicy`], default 3 tries) and reports
//!    `PENDING`; on a permanent failure or the last try, fails it and reports
//!    `FAILED` with `{"reason": code, "error": .., "attempts": n}`;
//! 5. when a heartbeat finds the claim lost (the lease ran out and another
//!    worker holds the task), stops the agent and leaves the task alone: the
//!    stale claim token cannot complete it anyway;
//! 6. when its own clock passes the last lease the store granted, minus the
//!    [lease margin](WorkerBuilder::lease_margin), because heartbeats could
//!    not reach the store, stops the agent the same way and reports nothing
//!    more for that claim: once the lease is out another worker may claim
//!    the task, and only one of them may act on it.
//!
//! An agent can be unit-tested without a worker or a store through
//! [`JobHandle::recording`] (see [`testing`]).
//!
//! Its reaper expires pending tasks past their TTL and reports each `FAILED`
//! with summary `{"reason":"expired"}`. Shutdown is graceful: no new claims,
//! in-flight tasks get a grace period, the rest are released to `PENDING` for
//! another worker. Sink failures are logged and counted, never fatal: the
//! task store is the source of truth.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hookroom::agent::{AgentError, AgentOutput, Worker, WorkerBuildError, agent_fn};
//! use hookroom::status::{InMemoryStatusSink, Progress};
//! use hookroom::task::{Task, TaskStore};
//!
//! async fn serve(store: Arc<dyn TaskStore>, jobs: InMemoryStatusSink) -> Result<(), WorkerBuildError> {
//!     let agent = agent_fn(|task: Task, job| async move {
//!         job.progress(Progress { percentage: Some(50.0), ..Progress::default() }).await;
//!         let approval = job.ask_input("label this issue?").await?;
//!         if approval == serde_json::json!("no") {
//!             return Err(AgentError::permanent("declined"));
//!         }
//!         Ok(AgentOutput::new().with_result(serde_json::json!({"title": task.title})))
//!     })
//!     .with_name("tagger");
//!
//!     let worker = Worker::builder(Arc::new(agent), store)
//!         .status_sink(Arc::new(jobs))
//!         .rooms(["github", "huggingface"])
//!         .concurrency(4)
//!         .timeout(Duration::from_secs(30))
//!         .build()?;
//!     let stats = worker.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
//!     println!("completed {} tasks", stats.completed);
//!     Ok(())
//! }
//! ```

mod attempt;
mod builder;
mod fn_agent;
mod handler;
mod job_handle;
mod lease;
mod output;
mod report;
mod run;
mod stats;
#[cfg(test)]
mod test_helpers;
pub mod testing;
mod worker;

pub use attempt::AttemptPolicy;
pub use builder::{WorkerBuildError, WorkerBuilder};
pub use fn_agent::{FnAgent, agent_fn};
pub use handler::Agent;
pub use job_handle::{JobError, JobHandle};
pub use output::{AgentError, AgentOutput, BoxError};
pub use stats::WorkerStats;
pub use worker::{RunningWorker, Worker};
