//! Property tests: for arbitrary secrets and bodies, what each scheme's `sign`
//! produces verifies, and changing any one byte of the body, of a signed
//! header (signature, timestamp, message id) or of the secret is rejected.

use base64::Engine as _;
use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
use hookroom::verify::{
    BearerVerifier, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier, Secret,
    SignatureEncoding, SlackVerifier, StandardWebhooksVerifier, StripeVerifier, Verification,
    Verifier, bearer, github, huggingface, jira, slack, standard_webhooks, stripe,
};
use http::{HeaderMap, HeaderValue};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

const NOW: i64 = 1_700_000_000;

/// A scheme under test: how to build its verifier and sign a request.
struct Scheme {
    verifier: fn(&[u8]) -> Box<dyn Verifier>,
    sign: fn(&[u8], &[u8]) -> HeaderMap,
    /// Headers whose every byte is covered by the signature.
    signed_headers: &'static [&'static str],
    /// Whether the body is covered (not for shared-token schemes).
    signs_body: bool,
}

fn clock() -> ManualClock {
    ManualClock::at_unix(NOW)
}

fn single(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_str(value).unwrap());
    headers
}

fn whsec(key: &[u8]) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

fn generic() -> hookroom::verify::HmacVerifierBuilder {
    HmacVerifier::builder("X-Signature")
        .prefix("t1=")
        .encoding(SignatureEncoding::Base64)
        .timestamp_header("X-Timestamp")
        .signed_content("{timestamp}:{header:X-Id}:{body}")
        .clock(clock())
}

const GITHUB: Scheme = Scheme {
    verifier: |s| Box::new(GithubVerifier::new(s)),
    sign: |s, b| single("X-Hub-Signature-256", &github::sign(s, b)),
    signed_headers: &["X-Hub-Signature-256"],
    signs_body: true,
};

const JIRA: Scheme = Scheme {
    verifier: |s| Box::new(JiraVerifier::new(s)),
    sign: |s, b| single("X-Hub-Signature", &jira::sign(s, b)),
    signed_headers: &["X-Hub-Signature"],
    signs_body: true,
};

const SLACK: Scheme = Scheme {
    verifier: |s| Box::new(SlackVerifier::new(s).with_clock(clock())),
    sign: |s, b| {
        let mut headers = single("X-Slack-Signature", &slack::sign(s, NOW, b));
        headers.insert(
            "X-Slack-Request-Timestamp",
            NOW.to_string().parse().unwrap(),
        );
        headers
    },
    signed_headers: &["X-Slack-Signature", "X-Slack-Request-Timestamp"],
    signs_body: true,
};

const STANDARD: Scheme = Scheme {
    verifier: |s| {
        Box::new(
            StandardWebhooksVerifier::new(whsec(s))
                .unwrap()
                .with_clock(clock()),
        )
    },
    sign: |s, b| {
        let mut headers = single(
            "webhook-signature",
            &standard_webhooks::sign(s, "msg_2Kx", NOW, b),
        );
        headers.insert("webhook-id", "msg_2Kx".parse().unwrap());
        headers.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
        headers
    },
    signed_headers: &["webhook-signature", "webhook-timestamp", "webhook-id"],
    signs_body: true,
};

const STRIPE: Scheme = Scheme {
    verifier: |s| Box::new(StripeVerifier::new(s).with_clock(clock())),
    sign: |s, b| single("Stripe-Signature", &stripe::sign(s, NOW, b)),
    signed_headers: &["Stripe-Signature"],
    signs_body: true,
};

const GENERIC: Scheme = Scheme {
    verifier: |s| Box::new(generic().build(s).unwrap()),
    sign: |s, b| {
        let mut headers = HeaderMap::new();
        headers.insert("X-Timestamp", NOW.to_string().parse().unwrap());
        headers.insert("X-Id", "delivery-7".parse().unwrap());
        let verifier = generic().build(Vec::<Secret>::new()).unwrap();
        let signature = verifier.sign(s, &headers, b).unwrap();
        headers.insert("X-Signature", signature.parse().unwrap());
        headers
    },
    signed_headers: &["X-Signature", "X-Timestamp", "X-Id"],
    signs_body: true,
};

const HUGGING_FACE: Scheme = Scheme {
    verifier: |s| Box::new(HuggingFaceVerifier::new(s)),
    sign: |s, _| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Webhook-Secret",
            huggingface::sign(&Secret::from(s)).unwrap(),
        );
        headers
    },
    signed_headers: &["X-Webhook-Secret"],
    signs_body: false,
};

const BEARER: Scheme = Scheme {
    verifier: |s| Box::new(BearerVerifier::new(s)),
    sign: |s, _| {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            bearer::sign(&Secret::from(s)).unwrap(),
        );
        headers
    },
    signed_headers: &["Authorization"],
    signs_body: false,
};

/// Replaces byte `at` of `name`'s value with `with` (when that changes it
/// and stays a valid header value).
///
/// In `Authorization`, the `Bearer ` scheme name is case-insensitive
/// (RFC 7235 §2.1), so only the token's bytes are changed there.
fn change_header(headers: &HeaderMap, name: &str, at: Index, with: u8) -> Option<HeaderMap> {
    let mut bytes = headers.get(name)?.as_bytes().to_vec();
    let skip = if name.eq_ignore_ascii_case("authorization") {
        "Bearer ".len()
    } else {
        0
    };
    if bytes.len() <= skip {
        return None;
    }
    let i = skip + at.index(bytes.len() - skip);
    if bytes[i] == with {
        return None;
    }
    bytes[i] = with;
    let mut changed = headers.clone();
    changed.insert(
        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_bytes(&bytes).ok()?,
    );
    Some(changed)
}

fn check(
    scheme: &Scheme,
    secret: &[u8],
    body: &[u8],
    at: Index,
    flip: u8,
    with: u8,
) -> Result<(), TestCaseError> {
    let verifier = (scheme.verifier)(secret);
    let headers = (scheme.sign)(secret, body);
    prop_assert_eq!(
        verifier.verify(&headers, body),
        Ok(Verification::assertion(0))
    );

    if scheme.signs_body && !body.is_empty() {
        let mut changed = body.to_vec();
        changed[at.index(body.len())] ^= flip;
        prop_assert!(verifier.verify(&headers, &changed).is_err());
        prop_assert!(verifier.verify(&headers, &body[..body.len() - 1]).is_err());
    }
    for name in scheme.signed_headers {
        if let Some(changed) = change_header(&headers, name, at, with) {
            prop_assert!(verifier.verify(&changed, body).is_err(), "{name}");
        }
    }
    if !secret.is_empty() {
        let mut other = secret.to_vec();
        other[at.index(secret.len())] ^= flip;
        prop_assert!((scheme.verifier)(&other).verify(&headers, body).is_err());
    }
    Ok(())
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    "[A-Za-z0-9_.~+/=-]{1,64}".prop_map(String::into_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn github_round_trips(secret in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..512),
                          at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&GITHUB, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn jira_round_trips(secret in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..512),
                        at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&JIRA, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn slack_round_trips(secret in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..512),
                         at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&SLACK, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn standard_webhooks_round_trips(secret in vec(any::<u8>(), 1..80), body in vec(any::<u8>(), 0..512),
                                     at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&STANDARD, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn stripe_round_trips(secret in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..512),
                          at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&STRIPE, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn generic_hmac_round_trips(secret in vec(any::<u8>(), 0..80), body in vec(any::<u8>(), 0..512),
                                at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&GENERIC, &secret, &body, at, flip, with)?;
    }

    #[test]
    fn hugging_face_round_trips(secret in token(), at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&HUGGING_FACE, &secret, b"", at, flip, with)?;
    }

    #[test]
    fn bearer_round_trips(secret in token(), at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        check(&BEARER, &secret, b"", at, flip, with)?;
    }
}

proptest! {
    // ed25519 in a debug build is slow; fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn standard_webhooks_v1a_round_trips(seed: [u8; 32], body in vec(any::<u8>(), 1..256),
                                         at: Index, flip in 1u8.., with in 0x21u8..0x7f) {
        let key = V1aSigningKey::from_seed(seed);
        let verifier = StandardWebhooksAsymmetricVerifier::new([key.public_key_whpk()])
            .unwrap()
            .with_clock(clock());
        let mut headers = single("webhook-signature", &key.sign("msg_9", NOW, &body));
        headers.insert("webhook-id", "msg_9".parse().unwrap());
        headers.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
        prop_assert_eq!(verifier.verify(&headers, &body), Ok(Verification::assertion(0)));

        let mut changed = body.clone();
        changed[at.index(body.len())] ^= flip;
        prop_assert!(verifier.verify(&headers, &changed).is_err());
        for name in ["webhook-signature", "webhook-timestamp", "webhook-id"] {
            if let Some(changed) = change_header(&headers, name, at, with) {
                prop_assert!(verifier.verify(&changed, &body).is_err(), "{}", name);
            }
        }
    }
}
