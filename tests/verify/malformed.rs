//! Truncated, prefixed, empty, upper-cased and doubled signatures, for every
//! scheme: each is handled as the scheme defines (an error, never a panic,
//! and never an acceptance of a shortened signature: RUSTSEC-2024-0010).

use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
use hookroom::verify::{
    BearerVerifier, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier,
    SignatureEncoding, SlackVerifier, StandardWebhooksVerifier, StripeVerifier, Verifier,
    VerifyError, bearer, github, jira, slack, standard_webhooks, stripe,
};
use http::{HeaderMap, HeaderValue};

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"action":"opened","number":42}"#;

/// What a mutated signature header must produce.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Ok,
    Mismatch,
    Malformed,
}

struct Case {
    name: &'static str,
    verifier: Box<dyn Verifier>,
    /// The request's other headers.
    base: HeaderMap,
    /// The header that carries the signature (or token).
    header: &'static str,
    good: String,
    /// empty, truncated by one, leading junk, upper-cased, value doubled
    expect: [Expect; 5],
}

fn cases() -> Vec<Case> {
    let clock = ManualClock::at_unix(NOW);
    let mut slack_base = HeaderMap::new();
    slack_base.insert(
        "X-Slack-Request-Timestamp",
        NOW.to_string().parse().unwrap(),
    );
    let mut sw_base = HeaderMap::new();
    sw_base.insert("webhook-id", "msg_1".parse().unwrap());
    sw_base.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
    let sw_key = b"0123456789abcdef0123456789abcdef";
    let v1a = V1aSigningKey::from_seed([3; 32]);
    use Expect::*;
    vec![
        Case {
            name: "github",
            verifier: Box::new(GithubVerifier::new(
                hookroom::verify::Secrets::try_from("s").unwrap(),
            )),
            base: HeaderMap::new(),
            header: "X-Hub-Signature-256",
            good: github::sign(b"s", BODY),
            expect: [Malformed, Malformed, Malformed, Malformed, Malformed],
        },
        Case {
            name: "jira",
            verifier: Box::new(JiraVerifier::new(
                hookroom::verify::Secrets::try_from("s").unwrap(),
            )),
            base: HeaderMap::new(),
            header: "X-Hub-Signature",
            good: jira::sign(b"s", BODY),
            expect: [Malformed, Malformed, Malformed, Malformed, Malformed],
        },
        Case {
            name: "slack",
            verifier: Box::new(
                SlackVerifier::new(hookroom::verify::Secrets::try_from("s").unwrap())
                    .with_clock(clock.clone()),
            ),
            base: slack_base,
            header: "X-Slack-Signature",
            good: slack::sign(b"s", NOW, BODY),
            expect: [Malformed, Malformed, Malformed, Malformed, Malformed],
        },
        Case {
            name: "standard webhooks v1",
            verifier: Box::new(
                StandardWebhooksVerifier::from_raw_keys(
                    hookroom::verify::Secrets::try_from(&sw_key[..]).unwrap(),
                )
                .with_clock(clock.clone()),
            ),
            base: sw_base.clone(),
            header: "webhook-signature",
            good: standard_webhooks::sign(sw_key, "msg_1", NOW, BODY),
            // A list: entries that are not a well-formed `v1` never match.
            expect: [Malformed, Mismatch, Mismatch, Mismatch, Mismatch],
        },
        Case {
            name: "standard webhooks v1a",
            verifier: Box::new(
                StandardWebhooksAsymmetricVerifier::new([v1a.public_key_whpk()])
                    .unwrap()
                    .with_clock(clock.clone()),
            ),
            base: sw_base,
            header: "webhook-signature",
            good: v1a.sign("msg_1", NOW, BODY),
            expect: [Malformed, Mismatch, Mismatch, Mismatch, Mismatch],
        },
        Case {
            name: "stripe",
            verifier: Box::new(
                StripeVerifier::new(hookroom::verify::Secrets::try_from("s").unwrap())
                    .with_clock(clock.clone()),
            ),
            base: HeaderMap::new(),
            header: "Stripe-Signature",
            good: stripe::sign(b"s", NOW, BODY),
            // Junk before `t=` or upper-cased keys lose the timestamp: malformed.
            // Doubling the value yields one `t` and a valid last `v1`: Stripe's
            // format accepts the genuine signature among junk entries.
            expect: [Malformed, Mismatch, Malformed, Malformed, Ok],
        },
        Case {
            name: "generic hmac (hex, either case)",
            verifier: Box::new(
                HmacVerifier::builder("X-Signature")
                    .prefix("sha256=")
                    .build(hookroom::verify::Secrets::try_from("s").unwrap())
                    .unwrap(),
            ),
            base: HeaderMap::new(),
            header: "X-Signature",
            good: github::sign(b"s", BODY),
            expect: [Malformed, Malformed, Malformed, Malformed, Malformed],
        },
        Case {
            name: "generic hmac (base64)",
            verifier: Box::new(
                HmacVerifier::builder("X-Signature")
                    .encoding(SignatureEncoding::Base64)
                    .build(hookroom::verify::Secrets::try_from("s").unwrap())
                    .unwrap(),
            ),
            base: HeaderMap::new(),
            header: "X-Signature",
            good: {
                let v = HmacVerifier::builder("X-Signature")
                    .encoding(SignatureEncoding::Base64)
                    .build(hookroom::verify::Secrets::try_from("s").unwrap())
                    .unwrap();
                v.sign(b"s", &HeaderMap::new(), BODY).unwrap()
            },
            // Upper-cased base64 is other bytes of the right length.
            expect: [Malformed, Malformed, Malformed, Mismatch, Malformed],
        },
        Case {
            name: "hugging face",
            verifier: Box::new(HuggingFaceVerifier::new(
                hookroom::verify::Secrets::try_from("hf-secret").unwrap(),
            )),
            base: HeaderMap::new(),
            header: "X-Webhook-Secret",
            good: "hf-secret".to_owned(),
            expect: [Malformed, Mismatch, Mismatch, Mismatch, Mismatch],
        },
        Case {
            name: "bearer",
            verifier: Box::new(BearerVerifier::new(
                hookroom::verify::Secrets::try_from("tok_123").unwrap(),
            )),
            base: HeaderMap::new(),
            header: "Authorization",
            good: bearer::sign(&hookroom::verify::Secret::new("tok_123").unwrap())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned(),
            // The scheme name is case-insensitive, the token is not; a doubled
            // value holds a space inside the token.
            expect: [Malformed, Mismatch, Malformed, Mismatch, Malformed],
        },
    ]
}

fn with(case: &Case, value: &str) -> HeaderMap {
    let mut headers = case.base.clone();
    headers.insert(case.header, HeaderValue::from_str(value).unwrap());
    headers
}

fn classify(result: Result<hookroom::verify::Verification, VerifyError>) -> Expect {
    match result {
        Ok(_) => Expect::Ok,
        Err(VerifyError::SignatureMismatch) => Expect::Mismatch,
        Err(VerifyError::MalformedHeader { .. }) => Expect::Malformed,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn the_genuine_signature_verifies() {
    for case in cases() {
        assert!(
            case.verifier.verify(&with(&case, &case.good), BODY).is_ok(),
            "{}",
            case.name
        );
    }
}

#[test]
fn mutated_signatures_are_handled_as_each_scheme_defines() {
    for case in cases() {
        let good = case.good.as_str();
        let mutations = [
            String::new(),
            good[..good.len() - 1].to_owned(),
            format!("0{good}"),
            good.to_uppercase(),
            format!("{good}{good}"),
        ];
        for (mutation, expect) in mutations.iter().zip(case.expect) {
            let got = classify(case.verifier.verify(&with(&case, mutation), BODY));
            assert_eq!(got, expect, "{}: {mutation:?}", case.name);
        }
    }
}

#[test]
fn no_truncation_of_any_length_is_accepted() {
    for case in cases() {
        for len in 0..case.good.len() {
            let headers = with(&case, &case.good[..len]);
            assert!(
                case.verifier.verify(&headers, BODY).is_err(),
                "{} len {len}",
                case.name
            );
        }
    }
}

#[test]
fn the_signature_header_sent_twice_is_refused() {
    for case in cases() {
        let mut headers = with(&case, &case.good);
        headers.append(case.header, HeaderValue::from_str(&case.good).unwrap());
        assert!(
            matches!(
                case.verifier.verify(&headers, BODY),
                Err(VerifyError::DuplicateHeader { .. })
            ),
            "{}",
            case.name
        );
    }
}

#[test]
fn a_missing_signature_header_is_named() {
    for case in cases() {
        assert!(
            matches!(
                case.verifier.verify(&case.base, BODY),
                Err(VerifyError::MissingHeader { .. })
            ),
            "{}",
            case.name
        );
    }
}
