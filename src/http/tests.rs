//! The clients' answer limits, against a local server that answers too
//! much.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::agent::testing::task;
use crate::agent::{Agent, AgentError, JobHandle};
use crate::status::{JobEvent, JobInput, SinkError, StatusSink};
use crate::task::{StoreError, TaskStore};

/// The limit the clients are given in these tests.
const LIMIT: usize = 64 * 1024;

/// A server that answers every request `200` with a chunked JSON-looking
/// body that never ends (until the client hangs up), counting requests.
async fn endless_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                              transfer-encoding: chunked\r\n\r\n1\r\n\"\r\n";
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "x".repeat(16 * 1024));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn an_agent_endpoint_answering_without_end_fails_the_task_at_the_limit() {
    let (addr, _) = endless_server().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let agent = HttpAgent::new("a", &format!("http://{addr}/hook"), secret)
        .unwrap()
        .with_max_response_bytes(LIMIT)
        .with_timeout(Duration::from_secs(10));
    let task = task("room", "t", r#"{"n":1}"#);
    let (job, _recorder) = JobHandle::recording(task.clone());
    let error = agent.handle(task, &job).await.unwrap_err();
    let AgentError::Permanent(source) = error else {
        panic!("expected a permanent failure, got {error:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<ResponseBodyError>(),
            Some(ResponseBodyError::TooLarge { limit: LIMIT })
        ),
        "{source}"
    );
}

#[tokio::test]
async fn a_jobs_api_answering_without_end_fails_the_update_once_at_the_limit() {
    let (addr, requests) = endless_server().await;
    let sink = HttpStatusSink::builder(format!("http://{addr}/api"))
        .retry_policy(RetryPolicy {
            timeout: Duration::from_secs(10),
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
        .max_response_bytes(LIMIT)
        .build()
        .unwrap();
    let error = sink
        .publish(JobEvent::Created {
            job_id: "j1".into(),
            at: time::OffsetDateTime::now_utc(),
            input_data: JobInput::null(),
            metadata: serde_json::Map::new(),
        })
        .await
        .unwrap_err();
    let SinkError::Network { source, .. } = error else {
        panic!("expected a network error, got {error:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<ResponseBodyError>(),
            Some(ResponseBodyError::TooLarge { limit: LIMIT })
        ),
        "{source}"
    );
    // The same request would get the same answer: not retried.
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_task_api_answering_without_end_is_response_too_large() {
    let (addr, _) = endless_server().await;
    let store = HttpTaskStore::builder(format!("http://{addr}"), "t")
        .timeout(Duration::from_secs(10))
        .max_response_bytes(LIMIT)
        .build()
        .unwrap();
    let error = store.get(&"t1".into()).await.unwrap_err();
    let StoreError::Backend { source, .. } = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<HttpStoreError>(),
            Some(HttpStoreError::ResponseTooLarge {
                limit: LIMIT,
                idempotent: true
            })
        ),
        "{error}"
    );
}

/// A server whose event stream sends one event far over the limit, in
/// pieces, then a small `PENDING` one.
async fn oversized_event_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let mut body = Vec::new();
                body.extend_from_slice(
                    b"id: 1\ndata: {\"id\":\"big\",\"status\":\"PENDING\",\"x\":\"",
                );
                body.extend(std::iter::repeat_n(b'x', 4 * LIMIT));
                body.extend_from_slice(
                    b"\"}\n\nid: 2\ndata: {\"id\":\"small\",\"status\":\"PENDING\"}\n\n",
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                for piece in body.chunks(1000) {
                    if stream.write_all(piece).await.is_err() {
                        return;
                    }
                }
                // Keep the stream open so the client does not reconnect.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn watch_skips_an_event_over_the_limit_and_goes_on_with_the_next() {
    let addr = oversized_event_server().await;
    let store = HttpTaskStore::builder(format!("http://{addr}"), "t")
        .max_event_bytes(LIMIT)
        .build()
        .unwrap();
    let mut watch = store.watch("room").expect("a runtime is running");
    let id = tokio::time::timeout(Duration::from_secs(10), watch.recv())
        .await
        .expect("an event within 10 s")
        .unwrap();
    assert_eq!(id.as_str(), "small");
}
