//! [`WebhookService`]: `POST {prefix}/webhook/{source}` — verify, parse, route,
//! store, acknowledge.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::header::HeaderName;
use http::{HeaderMap, Method, Request, Response, StatusCode, request::Parts};
use http_body::Body;
use ipnet::IpNet;
use metrics::{Counter, Histogram};
use serde::Serialize;
use tracing::Instrument;

use super::body::read_limited;
use super::client_addr::{PeerAddr, ProxyHeader, client_ip, is_in};
use super::error::{IngestError, json_response};
use super::health::HealthService;
use super::operations::{Operation, OperationsLog, Outcome};
use super::rate_limit::{Bucket, RateLimit};
use super::{ResponseFuture, ServiceBody};
use crate::alert::AlertMonitor;
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::ops::{Delivered, Deliverer};
use crate::route::Router;
use crate::source::{Parsed, Source};
use crate::status::StatusSink;
use crate::task::TaskStore;
use crate::telemetry;
use crate::verify::Verifier;

/// The header that carries a request id in and out.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Headers that carry signatures or secrets. The service marks them
/// [sensitive](http::HeaderValue::set_sensitive) as soon as it sees the
/// request, so no layer below it logs their values.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-slack-signature",
    "x-webhook-secret",
    "webhook-signature",
    "stripe-signature",
];

/// The longest source name, in characters, that the operations log and the
/// tracing span record for a request naming no configured source. Longer
/// names are cut and end in `…`.
const UNKNOWN_NAME_CHARS: usize = 64;

/// Which source a request is for, set by the host's router as a request
/// extension when it mounts a [`WebhookService`] at a path of its own.
///
/// The service takes the source from, in order: the one it was made for
/// ([`WebhookService::for_source`]), this extension, then the
/// `{prefix}/webhook/{source}` path.
///
/// ```
/// # async fn demo(service: hookroom::service::WebhookService) {
/// use hookroom::service::SourceName;
/// use tower::ServiceExt;
///
/// let mut request = http::Request::post("/anything").body(String::new()).unwrap();
/// request.extensions_mut().insert(SourceName::new("github"));
/// let response = service.oneshot(request).await.unwrap();
/// # let _ = response;
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceName(Arc<str>);

impl SourceName {
    /// Names the source `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Per-source options: a rate limit and an IP allowlist.
///
/// ```
/// use hookroom::service::{RateLimit, SourceOptions};
///
/// let options = SourceOptions::new()
///     .rate_limit(RateLimit::new(20, 40))
///     .allow("140.82.112.0/20".parse().unwrap());
/// assert_eq!(options.allowlist().len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    rate_limit: Option<RateLimit>,
    allow: Vec<IpNet>,
}

impl SourceOptions {
    /// No rate limit, any address.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `429` with `Retry-After` once `limit` is exceeded.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Admits requests from `net` (call once per network). With at least one
    /// network configured, every other address — and a request whose address
    /// is unknown — gets `403`.
    pub fn allow(mut self, net: IpNet) -> Self {
        self.allow.push(net);
        self
    }

    /// The configured rate limit.
    pub fn limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The configured allowlist (empty: any address).
    pub fn allowlist(&self) -> &[IpNet] {
        &self.allow
    }
}

#[derive(Debug)]
struct SourceEntry {
    /// The name, shared with every [`Operation`] recorded for the source.
    name: Arc<str>,
    verifier: Arc<dyn Verifier>,
    parser: Arc<dyn Source>,
    allow: Vec<IpNet>,
    bucket: Option<Bucket>,
    /// The source's delivery counters, looked up at its first delivery.
    counters: OnceLock<DeliveryCounters>,
}

/// One source's `hookroom_webhook_deliveries_total` counters, one per
/// outcome.
///
/// Looked up in the installed recorder once (at the source's first
/// delivery) and kept: `counter!` with labels builds the label list, hashes
/// it and searches the recorder's registry on every call, which costs more
/// than the count itself.
struct DeliveryCounters {
    accepted: Counter,
    duplicate: Counter,
    ignored: Counter,
    challenge: Counter,
    refused: Counter,
}

impl std::fmt::Debug for DeliveryCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryCounters").finish_non_exhaustive()
    }
}

impl DeliveryCounters {
    fn new(source: &Arc<str>) -> Self {
        let counter = |outcome: &'static str| {
            ::metrics::counter!(
                telemetry::WEBHOOK_DELIVERIES,
                "source" => Arc::clone(source),
                "outcome" => outcome,
            )
        };
        Self {
            accepted: counter(Outcome::Accepted.as_str()),
            duplicate: counter(Outcome::Duplicate.as_str()),
            ignored: counter(Outcome::Ignored.as_str()),
            challenge: counter(Outcome::Challenge.as_str()),
            refused: counter("refused"),
        }
    }

    fn of(&self, outcome: Outcome) -> &Counter {
        match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Duplicate => &self.duplicate,
            Outcome::Ignored => &self.ignored,
            Outcome::Challenge => &self.challenge,
            Outcome::Refused(_) => &self.refused,
        }
    }
}

#[derive(Debug)]
struct Inner {
    prefix: String,
    sources: HashMap<String, SourceEntry>,
    /// Routes, stores and publishes each verified event.
    deliverer: Deliverer,
    store: Arc<dyn TaskStore>,
    body_limit: usize,
    trusted_proxies: Vec<IpNet>,
    proxy_header: ProxyHeader,
    operations: Arc<OperationsLog>,
    clock: Arc<dyn Clock>,
    alerts: Option<Arc<AlertMonitor>>,
    /// `hookroom_http_request_duration_seconds{endpoint="webhook"}`, looked
    /// up at the first request (see [`DeliveryCounters`]).
    request_duration: OnceLock<Histogram>,
}

/// The ingest service: a [`tower_service::Service`] for
/// `POST {prefix}/webhook/{source}`, or for one source at any path
/// ([`for_source`](Self::for_source), [`SourceName`]).
///
/// Each request goes through: method check (`405`), source lookup (`404`),
/// IP allowlist (`403`), body limit while streaming (`413`), [`Verifier`]
/// (`401`), rate limit, charged for verified requests only (`429`),
/// [`Source`] parser (`400`, or Slack's
/// challenge), [`Router`] (`200 ignored`), [`TaskStore::insert`] (`503` when it
/// fails), then `202 {"status":"accepted","task_id":…,"room":…}` or
/// `200 {"status":"duplicate","task_id":…}`. A `2xx` is only ever sent after
/// the store returned. Every answer is recorded in the [`OperationsLog`].
///
/// Cloning is cheap and clones share everything.
///
/// # Example
/// ```
/// # use std::sync::Arc;
/// # use bytes::Bytes;
/// # use http::HeaderMap;
/// # use hookroom::{Event, Verified};
/// # use hookroom::source::{ParseError, Parsed, Source};
/// # use hookroom::verify::{dangerous, Verification, Verifier, VerifyError};
/// # #[derive(Debug)] struct AnyVerifier;
/// # impl Verifier for AnyVerifier {
/// #     fn verify(&self, _: &HeaderMap, _: &[u8]) -> Result<Verification, VerifyError> {
/// #         Ok(dangerous::assume_verified(0))
/// #     }
/// # }
/// # #[derive(Debug)] struct OneEvent;
/// # impl Source for OneEvent {
/// #     fn parse(&self, source: &str, _: &HeaderMap, body: Bytes, proof: Verification)
/// #         -> Result<Parsed, ParseError> {
/// #         Ok(Parsed::Event(Verified::new(Event {
/// #             source: source.into(), name: "ping".into(), delivery_id: "d-1".into(),
/// #             title: "ping".into(), description: String::new(), url: None, payload: body,
/// #         }, proof)))
/// #     }
/// # }
/// # async fn demo(store: Arc<dyn hookroom::task::TaskStore>) {
/// use hookroom::route::OneRoom;
/// use hookroom::service::WebhookService;
/// use tower::ServiceExt;
///
/// let service = WebhookService::builder(Arc::new(OneRoom::new("dev")), store)
///     .source("github", Arc::new(AnyVerifier), Arc::new(OneEvent))
///     .build();
/// let response = service
///     .oneshot(http::Request::post("/webhook/github").body(String::from("{}")).unwrap())
///     .await
///     .unwrap();
/// assert_eq!(response.status(), 202);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WebhookService {
    inner: Arc<Inner>,
    /// The source every request is for, whatever its path.
    only: Option<Arc<str>>,
}

/// Builds a [`WebhookService`]; see [`WebhookService::builder`].
#[derive(Debug)]
pub struct WebhookServiceBuilder {
    prefix: String,
    sources: HashMap<String, SourceEntry>,
    router: Arc<dyn Router>,
    store: Arc<dyn TaskStore>,
    sink: Option<Arc<dyn StatusSink>>,
    body_limit: usize,
    trusted_proxies: Vec<IpNet>,
    proxy_header: ProxyHeader,
    operations: Option<Arc<OperationsLog>>,
    clock: Arc<dyn Clock>,
    alerts: Option<Arc<AlertMonitor>>,
}

impl WebhookServiceBuilder {
    /// Serves `verifier` and `parser` as the source `name` (under
    /// `/webhook/{name}`, or at any path through
    /// [`WebhookService::for_source`]), with default options. Registering a
    /// name again replaces it.
    pub fn source(
        self,
        name: impl Into<String>,
        verifier: Arc<dyn Verifier>,
        parser: Arc<dyn Source>,
    ) -> Self {
        self.source_with(name, verifier, parser, SourceOptions::default())
    }

    /// Like [`source`](Self::source), with a rate limit and/or allowlist.
    pub fn source_with(
        mut self,
        name: impl Into<String>,
        verifier: Arc<dyn Verifier>,
        parser: Arc<dyn Source>,
        options: SourceOptions,
    ) -> Self {
        let name: String = name.into();
        self.sources.insert(
            name.clone(),
            SourceEntry {
                name: Arc::from(name),
                verifier,
                parser,
                allow: options.allow,
                bucket: options.rate_limit.map(Bucket::new),
                counters: OnceLock::new(),
            },
        );
        self
    }

    /// Where job lifecycle changes go (default: none, as with
    /// [`NoopStatusSink`](crate::status::NoopStatusSink)).
    pub fn status_sink(mut self, sink: Arc<dyn StatusSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The largest accepted body in bytes (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serves under `prefix` (e.g. `/hooks` → `/hooks/webhook/{source}`).
    /// A missing leading `/` is added and trailing `/`s are dropped.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let trimmed = prefix.trim_end_matches('/');
        self.prefix = if trimmed.is_empty() || trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// Peers whose forwarding header (see [`proxy_header`](Self::proxy_header))
    /// is believed when checking allowlists. Without this, only the
    /// connection's [`PeerAddr`] counts. Behind a trusted proxy, a request
    /// whose client cannot be told from the header gets `403`.
    pub fn trusted_proxies(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.trusted_proxies = nets.into_iter().collect();
        self
    }

    /// The one header trusted proxies set (default
    /// [`ProxyHeader::XForwardedFor`]); any other forwarding header is ignored.
    pub fn proxy_header(mut self, header: ProxyHeader) -> Self {
        self.proxy_header = header;
        self
    }

    /// Records into `log` (default: a new log of
    /// [`DEFAULT_OPERATIONS_CAPACITY`](super::DEFAULT_OPERATIONS_CAPACITY)).
    pub fn operations_log(mut self, log: Arc<OperationsLog>) -> Self {
        self.operations = Some(log);
        self
    }

    /// The clock for timestamps (default [`SystemClock`]). Rate limits
    /// measure intervals on the monotonic clock
    /// ([`tokio::time::Instant`]), so stepping this clock does not move them.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reports every delivery (failed or not, how long it took) and every
    /// failed signature check to `monitor`, for its alert rules.
    pub fn alerts(mut self, monitor: Arc<AlertMonitor>) -> Self {
        self.alerts = Some(monitor);
        self
    }

    /// The service.
    pub fn build(self) -> WebhookService {
        let mut deliverer =
            Deliverer::new(self.router, Arc::clone(&self.store)).clock(Arc::clone(&self.clock));
        if let Some(sink) = self.sink {
            deliverer = deliverer.status_sink(sink);
        }
        WebhookService {
            inner: Arc::new(Inner {
                prefix: self.prefix,
                sources: self.sources,
                deliverer,
                store: self.store,
                body_limit: self.body_limit,
                trusted_proxies: self.trusted_proxies,
                proxy_header: self.proxy_header,
                operations: self.operations.unwrap_or_default(),
                clock: self.clock,
                alerts: self.alerts,
                request_duration: OnceLock::new(),
            }),
            only: None,
        }
    }
}

impl WebhookService {
    /// Starts a builder routing with `router` and storing into `store`.
    pub fn builder(router: Arc<dyn Router>, store: Arc<dyn TaskStore>) -> WebhookServiceBuilder {
        WebhookServiceBuilder {
            prefix: String::new(),
            sources: HashMap::new(),
            router,
            store,
            sink: None,
            body_limit: DEFAULT_BODY_LIMIT,
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::default(),
            operations: None,
            clock: Arc::new(SystemClock),
            alerts: None,
        }
    }

    /// The path prefix (`""` at the root).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The configured source names, sorted.
    pub fn source_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.sources.keys().cloned().collect();
        names.sort();
        names
    }

    /// The operations log this service records into.
    pub fn operations_log(&self) -> Arc<OperationsLog> {
        Arc::clone(&self.inner.operations)
    }

    /// The task store.
    pub fn store(&self) -> Arc<dyn TaskStore> {
        Arc::clone(&self.inner.store)
    }

    /// A `/health` service over this service's store and sources.
    pub fn health_service(&self) -> HealthService {
        HealthService::new(self.store())
            .sources(self.source_names())
            .clock(Arc::clone(&self.inner.clock))
    }

    /// This service for the one source `name`, whatever the request's path:
    /// for mounting at a path of the host's choosing. `None` when no source
    /// has that name.
    ///
    /// ```
    /// # fn app(service: hookroom::service::WebhookService) -> Option<axum::Router> {
    /// Some(axum::Router::new().route_service("/hooks/gh", service.for_source("github")?))
    /// # }
    /// ```
    pub fn for_source(&self, name: &str) -> Option<WebhookService> {
        let entry = self.inner.sources.get(name)?;
        Some(Self {
            inner: Arc::clone(&self.inner),
            only: Some(Arc::clone(&entry.name)),
        })
    }

    /// The source name in `path`, when `path` is `{prefix}/webhook/{name}`.
    pub(crate) fn source_in_path<'p>(&self, path: &'p str) -> Option<&'p str> {
        let name = path
            .strip_prefix(self.inner.prefix.as_str())?
            .strip_prefix("/webhook/")?;
        (!name.is_empty() && !name.contains('/')).then_some(name)
    }
}

impl<B> tower_service::Service<Request<B>> for WebhookService
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
        let service = self.clone();
        let name = if let Some(only) = &service.only {
            Arc::clone(only)
        } else {
            let named = match request.extensions().get::<SourceName>() {
                Some(name) => Some(name.as_str()),
                None => service.source_in_path(request.uri().path()),
            };
            let Some(name) = named else {
                return Box::pin(std::future::ready(Ok(not_found(
                    &service.inner.prefix,
                    request.headers(),
                ))));
            };
            match service.inner.sources.get(name) {
                Some(entry) => Arc::clone(&entry.name),
                // Recorded (shortened and escaped), then answered
                // `404 unknown_source`.
                None => unknown_name(name),
            }
        };
        // At DEBUG, as tower-http's `TraceLayer` makes its spans: at the
        // usual INFO a span that no event is logged in would cost every
        // request its fields' formatting for nothing. The warnings and
        // errors below name the source and request id themselves.
        let span = tracing::debug_span!(
            "webhook",
            source = %name,
            request_id = tracing::field::Empty,
            event = tracing::field::Empty,
            delivery_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            status = tracing::field::Empty,
        );
        Box::pin(async move { Ok(service.inner.handle(name, request).await) }.instrument(span))
    }
}

/// A successful answer.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Ack<'a> {
    Accepted { task_id: &'a str, room: &'a str },
    Duplicate { task_id: &'a str },
    Ignored { reason: &'a str },
}

impl Inner {
    async fn handle<B>(&self, name: Arc<str>, request: Request<B>) -> Response<ServiceBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = std::time::Instant::now();
        let request_id = request_id(request.headers());
        // Only visible ASCII got this far, so the text form always exists.
        let request_id_text = request_id.to_str().unwrap_or("-");
        tracing::Span::current().record("request_id", request_id_text);
        // A label value must not come from the sender: a name no source is
        // configured under counts as `unknown`.
        let entry = self.sources.get(&*name);
        let source_label: &str = entry.map_or(telemetry::UNKNOWN_SOURCE, |entry| &entry.name);
        let mut operation = Operation {
            timestamp: self.clock.now(),
            source: name,
            event: None,
            delivery_id: None,
            // Every path below sets the real outcome.
            outcome: Outcome::Accepted,
            task_id: None,
            room: None,
            status: 0,
        };
        let response = match self.ingest(request, &mut operation).await {
            Ok(response) => response,
            Err(error) => {
                operation.outcome = Outcome::Refused(error.code());
                if let IngestError::Verify(cause) = &error {
                    if let Some(alerts) = &self.alerts {
                        alerts.record_auth_failure();
                    }
                    ::metrics::counter!(
                        telemetry::VERIFICATION_FAILURES,
                        "source" => source_label.to_owned(),
                        "reason" => cause.code(),
                    )
                    .increment(1);
                }
                let source = &operation.source;
                match &error {
                    IngestError::Store(cause) => tracing::error!(
                        error = %cause, %source, request_id = request_id_text,
                        "task store refused the delivery"
                    ),
                    IngestError::Verify(_) => tracing::warn!(
                        %error, %source, request_id = request_id_text, "webhook rejected"
                    ),
                    _ => tracing::debug!(%error, "webhook rejected"),
                }
                error.to_response_for(Some(request_id_text))
            }
        };
        match entry {
            Some(entry) => entry
                .counters
                .get_or_init(|| DeliveryCounters::new(&entry.name))
                .of(operation.outcome)
                .increment(1),
            // Rare (a wrong URL), so not worth keeping handles for.
            None => ::metrics::counter!(
                telemetry::WEBHOOK_DELIVERIES,
                "source" => telemetry::UNKNOWN_SOURCE,
                "outcome" => "refused",
            )
            .increment(1),
        }
        let took = started.elapsed();
        self.request_duration
            .get_or_init(
                || ::metrics::histogram!(telemetry::REQUEST_DURATION, "endpoint" => "webhook"),
            )
            .record(took.as_secs_f64());
        if let Some(alerts) = &self.alerts {
            alerts.record_delivery(response.status().is_server_error(), took);
        }
        let mut response = response;
        response
            .headers_mut()
            .insert(REQUEST_ID, request_id.clone());
        operation.status = response.status().as_u16();
        let span = tracing::Span::current();
        span.record("outcome", operation.outcome.as_str());
        span.record("status", operation.status);
        self.operations.record(operation);
        response
    }

    async fn ingest<B>(
        &self,
        request: Request<B>,
        operation: &mut Operation,
    ) -> Result<Response<ServiceBody>, IngestError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = request.into_parts();
        mark_sensitive(&mut parts.headers);
        if parts.method != Method::POST {
            return Err(IngestError::MethodNotAllowed { allow: "POST" });
        }
        let entry = self
            .sources
            .get(&*operation.source)
            .ok_or(IngestError::UnknownSource)?;
        self.check_allowlist(entry, &parts)?;
        let body = read_limited(&parts.headers, body, self.body_limit).await?;

        let proof = entry.verifier.verify(&parts.headers, &body)?;
        // The rate limit is charged only for verified requests: a flood of
        // unsigned requests must not use up the sender's budget and turn its
        // real deliveries away.
        if let Some(bucket) = &entry.bucket {
            bucket
                .acquire(tokio::time::Instant::now())
                .map_err(|retry_after| IngestError::RateLimited { retry_after })?;
        }
        let event = match entry
            .parser
            .parse(&operation.source, &parts.headers, body, proof)?
        {
            Parsed::Challenge(challenge) => {
                operation.outcome = Outcome::Challenge;
                #[derive(Serialize)]
                struct Challenge<'a> {
                    challenge: &'a str,
                }
                return Ok(json_response(
                    StatusCode::OK,
                    &Challenge {
                        challenge: &challenge,
                    },
                ));
            }
            Parsed::Event(event) => event,
        };
        let span = tracing::Span::current();
        span.record("event", event.name.as_str());
        span.record("delivery_id", event.delivery_id.as_str());
        operation.event = Some(event.name.clone());
        operation.delivery_id = Some(event.delivery_id.clone());

        let (task_id, room, duplicate) = match self.deliverer.deliver(event).await? {
            Delivered::Ignored { reason } => {
                operation.outcome = Outcome::Ignored;
                return Ok(json_response(
                    StatusCode::OK,
                    &Ack::Ignored { reason: &reason },
                ));
            }
            Delivered::Duplicate { task_id, room } => (task_id, room, true),
            Delivered::Accepted { task_id, room } => (task_id, room, false),
        };
        let response = if duplicate {
            operation.outcome = Outcome::Duplicate;
            json_response(
                StatusCode::OK,
                &Ack::Duplicate {
                    task_id: task_id.as_str(),
                },
            )
        } else {
            operation.outcome = Outcome::Accepted;
            json_response(
                StatusCode::ACCEPTED,
                &Ack::Accepted {
                    task_id: task_id.as_str(),
                    room: &room,
                },
            )
        };
        operation.task_id = Some(task_id);
        operation.room = Some(room);
        Ok(response)
    }

    /// The allowlist, checked before any body byte is read.
    fn check_allowlist(&self, entry: &SourceEntry, parts: &Parts) -> Result<(), IngestError> {
        if !entry.allow.is_empty() {
            let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
            match client_ip(
                peer,
                &parts.headers,
                &self.trusted_proxies,
                self.proxy_header,
            ) {
                Some(ip) if is_in(ip, &entry.allow) => {}
                _ => return Err(IngestError::AddressNotAllowed),
            }
        }
        Ok(())
    }
}

/// The caller's request id when it sent a usable one (a proxy's, say), else
/// a fresh one: logged with the delivery, echoed in the answer.
pub(crate) fn request_id(headers: &HeaderMap) -> http::HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|id| {
            let id = id.as_bytes();
            !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut buffer = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().simple().encode_lower(&mut buffer);
            http::HeaderValue::from_str(id).unwrap_or(http::HeaderValue::from_static("-"))
        })
}

/// `404 not_found` for a request that names no source (a path other than
/// `{prefix}/webhook/{source}`, no [`SourceName`]), with its request id as
/// every other answer has.
fn not_found(prefix: &str, headers: &HeaderMap) -> Response<ServiceBody> {
    let request_id = request_id(headers);
    let error = IngestError::NoSourceInPath {
        serves: format!("{prefix}/webhook/{{source}}"),
    };
    let mut response = error.to_response_for(request_id.to_str().ok());
    response.headers_mut().insert(REQUEST_ID, request_id);
    response
}

/// A source name nobody configured, as recorded: at most
/// [`UNKNOWN_NAME_CHARS`] characters, anything but ASCII letters, digits,
/// `-`, `_` and `.` escaped, so a flood of long or odd names cannot fill the
/// operations log with attacker-chosen text.
fn unknown_name(raw: &str) -> Arc<str> {
    let mut name = String::new();
    for (count, c) in raw.chars().enumerate() {
        if count == UNKNOWN_NAME_CHARS {
            name.push('…');
            break;
        }
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            name.push(c);
        } else {
            name.extend(c.escape_default());
        }
    }
    Arc::from(name)
}

pub(crate) fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if is_sensitive(name) {
            value.set_sensitive(true);
        }
    }
}

fn is_sensitive(name: &HeaderName) -> bool {
    SENSITIVE_HEADERS.contains(&name.as_str())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::Full;
    use tower_service::Service;

    use super::*;
    use crate::event::{Event, Verified};
    use crate::route::{Route, RouteDecision};
    use crate::source::ParseError;
    use crate::task::{
        ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
        TaskQuery,
    };
    use crate::verify::{Verification, VerifyError};

    /// Accepts only requests whose signature header the service marked sensitive.
    #[derive(Debug)]
    struct RequiresSensitive;

    impl Verifier for RequiresSensitive {
        fn verify(&self, headers: &HeaderMap, _: &[u8]) -> Result<Verification, VerifyError> {
            match headers.get("x-hub-signature-256") {
                Some(v) if v.is_sensitive() => Ok(Verification::new(0)),
                Some(_) => Err(VerifyError::SignatureMismatch),
                None => Err(VerifyError::MissingHeader {
                    header: "x-hub-signature-256",
                }),
            }
        }
    }

    #[derive(Debug)]
    struct Fixed;

    impl Source for Fixed {
        fn parse(
            &self,
            source: &str,
            _: &HeaderMap,
            body: Bytes,
            proof: Verification,
        ) -> Result<Parsed, ParseError> {
            Ok(Parsed::Event(Verified::new(
                Event {
                    source: source.into(),
                    name: "push".into(),
                    delivery_id: "d-1".into(),
                    title: "push".into(),
                    description: String::new(),
                    url: None,
                    payload: body,
                },
                proof,
            )))
        }
    }

    #[derive(Debug)]
    struct Everything;

    impl Router for Everything {
        fn route(&self, _: &Verified<Event>) -> RouteDecision {
            RouteDecision::Deliver(Route {
                room: "all".into(),
                priority: 1,
                ttl: Some(Duration::from_secs(60)),
            })
        }
    }

    /// A store whose every operation fails, as an unreachable database would.
    #[derive(Debug)]
    struct Unreachable;

    fn down() -> StoreError {
        StoreError::Backend {
            store: "unreachable",
            source: "connection refused".into(),
        }
    }

    #[async_trait::async_trait]
    impl TaskStore for Unreachable {
        async fn insert(&self, _: NewTask) -> Result<Inserted, StoreError> {
            Err(down())
        }
        async fn get(&self, _: &TaskId) -> Result<Option<Task>, StoreError> {
            Err(down())
        }
        async fn list(&self, _: &TaskQuery) -> Result<Vec<Task>, StoreError> {
            Err(down())
        }
        async fn claim(&self, _: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
            Err(down())
        }
        async fn claim_task(&self, _: &TaskId, _: &ClaimRequest) -> Result<Claimed, StoreError> {
            Err(down())
        }
        async fn heartbeat(
            &self,
            _: &TaskId,
            _: &ClaimToken,
            _: Duration,
        ) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn complete(
            &self,
            _: &TaskId,
            _: &ClaimToken,
            _: Option<serde_json::Value>,
        ) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn fail(
            &self,
            _: &TaskId,
            _: &ClaimToken,
            _: &str,
            _: FailAction,
        ) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn release(&self, _: &TaskId, _: &ClaimToken) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn request_input(
            &self,
            _: &TaskId,
            _: &ClaimToken,
            _: &str,
        ) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn provide_input(
            &self,
            _: &TaskId,
            _: serde_json::Value,
        ) -> Result<Task, StoreError> {
            Err(down())
        }
        async fn take_input(
            &self,
            _: &TaskId,
            _: &ClaimToken,
        ) -> Result<Option<serde_json::Value>, StoreError> {
            Err(down())
        }
        async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
            Err(down())
        }
    }

    /// A body that must never be read: polling it is an error.
    struct MustNotRead;

    impl Body for MustNotRead {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(Some(Err(std::io::Error::other("body was read"))))
        }
    }

    fn service() -> WebhookService {
        WebhookService::builder(Arc::new(Everything), Arc::new(Unreachable))
            .source("github", Arc::new(RequiresSensitive), Arc::new(Fixed))
            .body_limit(16)
            .prefix("hooks/")
            .build()
    }

    fn code(response: &Response<ServiceBody>) -> u16 {
        response.status().as_u16()
    }

    #[test]
    fn paths_are_matched_exactly_under_the_prefix() {
        let svc = service();
        assert_eq!(svc.prefix(), "/hooks");
        assert_eq!(svc.source_in_path("/hooks/webhook/github"), Some("github"));
        for path in [
            "/webhook/github",
            "/hooks/webhook/",
            "/hooks/webhook/a/b",
            "/hooksx/webhook/a",
        ] {
            assert_eq!(svc.source_in_path(path), None, "{path}");
        }
    }

    #[tokio::test]
    async fn declared_oversize_is_refused_without_reading_the_body() {
        let mut request = Request::post("/hooks/webhook/github")
            .header("content-length", "17")
            .body(MustNotRead)
            .unwrap();
        request
            .headers_mut()
            .insert("x-hub-signature-256", "sig".parse().unwrap());
        let response = service().call(request).await.unwrap();
        assert_eq!(code(&response), 413);
    }

    #[tokio::test]
    async fn unreadable_body_is_400() {
        let request = Request::post("/hooks/webhook/github")
            .body(MustNotRead)
            .unwrap();
        let response = service().call(request).await.unwrap();
        assert_eq!(code(&response), 400);
    }

    #[tokio::test]
    async fn signature_headers_reach_the_verifier_marked_sensitive_and_store_failure_is_503() {
        let svc = service();
        let request = Request::post("/hooks/webhook/github")
            .header("x-hub-signature-256", "sha256=00")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        // The verifier accepted (header was sensitive); the unreachable store
        // turns the delivery into a 503, never a 2xx.
        let response = svc.clone().call(request).await.unwrap();
        assert_eq!(code(&response), 503);
        let recorded = svc.operations_log().recent(1);
        assert_eq!(recorded[0].outcome, Outcome::Refused("store_unavailable"));
        assert_eq!(recorded[0].delivery_id.as_deref(), Some("d-1"));
        assert_eq!(recorded[0].task_id, None);
    }

    #[tokio::test]
    async fn health_reports_an_unreachable_store_as_503() {
        let response = service()
            .health_service()
            .call(Request::get("/health").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(code(&response), 503);
    }

    #[test]
    fn unknown_names_are_recorded_short_and_escaped() {
        assert_eq!(&*unknown_name("git-hub_1.x"), "git-hub_1.x");
        assert_eq!(&*unknown_name("a\"b\n"), "a\\\"b\\n");
        let long = unknown_name(&"x".repeat(64 * 1024));
        assert_eq!(long.chars().count(), UNKNOWN_NAME_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[tokio::test]
    async fn a_flood_of_long_unknown_names_records_short_entries() {
        let svc = service();
        let path = format!("/hooks/webhook/{}", "n".repeat(60 * 1024));
        let response = svc
            .clone()
            .call(Request::post(path).body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert_eq!(code(&response), 404);
        let recorded = svc.operations_log().recent(1);
        assert!(recorded[0].source.len() <= 4 * (UNKNOWN_NAME_CHARS + 1));
    }

    #[tokio::test]
    async fn a_path_naming_no_source_is_404_with_a_request_id_and_the_way_to_serve_it() {
        let response = service()
            .call(
                Request::post("/hooks/gh")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(code(&response), 404);
        let header = response.headers().get(REQUEST_ID).cloned().unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["request_id"], header.to_str().unwrap());
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("/webhook/{source}"), "{message}");
        assert!(message.contains("for_source"), "{message}");
    }

    #[test]
    fn sensitive_header_names_are_lowercase() {
        for name in SENSITIVE_HEADERS {
            assert!(HeaderName::from_static(name) == *name);
        }
    }
}
