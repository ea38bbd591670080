//! [`Worker`]: the runtime that claims tasks from rooms and runs an agent on
//! them, with leases, heartbeats, timeouts, retries, expiry and graceful
//! shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

use super::job_handle::JobHandle;
use super::report::Reporter;
use super::stats::Counters;
use super::{Agent, AgentError, AgentOutput, JobError, RetryPolicy, WorkerStats};
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::status::{JobStatus, NoopStatusSink, StatusSink};
use crate::task::{ClaimRequest, ClaimToken, Claimed, FailAction, StoreError, Task, TaskStore};

/// Claims tasks from rooms and runs an [`Agent`] on each.
///
/// Built with [`Worker::builder`]; started with [`spawn`](Self::spawn) or
/// [`run_until`](Self::run_until). See the [module docs](super) for the
/// whole life of a task.
#[derive(Debug)]
pub struct Worker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    agent: Arc<dyn Agent>,
    store: Arc<dyn TaskStore>,
    reporter: Reporter,
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    rooms: Vec<String>,
    name: String,
    capabilities: Vec<String>,
    concurrency: usize,
    timeout: Duration,
    lease: Duration,
    heartbeat: Duration,
    poll_interval: Duration,
    input_poll: Duration,
    retry: RetryPolicy,
    grace: Duration,
    reaper: Option<Duration>,
}

/// Settings of a [`Worker`]; every one has a default but the rooms.
///
/// | setting | default |
/// | --- | --- |
/// | [`sink`](Self::sink) | [`NoopStatusSink`] |
/// | [`clock`](Self::clock) (event timestamps) | [`SystemClock`] |
/// | [`name`](Self::name) (`claimed_by`) | the agent's name |
/// | [`concurrency`](Self::concurrency) | 1 task in flight |
/// | [`timeout`](Self::timeout) | 30 s (seed 001) |
/// | [`lease`](Self::lease) | 60 s |
/// | [`heartbeat_interval`](Self::heartbeat_interval) | a third of the lease |
/// | [`poll_interval`](Self::poll_interval) | 1 s (also the fallback when the store notifies) |
/// | [`input_poll_interval`](Self::input_poll_interval) | 1 s |
/// | [`retry`](Self::retry) | [`RetryPolicy::default`]: 3 tries, 1 s then 2 s |
/// | [`grace_period`](Self::grace_period) | 30 s |
/// | [`reaper_interval`](Self::reaper_interval) | every 30 s |
#[derive(Debug)]
pub struct WorkerBuilder {
    agent: Arc<dyn Agent>,
    store: Arc<dyn TaskStore>,
    sink: Arc<dyn StatusSink>,
    clock: Arc<dyn Clock>,
    rooms: Vec<String>,
    name: Option<String>,
    concurrency: usize,
    timeout: Duration,
    lease: Duration,
    heartbeat: Option<Duration>,
    poll_interval: Duration,
    input_poll: Duration,
    retry: RetryPolicy,
    grace: Duration,
    reaper: Option<Duration>,
}

/// Why a [`WorkerBuilder`] refused its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerBuildError {
    /// No room to claim from.
    NoRooms,
    /// Concurrency 0 would never run anything.
    ZeroConcurrency,
    /// A duration setting is zero.
    ZeroDuration {
        /// Which setting.
        setting: &'static str,
    },
    /// Heartbeats must come more often than the lease runs out.
    HeartbeatNotBelowLease {
        /// The heartbeat interval.
        heartbeat: Duration,
        /// The lease.
        lease: Duration,
    },
}

impl ErrorCode for WorkerBuildError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoRooms => "worker_no_rooms",
            Self::ZeroConcurrency => "worker_zero_concurrency",
            Self::ZeroDuration { .. } => "worker_zero_duration",
            Self::HeartbeatNotBelowLease { .. } => "worker_heartbeat_not_below_lease",
        }
    }
}

impl std::fmt::Display for WorkerBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRooms => f.write_str("a worker needs at least one room"),
            Self::ZeroConcurrency => f.write_str("worker concurrency must be at least 1"),
            Self::ZeroDuration { setting } => write!(f, "worker {setting} must not be zero"),
            Self::HeartbeatNotBelowLease { heartbeat, lease } => write!(
                f,
                "heartbeat interval {heartbeat:?} must be shorter than the lease {lease:?}"
            ),
        }
    }
}

impl std::error::Error for WorkerBuildError {}

impl WorkerBuilder {
    /// Sends job status to `sink`.
    pub fn sink(mut self, sink: impl StatusSink) -> Self {
        self.sink = Arc::new(sink);
        self
    }

    /// Stamps job events with `clock` (use the store's clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Adds a room to claim from.
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Adds several rooms; they are served in turn.
    pub fn rooms<I, S>(mut self, rooms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rooms.extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Name recorded as `claimed_by` (default: the agent's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Tasks in flight at once.
    pub fn concurrency(mut self, tasks: usize) -> Self {
        self.concurrency = tasks;
        self
    }

    /// Longest run of the agent on one task; time spent waiting for input
    /// does not count.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lease asked for on each claim and heartbeat.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often a running task's lease is extended (must be below the lease).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// How long to wait before claiming again when the rooms were empty.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How often [`JobHandle::ask_input`] checks for an answer.
    pub fn input_poll_interval(mut self, every: Duration) -> Self {
        self.input_poll = every;
        self
    }

    /// Tries and backoff of failed runs.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long in-flight tasks may run on after shutdown is asked for
    /// before they are released.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often to expire pending tasks past their TTL (`None`: never; let
    /// another worker or process do it).
    pub fn reaper_interval(mut self, every: Option<Duration>) -> Self {
        self.reaper = every;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A [`WorkerBuildError`] naming the first bad setting.
    pub fn build(self) -> Result<Worker, WorkerBuildError> {
        if self.rooms.is_empty() {
            return Err(WorkerBuildError::NoRooms);
        }
        if self.concurrency == 0 {
            return Err(WorkerBuildError::ZeroConcurrency);
        }
        let heartbeat = self.heartbeat.unwrap_or(self.lease / 3);
        for (setting, value) in [
            ("timeout", self.timeout),
            ("lease", self.lease),
            ("heartbeat interval", heartbeat),
            ("poll interval", self.poll_interval),
            ("input poll interval", self.input_poll),
            ("reaper interval", self.reaper.unwrap_or(Duration::MAX)),
        ] {
            if value.is_zero() {
                return Err(WorkerBuildError::ZeroDuration { setting });
            }
        }
        if heartbeat >= self.lease {
            return Err(WorkerBuildError::HeartbeatNotBelowLease {
                heartbeat,
                lease: self.lease,
            });
        }
        let config = Config {
            rooms: self.rooms,
            name: self.name.unwrap_or_else(|| self.agent.name().to_owned()),
            capabilities: self.agent.capabilities(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            lease: self.lease,
            heartbeat,
            poll_interval: self.poll_interval,
            input_poll: self.input_poll,
            retry: self.retry,
            grace: self.grace,
            reaper: self.reaper,
        };
        Ok(Worker {
            shared: Arc::new(Shared {
                agent: self.agent,
                store: self.store,
                reporter: Reporter {
                    sink: self.sink,
                    clock: self.clock,
                    counters: Arc::default(),
                },
                config,
            }),
        })
    }
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
    /// A builder for a worker running `agent` on tasks of `store`.
    pub fn builder(agent: impl Agent, store: Arc<dyn TaskStore>) -> WorkerBuilder {
        WorkerBuilder {
            agent: Arc::new(agent),
            store,
            sink: Arc::new(NoopStatusSink),
            clock: Arc::new(SystemClock),
            rooms: Vec::new(),
            name: None,
            concurrency: 1,
            timeout: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            heartbeat: None,
            poll_interval: Duration::from_secs(1),
            input_poll: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            grace: Duration::from_secs(30),
            reaper: Some(Duration::from_secs(30)),
        }
    }

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
async fn raised(flag: &mut watch::Receiver<bool>) {
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
            Some(claimed) => {
                in_flight.spawn(run_claimed(
                    Arc::clone(&shared),
                    claimed,
                    permit,
                    abandoned.clone(),
                ));
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

/// Claims from the rooms in turn, starting after the last room served.
async fn claim_next(shared: &Shared, next_room: &mut usize) -> Option<Claimed> {
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
        match shared.store.claim(&request).await {
            Ok(Some(claimed)) => {
                *next_room = (index + 1) % rooms;
                return Some(claimed);
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

/// How a run ended.
enum Outcome {
    Finished(Result<AgentOutput, AgentError>),
    Panicked,
    TimedOut,
    LeaseLost,
    Abandoned,
}

/// Aborts the agent's task when the run is given up.
struct AbortOnDrop(JoinHandle<Result<AgentOutput, AgentError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_claimed(
    shared: Arc<Shared>,
    claimed: Claimed,
    _slot: OwnedSemaphorePermit,
    abandoned: watch::Receiver<bool>,
) {
    let Claimed { task, token } = claimed;
    let config = &shared.config;
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
    let outcome = supervise(&shared, &task, &token, &handle, abandoned).await;
    drop(handle);
    finish(&shared, &task, &token, outcome).await;
}

/// Runs the agent while heartbeating, until it ends, times out, loses its
/// lease or is abandoned at shutdown.
async fn supervise(
    shared: &Shared,
    task: &Task,
    token: &ClaimToken,
    handle: &JobHandle,
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
    loop {
        tokio::select! {
            biased;
            joined = &mut run.0 => {
                return match joined {
                    Ok(result) => Outcome::Finished(result),
                    Err(err) => {
                        tracing::error!(task_id = %task.id, error = %err, "agent panicked");
                        Outcome::Panicked
                    }
                };
            }
            () = raised(&mut abandoned) => return Outcome::Abandoned,
            _ = heartbeat.tick() => {
                match shared.store.heartbeat(&task.id, token, config.lease).await {
                    Ok(_) => {}
                    Err(StoreError::Backend { store, source }) => {
                        Counters::bump(&shared.reporter.counters.store_errors);
                        tracing::warn!(task_id = %task.id, store, error = %source, "heartbeat failed");
                    }
                    Err(err) => {
                        tracing::warn!(task_id = %task.id, code = err.code(), "lease lost; stopping the agent");
                        return Outcome::LeaseLost;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                // Waiting for input does not count against the timeout.
                let extended = start + config.timeout + handle.input_wait();
                if extended > Instant::now() {
                    deadline = extended;
                } else {
                    return Outcome::TimedOut;
                }
            }
        }
    }
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
    use crate::agent::agent_fn;
    use crate::task::{Inserted, NewTask, TaskId, TaskQuery};

    /// A store that has nothing: enough to check the builder.
    #[derive(Debug)]
    struct EmptyStore;

    #[async_trait::async_trait]
    impl TaskStore for EmptyStore {
        async fn insert(&self, _: NewTask) -> Result<Inserted, StoreError> {
            unreachable!("not used")
        }
        async fn get(&self, _: &TaskId) -> Result<Option<Task>, StoreError> {
            Ok(None)
        }
        async fn list(&self, _: &TaskQuery) -> Result<Vec<Task>, StoreError> {
            Ok(Vec::new())
        }
        async fn claim(&self, _: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
            Ok(None)
        }
        async fn heartbeat(
            &self,
            id: &TaskId,
            _: &ClaimToken,
            _: Duration,
        ) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn complete(
            &self,
            id: &TaskId,
            _: &ClaimToken,
            _: Option<serde_json::Value>,
        ) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn fail(
            &self,
            id: &TaskId,
            _: &ClaimToken,
            _: &str,
            _: FailAction,
        ) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn release(&self, id: &TaskId, _: &ClaimToken) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn request_input(
            &self,
            id: &TaskId,
            _: &ClaimToken,
            _: &str,
        ) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn provide_input(
            &self,
            id: &TaskId,
            _: serde_json::Value,
        ) -> Result<Task, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn take_input(
            &self,
            id: &TaskId,
            _: &ClaimToken,
        ) -> Result<Option<serde_json::Value>, StoreError> {
            Err(StoreError::NotFound { id: id.clone() })
        }
        async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn builder() -> WorkerBuilder {
        let agent = agent_fn(|_, _| async { Ok(AgentOutput::new()) }).with_name("noop");
        Worker::builder(agent, Arc::new(EmptyStore))
    }

    #[test]
    fn builder_rejects_bad_settings() {
        assert_eq!(builder().build().unwrap_err(), WorkerBuildError::NoRooms);
        let err = builder().room("r").concurrency(0).build().unwrap_err();
        assert_eq!(err, WorkerBuildError::ZeroConcurrency);
        let err = builder()
            .room("r")
            .lease(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(10))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            WorkerBuildError::HeartbeatNotBelowLease { .. }
        ));
        assert_eq!(err.code(), "worker_heartbeat_not_below_lease");
        let err = builder()
            .room("r")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err, WorkerBuildError::ZeroDuration { setting: "timeout" });
        assert_eq!(err.to_string(), "worker timeout must not be zero");
    }

    #[test]
    fn every_build_error_has_a_code_and_message() {
        let errors = [
            WorkerBuildError::NoRooms,
            WorkerBuildError::ZeroConcurrency,
            WorkerBuildError::ZeroDuration { setting: "lease" },
            WorkerBuildError::HeartbeatNotBelowLease {
                heartbeat: Duration::from_secs(2),
                lease: Duration::from_secs(1),
            },
        ];
        for err in errors {
            assert!(err.code().starts_with("worker_"));
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn defaults_follow_the_seed() {
        let worker = builder().room("r").build().unwrap();
        let config = &worker.shared.config;
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.retry.max_attempts(), 3);
        assert_eq!(config.heartbeat, Duration::from_secs(20));
        assert_eq!(config.name, "noop");
        assert_eq!(worker.stats(), WorkerStats::default());
    }

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
