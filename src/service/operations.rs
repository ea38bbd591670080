//! `GET /operations?limit=N`: a bounded log of recent deliveries and what
//! became of each.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use super::ServiceBody;
use super::auth::Access;
use super::error::{IngestError, json_response};
use crate::auth::{self, Principals};
use crate::task::TaskId;

/// How many operations a log keeps unless told otherwise.
pub const DEFAULT_OPERATIONS_CAPACITY: usize = 1000;

/// How many operations `/operations` returns without a `limit` parameter.
pub const DEFAULT_OPERATIONS_LIMIT: usize = 50;

/// One delivery as the operations log recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// When the answer was decided.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The source name (`github`, …). A name no source has is recorded cut
    /// to 64 characters and escaped (anything but ASCII letters, digits,
    /// `-`, `_` and `.`).
    pub source: Arc<str>,
    /// The provider event name, once parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The provider delivery id, once parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// What became of the delivery.
    pub outcome: Outcome,
    /// The task stored (or found, for a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// The room the task went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<Arc<str>>,
    /// The HTTP status answered.
    pub status: u16,
}

/// What became of one delivery. Serialized as its [`as_str`](Self::as_str)
/// text: `accepted`, `duplicate`, `ignored`, `challenge`, or the refusal's
/// error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Stored as a new task (`202`).
    Accepted,
    /// Already stored under the same delivery id (`200`).
    Duplicate,
    /// Verified and parsed, but no route wanted it (`200`).
    Ignored,
    /// A Slack URL verification challenge, answered (`200`).
    Challenge,
    /// Refused with this stable error code (see
    /// [`IngestError`](super::IngestError)).
    Refused(&'static str),
}

impl Outcome {
    /// The outcome as it appears in the operations log's JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Challenge => "challenge",
            Self::Refused(code) => code,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A bounded, thread-safe ring of recent [`Operation`]s with a running total.
///
/// Cloning is not offered: share it through an `Arc` (the ingest service and
/// the operations service hold the same one).
///
/// ```
/// use hookroom::service::OperationsLog;
///
/// let log = OperationsLog::with_capacity(2);
/// assert_eq!(log.total(), 0);
/// assert!(log.recent(10).is_empty());
/// ```
#[derive(Debug)]
pub struct OperationsLog {
    capacity: usize,
    entries: Mutex<VecDeque<Operation>>,
    total: AtomicU64,
}

impl OperationsLog {
    /// A log keeping the last `capacity` operations (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
            total: AtomicU64::new(0),
        }
    }

    /// How many operations the log keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many operations were ever recorded.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Records one operation, dropping the oldest when full.
    pub fn record(&self, operation: Operation) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(operation);
    }

    /// Up to `limit` operations, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Operation> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.iter().rev().take(limit).cloned().collect()
    }
}

impl Default for OperationsLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_OPERATIONS_CAPACITY)
    }
}

/// The `GET /operations?limit=N` service over a shared [`OperationsLog`],
/// for admins only.
///
/// Answers `{"total": …, "capacity": …, "operations": [ … newest first … ]}`
/// to a request bearing one of its [admin tokens](Self::principals);
/// `401 unauthorized` without one, and `403 admin_not_configured` while no
/// token is configured (the default): the log shows delivery ids, task ids
/// and rooms. Path matching is the caller's (see
/// [`Gateway`](super::Gateway)).
#[derive(Debug, Clone)]
pub struct OperationsService {
    log: Arc<OperationsLog>,
    admin: Principals,
}

impl OperationsService {
    /// Serves `log`, to nobody until [`principals`](Self::principals)
    /// is set.
    pub fn new(log: Arc<OperationsLog>) -> Self {
        Self {
            log,
            admin: Principals::none(),
        }
    }

    /// The bearer tokens that may read the log.
    pub fn principals(mut self, principals: impl Into<Principals>) -> Self {
        self.admin = principals.into();
        self
    }

    fn answer<B>(&self, request: &Request<B>) -> Response<ServiceBody> {
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            return IngestError::MethodNotAllowed { allow: "GET" }.to_response();
        }
        match self
            .admin
            .admin_access(request.headers(), &auth::Operation::ReadOperations)
        {
            Access::Granted => {}
            Access::Anonymous | Access::Denied => return IngestError::Unauthorized.to_response(),
            Access::NotConfigured => return IngestError::AdminNotConfigured.to_response(),
        }
        let query = request.uri().query();
        let limit = query
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_OPERATIONS_LIMIT)
            .min(self.log.capacity());
        #[derive(Serialize)]
        struct Body {
            total: u64,
            capacity: usize,
            operations: Vec<Operation>,
        }
        json_response(
            StatusCode::OK,
            &Body {
                total: self.log.total(),
                capacity: self.log.capacity(),
                operations: self.log.recent(limit),
            },
        )
    }
}

impl<B> tower_service::Service<Request<B>> for OperationsService {
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.answer(&request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BearerTokens;
    use http_body_util::BodyExt;
    use std::sync::Arc;
    use tower_service::Service;

    fn op(n: u16) -> Operation {
        Operation {
            timestamp: OffsetDateTime::UNIX_EPOCH,
            source: "github".into(),
            event: None,
            delivery_id: Some(n.to_string()),
            outcome: Outcome::Accepted,
            task_id: None,
            room: None,
            status: 202,
        }
    }

    #[test]
    fn outcomes_serialize_as_their_text() {
        for (outcome, text) in [
            (Outcome::Accepted, "accepted"),
            (Outcome::Duplicate, "duplicate"),
            (Outcome::Ignored, "ignored"),
            (Outcome::Challenge, "challenge"),
            (Outcome::Refused("signature_mismatch"), "signature_mismatch"),
        ] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), text);
            assert_eq!(outcome.to_string(), text);
        }
    }

    async fn code_of(svc: &mut OperationsService, auth: Option<&str>) -> (u16, String) {
        let mut request = Request::get("/operations");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let r = svc.call(request.body(()).unwrap()).await.unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
    }

    #[tokio::test]
    async fn operations_need_an_admin_token() {
        let log = Arc::new(OperationsLog::with_capacity(10));
        log.record(op(1));
        let mut open = OperationsService::new(Arc::clone(&log));
        assert_eq!(code_of(&mut open, None).await, (401, "unauthorized".into()));
        assert_eq!(
            code_of(&mut open, Some("Bearer anything")).await,
            (403, "admin_not_configured".into())
        );
        let mut guarded =
            OperationsService::new(log).principals(BearerTokens::parse_list("t1").unwrap());
        assert_eq!(
            code_of(&mut guarded, Some("Bearer t2")).await,
            (401, "unauthorized".into())
        );
        assert_eq!(
            code_of(&mut guarded, Some("Bearer t1")).await,
            (200, String::new())
        );
    }

    #[test]
    fn ring_keeps_the_newest_and_counts_all() {
        let log = OperationsLog::with_capacity(3);
        for n in 0..5 {
            log.record(op(n));
        }
        assert_eq!(log.total(), 5);
        let ids: Vec<_> = log
            .recent(10)
            .into_iter()
            .map(|o| o.delivery_id.unwrap())
            .collect();
        assert_eq!(ids, ["4", "3", "2"]);
        assert_eq!(log.recent(1).len(), 1);
    }

    #[tokio::test]
    async fn service_honours_limit_and_method() {
        let log = Arc::new(OperationsLog::with_capacity(10));
        for n in 0..4 {
            log.record(op(n));
        }
        let mut svc =
            OperationsService::new(log).principals(BearerTokens::parse_list("t1,t2").unwrap());
        let r = svc
            .call(
                Request::get("/operations?limit=2")
                    .header("authorization", "Bearer t2")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value =
            serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(v["total"], 4);
        assert_eq!(v["operations"].as_array().unwrap().len(), 2);
        assert_eq!(v["operations"][0]["delivery_id"], "3");

        let r = svc
            .call(Request::post("/operations").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "GET");
    }
}
