//! [`Worker`]: the runtime that claims tasks from rooms and runs an agent on
//! them, with leases, heartbeats, timeouts, retries, expiry and graceful
//! shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, Semaphore, broadcast, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;
use tracing::Instrument;

use super::lease::Sent;
use super::report::Reporter;
use super::run::run_claimed;
use super::stats::Counters;
use super::{Agent, AttemptPolicy, WorkerStats};
use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;
use crate::task::{ClaimRequest, Claimed, TaskStore};

/// Claims tasks from rooms and runs an [`Agent`] on each.
///
/// Built with [`Worker::builder`]; started with [`spawn`](Self::spawn) or
/// [`run_until`](Self::run_until). See the [module docs](super) for the
/// whole life of a task.
#[derive(Debug)]
pub struct Worker {
    pub(super) shared: Arc<Shared>,
}

/// What every part of a running worker reads.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) agent: Arc<dyn Agent>,
    pub(super) store: Arc<dyn TaskStore>,
    pub(super) reporter: Reporter,
    pub(super) config: Config,
}

/// Checked settings; see [`WorkerBuilder`](super::WorkerBuilder).
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) rooms: Vec<String>,
    pub(super) name: String,
    pub(super) capabilities: Vec<String>,
    pub(super) concurrency: usize,
    pub(super) timeout: Duration,
    pub(super) lease: Duration,
    pub(super) lease_margin: Duration,
    pub(super) heartbeat: Duration,
    pub(super) poll_interval: Duration,
    pub(super) input_poll: Duration,
    pub(super) retry: AttemptPolicy,
    pub(super) grace: Duration,
    pub(super) reaper: Option<Duration>,
}

/// A worker running in the background; made by [`Worker::spawn`].
///
/// Dropping it detaches the worker, which then runs until the runtime shuts
/// down; call [`shutdown`](Self::shutdown) to stop it gracefully.
#[derive(Debug)]
pub struct RunningWorker {
    stop: watch::Sender<bool>,
    join: JoinHandle<WorkerStats>,
    counters: Arc<Counters>,
}

impl RunningWorker {
    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        self.counters.snapshot()
    }

    /// Asks the worker to stop claiming, without waiting.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the worker gracefully and waits: no new claims, in-flight tasks
    /// get the grace period to finish, the rest are released to `PENDING`.
    ///
    /// # Panics
    /// Resumes a panic of the worker's own loop (agent panics are caught and
    /// count as failed runs).
    pub async fn shutdown(self) -> WorkerStats {
        self.stop();
        match self.join.await {
            Ok(stats) => stats,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => self.counters.snapshot(),
        }
    }
}

impl Worker {
    /// What the worker did so far.
    pub fn stats(&self) -> WorkerStats {
        self.shared.reporter.counters.snapshot()
    }

    /// Runs the worker on a new tokio task.
    pub fn spawn(self) -> RunningWorker {
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::clone(&self.shared.reporter.counters);
        let join = tokio::spawn(run(self.shared, stopped));
        RunningWorker {
            stop,
            join,
            counters,
        }
    }

    /// Runs the worker until `signal` completes (e.g. `tokio::signal::ctrl_c`),
    /// then shuts down gracefully; returns what it did.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> WorkerStats {
        let (stop, stopped) = watch::channel(false);
        let worker = run(self.shared, stopped);
        tokio::pin!(worker);
        tokio::select! {
            stats = &mut worker => stats,
            () = signal => {
                stop.send_replace(true);
                worker.await
            }
        }
    }
}

/// Resolves once the flag is set; never when its sender is gone unset.
pub(super) async fn raised(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|raised| *raised).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> WorkerStats {
    let config = &shared.config;
    let wake = Arc::new(Notify::new());
    let mut watchers = JoinSet::new();
    for room in &config.rooms {
        if let Some(receiver) = shared.store.watch(room) {
            watchers.spawn(forward_wakeups(receiver, Arc::clone(&wake)));
        }
    }
    let reaper = config
        .reaper
        .map(|every| tokio::spawn(reap(Arc::clone(&shared), every, stop.clone())));

    let slots = Arc::new(Semaphore::new(config.concurrency));
    let (abandon, abandoned) = watch::channel(false);
    let mut in_flight = JoinSet::new();
    let mut next_room = 0;
    loop {
        while let Some(done) = in_flight.try_join_next() {
            log_join(done);
        }
        let permit = tokio::select! {
            biased;
            () = raised(&mut stop) => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        match claim_next(&shared, &mut next_room).await {
            Some((claimed, sent)) => {
                // One span per claim: every log line of the task's run names
                // it. Never the payload or the claim token.
                let span = tracing::info_span!(
                    "claim",
                    task_id = %claimed.task.id,
                    room = %claimed.task.room,
                    source = %claimed.task.source,
                    event = %claimed.task.source_event,
                    attempt = claimed.task.attempts,
                    agent = %config.name,
                );
                in_flight.spawn(
                    run_claimed(
                        Arc::clone(&shared),
                        claimed,
                        sent,
                        permit,
                        abandoned.clone(),
                    )
                    .instrument(span),
                );
            }
            None => {
                drop(permit);
                tokio::select! {
                    biased;
                    () = raised(&mut stop) => break,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(config.poll_interval) => {}
                }
            }
        }
    }

    watchers.abort_all();
    let drain = async {
        while let Some(done) = in_flight.join_next().await {
            log_join(done);
        }
    };
    if tokio::time::timeout(config.grace, drain).await.is_err() {
        tracing::info!(
            in_flight = in_flight.len(),
            "grace period over; releasing unfinished tasks"
        );
        abandon.send_replace(true);
        while let Some(done) = in_flight.join_next().await {
            log_join(done);
        }
    }
    if let Some(reaper) = reaper {
        // The reaper stops between rounds, so no expiry goes unreported.
        log_join(reaper.await);
    }
    shared.reporter.counters.snapshot()
}

fn log_join(done: Result<(), JoinError>) {
    if let Err(err) = done {
        tracing::error!(error = %err, "worker task ended abnormally");
    }
}

async fn forward_wakeups(
    mut receiver: broadcast::Receiver<crate::task::TaskId>,
    wake: Arc<Notify>,
) {
    loop {
        match receiver.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => wake.notify_one(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Claims from the rooms in turn, starting after the last room served;
/// returns the claim with the moment its request was sent.
async fn claim_next(shared: &Shared, next_room: &mut usize) -> Option<(Claimed, Sent)> {
    let config = &shared.config;
    let rooms = config.rooms.len();
    for offset in 0..rooms {
        let index = (*next_room + offset) % rooms;
        let request = ClaimRequest {
            room: config.rooms[index].clone(),
            agent: config.name.clone(),
            capabilities: config.capabilities.clone(),
            lease: config.lease,
        };
        let sent = Sent::now(shared.reporter.clock.as_ref());
        match shared.store.claim(&request).await {
            Ok(Some(claimed)) => {
                *next_room = (index + 1) % rooms;
                return Some((claimed, sent));
            }
            Ok(None) => {}
            Err(err) => {
                Counters::bump(&shared.reporter.counters.store_errors);
                tracing::warn!(room = %request.room, code = err.code(), error = %err, "claim failed");
            }
        }
    }
    None
}

/// Expires pending tasks past their TTL every `every`, reporting each one
/// `FAILED` with reason `expired`, until `stop` is raised.
async fn reap(shared: Arc<Shared>, every: Duration, mut stop: watch::Receiver<bool>) {
    let counters = &shared.reporter.counters;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = raised(&mut stop) => return,
            _ = tick.tick() => {}
        }
        match shared.store.expire_pending().await {
            Ok(expired) => {
                for task in expired {
                    Counters::bump(&counters.expired);
                    tracing::info!(task_id = %task.id, room = %task.room, "task expired unclaimed");
                    shared
                        .reporter
                        .completed(
                            &task,
                            JobStatus::Failed,
                            Some(json!({"reason": "expired"})),
                            Vec::new(),
                            Some("expired unclaimed".to_owned()),
                        )
                        .await;
                }
            }
            Err(err) => {
                Counters::bump(&counters.store_errors);
                tracing::warn!(code = err.code(), error = %err, "expiring pending tasks failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::test_helpers::noop_builder as builder;

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_stops_at_once() {
        let worker = builder().room("r").build().unwrap();
        let running = worker.spawn();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stats = running.shutdown().await;
        assert_eq!(stats, WorkerStats::default());
    }

    #[tokio::test(start_paused = true)]
    async fn run_until_returns_when_the_signal_fires() {
        let worker = builder().room("r").build().unwrap();
        let stats = worker
            .run_until(tokio::time::sleep(Duration::from_secs(3)))
            .await;
        assert_eq!(stats.claimed, 0);
    }
}
