//! Step 2 of the data flow: proving a request came from its sender.
//!
//! A [`Verifier`] checks the raw body bytes exactly as received against the
//! request headers. Verification is synchronous and allocation-free.

mod error;

pub use error::VerifyError;

use http::HeaderMap;

/// Proof that a request's signature was checked, and which configured secret
/// matched (its index in the verifier's key list, in configuration order).
///
/// Rotation: when index `0` is the new secret and `1` the old one, a stream of
/// `key_index() == 0` tells you the old secret can be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verification {
    key_index: usize,
}

impl Verification {
    /// Asserts that verification succeeded with the key at `key_index`.
    ///
    /// Only a [`Verifier`] implementation should call this, after it checked
    /// the request.
    pub fn assertion(key_index: usize) -> Self {
        Self { key_index }
    }

    /// Index of the matching secret in the verifier's configured list.
    pub fn key_index(&self) -> usize {
        self.key_index
    }
}

/// Proves that a webhook request came from its sender.
///
/// # Contract
/// - `body` is the raw request body exactly as received.
/// - Never panics, whatever the headers and body hold.
/// - Errors never contain a secret or a computed signature.
/// - Comparisons are constant-time.
pub trait Verifier: std::fmt::Debug + Send + Sync + 'static {
    /// Checks `headers` and `body`; on success says which secret matched.
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError>;
}

impl<V: Verifier + ?Sized> Verifier for std::sync::Arc<V> {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        (**self).verify(headers, body)
    }
}

impl<V: Verifier + ?Sized> Verifier for Box<V> {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        (**self).verify(headers, body)
    }
}
