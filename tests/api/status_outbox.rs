//! `OutboxStatusSink`: publishing never waits for the backend, changes
//! arrive in order, the bound is kept and counted, refusals are sorted into
//! retried and dropped, and (with SQLite) a change accepted before a crash
//! is delivered once after the restart.
#![cfg(feature = "memory")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use hookroom::status::{
    InMemoryStatusSink, JobEvent, JobStatus, OutboxStatusSink, SinkError, StatusSink, TeeStatusSink,
};

/// A backend that records what it applied, applies a key once, waits for a
/// permit per change when gated, and fails the first `failures` attempts.
#[derive(Debug, Default)]
struct Backend {
    applied: Mutex<Vec<String>>,
    keys: Mutex<HashSet<String>>,
    presented: Mutex<Vec<String>>,
    gate: Option<Arc<Semaphore>>,
    failures: AtomicUsize,
    permanent: bool,
}

impl Backend {
    fn gated(gate: Arc<Semaphore>) -> Self {
        Self {
            gate: Some(gate),
            ..Self::default()
        }
    }

    fn applied(&self) -> Vec<String> {
        self.applied.lock().unwrap().clone()
    }
}

fn message(event: &JobEvent) -> String {
    match event {
        JobEvent::Status { message, .. } => message.clone().unwrap_or_default(),
        other => format!("{}:{}", kind(other), other.job_id()),
    }
}

fn kind(event: &JobEvent) -> &'static str {
    match event {
        JobEvent::Created { .. } => "created",
        JobEvent::Status { .. } => "status",
        JobEvent::Artifact { .. } => "artifact",
        _ => "completed",
    }
}

#[async_trait]
impl StatusSink for Backend {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        self.publish_once(event, &uuid::Uuid::new_v4().to_string())
            .await
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        self.presented.lock().unwrap().push(key.to_owned());
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(if self.permanent {
                SinkError::InvalidStatus {
                    reason: "refused".into(),
                }
            } else {
                SinkError::Timeout { sink: "test" }
            });
        }
        if self.keys.lock().unwrap().insert(key.to_owned()) {
            self.applied.lock().unwrap().push(message(&event));
        }
        Ok(())
    }
}

fn update(id: &str, message: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.into(),
        at: OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: None,
        message: Some(message.into()),
        step: None,
    }
}

fn created(id: &str) -> JobEvent {
    JobEvent::Created {
        job_id: id.into(),
        at: OffsetDateTime::now_utc(),
        input_data: serde_json::json!({"room": "r"}).into(),
        metadata: Default::default(),
    }
}

#[tokio::test]
async fn publishing_never_waits_for_the_backend_and_order_is_kept() {
    let gate = Arc::new(Semaphore::new(0));
    let backend = Arc::new(Backend::gated(Arc::clone(&gate)));
    let outbox = OutboxStatusSink::in_memory(backend.clone(), 100);
    // The backend takes nothing until the gate opens, yet every publish
    // returns.
    for i in 0..50 {
        outbox.publish(update("j", &format!("m{i}"))).await.unwrap();
    }
    assert_eq!(outbox.stats().queued, 50);
    assert!(backend.applied().is_empty());
    gate.add_permits(50);
    outbox.drained().await;
    let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    assert_eq!(backend.applied(), expected);
    let stats = outbox.stats();
    assert_eq!((stats.queued, stats.delivered), (0, 50));
}

#[tokio::test]
async fn a_full_outbox_refuses_and_counts() {
    let gate = Arc::new(Semaphore::new(0));
    let backend = Arc::new(Backend::gated(Arc::clone(&gate)));
    let outbox = OutboxStatusSink::in_memory(backend.clone(), 3);
    for i in 0..3 {
        outbox.publish(update("j", &format!("m{i}"))).await.unwrap();
    }
    let refused = outbox.publish(update("j", "m3")).await.unwrap_err();
    assert_eq!(hookroom::ErrorCode::code(&refused), "E_WEBHOOK_FAILED");
    assert_eq!(outbox.stats().dropped_full, 1);
    gate.add_permits(3);
    outbox.drained().await;
    assert_eq!(backend.applied(), ["m0", "m1", "m2"]);
    // Room again.
    gate.add_permits(1);
    outbox.publish(update("j", "m4")).await.unwrap();
    outbox.drained().await;
    assert_eq!(backend.applied().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_the_same_key() {
    let backend = Arc::new(Backend {
        failures: AtomicUsize::new(3),
        ..Backend::default()
    });
    let outbox = OutboxStatusSink::in_memory(backend.clone(), 10);
    outbox.publish(update("j", "once")).await.unwrap();
    outbox.publish(update("j", "twice")).await.unwrap();
    outbox.drained().await;
    assert_eq!(backend.applied(), ["once", "twice"]);
    let presented = backend.presented.lock().unwrap().clone();
    assert_eq!(presented.len(), 5);
    assert!(presented[..4].iter().all(|key| *key == presented[0]));
    assert_ne!(presented[4], presented[0]);
    assert_eq!(outbox.stats().failed, 0);
}

#[tokio::test]
async fn permanent_refusals_are_dropped_and_counted() {
    let backend = Arc::new(Backend {
        failures: AtomicUsize::new(1),
        permanent: true,
        ..Backend::default()
    });
    let outbox = OutboxStatusSink::in_memory(backend.clone(), 10);
    outbox.publish(update("j", "refused")).await.unwrap();
    outbox.publish(update("j", "taken")).await.unwrap();
    outbox.drained().await;
    assert_eq!(backend.applied(), ["taken"]);
    let stats = outbox.stats();
    assert_eq!((stats.failed, stats.delivered), (1, 1));
}

#[tokio::test]
async fn tee_answers_with_the_primary_and_forwards_only_what_it_took() {
    let registry = InMemoryStatusSink::new();
    let backend = Arc::new(Backend::default());
    let outbox = OutboxStatusSink::in_memory(backend.clone(), 10);
    let tee = TeeStatusSink::new(Arc::new(registry.clone()), vec![Arc::new(outbox.clone())]);
    tee.publish(created("t")).await.unwrap();
    tee.publish(update("t", "go")).await.unwrap();
    // Refused by the primary: not forwarded.
    assert!(tee.publish(update("unknown", "x")).await.is_err());
    outbox.drained().await;
    assert_eq!(backend.applied(), ["created:t", "go"]);
    assert_eq!(registry.get("t", true).unwrap().history.unwrap().len(), 2);
}

/// A change published once under a key reaches every sink under that key,
/// so a repeat is applied once everywhere.
#[tokio::test]
async fn tee_passes_the_key_of_a_change_published_once_to_every_sink() {
    let primary = Arc::new(Backend::default());
    let other = Arc::new(Backend::default());
    let tee = TeeStatusSink::new(primary.clone(), vec![other.clone()]);
    tee.publish_once(update("t", "go"), "report-1")
        .await
        .unwrap();
    tee.publish_once(update("t", "go"), "report-1")
        .await
        .unwrap();
    for sink in [&primary, &other] {
        assert_eq!(sink.applied(), ["go"]);
        assert_eq!(*sink.presented.lock().unwrap(), ["report-1", "report-1"]);
    }
}

/// A change accepted before a crash is delivered after the restart, once:
/// the first process handed change 1 to the backend but died before it
/// could forget it, so the second pushes it again under the same key.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_outbox_delivers_after_a_restart_once() {
    let dir = std::env::temp_dir().join(format!("hookroom-outbox-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hookroom.db");
    // The task store shares the file.
    let _tasks = hookroom::sqlite::SqliteTaskStore::open(&path).unwrap();

    let backend = Arc::new(Backend::gated(Arc::new(Semaphore::new(0))));
    {
        // Before the crash: the backend takes change 1 only after the gate
        // opens, which it never does; five changes are accepted.
        let outbox =
            OutboxStatusSink::sqlite(backend.clone(), &path, "http://backend", 100).unwrap();
        for i in 0..5 {
            outbox.publish(update("j", &format!("m{i}"))).await.unwrap();
        }
        assert_eq!(outbox.stats().queued, 5);
        // Wait until change 1 is in the backend's hands.
        while backend.presented.lock().unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // "Crash": the process goes away with change 1 in flight.
    }
    let first_key = backend.presented.lock().unwrap()[0].clone();
    // The backend did apply change 1 (say the answer was lost).
    backend.keys.lock().unwrap().insert(first_key.clone());
    backend.applied.lock().unwrap().push("m0".into());

    let after = Arc::new(Backend {
        keys: Mutex::new(backend.keys.lock().unwrap().clone()),
        applied: Mutex::new(backend.applied()),
        ..Backend::default()
    });
    let outbox = OutboxStatusSink::sqlite(after.clone(), &path, "http://backend", 100).unwrap();
    assert_eq!(outbox.stats().queued, 5);
    outbox.drained().await;
    assert_eq!(after.applied(), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(after.presented.lock().unwrap()[0], first_key);

    // Another target's queue is its own.
    let other = OutboxStatusSink::sqlite(after.clone(), &path, "http://other", 100).unwrap();
    assert_eq!(other.stats().queued, 0);
    std::fs::remove_dir_all(dir).ok();
}
