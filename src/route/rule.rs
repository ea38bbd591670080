//! [`RuleRouter`]: the reference router over the routes file's rules.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use super::RoutesConfigError;
use super::config::{DEFAULT_PRIORITY, RouteError, RouteSpec, RoutesConfig};
use super::explain::{
    ExplainedDecision, Explanation, FilterMiss, MAX_EXPLAINED_VALUES, Mismatch, RouteCheck, Verdict,
};
use super::filter::FieldFilter;
use super::glob::Glob;
use super::{Route, RouteDecision, Router};
use crate::event::{Event, Verified};

/// Identifies a route inside one [`RuleRouter`] (assigned in file order,
/// then in the order routes are added; never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RouteId(u64);

impl RouteId {
    /// The numeric id.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The id with this number (for ids read back from an API call).
    pub fn from_u64(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A route as listed by [`RuleRouter::routes`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteEntry {
    /// Its id, for [`RuleRouter::remove`].
    pub id: RouteId,
    /// The rule.
    #[serde(flatten)]
    pub spec: RouteSpec,
}

#[derive(Debug)]
struct Compiled {
    id: RouteId,
    spec: RouteSpec,
    source: Glob,
    event: Glob,
    filters: Box<[FieldFilter]>,
    route: Route,
}

/// An immutable, compiled rule set; replaced whole on every change.
#[derive(Debug, Default)]
struct RuleSet {
    /// Sorted by `(priority, id)`: the first match is the best one.
    rules: Vec<Arc<Compiled>>,
    default: Option<Route>,
}

impl RuleSet {
    fn with_rules(&self, rules: Vec<Arc<Compiled>>) -> Self {
        let mut rules = rules;
        rules.sort_by_key(|r| (r.route.priority, r.id));
        Self {
            rules,
            default: self.default.clone(),
        }
    }
}

/// Routes events with the rules of a routes file, changeable while it runs.
///
/// For each event, the candidate routes are those whose `source` and `event`
/// globs match; among those whose filters all hold, the lowest `priority`
/// wins and ties go to the route listed (or added) first. With no match the
/// event goes to the default room, or is ignored when there is none.
///
/// # Hot path
/// [`route`](Router::route) takes no lock: the rules live in an immutable
/// compiled set behind an [`ArcSwap`], and [`add`](Self::add),
/// [`remove`](Self::remove) and [`set_default_room`](Self::set_default_room)
/// build a new set and swap it in. The payload is only read when a
/// candidate route has a filter: the first two filter checks are streaming
/// passes that build nothing ([`FieldFilter::matches_json`]); an event that
/// needs more is parsed once into a tree shared by the remaining checks.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::route::{RouteDecision, RouteSpec, Router, RuleRouter};
/// use hookroom::verify::dangerous;
/// use hookroom::{Event, Verified};
///
/// let router = RuleRouter::new(
///     vec![
///         RouteSpec::new("github", "pull_request.*", "pr-review").with_priority(2),
///         RouteSpec::new("github", "issues.labeled", "auto-code")
///             .with_filter("label", "AI-WIP")
///             .with_priority(1),
///     ],
///     Some("general".into()),
/// )
/// .unwrap();
/// let event = |name: &str, payload: &'static str| {
///     Verified::new(
///         Event {
///             source: "github".into(),
///             name: name.into(),
///             delivery_id: "d".into(),
///             title: String::new(),
///             description: String::new(),
///             url: None,
///             payload: Bytes::from_static(payload.as_bytes()),
///         },
///         dangerous::assume_verified(0),
///     )
/// };
/// let room = |d: RouteDecision| match d {
///     RouteDecision::Deliver(r) => r.room.to_string(),
///     RouteDecision::Ignore { reason } => reason,
/// };
/// assert_eq!(room(router.route(&event("pull_request.opened", "{}"))), "pr-review");
/// assert_eq!(room(router.route(&event("issues.labeled", r#"{"label":{"name":"AI-WIP"}}"#))), "auto-code");
/// assert_eq!(room(router.route(&event("issues.labeled", r#"{"label":{"name":"bug"}}"#))), "general");
/// ```
pub struct RuleRouter {
    set: ArcSwap<RuleSet>,
    next_id: AtomicU64,
}

impl fmt::Debug for RuleRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.set.load();
        f.debug_struct("RuleRouter")
            .field("routes", &set.rules.len())
            .field("default_room", &set.default.as_ref().map(|r| &r.room))
            .finish()
    }
}

fn default_route(room: Option<String>) -> Option<Route> {
    room.filter(|r| !r.is_empty()).map(|room| Route {
        room: room.into(),
        priority: DEFAULT_PRIORITY,
        ttl: None,
    })
}

impl RuleRouter {
    /// A router over `routes` (in order) with an optional default room.
    ///
    /// # Errors
    /// [`RoutesConfigError::Route`] naming the first invalid route's index.
    pub fn new(
        routes: Vec<RouteSpec>,
        default_room: Option<String>,
    ) -> Result<Self, RoutesConfigError> {
        let router = Self {
            set: ArcSwap::from_pointee(RuleSet::default()),
            next_id: AtomicU64::new(0),
        };
        router.replace(routes, default_room)?;
        Ok(router)
    }

    /// A router over a routes file's rules and default room.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_config(config: &RoutesConfig) -> Result<Self, RoutesConfigError> {
        Self::new(config.routes.clone(), config.default_room.clone())
    }

    fn compile(&self, spec: RouteSpec) -> Result<Arc<Compiled>, RouteError> {
        let (source, event, filters) = spec.compile()?;
        let route = Route {
            room: spec.target_room.as_str().into(),
            priority: spec.priority,
            ttl: spec.ttl_seconds.map(Duration::from_secs),
        };
        Ok(Arc::new(Compiled {
            id: RouteId(self.next_id.fetch_add(1, Ordering::Relaxed)),
            spec,
            source,
            event,
            filters,
            route,
        }))
    }

    /// Replaces every route and the default room at once (a reload).
    ///
    /// Nothing changes when a route is invalid.
    ///
    /// # Errors
    /// [`RoutesConfigError::Route`] naming the first invalid route's index.
    pub fn replace(
        &self,
        routes: Vec<RouteSpec>,
        default_room: Option<String>,
    ) -> Result<(), RoutesConfigError> {
        let compiled = routes
            .into_iter()
            .enumerate()
            .map(|(index, spec)| {
                self.compile(spec)
                    .map_err(|error| RoutesConfigError::Route { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = RuleSet {
            default: default_route(default_room),
            ..RuleSet::default()
        }
        .with_rules(compiled);
        self.set.store(Arc::new(set));
        Ok(())
    }

    /// The routes in evaluation order (priority, then age).
    pub fn routes(&self) -> Vec<RouteEntry> {
        self.set
            .load()
            .rules
            .iter()
            .map(|r| RouteEntry {
                id: r.id,
                spec: r.spec.clone(),
            })
            .collect()
    }

    /// The default room, if any.
    pub fn default_room(&self) -> Option<Arc<str>> {
        self.set.load().default.as_ref().map(|r| r.room.clone())
    }

    /// Adds a route; it ranks after existing routes of the same priority.
    ///
    /// # Errors
    /// [`RouteError`] when the route is invalid (nothing changes).
    pub fn add(&self, spec: RouteSpec) -> Result<RouteId, RouteError> {
        let compiled = self.compile(spec)?;
        let id = compiled.id;
        self.set.rcu(|set| {
            let mut rules = set.rules.clone();
            rules.push(compiled.clone());
            set.with_rules(rules)
        });
        Ok(id)
    }

    /// Removes the route with this id; `false` if there is none.
    pub fn remove(&self, id: RouteId) -> bool {
        let mut removed = false;
        self.set.rcu(|set| {
            let rules: Vec<_> = set.rules.iter().filter(|r| r.id != id).cloned().collect();
            removed = rules.len() != set.rules.len();
            set.with_rules(rules)
        });
        removed
    }

    /// Removes every route whose `source` and `event` are exactly these
    /// strings (the patterns as written, not what they match); returns how
    /// many were removed.
    pub fn remove_matching(&self, source: &str, event: &str) -> usize {
        let mut removed = 0;
        self.set.rcu(|set| {
            let rules: Vec<_> = set
                .rules
                .iter()
                .filter(|r| !(r.spec.source == source && r.spec.event == event))
                .cloned()
                .collect();
            removed = set.rules.len() - rules.len();
            set.with_rules(rules)
        });
        removed
    }

    /// Sets or clears the default room.
    pub fn set_default_room(&self, room: Option<String>) {
        let default = default_route(room);
        self.set.rcu(|set| RuleSet {
            rules: set.rules.clone(),
            default: default.clone(),
        });
    }
}

impl RuleRouter {
    /// Explains where an event from `source` named `event` with this raw
    /// `payload` would go: the decision [`route`](Router::route) would make,
    /// and for every route the first condition that fails (source glob,
    /// event glob, or a filter field with its expected and actual values),
    /// or whether it matched and was chosen or outranked.
    ///
    /// Uses the same rules as routing, on one parse of the payload; for
    /// diagnostics (the Routes API's `explain`), not the hot path.
    ///
    /// ```
    /// use hookroom::route::{Mismatch, RouteSpec, RuleRouter, Verdict};
    ///
    /// let router = RuleRouter::new(
    ///     vec![RouteSpec::new("github", "issues.labeled", "auto-code").with_filter("label", "AI-WIP")],
    ///     Some("general".into()),
    /// )
    /// .unwrap();
    /// let explained = router.explain("github", "issues.labeled", br#"{"label":{"name":"bug"}}"#);
    /// assert_eq!(explained.room(), Some("general"));
    /// match &explained.routes[0].verdict {
    ///     Verdict::NoMatch { failed: Mismatch::Filter { field, expected, actual, .. } } => {
    ///         assert_eq!((field.as_str(), expected, actual), ("label", &"AI-WIP".into(), &"bug".into()));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn explain(&self, source: &str, event: &str, payload: &[u8]) -> Explanation {
        let set = self.set.load();
        let tree: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
        let mut chosen: Option<&Compiled> = None;
        let mut routes = Vec::with_capacity(set.rules.len());
        for rule in &set.rules {
            let failed = if !rule.source.matches(source) {
                Some(Mismatch::Source {
                    pattern: rule.spec.source.clone(),
                    actual: source.to_owned(),
                })
            } else if !rule.event.matches(event) {
                Some(Mismatch::Event {
                    pattern: rule.spec.event.clone(),
                    actual: event.to_owned(),
                })
            } else {
                rule.filters
                    .iter()
                    .find(|f| !tree.as_ref().is_some_and(|v| f.matches(v)))
                    .map(|f| filter_mismatch(f, tree.as_ref()))
            };
            let verdict = match (failed, chosen) {
                (Some(failed), _) => Verdict::NoMatch { failed },
                (None, Some(winner)) => Verdict::Outranked { by: winner.id },
                (None, None) => {
                    chosen = Some(rule);
                    Verdict::Selected
                }
            };
            routes.push(RouteCheck {
                id: rule.id,
                spec: rule.spec.clone(),
                verdict,
            });
        }
        let decision = match (chosen, &set.default) {
            (Some(rule), _) => ExplainedDecision::Route {
                route_id: rule.id,
                room: rule.route.room.clone(),
                priority: rule.route.priority,
            },
            (None, Some(default)) => ExplainedDecision::DefaultRoom {
                room: default.room.clone(),
                priority: default.priority,
            },
            (None, None) => ExplainedDecision::Ignore {
                reason: no_route_reason(source, event),
            },
        };
        Explanation {
            source: source.to_owned(),
            event: event.to_owned(),
            decision,
            routes,
        }
    }
}

fn filter_mismatch(filter: &FieldFilter, tree: Option<&serde_json::Value>) -> Mismatch {
    let (actual, reason) = match tree {
        None => (serde_json::Value::Null, FilterMiss::NotJson),
        Some(tree) => {
            let mut found = filter.found(tree, MAX_EXPLAINED_VALUES);
            match found.len() {
                0 => (serde_json::Value::Null, FilterMiss::Missing),
                1 => (found.swap_remove(0), FilterMiss::Different),
                _ => (serde_json::Value::Array(found), FilterMiss::Different),
            }
        }
    };
    Mismatch::Filter {
        field: filter.field().to_owned(),
        expected: filter.expected(),
        actual,
        reason,
    }
}

fn no_route_reason(source: &str, event: &str) -> String {
    format!("no route matches {source} event `{event}` and there is no default room")
}

/// Filter checks per event done as streaming passes over the raw payload
/// before switching to one full parse: a streaming pass costs a fraction of
/// building a `serde_json::Value` (`benches/ingest_parse.rs` compares them),
/// so two passes stay cheaper than one tree, and no event costs more than two
/// passes plus one tree.
const STREAMED_FILTER_CHECKS: usize = 2;

impl Router for RuleRouter {
    fn route(&self, event: &Verified<Event>) -> RouteDecision {
        let set = self.set.load();
        // The first filter checks stream over the raw payload; past
        // STREAMED_FILTER_CHECKS the payload is parsed once into a tree and
        // reused (`Some(None)`: the body is not JSON).
        let mut streamed = 0usize;
        let mut tree: Option<Option<serde_json::Value>> = None;
        let mut check = |filter: &FieldFilter| {
            if tree.is_none() && streamed < STREAMED_FILTER_CHECKS {
                streamed += 1;
                return filter.matches_json(&event.payload);
            }
            tree.get_or_insert_with(|| serde_json::from_slice(&event.payload).ok())
                .as_ref()
                .is_some_and(|v| filter.matches(v))
        };
        for rule in &set.rules {
            if !rule.source.matches(&event.source) || !rule.event.matches(&event.name) {
                continue;
            }
            if !rule.filters.iter().all(&mut check) {
                continue;
            }
            return RouteDecision::Deliver(rule.route.clone());
        }
        match &set.default {
            Some(route) => RouteDecision::Deliver(route.clone()),
            None => RouteDecision::Ignore {
                reason: no_route_reason(&event.source, &event.name),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::verify::Verification;

    fn ev(source: &str, name: &str, payload: &'static str) -> Verified<Event> {
        Verified::new(
            Event {
                source: source.into(),
                name: name.into(),
                delivery_id: "d".into(),
                title: String::new(),
                description: String::new(),
                url: None,
                payload: Bytes::from_static(payload.as_bytes()),
            },
            Verification::new(0),
        )
    }

    fn room(d: RouteDecision) -> String {
        match d {
            RouteDecision::Deliver(r) => r.room.to_string(),
            RouteDecision::Ignore { .. } => "<ignored>".into(),
        }
    }

    #[test]
    fn ties_go_to_the_earlier_route_and_lower_priority_wins() {
        let r = RuleRouter::new(
            vec![
                RouteSpec::new("*", "*", "first").with_priority(3),
                RouteSpec::new("*", "*", "second").with_priority(3),
            ],
            None,
        )
        .unwrap();
        assert_eq!(room(r.route(&ev("s", "e", "{}"))), "first");
        let id = r
            .add(RouteSpec::new("s", "e", "added").with_priority(3))
            .unwrap();
        assert_eq!(room(r.route(&ev("s", "e", "{}"))), "first");
        r.add(RouteSpec::new("s", "e", "urgent").with_priority(1))
            .unwrap();
        assert_eq!(room(r.route(&ev("s", "e", "{}"))), "urgent");
        assert_eq!(r.remove_matching("s", "e"), 2);
        assert!(!r.remove(id));
        assert_eq!(r.routes().len(), 2);
    }

    #[test]
    fn ignore_without_default_and_filters_on_non_json() {
        let r = RuleRouter::new(
            vec![RouteSpec::new("slack", "*", "x").with_filter("a", 1)],
            None,
        )
        .unwrap();
        assert_eq!(room(r.route(&ev("slack", "e", "a=1"))), "<ignored>");
        assert_eq!(room(r.route(&ev("slack", "e", r#"{"a":1}"#))), "x");
        r.set_default_room(Some("general".into()));
        assert_eq!(room(r.route(&ev("slack", "e", "a=1"))), "general");
        match r.route(&ev("github", "push", "{}")) {
            RouteDecision::Deliver(route) => assert_eq!(route.priority, DEFAULT_PRIORITY),
            RouteDecision::Ignore { reason } => panic!("{reason}"),
        }
        r.set_default_room(None);
        match r.route(&ev("github", "push", "{}")) {
            RouteDecision::Ignore { reason } => {
                assert!(
                    reason.contains("github") && reason.contains("push"),
                    "{reason}"
                )
            }
            RouteDecision::Deliver(_) => panic!("should be ignored"),
        }
    }

    #[test]
    fn invalid_route_leaves_the_set_unchanged() {
        let r = RuleRouter::new(vec![RouteSpec::new("a", "b", "c")], None).unwrap();
        assert_eq!(
            r.add(RouteSpec::new("a", "b c", "r"))
                .unwrap_err()
                .to_string(),
            "invalid `event` pattern `b c`: the pattern contains whitespace or a control character"
        );
        let err = r
            .replace(
                vec![RouteSpec::new("a", "b", "c"), RouteSpec::new("a", "b", "")],
                None,
            )
            .unwrap_err();
        assert_eq!(
            err,
            RoutesConfigError::Route {
                index: 1,
                error: RouteError::MissingTargetRoom
            }
        );
        assert_eq!(r.routes().len(), 1);
    }

    #[test]
    fn many_filters_switch_to_one_tree_with_the_same_answers() {
        let routes = (0..6)
            .map(|i| {
                RouteSpec::new("*", "*", format!("r{i}"))
                    .with_filter("label", format!("l{i}"))
                    .with_priority(i)
            })
            .collect();
        let r = RuleRouter::new(routes, None).unwrap();
        for i in 0..6 {
            let payload: &'static str =
                Box::leak(format!(r#"{{"label":{{"name":"l{i}"}}}}"#).into_boxed_str());
            assert_eq!(room(r.route(&ev("s", "e", payload))), format!("r{i}"));
        }
        assert_eq!(
            room(r.route(&ev("s", "e", r#"{"label":"none"}"#))),
            "<ignored>"
        );
        assert_eq!(room(r.route(&ev("s", "e", "not json"))), "<ignored>");
    }

    #[test]
    fn ttl_is_carried_into_the_route() {
        let r = RuleRouter::new(
            vec![RouteSpec::new("a", "b", "c").with_ttl_seconds(60)],
            None,
        )
        .unwrap();
        match r.route(&ev("a", "b", "{}")) {
            RouteDecision::Deliver(route) => assert_eq!(route.ttl, Some(Duration::from_secs(60))),
            RouteDecision::Ignore { reason } => panic!("{reason}"),
        }
    }

    fn shipped() -> RuleRouter {
        RuleRouter::new(
            vec![
                RouteSpec::new("github", "pull_request.*", "pr-review").with_priority(2),
                RouteSpec::new("github", "issues.labeled", "auto-code")
                    .with_filter("label", "AI-WIP")
                    .with_filter("repository.private", false)
                    .with_priority(1),
                RouteSpec::new("slack", "app_mention", "slack-support").with_priority(3),
                RouteSpec::new("*", "pull_request.opened", "audit").with_priority(4),
            ],
            Some("general".into()),
        )
        .unwrap()
    }

    fn failed(e: &Explanation, id: u64) -> Mismatch {
        match &e.check(RouteId(id)).unwrap().verdict {
            Verdict::NoMatch { failed } => failed.clone(),
            other => panic!("route {id}: {other:?}"),
        }
    }

    #[test]
    fn explain_names_the_chosen_route_and_the_outranked_ones() {
        let r = shipped();
        let e = r.explain("github", "pull_request.opened", b"{}");
        assert_eq!(
            e.decision,
            ExplainedDecision::Route {
                route_id: RouteId(0),
                room: "pr-review".into(),
                priority: 2
            }
        );
        assert_eq!(e.room(), Some("pr-review"));
        assert_eq!(e.check(RouteId(0)).unwrap().verdict, Verdict::Selected);
        assert_eq!(
            e.check(RouteId(3)).unwrap().verdict,
            Verdict::Outranked { by: RouteId(0) }
        );
        // Evaluation order: priority first.
        let order: Vec<u64> = e.routes.iter().map(|c| c.id.get()).collect();
        assert_eq!(order, [1, 0, 2, 3]);
        assert_eq!(
            failed(&e, 2),
            Mismatch::Source {
                pattern: "slack".into(),
                actual: "github".into()
            }
        );
        assert_eq!(
            failed(&e, 1),
            Mismatch::Event {
                pattern: "issues.labeled".into(),
                actual: "pull_request.opened".into()
            }
        );
    }

    #[test]
    fn explain_gives_the_first_failing_filter_with_expected_and_actual() {
        let r = shipped();
        let payload = br#"{"label":{"name":"bug"},"repository":{"private":true}}"#;
        let e = r.explain("github", "issues.labeled", payload);
        assert_eq!(e.room(), Some("general"));
        assert_eq!(
            e.decision,
            ExplainedDecision::DefaultRoom {
                room: "general".into(),
                priority: DEFAULT_PRIORITY
            }
        );
        // Filters are checked by field name: `label` first.
        assert_eq!(
            failed(&e, 1),
            Mismatch::Filter {
                field: "label".into(),
                expected: "AI-WIP".into(),
                actual: "bug".into(),
                reason: FilterMiss::Different
            }
        );
        let payload = br#"{"label":{"name":"AI-WIP"},"repository":{"private":true}}"#;
        let e = r.explain("github", "issues.labeled", payload);
        assert_eq!(
            failed(&e, 1),
            Mismatch::Filter {
                field: "repository.private".into(),
                expected: false.into(),
                actual: true.into(),
                reason: FilterMiss::Different
            }
        );
        let e = r.explain("github", "issues.labeled", br#"{"label":"AI-WIP"}"#);
        assert_eq!(
            failed(&e, 1),
            Mismatch::Filter {
                field: "repository.private".into(),
                expected: false.into(),
                actual: serde_json::Value::Null,
                reason: FilterMiss::Missing
            }
        );
        let e = r.explain("github", "issues.labeled", b"label=AI-WIP");
        assert!(matches!(
            failed(&e, 1),
            Mismatch::Filter {
                reason: FilterMiss::NotJson,
                ..
            }
        ));
    }

    #[test]
    fn explain_lists_values_found_across_arrays() {
        let r = RuleRouter::new(
            vec![RouteSpec::new("*", "*", "x").with_filter("issue.labels", "AI-WIP")],
            None,
        )
        .unwrap();
        let e = r.explain(
            "github",
            "issues.labeled",
            br#"{"issue":{"labels":[{"name":"bug"},{"name":"docs"}]}}"#,
        );
        assert_eq!(
            failed(&e, 0),
            Mismatch::Filter {
                field: "issue.labels".into(),
                expected: "AI-WIP".into(),
                actual: serde_json::json!(["bug", "docs"]),
                reason: FilterMiss::Different
            }
        );
        match e.decision {
            ExplainedDecision::Ignore { reason } => {
                assert!(reason.contains("issues.labeled"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let many = format!(
            r#"{{"issue":{{"labels":[{}]}}}}"#,
            vec![r#""l""#; 100].join(",")
        );
        let e = r.explain("github", "issues.labeled", many.as_bytes());
        match failed(&e, 0) {
            Mismatch::Filter { actual, .. } => {
                assert_eq!(actual.as_array().unwrap().len(), MAX_EXPLAINED_VALUES)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn explain_agrees_with_route() {
        let r = shipped();
        let payloads: [&'static str; 5] = [
            "{}",
            r#"{"label":{"name":"AI-WIP"},"repository":{"private":false}}"#,
            r#"{"label":"AI-WIP","repository":{"private":false}}"#,
            r#"{"label":{"name":"bug"}}"#,
            "not json",
        ];
        for source in ["github", "slack", "jira"] {
            for name in [
                "pull_request.opened",
                "issues.labeled",
                "app_mention",
                "push",
            ] {
                for payload in payloads {
                    let explained = r.explain(source, name, payload.as_bytes());
                    let routed = room(r.route(&ev(source, name, payload)));
                    assert_eq!(
                        explained.room().unwrap_or("<ignored>"),
                        routed,
                        "{source} {name} {payload}"
                    );
                }
            }
        }
        r.set_default_room(None);
        let e = r.explain("jira", "push", b"{}");
        assert_eq!(e.room(), None);
    }

    #[test]
    fn explanation_serializes_with_flat_routes() {
        let r = shipped();
        let e = r.explain("github", "issues.labeled", br#"{"label":{"name":"bug"}}"#);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["decision"]["outcome"], "default_room");
        assert_eq!(v["decision"]["room"], "general");
        let first = &v["routes"][0];
        assert_eq!(first["id"], 1);
        assert_eq!(first["target_room"], "auto-code");
        assert_eq!(first["result"], "no_match");
        assert_eq!(first["failed"]["condition"], "filter");
        assert_eq!(first["failed"]["expected"], "AI-WIP");
        assert_eq!(first["failed"]["actual"], "bug");
        assert_eq!(v["routes"][1]["failed"]["condition"], "event");
    }
}
