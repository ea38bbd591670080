//! `X-Hub-Signature-256` / `X-Hub-Signature` parsing: never panics, and
//! accepts only `sha256=` + 64 lowercase hex digits.
#![no_main]

use hookroom::verify::{github, jira};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = github::parse_header(data);
    assert_eq!(parsed.is_ok(), jira::parse_header(data).is_ok());
    if parsed.is_ok() {
        assert_eq!(data.len(), 7 + 64);
        assert!(data.starts_with(b"sha256="));
    }
});
