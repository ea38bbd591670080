//! `explain_route`: where an event would go and why, route by route.

use bytes::Bytes;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::event::{Event, Verified};
use crate::route::{RouteDecision, Router, RuleRouter};
use crate::verify::dangerous;

/// One route's verdict.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct CandidateOut {
    /// Route id.
    id: u64,
    /// Its room.
    target_room: String,
    /// Its priority.
    priority: u32,
    /// Whether its source glob matches.
    source_matches: bool,
    /// Whether its event glob matches.
    event_matches: bool,
    /// Each filter field and whether it holds: {"field", "matches"}.
    filters: Vec<Value>,
    /// Whether this route matches the event.
    matches: bool,
}

/// The router's decision and every route's verdict.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExplainOut {
    /// `deliver` or `ignore`.
    decision: String,
    /// Target room when delivered.
    room: Option<String>,
    /// Task priority when delivered.
    priority: Option<u32>,
    /// TTL of the task when delivered and it has one.
    ttl_seconds: Option<u64>,
    /// Why the event is ignored.
    reason: Option<String>,
    /// The routes in evaluation order (the first match wins).
    routes: Vec<CandidateOut>,
}

/// Explains where an event of `source`/`event` with `payload` goes.
pub(crate) fn explain(
    router: &RuleRouter,
    source: String,
    event: String,
    payload: &Value,
) -> ExplainOut {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let routes = router
        .routes()
        .into_iter()
        .map(|entry| {
            let (source_glob, event_glob, filters) = match entry.spec.compile() {
                Ok(compiled) => compiled,
                Err(_) => {
                    return CandidateOut {
                        id: entry.id.get(),
                        target_room: entry.spec.target_room,
                        priority: entry.spec.priority,
                        source_matches: false,
                        event_matches: false,
                        filters: Vec::new(),
                        matches: false,
                    };
                }
            };
            let source_matches = source_glob.matches(&source);
            let event_matches = event_glob.matches(&event);
            let filters: Vec<(String, bool)> = filters
                .iter()
                .map(|f| (f.field().to_owned(), f.matches(payload)))
                .collect();
            let matches = source_matches && event_matches && filters.iter().all(|(_, m)| *m);
            CandidateOut {
                id: entry.id.get(),
                target_room: entry.spec.target_room,
                priority: entry.spec.priority,
                source_matches,
                event_matches,
                filters: filters
                    .into_iter()
                    .map(|(field, matches)| serde_json::json!({"field": field, "matches": matches}))
                    .collect(),
                matches,
            }
        })
        .collect();
    let verified = Verified::new(
        Event {
            source,
            name: event,
            delivery_id: "explain".into(),
            title: String::new(),
            description: String::new(),
            url: None,
            payload: Bytes::from(body),
        },
        // Routing only: nothing is stored or trusted.
        dangerous::assume_verified(0),
    );
    match router.route(&verified) {
        RouteDecision::Deliver(route) => ExplainOut {
            decision: "deliver".into(),
            room: Some(route.room.to_string()),
            priority: Some(route.priority),
            ttl_seconds: route.ttl.map(|t| t.as_secs()),
            reason: None,
            routes,
        },
        RouteDecision::Ignore { reason } => ExplainOut {
            decision: "ignore".into(),
            room: None,
            priority: None,
            ttl_seconds: None,
            reason: Some(reason),
            routes,
        },
    }
}
