//! GitHub parser: any body under each kind of `X-GitHub-Event`.
#![no_main]

use bytes::Bytes;
use hookroom::source::{GithubSource, Source};
use hookroom::verify::Verification;
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
    headers.insert(
        "x-github-event",
        http::HeaderValue::from_static(EVENTS[pick as usize % EVENTS.len()]),
    );
    headers.insert("x-github-delivery", http::HeaderValue::from_static("d"));
    let _ = GithubSource::new().parse(
        "github",
        &headers,
        Bytes::copy_from_slice(body),
        Verification::assertion(0),
    );
});
