//! [`WebhookAlertSink`]: alerts POSTed as JSON to a URL, signed with
//! Standard Webhooks, with the retry policy of `HttpStatusSink`.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::Full;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::{Alert, AlertSink, AlertState};
use crate::clock::{Clock, SystemClock};
use crate::http::RetryPolicy;
use crate::http::retry::{
    Attempt, HttpsClient, exchange, https_client, retry_reason, with_retries,
};
use crate::telemetry::{ALERT_DELIVERIES, STATUS_PUSH_RETRIES};
use crate::verify::standard_webhooks::{decode_secret, sign};
use crate::verify::{ConfigError, Secret};

/// How many alerts wait for delivery unless told otherwise; more are
/// dropped (and counted) rather than delay the monitor.
pub const DEFAULT_ALERT_QUEUE: usize = 64;

/// Why a [`WebhookAlertSink`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookAlertSinkError {
    /// The URL is not an absolute `http` or `https` URL.
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The signing secret is not a `whsec_<base64>` secret.
    Secret(ConfigError),
    /// TLS could not be set up.
    Tls(rustls::Error),
}

impl std::fmt::Display for WebhookAlertSinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidUrl { reason } => write!(f, "invalid alert webhook URL: {reason}"),
            Self::Secret(e) => write!(f, "invalid alert webhook signing secret: {e}"),
            Self::Tls(e) => write!(f, "TLS setup failed: {e}"),
        }
    }
}

impl std::error::Error for WebhookAlertSinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Secret(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::InvalidUrl { .. } => None,
        }
    }
}

/// An [`AlertSink`] that POSTs every firing and resolved alert to a URL,
/// signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature: v1,…` with a `whsec_` secret), so the receiver
/// checks it with any Standard Webhooks library.
///
/// The body is a Standard Webhooks payload:
///
/// ```json
/// {"type": "alert.firing", "timestamp": "2024-01-15T10:30:00Z",
///  "data": {"kind": "failure_rate", "state": "firing", "value": 0.07,
///           "threshold": 0.05, "summary": "…", "at": "2024-01-15T10:30:00Z"}}
/// ```
///
/// with `type` `alert.firing` or `alert.resolved`. One alert keeps its
/// `webhook-id` across retries (so a receiver can drop repeats) and is
/// signed afresh, with the current time, on each attempt.
///
/// **Never blocks the monitor.** [`send`](AlertSink::send) queues the alert
/// and returns; one background task (started on the first alert, on the
/// caller's Tokio runtime) delivers the queue in order, retrying as
/// `HttpStatusSink` does ([`RetryPolicy`]: timeouts, connection errors,
/// `5xx`, `408` and `429`, with backoff and `Retry-After`). The queue holds
/// [`DEFAULT_ALERT_QUEUE`] alerts unless told otherwise; an alert that
/// finds it full is dropped with a warning. Outcomes are counted in
/// [`ALERT_DELIVERIES`] (`delivered`, `failed`, `dropped`), retries in
/// [`STATUS_PUSH_RETRIES`].
///
/// `Debug` never shows the secret.
///
/// ```
/// use hookroom::alert::WebhookAlertSink;
///
/// let sink = WebhookAlertSink::builder(
///     "https://ops.example.com/hooks/alerts",
///     "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
/// )
/// .build()
/// .unwrap();
/// assert!(!format!("{sink:?}").contains("MfKQ9r8"));
/// ```
#[derive(Debug)]
pub struct WebhookAlertSink {
    delivery: Arc<Delivery>,
    capacity: usize,
    queue: OnceLock<mpsc::Sender<Alert>>,
}

/// What the background task needs to deliver one alert.
struct Delivery {
    client: HttpsClient,
    url: Uri,
    key: Secret,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("url", &self.url)
            .field("key", &"<redacted>")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds a [`WebhookAlertSink`].
pub struct WebhookAlertSinkBuilder {
    url: String,
    secret: zeroize::Zeroizing<String>,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    capacity: usize,
}

impl std::fmt::Debug for WebhookAlertSinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAlertSinkBuilder")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("policy", &self.policy)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl WebhookAlertSinkBuilder {
    /// The retry policy (default: [`RetryPolicy::default`], the Jobs API's).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock for `webhook-timestamp` and the payload's `timestamp`
    /// (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many alerts may wait for delivery (default
    /// [`DEFAULT_ALERT_QUEUE`]; at least one).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The sink.
    ///
    /// # Errors
    /// An invalid URL or secret, or a TLS setup failure.
    pub fn build(self) -> Result<WebhookAlertSink, WebhookAlertSinkError> {
        let url: Uri = self.url.parse().map_err(|e: http::uri::InvalidUri| {
            WebhookAlertSinkError::InvalidUrl {
                reason: e.to_string(),
            }
        })?;
        match url.scheme_str() {
            Some("http" | "https") if url.host().is_some() => {}
            _ => {
                return Err(WebhookAlertSinkError::InvalidUrl {
                    reason: "expected an absolute http:// or https:// URL".into(),
                });
            }
        }
        let key = decode_secret(self.secret.trim()).map_err(WebhookAlertSinkError::Secret)?;
        let client = https_client().map_err(WebhookAlertSinkError::Tls)?;
        Ok(WebhookAlertSink {
            delivery: Arc::new(Delivery {
                client,
                url,
                key,
                policy: self.policy,
                clock: self.clock,
            }),
            capacity: self.capacity,
            queue: OnceLock::new(),
        })
    }
}

impl WebhookAlertSink {
    /// A builder for a sink POSTing to `url`, signing with the
    /// `whsec_<base64>` `secret`.
    pub fn builder(url: impl Into<String>, secret: impl Into<String>) -> WebhookAlertSinkBuilder {
        WebhookAlertSinkBuilder {
            url: url.into(),
            secret: zeroize::Zeroizing::new(secret.into()),
            policy: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            capacity: DEFAULT_ALERT_QUEUE,
        }
    }

    /// The queue, and the task that delivers it, started on first use.
    fn queue(&self) -> &mpsc::Sender<Alert> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.capacity);
            tokio::spawn(deliver_all(Arc::clone(&self.delivery), receiver));
            sender
        })
    }
}

#[async_trait]
impl AlertSink for WebhookAlertSink {
    async fn send(&self, alert: &Alert) {
        if let Err(error) = self.queue().try_send(alert.clone()) {
            metrics::counter!(ALERT_DELIVERIES, "outcome" => "dropped").increment(1);
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "the queue is full",
                mpsc::error::TrySendError::Closed(_) => "the delivery task stopped",
            };
            tracing::warn!(
                alert = alert.kind.as_str(),
                "alert webhook: alert dropped: {reason}"
            );
        }
    }
}

/// Delivers queued alerts in order until every sender is gone.
async fn deliver_all(delivery: Arc<Delivery>, mut queue: mpsc::Receiver<Alert>) {
    while let Some(alert) = queue.recv().await {
        delivery.deliver(&alert).await;
    }
}

/// The Standard Webhooks payload of one alert.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    data: &'a Alert,
}

impl Delivery {
    async fn deliver(&self, alert: &Alert) {
        let payload = Payload {
            kind: match alert.state {
                AlertState::Firing => "alert.firing",
                AlertState::Resolved => "alert.resolved",
            },
            timestamp: self.clock.now(),
            data: alert,
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::warn!(%error, "alert webhook: cannot write the alert");
                metrics::counter!(ALERT_DELIVERIES, "outcome" => "failed").increment(1);
                return;
            }
        };
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let last = with_retries(
            &self.policy,
            "alert webhook",
            || self.attempt(&id, &body),
            |failed| {
                metrics::counter!(STATUS_PUSH_RETRIES, "reason" => retry_reason(failed))
                    .increment(1);
            },
        )
        .await;
        let rule = alert.kind.as_str();
        match last {
            Attempt::Answer { status, .. } if status.is_success() => {
                metrics::counter!(ALERT_DELIVERIES, "outcome" => "delivered").increment(1);
                return;
            }
            Attempt::Answer { status, .. } => {
                tracing::warn!(alert = rule, %status, "alert webhook: refused");
            }
            Attempt::TimedOut => tracing::warn!(alert = rule, "alert webhook: timed out"),
            Attempt::Failed(error) => {
                tracing::warn!(alert = rule, %error, "alert webhook: cannot reach the URL");
            }
        }
        metrics::counter!(ALERT_DELIVERIES, "outcome" => "failed").increment(1);
    }

    async fn attempt(&self, id: &str, body: &Bytes) -> Attempt {
        let timestamp = self.clock.now().unix_timestamp();
        let signature = sign(self.key.expose(), id, timestamp, body);
        let request = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(body.clone()));
        match request {
            Ok(request) => exchange(&self.client, request, self.policy.timeout).await,
            Err(error) => Attempt::Failed(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_secrets_are_refused() {
        const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for url in ["ops.example.com/alerts", "ftp://host/a", "/alerts"] {
            assert!(
                matches!(
                    WebhookAlertSink::builder(url, SECRET).build(),
                    Err(WebhookAlertSinkError::InvalidUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(matches!(
            WebhookAlertSink::builder("http://h/a", "whsec_not base64!").build(),
            Err(WebhookAlertSinkError::Secret(_))
        ));
        let builder = WebhookAlertSink::builder("http://h/a", SECRET);
        assert!(!format!("{builder:?}").contains("MfKQ9r8"));
    }
}
