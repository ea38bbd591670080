//! [`Event`]: what a verified webhook delivery says, independent of its sender,
//! and [`Verified`], the proof that later stages require.

use bytes::Bytes;

use crate::verify::Verification;

/// One webhook delivery, normalised across providers.
///
/// Built by a [`Source`](crate::source::Source) parser from a request whose
/// signature was already checked; routing and storage only ever see it wrapped
/// in [`Verified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The configured source name the request arrived on (`github`, `slack`, …).
    pub source: String,
    /// Provider event name, e.g. `pull_request.opened`, `app_mention`,
    /// `issue_created`, `discussion.comment.create`.
    pub name: String,
    /// The provider's delivery id; `(source, delivery_id)` makes inserts idempotent.
    pub delivery_id: String,
    /// A one-line human title, e.g. `[PR] opened #42: Test PR`.
    pub title: String,
    /// A longer human description (may be empty).
    pub description: String,
    /// A link to the thing the event is about, when the payload has one.
    pub url: Option<String>,
    /// The request body exactly as received (never re-serialized).
    pub payload: Bytes,
}

/// A value that passed signature verification.
///
/// It can only be built from a [`Verification`], which only a
/// [`Verifier`](crate::verify::Verifier) hands out on success (the crate's
/// verifiers, or a custom one through the explicitly named
/// [`verify::dangerous::assume_verified`](crate::verify::dangerous::assume_verified)),
/// so a function that takes `Verified<Event>` cannot be reached with
/// unverified data without someone writing `dangerous`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    value: T,
    proof: Verification,
}

impl<T> Verified<T> {
    /// Binds `value` to the proof that its request was verified.
    pub fn new(value: T, proof: Verification) -> Self {
        Self { value, proof }
    }

    /// The verified value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// Which secret matched.
    pub fn proof(&self) -> Verification {
        self.proof
    }

    /// Gives up the proof and returns the value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
