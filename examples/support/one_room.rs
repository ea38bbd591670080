//! Shared by the mounting examples: a router sending everything to one room,
//! and a secret read from the environment with a loud development fallback.

use std::sync::Arc;

use hookroom::route::{Route, RouteDecision, Router};
use hookroom::verify::{ConfigError, Secret};
use hookroom::{Event, Verified};

#[derive(Debug)]
struct OneRoom(Arc<str>);

impl Router for OneRoom {
    fn route(&self, _event: &Verified<Event>) -> RouteDecision {
        RouteDecision::Deliver(Route {
            room: Arc::clone(&self.0),
            priority: 2,
            ttl: None,
        })
    }
}

/// Routes every event to `room`.
pub(crate) fn router(room: &str) -> Arc<dyn Router> {
    Arc::new(OneRoom(Arc::from(room)))
}

/// The secret in `var`, or a development secret (announced on stderr) when
/// `var` is not set. A variable that is set but empty (or only whitespace)
/// is an error, not a key.
pub(crate) fn secret_from_env(var: &str) -> Result<Secret, ConfigError> {
    match Secret::from_env(var) {
        Err(ConfigError::EnvVarMissing { .. }) => {
            let dev = format!(
                "hookroom-dev-{}",
                var.to_ascii_lowercase().replace('_', "-")
            );
            eprintln!("WARNING: {var} is not set; using the development secret `{dev}`");
            Secret::new(dev)
        }
        other => other,
    }
}
