//! [`Deliverer`]: an event becomes a task in a room, and the task's job.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::event::{Event, Verified};
use crate::route::{RouteDecision, Router};
use crate::status::{JobEvent, StatusSink, TaskSummary};
use crate::task::{NewTask, Payload, StoreError, TaskId, TaskStore};

/// Delivers verified events: routes each one, stores what the route decides
/// as a new task, and publishes the task's job (`PENDING`) to the status
/// sink.
///
/// The [`WebhookService`](crate::service::WebhookService) delivers every
/// webhook through one, and the Routes API's replay
/// ([`RoutesApi`](crate::service::RoutesApi)) every replayed delivery, so a
/// replayed task gets its job as a fresh webhook's does.
///
/// A task is stored before its job is published, and the job is published
/// before [`deliver`](Self::deliver) returns: whoever hears of the task can
/// find its job. An agent already waiting on the room may claim the task in
/// between and report `RUNNING` first; the job is then created on that report
/// ([`report_to_job`](super::report_to_job)), the sink refuses this
/// `PENDING` as a duplicate, and the history still starts `PENDING`. A sink
/// that refuses the job is logged, never an error: the task is already
/// stored, and the task store is the source of truth.
///
/// Cloning is cheap; clones share their collaborators.
///
/// # Example
/// ```
/// use std::sync::Arc;
///
/// use hookroom::ops::{Delivered, Deliverer};
/// use hookroom::route::{RoutesConfig, RuleRouter};
/// use hookroom::status::{InMemoryStatusSink, JobRegistry, JobStatus};
/// use hookroom::task::InMemoryTaskStore;
/// use hookroom::verify::dangerous;
/// use hookroom::{Event, Verified};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let routes = RoutesConfig::from_json(
///     r#"{"routes": [{"source": "github", "event": "push", "target_room": "ci"}]}"#,
/// )?;
/// let jobs = InMemoryStatusSink::new();
/// let deliverer = Deliverer::new(
///     Arc::new(RuleRouter::from_config(&routes)?),
///     Arc::new(InMemoryTaskStore::new()),
/// )
/// .status_sink(Arc::new(jobs.clone()));
///
/// let event = Event {
///     source: "github".into(),
///     name: "push".into(),
///     delivery_id: "d-1".into(),
///     title: "push to main".into(),
///     description: String::new(),
///     url: None,
///     payload: bytes::Bytes::from_static(b"{}"),
/// };
/// // A webhook's signature was checked by its verifier; here it is assumed.
/// let event = Verified::new(event, dangerous::assume_verified(0));
/// let Delivered::Accepted { task_id, room } = deliverer.deliver(event).await? else {
///     panic!("the route sends pushes to `ci`");
/// };
/// assert_eq!(&*room, "ci");
/// let job = jobs.job(task_id.as_str(), false).await?.expect("the job was created");
/// assert_eq!(job.job.status, JobStatus::Pending);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Deliverer {
    router: Arc<dyn Router>,
    store: Arc<dyn TaskStore>,
    /// `None`: jobs are neither described nor published, which saves
    /// building their input on every delivery.
    sink: Option<Arc<dyn StatusSink>>,
    clock: Arc<dyn Clock>,
}

/// What became of a delivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A new task was stored in `room`, and its job published.
    Accepted {
        /// The new task.
        task_id: TaskId,
        /// Where the route sent it.
        room: Arc<str>,
    },
    /// The store already held a task for the event's `(source,
    /// delivery_id)`; nothing was stored or published.
    Duplicate {
        /// The task stored the first time.
        task_id: TaskId,
        /// Where the route sends the event now.
        room: Arc<str>,
    },
    /// The router ignores the event; nothing was stored.
    Ignored {
        /// The router's reason.
        reason: String,
    },
}

impl Deliverer {
    /// Delivers with `router` into `store`, publishing no job until a
    /// [`status_sink`](Self::status_sink) is set, with timestamps from the
    /// [`SystemClock`].
    pub fn new(router: Arc<dyn Router>, store: Arc<dyn TaskStore>) -> Self {
        Self {
            router,
            store,
            sink: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Publishes each new task's job (`PENDING`) to `sink`.
    pub fn status_sink(mut self, sink: Arc<dyn StatusSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Where job events get their time (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Routes `event`, stores it as a task in the room the route names, and
    /// publishes the task's job. See the [type docs](Self).
    ///
    /// # Errors
    /// The store's error when it did not store the task; nothing was
    /// published then.
    pub async fn deliver(&self, event: Verified<Event>) -> Result<Delivered, StoreError> {
        self.deliver_requiring(event, Vec::new()).await
    }

    /// [`deliver`](Self::deliver), for a task only agents with every one of
    /// `capabilities` may claim.
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver).
    pub async fn deliver_requiring(
        &self,
        event: Verified<Event>,
        capabilities: Vec<String>,
    ) -> Result<Delivered, StoreError> {
        let route = match self.router.route(&event) {
            RouteDecision::Deliver(route) => route,
            RouteDecision::Ignore { reason } => return Ok(Delivered::Ignored { reason }),
        };
        let event = event.into_inner();
        let new = NewTask {
            room: route.room.to_string(),
            title: event.title,
            description: event.description,
            priority: route.priority,
            source: event.source,
            source_event: event.name,
            source_url: event.url,
            delivery_id: event.delivery_id,
            payload: Payload::from(event.payload),
            required_capabilities: capabilities,
            ttl: route.ttl,
        };
        // Built before the task moves into the store; one allocation (JSON
        // text), paid by duplicates too, which is cheaper than keeping
        // copies of the fields to build it afterwards.
        let created = self.sink.as_ref().map(|sink| {
            let input_data = TaskSummary {
                room: &new.room,
                source: &new.source,
                event: &new.source_event,
                delivery_id: &new.delivery_id,
                title: &new.title,
                url: new.source_url.as_deref(),
                priority: new.priority,
            }
            .to_input();
            (sink, input_data)
        });
        let inserted = self.store.insert(new).await?;
        if inserted.duplicate {
            return Ok(Delivered::Duplicate {
                task_id: inserted.id,
                room: route.room,
            });
        }
        if let Some((sink, input_data)) = created {
            let job = JobEvent::Created {
                job_id: inserted.id.to_string(),
                at: self.clock.now(),
                input_data,
                metadata: serde_json::Map::new(),
            };
            if let Err(error) = sink.publish(job).await {
                tracing::warn!(%error, code = error.code(), task_id = %inserted.id, "status sink refused the created job");
            }
        }
        Ok(Delivered::Accepted {
            task_id: inserted.id,
            room: route.room,
        })
    }
}
