//! `Authorization: Bearer` parsing: a token is non-empty and space-free.
#![no_main]

use hookroom::verify::bearer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = bearer::parse_authorization(data) {
        assert!(!token.is_empty());
        assert!(!token.contains(&b' '));
    }
});
