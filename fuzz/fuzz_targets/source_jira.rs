//! Jira parser: any body.
#![no_main]

use bytes::Bytes;
use hookroom::source::{JiraSource, Source};
use hookroom::verify::Verification;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let headers = http::HeaderMap::new();
    let _ = JiraSource::new().parse(
        "jira",
        &headers,
        Bytes::copy_from_slice(data),
        Verification::assertion(0),
    );
});
