//! [`Explanation`]: why an event goes where it goes, route by route
//! ([`RuleRouter::explain`](super::RuleRouter::explain)).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::config::RouteSpec;
use super::rule::RouteId;

/// The most payload values an explanation lists for one filter field (an
/// array on the path can hold many).
pub const MAX_EXPLAINED_VALUES: usize = 16;

/// Why an event goes where it goes: the decision, and every route in
/// evaluation order with its verdict.
///
/// ```json
/// {"source": "github", "event": "issues.labeled",
///  "decision": {"outcome": "default_room", "room": "general", "priority": 5},
///  "routes": [
///    {"id": 1, "source": "github", "event": "issues.labeled", "filter": {"label": "AI-WIP"},
///     "target_room": "auto-code", "priority": 1,
///     "result": "no_match",
///     "failed": {"condition": "filter", "field": "label", "expected": "AI-WIP", "actual": "bug", "reason": "different"}},
///    {"id": 0, "source": "github", "event": "pull_request.opened", "target_room": "pr-review", "priority": 2,
///     "result": "no_match",
///     "failed": {"condition": "event", "pattern": "pull_request.opened", "actual": "issues.labeled"}}
///  ]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The event's source, as asked.
    pub source: String,
    /// The event's name, as asked.
    pub event: String,
    /// Where the event would go.
    pub decision: ExplainedDecision,
    /// Every route, in evaluation order (priority, then age).
    pub routes: Vec<RouteCheck>,
}

impl Explanation {
    /// The room the event would go to, if any.
    pub fn room(&self) -> Option<&str> {
        match &self.decision {
            ExplainedDecision::Route { room, .. } | ExplainedDecision::DefaultRoom { room, .. } => {
                Some(room)
            }
            ExplainedDecision::Ignore { .. } => None,
        }
    }

    /// The verdict on the route with this id, if the router has it.
    pub fn check(&self, id: RouteId) -> Option<&RouteCheck> {
        self.routes.iter().find(|c| c.id == id)
    }
}

/// Where an explained event would go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExplainedDecision {
    /// This route matched first.
    Route {
        /// The route.
        route_id: RouteId,
        /// Its room.
        room: Arc<str>,
        /// Its priority.
        priority: u32,
    },
    /// No route matched; the default room takes it.
    DefaultRoom {
        /// The default room.
        room: Arc<str>,
        /// The default priority.
        priority: u32,
    },
    /// No route matched and there is no default room: the delivery would
    /// be acknowledged and no task stored.
    Ignore {
        /// The reason the ingest service would give.
        reason: String,
    },
}

/// One route and its verdict on the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteCheck {
    /// The route's id.
    pub id: RouteId,
    /// The rule.
    #[serde(flatten)]
    pub spec: RouteSpec,
    /// What it made of the event.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// What one route made of an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every condition held and this route was chosen.
    Selected,
    /// Every condition held, but an earlier route (lower priority number,
    /// or the same priority and older) was chosen.
    Outranked {
        /// The chosen route.
        by: RouteId,
    },
    /// A condition failed.
    NoMatch {
        /// The first condition that failed, checked in the order source,
        /// event, then filter fields by name.
        failed: Mismatch,
    },
}

/// The first condition of a route that an event fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "condition", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Mismatch {
    /// The source glob does not match the event's source.
    Source {
        /// The route's pattern.
        pattern: String,
        /// The event's source.
        actual: String,
    },
    /// The event glob does not match the event's name.
    Event {
        /// The route's pattern.
        pattern: String,
        /// The event's name.
        actual: String,
    },
    /// A payload filter does not hold.
    Filter {
        /// The filter's dotted field path.
        field: String,
        /// The value the filter wants.
        expected: Value,
        /// What the payload holds there: one value, an array of the values
        /// found when the path crosses arrays (at most
        /// [`MAX_EXPLAINED_VALUES`]), or `null` when nothing is there.
        actual: Value,
        /// Which of those it is.
        reason: FilterMiss,
    },
}

/// Why a filter does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FilterMiss {
    /// The field holds a different value (or values, none equal).
    Different,
    /// The field is not in the payload.
    Missing,
    /// The payload is not JSON, so no filter can hold.
    NotJson,
}
