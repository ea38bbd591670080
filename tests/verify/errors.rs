//! Every error variant formats (Debug and Display) without request data, and
//! no verifier's Debug output shows a secret.

use hookroom::ErrorCode;
use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
use hookroom::verify::{
    BearerVerifier, ConfigError, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier,
    Secret, Secrets, SlackVerifier, StandardWebhooksVerifier, StripeVerifier, VerifyError,
};

fn verify_errors() -> Vec<VerifyError> {
    vec![
        VerifyError::MissingHeader {
            header: "X-Hub-Signature-256",
        },
        VerifyError::MalformedHeader {
            header: "Stripe-Signature",
        },
        VerifyError::DuplicateHeader {
            header: "webhook-signature",
        },
        VerifyError::SignatureMismatch,
        VerifyError::TimestampOutOfTolerance,
    ]
}

fn config_errors() -> Vec<ConfigError> {
    vec![
        ConfigError::EnvVarMissing {
            name: "GITHUB_SECRET".into(),
        },
        ConfigError::EnvVarNotUnicode {
            name: "GITHUB_SECRET".into(),
        },
        ConfigError::FileUnreadable {
            path: "/run/secrets/github".into(),
            kind: std::io::ErrorKind::NotFound,
        },
        ConfigError::EmptySecret {
            origin: "/run/secrets/github".into(),
        },
        ConfigError::InvalidKey {
            expected: "`whsec_` followed by base64",
        },
        ConfigError::InvalidHeaderName { setting: "header" },
        ConfigError::InvalidTemplate {
            reason: "`{body}` must appear exactly once",
        },
        ConfigError::UnsignedTimestamp,
    ]
}

fn is_snake_case(code: &str) -> bool {
    !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

#[test]
fn verify_error_variants_format_and_have_stable_codes() {
    let codes: Vec<&str> = verify_errors().iter().map(ErrorCode::code).collect();
    assert_eq!(
        codes,
        [
            "missing_header",
            "malformed_header",
            "duplicate_header",
            "signature_mismatch",
            "timestamp_out_of_tolerance"
        ]
    );
    for err in verify_errors() {
        let debug = format!("{err:?}");
        let display = err.to_string();
        assert!(!debug.is_empty() && !display.is_empty());
        assert!(is_snake_case(err.code()));
        let _: &dyn std::error::Error = &err;
    }
    assert_eq!(
        VerifyError::MissingHeader {
            header: "X-Hub-Signature-256"
        }
        .to_string(),
        "missing header `X-Hub-Signature-256`"
    );
}

#[test]
fn config_error_variants_format_and_name_the_origin() {
    let mut codes = Vec::new();
    for err in config_errors() {
        let debug = format!("{err:?}");
        let display = err.to_string();
        assert!(!debug.is_empty() && !display.is_empty());
        assert!(is_snake_case(err.code()));
        codes.push(err.code());
    }
    codes.dedup();
    assert_eq!(codes.len(), config_errors().len(), "codes are distinct");
    assert!(config_errors()[0].to_string().contains("GITHUB_SECRET"));
    assert!(
        config_errors()[2]
            .to_string()
            .contains("/run/secrets/github")
    );
}

#[test]
fn no_verifier_debug_shows_a_secret() {
    const SECRET: &str = "s3cr3t-DO-NOT-PRINT";
    let whsec = "whsec_czNjcjN0LURPLU5PVC1QUklOVA=="; // base64 of SECRET
    let secrets = || Secrets::from(Secret::new(SECRET).unwrap()).with(Secret::new(SECRET).unwrap());
    let signing_key = V1aSigningKey::from_seed([5; 32]);
    let whsk = String::from_utf8(signing_key.to_whsk().expose().to_vec()).unwrap();
    let shown = [
        format!("{:?}", Secret::new(SECRET).unwrap()),
        format!("{}", Secret::new(SECRET).unwrap()),
        format!("{:?}", secrets()),
        format!("{:?}", GithubVerifier::new(secrets())),
        format!("{:?}", JiraVerifier::new(secrets())),
        format!(
            "{:?}",
            SlackVerifier::new(secrets()).with_clock(ManualClock::at_unix(0))
        ),
        format!("{:?}", HuggingFaceVerifier::new(secrets())),
        format!("{:?}", BearerVerifier::new(secrets())),
        format!("{:?}", StripeVerifier::new(secrets())),
        format!(
            "{:?}",
            StandardWebhooksVerifier::new(Secret::new(whsec).unwrap()).unwrap()
        ),
        format!(
            "{:?}",
            HmacVerifier::builder("X-Sig").build(secrets()).unwrap()
        ),
        format!(
            "{:?}",
            StandardWebhooksAsymmetricVerifier::new([signing_key.public_key_whpk()]).unwrap()
        ),
        format!("{signing_key:?}"),
    ];
    for text in &shown {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("czNjcjN0"), "{text}");
        assert!(!text.contains(&whsk[5..]), "{text}");
    }
    assert!(shown[3].contains("GithubVerifier"));
}
