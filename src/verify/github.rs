//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! GitHub signs the raw body with the webhook's secret and sends the lowercase
//! hex tag after `sha256=`.
//!
//! **No replay protection.** The scheme signs neither a timestamp nor the
//! `X-GitHub-Delivery` id: a captured request (body and signature) stays
//! valid forever, and anyone holding one can send it again under a fresh
//! delivery id. De-duplicating delivery ids (as the task store does on
//! insert) suppresses GitHub's own redeliveries of the same delivery and
//! honest retries; it does not stop a replay, because the id is not signed.
//! Keep signed requests (and the secret) out of logs, and use TLS.
//!
//! ```
//! use hookroom::verify::{github, GithubVerifier, Secret, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! // GitHub's documented example.
//! let verifier = GithubVerifier::new(Secret::new("It's a Secret to Everybody")?);
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "X-Hub-Signature-256",
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?,
//! );
//! assert_eq!(verifier.verify(&headers, b"Hello, World!")?.key_index(), 0);
//! assert_eq!(verifier.verify(&headers, b"Hello, World?"), Err(VerifyError::SignatureMismatch));
//!
//! // What GitHub computes, for senders and tests:
//! let header = github::sign(b"It's a Secret to Everybody", b"Hello, World!");
//! assert_eq!(header, headers["X-Hub-Signature-256"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::{HeaderMap, HeaderName};

use super::common::{HmacKeys, TAG_LEN, decode_hex_lower, encode_hex, header_once, hmac_tag};
use super::{Secrets, Verification, Verifier, VerifyError};

/// The header GitHub sends the signature in.
pub const HEADER: &str = "X-Hub-Signature-256";
const HEADER_NAME: HeaderName = HeaderName::from_static("x-hub-signature-256");
const PREFIX: &[u8] = b"sha256=";

/// Verifies GitHub's `X-Hub-Signature-256` header. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct GithubVerifier {
    inner: PrefixedHexHmac,
}

impl GithubVerifier {
    /// A verifier accepting a signature from any of `secrets` (rotation: the
    /// first is index 0).
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            inner: PrefixedHexHmac::new(&secrets.into(), HEADER_NAME, HEADER),
        }
    }
}

impl Verifier for GithubVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        self.inner.verify(headers, body)
    }
}

/// Parses an `X-Hub-Signature-256` value into the 32-byte tag.
///
/// Accepts exactly `sha256=` followed by 64 lowercase hex digits, the only
/// form GitHub sends; a truncated, extended or upper-cased value is
/// malformed and never compared.
///
/// # Errors
/// [`VerifyError::MalformedHeader`].
pub fn parse_header(value: &[u8]) -> Result<[u8; TAG_LEN], VerifyError> {
    parse_prefixed_hex(value, HEADER)
}

/// The `X-Hub-Signature-256` value a sender computes for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    sign_prefixed_hex(secret, body)
}

pub(crate) fn parse_prefixed_hex(
    value: &[u8],
    label: &'static str,
) -> Result<[u8; TAG_LEN], VerifyError> {
    value
        .strip_prefix(PREFIX)
        .and_then(decode_hex_lower)
        .ok_or(VerifyError::MalformedHeader { header: label })
}

pub(crate) fn sign_prefixed_hex(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", encode_hex(&hmac_tag(secret, &[body])))
}

/// `sha256=<hex>` HMAC-SHA256 of the raw body in one header: GitHub and Jira.
#[derive(Debug, Clone)]
pub(crate) struct PrefixedHexHmac {
    keys: HmacKeys,
    header: HeaderName,
    label: &'static str,
}

impl PrefixedHexHmac {
    pub(crate) fn new(secrets: &Secrets, header: HeaderName, label: &'static str) -> Self {
        Self {
            keys: HmacKeys::new(secrets),
            header,
            label,
        }
    }

    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Verification, VerifyError> {
        let value = header_once(headers, &self.header, self.label)?;
        let presented = parse_prefixed_hex(value, self.label)?;
        self.keys
            .find(|mac| hmac::Mac::update(mac, body), &presented)
            .map(Verification::new)
            .ok_or(VerifyError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::secret::test_secrets;

    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn rotation_reports_the_matching_index() {
        let verifier = GithubVerifier::new(test_secrets(["new", "It's a Secret to Everybody"]));
        assert_eq!(verifier.verify(&headers(SIG), BODY).unwrap().key_index(), 1);
    }

    #[test]
    fn malformed_variants_are_rejected_before_comparing() {
        let verifier = GithubVerifier::new(test_secrets("It's a Secret to Everybody"));
        let malformed = VerifyError::MalformedHeader { header: HEADER };
        for bad in [
            &SIG[..SIG.len() - 2],
            &SIG[..7],
            "",
            "sha256=",
            &SIG.to_uppercase(),
            &SIG.replace("sha256=", "SHA256="),
            &format!("{SIG}{}", &SIG[7..]),
            &format!("{SIG}00"),
            &SIG[7..],
            &format!("sha1={}", &SIG[7..]),
        ] {
            assert_eq!(
                verifier.verify(&headers(bad), BODY),
                Err(malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_and_duplicate_headers() {
        let verifier = GithubVerifier::new(test_secrets("It's a Secret to Everybody"));
        assert_eq!(
            verifier.verify(&HeaderMap::new(), BODY),
            Err(VerifyError::MissingHeader { header: HEADER })
        );
        let mut twice = headers(SIG);
        twice.append(HEADER, SIG.parse().unwrap());
        assert_eq!(
            verifier.verify(&twice, BODY),
            Err(VerifyError::DuplicateHeader { header: HEADER })
        );
    }

    #[test]
    fn no_secret_means_no_match() {
        let verifier = GithubVerifier::new(Secrets::new());
        assert_eq!(
            verifier.verify(&headers(SIG), BODY),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let verifier = GithubVerifier::new(test_secrets("It's a Secret to Everybody"));
        let shown = format!("{verifier:?}");
        assert!(!shown.contains("Secret to"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
