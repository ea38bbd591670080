//! `X-Slack-Signature` and `X-Slack-Request-Timestamp` parsing.
#![no_main]

use hookroom::verify::slack;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if slack::parse_signature(data).is_ok() {
        assert_eq!(data.len(), 3 + 64);
    }
    if let Ok(seconds) = slack::parse_timestamp(data) {
        assert!(seconds >= 0);
        assert!(seconds.to_string().len() <= data.len());
    }
});
