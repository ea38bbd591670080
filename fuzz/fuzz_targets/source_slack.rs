//! Slack parser: any body as JSON, as a form, and with no content type.
#![no_main]

use bytes::Bytes;
use hookroom::source::{SlackSource, Source};
use hookroom::verify::Verification;
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 3] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    None,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    if let Some(ct) = TYPES[pick as usize % TYPES.len()] {
        headers.insert("content-type", http::HeaderValue::from_static(ct));
    }
    let _ = SlackSource::new().parse(
        "slack",
        &headers,
        Bytes::copy_from_slice(body),
        Verification::assertion(0),
    );
});
