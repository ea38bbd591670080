//! `HttpTaskStore` against the Task API over 127.0.0.1, backed by an
//! `InMemoryTaskStore`: the conformance suite, the admin routes, and what a
//! store over the network adds (refusals rebuilt, failures that say whether
//! a retry is safe).
#![cfg(all(feature = "http-client", feature = "integration"))]

use crate::support;
use support::serve::serve;
use support::tasks::push_task;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hookroom::clock::ManualClock;
use hookroom::http::{HttpStoreError, HttpTaskStore};
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{
    AnnouncingTaskStore, InMemoryTaskStore, NewTask, Payload, StoreError, TaskEvents, TaskStore,
};

const AGENT: &str = "agent-token";
const ADMIN: &str = "admin-token";

fn tokens() -> ApiTokens {
    ApiTokens::new(
        BearerTokens::parse_list(AGENT).unwrap(),
        BearerTokens::parse_list(ADMIN).unwrap(),
    )
}

/// The tokens' principals with a rate no test reaches.
fn unlimited() -> hookroom::auth::Principals {
    let many = std::num::NonZeroU32::new(1_000_000).unwrap();
    hookroom::auth::Principals::builder()
        .rate_limit(hookroom::auth::RateLimit {
            per_second: many,
            burst: many,
        })
        .environment(&tokens())
        .build()
}

/// A Task API on `clock` with an event hub (so `watch` works), and its
/// address. The conformance suite's races send thousands of requests at
/// once: the rate limit is set out of their way.
async fn api_on(clock: ManualClock) -> SocketAddr {
    let events = Arc::new(TaskEvents::new());
    let backing = Arc::new(AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::with_clock(Arc::new(clock.clone()))),
        events.clone(),
    ));
    serve(
        TaskApi::builder(backing, unlimited())
            .clock(Arc::new(clock))
            .events(events)
            .keep_alive(Duration::from_millis(200))
            .build(),
    )
    .await
}

fn client(addr: SocketAddr, token: &str) -> HttpTaskStore {
    HttpTaskStore::builder(format!("http://{addr}"), token)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn new_task(delivery: &str) -> NewTask {
    NewTask {
        payload: Payload::from(br#"{"zeta":1, "alpha":2}"#.to_vec()),
        ..push_task("room one", delivery)
    }
}

fn http_error(e: &StoreError) -> &HttpStoreError {
    match e {
        StoreError::Backend {
            store: "http",
            source,
        } => source
            .downcast_ref::<HttpStoreError>()
            .expect("an HttpStoreError"),
        other => panic!("expected an http backend error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_over_loopback() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let addr = api_on(clock.clone()).await;
    let store: Arc<dyn TaskStore> = Arc::new(client(addr, ADMIN));
    assert!(store.watch("any").is_some(), "watch_notifies runs");
    hookroom::conformance::task_store::run_all(store, &clock).await;
}

#[tokio::test]
async fn admin_routes_need_an_admin_token() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let addr = api_on(clock).await;
    let agent = client(addr, AGENT);
    let e = agent.insert(new_task("1")).await.unwrap_err();
    assert!(
        matches!(http_error(&e), HttpStoreError::Status { status: 403, code: Some(code), .. } if code == "forbidden"),
        "{e:?}"
    );
    assert!(!http_error(&e).retry_safe());
    let e = agent.expire_pending().await.unwrap_err();
    assert!(matches!(
        http_error(&e),
        HttpStoreError::Status { status: 403, .. }
    ));

    // The admin inserts; the agent sees the task, its payload byte for byte.
    let admin = client(addr, ADMIN);
    let inserted = admin.insert(new_task("1")).await.unwrap();
    assert!(!inserted.duplicate);
    assert!(admin.insert(new_task("1")).await.unwrap().duplicate);
    let task = agent.get(&inserted.id).await.unwrap().unwrap();
    assert_eq!(task.room, "room one");
    assert_eq!(task.payload.as_bytes(), br#"{"zeta":1, "alpha":2}"#);
}

#[tokio::test]
async fn a_wrong_token_is_a_backend_error_that_will_fail_again() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let addr = api_on(clock).await;
    let e = client(addr, "wrong").get(&"x".into()).await.unwrap_err();
    let error = http_error(&e);
    assert!(matches!(error, HttpStoreError::Status { status: 401, .. }));
    assert!(!error.retry_safe());
    assert!(
        !e.to_string().contains("wrong"),
        "the token is never echoed"
    );
}

#[tokio::test]
async fn no_server_is_a_connect_error_safe_to_retry() {
    // A port that was just free: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let e = client(addr, ADMIN)
        .complete(&"x".into(), &hookroom::task::ClaimToken::new("c"), None)
        .await
        .unwrap_err();
    let error = http_error(&e);
    assert!(matches!(error, HttpStoreError::Connect { .. }), "{error:?}");
    assert!(error.retry_safe());
    assert!(e.to_string().contains("a retry is safe"));
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_change_is_not_known_safe_to_retry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, reads nothing, answers nothing.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let store = HttpTaskStore::builder(format!("http://{addr}"), ADMIN)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = store
        .release(&"x".into(), &hookroom::task::ClaimToken::new("c"))
        .await
        .unwrap_err();
    let error = http_error(&e);
    assert!(matches!(
        error,
        HttpStoreError::Timeout { idempotent: false }
    ));
    assert!(!error.retry_safe());
    let e = store.get(&"x".into()).await.unwrap_err();
    assert!(http_error(&e).retry_safe(), "a read is safe to retry");
}

#[tokio::test]
async fn join_and_a_waiting_claim_get_a_task_stored_during_the_wait() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let addr = api_on(clock).await;
    let agent = client(addr, AGENT);
    let joined = agent
        .join("room one", "a1", &["review".to_owned()])
        .await
        .unwrap();
    assert_eq!(joined.room, "room one");
    assert_eq!(joined.agent.capabilities, vec!["review".to_owned()]);

    let request = hookroom::task::ClaimRequest {
        room: "room one".into(),
        agent: "a1".into(),
        capabilities: vec![],
        lease: Duration::from_secs(30),
    };
    let waiting = {
        let agent = agent.clone();
        let request = request.clone();
        tokio::spawn(async move { agent.claim_wait(&request, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = client(addr, ADMIN).insert(new_task("w")).await.unwrap().id;
    let claimed = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the waiting claim answers once the task is stored")
        .unwrap()
        .unwrap()
        .expect("a task");
    assert_eq!(claimed.task.id, id);
    assert_eq!(claimed.task.claimed_by.as_deref(), Some("a1"));
    // Nothing left: a short wait answers None.
    assert!(
        agent
            .claim_wait(&request, Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn watch_hears_of_tasks_that_become_claimable() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let addr = api_on(clock).await;
    let admin = client(addr, ADMIN);
    let agent = client(addr, AGENT);
    let mut watch = agent.watch("room one").expect("a runtime is running");
    let next = |watch: &mut tokio::sync::broadcast::Receiver<hookroom::task::TaskId>| {
        let mut watch = watch.resubscribe();
        async move {
            tokio::time::timeout(Duration::from_secs(10), watch.recv())
                .await
                .expect("a notification")
                .unwrap()
        }
    };
    // Stored right after `watch`, before the stream may be connected: the
    // first connection replays what the server buffered.
    let id = admin.insert(new_task("1")).await.unwrap().id;
    let heard = tokio::time::timeout(Duration::from_secs(10), watch.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(heard, id);
    let request = hookroom::task::ClaimRequest {
        room: "room one".into(),
        agent: "a1".into(),
        capabilities: vec![],
        lease: Duration::from_secs(30),
    };
    let claimed = agent.claim(&request).await.unwrap().unwrap();
    let released = next(&mut watch);
    agent.release(&id, &claimed.token).await.unwrap();
    assert_eq!(
        released.await,
        id,
        "a release makes the task claimable again"
    );
}

/// A TCP proxy to `upstream` whose open connections can be cut at once.
async fn cutting_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<tokio::sync::Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(tokio::sync::Notify::new());
    let cut_all = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = cut.notified() => {}
                }
            });
        }
    });
    (addr, cut_all)
}

#[tokio::test]
async fn watch_resumes_after_a_dropped_connection_without_repeats_or_gaps() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let server = api_on(clock).await;
    let (proxy, cut) = cutting_proxy(server).await;
    let admin = client(server, ADMIN);
    let watcher = client(proxy, AGENT);
    let mut watch = watcher.watch("room one").unwrap();
    let recv = async |watch: &mut tokio::sync::broadcast::Receiver<hookroom::task::TaskId>| {
        tokio::time::timeout(Duration::from_secs(10), watch.recv())
            .await
            .expect("a notification")
            .unwrap()
    };
    let first = admin.insert(new_task("1")).await.unwrap().id;
    assert_eq!(recv(&mut watch).await, first);

    // The stream drops; a task stored before it is reopened is heard after
    // the reconnect (Last-Event-ID), and the first one is not repeated.
    cut.notify_waiters();
    let second = admin.insert(new_task("2")).await.unwrap().id;
    assert_eq!(recv(&mut watch).await, second);
    let third = admin.insert(new_task("3")).await.unwrap().id;
    assert_eq!(recv(&mut watch).await, third);
}

/// The admin routes and the error details, as raw HTTP answers.
#[tokio::test]
async fn admin_routes_and_error_details_on_the_wire() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let api = TaskApi::builder(Arc::new(InMemoryTaskStore::new()), tokens()).build();
    let call = async |method: &str, path: &str, token: &str, body: String| {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let response = api.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default(),
        )
    };
    let insert = serde_json::to_string(&hookroom::api::task::InsertBody::from_new_task(&new_task(
        "d1",
    )))
    .unwrap();
    let (status, body) = call("POST", "/api/rooms/r/tasks", AGENT, insert.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) = call("POST", "/api/rooms/r/tasks", ADMIN, insert.clone()).await;
    assert_eq!((status, body["duplicate"].as_bool()), (201, Some(false)));
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = call("POST", "/api/rooms/r/tasks", ADMIN, insert).await;
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(true)));
    let (status, body) = call("POST", "/api/rooms/r/tasks", ADMIN, "{}".into()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("title"),
        "{body}"
    );

    let claim = r#"{"agent_id":"a1","lease_seconds":30}"#.to_owned();
    let (status, claimed) = call(
        "POST",
        &format!("/api/tasks/{id}/claim"),
        AGENT,
        claim.clone(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call("POST", &format!("/api/tasks/{id}/claim"), AGENT, claim).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["refusal"], "held");
    assert_eq!(body["error"]["task_id"], id.as_str());
    let done = format!(r#"{{"claim_token":{}}}"#, claimed["claim_token"]);
    assert_eq!(
        call(
            "POST",
            &format!("/api/tasks/{id}/done"),
            AGENT,
            done.clone()
        )
        .await
        .0,
        200
    );
    let ask = format!(
        r#"{{"claim_token":{},"prompt":"?"}}"#,
        claimed["claim_token"]
    );
    let (status, body) = call("POST", &format!("/api/tasks/{id}/ask"), AGENT, ask).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "invalid_transition");
    assert_eq!(body["error"]["task_status"], "DONE");
    assert_eq!(body["error"]["operation"], "request_input");

    let (status, body) = call("POST", "/api/tasks/expire", ADMIN, String::new()).await;
    assert_eq!(
        (status, body["tasks"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (status, body) = call("GET", "/api/tasks", AGENT, String::new()).await;
    assert_eq!(
        (status, body["tasks"].as_array().map(Vec::len)),
        (200, Some(1))
    );
}
