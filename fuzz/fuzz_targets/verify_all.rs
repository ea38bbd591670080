//! Arbitrary headers and bodies through every verifier: none panics.
//!
//! Input: HTTP-like `Name: value` lines, an empty line, then the body, so the
//! seed corpus can hold real signed requests for the fuzzer to mutate.
#![no_main]

use std::sync::LazyLock;

use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
use hookroom::verify::{
    BearerVerifier, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier,
    SignatureEncoding, SlackVerifier, StandardWebhooksVerifier, StripeVerifier, Verifier,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// The time the seed corpus was signed at.
const NOW: i64 = 1_700_000_000;
const SECRET: &str = "fuzz-secret";

static VERIFIERS: LazyLock<Vec<Box<dyn Verifier>>> = LazyLock::new(|| {
    let clock = ManualClock::at_unix(NOW);
    vec![
        Box::new(GithubVerifier::new(
            hookroom::verify::Secrets::try_from(["other", SECRET]).unwrap(),
        )),
        Box::new(JiraVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        )),
        Box::new(
            SlackVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .with_clock(clock.clone()),
        ),
        Box::new(HuggingFaceVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        )),
        Box::new(BearerVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        )),
        Box::new(
            StripeVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .with_clock(clock.clone()),
        ),
        Box::new(
            StandardWebhooksVerifier::from_raw_keys(
                hookroom::verify::Secrets::try_from(SECRET).unwrap(),
            )
            .with_clock(clock.clone()),
        ),
        Box::new(
            StandardWebhooksAsymmetricVerifier::from_verifying_keys(vec![
                V1aSigningKey::from_seed([7; 32]).verifying_key(),
            ])
            .with_clock(clock.clone()),
        ),
        Box::new(
            HmacVerifier::builder("X-Signature")
                .prefix("sha256=")
                .timestamp_header("X-Timestamp")
                .signed_content("{timestamp}.{header:X-Id}.{body}")
                .clock(clock.clone())
                .build(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .expect("valid configuration"),
        ),
        Box::new(
            HmacVerifier::builder("X-Signature")
                .encoding(SignatureEncoding::Base64)
                .build(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .expect("valid configuration"),
        ),
    ]
});

fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    (headers, body)
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = request(data);
    for verifier in VERIFIERS.iter() {
        let first = verifier.verify(&headers, body);
        assert_eq!(first, verifier.verify(&headers, body), "deterministic");
    }
});
