//! Filter matching over any payload (only parsed because a route filters).
#![no_main]

use bytes::Bytes;
use hookroom::route::{RouteSpec, Router, RuleRouter};
use hookroom::verify::Verification;
use hookroom::{Event, Verified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let router = RuleRouter::new(
        vec![
            RouteSpec::new("*", "*", "labels").with_filter("issue.labels", "AI-WIP").with_priority(1),
            RouteSpec::new("*", "*", "num").with_filter("a.b.c", 1.5).with_filter("label", true),
        ],
        None,
    )
    .expect("valid routes");
    let event = Event {
        source: "s".into(),
        name: "e".into(),
        delivery_id: "d".into(),
        title: String::new(),
        description: String::new(),
        url: None,
        payload: Bytes::copy_from_slice(data),
    };
    let _ = router.route(&Verified::new(event, Verification::assertion(0)));
});
