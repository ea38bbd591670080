//! The `verify_all` fuzz target's committed seeds are genuinely signed
//! requests (so the fuzzer starts next to the accepting paths), each accepted
//! by exactly the verifier of its scheme.

use std::path::PathBuf;

use hookroom::clock::ManualClock;
use hookroom::verify::{
    BearerVerifier, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier, SlackVerifier,
    StandardWebhooksVerifier, StripeVerifier, Verifier,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Same time and secret as fuzz/fuzz_targets/verify_all.rs.
const NOW: i64 = 1_700_000_000;
const SECRET: &str = "fuzz-secret";

fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let split = data.windows(2).position(|w| w == b"\n\n").unwrap();
    let (head, body) = (&data[..split], &data[split + 2..]);
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let colon = line.iter().position(|&b| b == b':').unwrap();
        headers.append(
            HeaderName::from_bytes(&line[..colon]).unwrap(),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).unwrap(),
        );
    }
    (headers, body)
}

#[test]
fn each_seed_is_accepted_by_its_scheme_only() {
    let clock = ManualClock::at_unix(NOW);
    let verifiers: Vec<(&str, Box<dyn Verifier>)> = vec![
        (
            "github",
            Box::new(GithubVerifier::new(
                hookroom::verify::Secrets::try_from(SECRET).unwrap(),
            )),
        ),
        (
            "jira",
            Box::new(JiraVerifier::new(
                hookroom::verify::Secrets::try_from(SECRET).unwrap(),
            )),
        ),
        (
            "slack",
            Box::new(
                SlackVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                    .with_clock(clock.clone()),
            ),
        ),
        (
            "huggingface",
            Box::new(HuggingFaceVerifier::new(
                hookroom::verify::Secrets::try_from(SECRET).unwrap(),
            )),
        ),
        (
            "bearer",
            Box::new(BearerVerifier::new(
                hookroom::verify::Secrets::try_from(SECRET).unwrap(),
            )),
        ),
        (
            "stripe",
            Box::new(
                StripeVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                    .with_clock(clock.clone()),
            ),
        ),
        (
            "standard",
            Box::new(
                StandardWebhooksVerifier::from_raw_keys(
                    hookroom::verify::Secrets::try_from(SECRET).unwrap(),
                )
                .with_clock(clock.clone()),
            ),
        ),
        (
            "generic",
            Box::new(
                HmacVerifier::builder("X-Signature")
                    .prefix("sha256=")
                    .timestamp_header("X-Timestamp")
                    .signed_content("{timestamp}.{header:X-Id}.{body}")
                    .clock(clock)
                    .build(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                    .unwrap(),
            ),
        ),
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/verify_all");
    for (scheme, _) in &verifiers {
        let data = std::fs::read(dir.join(format!("seed-{scheme}"))).unwrap();
        let (headers, body) = request(&data);
        let accepted: Vec<&str> = verifiers
            .iter()
            .filter(|(_, v)| v.verify(&headers, body).is_ok())
            .map(|(name, _)| *name)
            .collect();
        assert_eq!(accepted, [*scheme], "seed-{scheme}");
    }
}
