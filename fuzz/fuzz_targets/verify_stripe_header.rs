//! `Stripe-Signature` parsing: never panics; a parsed header has a
//! non-negative timestamp and at least one `v1` entry.
#![no_main]

use hookroom::verify::stripe;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = stripe::parse_header(data) {
        assert!(header.timestamp() >= 0);
        assert!(header.v1_signatures().count() >= 1);
    }
});
