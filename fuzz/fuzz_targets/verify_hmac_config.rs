//! Generic HMAC configuration: signed-content templates and signature
//! decoding. Input: `template\nsignature`.
#![no_main]

use hookroom::verify::{SignatureEncoding, SignedContent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (template, signature) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(template) = std::str::from_utf8(template) {
        if SignedContent::parse(template).is_ok() {
            assert!(template.contains("{body}"));
        }
    }
    for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
        let _ = encoding.decode(signature);
    }
});
