//! Bearer token: `Authorization: Bearer <token>`, for senders that can only
//! attach a static token.
//!
//! The token does not cover the body, so this proves only that the sender
//! knows the token; prefer a signing scheme when the sender offers one. The
//! scheme name is case-insensitive (RFC 9110); the token is compared by
//! SHA-256 digest in constant time.
//!
//! ```
//! use hookroom::verify::{bearer, BearerVerifier, Secret, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! let token = Secret::new("tok_live_123")?;
//! let mut headers = HeaderMap::new();
//! headers.insert(http::header::AUTHORIZATION, bearer::sign(&token)?);
//!
//! let verifier = BearerVerifier::new(token);
//! assert!(verifier.verify(&headers, b"any body")?.key_index() == 0);
//!
//! headers.insert(http::header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse()?);
//! assert_eq!(
//!     verifier.verify(&headers, b""),
//!     Err(VerifyError::MalformedHeader { header: "Authorization" })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

use super::common::{TokenDigests, header_once};
use super::{ConfigError, Secret, Secrets, Verification, Verifier, VerifyError};

/// The header the token is sent in.
pub const HEADER: &str = "Authorization";

/// Verifies `Authorization: Bearer <token>`. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct BearerVerifier {
    digests: TokenDigests,
}

impl BearerVerifier {
    /// A verifier accepting any of `tokens`.
    pub fn new(tokens: impl Into<Secrets>) -> Self {
        Self {
            digests: TokenDigests::new(&tokens.into()),
        }
    }
}

impl Verifier for BearerVerifier {
    fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> Result<Verification, VerifyError> {
        let token = parse_authorization(header_once(headers, &AUTHORIZATION, HEADER)?)?;
        self.digests
            .find(token)
            .map(Verification::new)
            .ok_or(VerifyError::SignatureMismatch)
    }
}

/// Extracts the token from an `Authorization` value: `Bearer`, any case, one
/// or more spaces, then a non-empty token without spaces.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] for other schemes and empty tokens.
pub fn parse_authorization(value: &[u8]) -> Result<&[u8], VerifyError> {
    const MALFORMED: VerifyError = VerifyError::MalformedHeader { header: HEADER };
    let (scheme, rest) = value.split_at_checked(6).ok_or(MALFORMED)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return Err(MALFORMED);
    }
    let token = rest.trim_ascii();
    if token.is_empty() || token.contains(&b' ') {
        return Err(MALFORMED);
    }
    Ok(token)
}

/// The `Authorization` value a sender attaches, marked sensitive.
///
/// # Errors
/// [`ConfigError::InvalidKey`] when the token cannot be a header value.
pub fn sign(token: &Secret) -> Result<HeaderValue, ConfigError> {
    let mut value = Vec::with_capacity(7 + token.len());
    value.extend_from_slice(b"Bearer ");
    value.extend_from_slice(token.expose());
    let header = HeaderValue::from_bytes(&value);
    zeroize::Zeroize::zeroize(&mut value);
    let mut header = header.map_err(|_| ConfigError::InvalidKey {
        expected: "a valid HTTP header value",
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::secret::test_secrets;

    #[test]
    fn parses_only_bearer_with_a_token() {
        assert_eq!(parse_authorization(b"Bearer abc"), Ok(&b"abc"[..]));
        assert_eq!(parse_authorization(b"bearer   abc "), Ok(&b"abc"[..]));
        for bad in [
            &b""[..],
            b"Bearer",
            b"Bearer ",
            b"Bearerabc",
            b"Basic abc",
            b"Bearer a b",
            b"Bear",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rotation_and_mismatch() {
        let verifier = BearerVerifier::new(test_secrets(["new", "old"]));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer old".parse().unwrap());
        assert_eq!(verifier.verify(&headers, b""), Ok(Verification::new(1)));
        headers.insert(AUTHORIZATION, "Bearer ol".parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, b""),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verifier.verify(&HeaderMap::new(), b""),
            Err(VerifyError::MissingHeader { header: HEADER })
        );
    }
}
