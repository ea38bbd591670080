//! The Task API as `hookroom serve` serves it, over real sockets: a signed
//! webhook becomes a task an agent claims over HTTP, event streams outlive
//! the idle keep-alive timeout, waiting claims answer before the request
//! timeout, and paths that are not the Task API's stay the gateway's.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Gateway, PATIENCE, TOKEN, deliver, request};

/// The README's flow: a signed `pull_request.opened`, then a room claim.
#[tokio::test]
async fn a_signed_webhook_becomes_a_task_an_agent_claims_over_http() {
    let gateway = Gateway::start(&[]);
    let addr = gateway.addr;
    let accepted = deliver(addr, "d-1").await.1;
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
    let gateway = Gateway::start(&[]);
    let addr = gateway.addr;
    let (status, body) = request(
        addr,
        &format!("GET /api/nothing HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
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

/// An answer counts as in progress until its body ends, so the idle
/// keep-alive timeout never closes an event stream.
#[tokio::test]
async fn an_event_stream_outlives_the_idle_timeout() {
    let gateway = Gateway::start(&["--header-timeout", "1", "--idle-timeout", "1"]);
    let addr = gateway.addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /api/rooms/pr-review/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
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
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(deliver(addr, "d-2").await.0, 202);
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
    let gateway = Gateway::start(&["--request-timeout", "3"]);
    let addr = gateway.addr;
    let (status, body) = request(
        addr,
        &format!("POST /api/rooms/pr-review/claim HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        br#"{"agent_id":"a1","lease_seconds":30,"wait_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
}
