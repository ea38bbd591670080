//! The escape hatch for custom [`Verifier`](super::Verifier)s: building a
//! [`Verification`] without one of this crate's checks.
//!
//! Everything downstream of verification (sources, routers, task stores)
//! takes [`Verified`](crate::event::Verified) values, which need a
//! [`Verification`]. The crate's verifiers are the only ordinary way to get
//! one. A verifier for a scheme this crate does not ship must build its own
//! proof, and does it here, under a name that says what it means: whoever
//! calls [`assume_verified`] vouches that the request was checked.
//!
//! A custom verifier that wraps a built-in one should return the built-in
//! verifier's result instead.
//!
//! ```
//! use hookroom::verify::{dangerous, Verification, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! /// Accepts requests whose `X-Api-Key` is one of a list (the key index wins).
//! #[derive(Debug)]
//! struct ApiKeyVerifier {
//!     keys: Vec<Vec<u8>>,
//! }
//!
//! impl Verifier for ApiKeyVerifier {
//!     fn verify(&self, headers: &HeaderMap, _body: &[u8]) -> Result<Verification, VerifyError> {
//!         use subtle::ConstantTimeEq;
//!         let presented = headers
//!             .get("x-api-key")
//!             .ok_or(VerifyError::MissingHeader { header: "X-Api-Key" })?;
//!         for (index, key) in self.keys.iter().enumerate() {
//!             if bool::from(key.as_slice().ct_eq(presented.as_bytes())) {
//!                 // Checked above: this request carries key `index`.
//!                 return Ok(dangerous::assume_verified(index));
//!             }
//!         }
//!         Err(VerifyError::SignatureMismatch)
//!     }
//! }
//!
//! let verifier = ApiKeyVerifier { keys: vec![b"k1".to_vec()] };
//! let mut headers = HeaderMap::new();
//! headers.insert("x-api-key", "k1".parse()?);
//! assert_eq!(verifier.verify(&headers, b"")?.key_index(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::Verification;

/// A [`Verification`] for the secret at `key_index`, on the caller's word.
///
/// Call it only from a [`Verifier`](super::Verifier) implementation, after
/// that verifier checked the request; anything given this value is treated
/// as coming from the sender. Tests that drive sources or routers directly
/// may use it too.
pub fn assume_verified(key_index: usize) -> Verification {
    Verification::new(key_index)
}
