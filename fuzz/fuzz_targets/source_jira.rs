//! Jira parser: any body. An accepted body is always valid JSON and kept
//! byte for byte.
#![no_main]

use bytes::Bytes;
use hookroom::source::{JiraSource, Parsed, Source};
use hookroom::verify::dangerous;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let headers = http::HeaderMap::new();
    let parsed = JiraSource::new().parse(
        "jira",
        &headers,
        Bytes::copy_from_slice(data),
        dangerous::assume_verified(0),
    );
    if let Ok(Parsed::Event(e)) = parsed {
        assert!(serde_json::from_slice::<&serde_json::value::RawValue>(&e.payload).is_ok());
        assert_eq!(&e.payload[..], data);
    }
});
