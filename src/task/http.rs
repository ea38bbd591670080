//! [`HttpTaskStore`]: a [`TaskStore`] served by a Task API
//! ([`TaskApi`](crate::service::TaskApi)) over HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use crate::lifecycle::JobStatus;
use crate::service::task_api::MAX_PAGE_LIMIT;
use crate::service::task_api::wire::{
    AskBody, ClaimBody, ClaimResponse, DoneBody, ExpiredResponse, FailBody, HeartbeatBody,
    InputBody, InputResponse, InsertBody, InsertResponse, JoinRequest, JoinResponse,
    MAX_WAIT_SECONDS, TaskPage, TaskResponse, TokenBody, operation_from_str, refusal_from_code,
};

/// The `store` name of the [`StoreError::Backend`] errors of [`HttpTaskStore`].
pub const HTTP_STORE: &str = "http";
/// How long one request may take, unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take, unless told otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
/// Only `http://` URLs are supported: put a TLS-terminating proxy in front
/// for other networks than a trusted one.
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
/// use hookroom::task::{HttpTaskStore, TaskStore};
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
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    authorization: zeroize::Zeroizing<String>,
    timeout: Duration,
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
}

impl std::fmt::Debug for HttpTaskStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTaskStoreBuilder")
            .field("base_url", &self.base_url)
            .field("token", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
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

    /// The store.
    ///
    /// # Errors
    /// [`HttpStoreError::InvalidUrl`] unless the base URL is an absolute
    /// `http://` URL without a query, or the token cannot be a header value.
    pub fn build(self) -> Result<HttpTaskStore, HttpStoreError> {
        let base = self.base_url.trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| HttpStoreError::InvalidUrl {
            reason: "not a URL",
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(HttpStoreError::InvalidUrl {
                reason: "an absolute http:// URL is required",
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
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpTaskStore {
            inner: Arc::new(Inner {
                client,
                base,
                authorization,
                timeout: self.timeout,
                watchers: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// Why a request of an [`HttpTaskStore`] failed, as the source of a
/// [`StoreError::Backend`]. Never carries the bearer token or claim tokens.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpStoreError {
    /// The builder's URL or token is not usable.
    InvalidUrl {
        /// What is wrong.
        reason: &'static str,
    },
    /// No connection could be made: the request was not sent, a retry is
    /// safe.
    Connect {
        /// The connector's error.
        detail: String,
    },
    /// No whole answer within the timeout.
    Timeout {
        /// Whether the operation changes nothing (a read), so that a retry
        /// is safe.
        idempotent: bool,
    },
    /// The connection failed after the request may have been sent.
    Transport {
        /// The client's error.
        detail: String,
        /// Whether the operation changes nothing (a read).
        idempotent: bool,
    },
    /// The server answered with an error that is not a task store refusal
    /// (e.g. `401`, `403`, `400`, or `503 store_unavailable`).
    Status {
        /// The HTTP status.
        status: u16,
        /// The error body's `code`, if there was one.
        code: Option<String>,
        /// The error body's `message`, or a note about the body.
        message: String,
        /// Whether the operation changes nothing (a read).
        idempotent: bool,
    },
    /// A success answer whose body is not what the Task API sends.
    Decode {
        /// What the JSON parser said.
        detail: String,
    },
}

impl HttpStoreError {
    /// Whether sending the same request again cannot apply a change twice:
    /// the request was not sent, or it changes nothing. A `4xx` status other
    /// than `408`/`429` will fail again the same way.
    pub fn retry_safe(&self) -> bool {
        match self {
            Self::Connect { .. } => true,
            Self::Timeout { idempotent } | Self::Transport { idempotent, .. } => *idempotent,
            Self::Status {
                status, idempotent, ..
            } => {
                // 503 is the server's store failing: a change may have been
                // applied before it failed.
                *idempotent && (*status >= 500 || *status == 408 || *status == 429)
            }
            Self::InvalidUrl { .. } | Self::Decode { .. } => false,
        }
    }

    fn retry_note(&self) -> &'static str {
        if self.retry_safe() {
            "a retry is safe"
        } else if matches!(self, Self::InvalidUrl { .. } | Self::Decode { .. })
            || matches!(self, Self::Status { status, .. } if *status < 500 && *status != 408 && *status != 429)
        {
            "a retry would fail the same way"
        } else {
            "the request may have been applied: read the task before retrying"
        }
    }
}

impl std::fmt::Display for HttpStoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let note = self.retry_note();
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid Task API base URL: {reason}"),
            Self::Connect { detail } => {
                write!(f, "could not connect to the Task API ({detail}); {note}")
            }
            Self::Timeout { .. } => write!(f, "the Task API did not answer in time; {note}"),
            Self::Transport { detail, .. } => {
                write!(
                    f,
                    "the connection to the Task API failed ({detail}); {note}"
                )
            }
            Self::Status {
                status,
                code,
                message,
                ..
            } => match code {
                Some(code) => write!(
                    f,
                    "the Task API answered {status} {code}: {message}; {note}"
                ),
                None => write!(f, "the Task API answered {status}: {message}; {note}"),
            },
            Self::Decode { detail } => {
                write!(
                    f,
                    "the Task API's answer could not be read ({detail}); {note}"
                )
            }
        }
    }
}

impl std::error::Error for HttpStoreError {}

fn backend(error: HttpStoreError) -> StoreError {
    StoreError::Backend {
        store: HTTP_STORE,
        source: Box::new(error),
    }
}

/// Percent-encodes one path segment (everything but unreserved characters).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(serde::Deserialize)]
struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    task_status: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// Whether sending a call twice has the effect of sending it once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// A read, or an idempotent write (`insert`).
    Read,
    /// A change.
    Write,
}

impl HttpTaskStore {
    /// A builder for the Task API at `base_url` (e.g.
    /// `http://127.0.0.1:8935`), sending `token`.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> HttpTaskStoreBuilder {
        HttpTaskStoreBuilder {
            base_url: base_url.into(),
            token: zeroize::Zeroizing::new(token.into()),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Sends one request; the status and body of any answer.
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        effect: Effect,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        self.send_within(method, path_and_query, body, effect, self.inner.timeout)
            .await
    }

    /// [`send`](Self::send) with its own timeout.
    async fn send_within(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        effect: Effect,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        let idempotent = effect == Effect::Read;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.inner.base))
            .header(header::AUTHORIZATION, self.inner.authorization.as_str());
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|_| {
                backend(HttpStoreError::InvalidUrl {
                    reason: "the request URL is not valid",
                })
            })?;
        let exchange = async {
            let response = self.inner.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    HttpStoreError::Connect {
                        detail: e.to_string(),
                    }
                } else {
                    HttpStoreError::Transport {
                        detail: e.to_string(),
                        idempotent,
                    }
                }
            })?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpStoreError::Transport {
                    detail: e.to_string(),
                    idempotent,
                })?
                .to_bytes();
            Ok((status, bytes))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(backend(e)),
            Err(_) => Err(backend(HttpStoreError::Timeout { idempotent })),
        }
    }

    /// Sends one request and reads a success body as `T`, or rebuilds the
    /// store's refusal. `id` names the task the request is about.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&impl Serialize>,
        effect: Effect,
        id: Option<&TaskId>,
    ) -> Result<T, StoreError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| {
            backend(HttpStoreError::Decode {
                detail: e.to_string(),
            })
        })?;
        let (status, bytes) = self.send(method, path_and_query, body, effect).await?;
        if status.is_success() {
            return decode(&bytes);
        }
        Err(refusal(status, &bytes, id, effect))
    }

    /// Joins `room` as `agent_id` with `capabilities` (`POST
    /// /api/rooms/{room}/join`): the room's member list shows the agent
    /// until it falls silent for the server's membership TTL. Claims and
    /// heartbeats refresh the membership.
    ///
    /// # Errors
    /// As the trait's operations: [`StoreError::Backend`] with an
    /// [`HttpStoreError`].
    pub async fn join(
        &self,
        room: &str,
        agent_id: &str,
        capabilities: &[String],
    ) -> Result<JoinResponse, StoreError> {
        let body = JoinRequest {
            agent_id: agent_id.to_owned(),
            capabilities: capabilities.to_vec(),
        };
        let path = format!("/api/rooms/{}/join", segment(room));
        self.call(Method::POST, &path, Some(&body), Effect::Read, None)
            .await
    }

    /// Claims the best claimable task of `request.room`, waiting up to
    /// `wait` (at most [`MAX_WAIT_SECONDS`], whole seconds) for one to
    /// arrive: the server answers as soon as a task is stored or freed, so
    /// an agent calls this in a loop instead of polling. `Ok(None)` when
    /// the wait ended with nothing to claim. The request's timeout is
    /// extended by `wait`.
    ///
    /// # Errors
    /// As [`TaskStore::claim`].
    pub async fn claim_wait(
        &self,
        request: &ClaimRequest,
        wait: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let wait = wait.as_secs().min(MAX_WAIT_SECONDS);
        self.claim_room(
            request,
            Some(wait),
            self.inner.timeout + Duration::from_secs(wait),
        )
        .await
    }

    async fn claim_room(
        &self,
        request: &ClaimRequest,
        wait_seconds: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let path = format!("/api/rooms/{}/claim", segment(&request.room));
        let mut body = claim_body(request);
        body.wait_seconds = wait_seconds;
        let body = serde_json::to_vec(&body).map_err(|e| {
            backend(HttpStoreError::Decode {
                detail: e.to_string(),
            })
        })?;
        let (status, bytes) = self
            .send_within(Method::POST, &path, Some(body), Effect::Write, timeout)
            .await?;
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            return decode::<ClaimResponse>(&bytes).map(|a| Some(claimed(a)));
        }
        Err(refusal(status, &bytes, None, Effect::Write))
    }

    fn task_path(id: &TaskId, action: &str) -> String {
        format!("/api/tasks/{}/{action}", segment(id.as_str()))
    }

    async fn task_action(
        &self,
        id: &TaskId,
        action: &str,
        body: &impl Serialize,
    ) -> Result<Task, StoreError> {
        let answer: TaskResponse = self
            .call(
                Method::POST,
                &Self::task_path(id, action),
                Some(body),
                Effect::Write,
                Some(id),
            )
            .await?;
        Ok(answer.task)
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        backend(HttpStoreError::Decode {
            detail: e.to_string(),
        })
    })
}

/// The [`StoreError`] of an error answer.
fn refusal(status: StatusCode, bytes: &[u8], id: Option<&TaskId>, effect: Effect) -> StoreError {
    let Ok(ErrorEnvelope { error }) = serde_json::from_slice::<ErrorEnvelope>(bytes) else {
        return backend(HttpStoreError::Status {
            status: status.as_u16(),
            code: None,
            message: "the body is not a Task API error".into(),
            idempotent: effect == Effect::Read,
        });
    };
    let task = || {
        error
            .task_id
            .as_deref()
            .map(TaskId::from)
            .or_else(|| id.cloned())
    };
    let rebuilt = match error.code.as_str() {
        "task_not_found" => task().map(|id| StoreError::NotFound { id }),
        "claim_not_held" => task().map(|id| StoreError::NotHeld { id }),
        "invalid_transition" => {
            let from = error
                .task_status
                .as_deref()
                .and_then(|s| s.parse::<JobStatus>().ok());
            let operation = error.operation.as_deref().and_then(operation_from_str);
            match (task(), from, operation) {
                (Some(id), Some(from), Some(operation)) => Some(StoreError::InvalidTransition {
                    id,
                    from,
                    operation,
                }),
                _ => None,
            }
        }
        "task_not_claimable" => {
            match (task(), error.refusal.as_deref().and_then(refusal_from_code)) {
                (Some(id), Some(reason)) => Some(StoreError::NotClaimable { id, reason }),
                _ => None,
            }
        }
        _ => None,
    };
    rebuilt.unwrap_or_else(|| {
        backend(HttpStoreError::Status {
            status: status.as_u16(),
            code: Some(error.code),
            message: error.message,
            idempotent: effect == Effect::Read,
        })
    })
}

fn claim_body(request: &ClaimRequest) -> ClaimBody {
    ClaimBody {
        agent_id: request.agent.clone(),
        capabilities: request.capabilities.clone(),
        // The API counts whole seconds, at least one.
        lease_seconds: request.lease.as_secs().max(1),
        wait_seconds: None,
    }
}

fn claimed(answer: ClaimResponse) -> Claimed {
    Claimed {
        task: answer.task,
        token: answer.claim_token,
    }
}

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

/// Queue length of a watch receiver.
const WATCH_CAPACITY: usize = 256;
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(100);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Follows `room`'s event stream into `sender` until no receiver is left.
async fn follow(inner: Arc<Inner>, room: String, sender: broadcast::Sender<TaskId>) {
    let mut last_event_id: u64 = 0;
    let mut delay = FIRST_RECONNECT_DELAY;
    let url = format!("{}/api/rooms/{}/events", inner.base, segment(&room));
    while sender.receiver_count() > 0 {
        let request = Request::get(url.as_str())
            .header(header::AUTHORIZATION, inner.authorization.as_str())
            .header(header::ACCEPT, "text/event-stream")
            .header("last-event-id", last_event_id.to_string())
            .body(Full::new(Bytes::new()));
        let Ok(request) = request else { break };
        match inner.client.request(request).await {
            Ok(response) if response.status().is_success() => {
                delay = FIRST_RECONNECT_DELAY;
                let mut body = response.into_body();
                let mut parser = SseParser::default();
                while let Some(Ok(frame)) = body.frame().await {
                    if let Ok(data) = frame.into_data() {
                        for event in parser.push(&data) {
                            if let Some(id) = event.id {
                                last_event_id = id;
                            }
                            if let Some(task) = event.pending_task {
                                // No receiver left is seen below.
                                let _ = sender.send(task);
                            }
                        }
                    }
                    if sender.receiver_count() == 0 {
                        break;
                    }
                }
            }
            Ok(response) => {
                tracing::warn!(
                    room = %room,
                    status = response.status().as_u16(),
                    "the Task API refused the room's event stream; watch gets no notifications"
                );
                delay = MAX_RECONNECT_DELAY;
            }
            Err(error) => {
                tracing::debug!(room = %room, %error, "event stream connection failed");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
    let mut watchers = inner
        .watchers
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if watchers.get(&room).is_some_and(|s| s.same_channel(&sender)) {
        watchers.remove(&room);
    }
}

/// One dispatched server-sent event, as `watch` needs it.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    /// Its `id:`, a sequence number.
    id: Option<u64>,
    /// The task of a `data:` whose status is `PENDING`.
    pending_task: Option<TaskId>,
}

/// A line-by-line reader of `text/event-stream`.
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    current: SseEvent,
    data: String,
}

impl SseParser {
    /// The events completed by `bytes`.
    fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let mut event = std::mem::take(&mut self.current);
                let data = std::mem::take(&mut self.data);
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&data)
                    && value.get("status").and_then(|s| s.as_str()) == Some("PENDING")
                {
                    event.pending_task = value.get("id").and_then(|s| s.as_str()).map(TaskId::from);
                }
                if event != SseEvent::default() {
                    events.push(event);
                }
            } else if let Some(id) = line.strip_prefix("id:") {
                self.current.id = id.trim().parse().ok();
            } else if let Some(data) = line.strip_prefix("data:") {
                self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
            }
            // `event:` names and `:` comments (keep-alives) need nothing.
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_parsing() {
        let mut parser = SseParser::default();
        let stream = b": keep-alive\n\nid: 7\nevent: task.created\ndata: {\"id\":\"t1\",\"room\":\"r\",\"title\":\"x\",\"status\":\"PENDING\"}\n\nid: 8\r\nevent: task.claimed\r\ndata: {\"id\":\"t1\",\"status\":\"RUNNING\"}\r\n\r\n";
        // Split mid-line: the parser keeps the rest for the next chunk.
        let (a, b) = stream.split_at(60);
        let mut events = parser.push(a);
        events.extend(parser.push(b));
        assert_eq!(
            events,
            vec![
                SseEvent {
                    id: Some(7),
                    pending_task: Some(TaskId::from("t1")),
                },
                SseEvent {
                    id: Some(8),
                    pending_task: None,
                },
            ]
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("pr-review"), "pr-review");
        assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn builder_refuses_unusable_urls_and_redacts_the_token() {
        for url in ["ftp://x", "not a url", "/api", "http://h/?q=1"] {
            assert!(matches!(
                HttpTaskStore::builder(url, "t").build(),
                Err(HttpStoreError::InvalidUrl { .. })
            ));
        }
        assert!(matches!(
            HttpTaskStore::builder("http://h", "bad\ntoken").build(),
            Err(HttpStoreError::InvalidUrl { .. })
        ));
        let builder = HttpTaskStore::builder("http://127.0.0.1:1/", "secret-token");
        assert!(!format!("{builder:?}").contains("secret-token"));
        let store = builder.build().unwrap();
        assert!(!format!("{store:?}").contains("secret-token"));
    }

    #[test]
    fn retry_safety() {
        assert!(HttpStoreError::Connect { detail: "x".into() }.retry_safe());
        assert!(!HttpStoreError::Timeout { idempotent: false }.retry_safe());
        assert!(HttpStoreError::Timeout { idempotent: true }.retry_safe());
        let status = |status, idempotent| HttpStoreError::Status {
            status,
            code: None,
            message: String::new(),
            idempotent,
        };
        assert!(status(503, true).retry_safe());
        assert!(!status(503, false).retry_safe());
        assert!(!status(401, true).retry_safe());
        assert!(
            HttpStoreError::Timeout { idempotent: false }
                .to_string()
                .contains("may have been applied")
        );
        assert!(
            HttpStoreError::Connect { detail: "x".into() }
                .to_string()
                .contains("a retry is safe")
        );
    }

    #[test]
    fn refusals_are_rebuilt() {
        let id = TaskId::from("t1");
        let body = br#"{"error":{"code":"invalid_transition","message":"m","task_id":"t1","task_status":"DONE","operation":"complete"}}"#;
        assert!(matches!(
            refusal(StatusCode::CONFLICT, body, None, Effect::Write),
            StoreError::InvalidTransition { id: got, from: JobStatus::Done, operation: crate::task::Operation::Complete } if got == id
        ));
        let body = br#"{"error":{"code":"task_not_claimable","message":"m","task_id":"t1","refusal":"not_yet_due"}}"#;
        assert!(matches!(
            refusal(StatusCode::CONFLICT, body, None, Effect::Write),
            StoreError::NotClaimable {
                reason: crate::task::ClaimRefusal::NotYetDue,
                ..
            }
        ));
        let body = br#"{"error":{"code":"unauthorized","message":"m"}}"#;
        assert!(matches!(
            refusal(StatusCode::UNAUTHORIZED, body, None, Effect::Read),
            StoreError::Backend {
                store: HTTP_STORE,
                ..
            }
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_GATEWAY, b"<html>", Some(&id), Effect::Read),
            StoreError::Backend { .. }
        ));
    }
}
