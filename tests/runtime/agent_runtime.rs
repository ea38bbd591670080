//! Worker runtime tests: timeout, retry, lease loss (also during a store
//! outage), input, shutdown, expiry.
//!
//! Time is tokio's paused clock; the task store reads a [`TestClock`] that
//! follows it, so leases, backoff and TTLs move with the runtime's timers and
//! no test sleeps for real. [`TestClock::jump`] moves only the store's time,
//! which is how a stalled worker looks from the store.
#![cfg(feature = "memory")]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookroom::agent::{AgentError, AgentOutput, AttemptPolicy, JobHandle, Worker, agent_fn};
use hookroom::clock::{Clock, ManualClock, SystemClock};
use hookroom::status::{
    Artifact, InMemoryStatusSink, JobEvent, JobStatus, Progress, SinkError, StatusSink,
};
use hookroom::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;

// Built like `InMemoryTaskStore::with_clock(Arc<dyn Clock>)`, so either store drives these tests.
use hookroom::task::InMemoryTaskStore as Store;

/// Store time = a manual offset plus tokio's (paused) elapsed time.
#[derive(Debug, Clone)]
struct TestClock {
    origin: Instant,
    offset: ManualClock,
}

impl TestClock {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            offset: ManualClock::at_unix(1_700_000_000),
        }
    }

    /// Moves the store's time without firing any tokio timer.
    fn jump(&self, by: Duration) {
        self.offset.advance(by);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        self.offset.now() + self.origin.elapsed()
    }
}

struct Fixture {
    clock: TestClock,
    store: Arc<Store>,
    sink: InMemoryStatusSink,
}

impl Fixture {
    fn new() -> Self {
        let clock = TestClock::new();
        Self {
            store: Arc::new(Store::with_clock(Arc::new(clock.clone()))),
            sink: InMemoryStatusSink::new(),
            clock,
        }
    }

    fn dyn_store(&self) -> Arc<dyn TaskStore> {
        self.store.clone()
    }

    /// Inserts a task and reports its job `PENDING`, as the ingest service does.
    async fn insert(&self, room: &str, title: &str, ttl: Option<Duration>) -> TaskId {
        let inserted = self
            .store
            .insert(NewTask {
                room: room.into(),
                title: title.into(),
                description: String::new(),
                priority: 2,
                source: "test".into(),
                source_event: "test.event".into(),
                source_url: None,
                delivery_id: uuid::Uuid::new_v4().to_string(),
                payload: r#"{"hello":"world"}"#.into(),
                required_capabilities: Vec::new(),
                ttl,
            })
            .await
            .expect("insert");
        self.sink
            .publish(JobEvent::Created {
                job_id: inserted.id.to_string(),
                at: self.clock.now(),
                input_data: json!({"room": room, "title": title}).into(),
                metadata: Default::default(),
            })
            .await
            .expect("job created");
        inserted.id
    }

    async fn task(&self, id: &TaskId) -> Task {
        self.store.get(id).await.expect("get").expect("task exists")
    }

    async fn wait_status(&self, id: &TaskId, status: JobStatus) -> Task {
        let store = self.store.clone();
        let id2 = id.clone();
        until(&format!("task {id} reaches {status}"), move || {
            let (store, id) = (store.clone(), id2.clone());
            async move { store.get(&id).await.ok().flatten().map(|t| t.status) == Some(status) }
        })
        .await;
        self.task(id).await
    }

    fn history(&self, id: &TaskId) -> Vec<(JobStatus, Option<String>)> {
        self.sink
            .get(id.as_str(), true)
            .and_then(|view| view.history)
            .unwrap_or_default()
            .into_iter()
            .map(|entry| (entry.status, entry.message))
            .collect()
    }

    fn statuses(&self, id: &TaskId) -> Vec<JobStatus> {
        self.history(id).into_iter().map(|(s, _)| s).collect()
    }
}

/// Polls `check` every 100 ms of (paused) time, for at most three hours.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..108_000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn quick_worker(
    fx: &Fixture,
    agent: impl hookroom::agent::Agent,
) -> hookroom::agent::WorkerBuilder {
    Worker::builder(Arc::new(agent), fx.dyn_store())
        .status_sink(Arc::new(fx.sink.clone()))
        .clock(Arc::new(fx.clock.clone()))
        .room("work")
        .poll_interval(Duration::from_secs(1))
        .input_poll_interval(Duration::from_secs(1))
}

#[tokio::test(start_paused = true)]
async fn timeout_retries_with_backoff_then_fails() {
    let fx = Fixture::new();
    let claims = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&claims);
    let agent = agent_fn(move |_task, _job| {
        seen.lock().unwrap().push(Instant::now());
        async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(AgentOutput::new())
        }
    });
    let running = quick_worker(&fx, agent)
        .timeout(Duration::from_secs(30))
        .retry(AttemptPolicy::default().with_backoff_base(Duration::from_secs(10)))
        .spawn_checked();
    let id = fx.insert("work", "slow", None).await;

    let task = fx.wait_status(&id, JobStatus::Failed).await;
    assert_eq!(task.attempts, 3);
    let claims = claims.lock().unwrap().clone();
    assert_eq!(claims.len(), 3);
    // timeout (30 s) + backoff (10 s, then 20 s), plus at most one poll.
    let gaps: Vec<Duration> = claims.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] >= Duration::from_secs(40) && gaps[0] <= Duration::from_secs(41),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_secs(50) && gaps[1] <= Duration::from_secs(51),
        "{gaps:?}"
    );

    let view = fx.sink.get(id.as_str(), true).unwrap();
    assert_eq!(view.job.status, JobStatus::Failed);
    assert_eq!(view.job.metadata["summary"]["reason"], json!("timeout"));
    assert_eq!(view.job.metadata["summary"]["attempts"], json!(3));
    use JobStatus::*;
    assert_eq!(
        fx.statuses(&id),
        [Pending, Running, Pending, Running, Pending, Running, Failed]
    );
    let stats = running.shutdown().await;
    assert_eq!((stats.timed_out, stats.retried, stats.failed), (3, 2, 1));
    assert_eq!(stats.completed, 0);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_retry_and_permanent_errors_fail_at_once() {
    let fx = Fixture::new();
    let agent = agent_fn(|task: Task, job: JobHandle| async move {
        match task.title.as_str() {
            "flaky" if job.attempt() < 3 => Err(AgentError::retryable("upstream 503")),
            "flaky" => Ok(AgentOutput::new().with_result(json!({"attempt": job.attempt()}))),
            _ => Err(AgentError::permanent("payload has no issue number")),
        }
    });
    let running = quick_worker(&fx, agent).concurrency(2).spawn_checked();
    let flaky = fx.insert("work", "flaky", None).await;
    let broken = fx.insert("work", "broken", None).await;

    let done = fx.wait_status(&flaky, JobStatus::Done).await;
    assert_eq!(done.attempts, 3);
    assert_eq!(done.result, Some(json!({"attempt": 3})));
    let failed = fx.wait_status(&broken, JobStatus::Failed).await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(
        failed.failure.as_deref(),
        Some("payload has no issue number")
    );

    let view = fx.sink.get(broken.as_str(), false).unwrap();
    assert_eq!(
        view.job.metadata["summary"]["reason"],
        json!("agent_permanent")
    );
    assert_eq!(
        view.job.metadata["error_message"],
        json!("payload has no issue number")
    );
    let view = fx.sink.get(flaky.as_str(), false).unwrap();
    assert_eq!(view.job.status, JobStatus::Done);
    assert_eq!(view.job.metadata["summary"], json!({"attempt": 3}));
    let stats = running.shutdown().await;
    assert_eq!((stats.completed, stats.retried, stats.failed), (1, 2, 1));
}

/// Blocks until the test opens it; records whether the waiter was dropped.
#[derive(Debug, Default)]
struct Gate {
    open: Notify,
    dropped: AtomicUsize,
}

struct DropFlag(Arc<Gate>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn lease_loss_found_by_heartbeat_stops_the_agent() {
    let fx = Fixture::new();
    let gate = Arc::new(Gate::default());
    let stalled_gate = Arc::clone(&gate);
    let stalled = agent_fn(move |_task, _job| {
        let gate = Arc::clone(&stalled_gate);
        async move {
            let _flag = DropFlag(Arc::clone(&gate));
            gate.open.notified().await;
            Ok(AgentOutput::new().with_result(json!("stale")))
        }
    });
    let a = quick_worker(&fx, stalled)
        .name("worker-a")
        .lease(Duration::from_secs(30))
        .heartbeat_interval(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .spawn_checked();
    let id = fx.insert("work", "contended", None).await;
    let task = fx.wait_status(&id, JobStatus::Running).await;
    assert_eq!(task.claimed_by.as_deref(), Some("worker-a"));

    // Worker A stalls: the store's time passes its lease before it heartbeats.
    fx.clock.jump(Duration::from_secs(31));
    let fresh =
        agent_fn(|_task, _job| async { Ok(AgentOutput::new().with_result(json!("fresh"))) });
    let b = quick_worker(&fx, fresh).name("worker-b").spawn_checked();
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.result, Some(json!("fresh")));
    assert_eq!(done.attempts, 2);

    let noticed = Instant::now();
    until("worker A notices the lost lease", || {
        let lost = a.stats().lease_lost;
        async move { lost == 1 }
    })
    .await;
    // Found by the next heartbeat (every 10 s), not by the 600 s timeout.
    assert!(noticed.elapsed() <= Duration::from_secs(11));
    assert_eq!(
        gate.dropped.load(Ordering::SeqCst),
        1,
        "A's agent was stopped"
    );

    let a_stats = a.shutdown().await;
    let b_stats = b.shutdown().await;
    assert_eq!((a_stats.completed, a_stats.lease_lost), (0, 1));
    assert_eq!(
        (a_stats.timed_out, a_stats.failed, a_stats.retried),
        (0, 0, 0)
    );
    assert_eq!(b_stats.completed, 1);
    let dones = fx
        .statuses(&id)
        .iter()
        .filter(|s| **s == JobStatus::Done)
        .count();
    assert_eq!(dones, 1, "the job ends exactly once");
    assert_eq!(fx.task(&id).await.result, Some(json!("fresh")));
}

/// One worker's view of a store that goes down after the first claim: from
/// the first heartbeat on, claims fail with a backend error and heartbeats
/// fail the same way or, with `hang`, never answer. Completes are counted
/// (and passed on).
#[derive(Debug)]
struct HeartbeatOutage {
    inner: Arc<Store>,
    hang: bool,
    heartbeats: AtomicUsize,
    completes: AtomicUsize,
}

impl HeartbeatOutage {
    fn down() -> StoreError {
        StoreError::Backend {
            store: "outage",
            source: "connection refused".into(),
        }
    }
}

#[async_trait::async_trait]
impl TaskStore for HeartbeatOutage {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.inner.insert(task).await
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.inner.get(id).await
    }
    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.inner.list(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        if self.heartbeats.load(Ordering::SeqCst) > 0 {
            return Err(Self::down());
        }
        self.inner.claim(request).await
    }
    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        if self.heartbeats.load(Ordering::SeqCst) > 0 {
            return Err(Self::down());
        }
        self.inner.claim_task(id, request).await
    }
    async fn heartbeat(&self, _: &TaskId, _: &ClaimToken, _: Duration) -> Result<Task, StoreError> {
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(Self::down())
    }
    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        self.inner.complete(id, token, result).await
    }
    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        self.inner.fail(id, token, reason, action).await
    }
    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        self.inner.release(id, token).await
    }
    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        self.inner.request_input(id, token, prompt).await
    }
    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        self.inner.provide_input(id, input).await
    }
    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner.take_input(id, token).await
    }
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        self.inner.expire_pending().await
    }
    fn watch(&self, room: &str) -> Option<tokio::sync::broadcast::Receiver<TaskId>> {
        self.inner.watch(room)
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_run_out_during_a_store_outage_cancels_the_agent() {
    lease_runs_out_during_an_outage(false).await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_heartbeat_does_not_keep_the_agent_past_its_lease() {
    lease_runs_out_during_an_outage(true).await;
}

#[tokio::test(start_paused = true)]
async fn the_workers_clock_passing_the_lease_cancels_the_agent() {
    let fx = Fixture::new();
    let outage = Arc::new(HeartbeatOutage {
        inner: Arc::clone(&fx.store),
        hang: false,
        heartbeats: AtomicUsize::new(0),
        completes: AtomicUsize::new(0),
    });
    let gate = Arc::new(Gate::default());
    let agent_gate = Arc::clone(&gate);
    let stalled = agent_fn(move |_task, _job| {
        let gate = Arc::clone(&agent_gate);
        async move {
            let _flag = DropFlag(Arc::clone(&gate));
            gate.open.notified().await;
            Ok(AgentOutput::new())
        }
    });
    let a = Worker::builder(Arc::new(stalled), outage.clone())
        .clock(Arc::new(fx.clock.clone()))
        .room("work")
        .lease(Duration::from_secs(300))
        .heartbeat_interval(Duration::from_secs(10))
        .timeout(Duration::from_secs(3600))
        .spawn_checked();
    let id = fx.insert("work", "t", None).await;
    fx.wait_status(&id, JobStatus::Running).await;
    // The worker's clock passes the 300 s lease; the monotonic clock does not.
    fx.clock.jump(Duration::from_secs(301));
    let jumped = Instant::now();
    until("worker A cancels its agent", || {
        let dropped = gate.dropped.load(Ordering::SeqCst);
        async move { dropped == 1 }
    })
    .await;
    assert!(
        jumped.elapsed() <= Duration::from_secs(11),
        "noticed at the next failed heartbeat, not after 270 s: {:?}",
        jumped.elapsed()
    );
    let stats = a.shutdown().await;
    assert_eq!((stats.lease_lost, stats.completed, stats.failed), (1, 0, 0));
    assert_eq!(outage.completes.load(Ordering::SeqCst), 0);
}

/// Worker A claims, then its heartbeats fail (or hang) while the clock
/// passes the lease; its agent would run 15 s past the lease. A must stop it
/// before the lease ends and attempt nothing more; worker B then finishes
/// the task.
async fn lease_runs_out_during_an_outage(hang: bool) {
    let fx = Fixture::new();
    let outage = Arc::new(HeartbeatOutage {
        inner: Arc::clone(&fx.store),
        hang,
        heartbeats: AtomicUsize::new(0),
        completes: AtomicUsize::new(0),
    });
    let gate = Arc::new(Gate::default());
    let finished = Arc::new(AtomicUsize::new(0));
    let (agent_gate, agent_finished) = (Arc::clone(&gate), Arc::clone(&finished));
    // Works for 45 s, past its 30 s lease, then reports progress and returns.
    let slow = agent_fn(move |_task, job: JobHandle| {
        let (gate, finished) = (Arc::clone(&agent_gate), Arc::clone(&agent_finished));
        async move {
            let _flag = DropFlag(gate);
            tokio::time::sleep(Duration::from_secs(45)).await;
            job.message("still working").await;
            finished.fetch_add(1, Ordering::SeqCst);
            Ok(AgentOutput::new().with_result(json!("stale")))
        }
    });
    let a = Worker::builder(Arc::new(slow), outage.clone())
        .status_sink(Arc::new(fx.sink.clone()))
        .clock(Arc::new(fx.clock.clone()))
        .room("work")
        .name("worker-a")
        .lease(Duration::from_secs(30))
        .heartbeat_interval(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .spawn_checked();
    let id = fx.insert("work", "outage", None).await;
    let claimed = fx.wait_status(&id, JobStatus::Running).await;
    let lease = claimed
        .lease_expires_at
        .expect("a running task has a lease");
    until("worker A cancels its agent", || {
        let dropped = gate.dropped.load(Ordering::SeqCst);
        async move { dropped == 1 }
    })
    .await;
    // Cancelled before the lease ran out on the shared clock, by the margin.
    assert!(
        fx.clock.now() < lease,
        "cancelled at {} for a lease until {lease}",
        fx.clock.now()
    );
    let tried = if hang { 1 } else { 2 };
    assert!(outage.heartbeats.load(Ordering::SeqCst) >= tried);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the agent never ran on past its lease"
    );

    // Worker B, on the healthy store, takes the task over once the lease is out.
    let fresh =
        agent_fn(|_task, _job| async { Ok(AgentOutput::new().with_result(json!("fresh"))) });
    let b = quick_worker(&fx, fresh).name("worker-b").spawn_checked();
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.result, Some(json!("fresh")));
    tokio::time::sleep(Duration::from_secs(60)).await;

    let a_stats = a.shutdown().await;
    b.shutdown().await;
    assert_eq!(
        outage.completes.load(Ordering::SeqCst),
        0,
        "A attempted no complete"
    );
    assert_eq!((a_stats.completed, a_stats.lease_lost), (0, 1));
    assert_eq!(
        (a_stats.failed, a_stats.retried, a_stats.released),
        (0, 0, 0)
    );
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    let history = fx.history(&id);
    assert!(
        !history
            .iter()
            .any(|(_, message)| message.as_deref() == Some("still working")),
        "nothing reported for the cancelled claim: {history:?}"
    );
    use JobStatus::*;
    assert_eq!(fx.statuses(&id), [Pending, Running, Running, Done]);
}

#[tokio::test(start_paused = true)]
async fn a_stale_holder_cannot_complete() {
    let fx = Fixture::new();
    let gate = Arc::new(Gate::default());
    let stalled_gate = Arc::clone(&gate);
    let stalled = agent_fn(move |_task, _job| {
        let gate = Arc::clone(&stalled_gate);
        async move {
            gate.open.notified().await;
            Ok(AgentOutput::new().with_result(json!("stale")))
        }
    });
    // Heartbeats too rare to notice the loss before the agent returns, and
    // A's own clock does not see the stall (only the store's time jumps), so
    // A tries to complete: the store must refuse the stale token.
    let a = quick_worker(&fx, stalled)
        .clock(Arc::new(SystemClock))
        .name("worker-a")
        .lease(Duration::from_secs(300))
        .heartbeat_interval(Duration::from_secs(290))
        .timeout(Duration::from_secs(600))
        .spawn_checked();
    let id = fx.insert("work", "contended", None).await;
    fx.wait_status(&id, JobStatus::Running).await;

    fx.clock.jump(Duration::from_secs(301));
    let fresh =
        agent_fn(|_task, _job| async { Ok(AgentOutput::new().with_result(json!("fresh"))) });
    let b = quick_worker(&fx, fresh).name("worker-b").spawn_checked();
    fx.wait_status(&id, JobStatus::Done).await;

    gate.open.notify_one();
    until("worker A's complete is refused", || {
        let lost = a.stats().lease_lost;
        async move { lost == 1 }
    })
    .await;
    let a_stats = a.shutdown().await;
    b.shutdown().await;
    assert_eq!(a_stats.completed, 0);
    let task = fx.task(&id).await;
    assert_eq!(
        task.result,
        Some(json!("fresh")),
        "the stale result never lands"
    );
    let dones = fx
        .statuses(&id)
        .iter()
        .filter(|s| **s == JobStatus::Done)
        .count();
    assert_eq!(dones, 1);
}

#[tokio::test(start_paused = true)]
async fn needs_input_round_trip_keeps_the_claim() {
    let fx = Fixture::new();
    let agent = agent_fn(|_task, job: JobHandle| async move {
        let answer = job.ask_input("approve labels?").await?;
        Ok(AgentOutput::new().with_result(json!({"answer": answer})))
    });
    let running = quick_worker(&fx, agent)
        .lease(Duration::from_secs(30))
        .timeout(Duration::from_secs(30))
        .spawn_checked();
    let id = fx.insert("work", "needs a human", None).await;
    let waiting = fx.wait_status(&id, JobStatus::NeedsInput).await;
    assert_eq!(waiting.input_request.as_deref(), Some("approve labels?"));

    // Longer than both the lease and the timeout: heartbeats keep the claim
    // and the wait does not count against the timeout.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let still = fx.task(&id).await;
    assert_eq!(still.status, JobStatus::NeedsInput);
    assert_eq!(still.attempts, 1);
    assert!(still.lease_expires_at.unwrap() > fx.clock.now());
    assert_eq!(
        fx.sink.get(id.as_str(), false).unwrap().job.status,
        JobStatus::NeedsInput
    );

    fx.store
        .provide_input(&id, json!("yes"))
        .await
        .expect("provide input");
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.result, Some(json!({"answer": "yes"})));
    use JobStatus::*;
    let history = fx.history(&id);
    let statuses: Vec<_> = history.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [Pending, Running, NeedsInput, Running, Done]);
    assert_eq!(history[2].1.as_deref(), Some("approve labels?"));
    let stats = running.shutdown().await;
    assert_eq!(
        (stats.completed, stats.timed_out, stats.lease_lost),
        (1, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_finishes_fast_tasks_and_releases_slow_ones() {
    let fx = Fixture::new();
    let agent = agent_fn(|task: Task, _job| async move {
        let secs = if task.title == "fast" { 5 } else { 3600 };
        tokio::time::sleep(Duration::from_secs(secs)).await;
        Ok(AgentOutput::new().with_result(json!(task.title)))
    });
    let running = quick_worker(&fx, agent)
        .concurrency(2)
        .timeout(Duration::from_secs(7200))
        .grace_period(Duration::from_secs(10))
        .spawn_checked();
    let fast = fx.insert("work", "fast", None).await;
    let slow = fx.insert("work", "slow", None).await;
    fx.wait_status(&fast, JobStatus::Running).await;
    fx.wait_status(&slow, JobStatus::Running).await;

    let started = Instant::now();
    let stats = running.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "grace period is bounded"
    );
    assert_eq!((stats.completed, stats.released), (1, 1));
    assert_eq!(fx.task(&fast).await.status, JobStatus::Done);
    let released = fx.task(&slow).await;
    assert_eq!(released.status, JobStatus::Pending);
    assert_eq!(released.claimed_by, None);

    // Stopped workers claim nothing.
    let late = fx.insert("work", "late", None).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fx.task(&late).await.status, JobStatus::Pending);

    // Another worker picks up everything left: no task was lost.
    let quick = agent_fn(|task: Task, _job| async move {
        Ok(AgentOutput::new().with_result(json!(task.title)))
    });
    let next = quick_worker(&fx, quick).spawn_checked();
    for id in [&slow, &late] {
        fx.wait_status(id, JobStatus::Done).await;
    }
    next.shutdown().await;
    use JobStatus::*;
    assert_eq!(
        fx.statuses(&slow),
        [Pending, Running, Pending, Running, Done]
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_a_task_waiting_for_input() {
    let fx = Fixture::new();
    let agent = agent_fn(|_task, job: JobHandle| async move {
        let answer = job.ask_input("which label?").await?;
        Ok(AgentOutput::new().with_result(answer))
    });
    let running = quick_worker(&fx, agent)
        .grace_period(Duration::from_secs(5))
        .spawn_checked();
    let id = fx.insert("work", "ask", None).await;
    fx.wait_status(&id, JobStatus::NeedsInput).await;
    let stats = running.shutdown().await;
    assert_eq!(stats.released, 1);
    let task = fx.task(&id).await;
    assert_eq!(task.status, JobStatus::Pending);
    assert_eq!(task.attempts, 0, "a released claim does not count");

    // The next worker asks again and gets its answer.
    let agent = agent_fn(|_task, job: JobHandle| async move {
        let answer = job.ask_input("which label?").await?;
        Ok(AgentOutput::new().with_result(answer))
    });
    let next = quick_worker(&fx, agent).spawn_checked();
    fx.wait_status(&id, JobStatus::NeedsInput).await;
    fx.store.provide_input(&id, json!("bug")).await.unwrap();
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.result, Some(json!("bug")));
    next.shutdown().await;
    use JobStatus::*;
    assert_eq!(
        fx.statuses(&id),
        [
            Pending, Running, NeedsInput, Pending, Running, NeedsInput, Running, Done
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn progress_and_artifacts_reach_the_sink_in_order() {
    let fx = Fixture::new();
    let artifact = |name: &str| Artifact {
        name: name.into(),
        kind: Some("report".into()),
        ..Artifact::default()
    };
    let agent = agent_fn(move |_task, job: JobHandle| async move {
        let step = |n: u32, name: &str| Progress {
            current_step: Some(name.into()),
            total_steps: Some(2),
            completed_steps: Some(n),
            percentage: Some(f64::from(n) * 50.0),
            estimated_remaining: None,
        };
        job.progress(step(0, "parse")).await;
        job.attach(artifact("a.json")).await;
        job.message("halfway").await;
        job.progress(step(1, "label")).await;
        job.attach(artifact("b.json")).await;
        Ok(AgentOutput::new()
            .with_result(json!({"labels": 2}))
            .with_summary(json!({"labels_added": 2}))
            .with_artifact(artifact("final.md"))
            .with_message("tagged"))
    });
    let running = quick_worker(&fx, agent).spawn_checked();
    let id = fx.insert("work", "tag me", None).await;
    fx.wait_status(&id, JobStatus::Done).await;
    running.shutdown().await;

    let view = fx.sink.get(id.as_str(), true).unwrap();
    let names: Vec<_> = view.job.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a.json", "b.json", "final.md"]);
    assert_eq!(
        view.job.progress.as_ref().unwrap().current_step.as_deref(),
        Some("label")
    );
    assert_eq!(view.job.metadata["summary"], json!({"labels_added": 2}));
    let history: Vec<_> = view
        .history
        .unwrap()
        .into_iter()
        .map(|e| (e.status, e.step, e.message))
        .collect();
    use JobStatus::*;
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(history[0].0, Pending);
    assert_eq!(history[1].0, Running);
    assert_eq!(
        history[2..],
        [
            (Running, s("parse"), None),
            (Running, None, s("artifact attached: a.json")),
            (Running, None, s("halfway")),
            (Running, s("label"), None),
            (Running, None, s("artifact attached: b.json")),
            (Done, None, s("tagged")),
        ]
    );
    assert_eq!(fx.task(&id).await.result, Some(json!({"labels": 2})));
}

#[tokio::test(start_paused = true)]
async fn expired_tasks_are_reported_failed() {
    let fx = Fixture::new();
    let agent = agent_fn(|_task, _job| async { Ok(AgentOutput::new()) });
    let running = quick_worker(&fx, agent)
        .reaper_interval(Some(Duration::from_secs(10)))
        .spawn_checked();
    // Nobody serves this room.
    let expiring = fx
        .insert("unserved", "old", Some(Duration::from_secs(60)))
        .await;
    let forever = fx.insert("unserved", "no ttl", None).await;

    let failed = fx.wait_status(&expiring, JobStatus::Failed).await;
    assert_eq!(failed.failure.as_deref(), Some("expired"));
    let view = fx.sink.get(expiring.as_str(), false).unwrap();
    assert_eq!(view.job.status, JobStatus::Failed);
    assert_eq!(view.job.metadata["summary"], json!({"reason": "expired"}));
    assert_eq!(
        view.job.metadata["error_message"],
        json!("expired unclaimed")
    );
    assert_eq!(fx.task(&forever).await.status, JobStatus::Pending);
    let stats = running.shutdown().await;
    assert_eq!(stats.expired, 1);
}

#[derive(Debug)]
struct BrokenSink;

#[async_trait::async_trait]
impl StatusSink for BrokenSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        let _ = event;
        Err(SinkError::Backend {
            sink: "broken",
            source: "connection refused".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn sink_errors_never_lose_the_task() {
    let fx = Fixture::new();
    let agent = agent_fn(|_task, job: JobHandle| async move {
        job.message("working").await;
        Ok(AgentOutput::new().with_result(json!("ok")))
    });
    let running = Worker::builder(Arc::new(agent), fx.dyn_store())
        .status_sink(Arc::new(BrokenSink))
        .room("work")
        .build()
        .expect("worker")
        .spawn();
    let id = fx.insert("work", "t", None).await;
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.result, Some(json!("ok")));
    let stats = running.shutdown().await;
    assert_eq!(stats.completed, 1);
    // RUNNING, the message, and DONE were all refused and counted.
    assert_eq!(stats.sink_errors, 3);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_agent_is_retried() {
    let fx = Fixture::new();
    let agent = agent_fn(|_task, job: JobHandle| async move {
        assert!(job.attempt() > 1, "first attempt blows up");
        Ok(AgentOutput::new())
    });
    let running = quick_worker(&fx, agent).spawn_checked();
    let id = fx.insert("work", "t", None).await;
    let done = fx.wait_status(&id, JobStatus::Done).await;
    assert_eq!(done.attempts, 2);
    let stats = running.shutdown().await;
    assert_eq!((stats.retried, stats.completed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn concurrency_bounds_tasks_in_flight() {
    let fx = Fixture::new();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let agent = agent_fn(move |_task, _job| {
        let (now, peak) = (Arc::clone(&n), Arc::clone(&p));
        async move {
            let running = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(10)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(AgentOutput::new())
        }
    });
    let running = quick_worker(&fx, agent).concurrency(3).spawn_checked();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(fx.insert("work", &format!("t{i}"), None).await);
    }
    for id in &ids {
        fx.wait_status(id, JobStatus::Done).await;
    }
    let stats = running.shutdown().await;
    assert_eq!(stats.completed, 10);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn notifications_wake_an_idle_worker_and_rooms_take_turns() {
    let fx = Fixture::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&order);
    let agent = agent_fn(move |task: Task, _job| {
        seen.lock().unwrap().push(task.room.clone());
        async { Ok(AgentOutput::new()) }
    });
    // Polling is hourly: only the store's notifications can wake the worker.
    let running = Worker::builder(Arc::new(agent), fx.dyn_store())
        .rooms(["a", "b"])
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("worker")
        .spawn();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let first = fx.insert("b", "t", None).await;
    let started = Instant::now();
    fx.wait_status(&first, JobStatus::Done).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "woken by the notification"
    );

    let mut ids = Vec::new();
    for room in ["a", "a", "b", "b"] {
        ids.push(fx.insert(room, "t", None).await);
    }
    for id in &ids {
        fx.wait_status(id, JobStatus::Done).await;
    }
    running.shutdown().await;
    let order = order.lock().unwrap().clone();
    assert_eq!(order, ["b", "a", "b", "a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn only_capable_agents_claim_and_unknown_jobs_are_created() {
    let fx = Fixture::new();
    let inserted = fx
        .store
        .insert(NewTask {
            room: "work".into(),
            title: "render".into(),
            description: String::new(),
            priority: 1,
            source: "test".into(),
            source_event: "render".into(),
            source_url: Some("https://example.com/1".into()),
            delivery_id: "d-1".into(),
            payload: "{}".into(),
            required_capabilities: vec!["gpu".into()],
            ttl: None,
        })
        .await
        .unwrap();
    // No `Created` was published for this task: the worker creates the job.
    let plain = agent_fn(|_task, _job| async { Ok(AgentOutput::new().with_result(json!("cpu"))) });
    let cpu = quick_worker(&fx, plain).name("cpu").spawn_checked();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(fx.task(&inserted.id).await.status, JobStatus::Pending);
    assert_eq!(cpu.stats().claimed, 0);

    let gpu_agent =
        agent_fn(|_task, _job| async { Ok(AgentOutput::new().with_result(json!("gpu"))) })
            .with_capabilities(["gpu", "cuda"]);
    let gpu = quick_worker(&fx, gpu_agent).name("gpu").spawn_checked();
    let done = fx.wait_status(&inserted.id, JobStatus::Done).await;
    assert_eq!(done.claimed_by.as_deref(), Some("gpu"));
    assert_eq!(done.result, Some(json!("gpu")));
    cpu.shutdown().await;
    gpu.shutdown().await;

    let view = fx.sink.get(inserted.id.as_str(), true).unwrap();
    assert_eq!(view.job.input_data["title"], json!("render"));
    assert_eq!(view.job.input_data["url"], json!("https://example.com/1"));
    use JobStatus::*;
    assert_eq!(fx.statuses(&inserted.id), [Pending, Running, Done]);
}

#[tokio::test(start_paused = true)]
async fn many_workers_finish_every_task_exactly_once() {
    const TASKS: usize = 200;
    let fx = Fixture::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..4 {
        let runs = Arc::clone(&runs);
        let agent = agent_fn(move |task: Task, job: JobHandle| {
            runs.fetch_add(1, Ordering::SeqCst);
            async move {
                let n: u64 = task.title.parse().unwrap_or(0);
                tokio::time::sleep(Duration::from_secs(1 + n % 20)).await;
                if n.is_multiple_of(5) && job.attempt() == 1 {
                    return Err(AgentError::retryable("first try of every fifth task"));
                }
                Ok(AgentOutput::new().with_result(json!(n)))
            }
        });
        workers.push(
            quick_worker(&fx, agent)
                .name(format!("worker-{w}"))
                .concurrency(4)
                .spawn_checked(),
        );
    }
    let mut ids = Vec::new();
    for n in 0..TASKS {
        ids.push(fx.insert("work", &n.to_string(), None).await);
    }
    for id in &ids {
        fx.wait_status(id, JobStatus::Done).await;
    }
    let mut completed = 0;
    let mut retried = 0;
    for worker in workers {
        let stats = worker.shutdown().await;
        assert_eq!(
            (stats.lease_lost, stats.failed, stats.sink_errors),
            (0, 0, 0)
        );
        completed += stats.completed;
        retried += stats.retried;
    }
    assert_eq!(completed, TASKS as u64);
    assert_eq!(retried, (TASKS / 5) as u64);
    assert_eq!(runs.load(Ordering::SeqCst), TASKS + TASKS / 5);
    for (n, id) in ids.iter().enumerate() {
        let statuses = fx.statuses(id);
        let dones = statuses.iter().filter(|s| **s == JobStatus::Done).count();
        assert_eq!(dones, 1, "task {n} ended {dones} times");
        assert_eq!(fx.task(id).await.result, Some(json!(n)));
    }
}

trait SpawnChecked {
    fn spawn_checked(self) -> hookroom::agent::RunningWorker;
}

impl SpawnChecked for hookroom::agent::WorkerBuilder {
    fn spawn_checked(self) -> hookroom::agent::RunningWorker {
        self.build().expect("valid worker settings").spawn()
    }
}
