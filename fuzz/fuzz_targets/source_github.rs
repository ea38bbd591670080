//! GitHub parser: any body under each kind of `X-GitHub-Event`. An accepted
//! body is always valid JSON and kept byte for byte.
#![no_main]

use bytes::Bytes;
use hookroom::source::{GithubSource, Parsed, Source};
use hookroom::verify::dangerous;
use libfuzzer_sys::fuzz_target;

const EVENTS: [&str; 6] = [
    "pull_request",
    "issues",
    "push",
    "ping",
    "issue_comment",
    "star",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    let event = EVENTS[pick as usize % EVENTS.len()];
    headers.insert("x-github-event", http::HeaderValue::from_static(event));
    headers.insert("x-github-delivery", http::HeaderValue::from_static("d"));
    let parsed = GithubSource::new().parse(
        "github",
        &headers,
        Bytes::copy_from_slice(body),
        dangerous::assume_verified(0),
    );
    if let Ok(Parsed::Event(e)) = parsed {
        assert!(serde_json::from_slice::<&serde_json::value::RawValue>(&e.payload).is_ok());
        assert_eq!(&e.payload[..], body);
    }
});
