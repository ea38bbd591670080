//! [`HttpTaskStore`]: a [`TaskStore`] served by a Task API
//! ([`TaskApi`](crate::service::TaskApi)) over HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Uri};
use http_body_util::Full;
use tokio::sync::broadcast;

use crate::api::task::{
    AskBody, ClaimResponse, DoneBody, ExpiredResponse, FailBody, HeartbeatBody, InputBody,
    InputResponse, InsertBody, InsertResponse, MAX_PAGE_LIMIT, TaskPage, TaskResponse, TokenBody,
};
use crate::http::client::{ClientOptions, Tls};
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};

/// The `store` name of the [`StoreError::Backend`] errors of [`HttpTaskStore`].
pub const HTTP_STORE: &str = "http";
/// How long one request of an [`HttpTaskStore`] may take, unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an [`HttpTaskStore`] may take to connect, unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest event (or line) of a room's event stream an
/// [`HttpTaskStore`]'s `watch` buffers, unless told otherwise: 1 MiB. The
/// Task API's events carry a task's id and status, far below it.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A [`TaskStore`] whose tasks live behind a Task API: every operation is
/// one or more HTTP requests to `{base_url}/api/…` with
/// `Authorization: Bearer <token>`.
///
/// `insert` and `expire_pending` use the Task API's admin routes, so a
/// store that inserts needs an admin token; agents that only list, claim
/// and finish tasks need an agent token.
///
/// # Errors
/// The store's refusals come back as the same [`StoreError`] variants the
/// server's store returned (`NotFound`, `NotHeld`, `InvalidTransition`,
/// `NotClaimable`, with their details). Everything else is
/// [`StoreError::Backend`] with store [`HTTP_STORE`] and an
/// [`HttpStoreError`] as its source, whose
/// [`retry_safe`](HttpStoreError::retry_safe) says whether sending the
/// request again cannot apply a change twice.
///
/// # HTTPS
/// `https://` URLs are served over rustls (with ring), trusting the
/// Mozilla roots of `webpki-roots` unless the builder is given other
/// [roots](HttpTaskStoreBuilder::root_certificates) or a whole
/// [rustls configuration](HttpTaskStoreBuilder::tls_config): a gateway
/// with a certificate from a private or self-signed authority, or one that
/// asks for client certificates, is reached that way, without trusting
/// that authority for anything else in the process. A certificate the
/// client does not trust is [`HttpStoreError::Tls`]: nothing was sent, so
/// a retry is safe, but it fails the same way until the trust settings
/// change.
///
/// # Watching
/// [`watch`](TaskStore::watch) follows the room's server-sent events
/// (`GET /api/rooms/{room}/events`, one connection per watched room, shared
/// by its receivers) and passes on the id of every event that leaves a
/// task `PENDING` (created, released, put back for a retry). A dropped
/// stream is reopened with `Last-Event-ID`, after a pause that doubles from
/// 100 ms to 5 s, so no event the server still buffers is missed. The first
/// connection asks for everything buffered, so a task stored between
/// `watch` and the connection is not missed either; the price is a few
/// stale hints at the start, which a waiting agent answers with a claim
/// that finds nothing. The connection ends once every receiver is dropped
/// and the next event or keep-alive arrives. `watch` needs a tokio runtime
/// (else `None`), and a server with an event hub (else the stream never
/// yields and a warning is logged).
///
/// Agents can also wait with [`claim_wait`](Self::claim_wait), a room
/// claim the server holds until a task arrives.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use hookroom::http::HttpTaskStore;
/// use hookroom::task::TaskStore;
///
/// let store = HttpTaskStore::builder("http://127.0.0.1:8935", "t").build()?;
/// let task = store.get(&"some-id".into()).await?;
/// # let _ = task; Ok(()) }
/// ```
#[derive(Clone)]
pub struct HttpTaskStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: crate::http::client::HttpsClient<Full<Bytes>>,
    base: String,
    authorization: zeroize::Zeroizing<String>,
    timeout: Duration,
    max_response_bytes: usize,
    max_event_bytes: usize,
    /// One event-stream follower per watched room.
    watchers: Mutex<HashMap<String, broadcast::Sender<TaskId>>>,
}

impl std::fmt::Debug for HttpTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTaskStore")
            .field("base_url", &self.inner.base)
            .field("token", &"<redacted>")
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Builds an [`HttpTaskStore`]; from [`HttpTaskStore::builder`].
pub struct HttpTaskStoreBuilder {
    base_url: String,
    token: zeroize::Zeroizing<String>,
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
    max_event_bytes: usize,
    tls: Tls,
}

impl std::fmt::Debug for HttpTaskStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTaskStoreBuilder")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field(
                "tls",
                &match self.tls {
                    Tls::WebpkiRoots => "webpki roots",
                    Tls::Roots(_) => "own roots",
                    Tls::Config(_) => "own rustls configuration",
                },
            )
            .finish()
    }
}

impl HttpTaskStoreBuilder {
    /// How long one request may take, from sending to the whole answer
    /// (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest answer body read from the Task API (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::http::DEFAULT_MAX_RESPONSE_BYTES)).
    /// A longer answer is [`HttpStoreError::ResponseTooLarge`]; a list of
    /// tasks reads page by page, so the limit is per page.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The largest event (all its lines) of a room's event stream that
    /// `watch` buffers (default [`DEFAULT_MAX_EVENT_BYTES`]). A longer event
    /// is skipped, with a warning naming
    /// [`EventTooLarge`](HttpStoreError::EventTooLarge), and the stream
    /// goes on with the next one.
    pub fn max_event_bytes(mut self, limit: usize) -> Self {
        self.max_event_bytes = limit;
        self
    }

    /// Trusts exactly `roots` for `https://` (instead of the Mozilla roots
    /// of `webpki-roots`): for a gateway whose certificate comes from a
    /// private or self-signed authority, trusted by this store alone rather
    /// than by the whole process or the operating system.
    pub fn root_certificates(mut self, roots: rustls::RootCertStore) -> Self {
        self.tls = Tls::Roots(roots);
        self
    }

    /// Uses `config` for `https://` as it is: its roots or verifier, client
    /// certificates for a gateway that asks for them, its protocol
    /// versions. Its ALPN protocols are dropped: the client speaks HTTP/1.1
    /// and offers none.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Tls::Config(Box::new(config));
        self
    }

    /// The store.
    ///
    /// # Errors
    /// [`HttpStoreError::InvalidUrl`] unless the base URL is an absolute
    /// `http://` or `https://` URL without a query, or the token cannot be
    /// a header value; [`HttpStoreError::Tls`] if the TLS settings offer no
    /// usable protocol version.
    pub fn build(self) -> Result<HttpTaskStore, HttpStoreError> {
        let base = self.base_url.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| HttpStoreError::InvalidUrl {
            reason: "not a URL",
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(HttpStoreError::InvalidUrl {
                reason: "an absolute http:// or https:// URL is required",
            });
        }
        if uri.query().is_some() {
            return Err(HttpStoreError::InvalidUrl {
                reason: "a base URL has no query",
            });
        }
        let authorization = zeroize::Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        if http::HeaderValue::from_str(&authorization).is_err() {
            return Err(HttpStoreError::InvalidUrl {
                reason: "the token is not a valid header value",
            });
        }
        let client = crate::http::client::client(ClientOptions {
            tls: self.tls,
            connect_timeout: Some(self.connect_timeout),
        })
        .map_err(|e| HttpStoreError::Tls {
            detail: e.to_string(),
        })?;
        Ok(HttpTaskStore {
            inner: Arc::new(Inner {
                client,
                base,
                authorization,
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                max_event_bytes: self.max_event_bytes,
                watchers: Mutex::new(HashMap::new()),
            }),
        })
    }
}

mod client;
mod error;
#[cfg(test)]
mod tests;
mod watch;

pub use self::error::HttpStoreError;
use self::error::{Effect, backend, claim_body, claimed, decode, refusal, segment};
use self::watch::{WATCH_CAPACITY, follow};

#[async_trait]
impl TaskStore for HttpTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        let path = format!("/api/rooms/{}/tasks", segment(&task.room));
        let body = InsertBody::from_new_task(&task);
        // Inserting is idempotent on (source, delivery_id).
        let answer: InsertResponse = self
            .call(Method::POST, &path, Some(&body), Effect::Read, None)
            .await?;
        Ok(Inserted {
            id: answer.id,
            duplicate: answer.duplicate,
        })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let path = format!("/api/tasks/{}", segment(id.as_str()));
        match self
            .call::<TaskResponse>(Method::GET, &path, None::<&()>, Effect::Read, Some(id))
            .await
        {
            Ok(answer) => Ok(Some(answer.task)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let path = match &query.room {
            Some(room) => format!("/api/rooms/{}/tasks", segment(room)),
            None => "/api/tasks".to_owned(),
        };
        let mut tasks = Vec::new();
        let mut cursor = query.before.clone();
        loop {
            let page = match query.limit {
                Some(limit) => limit.saturating_sub(tasks.len()).min(MAX_PAGE_LIMIT),
                None => MAX_PAGE_LIMIT,
            };
            if page == 0 {
                return Ok(tasks);
            }
            let query_string = {
                let mut params = form_urlencoded::Serializer::new(String::new());
                params.append_pair("limit", &page.to_string());
                if let Some(status) = query.status {
                    params.append_pair("status", status.as_str());
                }
                if let Some(source) = &query.source {
                    params.append_pair("source", source);
                }
                if let Some(cursor) = &cursor {
                    params.append_pair("cursor", cursor.as_str());
                }
                params.finish()
            };
            let url = format!("{path}?{query_string}");
            let (status, bytes) = self.send(Method::GET, &url, None, Effect::Read).await?;
            if !status.is_success() {
                let error = refusal(status, &bytes, None, Effect::Read);
                // An unknown cursor is the store's `NotFound` for it.
                if let (StoreError::Backend { source, .. }, Some(before)) = (&error, &cursor)
                    && matches!(source.downcast_ref::<HttpStoreError>(),
                        Some(HttpStoreError::Status { code: Some(code), .. }) if code == "invalid_cursor")
                {
                    return Err(StoreError::NotFound { id: before.clone() });
                }
                return Err(error);
            }
            let answer: TaskPage = decode(&bytes)?;
            let full = answer.tasks.len() == page;
            tasks.extend(answer.tasks);
            match answer.next_cursor {
                Some(next) if full => cursor = Some(next),
                _ => return Ok(tasks),
            }
        }
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        self.claim_room(request, None, self.inner.timeout).await
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let answer: ClaimResponse = self
            .call(
                Method::POST,
                &Self::task_path(id, "claim"),
                Some(&claim_body(request)),
                Effect::Write,
                Some(id),
            )
            .await?;
        Ok(claimed(answer))
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        let body = HeartbeatBody {
            claim_token: token.clone(),
            lease_seconds: lease.as_secs().max(1),
        };
        self.task_action(id, "heartbeat", &body).await
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let body = DoneBody {
            claim_token: token.clone(),
            result,
        };
        self.task_action(id, "done", &body).await
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let (retry, after) = match action {
            FailAction::Fail => (false, None),
            FailAction::Retry { after } => (true, Some(after.as_secs())),
        };
        let body = FailBody {
            claim_token: token.clone(),
            reason: reason.to_owned(),
            retry,
            retry_after_seconds: after,
        };
        self.task_action(id, "fail", &body).await
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let body = TokenBody {
            claim_token: token.clone(),
        };
        self.task_action(id, "release", &body).await
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let body = AskBody {
            claim_token: token.clone(),
            prompt: prompt.to_owned(),
        };
        self.task_action(id, "ask", &body).await
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        self.task_action(id, "input", &InputBody { input }).await
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let body = TokenBody {
            claim_token: token.clone(),
        };
        let answer: InputResponse = self
            .call(
                Method::POST,
                &Self::task_path(id, "take_input"),
                Some(&body),
                Effect::Write,
                Some(id),
            )
            .await?;
        Ok(answer.input)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut watchers = self
            .inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = watchers.get(room)
            && sender.receiver_count() > 0
        {
            return Some(sender.subscribe());
        }
        let (sender, receiver) = broadcast::channel(WATCH_CAPACITY);
        watchers.insert(room.to_owned(), sender.clone());
        runtime.spawn(follow(Arc::clone(&self.inner), room.to_owned(), sender));
        Some(receiver)
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let answer: ExpiredResponse = self
            .call(
                Method::POST,
                "/api/tasks/expire",
                None::<&()>,
                Effect::Write,
                None,
            )
            .await?;
        Ok(answer.tasks)
    }
}
