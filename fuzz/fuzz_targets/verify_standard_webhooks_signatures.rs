//! `webhook-signature` list parsing: never panics, never yields more entries
//! than there are space-separated pieces.
#![no_main]

use hookroom::verify::standard_webhooks::parse_signatures;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pieces = data.split(|&b| b == b' ').filter(|p| !p.is_empty()).count();
    assert_eq!(parse_signatures(data).count(), pieces);
});
