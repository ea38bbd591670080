//! Black-box tests of the Task API: every endpoint and error answer through
//! `tower::ServiceExt::oneshot`, the event stream, waiting claims, racing
//! claims, and one run over a real 127.0.0.1 socket.
#![cfg(feature = "memory")]

use crate::support;
use support::serve::serve;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use hookroom::clock::ManualClock;
use hookroom::service::task_api::ResponseBody;
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{
    AnnouncingTaskStore, InMemoryTaskStore, NewTask, TaskEvents, TaskId, TaskStore,
};

const AGENT: &str = "agent-token";
const ADMIN: &str = "admin-token";

struct Fixture {
    api: TaskApi,
    store: Arc<AnnouncingTaskStore>,
    events: Arc<TaskEvents>,
    clock: Arc<ManualClock>,
}

fn tokens() -> ApiTokens {
    ApiTokens::new(
        BearerTokens::parse_list(AGENT).unwrap(),
        BearerTokens::parse_list(ADMIN).unwrap(),
    )
}

fn fixture_with(
    events: TaskEvents,
    configure: impl FnOnce(
        hookroom::service::task_api::TaskApiBuilder,
    ) -> hookroom::service::task_api::TaskApiBuilder,
) -> Fixture {
    let clock = Arc::new(ManualClock::now_utc());
    let events = Arc::new(events);
    let store = Arc::new(AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::with_clock(clock.clone())),
        Arc::clone(&events),
    ));
    let api = configure(
        TaskApi::builder(store.clone(), tokens())
            .events(Arc::clone(&events))
            .clock(clock.clone()),
    )
    .build();
    Fixture {
        api,
        store,
        events,
        clock,
    }
}

fn fixture() -> Fixture {
    fixture_with(TaskEvents::new(), |b| b)
}

fn new_task(room: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.into(),
        title: format!("[PR] opened #{delivery}"),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "pull_request.opened".into(),
        source_url: Some(format!("https://github.com/o/r/pull/{delivery}")),
        delivery_id: delivery.into(),
        payload: r#"{"action":"opened","number":42}"#.into(),
        required_capabilities: vec![],
        ttl: None,
    }
}

async fn insert(f: &Fixture, room: &str, delivery: &str) -> TaskId {
    f.store.insert(new_task(room, delivery)).await.unwrap().id
}

fn request(method: Method, path: &str, token: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

async fn send_as(
    api: &TaskApi,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let response = api
        .clone()
        .oneshot(request(method, path, token, body))
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts.status, parts.headers, value)
}

async fn send(api: &TaskApi, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, value) = send_as(api, Some(AGENT), method, path, body).await;
    (status, value)
}

/// As an admin: answering `NEEDS_INPUT` is an operator's or admin's, not
/// an agent's.
async fn answer(api: &TaskApi, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, value) = send_as(api, Some(ADMIN), method, path, body).await;
    (status, value)
}

async fn claim(api: &TaskApi, id: &TaskId) -> String {
    let (status, body) = send(
        api,
        Method::POST,
        &format!("/api/tasks/{id}/claim"),
        r#"{"agent_id":"a1","lease_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["claim_token"].as_str().unwrap().to_owned()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

// ---- authentication ----

#[tokio::test]
async fn every_route_needs_an_agent_or_admin_token_and_none_is_echoed() {
    let f = fixture();
    for (method, path) in [
        (Method::GET, "/api/rooms"),
        (Method::GET, "/api/rooms/r/tasks"),
        (Method::POST, "/api/rooms/r/claim"),
        (Method::GET, "/api/tasks/x"),
        (Method::GET, "/api/events"),
        (Method::GET, "/api/no-such-route"),
    ] {
        for token in [None, Some("wrong-s3cret"), Some("")] {
            let (status, headers, body) = send_as(&f.api, token, method.clone(), path, "").await;
            assert_eq!(status, 401, "{method} {path} {token:?}");
            assert_eq!(code(&body), "unauthorized");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert!(!body.to_string().contains("s3cret"));
        }
    }
    let (status, _, _) = send_as(&f.api, Some(ADMIN), Method::GET, "/api/rooms", "").await;
    assert_eq!(status, 200, "an admin token may do what an agent token may");
    let (status, _, _) = send_as(&f.api, Some(AGENT), Method::GET, "/api/rooms", "").await;
    assert_eq!(status, 200);
}

// ---- routing errors ----

#[tokio::test]
async fn unknown_routes_wrong_methods_and_bad_paths() {
    let f = fixture();
    let (status, body) = send(&f.api, Method::GET, "/api/tasks/x/explode", "").await;
    assert_eq!((status.as_u16(), code(&body)), (404, "not_found"));
    let (status, headers, body) =
        send_as(&f.api, Some(AGENT), Method::GET, "/api/rooms/r/claim", "").await;
    assert_eq!((status.as_u16(), code(&body)), (405, "method_not_allowed"));
    assert_eq!(headers["allow"], "POST");
    let (status, body) = send(&f.api, Method::POST, "/api/rooms/%ff/claim", "{}").await;
    assert_eq!((status.as_u16(), code(&body)), (400, "invalid_path"));
}

// ---- rooms, membership ----

#[tokio::test]
async fn rooms_count_tasks_per_status_and_list_joined_agents() {
    let f = fixture();
    let first = insert(&f, "pr-review", "1").await;
    f.clock.advance(Duration::from_secs(90));
    insert(&f, "pr-review", "2").await;
    insert(&f, "triage", "3").await;
    let token = claim(&f.api, &first).await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{first}/done"),
        &json!({"claim_token": token, "result": "approved"}).to_string(),
    )
    .await;
    let (status, joined) = send(
        &f.api,
        Method::POST,
        "/api/rooms/empty-room/join",
        r#"{"agent_id":"gemini","capabilities":["typescript","review"]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(joined["expires_after_seconds"], 300);
    f.clock.advance(Duration::from_secs(10));

    let (status, body) = send(&f.api, Method::GET, "/api/rooms", "").await;
    assert_eq!(status, 200);
    let rooms = body["rooms"].as_array().unwrap();
    let names: Vec<&str> = rooms.iter().map(|r| r["room"].as_str().unwrap()).collect();
    assert_eq!(names, ["empty-room", "pr-review", "triage"]);
    assert_eq!(rooms[0]["agents"][0]["agent_id"], "gemini");
    assert_eq!(
        rooms[0]["agents"][0]["capabilities"],
        json!(["typescript", "review"])
    );
    assert!(rooms[0]["agents"][0]["last_seen"].is_string());
    assert_eq!(
        rooms[1]["counts"],
        json!({"pending":1,"running":0,"needs_input":0,"done":1,"failed":0})
    );
    assert_eq!(rooms[1]["oldest_pending_age_seconds"], 10);
    // The claim by id joined a1 to the task's room.
    assert_eq!(rooms[1]["agents"][0]["agent_id"], "a1");
    assert_eq!(rooms[2]["counts"]["pending"], 1);
}

#[tokio::test]
async fn room_counts_cover_more_tasks_than_one_scan_page() {
    let f = fixture();
    for n in 0..1203 {
        insert(&f, if n % 3 == 0 { "a" } else { "b" }, &n.to_string()).await;
    }
    let (_, body) = send(&f.api, Method::GET, "/api/rooms", "").await;
    assert_eq!(body["rooms"][0]["counts"]["pending"], 401);
    assert_eq!(body["rooms"][1]["counts"]["pending"], 802);
}

#[tokio::test]
async fn membership_lapses_after_the_silence_and_leave_removes_it() {
    let f = fixture_with(TaskEvents::new(), |b| {
        b.membership_ttl(Duration::from_secs(60))
    });
    let join = r#"{"agent_id":"a1","capabilities":["rust"]}"#;
    send(&f.api, Method::POST, "/api/rooms/r/join", join).await;
    send(
        &f.api,
        Method::POST,
        "/api/rooms/r/join",
        r#"{"agent_id":"a2"}"#,
    )
    .await;
    f.clock.advance(Duration::from_secs(45));
    // A room claim refreshes a1 (nothing to claim: 204).
    let (status, _) = send(
        &f.api,
        Method::POST,
        "/api/rooms/r/claim",
        r#"{"agent_id":"a1","capabilities":["rust"],"lease_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 204);
    f.clock.advance(Duration::from_secs(30));
    let agents = |body: Value| -> Vec<String> {
        body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["agents"].as_array().unwrap().clone())
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        agents(send(&f.api, Method::GET, "/api/rooms", "").await.1),
        ["a1"]
    );
    let (status, _) = send(&f.api, Method::DELETE, "/api/rooms/r/agents/a1", "").await;
    assert_eq!(status, 204);
    assert!(agents(send(&f.api, Method::GET, "/api/rooms", "").await.1).is_empty());
    // Leaving twice is fine.
    let (status, _) = send(&f.api, Method::DELETE, "/api/rooms/r/agents/a1", "").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn join_refuses_a_bad_body_naming_the_field() {
    let f = fixture();
    for (body, code_, field) in [
        ("{", "invalid_json", None),
        ("[]", "invalid_json", None),
        ("{}", "missing_field", Some("agent_id")),
        (r#"{"agent_id":7}"#, "invalid_field", Some("agent_id")),
        (
            r#"{"agent_id":"a","capabilities":"rust"}"#,
            "invalid_field",
            Some("capabilities"),
        ),
    ] {
        let (status, answer) = send(&f.api, Method::POST, "/api/rooms/r/join", body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&answer), code_, "{body}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{body}");
    }
}

// ---- task lists ----

#[tokio::test]
async fn task_pages_run_newest_first_with_a_cursor_and_filters() {
    let f = fixture();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(insert(&f, "r", &n.to_string()).await);
        f.clock.advance(Duration::from_secs(1));
    }
    insert(&f, "other", "x").await;
    let mut seen = Vec::new();
    let mut path = "/api/rooms/r/tasks?limit=2".to_owned();
    loop {
        let (status, body) = send(&f.api, Method::GET, &path, "").await;
        assert_eq!(status, 200, "{body}");
        for task in body["tasks"].as_array().unwrap() {
            seen.push(TaskId::from(task["id"].as_str().unwrap()));
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/rooms/r/tasks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    claim(&f.api, &ids[0]).await;
    let (_, body) = send(&f.api, Method::GET, "/api/rooms/r/tasks?status=running", "").await;
    assert_eq!(body["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(body["next_cursor"], Value::Null);
    let (_, body) = send(&f.api, Method::GET, "/api/rooms/r/tasks?source=slack", "").await;
    assert!(body["tasks"].as_array().unwrap().is_empty());
    let (_, body) = send(&f.api, Method::GET, "/api/rooms/r/tasks?source=github", "").await;
    assert_eq!(body["tasks"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn task_pages_refuse_bad_parameters_naming_them() {
    let f = fixture();
    for (query, code_, field) in [
        ("status=SLEEPING", "invalid_query", "status"),
        ("limit=0", "invalid_query", "limit"),
        ("limit=501", "invalid_query", "limit"),
        ("limit=x", "invalid_query", "limit"),
        ("cursor=no-such-task", "invalid_cursor", "cursor"),
    ] {
        let (status, body) = send(
            &f.api,
            Method::GET,
            &format!("/api/rooms/r/tasks?{query}"),
            "",
        )
        .await;
        assert_eq!((status.as_u16(), code(&body)), (400, code_), "{query}");
        assert_eq!(body["error"]["field"], field);
    }
}

// ---- one task ----

#[tokio::test]
async fn a_task_shows_its_webhook_and_its_state() {
    let f = fixture();
    let id = insert(&f, "r", "42").await;
    let (status, body) = send(&f.api, Method::GET, &format!("/api/tasks/{id}"), "").await;
    assert_eq!(status, 200);
    let task = &body["task"];
    assert_eq!(task["title"], "[PR] opened #42");
    assert_eq!(task["source"], "github");
    assert_eq!(task["source_event"], "pull_request.opened");
    assert_eq!(task["source_url"], "https://github.com/o/r/pull/42");
    assert_eq!(task["payload"], json!({"action":"opened","number":42}));
    assert_eq!(task["status"], "PENDING");
    assert_eq!(task["attempts"], 0);
    assert_eq!(task["claimed_by"], Value::Null);

    let (status, body) = send(&f.api, Method::GET, "/api/tasks/nope", "").await;
    assert_eq!((status.as_u16(), code(&body)), (404, "task_not_found"));
}

// ---- claims ----

#[tokio::test]
async fn a_room_claim_answers_the_task_with_a_token_or_204() {
    let f = fixture();
    let body = r#"{"agent_id":"a1","lease_seconds":30}"#;
    let (status, answer) = send(&f.api, Method::POST, "/api/rooms/pr-review/claim", body).await;
    assert_eq!((status.as_u16(), answer), (204, Value::Null));
    let id = insert(&f, "pr-review", "1").await;
    let (status, answer) = send(&f.api, Method::POST, "/api/rooms/pr-review/claim", body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["task"]["id"], id.as_str());
    assert_eq!(answer["task"]["status"], "RUNNING");
    assert_eq!(answer["task"]["claimed_by"], "a1");
    assert_eq!(answer["task"]["attempts"], 1);
    assert!(!answer["claim_token"].as_str().unwrap().is_empty());
    assert_eq!(
        answer["lease_expires_at"],
        answer["task"]["lease_expires_at"]
    );
    assert!(answer["lease_expires_at"].is_string());
}

#[tokio::test]
async fn claim_bodies_are_checked_field_by_field() {
    let f = fixture();
    for (body, field) in [
        (r#"{"lease_seconds":30}"#, "agent_id"),
        (r#"{"agent_id":"a"}"#, "lease_seconds"),
        (r#"{"agent_id":"a","lease_seconds":-1}"#, "lease_seconds"),
        (
            r#"{"agent_id":"a","lease_seconds":30,"wait_seconds":31}"#,
            "wait_seconds",
        ),
    ] {
        for path in ["/api/rooms/r/claim", "/api/tasks/x/claim"] {
            let (status, answer) = send(&f.api, Method::POST, path, body).await;
            assert_eq!(status, 400, "{path} {body}");
            assert_eq!(answer["error"]["field"], field, "{path} {body}");
        }
    }
}

#[tokio::test]
async fn a_claim_by_id_takes_that_task_and_409_when_it_is_held() {
    let f = fixture();
    let older = insert(&f, "r", "1").await;
    let chosen = insert(&f, "r", "2").await;
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{chosen}/claim"),
        r#"{"agent_id":"a1","lease_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["id"], chosen.as_str());
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{chosen}/claim"),
        r#"{"agent_id":"a2","lease_seconds":30}"#,
    )
    .await;
    assert_eq!((status.as_u16(), code(&body)), (409, "task_not_claimable"));
    let (status, body) = send(
        &f.api,
        Method::POST,
        "/api/tasks/missing/claim",
        r#"{"agent_id":"a2","lease_seconds":30}"#,
    )
    .await;
    assert_eq!((status.as_u16(), code(&body)), (404, "task_not_found"));
    let _ = older;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_racing_for_one_task_by_id_one_wins() {
    let f = fixture();
    for n in 0..50 {
        let id = insert(&f, "r", &n.to_string()).await;
        let path = format!("/api/tasks/{id}/claim");
        let race = |agent: &'static str| {
            let api = f.api.clone();
            let path = path.clone();
            tokio::spawn(async move {
                let body = format!(r#"{{"agent_id":"{agent}","lease_seconds":30}}"#);
                send(&api, Method::POST, &path, &body).await
            })
        };
        let (a, b) = (race("a"), race("b"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let mut statuses = [a.0.as_u16(), b.0.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "task {n}");
        let winner = if a.0 == 200 { &a.1 } else { &b.1 };
        let task = f.store.get(&id).await.unwrap().unwrap();
        assert_eq!(
            task.claimed_by.as_deref(),
            winner["task"]["claimed_by"].as_str()
        );
        assert_eq!(task.attempts, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_claim_is_woken_by_an_insert() {
    // The re-check is longer than the wait: only the notification can get
    // the task to the waiting claim.
    let f = fixture_with(TaskEvents::new(), |b| {
        b.claim_recheck(Duration::from_secs(600))
    });
    let api = f.api.clone();
    let waiting = tokio::spawn(async move {
        send(
            &api,
            Method::POST,
            "/api/rooms/r/claim",
            r#"{"agent_id":"a1","lease_seconds":30,"wait_seconds":20}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = insert(&f, "r", "1").await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken well before its 20 s wait")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["task"]["id"], id.as_str());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_claim_with_nothing_to_claim_answers_204_after_its_wait() {
    let f = fixture();
    let started = tokio::time::Instant::now();
    let (status, _) = send(
        &f.api,
        Method::POST,
        "/api/rooms/r/claim",
        r#"{"agent_id":"a1","lease_seconds":30,"wait_seconds":3}"#,
    )
    .await;
    assert_eq!(status, 204);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_claim_finds_a_task_freed_by_a_lapsed_lease_on_its_recheck() {
    let f = fixture();
    let id = insert(&f, "r", "1").await;
    claim(&f.api, &id).await;
    let api = f.api.clone();
    let waiting = tokio::spawn(async move {
        send(
            &api,
            Method::POST,
            "/api/rooms/r/claim",
            r#"{"agent_id":"a2","lease_seconds":30,"wait_seconds":10}"#,
        )
        .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The lease ends without any notification.
    f.clock.advance(Duration::from_secs(31));
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["task"]["claimed_by"], "a2");
}

// ---- the holder's calls ----

#[tokio::test]
async fn heartbeat_extends_the_lease_and_done_records_the_result() {
    let f = fixture();
    let id = insert(&f, "r", "1").await;
    let token = claim(&f.api, &id).await;
    let before = f.store.get(&id).await.unwrap().unwrap().lease_expires_at;
    f.clock.advance(Duration::from_secs(10));
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/heartbeat"),
        &json!({"claim_token": token, "lease_seconds": 60}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let after = f.store.get(&id).await.unwrap().unwrap().lease_expires_at;
    assert!(after > before);
    assert_eq!(body["task"]["status"], "RUNNING");

    let done = json!({"claim_token": token, "result": {"verdict": "approved"}}).to_string();
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/done"),
        &done,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["status"], "DONE");
    assert_eq!(body["task"]["result"], json!({"verdict": "approved"}));
    // The same call again: the state forbids it.
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/done"),
        &done,
    )
    .await;
    assert_eq!((status.as_u16(), code(&body)), (409, "invalid_transition"));
}

#[tokio::test]
async fn a_stale_token_is_409_not_held() {
    let f = fixture();
    let id = insert(&f, "r", "1").await;
    let old = claim(&f.api, &id).await;
    // The lease lapses and another agent claims the task.
    f.clock.advance(Duration::from_secs(31));
    claim(&f.api, &id).await;
    for (action, body) in [
        (
            "heartbeat",
            json!({"claim_token": old, "lease_seconds": 30}),
        ),
        ("done", json!({"claim_token": old})),
        ("fail", json!({"claim_token": old, "reason": "x"})),
        ("release", json!({"claim_token": old})),
        ("ask", json!({"claim_token": old, "prompt": "?"})),
    ] {
        let (status, answer) = send(
            &f.api,
            Method::POST,
            &format!("/api/tasks/{id}/{action}"),
            &body.to_string(),
        )
        .await;
        assert_eq!(
            (status.as_u16(), code(&answer)),
            (409, "not_held"),
            "{action}"
        );
    }
    let (status, body) = send(
        &f.api,
        Method::POST,
        "/api/tasks/missing/done",
        r#"{"claim_token":"t"}"#,
    )
    .await;
    assert_eq!((status.as_u16(), code(&body)), (404, "task_not_found"));
}

#[tokio::test]
async fn fail_retries_or_ends_and_release_gives_the_task_back() {
    let f = fixture();
    let id = insert(&f, "r", "1").await;
    let token = claim(&f.api, &id).await;
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/fail"),
        &json!({"claim_token": token, "reason": "flaky", "retry": true}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["status"], "PENDING");
    assert_eq!(body["task"]["failure"], "flaky");

    let token = claim(&f.api, &id).await;
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/release"),
        &json!({"claim_token": token}).to_string(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["task"]["status"]),
        (200, &json!("PENDING"))
    );

    let token = claim(&f.api, &id).await;
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/fail"),
        &json!({"claim_token": token, "reason": "broken"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["status"], "FAILED");
    let (status, body) = send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/fail"),
        r#"{"reason":"x"}"#,
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("claim_token"))
    );
}

#[tokio::test]
async fn ask_input_and_take_input_carry_an_answer_to_the_holder() {
    let f = fixture();
    let id = insert(&f, "r", "1").await;
    let token = claim(&f.api, &id).await;
    let path = |action: &str| format!("/api/tasks/{id}/{action}");
    let (status, body) = send(
        &f.api,
        Method::POST,
        &path("ask"),
        &json!({"claim_token": token, "prompt": "Which branch?"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["status"], "NEEDS_INPUT");
    let (_, body) = send(&f.api, Method::GET, &format!("/api/tasks/{id}"), "").await;
    assert_eq!(body["task"]["input_request"], "Which branch?");
    // Asking again: the state forbids it.
    let (status, body) = send(
        &f.api,
        Method::POST,
        &path("ask"),
        &json!({"claim_token": token, "prompt": "?"}).to_string(),
    )
    .await;
    assert_eq!((status.as_u16(), code(&body)), (409, "invalid_transition"));
    let take = json!({"claim_token": token}).to_string();
    let (status, body) = send(&f.api, Method::POST, &path("take_input"), &take).await;
    assert_eq!((status.as_u16(), &body["input"]), (200, &Value::Null));
    let (status, body) = answer(&f.api, Method::POST, &path("input"), r#"{"input":"main"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["task"]["input"], "main");
    let (_, body) = send(&f.api, Method::POST, &path("take_input"), &take).await;
    assert_eq!(body["input"], "main");
    assert_eq!(
        f.store.get(&id).await.unwrap().unwrap().status.as_str(),
        "RUNNING"
    );
    // Input for a task that asks for none.
    let (status, body) = answer(&f.api, Method::POST, &path("input"), r#"{"input":1}"#).await;
    assert_eq!((status.as_u16(), code(&body)), (409, "invalid_transition"));
    let (status, body) = answer(&f.api, Method::POST, &path("input"), "{}").await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("input"))
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let f = fixture_with(TaskEvents::new(), |b| b.body_limit(64));
    let body = format!(r#"{{"agent_id":"{}","lease_seconds":30}}"#, "a".repeat(100));
    let (status, answer) = send(&f.api, Method::POST, "/api/rooms/r/claim", &body).await;
    assert_eq!((status.as_u16(), code(&answer)), (413, "payload_too_large"));
}

// ---- events ----

/// Reads the event stream until `count` events (not comments) arrived.
async fn read_events(body: &mut ResponseBody, count: usize) -> Vec<(u64, String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        text.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some(event) = parse_event(&block) {
                events.push(event);
            }
        }
    }
    events
}

fn parse_event(block: &str) -> Option<(u64, String, Value)> {
    let (mut id, mut name, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = serde_json::from_str(v).ok();
        }
    }
    Some((id.unwrap_or(0), name?, data?))
}

async fn open_events(f: &Fixture, path: &str, last: Option<u64>) -> ResponseBody {
    let mut request = request(Method::GET, path, Some(AGENT), "");
    if let Some(last) = last {
        request
            .headers_mut()
            .insert("last-event-id", last.to_string().parse().unwrap());
    }
    let response = f.api.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.into_body()
}

#[tokio::test]
async fn the_event_stream_announces_each_lifecycle_change() {
    let f = fixture();
    let mut all = open_events(&f, "/api/events", None).await;
    let mut room = open_events(&f, "/api/rooms/r/events", None).await;
    let id = insert(&f, "other", "0").await;
    let _ = id;
    let id = insert(&f, "r", "1").await;
    let token = claim(&f.api, &id).await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/ask"),
        &json!({"claim_token": token, "prompt": "?"}).to_string(),
    )
    .await;
    answer(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/input"),
        r#"{"input":1}"#,
    )
    .await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/take_input"),
        &json!({"claim_token": token}).to_string(),
    )
    .await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/done"),
        &json!({"claim_token": token}).to_string(),
    )
    .await;
    let other = insert(&f, "r", "2").await;
    let token = claim(&f.api, &other).await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{other}/fail"),
        &json!({"claim_token": token, "reason": "no"}).to_string(),
    )
    .await;
    let events = read_events(&mut room, 8).await;
    let names: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        names,
        [
            "task.created",
            "task.claimed",
            "task.needs_input",
            "task.input_provided",
            "task.done",
            "task.created",
            "task.claimed",
            "task.failed",
        ]
    );
    assert_eq!(events[0].2["id"], id.as_str());
    assert_eq!(events[0].2["room"], "r");
    assert_eq!(events[0].2["title"], "[PR] opened #1");
    assert_eq!(events[0].2["status"], "PENDING");
    assert_eq!(events[4].2["status"], "DONE");
    assert_eq!(events[7].2["status"], "FAILED");
    // The all-rooms stream has the other room's task too.
    let events = read_events(&mut all, 1).await;
    assert_eq!(
        (events[0].1.as_str(), &events[0].2["room"]),
        ("task.created", &json!("other"))
    );
}

#[tokio::test]
async fn expired_tasks_are_announced() {
    let f = fixture();
    let mut stream = open_events(&f, "/api/events", None).await;
    let mut task = new_task("r", "1");
    task.ttl = Some(Duration::from_secs(5));
    f.store.insert(task).await.unwrap();
    f.clock.advance(Duration::from_secs(6));
    assert_eq!(f.store.expire_pending().await.unwrap().len(), 1);
    let events = read_events(&mut stream, 2).await;
    assert_eq!(events[1].1, "task.expired");
    assert_eq!(events[1].2["status"], "FAILED");
}

#[tokio::test]
async fn a_reconnecting_client_resumes_after_its_last_event_id() {
    let f = fixture();
    let mut first = open_events(&f, "/api/rooms/r/events", None).await;
    insert(&f, "r", "1").await;
    insert(&f, "r", "2").await;
    let seen = read_events(&mut first, 2).await;
    let last = seen[1].0;
    drop(first); // the connection drops
    insert(&f, "r", "3").await;
    insert(&f, "elsewhere", "4").await;
    insert(&f, "r", "5").await;
    let mut resumed = open_events(&f, "/api/rooms/r/events", Some(last)).await;
    let replayed = read_events(&mut resumed, 2).await;
    let titles: Vec<&Value> = replayed.iter().map(|e| &e.2["title"]).collect();
    assert_eq!(titles, [&json!("[PR] opened #3"), &json!("[PR] opened #5")]);
    assert!(replayed[0].0 > last);
    // And it goes on live.
    insert(&f, "r", "6").await;
    let live = read_events(&mut resumed, 1).await;
    assert_eq!(live[0].2["title"], "[PR] opened #6");
}

#[tokio::test]
async fn a_resumption_past_the_buffer_gets_a_resync_first() {
    let f = fixture_with(TaskEvents::with_capacity(2, 16), |b| b);
    for n in 0..5 {
        insert(&f, "r", &n.to_string()).await;
    }
    let mut resumed = open_events(&f, "/api/events", Some(1)).await;
    let events = read_events(&mut resumed, 3).await;
    assert_eq!(events[0].1, "resync");
    assert_eq!((events[1].0, events[2].0), (4, 5));
}

#[tokio::test]
async fn an_idle_stream_carries_keep_alive_comments() {
    let f = fixture_with(TaskEvents::new(), |b| {
        b.keep_alive(Duration::from_millis(20))
    });
    let mut stream = open_events(&f, "/api/events", None).await;
    let mut text = String::new();
    while !text.contains(": keep-alive\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(10), stream.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
    }
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_not_buffered() {
    let f = fixture_with(TaskEvents::with_capacity(1024, 4), |b| b);
    let mut slow = open_events(&f, "/api/events", None).await;
    for n in 0..10 {
        insert(&f, "r", &n.to_string()).await;
    }
    assert_eq!(f.events.subscriber_count(), 0, "dropped from the hub");
    let mut text = String::new();
    while let Some(frame) = slow.frame().await {
        text.push_str(std::str::from_utf8(frame.unwrap().data_ref().unwrap()).unwrap());
    }
    // What was queued, then the notice, then the end.
    assert_eq!(text.matches("event: task.created").count(), 4);
    assert!(text.ends_with("reconnect with Last-Event-ID\n\n"), "{text}");
}

#[tokio::test]
async fn without_an_event_hub_the_event_routes_say_so() {
    let store = Arc::new(InMemoryTaskStore::new());
    let api = TaskApi::builder(store, tokens()).build();
    let (status, _, body) = send_as(&api, Some(AGENT), Method::GET, "/api/events", "").await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (404, "events_not_configured")
    );
}

// ---- over a real socket ----

async fn raw(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {AGENT}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn end_to_end_over_loopback_claim_and_done() {
    let f = fixture();
    let addr = serve(f.api.clone()).await;
    let id = insert(&f, "pr-review", "42").await;
    let (status, body) = raw(
        addr,
        "POST",
        "/api/rooms/pr-review/claim",
        r#"{"agent_id":"a1","lease_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claim: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(claim["task"]["id"], id.as_str());
    let token = claim["claim_token"].as_str().unwrap();
    let (status, body) = raw(
        addr,
        "POST",
        &format!("/api/tasks/{id}/done"),
        &json!({"claim_token": token, "result": "approved"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(addr, "GET", &format!("/api/tasks/{id}"), "").await;
    assert_eq!(status, 200);
    let task: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(task["task"]["status"], "DONE");
    assert_eq!(task["task"]["result"], "approved");
}

/// Opens the event stream over a socket and reads until `count` events.
async fn socket_events(
    addr: std::net::SocketAddr,
    last: Option<u64>,
    count: usize,
) -> (tokio::net::TcpStream, Vec<(u64, String, Value)>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let resume = last.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    let request = format!(
        "GET /api/rooms/r/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {AGENT}\r\n{resume}\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut events = Vec::new();
    let mut buffer = [0u8; 4096];
    while events.len() < count {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("events in time")
            .unwrap();
        assert!(n > 0, "stream closed early: {text}");
        text.push_str(std::str::from_utf8(&buffer[..n]).unwrap());
        // Chunked transfer: event blocks sit between chunk-size lines.
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let block: String = block
                .lines()
                .filter(|l| {
                    l.starts_with("id: ") || l.starts_with("event: ") || l.starts_with("data: ")
                })
                .collect::<Vec<_>>()
                .join("\n");
            if let Some(event) = parse_event(&block) {
                events.push(event);
            }
        }
    }
    (stream, events)
}

#[tokio::test]
async fn event_stream_resumes_after_a_dropped_connection_over_loopback() {
    let f = fixture();
    let addr = serve(f.api.clone()).await;
    insert(&f, "r", "1").await;
    let (stream, seen) = {
        let opened = tokio::spawn(socket_events(addr, None, 1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        insert(&f, "r", "2").await;
        opened.await.unwrap()
    };
    assert_eq!(seen[0].2["title"], "[PR] opened #2");
    drop(stream);
    insert(&f, "r", "3").await;
    let (_stream, resumed) = socket_events(addr, Some(seen[0].0), 1).await;
    assert_eq!(resumed[0].1, "task.created");
    assert_eq!(resumed[0].2["title"], "[PR] opened #3");
}

/// The `task_api_bodies` fuzz target's seeds are bodies the readers accept,
/// so the fuzzer starts next to the accepting paths.
#[test]
fn the_fuzz_seeds_are_accepted_bodies() {
    use hookroom::api::task::{AskBody, ClaimBody, DoneBody, FailBody, HeartbeatBody, InputBody};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/task_api_bodies");
    let seed = |name: &str| std::fs::read(dir.join(name)).unwrap();
    assert_eq!(
        ClaimBody::from_json(&seed("seed-claim"))
            .unwrap()
            .wait_seconds,
        Some(5)
    );
    assert_eq!(
        HeartbeatBody::from_json(&seed("seed-heartbeat"))
            .unwrap()
            .lease_seconds,
        60
    );
    assert!(
        DoneBody::from_json(&seed("seed-done"))
            .unwrap()
            .result
            .is_some()
    );
    assert!(FailBody::from_json(&seed("seed-fail")).unwrap().retry);
    assert_eq!(
        AskBody::from_json(&seed("seed-ask")).unwrap().prompt,
        "Which branch?"
    );
    assert_eq!(
        InputBody::from_json(&seed("seed-input")).unwrap().input,
        "main"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_claim_waits_no_longer_than_the_servers_max_wait() {
    let f = fixture_with(TaskEvents::new(), |b| b.max_wait(Duration::from_secs(2)));
    let started = tokio::time::Instant::now();
    let (status, _) = send(
        &f.api,
        Method::POST,
        "/api/rooms/r/claim",
        r#"{"agent_id":"a1","lease_seconds":30,"wait_seconds":30}"#,
    )
    .await;
    assert_eq!(status, 204);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(30),
        "{waited:?}"
    );
}

/// The announcing decorator changes nothing a store promises: the whole
/// conformance suite through it, over the in-memory store.
#[cfg(feature = "integration")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_announcing_store_passes_the_conformance_suite() {
    let clock = Arc::new(ManualClock::now_utc());
    let events = Arc::new(TaskEvents::new());
    let mut watcher = events.subscribe(None, None);
    let store = AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::with_clock(clock.clone())),
        Arc::clone(&events),
    );
    hookroom::conformance::task_store::run_all(Arc::new(store), &clock).await;
    assert!(events.last_seq() > 0, "the suite's changes were announced");
    // A subscriber that never read was cut off, not buffered without bound.
    assert!(watcher.is_cut_off());
    let mut queued = 0;
    while watcher.recv().await.is_some() {
        queued += 1;
    }
    assert_eq!(queued, hookroom::task::DEFAULT_SUBSCRIBER_CAPACITY);
}

/// Changes made through the API reach the task's job, as the agent
/// runtime's do: the Jobs API does not show a finished task as pending.
#[tokio::test]
async fn changes_through_the_api_are_reported_to_the_tasks_job() {
    use hookroom::status::{InMemoryStatusSink, JobStatus};
    let sink = Arc::new(InMemoryStatusSink::new());
    let f = fixture_with(TaskEvents::new(), |b| b.status_sink(sink.clone()));
    let id = insert(&f, "r", "1").await;
    let token = claim(&f.api, &id).await;
    let job = |sink: &InMemoryStatusSink| sink.get(id.as_str(), true).unwrap();
    // The sink never heard of the job: it is created, then updated.
    assert_eq!(job(&sink).job.status, JobStatus::Running);
    assert_eq!(job(&sink).job.input_data["title"], "[PR] opened #1");
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/ask"),
        &json!({"claim_token": token, "prompt": "Which branch?"}).to_string(),
    )
    .await;
    assert_eq!(job(&sink).job.status, JobStatus::NeedsInput);
    answer(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/input"),
        r#"{"input":"main"}"#,
    )
    .await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/take_input"),
        &json!({"claim_token": token}).to_string(),
    )
    .await;
    assert_eq!(job(&sink).job.status, JobStatus::Running);
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/fail"),
        &json!({"claim_token": token, "reason": "flaky", "retry": true}).to_string(),
    )
    .await;
    assert_eq!(job(&sink).job.status, JobStatus::Pending);
    let token = claim(&f.api, &id).await;
    send(
        &f.api,
        Method::POST,
        &format!("/api/tasks/{id}/done"),
        &json!({"claim_token": token, "result": {"verdict": "approved"}}).to_string(),
    )
    .await;
    let view = job(&sink);
    assert_eq!(view.job.status, JobStatus::Done);
    let statuses: Vec<JobStatus> = view.history.unwrap().iter().map(|h| h.status).collect();
    assert_eq!(
        statuses,
        [
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::NeedsInput,
            JobStatus::Running,
            JobStatus::Pending,
            JobStatus::Running,
            JobStatus::Done,
        ]
    );
}
