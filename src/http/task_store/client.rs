//! The requests: one method per Task API call.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;

use crate::http::body::{ResponseBodyError, read_limited};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ClaimRequest, Claimed, StoreError, Task, TaskId};
use crate::api::task::{ClaimResponse, JoinRequest, JoinResponse, MAX_WAIT_SECONDS, TaskResponse};

use super::*;

impl HttpTaskStore {
    /// A builder for the Task API at `base_url` (e.g.
    /// `http://127.0.0.1:8935`), sending `token`.
    pub fn builder(base_url: impl Into<String>, token: impl Into<String>) -> HttpTaskStoreBuilder {
        HttpTaskStoreBuilder {
            base_url: base_url.into(),
            token: zeroize::Zeroizing::new(token.into()),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_response_bytes: crate::http::DEFAULT_MAX_RESPONSE_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            tls: Tls::default(),
        }
    }

    /// Sends one request; the status and body of any answer.
    pub(super) async fn send(
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
    pub(super) async fn send_within(
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
                if crate::http::client::is_tls_error(&e) {
                    HttpStoreError::Tls {
                        detail: tls_detail(&e),
                    }
                } else if e.is_connect() {
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
            let limit = self.inner.max_response_bytes;
            let bytes = read_limited(response.into_body(), limit)
                .await
                .map_err(|e| match e {
                    ResponseBodyError::TooLarge { limit } => {
                        HttpStoreError::ResponseTooLarge { limit, idempotent }
                    }
                    other => HttpStoreError::Transport {
                        detail: other.to_string(),
                        idempotent,
                    },
                })?;
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
    pub(super) async fn call<T: DeserializeOwned>(
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

    pub(super) async fn claim_room(
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

    pub(super) fn task_path(id: &TaskId, action: &str) -> String {
        format!("/api/tasks/{}/{action}", segment(id.as_str()))
    }

    pub(super) async fn task_action(
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

/// The innermost message of a TLS failure's chain (the rustls error), which
/// says what was refused; the outer layers only say "client error
/// (Connect)".
fn tls_detail(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error.to_string();
    let mut next = error.source();
    while let Some(error) = next {
        last = error.to_string();
        next = error.source();
    }
    last
}
