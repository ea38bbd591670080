//! Step 2 of the data flow: proving a request came from its sender.
//!
//! A [`Verifier`] checks the raw body bytes exactly as received against the
//! request headers. Verification is synchronous; the HMAC schemes (GitHub,
//! Jira, Slack, Standard Webhooks `v1`, Stripe, generic HMAC) allocate nothing
//! per request: keys are prepared once, signatures are decoded into stack
//! arrays, and signed parts are fed to the MAC one after another.
//!
//! | scheme | verifier | headers |
//! | --- | --- | --- |
//! | [GitHub](github) | [`GithubVerifier`] | `X-Hub-Signature-256: sha256=<hex>` |
//! | [Jira / Atlassian](jira) | [`JiraVerifier`] | `X-Hub-Signature: sha256=<hex>` |
//! | [Slack v0](slack) | [`SlackVerifier`] | `X-Slack-Signature: v0=<hex>`, `X-Slack-Request-Timestamp` |
//! | [Hugging Face](huggingface) | [`HuggingFaceVerifier`] | `X-Webhook-Secret: <secret>` |
//! | [Standard Webhooks](standard_webhooks) | [`StandardWebhooksVerifier`], [`StandardWebhooksAsymmetricVerifier`] | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> v1a,<b64>` |
//! | [Stripe](stripe) | [`StripeVerifier`] | `Stripe-Signature: t=…,v1=<hex>` |
//! | [any HMAC-SHA256 sender](hmac) | [`HmacVerifier`] | configurable |
//! | [bearer token](bearer) | [`BearerVerifier`] | `Authorization: Bearer <token>` |
//!
//! Every verifier takes several secrets ([`Secrets`], newest first) and
//! reports which one matched in [`Verification::key_index`]. Timestamped
//! schemes reject requests further than their tolerance (300 s by default)
//! from their [`Clock`](crate::clock::Clock), in the past or the future.
//! Comparisons are constant-time; a signature of the wrong length (truncated,
//! extended, doubled) is never compared. Each scheme module also has a `sign`
//! function: what a sender computes.
//!
//! ```
//! use hookroom::verify::{github, GithubVerifier, Secret, Secrets, Verifier};
//! use http::HeaderMap;
//!
//! // Rotation: the new secret first, the old one until senders stop using it.
//! let verifier = GithubVerifier::new(Secrets::from(Secret::new("new")?).with(Secret::new("old")?));
//!
//! let body = br#"{"zen":"Keep it logically awesome."}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("X-Hub-Signature-256", github::sign(b"old", body).parse()?);
//! assert_eq!(verifier.verify(&headers, body)?.key_index(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bearer;
mod common;
pub mod dangerous;
mod error;
pub mod github;
pub mod hmac;
pub mod huggingface;
pub mod jira;
mod secret;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;

pub use bearer::BearerVerifier;
pub use error::{ConfigError, VerifyError};
pub use github::GithubVerifier;
pub use hmac::{HmacVerifier, HmacVerifierBuilder, SignatureEncoding, SignedContent};
pub use huggingface::HuggingFaceVerifier;
pub use jira::JiraVerifier;
pub use secret::{Secret, Secrets};
pub use slack::SlackVerifier;
pub use standard_webhooks::{StandardWebhooksAsymmetricVerifier, StandardWebhooksVerifier};
pub use stripe::StripeVerifier;

use http::HeaderMap;

/// Proof that a request's signature was checked, and which configured secret
/// matched (its index in the verifier's key list, in configuration order).
///
/// Only a [`Verifier`] hands one out: the crate's verifiers after their
/// check passed, and a custom verifier through the explicitly named
/// [`dangerous::assume_verified`] after its own check. Nothing else in the
/// public API builds one, so [`Verified`](crate::event::Verified) values
/// cannot come from unchecked data by accident:
///
/// ```compile_fail
/// // No public constructor outside `dangerous`.
/// let proof = hookroom::verify::Verification::assertion(0);
/// ```
///
/// ```compile_fail
/// let proof = hookroom::verify::Verification::new(0);
/// ```
///
/// Rotation: when index `0` is the new secret and `1` the old one, a stream of
/// `key_index() == 0` tells you the old secret can be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verification {
    key_index: usize,
}

impl Verification {
    /// The proof a built-in verifier hands out after its check passed.
    pub(crate) fn new(key_index: usize) -> Self {
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
