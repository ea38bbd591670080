//! [`HttpStatusSink`]: pushes every job change to a Jobs API over HTTP(S),
//! with retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use zeroize::Zeroizing;

use super::body::DEFAULT_MAX_RESPONSE_BYTES;
use super::retry::{
    Attempt, HttpsClient, RetryPolicy, exchange_limited, https_client, with_retries,
};

use crate::api::jobs::{
    ApiErrorBody, ArtifactUpdateRequest, JobCompleteRequest, JobCreateRequest, JobView,
    StatusUpdateRequest,
};
use crate::status::{JobEvent, SinkError, StatusSink};

/// The name this sink gives in its errors.
const SINK: &str = "http";

/// Why an [`HttpStatusSink`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpSinkBuildError {
    /// The base URL is not an absolute `http` or `https` URL.
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The bearer token cannot be sent in a header.
    InvalidToken,
    /// TLS could not be set up.
    Tls(rustls::Error),
}

impl std::fmt::Display for HttpSinkBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid Jobs API base URL: {reason}"),
            Self::InvalidToken => f.write_str("the bearer token is not a valid header value"),
            Self::Tls(e) => write!(f, "TLS setup failed: {e}"),
        }
    }
}

impl std::error::Error for HttpSinkBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// A [`StatusSink`] that is a client of the Jobs API.
///
/// | event | request |
/// | --- | --- |
/// | [`JobEvent::Created`] | `POST {base}/jobs` with the job id |
/// | [`JobEvent::Status`] | `POST {base}/jobs/{id}/status` |
/// | [`JobEvent::Artifact`] | `POST {base}/jobs/{id}/status` with only `artifacts` |
/// | [`JobEvent::Completed`] | `POST {base}/jobs/{id}/complete` |
///
/// `base` is the API root, e.g. `http://localhost:8000/api`. Every request
/// carries `Authorization: Bearer <token>` (when set) and an
/// `Idempotency-Key` that stays the same across the retries of one update,
/// so a Jobs API that honours it (hookroom's `JobsApi` does) applies a
/// retried update once. Updates to one job are sent one at a time, in the
/// order they were published. Retries follow the [`RetryPolicy`]; final
/// failures are `E_TIMEOUT` ([`SinkError::Timeout`]), `E_NETWORK_ERROR`,
/// `E_AUTHENTICATION_FAILED` (`401`/`403`), `E_JOB_NOT_FOUND`,
/// `E_INVALID_STATUS`, `E_SERIALIZATION_ERROR`, and `E_WEBHOOK_FAILED`
/// ([`SinkError::Backend`]) for everything else.
///
/// `Debug` never shows the token.
///
/// ```
/// use hookroom::http::{HttpStatusSink, RetryPolicy};
///
/// let sink = HttpStatusSink::builder("http://localhost:8000/api")
///     .bearer_token("mcp_webhook_token_12345")
///     .retry_policy(RetryPolicy::default())
///     .build()
///     .unwrap();
/// assert!(!format!("{sink:?}").contains("12345"));
/// ```
#[derive(Clone)]
pub struct HttpStatusSink {
    inner: Arc<Inner>,
}

struct Inner {
    client: HttpsClient,
    base: String,
    authorization: Option<HeaderValue>,
    policy: RetryPolicy,
    max_response_bytes: usize,
    /// One lock per job with an update in flight: updates to a job go out
    /// one at a time, in order.
    jobs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for HttpStatusSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStatusSink")
            .field("base", &self.inner.base)
            .field(
                "authorization",
                &self.inner.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpStatusSink`].
pub struct HttpStatusSinkBuilder {
    base: String,
    token: Option<Zeroizing<String>>,
    policy: RetryPolicy,
    max_response_bytes: usize,
}

impl std::fmt::Debug for HttpStatusSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStatusSinkBuilder")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("policy", &self.policy)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

impl HttpStatusSinkBuilder {
    /// The bearer token sent with every request.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Zeroizing::new(token.into()));
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The largest answer body read from the Jobs API (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]). A longer answer is not retried: the
    /// update fails with [`SinkError::Network`] whose source is
    /// [`ResponseBodyError::TooLarge`](super::ResponseBodyError::TooLarge).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The sink.
    ///
    /// # Errors
    /// An invalid base URL or token, or a TLS setup failure.
    pub fn build(self) -> Result<HttpStatusSink, HttpSinkBuildError> {
        let base = self.base.trim_end_matches('/').to_owned();
        let uri: http::Uri =
            base.parse()
                .map_err(|e: http::uri::InvalidUri| HttpSinkBuildError::InvalidUrl {
                    reason: e.to_string(),
                })?;
        match uri.scheme_str() {
            Some("http" | "https") if uri.host().is_some() => {}
            _ => {
                return Err(HttpSinkBuildError::InvalidUrl {
                    reason: "expected an absolute http:// or https:// URL".into(),
                });
            }
        }
        let authorization = self
            .token
            .map(|token| {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
                    .map_err(|_| HttpSinkBuildError::InvalidToken)?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        let client = https_client().map_err(HttpSinkBuildError::Tls)?;
        Ok(HttpStatusSink {
            inner: Arc::new(Inner {
                client,
                base,
                authorization,
                policy: self.policy,
                max_response_bytes: self.max_response_bytes,
                jobs: Mutex::default(),
            }),
        })
    }
}

impl HttpStatusSink {
    /// A builder for a sink pushing to the Jobs API at `base` (e.g.
    /// `http://localhost:8000/api`).
    pub fn builder(base: impl Into<String>) -> HttpStatusSinkBuilder {
        HttpStatusSinkBuilder {
            base: base.into(),
            token: None,
            policy: RetryPolicy::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// The retry policy in use.
    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// `GET {base}/jobs/{id}?include_history=…`, with the same retries;
    /// `Ok(None)` for an unknown job.
    ///
    /// # Errors
    /// As [`publish`](StatusSink::publish).
    pub async fn pull_job(
        &self,
        job_id: &str,
        include_history: bool,
    ) -> Result<Option<JobView>, SinkError> {
        let path = format!(
            "/jobs/{}?include_history={include_history}",
            encode_segment(job_id)
        );
        match self
            .send(Method::GET, &path, Bytes::new(), None, job_id)
            .await
        {
            Ok(body) => {
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| SinkError::Serialization {
                        sink: SINK,
                        reason: e.to_string(),
                    })
            }
            Err(SinkError::JobNotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The request for `event`: path and JSON body.
    fn request_for(event: JobEvent) -> Result<(String, String, Bytes), SinkError> {
        fn body<T: Serialize>(value: &T) -> Result<Bytes, SinkError> {
            serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| SinkError::Serialization {
                    sink: SINK,
                    reason: e.to_string(),
                })
        }
        let job_id = event.job_id().to_owned();
        let segment = encode_segment(&job_id);
        Ok(match event {
            JobEvent::Created {
                job_id,
                input_data,
                metadata,
                ..
            } => {
                let request = JobCreateRequest {
                    job_id: Some(job_id.clone()),
                    input_data: input_data.to_value(),
                    metadata,
                };
                ("/jobs".to_owned(), job_id, body(&request)?)
            }
            JobEvent::Status {
                status,
                progress,
                message,
                step,
                ..
            } => {
                let request = StatusUpdateRequest {
                    status,
                    progress,
                    message,
                    step,
                    artifacts: Vec::new(),
                };
                (format!("/jobs/{segment}/status"), job_id, body(&request)?)
            }
            JobEvent::Artifact { artifact, .. } => {
                let request = ArtifactUpdateRequest {
                    artifacts: vec![artifact],
                };
                (format!("/jobs/{segment}/status"), job_id, body(&request)?)
            }
            JobEvent::Completed {
                final_status,
                summary,
                artifacts,
                message,
                ..
            } => {
                let request = JobCompleteRequest {
                    final_status,
                    summary,
                    final_artifacts: artifacts,
                    completion_message: message,
                };
                (format!("/jobs/{segment}/complete"), job_id, body(&request)?)
            }
        })
    }

    /// Sends one request with retries; the body of the 2xx answer. Each
    /// retry is counted in [`STATUS_PUSH_RETRIES`](crate::telemetry::STATUS_PUSH_RETRIES).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        idempotency_key: Option<&str>,
        job_id: &str,
    ) -> Result<Bytes, SinkError> {
        let last = with_retries(
            &self.inner.policy,
            path,
            || self.attempt(&method, path, &body, idempotency_key),
            |failed| {
                metrics::counter!(
                    crate::telemetry::STATUS_PUSH_RETRIES,
                    "reason" => super::retry::retry_reason(failed)
                )
                .increment(1);
            },
        )
        .await;
        match last {
            Attempt::Answer { status, body, .. } if status.is_success() => Ok(body),
            Attempt::Answer { status, body, .. } => Err(refusal(status, &body, job_id)),
            Attempt::TimedOut => Err(SinkError::Timeout { sink: SINK }),
            Attempt::Failed(source) => Err(SinkError::Network { sink: SINK, source }),
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: &Bytes,
        idempotency_key: Option<&str>,
    ) -> Attempt {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.inner.base))
            .header(header::ACCEPT, "application/json");
        if *method == Method::POST {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        match request.body(Full::new(body.clone())) {
            Ok(request) => {
                exchange_limited(
                    &self.inner.client,
                    request,
                    self.inner.policy.timeout,
                    self.inner.max_response_bytes,
                )
                .await
            }
            Err(e) => Attempt::Failed(Box::new(e)),
        }
    }

    /// The lock that keeps updates to `job_id` in order.
    fn job_lock(&self, job_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut jobs = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(jobs.entry(job_id.to_owned()).or_default())
    }

    /// Forgets `job_id`'s lock when no other update holds or waits for it.
    fn release(&self, job_id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut jobs = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody else cloned it (they clone under this lock).
        if Arc::strong_count(&lock) == 2 {
            jobs.remove(job_id);
        }
    }
}

/// The error for a final non-2xx answer.
fn refusal(status: StatusCode, body: &[u8], job_id: &str) -> SinkError {
    let detail = serde_json::from_slice::<ApiErrorBody>(body)
        .ok()
        .map(|body| body.error);
    let code = detail.as_ref().map(|d| d.code.as_str());
    match (status, code) {
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
            SinkError::AuthenticationFailed { sink: SINK }
        }
        (StatusCode::NOT_FOUND, Some("E_JOB_NOT_FOUND")) => SinkError::JobNotFound {
            job_id: job_id.to_owned(),
        },
        (_, Some("E_INVALID_STATUS")) => SinkError::InvalidStatus {
            reason: detail.map(|d| d.message).unwrap_or_default(),
        },
        (_, Some("E_SERIALIZATION_ERROR")) => SinkError::Serialization {
            sink: SINK,
            reason: detail.map(|d| d.message).unwrap_or_default(),
        },
        _ => SinkError::Backend {
            sink: SINK,
            source: format!(
                "HTTP {status}{}",
                code.map(|c| format!(" {c}")).unwrap_or_default()
            )
            .into(),
        },
    }
}

/// `job_id` as one path segment: everything but unreserved characters
/// percent-encoded.
fn encode_segment(job_id: &str) -> String {
    let mut out = String::with_capacity(job_id.len());
    for byte in job_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[async_trait]
impl StatusSink for HttpStatusSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        let key = uuid::Uuid::new_v4().to_string();
        self.publish_once(event, &key).await
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let (path, job_id, body) = Self::request_for(event)?;
        let lock = self.job_lock(&job_id);
        let result = {
            let _in_order = lock.lock().await;
            self.send(Method::POST, &path, body, Some(key), &job_id)
                .await
                .map(drop)
        };
        self.release(&job_id, lock);
        let outcome = match &result {
            Ok(()) => "delivered",
            Err(error) => crate::error_code::ErrorCode::code(error),
        };
        metrics::counter!(crate::telemetry::STATUS_PUSHES, "outcome" => outcome).increment(1);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_answers_map_to_the_jobs_api_codes() {
        use crate::error_code::ErrorCode;
        let body = |code: &str| format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
        let cases = [
            (401, String::new(), "E_AUTHENTICATION_FAILED"),
            (403, String::new(), "E_AUTHENTICATION_FAILED"),
            (404, body("E_JOB_NOT_FOUND"), "E_JOB_NOT_FOUND"),
            (404, String::new(), "E_WEBHOOK_FAILED"),
            (400, body("E_INVALID_STATUS"), "E_INVALID_STATUS"),
            (400, body("E_SERIALIZATION_ERROR"), "E_SERIALIZATION_ERROR"),
            (503, body("E_WEBHOOK_FAILED"), "E_WEBHOOK_FAILED"),
            (409, String::new(), "E_WEBHOOK_FAILED"),
        ];
        for (status, body, code) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                refusal(status, body.as_bytes(), "j").code(),
                code,
                "{status}"
            );
        }
    }

    #[test]
    fn bad_urls_and_tokens_are_refused_and_the_token_is_redacted() {
        for url in ["localhost:8000/api", "ftp://host/api", "/api", "not a url"] {
            assert!(
                matches!(
                    HttpStatusSink::builder(url).build(),
                    Err(HttpSinkBuildError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            HttpStatusSink::builder("http://h/api")
                .bearer_token("bad\ntoken")
                .build(),
            Err(HttpSinkBuildError::InvalidToken)
        ));
        let builder = HttpStatusSink::builder("https://h/api/").bearer_token("s3cret-token");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let sink = builder.build().unwrap();
        assert!(!format!("{sink:?}").contains("s3cret"));
        assert_eq!(sink.inner.base, "https://h/api");
    }

    #[test]
    fn job_ids_are_one_path_segment() {
        assert_eq!(encode_segment("task-1_a.b~"), "task-1_a.b~");
        assert_eq!(encode_segment("a/b?c d"), "a%2Fb%3Fc%20d");
    }
}
