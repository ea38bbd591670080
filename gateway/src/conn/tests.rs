//! The connection limits, held over real sockets: stalled headers, stalled
//! bodies, idle keep-alive connections and the connection cap.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Limits, serve};

/// How long a check waits before calling the server stuck.
const PATIENCE: Duration = Duration::from_secs(10);

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(900),
        max_connections: 10,
    }
}

/// The gateway's router shape in small: `/health` answers at once,
/// `/webhook/github` reads its whole body first.
async fn start(limits: Limits) -> SocketAddr {
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route(
            "/webhook/github",
            axum::routing::post(|body: bytes::Bytes| async move { body.len().to_string() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits, std::future::pending()));
    addr
}

/// Reads until the server closes the connection; what it sent, and how long
/// that took. Fails the test if it stays open past [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = tokio::time::Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server kept the connection open");
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

#[tokio::test]
async fn a_connection_that_stalls_in_its_headers_is_closed_within_the_header_timeout() {
    let addr = start(limits()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /webhook/github HTTP/1.1\r\nhost: x\r\ncontent-type: app")
        .await
        .unwrap();
    let (answer, took) = read_until_closed(&mut stream).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(took < PATIENCE);
}

#[tokio::test]
async fn a_silent_connection_is_closed_within_the_header_timeout() {
    let addr = start(limits()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (answer, _) = read_until_closed(&mut stream).await;
    assert!(answer.is_empty(), "{answer}");
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_gets_408_within_the_request_timeout() {
    let addr = start(limits()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /webhook/github HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"ac")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let addr = start(limits()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(HEALTH).await.unwrap();
    let (answer, took) = read_until_closed(&mut stream).await;
    // One answer, then the connection stayed open past the header timeout
    // (it was idle, not reading headers) and closed after the idle one.
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1);
    assert!(
        took >= limits().idle_timeout - Duration::from_millis(50),
        "{took:?}"
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let addr = start(limits()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for _ in 0..3 {
        stream.write_all(HEALTH).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let addr = start(Limits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    first.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    // The kernel completes the handshake, but nobody serves it.
    let mut second = TcpStream::connect(addr).await.unwrap();
    second.write_all(HEALTH).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond the connection limit");

    drop(first);
    let n = tokio::time::timeout(PATIENCE, second.read(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}
