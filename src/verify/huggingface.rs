//! Hugging Face: the webhook secret itself, sent in `X-Webhook-Secret`.
//!
//! Hugging Face does not sign the body; it repeats the shared secret in a
//! header. The presented value and every configured secret are hashed with
//! SHA-256 and the digests compared in constant time, so neither the content
//! nor the length of a secret leaks through timing.
//!
//! ```
//! use hookroom::verify::{huggingface, HuggingFaceVerifier, Secret, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! let secret = Secret::new("my-hf-webhook-secret")?;
//! let mut headers = HeaderMap::new();
//! headers.insert("X-Webhook-Secret", huggingface::sign(&secret)?);
//!
//! let verifier = HuggingFaceVerifier::new(secret);
//! assert!(verifier.verify(&headers, b"{}").is_ok());
//!
//! headers.insert("X-Webhook-Secret", "guess".parse()?);
//! assert_eq!(verifier.verify(&headers, b"{}"), Err(VerifyError::SignatureMismatch));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::{HeaderMap, HeaderName, HeaderValue};

use super::common::{TokenDigests, header_once};
use super::{ConfigError, Secret, Secrets, Verification, Verifier, VerifyError};

/// The header Hugging Face sends the secret in.
pub const HEADER: &str = "X-Webhook-Secret";
const HEADER_NAME: HeaderName = HeaderName::from_static("x-webhook-secret");

/// Verifies Hugging Face's `X-Webhook-Secret` header. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct HuggingFaceVerifier {
    digests: TokenDigests,
}

impl HuggingFaceVerifier {
    /// A verifier accepting any of `secrets`.
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            digests: TokenDigests::new(&secrets.into()),
        }
    }
}

impl Verifier for HuggingFaceVerifier {
    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> Result<Verification, VerifyError> {
        let presented = header_once(headers, &HEADER_NAME, HEADER)?;
        if presented.is_empty() {
            // An empty header never authenticates, even against an empty secret.
            return Err(VerifyError::MalformedHeader { header: HEADER });
        }
        self.digests
            .find(presented)
            .map(Verification::new)
            .ok_or(VerifyError::SignatureMismatch)
    }
}

/// The `X-Webhook-Secret` value Hugging Face sends: the secret itself, marked
/// sensitive so HTTP tracing layers do not print it.
///
/// # Errors
/// [`ConfigError::InvalidKey`] when the secret cannot be a header value
/// (control characters).
pub fn sign(secret: &Secret) -> Result<HeaderValue, ConfigError> {
    let mut value =
        HeaderValue::from_bytes(secret.expose()).map_err(|_| ConfigError::InvalidKey {
            expected: "a valid HTTP header value",
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::secret::test_secrets;

    #[test]
    fn empty_values_never_match() {
        assert!(
            Secret::new("").is_err(),
            "no verifier holds an empty secret"
        );
        let verifier = HuggingFaceVerifier::new(test_secrets("s"));
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static(""));
        assert_eq!(
            verifier.verify(&headers, b""),
            Err(VerifyError::MalformedHeader { header: HEADER })
        );
    }

    #[test]
    fn prefixes_and_extensions_do_not_match() {
        let verifier = HuggingFaceVerifier::new(test_secrets(["old-secret", "new-secret"]));
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("new-secret", Ok(Verification::new(1))),
            ("old-secret", Ok(Verification::new(0))),
            ("new-secre", Err(VerifyError::SignatureMismatch)),
            ("new-secretnew-secret", Err(VerifyError::SignatureMismatch)),
            ("NEW-SECRET", Err(VerifyError::SignatureMismatch)),
        ] {
            headers.insert(HEADER, value.parse().unwrap());
            assert_eq!(verifier.verify(&headers, b""), expected, "{value}");
        }
    }

    #[test]
    fn signed_header_value_is_sensitive() {
        let value = sign(&Secret::new("abc").unwrap()).unwrap();
        assert!(value.is_sensitive());
        assert!(sign(&Secret::new("a\nb").unwrap()).is_err());
    }
}
