//! [`OutboxStatusSink`]: job changes queued and pushed by a background task,
//! so a slow or absent backend never slows a webhook's acknowledgement; and
//! [`TeeStatusSink`]: one change to several sinks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::{Artifact, JobEvent, JobStatus, Progress, SinkError, StatusSink};

/// How many changes an outbox holds unless told otherwise.
pub const DEFAULT_OUTBOX_CAPACITY: usize = 10_000;

/// The longest wait between two attempts at a change the backend could not
/// take for now.
const MAX_REDELIVERY_WAIT: Duration = Duration::from_secs(30);

/// What an outbox has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Changes waiting to be pushed.
    pub queued: u64,
    /// Changes the backend took.
    pub delivered: u64,
    /// Changes refused at the door because the outbox was full.
    pub dropped_full: u64,
    /// Changes the backend refused for good (unknown job, invalid status,
    /// bad credentials, unreadable data); they are not retried.
    pub failed: u64,
}

/// A queued change.
pub(crate) struct Entry {
    pub(crate) id: i64,
    pub(crate) key: String,
    pub(crate) event: JobEvent,
}

/// Where queued changes are kept.
enum Backing {
    Memory {
        queue: Mutex<VecDeque<Entry>>,
        next_id: AtomicU64,
    },
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sqlite::SqliteOutbox),
}

impl Backing {
    async fn push(&self, key: String, event: JobEvent) -> Result<(), SinkError> {
        match self {
            Self::Memory { queue, next_id } => {
                let id = i64::try_from(next_id.fetch_add(1, Ordering::Relaxed)).unwrap_or(i64::MAX);
                lock(queue).push_back(Entry { id, key, event });
                Ok(())
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(outbox) => outbox.push(key, event).await,
        }
    }

    async fn first(&self) -> Result<Option<Entry>, SinkError> {
        match self {
            Self::Memory { queue, .. } => Ok(lock(queue).front().map(|entry| Entry {
                id: entry.id,
                key: entry.key.clone(),
                event: entry.event.clone(),
            })),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(outbox) => outbox.first().await,
        }
    }

    async fn remove(&self, id: i64) -> Result<(), SinkError> {
        match self {
            Self::Memory { queue, .. } => {
                let mut queue = lock(queue);
                if queue.front().is_some_and(|entry| entry.id == id) {
                    queue.pop_front();
                }
                Ok(())
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(outbox) => outbox.remove(id).await,
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    downstream: Arc<dyn StatusSink>,
    backing: Backing,
    capacity: u64,
    queued: AtomicU64,
    delivered: AtomicU64,
    dropped_full: AtomicU64,
    failed: AtomicU64,
    /// Something was queued, or the outbox is stopping.
    work: Notify,
    /// Something was delivered or dropped.
    progress: Notify,
    stopping: AtomicBool,
}

/// Stops the drain when the last handle goes.
struct Stopper(Arc<Shared>);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.stopping.store(true, Ordering::SeqCst);
        self.0.work.notify_one();
    }
}

/// A [`StatusSink`] that queues every change and returns at once; a
/// background task pushes the queue, in order, to the downstream sink
/// (usually an `HttpStatusSink`).
///
/// - **Order**: one change at a time, oldest first, so each job's changes
///   arrive in the order they were published.
/// - **Retries**: a change the downstream cannot take for now (timeout,
///   network, `E_WEBHOOK_FAILED`) is tried again, with a growing wait (up to
///   30 s), until it is taken; a change refused for good (unknown job,
///   invalid status, bad credentials, unreadable data) is dropped and
///   counted in [`OutboxStats::failed`].
/// - **Exactly once**: each change gets an idempotency key when queued and
///   is pushed with [`StatusSink::publish_once`], so a change pushed again
///   after a crash is applied once by a Jobs API that honours the key.
/// - **Bounded**: at most `capacity` changes wait. When the outbox is full,
///   `publish` refuses the new change at once with `E_WEBHOOK_FAILED` (the
///   ingest service logs it and still acknowledges the webhook: the task is
///   stored) and counts it in [`OutboxStats::dropped_full`]; see
///   [`stats`](Self::stats).
/// - **Metrics**: the changes waiting in every outbox of the process are
///   the gauge [`OUTBOX_DEPTH`](crate::telemetry::OUTBOX_DEPTH); dropped
///   changes count in [`OUTBOX_DROPPED`](crate::telemetry::OUTBOX_DROPPED)
///   by reason (`full`, `refused`).
/// - **Durable** (with the `sqlite` feature, [`sqlite`](Self::sqlite)): the
///   queue is a table in the given database, so a change accepted before a
///   crash is delivered after the restart.
///
/// The background task runs on the Tokio runtime the outbox was made on,
/// and stops once every clone of the outbox is dropped.
#[derive(Clone)]
pub struct OutboxStatusSink {
    shared: Arc<Shared>,
    _stopper: Arc<Stopper>,
}

impl std::fmt::Debug for OutboxStatusSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxStatusSink")
            .field("downstream", &self.shared.downstream)
            .field("capacity", &self.shared.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl OutboxStatusSink {
    /// An outbox in memory in front of `downstream`, holding at most
    /// `capacity` changes (at least one). Must be called within a Tokio
    /// runtime.
    pub fn in_memory(downstream: Arc<dyn StatusSink>, capacity: usize) -> Self {
        let backing = Backing::Memory {
            queue: Mutex::default(),
            next_id: AtomicU64::new(1),
        };
        Self::start(downstream, backing, capacity, 0)
    }

    /// A durable outbox in the SQLite database at `path` (a task store's
    /// file will do), in front of `downstream`. `target` names this outbox
    /// (e.g. the backend's URL): several outboxes share the table, each
    /// with its own queue. Changes left from before a restart are pushed
    /// first. Must be called within a Tokio runtime.
    ///
    /// # Errors
    /// [`SinkError::Backend`] when the database cannot be opened.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite(
        downstream: Arc<dyn StatusSink>,
        path: impl AsRef<std::path::Path>,
        target: impl Into<String>,
        capacity: usize,
    ) -> Result<Self, SinkError> {
        let outbox = crate::sqlite::SqliteOutbox::open(path.as_ref(), target.into())?;
        let queued = outbox.count()?;
        Ok(Self::start(
            downstream,
            Backing::Sqlite(outbox),
            capacity,
            queued,
        ))
    }

    fn start(
        downstream: Arc<dyn StatusSink>,
        backing: Backing,
        capacity: usize,
        queued: u64,
    ) -> Self {
        let shared = Arc::new(Shared {
            downstream,
            backing,
            capacity: u64::try_from(capacity.max(1)).unwrap_or(u64::MAX),
            queued: AtomicU64::new(queued),
            delivered: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            work: Notify::new(),
            progress: Notify::new(),
            stopping: AtomicBool::new(false),
        });
        // Changes left from before a restart are waiting too.
        metrics::gauge!(crate::telemetry::OUTBOX_DEPTH).increment(queued as f64);
        tokio::spawn(drain(Arc::clone(&shared)));
        Self {
            _stopper: Arc::new(Stopper(Arc::clone(&shared))),
            shared,
        }
    }

    /// What the outbox has done so far.
    pub fn stats(&self) -> OutboxStats {
        let shared = &self.shared;
        OutboxStats {
            queued: shared.queued.load(Ordering::SeqCst),
            delivered: shared.delivered.load(Ordering::SeqCst),
            dropped_full: shared.dropped_full.load(Ordering::SeqCst),
            failed: shared.failed.load(Ordering::SeqCst),
        }
    }

    /// Waits until nothing is queued.
    pub async fn drained(&self) {
        loop {
            let progress = self.shared.progress.notified();
            if self.shared.queued.load(Ordering::SeqCst) == 0 {
                return;
            }
            // Re-check now and then: a notification may slip between the
            // load and the wait.
            let _ = tokio::time::timeout(Duration::from_millis(50), progress).await;
        }
    }
}

#[async_trait]
impl StatusSink for OutboxStatusSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        let shared = &self.shared;
        let admitted = shared
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                (queued < shared.capacity).then_some(queued + 1)
            })
            .is_ok();
        if !admitted {
            shared.dropped_full.fetch_add(1, Ordering::SeqCst);
            metrics::counter!(crate::telemetry::OUTBOX_DROPPED, "reason" => "full").increment(1);
            return Err(SinkError::Backend {
                sink: "outbox",
                source: format!("the outbox is full ({} changes)", shared.capacity).into(),
            });
        }
        let key = uuid::Uuid::new_v4().to_string();
        if let Err(error) = shared.backing.push(key, event).await {
            shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(error);
        }
        metrics::gauge!(crate::telemetry::OUTBOX_DEPTH).increment(1.0);
        shared.work.notify_one();
        Ok(())
    }
}

/// Whether the downstream refused a change for good.
fn permanent(error: &SinkError) -> bool {
    matches!(
        error,
        SinkError::JobNotFound { .. }
            | SinkError::InvalidStatus { .. }
            | SinkError::AuthenticationFailed { .. }
            | SinkError::Serialization { .. }
    )
}

/// Pushes the queue, oldest first, until the outbox is stopped.
async fn drain(shared: Arc<Shared>) {
    let mut wait = Duration::from_millis(100);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let entry = match shared.backing.first().await {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                shared.work.notified().await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "outbox: cannot read the queue");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_REDELIVERY_WAIT);
                continue;
            }
        };
        let job_id = entry.event.job_id().to_owned();
        let outcome = shared
            .downstream
            .publish_once(entry.event, &entry.key)
            .await;
        match outcome {
            Ok(()) => {
                shared.delivered.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) if permanent(&error) => {
                tracing::warn!(%error, job_id, "outbox: the backend refused a change; dropped");
                shared.failed.fetch_add(1, Ordering::SeqCst);
                metrics::counter!(crate::telemetry::OUTBOX_DROPPED, "reason" => "refused")
                    .increment(1);
            }
            Err(error) => {
                tracing::warn!(%error, job_id, ?wait, "outbox: the backend cannot take a change yet");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stopped(&shared) => return,
                }
                wait = (wait * 2).min(MAX_REDELIVERY_WAIT);
                continue;
            }
        }
        wait = Duration::from_millis(100);
        if let Err(error) = shared.backing.remove(entry.id).await {
            tracing::warn!(%error, "outbox: cannot remove a delivered change; it will be pushed again");
            continue;
        }
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::OUTBOX_DEPTH).decrement(1.0);
        shared.progress.notify_waiters();
    }
}

async fn stopped(shared: &Shared) {
    while !shared.stopping.load(Ordering::SeqCst) {
        shared.work.notified().await;
    }
}

/// One change sent to a primary sink and then to every other sink; the
/// answer is the primary's. The others' refusals are logged.
///
/// The gateway uses it to keep jobs in its own registry (the primary, which
/// the Jobs API reads) and push them to external backends through outboxes.
#[derive(Debug, Clone)]
pub struct TeeStatusSink {
    primary: Arc<dyn StatusSink>,
    others: Vec<Arc<dyn StatusSink>>,
}

impl TeeStatusSink {
    /// Sends to `primary` first, then to each of `others` in order.
    pub fn new(primary: Arc<dyn StatusSink>, others: Vec<Arc<dyn StatusSink>>) -> Self {
        Self { primary, others }
    }
}

#[async_trait]
impl StatusSink for TeeStatusSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        self.send(event, None).await
    }

    /// The key goes to every sink, so each that tells repeats apart applies
    /// the change once.
    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        self.send(event, Some(key)).await
    }
}

impl TeeStatusSink {
    async fn send(&self, event: JobEvent, key: Option<&str>) -> Result<(), SinkError> {
        async fn to(
            sink: &dyn StatusSink,
            event: JobEvent,
            key: Option<&str>,
        ) -> Result<(), SinkError> {
            match key {
                Some(key) => sink.publish_once(event, key).await,
                None => sink.publish(event).await,
            }
        }
        let result = to(self.primary.as_ref(), event.clone(), key).await;
        // Only what the primary took goes further: the others see the same
        // valid history.
        if result.is_ok() {
            for other in &self.others {
                if let Err(error) = to(other.as_ref(), event.clone(), key).await {
                    tracing::warn!(%error, job_id = event.job_id(), "status sink refused a change");
                }
            }
        }
        result
    }
}

/// A [`JobEvent`] as an outbox stores it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum StoredEvent {
    Created {
        job_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        input_data: Value,
        metadata: Map<String, Value>,
    },
    Status {
        job_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        status: JobStatus,
        progress: Option<Progress>,
        message: Option<String>,
        step: Option<String>,
    },
    Artifact {
        job_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        artifact: Artifact,
    },
    Completed {
        job_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        final_status: JobStatus,
        summary: Option<Value>,
        artifacts: Vec<Artifact>,
        message: Option<String>,
    },
}

impl From<JobEvent> for StoredEvent {
    fn from(event: JobEvent) -> Self {
        match event {
            JobEvent::Created {
                job_id,
                at,
                input_data,
                metadata,
            } => Self::Created {
                job_id,
                at,
                input_data: input_data.to_value(),
                metadata,
            },
            JobEvent::Status {
                job_id,
                at,
                status,
                progress,
                message,
                step,
            } => Self::Status {
                job_id,
                at,
                status,
                progress,
                message,
                step,
            },
            JobEvent::Artifact {
                job_id,
                at,
                artifact,
            } => Self::Artifact {
                job_id,
                at,
                artifact,
            },
            JobEvent::Completed {
                job_id,
                at,
                final_status,
                summary,
                artifacts,
                message,
            } => Self::Completed {
                job_id,
                at,
                final_status,
                summary,
                artifacts,
                message,
            },
        }
    }
}

impl From<StoredEvent> for JobEvent {
    fn from(event: StoredEvent) -> Self {
        match event {
            StoredEvent::Created {
                job_id,
                at,
                input_data,
                metadata,
            } => Self::Created {
                job_id,
                at,
                input_data: input_data.into(),
                metadata,
            },
            StoredEvent::Status {
                job_id,
                at,
                status,
                progress,
                message,
                step,
            } => Self::Status {
                job_id,
                at,
                status,
                progress,
                message,
                step,
            },
            StoredEvent::Artifact {
                job_id,
                at,
                artifact,
            } => Self::Artifact {
                job_id,
                at,
                artifact,
            },
            StoredEvent::Completed {
                job_id,
                at,
                final_status,
                summary,
                artifacts,
                message,
            } => Self::Completed {
                job_id,
                at,
                final_status,
                summary,
                artifacts,
                message,
            },
        }
    }
}
