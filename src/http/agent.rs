//! [`HttpAgent`]: an [`Agent`] that hands each task to an HTTP endpoint,
//! signed with Standard Webhooks.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::{DEFAULT_MAX_RESPONSE_BYTES, ResponseBodyError, read_limited};
use super::client::{ClientOptions, HttpsClient, Tls};
use crate::agent::{Agent, AgentError, AgentOutput, JobHandle};
use crate::clock::{Clock, SystemClock};
use crate::task::Task;
use crate::verify::ConfigError;
use crate::verify::Secret;
use crate::verify::standard_webhooks::{decode_secret, sign};

/// How long one delivery may take, unless told otherwise.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to the endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many `202 needs_input` answers one run follows before failing.
pub const MAX_INPUT_ROUNDS: u32 = 8;

/// What [`HttpAgent`] POSTs: the claimed task and, after a `202
/// needs_input` answer, the input that answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// The task, `RUNNING`, payload as JSON.
    pub task: Task,
    /// Which claim of the task this is (1 for the first).
    pub attempt: u32,
    /// The answer to the endpoint's last `needs_input` question, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// An [`Agent`] that POSTs each claimed task as JSON ([`AgentRequest`]) to a
/// URL, signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,…` with a `whsec_` secret), so the receiver
/// checks it with any Standard Webhooks library. The answer decides:
///
/// - `202` with `{"needs_input": "…"}`: the task goes `NEEDS_INPUT` with that
///   prompt; once input is provided the task is POSTed again with `input`
///   (at most [`MAX_INPUT_ROUNDS`] times);
/// - any other `2xx`: `DONE`, with the JSON body (if any) as the result;
/// - `4xx`: `FAILED` for good ([`AgentError::Permanent`]);
/// - `5xx`, a timeout or a connection error: a retry through the worker's
///   [`AttemptPolicy`](crate::agent::AttemptPolicy) ([`AgentError::Retryable`]).
///
/// `webhook-id` is `{task id}.{attempt}.{round}`: the same delivery sent
/// again keeps its id, so the receiver can drop duplicates.
///
/// `https://` URLs are served over rustls (with ring), trusting the
/// Mozilla roots of `webpki-roots` unless given other
/// [roots](Self::with_root_certificates) or a whole
/// [rustls configuration](Self::with_tls_config), so that an endpoint with
/// a certificate from a private authority is trusted by this agent alone.
/// A failed TLS handshake is a connection error: a retry.
///
/// The endpoint's answer is read up to
/// [`with_max_response_bytes`](Self::with_max_response_bytes) (default
/// [`DEFAULT_MAX_RESPONSE_BYTES`]); a longer one fails the task for good
/// with [`ResponseBodyError::TooLarge`] as the error's source, as sending
/// the task again would get the same answer.
pub struct HttpAgent {
    name: String,
    capabilities: Vec<String>,
    url: Uri,
    key: Secret,
    client: HttpsClient<Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: usize,
    clock: std::sync::Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpAgent")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// Why an [`HttpAgent`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpAgentError {
    /// The URL is not an absolute `http://` or `https://` URL.
    InvalidUrl,
    /// The TLS settings offer no usable protocol version.
    Tls(rustls::Error),
    /// The secret is not a Standard Webhooks `whsec_` secret.
    Secret(ConfigError),
}

impl std::fmt::Display for HttpAgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl => {
                f.write_str("the agent URL must be an absolute http:// or https:// URL")
            }
            Self::Tls(e) => write!(f, "unusable TLS settings: {e}"),
            Self::Secret(e) => write!(f, "invalid Standard Webhooks secret: {e}"),
        }
    }
}

impl std::error::Error for HttpAgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Secret(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::InvalidUrl => None,
        }
    }
}

#[derive(Deserialize)]
struct NeedsInput {
    needs_input: String,
}

impl HttpAgent {
    /// An agent named `name` POSTing to `url`, signing with the
    /// `whsec_<base64>` `secret`.
    ///
    /// # Errors
    /// [`HttpAgentError`] for a URL that is not `http://` or `https://`, or
    /// a secret that does not decode.
    pub fn new(name: impl Into<String>, url: &str, secret: &str) -> Result<Self, HttpAgentError> {
        let url: Uri = url.parse().map_err(|_| HttpAgentError::InvalidUrl)?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(HttpAgentError::InvalidUrl);
        }
        let key = decode_secret(secret).map_err(HttpAgentError::Secret)?;
        let client = Self::client(Tls::default())?;
        Ok(Self {
            name: name.into(),
            capabilities: Vec::new(),
            url,
            key,
            client,
            timeout: DEFAULT_AGENT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            clock: std::sync::Arc::new(SystemClock),
        })
    }

    fn client(tls: Tls) -> Result<HttpsClient<Full<Bytes>>, HttpAgentError> {
        crate::http::client::client(ClientOptions {
            tls,
            connect_timeout: Some(CONNECT_TIMEOUT),
        })
        .map_err(HttpAgentError::Tls)
    }

    /// Trusts exactly `roots` for an `https://` URL (instead of the Mozilla
    /// roots of `webpki-roots`): for an endpoint whose certificate comes
    /// from a private or self-signed authority, trusted by this agent alone
    /// rather than by the whole process.
    ///
    /// # Errors
    /// [`HttpAgentError::Tls`] if the configuration offers no usable
    /// protocol version (never with rustls' defaults).
    pub fn with_root_certificates(
        mut self,
        roots: rustls::RootCertStore,
    ) -> Result<Self, HttpAgentError> {
        self.client = Self::client(Tls::Roots(roots))?;
        Ok(self)
    }

    /// Uses `config` for an `https://` URL as it is (its roots or verifier,
    /// client certificates, protocol versions); its ALPN protocols are
    /// dropped, as the client speaks HTTP/1.1 and offers none.
    ///
    /// # Errors
    /// As [`with_root_certificates`](Self::with_root_certificates).
    pub fn with_tls_config(mut self, config: rustls::ClientConfig) -> Result<Self, HttpAgentError> {
        self.client = Self::client(Tls::Config(Box::new(config)))?;
        Ok(self)
    }

    /// The capabilities the agent claims with (default none).
    pub fn with_capabilities(mut self, capabilities: Vec<String>) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// How long one delivery may take (default [`DEFAULT_AGENT_TIMEOUT`]);
    /// keep it below the worker's run timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer body read from the endpoint (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]); a longer answer fails the task with
    /// [`ResponseBodyError::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// The clock for `webhook-timestamp` (default the system clock).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// POSTs one signed delivery; the status and body.
    async fn deliver(&self, id: &str, body: Vec<u8>) -> Result<(StatusCode, Bytes), AgentError> {
        let timestamp = self.clock.now().unix_timestamp();
        let signature = sign(self.key.expose(), id, timestamp, &body);
        let request = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(AgentError::permanent)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(AgentError::retryable)?;
            let status = response.status();
            let bytes = read_limited(response.into_body(), self.max_response_bytes)
                .await
                .map_err(|e| match e {
                    // The endpoint would send the same answer again.
                    ResponseBodyError::TooLarge { .. } => AgentError::permanent(e),
                    ResponseBodyError::Read(_) => AgentError::retryable(e),
                })?;
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| AgentError::retryable("the agent endpoint did not answer in time"))?
    }
}

#[async_trait]
impl Agent for HttpAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Vec<String> {
        self.capabilities.clone()
    }

    async fn handle(&self, task: Task, job: &JobHandle) -> Result<AgentOutput, AgentError> {
        let attempt = job.attempt();
        let mut request = AgentRequest {
            task,
            attempt,
            input: None,
        };
        for round in 0..=MAX_INPUT_ROUNDS {
            let id = format!("{}.{attempt}.{round}", request.task.id);
            let body = serde_json::to_vec(&request).map_err(AgentError::permanent)?;
            let (status, bytes) = self.deliver(&id, body).await?;
            if status == StatusCode::ACCEPTED
                && let Ok(NeedsInput { needs_input }) = serde_json::from_slice(&bytes)
            {
                if round == MAX_INPUT_ROUNDS {
                    break;
                }
                request.input = Some(job.ask_input(&needs_input).await?);
                continue;
            }
            if status.is_success() {
                let result = if bytes.is_empty() {
                    None
                } else {
                    Some(serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&bytes).into_owned())
                    }))
                };
                let mut output = AgentOutput::new();
                output.result = result;
                return Ok(output);
            }
            let message = format!(
                "the agent endpoint answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
            );
            return Err(if status.is_client_error() {
                AgentError::permanent(message)
            } else {
                AgentError::retryable(message)
            });
        }
        Err(AgentError::permanent(format!(
            "the agent endpoint asked for input more than {MAX_INPUT_ROUNDS} times"
        )))
    }
}
