//! The retry policy of the crate's HTTP clients ([`HttpStatusSink`] and
//! the signed alert webhook), and the one retry loop they share.
//!
//! [`HttpStatusSink`]: crate::http::HttpStatusSink

use std::future::Future;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::Full;

use super::body::{DEFAULT_MAX_RESPONSE_BYTES, ResponseBodyError, read_limited};

/// How failed requests are retried. The default is the Jobs API's policy:
/// 3 retries, backoff factor 2, a 30 s timeout per attempt.
///
/// Timeouts, connection errors, `5xx`, `408` and `429` are retried; any
/// other `4xx` never is. Before retry `n` (0-based) the sink waits a
/// random time between zero and `min(max_delay, base_delay ×
/// backoff_factor^n)` ("full jitter"), or what the answer's `Retry-After`
/// asks (seconds or an HTTP date), at most `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Growth of the backoff ceiling per retry.
    pub backoff_factor: f64,
    /// The backoff ceiling of the first retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// Time allowed for one attempt, from connecting to the last body byte.
    pub timeout: Duration,
    /// The longest `Retry-After` honoured; a longer one waits this long.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff_factor: 2.0,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling before retry `retry` (0-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = self
            .backoff_factor
            .max(1.0)
            .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let ceiling = self.base_delay.as_secs_f64() * factor;
        if ceiling.is_finite() && ceiling < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(ceiling)
        } else {
            self.max_delay
        }
    }

    /// A random wait in `[0, ceiling(retry)]`.
    pub(crate) fn jittered(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(fastrand::f64())
    }

    /// The wait a `Retry-After` value asks for, capped; `None` when it
    /// cannot be read.
    pub fn retry_after(&self, value: &HeaderValue, now: SystemTime) -> Option<Duration> {
        let text = value.to_str().ok()?.trim();
        let wait = match text.parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => {
                let at = httpdate::parse_http_date(text).ok()?;
                at.duration_since(now).unwrap_or(Duration::ZERO)
            }
        };
        Some(wait.min(self.max_retry_after))
    }
}

/// An HTTP/1.1 client for `http://` and `https://` (rustls with ring and
/// the webpki roots).
pub(crate) type HttpsClient = super::client::HttpsClient<Full<Bytes>>;

/// A new [`HttpsClient`] on the webpki roots (the crate's one client
/// constructor, [`super::client::client`]).
pub(crate) fn https_client() -> Result<HttpsClient, rustls::Error> {
    super::client::client(super::client::ClientOptions::default())
}

/// What one attempt came to.
pub(crate) enum Attempt {
    /// An answer, whatever its status.
    Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// No whole answer within the policy's timeout.
    TimedOut,
    /// The request could not be made or the connection failed.
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Why an attempt is retried: the `reason` label of the retry counters.
pub(crate) fn retry_reason(attempt: &Attempt) -> &'static str {
    match attempt {
        Attempt::Answer { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
            "rate_limited"
        }
        Attempt::Answer { status, .. } if *status == StatusCode::REQUEST_TIMEOUT => {
            "request_timeout"
        }
        Attempt::Answer { .. } => "server_error",
        Attempt::TimedOut => "timeout",
        Attempt::Failed(_) => "network_error",
    }
}

/// Sends `request` with `client`, reading the answer's body up to
/// [`DEFAULT_MAX_RESPONSE_BYTES`], within `timeout`.
pub(crate) async fn exchange(
    client: &HttpsClient,
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> Attempt {
    exchange_limited(client, request, timeout, DEFAULT_MAX_RESPONSE_BYTES).await
}

/// [`exchange`] reading at most `max_body` bytes of the answer's body; a
/// longer body is [`Attempt::Failed`] with
/// [`ResponseBodyError::TooLarge`], which [`with_retries`] does not retry
/// (the server would send the same again).
pub(crate) async fn exchange_limited(
    client: &HttpsClient,
    request: Request<Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
) -> Attempt {
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = read_limited(body, max_body).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Attempt::Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => Attempt::Failed(error),
        Err(_elapsed) => Attempt::TimedOut,
    }
}

/// Whether a failed attempt failed on an answer too large to read, which a
/// retry gets again.
fn too_large(error: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    matches!(
        error.downcast_ref::<ResponseBodyError>(),
        Some(ResponseBodyError::TooLarge { .. })
    )
}

/// Makes attempts until one is final under `policy`: a `2xx`, an answer
/// that is not retried (any other `4xx`), or the last retry's outcome.
/// Before each retry it calls `on_retry` with the failed attempt, then
/// waits as the policy says. `what` names the request in debug logs.
pub(crate) async fn with_retries<F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
    mut on_retry: impl FnMut(&Attempt),
) -> Attempt
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut retry = 0;
    loop {
        let outcome = attempt().await;
        let wait = match &outcome {
            Attempt::Answer {
                status, headers, ..
            } => {
                let retryable = status.is_server_error()
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS;
                if status.is_success() || !retryable || retry >= policy.max_retries {
                    return outcome;
                }
                headers
                    .get(header::RETRY_AFTER)
                    .and_then(|value| policy.retry_after(value, SystemTime::now()))
                    .unwrap_or_else(|| policy.jittered(retry))
            }
            Attempt::Failed(error) if too_large(error.as_ref()) => return outcome,
            Attempt::TimedOut | Attempt::Failed(_) if retry >= policy.max_retries => {
                return outcome;
            }
            Attempt::TimedOut | Attempt::Failed(_) => policy.jittered(retry),
        };
        on_retry(&outcome);
        tracing::debug!(what, retry, ?wait, "retrying");
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_the_jobs_apis() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_retries, 3);
        assert_eq!(policy.backoff_factor, 2.0);
        assert_eq!(policy.timeout, Duration::from_secs(30));
        assert_eq!(policy.ceiling(0), Duration::from_secs(1));
        assert_eq!(policy.ceiling(2), Duration::from_secs(4));
        assert_eq!(policy.ceiling(40), policy.max_delay);
        for retry in 0..5 {
            assert!(policy.jittered(retry) <= policy.ceiling(retry));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates_up_to_the_cap() {
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let value = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(
            policy.retry_after(&value("3"), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            policy.retry_after(&value("3600"), now),
            Some(Duration::from_secs(10))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(5));
        assert_eq!(
            policy.retry_after(&value(&date), now),
            Some(Duration::from_secs(5))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(policy.retry_after(&value(&past), now), Some(Duration::ZERO));
        assert_eq!(policy.retry_after(&value("soon"), now), None);
    }

    #[tokio::test]
    async fn the_loop_retries_what_the_policy_retries_and_stops_at_the_rest() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let answer = |status: u16| Attempt::Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        // 503, timeout, 429, then 200: three retries, the 200 is final.
        let mut script = vec![answer(200), answer(429), Attempt::TimedOut, answer(503)];
        let mut reasons = Vec::new();
        let last = with_retries(
            &policy,
            "test",
            || std::future::ready(script.pop().unwrap()),
            |attempt| reasons.push(retry_reason(attempt)),
        )
        .await;
        assert!(matches!(last, Attempt::Answer { status, .. } if status == 200));
        assert_eq!(reasons, ["server_error", "timeout", "rate_limited"]);
        // A 404 is final at once.
        let mut calls = 0;
        let last = with_retries(
            &policy,
            "test",
            || {
                calls += 1;
                std::future::ready(answer(404))
            },
            |_| {},
        )
        .await;
        assert!(matches!(last, Attempt::Answer { status, .. } if status == 404));
        assert_eq!(calls, 1);
        // Failures stop after the last retry.
        let mut calls = 0;
        let last = with_retries(
            &policy,
            "test",
            || {
                calls += 1;
                std::future::ready(Attempt::Failed("refused".into()))
            },
            |_| {},
        )
        .await;
        assert!(matches!(last, Attempt::Failed(_)));
        assert_eq!(calls, 1 + policy.max_retries);
    }
}
