//! Slack parser: any body as JSON, as a form, and with no content type. An
//! accepted JSON body is always valid JSON.
#![no_main]

use bytes::Bytes;
use hookroom::source::{Parsed, SlackSource, Source};
use hookroom::verify::dangerous;
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
    let parsed = SlackSource::new().parse(
        "slack",
        &headers,
        Bytes::copy_from_slice(body),
        dangerous::assume_verified(0),
    );
    if let Ok(Parsed::Event(e)) = parsed {
        assert!(!e.name.is_empty() && !e.delivery_id.is_empty());
        if pick % 3 == 0 {
            assert!(serde_json::from_slice::<&serde_json::value::RawValue>(&e.payload).is_ok());
        }
    }
});
