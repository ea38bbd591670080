//! Regression tests for the verifier hardening findings: each test names the
//! defect it pins and fails on the code before its fix.

use std::time::{Duration, Instant};

use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{
    self, MAX_SIGNATURES, StandardWebhooksAsymmetricVerifier, V1aSigningKey,
};
use hookroom::verify::{
    BearerVerifier, ConfigError, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier,
    Secret, Secrets, SlackVerifier, StandardWebhooksVerifier, StripeVerifier, Verifier,
    VerifyError,
};
use http::HeaderMap;

const NOW: i64 = 1_700_000_000;

fn standard_headers(signatures: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
    headers.insert("webhook-signature", signatures.parse().unwrap());
    headers
}

const MALFORMED_SIGNATURE: Result<hookroom::verify::Verification, VerifyError> =
    Err(VerifyError::MalformedHeader {
        header: standard_webhooks::SIGNATURE_HEADER,
    });

/// Finding: thousands of `v1a` entries each cost an ed25519 check (a SHA-512
/// of the whole body) per key, for any unauthenticated request. They are now
/// refused before any check.
#[test]
fn asymmetric_verifier_refuses_thousands_of_signature_entries_quickly() {
    let keys: Vec<String> = (0..4u8)
        .map(|i| V1aSigningKey::from_seed([i + 1; 32]).public_key_whpk())
        .collect();
    let verifier = StandardWebhooksAsymmetricVerifier::new(&keys)
        .unwrap()
        .with_clock(ManualClock::at_unix(NOW));
    let body = vec![b'x'; 1 << 20];
    // A well-formed but wrong signature, repeated: each would pass the cheap
    // checks and reach the hash.
    let forger = V1aSigningKey::from_seed([99; 32]);
    let one = forger.sign("msg_1", NOW, &body);
    let header = vec![one.as_str(); 5_000].join(" ");
    let headers = standard_headers(&header);

    let started = Instant::now();
    assert_eq!(verifier.verify(&headers, &body), MALFORMED_SIGNATURE);
    // 5,000 entries × 4 keys × 1 MiB of SHA-512 would take tens of seconds;
    // refused before any check, it takes microseconds. Generous bound.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // The cap itself: MAX_SIGNATURES entries are checked, one more is refused.
    let signer = V1aSigningKey::from_seed([1; 32]);
    let good = signer.sign("msg_1", NOW, b"{}");
    let at_cap = [vec![one.as_str(); MAX_SIGNATURES - 1], vec![good.as_str()]].concat();
    assert_eq!(
        verifier
            .verify(&standard_headers(&at_cap.join(" ")), b"{}")
            .map(|v| v.key_index()),
        Ok(0)
    );
    let over_cap = [vec![one.as_str(); MAX_SIGNATURES], vec![good.as_str()]].concat();
    assert_eq!(
        verifier.verify(&standard_headers(&over_cap.join(" ")), b"{}"),
        MALFORMED_SIGNATURE
    );
}

/// Finding: the same cap applies to the symmetric `v1` list.
#[test]
fn symmetric_verifier_caps_signature_entries_too() {
    let key = b"0123456789abcdef0123456789abcdef";
    let verifier = StandardWebhooksVerifier::from_raw_keys(Secret::new(&key[..]).unwrap())
        .with_clock(ManualClock::at_unix(NOW));
    let good = standard_webhooks::sign(key, "msg_1", NOW, b"{}");
    let wrong = standard_webhooks::sign(b"other key", "msg_1", NOW, b"{}");
    let at_cap = [
        vec![wrong.as_str(); MAX_SIGNATURES - 1],
        vec![good.as_str()],
    ]
    .concat();
    assert!(
        verifier
            .verify(&standard_headers(&at_cap.join(" ")), b"{}")
            .is_ok()
    );
    let over_cap = [vec![wrong.as_str(); MAX_SIGNATURES], vec![good.as_str()]].concat();
    assert_eq!(
        verifier.verify(&standard_headers(&over_cap.join(" ")), b"{}"),
        MALFORMED_SIGNATURE
    );
    let flood = vec![wrong.as_str(); 10_000].join(" ");
    assert_eq!(
        verifier.verify(&standard_headers(&flood), b"{}"),
        MALFORMED_SIGNATURE
    );
}

/// Finding: `GithubVerifier::new("")` and friends built an HMAC with an
/// empty key that anyone can compute. Verifiers now take only `Secret`s, and
/// no `Secret` is empty or whitespace.
#[test]
fn no_verifier_can_be_built_with_an_empty_or_blank_secret() {
    for blank in ["", " ", "\n", "\t \r\n"] {
        let err = Secret::new(blank).unwrap_err();
        assert!(matches!(err, ConfigError::EmptySecret { .. }), "{blank:?}");
        assert!(Secrets::try_from(blank).is_err());
        assert!(Secrets::try_from(["good", blank]).is_err());
        assert!(Secrets::try_from(blank.as_bytes()).is_err());
        // An environment variable set to an empty value is an error, not a key.
        assert_eq!(
            Secret::from_env_value("GITHUB_WEBHOOK_SECRET", Some(blank.to_owned())).unwrap_err(),
            ConfigError::EmptySecret {
                origin: "GITHUB_WEBHOOK_SECRET".into()
            }
        );
    }
    // Keys that decode to nothing, or to whitespace, are refused too.
    for whsec in ["whsec_", "whsec_ICAg"] {
        let secret = Secret::new(whsec).unwrap();
        assert!(StandardWebhooksVerifier::new(secret).is_err(), "{whsec}");
    }
    for whpk in ["", "   ", "whpk_"] {
        assert!(matches!(
            StandardWebhooksAsymmetricVerifier::new([whpk]),
            Err(ConfigError::InvalidKey { .. })
        ));
    }
    for whsk in ["", "   ", "whsk_"] {
        assert!(matches!(
            V1aSigningKey::from_whsk(whsk),
            Err(ConfigError::InvalidKey { .. })
        ));
    }
    // The constructors that do exist take validated secrets.
    let s = || Secret::new("s3cret").unwrap();
    let _: Vec<Box<dyn Verifier>> = vec![
        Box::new(GithubVerifier::new(s())),
        Box::new(JiraVerifier::new(s())),
        Box::new(SlackVerifier::new(s())),
        Box::new(StripeVerifier::new(s())),
        Box::new(HuggingFaceVerifier::new(s())),
        Box::new(BearerVerifier::new(s())),
        Box::new(StandardWebhooksVerifier::from_raw_keys(s())),
        Box::new(HmacVerifier::builder("X-Sig").build(s()).unwrap()),
    ];
}

/// Finding: a timestamp header whose value is not signed was accepted, so
/// freshness was checked on a header anyone can change.
#[test]
fn hmac_timestamp_header_must_be_signed() {
    let secret = || Secret::new("s").unwrap();
    assert_eq!(
        HmacVerifier::builder("X-Sig")
            .timestamp_header("X-Timestamp")
            .build(secret())
            .unwrap_err(),
        ConfigError::UnsignedTimestamp
    );
    assert_eq!(
        HmacVerifier::builder("X-Sig")
            .timestamp_header("X-Timestamp")
            .signed_content("{header:X-Other}.{body}")
            .build(secret())
            .unwrap_err(),
        ConfigError::UnsignedTimestamp
    );
    // Signed through `{timestamp}`, or by naming the header: accepted.
    assert!(
        HmacVerifier::builder("X-Sig")
            .timestamp_header("X-Timestamp")
            .signed_content("{timestamp}.{body}")
            .build(secret())
            .is_ok()
    );
    assert!(
        HmacVerifier::builder("X-Sig")
            .timestamp_header("X-Timestamp")
            .signed_content("{header:x-timestamp}.{body}")
            .build(secret())
            .is_ok()
    );
}
