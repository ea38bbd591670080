//! Unit tests of the HTTP task store's plumbing.

use super::error::*;
use super::watch::*;
use crate::lifecycle::JobStatus;
use http::StatusCode;

use super::*;

#[test]
fn event_stream_parsing() {
    let mut parser = SseParser::new(crate::http::task_store::DEFAULT_MAX_EVENT_BYTES);
    let stream = b": keep-alive\n\nid: 7\nevent: task.created\ndata: {\"id\":\"t1\",\"room\":\"r\",\"title\":\"x\",\"status\":\"PENDING\"}\n\nid: 8\r\nevent: task.claimed\r\ndata: {\"id\":\"t1\",\"status\":\"RUNNING\"}\r\n\r\n";
    // Split mid-line: the parser keeps the rest for the next chunk.
    let (a, b) = stream.split_at(60);
    let mut events = parser.push(a);
    events.extend(parser.push(b));
    assert_eq!(
        events,
        vec![
            SseEvent {
                id: Some(7),
                pending_task: Some(TaskId::from("t1")),
            },
            SseEvent {
                id: Some(8),
                pending_task: None,
            },
        ]
    );
}

#[test]
fn segments_are_percent_encoded() {
    assert_eq!(segment("pr-review"), "pr-review");
    assert_eq!(segment("a b/c%"), "a%20b%2Fc%25");
    assert_eq!(segment("é"), "%C3%A9");
}

#[test]
fn builder_refuses_unusable_urls_and_redacts_the_token() {
    for url in ["ftp://x", "not a url", "/api", "http://h/?q=1"] {
        assert!(matches!(
            HttpTaskStore::builder(url, "t").build(),
            Err(HttpStoreError::InvalidUrl { .. })
        ));
    }
    assert!(matches!(
        HttpTaskStore::builder("http://h", "bad\ntoken").build(),
        Err(HttpStoreError::InvalidUrl { .. })
    ));
    let builder = HttpTaskStore::builder("http://127.0.0.1:1/", "secret-token");
    assert!(!format!("{builder:?}").contains("secret-token"));
    let store = builder.build().unwrap();
    assert!(!format!("{store:?}").contains("secret-token"));
}

#[test]
fn retry_safety() {
    assert!(HttpStoreError::Connect { detail: "x".into() }.retry_safe());
    assert!(!HttpStoreError::Timeout { idempotent: false }.retry_safe());
    assert!(HttpStoreError::Timeout { idempotent: true }.retry_safe());
    let status = |status, idempotent| HttpStoreError::Status {
        status,
        code: None,
        message: String::new(),
        idempotent,
    };
    assert!(status(503, true).retry_safe());
    assert!(!status(503, false).retry_safe());
    assert!(!status(401, true).retry_safe());
    assert!(
        HttpStoreError::Timeout { idempotent: false }
            .to_string()
            .contains("may have been applied")
    );
    assert!(
        HttpStoreError::Connect { detail: "x".into() }
            .to_string()
            .contains("a retry is safe")
    );
}

#[test]
fn refusals_are_rebuilt() {
    let id = TaskId::from("t1");
    let body = br#"{"error":{"code":"invalid_transition","message":"m","task_id":"t1","task_status":"DONE","operation":"complete"}}"#;
    assert!(matches!(
        refusal(StatusCode::CONFLICT, body, None, Effect::Write),
        StoreError::InvalidTransition { id: got, from: JobStatus::Done, operation: crate::task::TaskOperation::Complete } if got == id
    ));
    let body = br#"{"error":{"code":"task_not_claimable","message":"m","task_id":"t1","refusal":"not_yet_due"}}"#;
    assert!(matches!(
        refusal(StatusCode::CONFLICT, body, None, Effect::Write),
        StoreError::NotClaimable {
            reason: crate::task::ClaimRefusal::NotYetDue,
            ..
        }
    ));
    let body = br#"{"error":{"code":"unauthorized","message":"m"}}"#;
    assert!(matches!(
        refusal(StatusCode::UNAUTHORIZED, body, None, Effect::Read),
        StoreError::Backend {
            store: HTTP_STORE,
            ..
        }
    ));
    assert!(matches!(
        refusal(StatusCode::BAD_GATEWAY, b"<html>", Some(&id), Effect::Read),
        StoreError::Backend { .. }
    ));
}

#[test]
fn the_event_stream_buffer_stays_within_the_limit() {
    let mut parser = SseParser::new(64 * 1024);
    let piece = vec![b'x'; 1000];
    assert!(parser.push(b"id: 1\ndata: ").is_empty());
    for _ in 0..(4 * (64 * 1024) / piece.len()) {
        assert!(parser.push(&piece).is_empty());
        assert!(
            parser.buffered() <= (64 * 1024),
            "{} bytes",
            parser.buffered()
        );
    }
    let events = parser.push(b"\n\nid: 2\ndata: {\"id\":\"t\",\"status\":\"PENDING\"}\n\n");
    assert_eq!(parser.take_skipped(), 1);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].pending_task.as_ref().map(|t| t.as_str()),
        Some("t")
    );
}
