//! Routes file parser; a valid file is also compiled into a router and used.
#![no_main]

use bytes::Bytes;
use hookroom::route::{Router, RoutesConfig, RuleRouter};
use hookroom::verify::dangerous;
use hookroom::{Event, Verified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = RoutesConfig::from_slice(data) else {
        return;
    };
    let _ = config.resolve_secrets_with(&|name| (name.len() % 2 == 0).then(|| name.to_owned()));
    let _ = config.to_json();
    let router = RuleRouter::from_config(&config).expect("a validated config always compiles");
    let event = Event {
        source: "github".into(),
        name: "issues.labeled".into(),
        delivery_id: "d".into(),
        title: String::new(),
        description: String::new(),
        url: None,
        payload: Bytes::from_static(
            br#"{"label":{"name":"AI-WIP"},"issue":{"labels":[{"name":"bug"}],"number":1}}"#,
        ),
    };
    let _ = router.route(&Verified::new(event, dangerous::assume_verified(0)));
});
