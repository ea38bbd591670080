//! Generic parser: the first line is a JSON pointer for the event name and
//! title, the rest is the body (also parsed with the default locators). An
//! accepted body is always valid JSON.
#![no_main]

use bytes::Bytes;
use hookroom::source::{GenericSource, Locator, Parsed, Source};
use hookroom::verify::dangerous;
use libfuzzer_sys::fuzz_target;

fn check(parsed: Result<Parsed, hookroom::source::ParseError>) {
    if let Ok(Parsed::Event(e)) = parsed {
        assert!(serde_json::from_slice::<&serde_json::value::RawValue>(&e.payload).is_ok());
        assert!(!e.name.is_empty() && !e.delivery_id.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let headers = http::HeaderMap::new();
    let (pointer, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let body = Bytes::copy_from_slice(body);
    check(GenericSource::new().parse(
        "generic",
        &headers,
        body.clone(),
        dangerous::assume_verified(0),
    ));
    if let Ok(Ok(locator)) = std::str::from_utf8(pointer).map(Locator::pointer) {
        let source = GenericSource::new()
            .event_fallback(None)
            .event_from(vec![locator.clone()])
            .title_from(locator);
        check(source.parse("generic", &headers, body, dangerous::assume_verified(0)));
    }
});
