//! The Task API as the example gateway serves it (`examples/support/task_api.rs`
//! through `examples/support/serve.rs`), over real sockets: a signed webhook
//! becomes a task an agent claims over HTTP, event streams outlive the idle
//! keep-alive timeout, waiting claims answer before the request timeout,
//! and paths that are not the Task API's stay the gateway's.

#![cfg(feature = "memory")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use hookroom::service::{ApiTokens, BearerTokens, Gateway, WebhookService};
use hookroom::task::{AnnouncingTaskStore, InMemoryTaskStore, TaskEvents, TaskStore};

#[path = "../examples/support/banner.rs"]
#[allow(dead_code)]
mod banner;
#[path = "../examples/support/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;
#[path = "../examples/support/serve.rs"]
mod serve;
#[path = "../examples/support/task_api.rs"]
#[allow(dead_code)]
mod task_api;

const TOKEN: &str = "t";
const PATIENCE: Duration = Duration::from_secs(10);

async fn start(limits: serve::Limits) -> SocketAddr {
    let events = Arc::new(TaskEvents::new());
    let store: Arc<dyn TaskStore> = Arc::new(AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::new()),
        Arc::clone(&events),
    ));
    let ingest = WebhookService::builder(pipeline::router(), Arc::clone(&store))
        .source(
            "github",
            pipeline::github_verifier(),
            pipeline::github_source(),
        )
        .build();
    let auth = task_api::ApiAuth {
        tokens: ApiTokens::new(
            BearerTokens::parse_list(TOKEN).unwrap(),
            BearerTokens::none(),
        ),
        dev_token: None,
    };
    let api = task_api::task_api(
        store,
        events,
        Arc::new(hookroom::status::NoopStatusSink),
        &auth,
        limits.request_timeout,
    );
    let app = task_api::WithTaskApi::new(Gateway::new(ingest), Some(api));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve::serve(listener, app, limits, std::future::pending()));
    addr
}

/// One request on its own connection; the status and the body.
async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{head}\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn deliver(addr: SocketAddr, delivery: &str) -> Value {
    let (body, signature) = pipeline::signed_pull_request();
    let (status, answer) = request(
        addr,
        &format!(
            "POST /webhook/github HTTP/1.1\r\nX-GitHub-Event: pull_request\r\n\
             X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\n\
             Content-Type: application/json"
        ),
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

/// The README's flow: a signed `pull_request.opened`, then a room claim.
#[tokio::test]
async fn a_signed_webhook_becomes_a_task_an_agent_claims_over_http() {
    let addr = start(serve::Limits::default()).await;
    let accepted = deliver(addr, "d-1").await;
    let (status, body) = request(
        addr,
        &format!("POST /api/rooms/pr-review/claim HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        br#"{"agent_id":"a1","lease_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claim: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(claim["task"]["id"], accepted["task_id"]);
    assert_eq!(claim["task"]["source_event"], "pull_request.opened");
    assert!(claim["claim_token"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn paths_that_are_not_the_task_apis_stay_the_gateways() {
    let addr = start(serve::Limits::default()).await;
    let (status, body) = request(
        addr,
        &format!("GET /api/jobs/x HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        b"",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"));
    let (status, _) = request(addr, "GET /health HTTP/1.1", b"").await;
    assert_eq!(status, 200);
    let (status, body) = request(addr, "GET /api/rooms HTTP/1.1", b"").await;
    assert_eq!((status, body.contains("unauthorized")), (401, true));
}

/// Regression: the serving loop counted an answer as finished once its
/// headers were out, so the idle keep-alive timeout closed event streams.
#[tokio::test]
async fn an_event_stream_outlives_the_idle_timeout() {
    let limits = serve::Limits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_millis(300),
        max_connections: 10,
    };
    let addr = start(limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/rooms/pr-review/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    seen.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // Three idle timeouts pass without a byte either way.
    tokio::time::sleep(Duration::from_millis(900)).await;
    deliver(addr, "d-2").await;
    while !seen.contains("event: task.created") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("the event in time")
            .unwrap();
        assert!(n > 0, "the stream was closed: {seen}");
        seen.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
    }
}

#[tokio::test]
async fn a_waiting_claim_answers_204_before_the_request_timeout() {
    let limits = serve::Limits {
        request_timeout: Duration::from_secs(3),
        ..serve::Limits::default()
    };
    let addr = start(limits).await;
    let (status, body) = request(
        addr,
        &format!("POST /api/rooms/pr-review/claim HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        br#"{"agent_id":"a1","lease_seconds":30,"wait_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
}

#[test]
fn the_banner_says_whether_the_api_is_on_and_how_to_reach_it() {
    let listen: SocketAddr = "127.0.0.1:8935".parse().unwrap();
    let off = task_api::ApiAuth {
        tokens: ApiTokens::default(),
        dev_token: None,
    };
    assert!(!off.enabled());
    assert!(task_api::banner(listen, &off).contains("Task API: off"));

    let dev = task_api::ApiAuth {
        tokens: ApiTokens::new(
            BearerTokens::parse_list("hookroom-dev-hookroom-api-token").unwrap(),
            BearerTokens::none(),
        ),
        dev_token: Some(banner::dev_secret(task_api::API_TOKEN_VAR)),
    };
    let text = task_api::banner(listen, &dev);
    assert!(
        text.contains("Bearer hookroom-dev-hookroom-api-token"),
        "{text}"
    );
    assert!(text.contains("/api/rooms/pr-review/claim"), "{text}");

    let real = task_api::ApiAuth {
        tokens: ApiTokens::new(
            BearerTokens::parse_list("s3cret-a,s3cret-b").unwrap(),
            BearerTokens::none(),
        ),
        dev_token: None,
    };
    let text = task_api::banner(listen, &real);
    assert!(text.contains("2 from HOOKROOM_API_TOKEN"), "{text}");
    assert!(
        !text.contains("s3cret"),
        "a real token is never printed: {text}"
    );
}
