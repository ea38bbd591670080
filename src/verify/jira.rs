//! Jira / Atlassian: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! Atlassian's webhook secret signs the raw body the same way GitHub does, in
//! the older header name. Deliveries carry no signed timestamp; de-duplicate on
//! `X-Atlassian-Webhook-Identifier` downstream.
//!
//! ```
//! use hookroom::verify::{jira, JiraVerifier, Secret, Verifier};
//! use http::HeaderMap;
//!
//! let body = br#"{"webhookEvent":"jira:issue_created"}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("X-Hub-Signature", jira::sign(b"jira secret", body).parse()?);
//!
//! let verifier = JiraVerifier::new(Secret::new("jira secret")?);
//! assert_eq!(verifier.verify(&headers, body)?.key_index(), 0);
//! assert!(verifier.verify(&headers, b"{}").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::{HeaderMap, HeaderName};

use super::common::TAG_LEN;
use super::github::{PrefixedHexHmac, parse_prefixed_hex, sign_prefixed_hex};
use super::{Secrets, Verification, Verifier, VerifyError};

/// The header Atlassian sends the signature in.
pub const HEADER: &str = "X-Hub-Signature";
const HEADER_NAME: HeaderName = HeaderName::from_static("x-hub-signature");

/// Verifies Atlassian's `X-Hub-Signature` header. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct JiraVerifier {
    inner: PrefixedHexHmac,
}

impl JiraVerifier {
    /// A verifier accepting a signature from any of `secrets`.
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            inner: PrefixedHexHmac::new(&secrets.into(), HEADER_NAME, HEADER),
        }
    }
}

impl Verifier for JiraVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        self.inner.verify(headers, body)
    }
}

/// Parses an `X-Hub-Signature` value (`sha256=` + 64 lowercase hex digits).
///
/// # Errors
/// [`VerifyError::MalformedHeader`], also for GitHub's legacy `sha1=` form.
pub fn parse_header(value: &[u8]) -> Result<[u8; TAG_LEN], VerifyError> {
    parse_prefixed_hex(value, HEADER)
}

/// The `X-Hub-Signature` value a sender computes for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    sign_prefixed_hex(secret, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::secret::test_secrets;

    #[test]
    fn reads_its_own_header_only() {
        let body = b"{}";
        let verifier = JiraVerifier::new(test_secrets("s"));
        let mut headers = HeaderMap::new();
        headers.insert("X-Hub-Signature-256", sign(b"s", body).parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, body),
            Err(VerifyError::MissingHeader { header: HEADER })
        );
        headers.insert(HEADER, sign(b"s", body).parse().unwrap());
        assert!(verifier.verify(&headers, body).is_ok());
    }

    #[test]
    fn legacy_sha1_form_is_malformed() {
        assert_eq!(
            parse_header(b"sha1=319125af41faaf3ac95f0009cc7af821725d4fc0"),
            Err(VerifyError::MalformedHeader { header: HEADER })
        );
    }
}
