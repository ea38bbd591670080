//! The GitHub ingest pipeline of the allocation tests and
//! `benches/ingest.rs`: a 1 KiB signed `pull_request.opened` delivery and the
//! verifier, parser and router that handle it.

use std::sync::Arc;

use bytes::Bytes;

use hookroom::route::{Route, RouteDecision, Router};
use hookroom::source::{GithubSource, Source};
use hookroom::verify::{self, GithubVerifier, Verifier};
use hookroom::{Event, Verified};

/// The secret the pipeline's GitHub verifier holds.
pub(crate) const SECRET: &str = "load-test-secret";

/// A 1 KiB GitHub `pull_request.opened` body and its `X-Hub-Signature-256`.
pub(crate) fn signed_pull_request() -> (Bytes, String) {
    let body = Bytes::from_static(include_bytes!("../fixtures/pull_request.opened.1k.json"));
    let signature = verify::github::sign(SECRET.as_bytes(), &body);
    (body, signature)
}

#[derive(Debug)]
struct ByEvent {
    room: Arc<str>,
}

impl Router for ByEvent {
    fn route(&self, event: &Verified<Event>) -> RouteDecision {
        if event.name.starts_with("pull_request.") {
            RouteDecision::Deliver(Route {
                room: Arc::clone(&self.room),
                priority: 2,
                ttl: None,
            })
        } else {
            RouteDecision::Ignore {
                reason: "no route".into(),
            }
        }
    }
}

/// The GitHub verifier.
pub(crate) fn github_verifier() -> Arc<dyn Verifier> {
    Arc::new(GithubVerifier::new(
        hookroom::verify::Secrets::try_from(SECRET).unwrap(),
    ))
}

/// The GitHub parser.
pub(crate) fn github_source() -> Arc<dyn Source> {
    Arc::new(GithubSource::new())
}

/// The router.
pub(crate) fn router() -> Arc<dyn Router> {
    Arc::new(ByEvent {
        room: Arc::from("pr-review"),
    })
}
