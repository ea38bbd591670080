//! Payload filters: the streaming check must agree with the tree check on
//! any payload and any field path, and routing must not panic.
//!
//! Input: `field path \n payload`; the first byte also picks the expected value.
#![no_main]

use bytes::Bytes;
use hookroom::route::{FieldFilter, RouteSpec, Router, RuleRouter};
use hookroom::verify::dangerous;
use hookroom::{Event, Verified};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Some(&pick) = data.first() else { return };
    let (field, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"label"[..], data),
    };
    let expected = match pick % 4 {
        0 => json!("AI-WIP"),
        1 => json!(1),
        2 => json!(true),
        _ => json!(-2.5),
    };
    if let Ok(field) = std::str::from_utf8(field) {
        if let Ok(filter) = FieldFilter::new(field, &expected) {
            let streamed = filter.matches_json(payload);
            match serde_json::from_slice::<Value>(payload) {
                Ok(tree) => assert_eq!(streamed, filter.matches(&tree), "{field}"),
                Err(_) => assert!(!streamed),
            }
        }
    }

    let routes = (0..4)
        .map(|i| {
            RouteSpec::new("*", "*", format!("r{i}")).with_filter("issue.labels", format!("l{i}"))
        })
        .collect();
    let router = RuleRouter::new(routes, None).expect("valid routes");
    let event = Event {
        source: "s".into(),
        name: "e".into(),
        delivery_id: "d".into(),
        title: String::new(),
        description: String::new(),
        url: None,
        payload: Bytes::copy_from_slice(payload),
    };
    let _ = router.route(&Verified::new(event, dangerous::assume_verified(0)));
});
