//! One claimed task's run: heartbeats, timeout, and the task's end.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::job_handle::JobHandle;
use super::lease::{LocalLease, Sent};
use super::stats::Counters;
use super::worker::{Shared, raised};
use super::{AgentError, AgentOutput, JobError};
use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;
use crate::task::{ClaimToken, Claimed, FailAction, StoreError, Task};

/// How a run ended.
enum Outcome {
    Finished(Result<AgentOutput, AgentError>),
    Panicked,
    TimedOut,
    /// The store said the claim is no longer held.
    LeaseLost,
    /// The worker's clock passed the last lease granted, minus the margin,
    /// with no heartbeat renewing it.
    LeaseExpired,
    Abandoned,
}

/// Aborts the agent's task when the run is given up.
struct AbortOnDrop(JoinHandle<Result<AgentOutput, AgentError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn run_claimed(
    shared: Arc<Shared>,
    claimed: Claimed,
    sent: Sent,
    _slot: OwnedSemaphorePermit,
    abandoned: watch::Receiver<bool>,
) {
    let Claimed { task, token } = claimed;
    let config = &shared.config;
    let lease = LocalLease::granted(sent, &task, config.lease, config.lease_margin);
    let counters = &shared.reporter.counters;
    Counters::bump(&counters.claimed);
    tracing::debug!(task_id = %task.id, room = %task.room, attempt = task.attempts, "claimed");
    let message = format!(
        "claimed by {} (attempt {} of {})",
        config.name,
        task.attempts,
        config.retry.max_attempts()
    );
    shared
        .reporter
        .status(&task, JobStatus::Running, None, Some(message))
        .await;
    let handle = JobHandle::new(
        task.clone(),
        token.clone(),
        Arc::clone(&shared.store),
        shared.reporter.clone(),
        config.input_poll,
    );
    let outcome = supervise(&shared, &task, &token, &handle, lease, abandoned).await;
    drop(handle);
    finish(&shared, &task, &token, outcome).await;
}

/// Runs the agent while heartbeating, until it ends, times out, loses its
/// lease (the store says so, or the worker's clock passes it) or is abandoned
/// at shutdown. When the claim is gone, the handle is revoked before the
/// agent is stopped, so nothing more is reported for it.
async fn supervise(
    shared: &Shared,
    task: &Task,
    token: &ClaimToken,
    handle: &JobHandle,
    mut lease: LocalLease,
    mut abandoned: watch::Receiver<bool>,
) -> Outcome {
    let config = &shared.config;
    let agent = Arc::clone(&shared.agent);
    let (agent_task, agent_handle) = (task.clone(), handle.clone());
    let mut run = AbortOnDrop(tokio::spawn(async move {
        agent.handle(agent_task, &agent_handle).await
    }));
    let start = Instant::now();
    let mut heartbeat = tokio::time::interval_at(start + config.heartbeat, config.heartbeat);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut deadline = start + config.timeout;
    let clock = Arc::clone(&shared.reporter.clock);
    let outcome = loop {
        tokio::select! {
            biased;
            joined = &mut run.0 => {
                break match joined {
                    Ok(result) => Outcome::Finished(result),
                    Err(err) => {
                        tracing::error!(task_id = %task.id, error = %err, "agent panicked");
                        Outcome::Panicked
                    }
                };
            }
            () = raised(&mut abandoned) => break Outcome::Abandoned,
            () = tokio::time::sleep_until(lease.instant()) => break Outcome::LeaseExpired,
            _ = heartbeat.tick() => {
                let sent = Sent::now(clock.as_ref());
                // A store that hangs instead of failing must not keep the
                // agent running past its lease either.
                let beat = tokio::select! {
                    beat = shared.store.heartbeat(&task.id, token, config.lease) => beat,
                    () = tokio::time::sleep_until(lease.instant()) => break Outcome::LeaseExpired,
                };
                match beat {
                    Ok(renewed) => {
                        lease = LocalLease::granted(sent, &renewed, config.lease, config.lease_margin);
                    }
                    Err(StoreError::Backend { store, source }) => {
                        Counters::bump(&shared.reporter.counters.store_errors);
                        tracing::warn!(task_id = %task.id, store, error = %source, "heartbeat failed");
                    }
                    Err(err) => {
                        tracing::warn!(task_id = %task.id, code = err.code(), "lease lost; stopping the agent");
                        break Outcome::LeaseLost;
                    }
                }
                if lease.passed(clock.as_ref()) {
                    break Outcome::LeaseExpired;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                // Waiting for input does not count against the timeout.
                let extended = start + config.timeout + handle.input_wait();
                if extended > Instant::now() {
                    deadline = extended;
                } else {
                    break Outcome::TimedOut;
                }
            }
        }
    };
    // Whatever ended the run, a claim past its local lease is not acted on:
    // another worker may hold the task by now.
    let outcome = match outcome {
        Outcome::LeaseLost => Outcome::LeaseLost,
        _ if lease.passed(clock.as_ref()) => Outcome::LeaseExpired,
        other => other,
    };
    if matches!(outcome, Outcome::LeaseLost | Outcome::LeaseExpired) {
        handle.revoke();
    }
    outcome
}

/// Turns a run's outcome into the task's next state and its job status.
async fn finish(shared: &Shared, task: &Task, token: &ClaimToken, outcome: Outcome) {
    let counters = &shared.reporter.counters;
    match outcome {
        Outcome::Finished(Ok(output)) => complete(shared, task, token, output).await,
        Outcome::Finished(Err(AgentError::Job(JobError::LeaseLost { .. })))
        | Outcome::LeaseLost => {
            Counters::bump(&counters.lease_lost);
            tracing::info!(task_id = %task.id, "claim lost; leaving the task to its new holder");
        }
        Outcome::LeaseExpired => {
            Counters::bump(&counters.lease_lost);
            tracing::warn!(
                task_id = %task.id,
                margin = ?shared.config.lease_margin,
                "lease ran out on the worker's clock without a heartbeat reaching the store; agent stopped, task left to the store"
            );
        }
        Outcome::Finished(Err(err)) => {
            let failure = Failure {
                retryable: err.is_retryable(),
                code: err.code(),
                error: err.to_string(),
            };
            fail(shared, task, token, failure).await;
        }
        Outcome::Panicked => {
            let failure = Failure {
                retryable: true,
                code: "agent_panicked",
                error: "agent panicked".to_owned(),
            };
            fail(shared, task, token, failure).await;
        }
        Outcome::TimedOut => {
            Counters::bump(&counters.timed_out);
            let failure = Failure {
                retryable: true,
                code: "timeout",
                error: format!("timed out after {:?}", shared.config.timeout),
            };
            fail(shared, task, token, failure).await;
        }
        Outcome::Abandoned => match shared.store.release(&task.id, token).await {
            Ok(_) => {
                Counters::bump(&counters.released);
                let message = "released unfinished at worker shutdown".to_owned();
                shared
                    .reporter
                    .status(task, JobStatus::Pending, None, Some(message))
                    .await;
            }
            Err(err) => store_refused(shared, task, "release", &err),
        },
    }
}

async fn complete(shared: &Shared, task: &Task, token: &ClaimToken, output: AgentOutput) {
    let AgentOutput {
        result,
        summary,
        artifacts,
        message,
    } = output;
    match shared.store.complete(&task.id, token, result.clone()).await {
        Ok(_) => {
            Counters::bump(&shared.reporter.counters.completed);
            shared
                .reporter
                .completed(
                    task,
                    JobStatus::Done,
                    summary.or(result),
                    artifacts,
                    message,
                )
                .await;
        }
        Err(err) => store_refused(shared, task, "complete", &err),
    }
}

struct Failure {
    retryable: bool,
    code: &'static str,
    error: String,
}

async fn fail(shared: &Shared, task: &Task, token: &ClaimToken, failure: Failure) {
    let counters = &shared.reporter.counters;
    let retry = &shared.config.retry;
    let attempts = task.attempts;
    let Failure {
        retryable,
        code,
        error,
    } = failure;
    if retryable && retry.allows_retry_after(attempts) {
        let after = retry.backoff(attempts);
        let action = FailAction::Retry { after };
        match shared.store.fail(&task.id, token, &error, action).await {
            Ok(_) => {
                Counters::bump(&counters.retried);
                let message =
                    format!("attempt {attempts} failed ({code}): {error}; retrying in {after:?}");
                shared
                    .reporter
                    .status(task, JobStatus::Pending, None, Some(message))
                    .await;
            }
            Err(err) => store_refused(shared, task, "fail", &err),
        }
    } else {
        match shared
            .store
            .fail(&task.id, token, &error, FailAction::Fail)
            .await
        {
            Ok(_) => {
                Counters::bump(&counters.failed);
                let summary = json!({"reason": code, "error": error, "attempts": attempts});
                shared
                    .reporter
                    .completed(
                        task,
                        JobStatus::Failed,
                        Some(summary),
                        Vec::new(),
                        Some(error),
                    )
                    .await;
            }
            Err(err) => store_refused(shared, task, "fail", &err),
        }
    }
}

/// A store call that ends a run failed: a lost claim is left to its new
/// holder; a backend failure leaves the task to its lease, after which it
/// runs again.
fn store_refused(shared: &Shared, task: &Task, operation: &'static str, err: &StoreError) {
    let counters = &shared.reporter.counters;
    if matches!(err, StoreError::Backend { .. }) {
        Counters::bump(&counters.store_errors);
        tracing::error!(task_id = %task.id, operation, error = %err, "task store failed; the task runs again when its lease ends");
    } else {
        Counters::bump(&counters.lease_lost);
        tracing::info!(task_id = %task.id, operation, code = err.code(), "claim no longer held; leaving the task alone");
    }
}
