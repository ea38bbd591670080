//! `RuleRouter::explain` gives the decision `route` makes, for arbitrary
//! routes and payloads, and a `no_match` verdict only for a route that
//! really does not match.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};

use hookroom::route::{Mismatch, RouteDecision, RouteSpec, Router, RuleRouter, Verdict};
use hookroom::verify::dangerous;
use hookroom::{Event, Verified};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("name")].prop_map(str::to_owned)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0i64..3).prop_map(Value::from),
        prop_oneof![Just("x"), Just("y")].prop_map(Value::from),
    ]
}

/// JSON text (objects may repeat keys), or now and then not JSON at all.
fn payload() -> impl Strategy<Value = String> {
    let json = leaf()
        .prop_map(|v| v.to_string())
        .prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key(), inner), 0..4).prop_map(|fields| {
                    let fields: Vec<String> = fields
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", json!(k)))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        });
    prop_oneof![9 => json, 1 => Just("a=x&b=y".to_owned())]
}

fn route() -> impl Strategy<Value = RouteSpec> {
    (
        prop_oneof![Just("*"), Just("github"), Just("slack")],
        prop_oneof![
            Just("*"),
            Just("issues.*"),
            Just("issues.labeled"),
            Just("push")
        ],
        prop::collection::btree_map(
            prop::collection::vec(key(), 1..3).prop_map(|p| p.join(".")),
            prop_oneof![Just(json!("x")), Just(json!(true)), Just(json!(1))],
            0..3,
        ),
        1u32..4,
    )
        .prop_map(|(source, event, filter, priority)| {
            let mut spec = RouteSpec::new(source, event, format!("room-{source}-{event}"))
                .with_priority(priority);
            spec.filter = filter;
            spec
        })
}

fn routed(router: &RuleRouter, source: &str, name: &str, payload: &str) -> Option<String> {
    let event = Verified::new(
        Event {
            source: source.into(),
            name: name.into(),
            delivery_id: "d".into(),
            title: String::new(),
            description: String::new(),
            url: None,
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        },
        dangerous::assume_verified(0),
    );
    match router.route(&event) {
        RouteDecision::Deliver(route) => Some(route.room.to_string()),
        RouteDecision::Ignore { .. } => None,
    }
}

proptest! {
    #[test]
    fn explain_agrees_with_route(
        routes in prop::collection::vec(route(), 0..6),
        default in prop::option::of(Just("general".to_owned())),
        source in prop_oneof![Just("github"), Just("slack"), Just("jira")],
        name in prop_oneof![Just("issues.labeled"), Just("issues.opened"), Just("push")],
        body in payload(),
    ) {
        let router = RuleRouter::new(routes, default).unwrap();
        let explained = router.explain(source, name, body.as_bytes());
        prop_assert_eq!(
            explained.room().map(str::to_owned),
            routed(&router, source, name, &body),
            "{}", body
        );
        prop_assert_eq!(explained.routes.len(), router.routes().len());
        let selected = explained
            .routes
            .iter()
            .filter(|c| c.verdict == Verdict::Selected)
            .count();
        prop_assert!(selected <= 1);
        for check in &explained.routes {
            // A route alone in a router matches exactly when its verdict
            // is not `no_match`.
            let alone = RuleRouter::new(vec![check.spec.clone()], None).unwrap();
            let matches = routed(&alone, source, name, &body).is_some();
            match &check.verdict {
                Verdict::NoMatch { failed } => {
                    prop_assert!(!matches, "{:?} on {}", check, body);
                    if let Mismatch::Filter { field, .. } = failed {
                        prop_assert!(check.spec.filter.contains_key(field));
                    }
                }
                _ => prop_assert!(matches, "{:?} on {}", check, body),
            }
        }
    }
}
