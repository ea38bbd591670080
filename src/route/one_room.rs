//! [`OneRoom`]: a router that sends every event to one room.

use std::sync::Arc;
use std::time::Duration;

use super::{DEFAULT_PRIORITY, Route, RouteDecision, Router};
use crate::event::{Event, Verified};

/// A [`Router`] that sends every event to one room, at one priority: for a
/// service with a single kind of work, or a first test before writing routes
/// ([`RuleRouter`](super::RuleRouter) routes by source, event and payload).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use hookroom::route::{OneRoom, RouteDecision, Router};
/// use hookroom::service::WebhookService;
/// use hookroom::task::InMemoryTaskStore;
/// use hookroom::verify::dangerous;
/// use hookroom::{Event, Verified};
///
/// let router = OneRoom::new("inbox").priority(1).ttl(Duration::from_secs(3600));
/// let event = Verified::new(
///     Event {
///         source: "github".into(),
///         name: "push".into(),
///         delivery_id: "d-1".into(),
///         title: "push to main".into(),
///         description: String::new(),
///         url: None,
///         payload: bytes::Bytes::new(),
///     },
///     dangerous::assume_verified(0),
/// );
/// let RouteDecision::Deliver(route) = router.route(&event) else {
///     unreachable!("OneRoom delivers everything");
/// };
/// assert_eq!((&*route.room, route.priority), ("inbox", 1));
///
/// // As the webhook service's router:
/// let service = WebhookService::builder(Arc::new(router), Arc::new(InMemoryTaskStore::new()))
///     .build();
/// # let _ = service;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneRoom {
    route: Route,
}

impl OneRoom {
    /// Every event to `room`, at [`DEFAULT_PRIORITY`], with no TTL.
    pub fn new(room: impl Into<Arc<str>>) -> Self {
        Self {
            route: Route {
                room: room.into(),
                priority: DEFAULT_PRIORITY,
                ttl: None,
            },
        }
    }

    /// The tasks' priority (1 is claimed before 2).
    pub fn priority(mut self, priority: u32) -> Self {
        self.route.priority = priority;
        self
    }

    /// How long each task may stay unclaimed before it expires.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.route.ttl = Some(ttl);
        self
    }

    /// The room.
    pub fn room(&self) -> &str {
        &self.route.room
    }
}

impl Router for OneRoom {
    fn route(&self, _event: &Verified<Event>) -> RouteDecision {
        RouteDecision::Deliver(self.route.clone())
    }
}
