//! Black-box tests: the gateway served by hyper on 127.0.0.1, driven with
//! real-format HTTP requests over loopback.
#![cfg(feature = "memory")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tower_service::Service;

use hookroom::clock::ManualClock;
use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::{
    BearerTokens, Gateway, PeerAddr, RateLimit, SourceOptions, WebhookService,
    WebhookServiceBuilder,
};
use hookroom::source::{GenericSource, GithubSource, HuggingFaceSource, JiraSource, SlackSource};
use hookroom::status::{JobEvent, SinkError, StatusSink};
use hookroom::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, InMemoryTaskStore, Inserted, NewTask, Payload,
    StoreError, Task, TaskId, TaskQuery, TaskStore,
};
use hookroom::verify::{
    self, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier, SlackVerifier,
};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const JIRA_SECRET: &str = "jira-webhook-secret";
const HF_SECRET: &str = "hf-shared-secret";
const GENERIC_SECRET: &str = "generic-secret";
const NOW: i64 = 1_700_000_000;
/// The harness gateway's admin tokens (two, as during a rotation).
const ADMIN_TOKENS: &str = "admin-new,admin-old";

// ---------------------------------------------------------------------------
// The real verifiers, parsers, router and memory store; two failure-injecting
// wrappers (store and sink) to prove that nothing is acknowledged that was
// not stored.
// ---------------------------------------------------------------------------

const ROUTES: &str = r#"{
  "routes": [
    {"source": "github", "event": "pull_request.*", "target_room": "pr-review", "priority": 2},
    {"source": "github", "event": "issues.labeled", "filter": {"label": "AI-WIP"}, "target_room": "auto-code", "priority": 1},
    {"source": "slack", "event": "*", "target_room": "slack-support", "priority": 3},
    {"source": "jira", "event": "issue_created", "target_room": "jira-work", "priority": 3},
    {"source": "huggingface", "event": "discussion.comment.*", "target_room": "hf-tagging"},
    {"source": "generic", "event": "*", "target_room": "generic-inbox"},
    {"source": "limited", "event": "*", "target_room": "limited"},
    {"source": "hf", "event": "*", "target_room": "hf"}
  ]
}"#;

fn router() -> Arc<RuleRouter> {
    let config = RoutesConfig::from_json(ROUTES).unwrap();
    Arc::new(RuleRouter::from_config(&config).unwrap())
}

/// The memory store; `insert` and `get` fail while `failing` is set.
/// Counts `get` calls (the health probe is one).
#[derive(Debug, Default)]
struct FlakyStore {
    inner: InMemoryTaskStore,
    failing: AtomicBool,
    gets: std::sync::atomic::AtomicUsize,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                store: "flaky",
                source: "connection refused to db.internal:5432".into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl TaskStore for FlakyStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.check()?;
        self.inner.insert(task).await
    }
    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        self.inner.get(id).await
    }
    async fn list(&self, q: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.inner.list(q).await
    }
    async fn claim(&self, r: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        self.inner.claim(r).await
    }
    async fn claim_task(&self, id: &TaskId, r: &ClaimRequest) -> Result<Claimed, StoreError> {
        self.inner.claim_task(id, r).await
    }
    async fn heartbeat(
        &self,
        id: &TaskId,
        t: &ClaimToken,
        l: Duration,
    ) -> Result<Task, StoreError> {
        self.inner.heartbeat(id, t, l).await
    }
    async fn complete(
        &self,
        id: &TaskId,
        t: &ClaimToken,
        r: Option<Value>,
    ) -> Result<Task, StoreError> {
        self.inner.complete(id, t, r).await
    }
    async fn fail(
        &self,
        id: &TaskId,
        t: &ClaimToken,
        why: &str,
        a: FailAction,
    ) -> Result<Task, StoreError> {
        self.inner.fail(id, t, why, a).await
    }
    async fn release(&self, id: &TaskId, t: &ClaimToken) -> Result<Task, StoreError> {
        self.inner.release(id, t).await
    }
    async fn request_input(
        &self,
        id: &TaskId,
        t: &ClaimToken,
        p: &str,
    ) -> Result<Task, StoreError> {
        self.inner.request_input(id, t, p).await
    }
    async fn provide_input(&self, id: &TaskId, v: Value) -> Result<Task, StoreError> {
        self.inner.provide_input(id, v).await
    }
    async fn take_input(&self, id: &TaskId, t: &ClaimToken) -> Result<Option<Value>, StoreError> {
        self.inner.take_input(id, t).await
    }
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        self.inner.expire_pending().await
    }
}

/// Remembers every published event; refuses them while `failing` is set.
#[derive(Debug, Default)]
struct RecordingSink {
    events: Mutex<Vec<JobEvent>>,
    failing: AtomicBool,
}

#[async_trait::async_trait]
impl StatusSink for RecordingSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SinkError::Backend {
                sink: "recording",
                source: "down".into(),
            });
        }
        self.events.lock().unwrap().push(event);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Harness: a gateway on 127.0.0.1:0 and a keep-alive hyper client.
// ---------------------------------------------------------------------------

struct Harness {
    addr: SocketAddr,
    client: Client<HttpConnector, BoxBody<Bytes, Infallible>>,
    store: Arc<FlakyStore>,
    sink: Arc<RecordingSink>,
    clock: ManualClock,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

fn fixture(path: &str) -> Bytes {
    let full = format!(
        "{}/tests/fixtures/payloads/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}")))
}

fn fixture_headers(path: &str) -> Vec<(String, String)> {
    let map: HashMap<String, String> = serde_json::from_slice(&fixture(path)).unwrap();
    map.into_iter().collect()
}

fn build(
    store: Arc<FlakyStore>,
    sink: Arc<RecordingSink>,
    clock: ManualClock,
    tune: impl FnOnce(WebhookServiceBuilder) -> WebhookServiceBuilder,
) -> Gateway {
    Gateway::builder(build_service(store, sink, clock, tune))
        .principals(BearerTokens::parse_list(ADMIN_TOKENS).unwrap())
        .build()
}

fn build_service(
    store: Arc<FlakyStore>,
    sink: Arc<RecordingSink>,
    clock: ManualClock,
    tune: impl FnOnce(WebhookServiceBuilder) -> WebhookServiceBuilder,
) -> WebhookService {
    let generic = HmacVerifier::builder("x-signature")
        .prefix("sha256=")
        .build(hookroom::verify::Secrets::try_from(GENERIC_SECRET).unwrap())
        .unwrap();
    let builder = WebhookService::builder(router(), store)
        .status_sink(sink)
        .clock(Arc::new(clock.clone()))
        .body_limit(64 * 1024)
        .source(
            "github",
            Arc::new(GithubVerifier::new(
                hookroom::verify::Secrets::try_from(GITHUB_SECRET).unwrap(),
            )),
            Arc::new(GithubSource::new()),
        )
        .source(
            "slack",
            Arc::new(
                SlackVerifier::new(hookroom::verify::Secrets::try_from(SLACK_SECRET).unwrap())
                    .with_clock(clock),
            ),
            Arc::new(SlackSource::new()),
        )
        .source(
            "jira",
            Arc::new(JiraVerifier::new(
                hookroom::verify::Secrets::try_from(JIRA_SECRET).unwrap(),
            )),
            Arc::new(JiraSource::new()),
        )
        .source(
            "huggingface",
            Arc::new(HuggingFaceVerifier::new(
                hookroom::verify::Secrets::try_from(HF_SECRET).unwrap(),
            )),
            Arc::new(HuggingFaceSource::new()),
        )
        .source("generic", Arc::new(generic), Arc::new(GenericSource::new()));
    tune(builder).build()
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(|b| b).await
    }

    async fn start_with(tune: impl FnOnce(WebhookServiceBuilder) -> WebhookServiceBuilder) -> Self {
        let store = Arc::new(FlakyStore::default());
        let sink = Arc::new(RecordingSink::default());
        let clock = ManualClock::at_unix(NOW);
        let gateway = build(store.clone(), sink.clone(), clock.clone(), tune);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |mut request: Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(PeerAddr(peer));
                            gateway.clone().call(request)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self {
            addr,
            client,
            store,
            sink,
            clock,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: BoxBody<Bytes, Infallible>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        Answer {
            status,
            headers,
            json,
        }
    }

    async fn post(&self, path: &str, headers: &[(String, String)], body: Bytes) -> Answer {
        self.send("POST", path, headers, Full::new(body).boxed())
            .await
    }

    /// `GET path` with `authorization` (if any).
    async fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        let headers: Vec<_> = authorization
            .map(|a| h("authorization", a))
            .into_iter()
            .collect();
        self.send("GET", path, &headers, Full::new(Bytes::new()).boxed())
            .await
    }

    /// `GET path` as an admin.
    async fn admin_get(&self, path: &str) -> Answer {
        self.get(path, Some("Bearer admin-old")).await
    }

    async fn tasks(&self) -> Vec<Task> {
        self.store.list(&TaskQuery::default()).await.unwrap()
    }
}

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

fn github_headers(event: &str, delivery: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        h("content-type", "application/json"),
        h("x-github-event", event),
        h("x-github-delivery", delivery),
        h(
            "x-hub-signature-256",
            &verify::github::sign(GITHUB_SECRET.as_bytes(), body),
        ),
    ]
}

fn slack_headers(ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let signature = verify::slack::sign(SLACK_SECRET.as_bytes(), ts, body);
    let ts = ts.to_string();
    vec![
        h("content-type", "application/json"),
        h("x-slack-request-timestamp", &ts),
        h("x-slack-signature", &signature),
    ]
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.json);
    assert_eq!(answer.json["error"]["code"], code, "{}", answer.json);
    assert!(answer.json["error"]["message"].is_string());
}

/// A body of `chunks` chunks of `size` bytes each, with no declared length,
/// so hyper sends it with `Transfer-Encoding: chunked`.
struct Chunked {
    left: usize,
    size: usize,
}

impl Body for Chunked {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b' '; self.size])))))
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn github_fixture_with_its_real_signature_is_accepted_and_stored() {
    let harness = Harness::start().await;
    let body = fixture("github/pull_request.opened.json");
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    let answer = harness
        .post("/webhook/github", &headers, body.clone())
        .await;

    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.json);
    assert_eq!(answer.json["status"], "accepted");
    assert_eq!(answer.json["room"], "pr-review");
    let tasks = harness.tasks().await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(answer.json["task_id"], tasks[0].id.as_str());
    assert_eq!(tasks[0].source_event, "pull_request.opened");
    assert_eq!(tasks[0].delivery_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(
        tasks[0].payload,
        Payload::new(body),
        "payload is byte-exact"
    );
}

#[tokio::test]
async fn every_source_accepts_a_valid_delivery() {
    let harness = Harness::start().await;
    let slack = fixture("slack/event_callback.app_mention.json");
    let jira = fixture("jira/jira_issue_created.json");
    let mut jira_headers = fixture_headers("jira/jira_issue_created.headers.json");
    jira_headers.push(h(
        "x-hub-signature",
        &verify::jira::sign(JIRA_SECRET.as_bytes(), &jira),
    ));
    let hf = fixture("huggingface/discussion.comment.create.json");
    let issues = fixture("github/issues.labeled.json");
    let slash = fixture("slack/slash_command.form.txt");
    let mut slash_headers = slack_headers(NOW, &slash);
    slash_headers[0].1 = "application/x-www-form-urlencoded".into();
    let generic = fixture("standard/user.created.json");
    let generic_headers = [
        h("content-type", "application/json"),
        h("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
        h(
            "x-signature",
            &format!(
                "sha256={}",
                hex::encode(
                    <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(
                        GENERIC_SECRET.as_bytes()
                    )
                    .map(|mut mac| {
                        hmac::Mac::update(&mut mac, &generic);
                        hmac::Mac::finalize(mac).into_bytes()
                    })
                    .unwrap()
                )
            ),
        ),
    ];

    let answers = [
        harness
            .post(
                "/webhook/github",
                &fixture_headers("github/issues.labeled.headers.json"),
                issues,
            )
            .await,
        harness
            .post("/webhook/slack", &slack_headers(NOW, &slack), slack.clone())
            .await,
        harness.post("/webhook/jira", &jira_headers, jira).await,
        harness.post("/webhook/slack", &slash_headers, slash).await,
        harness
            .post("/webhook/generic", &generic_headers, generic)
            .await,
        harness
            .post(
                "/webhook/huggingface",
                &[h("x-webhook-secret", HF_SECRET)],
                hf,
            )
            .await,
    ];
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.json);
    }
    let mut events: Vec<String> = harness
        .tasks()
        .await
        .into_iter()
        .map(|t| format!("{}:{}", t.room, t.source_event))
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "auto-code:issues.labeled",
            "generic-inbox:user.created",
            "hf-tagging:discussion.comment.create",
            "jira-work:issue_created",
            "slack-support:app_mention",
            "slack-support:slash_command.weather",
        ]
    );
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_stores_nothing() {
    let harness = Harness::start().await;
    let body = fixture("github/pull_request.opened.json");
    let mut headers = github_headers("pull_request", "d-1", &body);
    headers[3].1 = format!("sha256={}", "0".repeat(64));
    let bad = harness
        .post("/webhook/github", &headers, body.clone())
        .await;
    assert_error(&bad, 401, "signature_mismatch");
    assert!(
        !bad.json.to_string().contains("000000"),
        "never echoes the signature"
    );

    headers.truncate(3);
    let missing = harness
        .post("/webhook/github", &headers, body.clone())
        .await;
    assert_error(&missing, 401, "missing_header");

    let wrong_secret = harness
        .post(
            "/webhook/huggingface",
            &[h("x-webhook-secret", "guess")],
            fixture("huggingface/discussion.comment.create.json"),
        )
        .await;
    assert_error(&wrong_secret, 401, "signature_mismatch");
    assert!(harness.tasks().await.is_empty());
}

#[tokio::test]
async fn tampered_body_fails_the_real_github_signature() {
    let harness = Harness::start().await;
    let body = fixture("github/pull_request.opened.json");
    let mut tampered = body.to_vec();
    tampered.push(b'\n');
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    let answer = harness
        .post("/webhook/github", &headers, Bytes::from(tampered))
        .await;
    assert_error(&answer, 401, "signature_mismatch");
}

#[tokio::test]
async fn stale_slack_timestamp_is_401() {
    let harness = Harness::start().await;
    let body = fixture("slack/event_callback.app_mention.json");
    let answer = harness
        .post(
            "/webhook/slack",
            &slack_headers(NOW - 301, &body),
            body.clone(),
        )
        .await;
    assert_error(&answer, 401, "timestamp_out_of_tolerance");
    // The same request becomes valid when the clock is back within the window.
    harness.clock.set_unix(NOW - 300);
    let answer = harness
        .post("/webhook/slack", &slack_headers(NOW - 301, &body), body)
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn slack_url_verification_answers_the_challenge() {
    let harness = Harness::start().await;
    let body = fixture("slack/url_verification.json");
    let answer = harness
        .post("/webhook/slack", &slack_headers(NOW, &body), body)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert!(harness.tasks().await.is_empty());
}

#[tokio::test]
async fn duplicate_delivery_is_200_with_the_first_task_id() {
    let harness = Harness::start().await;
    let body = fixture("github/pull_request.opened.json");
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    let first = harness
        .post("/webhook/github", &headers, body.clone())
        .await;
    let second = harness.post("/webhook/github", &headers, body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.json["status"], "duplicate");
    assert_eq!(second.json["task_id"], first.json["task_id"]);
    assert_eq!(harness.tasks().await.len(), 1);
    // Only the first insert creates a job.
    assert_eq!(harness.sink.events.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn slack_retry_of_a_stored_event_is_a_duplicate() {
    let harness = Harness::start().await;
    let body = fixture("slack/event_callback.app_mention.json");
    let first = harness
        .post("/webhook/slack", &slack_headers(NOW, &body), body.clone())
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.json);
    let mut retry = slack_headers(NOW + 60, &body);
    retry.push(h("x-slack-retry-num", "1"));
    retry.push(h("x-slack-retry-reason", "http_timeout"));
    let second = harness.post("/webhook/slack", &retry, body).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.json);
    assert_eq!(second.json["status"], "duplicate");
    assert_eq!(second.json["task_id"], first.json["task_id"]);
    assert_eq!(harness.tasks().await.len(), 1);
}

#[tokio::test]
async fn ignored_event_is_200_with_reason_and_no_task() {
    let harness = Harness::start().await;
    let body = fixture("github/ping.json");
    let answer = harness
        .post(
            "/webhook/github",
            &fixture_headers("github/ping.headers.json"),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["status"], "ignored");
    let reason = answer.json["reason"].as_str().unwrap();
    assert!(reason.contains("no route matches"), "{reason}");
    assert!(harness.tasks().await.is_empty());
}

#[tokio::test]
async fn malformed_json_and_missing_header_are_400() {
    let harness = Harness::start().await;
    let body = Bytes::from_static(b"{\"action\": \"opened\",");
    let answer = harness
        .post(
            "/webhook/github",
            &github_headers("pull_request", "d-2", &body),
            body,
        )
        .await;
    assert_error(&answer, 400, "invalid_body");

    let body = Bytes::from_static(b"{\"action\":\"opened\"}");
    let mut headers = github_headers("pull_request", "d-3", &body);
    headers.remove(2); // x-github-delivery
    let answer = harness.post("/webhook/github", &headers, body).await;
    assert_error(&answer, 400, "missing_event_header");
    assert!(harness.tasks().await.is_empty());
}

#[tokio::test]
async fn oversize_body_is_413_with_and_without_content_length() {
    let harness = Harness::start().await;
    let big = Bytes::from(vec![b' '; 64 * 1024 + 1]);
    let answer = harness
        .post(
            "/webhook/github",
            &github_headers("push", "big-1", &big),
            big,
        )
        .await;
    assert_error(&answer, 413, "payload_too_large");

    // Chunked, no Content-Length: refused while streaming.
    let chunked = Chunked {
        left: 100,
        size: 1024,
    };
    let answer = harness
        .send(
            "POST",
            "/webhook/github",
            &github_headers("push", "big-2", b""),
            chunked.boxed(),
        )
        .await;
    assert_error(&answer, 413, "payload_too_large");

    // A body just at the limit is read (and then fails on its content).
    let exact = Chunked {
        left: 64,
        size: 1024,
    };
    let answer = harness
        .send(
            "POST",
            "/webhook/github",
            &github_headers("push", "big-3", b""),
            exact.boxed(),
        )
        .await;
    assert_error(&answer, 401, "signature_mismatch");
    assert!(harness.tasks().await.is_empty());
}

#[tokio::test]
async fn unknown_source_unknown_path_and_wrong_method() {
    let harness = Harness::start().await;
    let body = Bytes::from_static(b"{}");
    let answer = harness.post("/webhook/gitlab", &[], body.clone()).await;
    assert_error(&answer, 404, "unknown_source");
    let answer = harness.post("/elsewhere", &[], body).await;
    assert_error(&answer, 404, "not_found");
    let answer = harness
        .send(
            "GET",
            "/webhook/github",
            &[],
            Full::new(Bytes::new()).boxed(),
        )
        .await;
    assert_error(&answer, 405, "method_not_allowed");
    assert_eq!(answer.headers["allow"], "POST");
    let answer = harness
        .send("DELETE", "/health", &[], Full::new(Bytes::new()).boxed())
        .await;
    assert_error(&answer, 405, "method_not_allowed");
    assert_eq!(answer.headers["allow"], "GET");
}

#[tokio::test]
async fn every_2xx_means_the_task_is_in_the_store() {
    let harness = Harness::start().await;
    for n in 0..25 {
        let body = Bytes::from(format!("{{\"action\":\"opened\",\"n\":{n}}}"));
        let answer = harness
            .post(
                "/webhook/github",
                &github_headers("pull_request", &format!("d-{}", n % 20), &body),
                body,
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.json);
        let id = TaskId::from(answer.json["task_id"].as_str().unwrap());
        assert!(
            harness.store.get(&id).await.unwrap().is_some(),
            "task {id} acknowledged but not stored"
        );
    }
    assert_eq!(harness.tasks().await.len(), 20);
}

#[tokio::test]
async fn failing_store_gives_503_and_never_a_2xx() {
    let harness = Harness::start().await;
    harness.store.failing.store(true, Ordering::SeqCst);
    let body = fixture("github/pull_request.opened.json");
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    let answer = harness
        .post("/webhook/github", &headers, body.clone())
        .await;
    assert_error(&answer, 503, "store_unavailable");
    assert!(
        !answer.json.to_string().contains("db.internal"),
        "backend details stay in logs"
    );
    assert!(harness.sink.events.lock().unwrap().is_empty());

    let health = harness.admin_get("/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json["components"]["store"]["status"], "down");

    // Once the store is back, the provider's retry is accepted.
    harness.store.failing.store(false, Ordering::SeqCst);
    let answer = harness.post("/webhook/github", &headers, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn created_job_is_published_and_a_failing_sink_does_not_fail_the_request() {
    let harness = Harness::start().await;
    let body = fixture("github/pull_request.opened.json");
    let answer = harness
        .post(
            "/webhook/github",
            &fixture_headers("github/pull_request.opened.headers.json"),
            body,
        )
        .await;
    let events = harness.sink.events.lock().unwrap().clone();
    match events.as_slice() {
        [
            JobEvent::Created {
                job_id, input_data, ..
            },
        ] => {
            assert_eq!(answer.json["task_id"], job_id.as_str());
            let input = input_data.to_value();
            assert_eq!(input["room"], "pr-review");
            assert_eq!(input["event"], "pull_request.opened");
            assert_eq!(input["source"], "github");
            assert_eq!(input["priority"], 2);
        }
        other => panic!("expected one Created event, got {other:?}"),
    }

    harness.sink.failing.store(true, Ordering::SeqCst);
    let body = Bytes::from_static(b"{\"action\":\"closed\"}");
    let answer = harness
        .post(
            "/webhook/github",
            &github_headers("pull_request", "d-sink", &body),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(harness.tasks().await.len(), 2);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let harness = Harness::start_with(|b| {
        b.source_with(
            "limited",
            Arc::new(HuggingFaceVerifier::new(
                hookroom::verify::Secrets::try_from(HF_SECRET).unwrap(),
            )),
            Arc::new(GenericSource::new()),
            SourceOptions::new().rate_limit(RateLimit::new(1, 2)),
        )
    })
    .await;
    let secret = [h("x-webhook-secret", HF_SECRET)];
    let send = |n: u32| {
        let body = Bytes::from(format!("{{\"id\":\"{n}\",\"type\":\"repo.update\"}}"));
        harness.post("/webhook/limited", &secret, body)
    };
    // Unsigned requests do not use up the sender's budget.
    for _ in 0..5 {
        let forged = harness
            .post(
                "/webhook/limited",
                &[h("x-webhook-secret", "wrong")],
                Bytes::from_static(b"{}"),
            )
            .await;
        assert_error(&forged, 401, "signature_mismatch");
    }
    assert_eq!(send(1).await.status, StatusCode::ACCEPTED);
    assert_eq!(send(2).await.status, StatusCode::ACCEPTED);
    let limited = send(3).await;
    assert_error(&limited, 429, "rate_limited");
    assert_eq!(limited.headers["retry-after"], "1");
    // Other sources are not limited.
    let body = Bytes::from_static(b"{\"action\":\"opened\"}");
    for n in 0..5 {
        let answer = harness
            .post(
                "/webhook/github",
                &github_headers("pull_request", &format!("free-{n}"), &body),
                body.clone(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn allowlist_uses_the_peer_and_trusts_forwarded_only_from_proxies() {
    let allow_only_10 = |b: WebhookServiceBuilder| {
        b.source_with(
            "hf",
            Arc::new(HuggingFaceVerifier::new(
                hookroom::verify::Secrets::try_from(HF_SECRET).unwrap(),
            )),
            Arc::new(HuggingFaceSource::new()),
            SourceOptions::new().allow("10.0.0.0/8".parse().unwrap()),
        )
    };
    let body = fixture("huggingface/discussion.comment.create.json");
    let spoofed = [
        h("x-webhook-secret", HF_SECRET),
        h("x-forwarded-for", "10.1.2.3"),
    ];

    // The peer (127.0.0.1) is not a trusted proxy: its header is ignored.
    let harness = Harness::start_with(allow_only_10).await;
    let answer = harness.post("/webhook/hf", &spoofed, body.clone()).await;
    assert_error(&answer, 403, "address_not_allowed");

    // Loopback as a trusted proxy: the forwarded client counts.
    let harness =
        Harness::start_with(|b| allow_only_10(b).trusted_proxies(["127.0.0.0/8".parse().unwrap()]))
            .await;
    let answer = harness.post("/webhook/hf", &spoofed, body.clone()).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.json);
    let outside = [
        h("x-webhook-secret", HF_SECRET),
        h("x-forwarded-for", "203.0.113.5"),
    ];
    let answer = harness.post("/webhook/hf", &outside, body).await;
    assert_error(&answer, 403, "address_not_allowed");
}

#[tokio::test]
async fn health_and_operations_report_the_deliveries() {
    let harness = Harness::start().await;
    let health = harness.admin_get("/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "healthy");
    assert_eq!(
        health.json["components"]["sources"]["configured"],
        serde_json::json!(["generic", "github", "huggingface", "jira", "slack"])
    );

    let body = fixture("github/pull_request.opened.json");
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    harness
        .post("/webhook/github", &headers, body.clone())
        .await;
    harness.post("/webhook/github", &headers, body).await;
    harness
        .post("/webhook/nope", &[], Bytes::from_static(b"{}"))
        .await;

    let ops = harness.admin_get("/operations?limit=2").await;
    assert_eq!(ops.status, StatusCode::OK);
    assert_eq!(ops.json["total"], 3);
    let list = ops.json["operations"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["outcome"], "unknown_source");
    assert_eq!(list[0]["status"], 404);
    assert_eq!(list[1]["outcome"], "duplicate");
    assert_eq!(list[1]["event"], "pull_request.opened");
    assert_eq!(
        list[1]["delivery_id"],
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );
    assert_eq!(list[1]["room"], "pr-review");
}

#[tokio::test]
async fn prefix_moves_every_endpoint() {
    let harness = Harness::start_with(|b| b.prefix("/hooks/")).await;
    let body = fixture("github/pull_request.opened.json");
    let headers = fixture_headers("github/pull_request.opened.headers.json");
    let answer = harness
        .post("/hooks/webhook/github", &headers, body.clone())
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let answer = harness.post("/webhook/github", &headers, body).await;
    assert_error(&answer, 404, "not_found");
    let health = harness
        .send("GET", "/hooks/health", &[], Full::new(Bytes::new()).boxed())
        .await;
    assert_eq!(health.status, StatusCode::OK);
}

/// Sends `request` through `service` without a socket; the status and JSON.
async fn oneshot<S, B>(service: S, request: Request<axum::body::Body>) -> (StatusCode, Value)
where
    S: Service<Request<axum::body::Body>, Response = http::Response<B>, Error = Infallible>,
    B: Body,
    B::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    // axum's own 404 has an empty body.
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, json)
}

fn github_request(path: &str, delivery: &str) -> Request<axum::body::Body> {
    let body = Bytes::from_static(b"{\"action\":\"opened\"}");
    let mut request = Request::post(path);
    for (k, v) in github_headers("pull_request", delivery, &body) {
        request = request.header(k, v);
    }
    request.body(axum::body::Body::from(body)).unwrap()
}

fn plain_service(
    clock: ManualClock,
    tune: impl FnOnce(WebhookServiceBuilder) -> WebhookServiceBuilder,
) -> (WebhookService, Arc<FlakyStore>) {
    let store = Arc::new(FlakyStore::default());
    let sink = Arc::new(RecordingSink::default());
    (build_service(store.clone(), sink, clock, tune), store)
}

#[tokio::test]
async fn for_source_mounts_one_source_at_any_axum_path() {
    let (service, store) = plain_service(ManualClock::at_unix(NOW), |b| b);
    assert!(service.for_source("gitlab").is_none());
    let app = axum::Router::new()
        .route_service("/hooks/gh", service.for_source("github").unwrap())
        .route_service("/hooks/gh/{*rest}", service.for_source("github").unwrap());
    let (status, json) = oneshot(app.clone(), github_request("/hooks/gh", "mounted-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["room"], "pr-review");
    // The path is the host's: even one naming another source is github's.
    let (status, json) = oneshot(
        app.clone(),
        github_request("/hooks/gh/webhook/slack", "m-2"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    let tasks = store.list(&TaskQuery::default()).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t.source == "github"));
    // Anything else at that path is still checked: a bad signature is 401.
    let mut forged = github_request("/hooks/gh", "m-3");
    forged
        .headers_mut()
        .insert("x-hub-signature-256", "sha256=00".parse().unwrap());
    let (status, json) = oneshot(app.clone(), forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    let (status, _) = oneshot(app, github_request("/hooks/other", "m-4")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn source_name_extension_from_an_axum_capture_picks_the_source() {
    use axum::extract::Path;
    use axum::middleware::{self, Next};
    use hookroom::service::SourceName;

    async fn source_from_path(
        Path(provider): Path<String>,
        mut request: axum::extract::Request,
        next: Next,
    ) -> axum::response::Response {
        request.extensions_mut().insert(SourceName::new(provider));
        next.run(request).await
    }

    let (service, store) = plain_service(ManualClock::at_unix(NOW), |b| b);
    let app = axum::Router::new()
        .route_service("/in/{provider}", service)
        .route_layer(middleware::from_fn(source_from_path));
    let (status, json) = oneshot(app.clone(), github_request("/in/github", "ext-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(store.list(&TaskQuery::default()).await.unwrap().len(), 1);
    let (status, json) = oneshot(app, github_request("/in/gitlab", "ext-2")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{json}");
    assert_eq!(json["error"]["code"], "unknown_source");
}

#[tokio::test(start_paused = true)]
async fn rate_limit_ignores_a_wall_clock_stepped_back() {
    let clock = ManualClock::at_unix(NOW);
    let (service, _) = plain_service(clock.clone(), |b| {
        b.source_with(
            "github",
            Arc::new(GithubVerifier::new(
                hookroom::verify::Secrets::try_from(GITHUB_SECRET).unwrap(),
            )),
            Arc::new(GithubSource::new()),
            SourceOptions::new().rate_limit(RateLimit::new(1, 1)),
        )
    });
    let (status, _) = oneshot(service.clone(), github_request("/webhook/github", "r-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, json) = oneshot(service.clone(), github_request("/webhook/github", "r-2")).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &"rate_limited".into())
    );
    // The wall clock is stepped back an hour; one real second passes.
    clock.set_unix(NOW - 3600);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, json) = oneshot(service, github_request("/webhook/github", "r-3")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
}

#[tokio::test]
async fn operations_and_health_detail_need_an_admin_token() {
    let harness = Harness::start().await;
    for auth in [
        None,
        Some("Bearer admin"),
        Some("Bearer admin-new2"),
        Some("admin-new"),
    ] {
        let ops = harness.get("/operations", auth).await;
        assert_error(&ops, 401, "unauthorized");
        assert_eq!(ops.headers["www-authenticate"], "Bearer");
    }
    // Either token of a rotation works.
    for token in ["admin-new", "admin-old"] {
        let ops = harness
            .get("/operations", Some(&format!("Bearer {token}")))
            .await;
        assert_eq!(ops.status, StatusCode::OK, "{}", ops.json);
    }
    // Liveness needs nothing and says nothing more.
    let live = harness.get("/health", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.json, serde_json::json!({"status": "ok"}));
    let wrong = harness.get("/health", Some("Bearer nope")).await;
    assert_error(&wrong, 401, "unauthorized");
    let detail = harness.admin_get("/health").await;
    assert_eq!(detail.json["components"]["store"]["status"], "up");
}

#[tokio::test]
async fn without_admin_tokens_detail_and_operations_are_refused() {
    let (service, _) = plain_service(ManualClock::at_unix(NOW), |b| b);
    let gateway = Gateway::builder(service).build();
    let request = |path: &str, auth: Option<&str>| {
        let mut r = Request::get(path);
        if let Some(auth) = auth {
            r = r.header("authorization", auth);
        }
        r.body(axum::body::Body::empty()).unwrap()
    };
    let (status, json) = oneshot(gateway.clone(), request("/operations", Some("Bearer x"))).await;
    assert_eq!(
        (status.as_u16(), &json["error"]["code"]),
        (403, &"admin_not_configured".into())
    );
    let (status, json) = oneshot(gateway.clone(), request("/operations", None)).await;
    assert_eq!(
        (status.as_u16(), &json["error"]["code"]),
        (401, &"unauthorized".into())
    );
    let (status, json) = oneshot(gateway.clone(), request("/health", Some("Bearer x"))).await;
    assert_eq!(
        (status.as_u16(), &json["error"]["code"]),
        (403, &"admin_not_configured".into())
    );
    let (status, json) = oneshot(gateway, request("/health", None)).await;
    assert_eq!(
        (status, json),
        (StatusCode::OK, serde_json::json!({"status": "ok"}))
    );
}

#[tokio::test]
async fn unavailable_store_is_a_bare_503_and_the_probe_is_cached_for_a_second() {
    let harness = Harness::start().await;
    harness.store.failing.store(true, Ordering::SeqCst);
    let live = harness.get("/health", None).await;
    assert_eq!(live.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(live.json, serde_json::json!({"status": "unavailable"}));
    let probes = harness.store.gets.load(Ordering::SeqCst);
    // A flood within the second costs no further probe, and sees the
    // cached answer even though the store is back.
    harness.store.failing.store(false, Ordering::SeqCst);
    for _ in 0..20 {
        let live = harness.get("/health", None).await;
        assert_eq!(live.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(harness.store.gets.load(Ordering::SeqCst), probes);
    harness.clock.advance(Duration::from_secs(1));
    assert_eq!(harness.get("/health", None).await.status, StatusCode::OK);
    assert_eq!(harness.store.gets.load(Ordering::SeqCst), probes + 1);
    // A clock stepped back does not keep the cached answer forever.
    harness.store.failing.store(true, Ordering::SeqCst);
    harness.clock.set_unix(NOW - 3600);
    let live = harness.get("/health", None).await;
    assert_eq!(live.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(harness.store.gets.load(Ordering::SeqCst), probes + 2);
}

#[tokio::test]
async fn a_flood_of_unknown_sources_records_short_names() {
    let harness = Harness::start().await;
    let long = "x".repeat(16 * 1024);
    let answer = harness
        .post(&format!("/webhook/{long}"), &[], Bytes::from_static(b"{}"))
        .await;
    assert_error(&answer, 404, "unknown_source");
    let ops = harness.admin_get("/operations?limit=1").await;
    let source = ops.json["operations"][0]["source"].as_str().unwrap();
    assert!(source.chars().count() <= 65, "{} chars", source.len());
    assert!(source.ends_with('…'));
}
