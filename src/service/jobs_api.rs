//! [`JobsApi`]: the Jobs API as a tower service, over a [`JobRegistry`].
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `POST {prefix}` | [`JobCreateRequest`] | `201` [`JobCreateResponse`] |
//! | `POST {prefix}/{job_id}/status` | [`StatusUpdateRequest`] (or [`ArtifactUpdateRequest`] to only attach artifacts) | `200` [`JobView`] |
//! | `GET {prefix}/{job_id}?include_history=true\|false` | | `200` [`JobView`] |
//! | `POST {prefix}/{job_id}/complete` | [`JobCompleteRequest`] | `200` [`JobView`] |
//! | `GET {prefix}?status=&limit=&cursor=` | | `200` [`JobListResponse`], newest first |
//!
//! Refusals are [`JobsApiError`]s, answered in the shape of
//! [`ApiErrorBody`](crate::api::jobs::ApiErrorBody).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use tower_service::Service;

use super::body::read_limited;
use super::error::{IngestError, json_response};
use super::json_error::JsonError;
use super::{ResponseFuture, ServiceBody};
use crate::api::jobs::{
    ArtifactUpdateRequest, CREATED_BY, JobCompleteRequest, JobCreateRequest, JobCreateResponse,
    JobListResponse, JobView, StatusUpdateRequest,
};
use crate::auth::{AuthError, Forbidden, Operation, Principal, Principals};
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::status::{
    Applied, Artifact, Job, JobEvent, JobQuery, JobRegistry, JobStatus, MAX_PAGE_SIZE, SinkError,
};

/// Where [`JobsApi`] serves unless told otherwise.
pub const DEFAULT_JOBS_PREFIX: &str = "/api/jobs";

/// The largest request body [`JobsApi`] reads unless told otherwise (1 MiB).
pub const DEFAULT_JOBS_BODY_LIMIT: usize = 1024 * 1024;

/// How many `Idempotency-Key`s [`JobsApi`] remembers unless told otherwise.
pub const DEFAULT_IDEMPOTENCY_CAPACITY: usize = 10_000;

/// How many artifacts one job may hold unless told otherwise
/// ([`JobsApiBuilder::max_artifacts_per_job`]).
pub const DEFAULT_MAX_ARTIFACTS_PER_JOB: usize = 100;

/// The largest artifact entry, as JSON, unless told otherwise
/// ([`JobsApiBuilder::max_artifact_bytes`]): 4 KiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: usize = 4 * 1024;

/// The largest `input_data` of a job, as JSON, unless told otherwise
/// ([`JobsApiBuilder::max_input_data_bytes`]): 64 KiB.
pub const DEFAULT_MAX_INPUT_DATA_BYTES: usize = 64 * 1024;

/// The largest `metadata` of a job and `summary` of a completion, as JSON,
/// unless told otherwise ([`JobsApiBuilder::max_metadata_bytes`]): 64 KiB.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 64 * 1024;

/// The largest answer an `Idempotency-Key` keeps as is; a larger one is
/// kept as its status only, and a replay answers with the job as it is.
const MAX_KEPT_ANSWER_BYTES: usize = 4 * 1024;

/// The request header that makes a `POST` apply once however often it is
/// retried.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header set on an answer replayed for a repeated
/// `Idempotency-Key`.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The longest `Idempotency-Key` accepted, in bytes.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Why the Jobs API refused a request. Each variant has one HTTP status
/// ([`status`](Self::status)) and one stable code
/// ([`code`](ErrorCode::code)).
///
/// | variant | status | code |
/// | --- | --- | --- |
/// | [`JobNotFound`](Self::JobNotFound) | 404 | `E_JOB_NOT_FOUND` |
/// | [`InvalidStatus`](Self::InvalidStatus) | 400 | `E_INVALID_STATUS` |
/// | [`AuthenticationFailed`](Self::AuthenticationFailed) | 401 | `E_AUTHENTICATION_FAILED` |
/// | [`Serialization`](Self::Serialization) | 400 | `E_SERIALIZATION_ERROR` |
/// | [`PayloadTooLarge`](Self::PayloadTooLarge) | 413 | `E_PAYLOAD_TOO_LARGE` |
/// | [`TooManyJobs`](Self::TooManyJobs) | 429 | `E_TOO_MANY_JOBS` |
/// | [`BoundExceeded`](Self::BoundExceeded) | 413 | per [`JobBound`]: `E_TOO_MANY_ARTIFACTS`, `E_ARTIFACT_TOO_LARGE`, `E_INPUT_DATA_TOO_LARGE`, `E_METADATA_TOO_LARGE` |
/// | [`NotFound`](Self::NotFound) | 404 | `E_NOT_FOUND` |
/// | [`MethodNotAllowed`](Self::MethodNotAllowed) | 405 | `E_METHOD_NOT_ALLOWED` |
/// | [`Unavailable`](Self::Unavailable) | 503 | `E_WEBHOOK_FAILED` |
#[derive(Debug)]
#[non_exhaustive]
pub enum JobsApiError {
    /// No job has this id.
    JobNotFound {
        /// The id asked for.
        job_id: String,
    },
    /// An unknown status, a status the endpoint does not take (`DONE` on
    /// `/status`, `RUNNING` on `/complete`), or an illegal transition such
    /// as `DONE` → `RUNNING`.
    InvalidStatus {
        /// What was wrong.
        reason: String,
    },
    /// No valid bearer token (none, unknown or expired). The presented
    /// token is never echoed.
    AuthenticationFailed,
    /// The principal made too many requests (`429 E_RATE_LIMITED`, with
    /// `Retry-After`).
    RateLimited {
        /// How long until a request would be allowed.
        retry_after: std::time::Duration,
    },
    /// The principal may not do this to this job (`403 E_FORBIDDEN`): a
    /// webhook task's job changes only through its task, a reporter's job
    /// only through the reporter that created it.
    Forbidden(Forbidden),
    /// The body is not JSON of the endpoint's shape, or a query parameter
    /// or header cannot be read.
    Serialization {
        /// What could not be read.
        reason: String,
    },
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The registry holds its cap of jobs and none a Jobs API job may
    /// evict (only finished Jobs API jobs; never a webhook task's job).
    TooManyJobs {
        /// The cap.
        limit: usize,
    },
    /// The request would take a job past one of its bounds; nothing was
    /// applied.
    BoundExceeded {
        /// Which bound.
        bound: JobBound,
        /// Its value.
        limit: usize,
    },
    /// No Jobs API endpoint has this path.
    NotFound,
    /// The path exists but not for this method.
    MethodNotAllowed {
        /// The methods the path takes, for the `Allow` header.
        allow: &'static str,
    },
    /// The job registry failed; the request was not applied and may be
    /// retried.
    Unavailable,
}

impl JobsApiError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::JobNotFound { .. } | Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidStatus { .. } | Self::Serialization { .. } => StatusCode::BAD_REQUEST,
            Self::AuthenticationFailed => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } | Self::BoundExceeded { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::TooManyJobs { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON refusal ([`ApiErrorBody`](crate::api::jobs::ApiErrorBody)), with `WWW-Authenticate: Bearer`
    /// on 401 and `Allow` on 405.
    pub fn to_response(&self) -> Response<ServiceBody> {
        let message = self.to_string();
        let error = JsonError::new(self.status(), self.code(), &message);
        match self {
            Self::AuthenticationFailed => error.bearer_challenge(),
            Self::RateLimited { retry_after } => error.retry_after(*retry_after),
            Self::MethodNotAllowed { allow } => error.allow(allow),
            _ => error,
        }
        .into_response()
    }
}

impl ErrorCode for JobsApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::JobNotFound { .. } => "E_JOB_NOT_FOUND",
            Self::InvalidStatus { .. } => "E_INVALID_STATUS",
            Self::AuthenticationFailed => "E_AUTHENTICATION_FAILED",
            Self::RateLimited { .. } => "E_RATE_LIMITED",
            Self::Forbidden(_) => "E_FORBIDDEN",
            Self::Serialization { .. } => "E_SERIALIZATION_ERROR",
            Self::PayloadTooLarge { .. } => "E_PAYLOAD_TOO_LARGE",
            Self::BoundExceeded { bound, .. } => bound.code(),
            Self::TooManyJobs { .. } => "E_TOO_MANY_JOBS",
            Self::NotFound => "E_NOT_FOUND",
            Self::MethodNotAllowed { .. } => "E_METHOD_NOT_ALLOWED",
            Self::Unavailable => "E_WEBHOOK_FAILED",
        }
    }
}

impl std::fmt::Display for JobsApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::JobNotFound { job_id } => write!(f, "job `{job_id}` not found"),
            Self::InvalidStatus { reason } => write!(f, "invalid status: {reason}"),
            Self::AuthenticationFailed => {
                f.write_str("a valid `Authorization: Bearer <token>` header is required")
            }
            Self::RateLimited { retry_after } => write!(
                f,
                "too many requests for this principal; retry after {} s",
                retry_after.as_secs_f64().ceil().max(1.0)
            ),
            Self::Forbidden(e) => e.fmt(f),
            Self::Serialization { reason } => write!(f, "cannot read the request: {reason}"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body exceeds the limit of {limit} bytes")
            }
            Self::BoundExceeded { bound, limit } => match bound {
                JobBound::Artifacts => write!(f, "a job holds at most {limit} artifacts"),
                JobBound::ArtifactBytes => {
                    write!(f, "an artifact entry is at most {limit} bytes of JSON")
                }
                JobBound::InputDataBytes => {
                    write!(f, "`input_data` is at most {limit} bytes of JSON")
                }
                JobBound::MetadataBytes => {
                    write!(
                        f,
                        "`metadata` and `summary` are at most {limit} bytes of JSON"
                    )
                }
            },
            Self::TooManyJobs { limit } => write!(
                f,
                "the job registry holds its cap of {limit} jobs; a new job can be created once a job made through this API has finished"
            ),
            Self::NotFound => f.write_str("no such Jobs API endpoint"),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::Unavailable => {
                f.write_str("the job registry is unavailable; the request was not applied")
            }
        }
    }
}

impl std::error::Error for JobsApiError {}

/// A bound of a job that [`JobsApi`] enforces, named by the code of its
/// refusal ([`JobsApiError::BoundExceeded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobBound {
    /// Artifacts per job ([`JobsApiBuilder::max_artifacts_per_job`]):
    /// `E_TOO_MANY_ARTIFACTS`.
    Artifacts,
    /// Bytes per artifact entry ([`JobsApiBuilder::max_artifact_bytes`]):
    /// `E_ARTIFACT_TOO_LARGE`.
    ArtifactBytes,
    /// Bytes of `input_data` ([`JobsApiBuilder::max_input_data_bytes`]):
    /// `E_INPUT_DATA_TOO_LARGE`.
    InputDataBytes,
    /// Bytes of `metadata`, or of a completion's `summary`
    /// ([`JobsApiBuilder::max_metadata_bytes`]): `E_METADATA_TOO_LARGE`.
    MetadataBytes,
}

impl JobBound {
    /// The stable code of a refusal past this bound.
    pub fn code(self) -> &'static str {
        match self {
            Self::Artifacts => "E_TOO_MANY_ARTIFACTS",
            Self::ArtifactBytes => "E_ARTIFACT_TOO_LARGE",
            Self::InputDataBytes => "E_INPUT_DATA_TOO_LARGE",
            Self::MetadataBytes => "E_METADATA_TOO_LARGE",
        }
    }
}

/// The bounds [`JobsApi`] holds jobs to.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    artifacts: usize,
    artifact_bytes: usize,
    input_data_bytes: usize,
    metadata_bytes: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            artifacts: DEFAULT_MAX_ARTIFACTS_PER_JOB,
            artifact_bytes: DEFAULT_MAX_ARTIFACT_BYTES,
            input_data_bytes: DEFAULT_MAX_INPUT_DATA_BYTES,
            metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
        }
    }
}

/// Refuses `value` when its JSON is longer than `limit` bytes.
fn check_json_len<T: serde::Serialize + ?Sized>(
    value: &T,
    bound: JobBound,
    limit: usize,
) -> Result<(), JobsApiError> {
    // A value read from a JSON body always serializes.
    let len = serde_json::to_vec(value).map_or(usize::MAX, |json| json.len());
    if len > limit {
        return Err(JobsApiError::BoundExceeded { bound, limit });
    }
    Ok(())
}

impl From<Forbidden> for JobsApiError {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(e)
    }
}

impl From<SinkError> for JobsApiError {
    fn from(error: SinkError) -> Self {
        match error {
            SinkError::JobNotFound { job_id } => Self::JobNotFound { job_id },
            SinkError::InvalidStatus { reason } => Self::InvalidStatus { reason },
            SinkError::TooManyJobs { limit } => Self::TooManyJobs { limit },
            other => {
                tracing::warn!(error = %other, "jobs api: registry failed");
                Self::Unavailable
            }
        }
    }
}

/// The Jobs API over a [`JobRegistry`], as a tower service.
///
/// Every request needs `Authorization: Bearer <token>` of one of its
/// [`Principals`], each allowed what its role allows (reporters create jobs
/// and change their own, viewers, operators and agents read, admins do
/// everything); with none configured every request is refused
/// (`401 E_AUTHENTICATION_FAILED`). A webhook task's job has the
/// task's id as its job id when the same registry is the ingest service's
/// status sink.
///
/// A `POST` carrying an `Idempotency-Key` header is applied once: a repeat
/// of the same key on the same method and path gets the first answer again,
/// with `Idempotent-Replayed: true`, while the first is still being applied
/// too. The answers are remembered in memory, the newest
/// [`idempotency_capacity`](JobsApiBuilder::idempotency_capacity) of them; an answer
/// of 5xx is not remembered, so a retry applies the request afresh. The
/// keys of status updates, completions and creations that name their
/// `job_id` are also kept by the registry with the update they guard
/// ([`JobRegistry::apply_once`]): a durable registry still applies a
/// retried update once after a restart, answering with the job as it is
/// now and `Idempotent-Replayed: true`.
///
/// ```
/// # async fn demo() {
/// use std::sync::Arc;
/// use hookroom::auth::{Principal, Principals, Role};
/// use hookroom::service::JobsApi;
/// use hookroom::status::InMemoryStatusSink;
/// use tower::ServiceExt;
///
/// let principals = Principals::builder()
///     .principal(Principal::new("pdf-reporter", Role::Reporter), ["t"])
///     .build();
/// let api = JobsApi::builder(Arc::new(InMemoryStatusSink::new()))
///     .principals(principals)
///     .build();
/// let request = http::Request::post("/api/jobs")
///     .header("authorization", "Bearer t")
///     .body(r#"{"input_data":{"pdf_directory":"pdfs/"}}"#.to_owned())
///     .unwrap();
/// assert_eq!(api.oneshot(request).await.unwrap().status(), 201);
/// # }
/// ```
#[derive(Clone)]
pub struct JobsApi {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<dyn JobRegistry>,
    principals: Principals,
    prefix: String,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    bounds: Bounds,
    replies: Replies,
    tasks: Option<Arc<dyn crate::task::TaskStore>>,
}

impl std::fmt::Debug for JobsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsApi")
            .field("registry", &self.inner.registry)
            .field("principals", &self.inner.principals)
            .field("prefix", &self.inner.prefix)
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}

impl JobsApi {
    /// A builder of the API serving `registry` at [`DEFAULT_JOBS_PREFIX`],
    /// with no principal (every request refused until
    /// [`principals`](JobsApiBuilder::principals) is set).
    pub fn builder(registry: Arc<dyn JobRegistry>) -> JobsApiBuilder {
        JobsApiBuilder {
            inner: Inner {
                registry,
                principals: Principals::none(),
                prefix: DEFAULT_JOBS_PREFIX.to_owned(),
                clock: Arc::new(SystemClock),
                body_limit: DEFAULT_JOBS_BODY_LIMIT,
                bounds: Bounds::default(),
                replies: Replies::new(DEFAULT_IDEMPOTENCY_CAPACITY),
                tasks: None,
            },
        }
    }
}

/// Builds a [`JobsApi`]; from [`JobsApi::builder`]. Every setting is made
/// here, before the API is shared, so no clone of a running API can lose
/// its remembered answers to a late setting.
pub struct JobsApiBuilder {
    inner: Inner,
}

impl std::fmt::Debug for JobsApiBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsApiBuilder")
            .field("prefix", &self.inner.prefix)
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}

impl JobsApiBuilder {
    /// Who may use the API, each as its role allows
    /// ([`Principal::authorize`]): reporters create jobs and change their
    /// own, agents and viewers read, admins do everything. An
    /// [`ApiTokens`](crate::service::ApiTokens) pair converts into the
    /// environment quick start's principals.
    pub fn principals(mut self, principals: impl Into<Principals>) -> Self {
        self.inner.principals = principals.into();
        self
    }

    /// Serves under `prefix` (default `/api/jobs`). A missing leading `/` is
    /// added and trailing `/`s are dropped.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let trimmed = prefix.trim_end_matches('/');
        let prefix = if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self.inner.prefix = prefix;
        self
    }

    /// The clock that stamps jobs and history entries.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner.clock = clock;
        self
    }

    /// The largest request body in bytes (default 1 MiB).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.inner.body_limit = limit;
        self
    }

    /// How many artifacts one job may hold (default
    /// [`DEFAULT_MAX_ARTIFACTS_PER_JOB`]); an update that would attach more
    /// is refused with `413 E_TOO_MANY_ARTIFACTS`.
    pub fn max_artifacts_per_job(mut self, max: usize) -> Self {
        self.inner.bounds.artifacts = max;
        self
    }

    /// The largest artifact entry as JSON (default
    /// [`DEFAULT_MAX_ARTIFACT_BYTES`]); a larger one is refused with
    /// `413 E_ARTIFACT_TOO_LARGE`.
    pub fn max_artifact_bytes(mut self, max: usize) -> Self {
        self.inner.bounds.artifact_bytes = max;
        self
    }

    /// The largest `input_data` as JSON (default
    /// [`DEFAULT_MAX_INPUT_DATA_BYTES`]); a larger one is refused with
    /// `413 E_INPUT_DATA_TOO_LARGE`.
    pub fn max_input_data_bytes(mut self, max: usize) -> Self {
        self.inner.bounds.input_data_bytes = max;
        self
    }

    /// The largest `metadata` of a new job and `summary` of a completion as
    /// JSON (default [`DEFAULT_MAX_METADATA_BYTES`]); a larger one is
    /// refused with `413 E_METADATA_TOO_LARGE`.
    pub fn max_metadata_bytes(mut self, max: usize) -> Self {
        self.inner.bounds.metadata_bytes = max;
        self
    }

    /// How many `Idempotency-Key`s are remembered (default 10 000; at
    /// least one). Each keeps its answer's status and, when at most 4 KiB,
    /// its body; a larger answer is replayed as the job is at the replay,
    /// so the keys take at most about 4.3 KiB each.
    pub fn idempotency_capacity(mut self, capacity: usize) -> Self {
        self.inner.replies = Replies::new(capacity.max(1));
        self
    }

    /// The task store whose tasks' jobs this API serves: with it, the agent
    /// holding a task's claim may report its job's progress here too (a
    /// task's job otherwise changes only through its task, or by an admin).
    pub fn task_store(mut self, store: Arc<dyn crate::task::TaskStore>) -> Self {
        self.inner.tasks = Some(store);
        self
    }

    /// The API.
    pub fn build(self) -> JobsApi {
        JobsApi {
            inner: Arc::new(self.inner),
        }
    }
}

impl JobsApi {
    /// The path prefix served.
    pub fn path_prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Whether `path` is one this service answers (the prefix or below it).
    pub fn serves_path(&self, path: &str) -> bool {
        path.strip_prefix(self.inner.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl<B> Service<Request<B>> for JobsApi
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            Ok(inner.handle(parts, body).await)
        })
    }
}

/// The endpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Collection,
    Job(&'a str),
    Status(&'a str),
    Complete(&'a str),
}

impl<'a> Endpoint<'a> {
    fn job_id(self) -> Option<&'a str> {
        match self {
            Self::Collection => None,
            Self::Job(id) | Self::Status(id) | Self::Complete(id) => Some(id),
        }
    }

    /// The same endpoint for another (the decoded) job id.
    fn with_job_id(self, id: &str) -> Endpoint<'_> {
        match self {
            Self::Collection => Endpoint::Collection,
            Self::Job(_) => Endpoint::Job(id),
            Self::Status(_) => Endpoint::Status(id),
            Self::Complete(_) => Endpoint::Complete(id),
        }
    }

    fn allow(self) -> &'static str {
        match self {
            Self::Collection => "GET, POST",
            Self::Job(_) => "GET",
            Self::Status(_) | Self::Complete(_) => "POST",
        }
    }
}

/// A percent-encoded path segment, decoded; `None` when it is not UTF-8
/// after decoding or has a broken escape.
fn decode_segment(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn endpoint<'a>(prefix: &str, path: &'a str) -> Option<Endpoint<'a>> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some(Endpoint::Collection);
    }
    let rest = rest.strip_prefix('/')?;
    let mut segments = rest.split('/');
    let id = segments.next().filter(|id| !id.is_empty())?;
    let endpoint = match segments.next() {
        None => Endpoint::Job(id),
        Some("status") => Endpoint::Status(id),
        Some("complete") => Endpoint::Complete(id),
        Some(_) => return None,
    };
    segments.next().is_none().then_some(endpoint)
}

impl Inner {
    async fn handle<B>(&self, parts: http::request::Parts, body: B) -> Response<ServiceBody>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = parts.uri.path();
        let Some(raw) = endpoint(&self.prefix, path) else {
            return JobsApiError::NotFound.to_response();
        };
        let id = match raw.job_id().map(decode_segment) {
            Some(Some(id)) => id,
            Some(None) => return JobsApiError::NotFound.to_response(),
            None => String::new(),
        };
        let endpoint = raw.with_job_id(&id);
        let who = match self.principals.authenticate(&parts.headers) {
            Ok(who) => who,
            Err(AuthError::RateLimited { retry_after }) => {
                return JobsApiError::RateLimited { retry_after }.to_response();
            }
            Err(_) => return JobsApiError::AuthenticationFailed.to_response(),
        };
        let who = &*who;
        let allowed = matches!(
            (&parts.method, endpoint),
            (&Method::GET, Endpoint::Collection | Endpoint::Job(_))
                | (
                    &Method::POST,
                    Endpoint::Collection | Endpoint::Status(_) | Endpoint::Complete(_)
                )
        );
        if !allowed {
            return JobsApiError::MethodNotAllowed {
                allow: endpoint.allow(),
            }
            .to_response();
        }
        if parts.method == Method::GET {
            let query = parts.uri.query().unwrap_or("");
            return self
                .read(who, endpoint, query)
                .await
                .unwrap_or_else(|e| e.to_response());
        }
        let bytes = match read_limited(&parts.headers, body, self.body_limit).await {
            Ok(bytes) => bytes,
            Err(IngestError::PayloadTooLarge { limit }) => {
                return JobsApiError::PayloadTooLarge { limit }.to_response();
            }
            Err(_) => {
                return JobsApiError::Serialization {
                    reason: "the request body could not be read".into(),
                }
                .to_response();
            }
        };
        let key = match idempotency_key(&parts.headers) {
            Ok(key) => key,
            Err(e) => return e.to_response(),
        };
        let Some(key) = key else {
            return self
                .write(who, endpoint, &bytes, None)
                .await
                .map_or_else(|e| e.to_response(), |(response, _)| response);
        };
        // Keys are each principal's own: one cannot replay another's answer.
        let cell = self
            .replies
            .cell(format!("{} {} {path} {key}", who.name(), parts.method));
        // Set only when this request applied the update (not a replay).
        let applied_here = std::sync::atomic::AtomicBool::new(false);
        let stored = cell
            .get_or_try_init(|| async {
                let response = match self.write(who, endpoint, &bytes, Some(key)).await {
                    Ok((response, replayed)) => {
                        // The registry remembered the key (from before a
                        // restart, say): a replay too.
                        applied_here.store(!replayed, std::sync::atomic::Ordering::Relaxed);
                        response
                    }
                    Err(e) => {
                        applied_here.store(true, std::sync::atomic::Ordering::Relaxed);
                        e.to_response()
                    }
                };
                let status = response.status();
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .map(http_body_util::Collected::to_bytes)
                    .unwrap_or_default();
                if status.is_server_error() {
                    Err(Stored::new(status, body))
                } else {
                    Ok(Stored::new(status, body))
                }
            })
            .await;
        match stored {
            Ok(stored) => {
                let mut response = match (&stored.body, endpoint) {
                    (Some(_), _) => stored.to_response(),
                    // A large answer is a job view: the job as it is now.
                    (None, Endpoint::Status(job_id) | Endpoint::Complete(job_id)) => {
                        self.view(job_id, false).await.map_or_else(
                            |e| e.to_response(),
                            |view| json_response(stored.status, &answer(view)),
                        )
                    }
                    (None, _) => stored.to_response(),
                };
                if !applied_here.load(std::sync::atomic::Ordering::Relaxed) {
                    response
                        .headers_mut()
                        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
                }
                response
            }
            Err(failed) => failed.to_response(),
        }
    }

    async fn read(
        &self,
        who: &Principal,
        endpoint: Endpoint<'_>,
        query: &str,
    ) -> Result<Response<ServiceBody>, JobsApiError> {
        match endpoint {
            Endpoint::Job(job_id) => {
                let mut include_history = false;
                for (name, value) in form_urlencoded::parse(query.as_bytes()) {
                    if name == "include_history" {
                        include_history =
                            parse_bool(&value).ok_or_else(|| JobsApiError::Serialization {
                                reason: "`include_history` must be true or false".into(),
                            })?;
                    }
                }
                let view = self.view(job_id, include_history).await?;
                who.authorize(&read_job(&view.job))?;
                Ok(json_response(StatusCode::OK, &answer(view)))
            }
            Endpoint::Collection => {
                let query = list_query(query)?;
                who.authorize(&Operation::ListJobs)?;
                let mut page = self.registry.jobs(query).await?;
                // The page keeps the jobs the principal may read; the cursor
                // still moves past the others, so a page may be short.
                page.jobs
                    .retain(|job| who.authorize(&read_job(job)).is_ok());
                for job in &mut page.jobs {
                    job.metadata.remove(CREATED_BY);
                }
                Ok(json_response(
                    StatusCode::OK,
                    &JobListResponse {
                        jobs: page.jobs,
                        next_cursor: page.next.map(|seq| seq.to_string()),
                    },
                ))
            }
            Endpoint::Status(_) | Endpoint::Complete(_) => Err(JobsApiError::MethodNotAllowed {
                allow: endpoint.allow(),
            }),
        }
    }

    /// Applies a `POST`; with an `Idempotency-Key`, through
    /// [`JobRegistry::apply_once`], so the registry remembers the key with
    /// the update. The flag says the registry had seen the key already.
    async fn write(
        &self,
        who: &Principal,
        endpoint: Endpoint<'_>,
        body: &[u8],
        key: Option<&str>,
    ) -> Result<(Response<ServiceBody>, bool), JobsApiError> {
        let at = self.clock.now();
        let (job_id, events, kind) = match endpoint {
            Endpoint::Collection => {
                who.authorize(&Operation::CreateJob)?;
                let mut request: JobCreateRequest = parse_body(body, None)?;
                if request.metadata.contains_key(CREATED_BY) {
                    return Err(JobsApiError::Serialization {
                        reason: format!("`metadata.{CREATED_BY}` is set by the server"),
                    });
                }
                request
                    .metadata
                    .insert(CREATED_BY.to_owned(), who.name().into());
                let bounds = self.bounds;
                check_json_len(
                    &request.input_data,
                    JobBound::InputDataBytes,
                    bounds.input_data_bytes,
                )?;
                check_json_len(
                    &request.metadata,
                    JobBound::MetadataBytes,
                    bounds.metadata_bytes,
                )?;
                let Some(key) = key.filter(|_| request.job_id.is_some()) else {
                    // A job without a requested id gets a fresh one, so its
                    // key cannot be kept with it: the replies remembered
                    // in memory cover it.
                    let created = self.registry.create_job(request, at).await?;
                    return Ok((json_response(StatusCode::CREATED, &created), false));
                };
                let event = request.into_event(String::new(), at);
                let job_id = event.job_id().to_owned();
                let applied = self
                    .registry
                    .apply_once(&job_id, &format!("create {key}"), vec![event])
                    .await?;
                let view = self.view(&job_id, false).await?;
                let created = JobCreateResponse::for_job(&view.job);
                return Ok((
                    json_response(StatusCode::CREATED, &created),
                    applied == Applied::Before,
                ));
            }
            Endpoint::Status(job_id) => {
                let events = match parse_body::<StatusUpdateRequest>(body, Some("status")) {
                    Ok(request) => {
                        if let Some(progress) = &request.progress {
                            progress
                                .validate()
                                .map_err(|invalid| JobsApiError::Serialization {
                                    reason: invalid.to_string(),
                                })?;
                        }
                        request.into_events(job_id, at)
                    }
                    // No `status`: an update that only attaches artifacts.
                    Err(JobsApiError::Serialization { reason }) => {
                        match parse_body::<ArtifactUpdateRequest>(body, None) {
                            Ok(request) if !request.artifacts.is_empty() => {
                                request.into_events(job_id, at)
                            }
                            _ => return Err(JobsApiError::Serialization { reason }),
                        }
                    }
                    Err(other) => return Err(other),
                };
                (job_id, events, "status")
            }
            Endpoint::Complete(job_id) => {
                let request: JobCompleteRequest = parse_body(body, Some("final_status"))?;
                (job_id, vec![request.into_event(job_id, at)], "complete")
            }
            Endpoint::Job(_) => {
                return Err(JobsApiError::MethodNotAllowed {
                    allow: endpoint.allow(),
                });
            }
        };
        let job = self.view(job_id, false).await?.job;
        self.may_change(who, &job).await?;
        self.check_bounds(job_id, &events).await?;
        let replayed = match key {
            Some(key) => {
                let key = format!("{kind} {key}");
                self.registry.apply_once(job_id, &key, events).await? == Applied::Before
            }
            None => {
                for event in events {
                    self.registry.publish(event).await?;
                }
                false
            }
        };
        let view = self.view(job_id, false).await?;
        Ok((json_response(StatusCode::OK, &answer(view)), replayed))
    }

    /// Whether `who` may change `job`: its creator or an admin; for a
    /// task's job, also the agent holding the task's claim.
    async fn may_change(&self, who: &Principal, job: &Job) -> Result<(), JobsApiError> {
        let created_by = created_by(job);
        let refused = match who.authorize(&Operation::ChangeJob { created_by }) {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        if let (None, Some(tasks)) = (created_by, &self.tasks)
            && let Ok(Some(task)) = tasks.get(&job.job_id.as_str().into()).await
            && who
                .authorize(&Operation::WorkOnTask {
                    room: &task.room,
                    holder: task.claimed_by.as_deref(),
                })
                .is_ok()
        {
            return Ok(());
        }
        Err(refused.into())
    }

    /// Refuses `events` when they would take job `job_id` past a bound.
    /// The artifacts are counted before the update applies: concurrent
    /// updates of one job may together pass the bound by their own count.
    async fn check_bounds(&self, job_id: &str, events: &[JobEvent]) -> Result<(), JobsApiError> {
        let bounds = self.bounds;
        let mut added = 0usize;
        for event in events {
            let artifacts: &[Artifact] = match event {
                JobEvent::Artifact { artifact, .. } => std::slice::from_ref(artifact),
                JobEvent::Completed {
                    artifacts, summary, ..
                } => {
                    check_json_len(summary, JobBound::MetadataBytes, bounds.metadata_bytes)?;
                    artifacts
                }
                _ => &[],
            };
            for artifact in artifacts {
                check_json_len(artifact, JobBound::ArtifactBytes, bounds.artifact_bytes)?;
            }
            added += artifacts.len();
        }
        if added == 0 {
            return Ok(());
        }
        let held = self.view(job_id, false).await?.job.artifacts.len();
        if held.saturating_add(added) > bounds.artifacts {
            return Err(JobsApiError::BoundExceeded {
                bound: JobBound::Artifacts,
                limit: bounds.artifacts,
            });
        }
        Ok(())
    }

    async fn view(&self, job_id: &str, include_history: bool) -> Result<JobView, JobsApiError> {
        self.registry
            .job(job_id, include_history)
            .await?
            .ok_or_else(|| JobsApiError::JobNotFound {
                job_id: job_id.to_owned(),
            })
    }
}

/// `view` as answered: the creator stays with the server, so the job reads
/// back as it was sent.
fn answer(mut view: JobView) -> JobView {
    view.job.metadata.remove(CREATED_BY);
    view
}

/// Who created `job` through the Jobs API; `None` for a webhook task's job.
fn created_by(job: &Job) -> Option<&str> {
    job.metadata
        .get(CREATED_BY)
        .and_then(serde_json::Value::as_str)
}

/// Reading `job`: its creator's, or for a webhook task's job, its room's.
fn read_job(job: &Job) -> Operation<'_> {
    let created_by = created_by(job);
    Operation::ReadJob {
        created_by,
        room: match created_by {
            None => job
                .input_data
                .get("room")
                .and_then(serde_json::Value::as_str),
            Some(_) => None,
        },
    }
}

/// Reads a JSON body as `T`. When it does not read and its `status_field`
/// holds something that is not a job status, the refusal is
/// `E_INVALID_STATUS` rather than `E_SERIALIZATION_ERROR`.
fn parse_body<T: DeserializeOwned>(
    body: &[u8],
    status_field: Option<&str>,
) -> Result<T, JobsApiError> {
    // serde would also read a struct from an array of its fields.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(JobsApiError::Serialization {
            reason: "the body must be a JSON object".into(),
        });
    }
    serde_json::from_slice(body).map_err(|error| {
        let invalid_status = status_field.and_then(|field| {
            let value: serde_json::Value = serde_json::from_slice(body).ok()?;
            let status = value.get(field)?;
            let valid = status
                .as_str()
                .is_some_and(|s| s.parse::<JobStatus>().is_ok());
            (!valid).then(|| JobsApiError::InvalidStatus {
                reason: format!(
                    "`{field}` must be one of PENDING, RUNNING, NEEDS_INPUT, FAILED, DONE"
                ),
            })
        });
        invalid_status.unwrap_or_else(|| JobsApiError::Serialization {
            reason: error.to_string(),
        })
    })
}

/// `true`/`false` as Python's `requests` writes them (`True`/`False`) and as
/// people do (`1`/`0`, `yes`/`no`).
fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

fn list_query(query: &str) -> Result<JobQuery, JobsApiError> {
    let mut parsed = JobQuery::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "status" if !value.is_empty() => {
                parsed.status =
                    Some(value.parse().map_err(|_| {
                        JobsApiError::InvalidStatus {
                    reason: "`status` must be one of PENDING, RUNNING, NEEDS_INPUT, FAILED, DONE"
                        .into(),
                }
                    })?);
            }
            "limit" if !value.is_empty() => {
                parsed.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
                    .ok_or_else(|| JobsApiError::Serialization {
                        reason: format!("`limit` must be a number from 1 to {MAX_PAGE_SIZE}"),
                    })?;
            }
            "cursor" if !value.is_empty() => {
                parsed.cursor = Some(value.parse().map_err(|_| JobsApiError::Serialization {
                    reason: "`cursor` is not one this API gave out".into(),
                })?);
            }
            _ => {}
        }
    }
    Ok(parsed)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, JobsApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .map(Some)
        .ok_or_else(|| JobsApiError::Serialization {
            reason: format!(
                "`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        })
}

/// A remembered answer: its status, and its body when small.
#[derive(Debug)]
struct Stored {
    status: StatusCode,
    /// `None` when longer than [`MAX_KEPT_ANSWER_BYTES`].
    body: Option<Bytes>,
}

impl Stored {
    fn new(status: StatusCode, body: Bytes) -> Self {
        let body = (body.len() <= MAX_KEPT_ANSWER_BYTES).then_some(body);
        Self { status, body }
    }

    fn to_response(&self) -> Response<ServiceBody> {
        let body = self.body.clone().unwrap_or_default();
        let mut response = Response::new(ServiceBody::new(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Answers by idempotency key, the newest `capacity` of them.
struct Replies {
    capacity: usize,
    cells: Mutex<ReplyCells>,
}

#[derive(Default)]
struct ReplyCells {
    by_key: HashMap<String, Arc<OnceCell<Stored>>>,
    order: VecDeque<String>,
}

impl Replies {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            cells: Mutex::default(),
        }
    }

    /// The cell for `key`, made (and the oldest key forgotten) when new.
    fn cell(&self, key: String) -> Arc<OnceCell<Stored>> {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = cells.by_key.get(&key) {
            return Arc::clone(cell);
        }
        while cells.order.len() >= self.capacity {
            match cells.order.pop_front() {
                Some(old) => {
                    cells.by_key.remove(&old);
                }
                None => break,
            }
        }
        let cell = Arc::new(OnceCell::new());
        cells.by_key.insert(key.clone(), Arc::clone(&cell));
        cells.order.push_back(key);
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{ApiTokens, BearerTokens};
    use crate::status::InMemoryStatusSink;
    use http_body_util::{BodyExt, Full};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    const TOKEN: &str = "agent-token";

    fn api() -> (JobsApi, InMemoryStatusSink) {
        let registry = InMemoryStatusSink::new();
        let tokens = ApiTokens::new(
            BearerTokens::parse_list(TOKEN).unwrap(),
            BearerTokens::parse_list("admin-token").unwrap(),
        );
        (
            JobsApi::builder(Arc::new(registry.clone()))
                .principals(tokens)
                .build(),
            registry,
        )
    }

    async fn post(api: &JobsApi, uri: &str, body: &Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = api.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn progress_out_of_the_protocols_range_is_refused_and_not_stored() {
        let (api, registry) = api();
        let (status, created) = post(&api, "/api/jobs", &json!({"input_data": {}})).await;
        assert_eq!(status, StatusCode::CREATED);
        let job_id = created["job_id"].as_str().unwrap().to_owned();
        let uri = format!("/api/jobs/{job_id}/status");
        let (status, _) = post(
            &api,
            &uri,
            &json!({"status": "RUNNING", "progress": {"percentage": 40}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        for progress in [
            json!({"percentage": 140}),
            json!({"percentage": -1}),
            json!({"percentage": 100.5}),
            json!({"completed_steps": 4, "total_steps": 3}),
            json!({"completed_steps": -1, "total_steps": 3}),
        ] {
            let body = json!({"status": "RUNNING", "progress": progress});
            let (status, answer) = post(&api, &uri, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["error"]["code"], "E_SERIALIZATION_ERROR", "{body}");
        }
        let view = registry.get(&job_id, true).unwrap();
        assert_eq!(view.job.progress.unwrap().percentage, Some(40.0));
        // Only the creation and the one accepted update are in the history.
        assert_eq!(view.history.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn job_bounds_are_refused_with_their_codes_and_nothing_is_lost() {
        let registry = InMemoryStatusSink::new();
        let api = JobsApi::builder(Arc::new(registry.clone()))
            .principals(ApiTokens::new(
                BearerTokens::parse_list(TOKEN).unwrap(),
                BearerTokens::none(),
            ))
            .max_artifacts_per_job(2)
            .max_artifact_bytes(200)
            .build();
        let big = "x".repeat(DEFAULT_MAX_INPUT_DATA_BYTES);
        let (status, answer) = post(&api, "/api/jobs", &json!({"input_data": {"a": big}})).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer["error"]["code"], "E_INPUT_DATA_TOO_LARGE");
        let (status, answer) = post(&api, "/api/jobs", &json!({"metadata": {"a": big}})).await;
        assert_eq!(answer["error"]["code"], "E_METADATA_TOO_LARGE", "{status}");
        assert!(registry.is_empty());
        let (_, created) = post(&api, "/api/jobs", &json!({})).await;
        let job_id = created["job_id"].as_str().unwrap().to_owned();
        let uri = format!("/api/jobs/{job_id}/status");
        let artifact = |name: &str| json!({"name": name});
        let body = json!({"status": "RUNNING", "artifacts": [artifact("a"), artifact("b")]});
        assert_eq!(post(&api, &uri, &body).await.0, StatusCode::OK);
        let (status, answer) = post(&api, &uri, &json!({"artifacts": [artifact("c")]})).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer["error"]["code"], "E_TOO_MANY_ARTIFACTS");
        let long = artifact(&"n".repeat(300));
        let complete = format!("/api/jobs/{job_id}/complete");
        let body = json!({"final_status": "DONE", "final_artifacts": [long]});
        let (_, answer) = post(&api, &complete, &body).await;
        assert_eq!(answer["error"]["code"], "E_ARTIFACT_TOO_LARGE");
        let view = registry.get(&job_id, false).unwrap();
        assert_eq!(view.job.artifacts.len(), 2);
        assert_eq!(view.job.status, JobStatus::Running);
    }

    #[test]
    fn a_large_answer_is_kept_as_its_status_only() {
        let small = Stored::new(StatusCode::OK, Bytes::from_static(b"{}"));
        assert!(small.body.is_some());
        let large = Stored::new(
            StatusCode::OK,
            Bytes::from(vec![b' '; MAX_KEPT_ANSWER_BYTES + 1]),
        );
        assert!(large.body.is_none());
    }
}
