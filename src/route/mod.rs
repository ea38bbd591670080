//! Step 4 of the data flow: choosing the room (and priority) for an event.
//!
//! [`Router`] is the contract; [`RuleRouter`] is the reference router over
//! the rules of a routes file ([`RoutesConfig`]), changeable at run time
//! without locking the hot path. [`RuleRouter::explain`] says why an event
//! goes where it goes ([`Explanation`]), and [`RoutesFile`] writes run-time
//! changes back to the routes file atomically.
//!
//! A routes file that cannot be used is a [`RoutesConfigError`]; it reads
//! its secrets through the one loader, [`Secret`](crate::verify::Secret),
//! and wraps the loader's [`ConfigError`](crate::verify::ConfigError).

mod config;
mod error;
mod explain;
mod file;
mod filter;
mod glob;
mod one_room;
mod rule;
mod secret;

pub use config::{ConfigWarning, DEFAULT_PRIORITY, RouteError, RouteSpec, RoutesConfig};
pub use error::RoutesConfigError;
pub use explain::{
    ExplainedDecision, Explanation, FilterMiss, MAX_EXPLAINED_VALUES, Mismatch, RouteCheck, Verdict,
};
pub use file::{RoutesFile, SaveError};
pub use filter::{FieldFilter, FilterError};
pub use glob::{Glob, GlobError};
pub use one_room::OneRoom;
pub use rule::{RouteEntry, RouteId, RuleRouter};
pub use secret::SecretSource;

use std::sync::Arc;
use std::time::Duration;

use crate::event::{Event, Verified};

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Target room.
    pub room: Arc<str>,
    /// Task priority: 1 is claimed before 2.
    pub priority: u32,
    /// How long the task may stay unclaimed before it expires (`None`: never).
    pub ttl: Option<Duration>,
}

/// What the router decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// Store a task in this room.
    Deliver(Route),
    /// Acknowledge the delivery without storing a task.
    Ignore {
        /// Why, for the answer body and the operations log.
        reason: String,
    },
}

/// Chooses a room for each verified event.
///
/// Called on the hot path of every request: implementations must not block.
pub trait Router: std::fmt::Debug + Send + Sync + 'static {
    /// Decides where `event` goes.
    fn route(&self, event: &Verified<Event>) -> RouteDecision;
}

impl<R: Router + ?Sized> Router for Arc<R> {
    fn route(&self, event: &Verified<Event>) -> RouteDecision {
        (**self).route(event)
    }
}
