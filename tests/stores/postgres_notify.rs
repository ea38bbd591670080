//! `LISTEN`/`NOTIFY` across stores: two `PostgresTaskStore`s (two pools, as
//! two gateways would have) on one throwaway database. Changes made through
//! one reach the other's `TaskEvents` hub, its `watch` and a Task API event
//! stream served over it.
#![cfg(all(feature = "postgres", feature = "integration"))]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookroom::clock::ManualClock;
use hookroom::postgres::PostgresTaskStore;
use hookroom::service::task_api::ResponseBody;
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{ClaimRequest, TaskEventKind, TaskEvents, TaskStore};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use support::postgres::TestPostgres;
use support::tasks::push_task;
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(20);

fn claim_request(room: &str) -> ClaimRequest {
    ClaimRequest {
        room: room.into(),
        agent: "agent".into(),
        capabilities: vec![],
        lease: Duration::from_secs(60),
    }
}

/// A table (and channel) name of this run's own: a server given by
/// `HOOKROOM_TEST_POSTGRES_URL` keeps the tables of earlier runs.
fn fresh_table(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Store A (announces, does not listen) and store B (listens into `events`).
async fn two_stores(
    pg: &TestPostgres,
    table: &str,
) -> (PostgresTaskStore, PostgresTaskStore, Arc<TaskEvents>) {
    let a = PostgresTaskStore::builder(&pg.url)
        .with_table(table)
        .build()
        .await
        .expect("store A");
    let events = Arc::new(TaskEvents::new());
    let b = PostgresTaskStore::builder(&pg.url)
        .with_table(table)
        .with_events(Arc::clone(&events))
        .build()
        .await
        .expect("store B listens");
    (a, b, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_store_reach_the_other_stores_hub_and_watchers() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b, events) = two_stores(&pg, &fresh_table("notify_tasks")).await;
    let mut watch = b.watch("room").expect("a listening store can be watched");
    let mut all = events.subscribe(None, None);

    let inserted = a.insert(push_task("room", "d1")).await.unwrap();
    let woken = tokio::time::timeout(WAIT, watch.recv())
        .await
        .expect("the watcher on B is woken by an insert through A")
        .unwrap();
    assert_eq!(woken, inserted.id);
    let event = tokio::time::timeout(WAIT, all.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            event.kind,
            &event.task,
            event.room.as_str(),
            event.title.as_str()
        ),
        (TaskEventKind::Created, &inserted.id, "room", "task d1")
    );

    // A duplicate is not announced: the next event is the claim.
    assert!(a.insert(push_task("room", "d1")).await.unwrap().duplicate);
    let claimed = a
        .claim(&claim_request("room"))
        .await
        .unwrap()
        .expect("claims");
    let event = tokio::time::timeout(WAIT, all.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (event.kind, event.status.as_str()),
        (TaskEventKind::Claimed, "RUNNING")
    );

    // Every lifecycle change goes across.
    a.request_input(&inserted.id, &claimed.token, "which branch?")
        .await
        .unwrap();
    a.provide_input(&inserted.id, serde_json::json!("main"))
        .await
        .unwrap();
    a.take_input(&inserted.id, &claimed.token).await.unwrap();
    a.release(&inserted.id, &claimed.token).await.unwrap();
    let again = a
        .claim_task(&inserted.id, &claim_request("room"))
        .await
        .unwrap();
    a.complete(&inserted.id, &again.token, None).await.unwrap();
    let second = a.insert(push_task("room", "d2")).await.unwrap();
    let held = a.claim(&claim_request("room")).await.unwrap().unwrap();
    a.fail(
        &second.id,
        &held.token,
        "broken",
        hookroom::task::FailAction::Fail,
    )
    .await
    .unwrap();
    let mut kinds = Vec::new();
    for _ in 0..8 {
        let event = tokio::time::timeout(WAIT, all.recv())
            .await
            .unwrap()
            .unwrap();
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            TaskEventKind::NeedsInput,
            TaskEventKind::InputProvided,
            TaskEventKind::Released,
            TaskEventKind::Claimed,
            TaskEventKind::Done,
            TaskEventKind::Created,
            TaskEventKind::Claimed,
            TaskEventKind::Failed,
        ]
    );
    // The release put the task back in PENDING: the watcher heard of it, and
    // of the second task.
    assert_eq!(watch.recv().await.unwrap(), inserted.id);
    assert_eq!(watch.recv().await.unwrap(), second.id);

    // A store that does not announce is not heard.
    let quiet = PostgresTaskStore::builder(&pg.url)
        .with_table("notify_tasks")
        .with_notifications(false)
        .build()
        .await
        .unwrap();
    quiet
        .insert(push_task("room", "unannounced"))
        .await
        .unwrap();
    a.insert(push_task("room", "announced")).await.unwrap();
    let event = tokio::time::timeout(WAIT, all.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.title, "task announced");
}

const AGENT: &str = "agent-token";

fn task_api(store: &PostgresTaskStore, events: &Arc<TaskEvents>) -> TaskApi {
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(AGENT).unwrap(),
        BearerTokens::parse_list("admin-token").unwrap(),
    );
    TaskApi::builder(Arc::new(store.clone()), tokens)
        .events(Arc::clone(events))
        .build()
}

/// Reads the event stream until `count` events (not comments) arrived:
/// `(name, data)` each.
async fn read_events(body: &mut ResponseBody, count: usize) -> Vec<(String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let frame = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        text.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut name, mut data) = (None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).ok();
                }
            }
            if let (Some(name), Some(data)) = (name, data) {
                events.push((name, data));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_api_on_one_store_streams_what_the_other_store_did() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b, events) = two_stores(&pg, &fresh_table("stream_tasks")).await;
    let api = task_api(&b, &events);
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/rooms/room/events")
        .header("authorization", format!("Bearer {AGENT}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = api.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();

    let id = a.insert(push_task("room", "s1")).await.unwrap().id;
    let claimed = a.claim(&claim_request("room")).await.unwrap().unwrap();
    a.complete(&id, &claimed.token, None).await.unwrap();

    let seen = read_events(&mut body, 3).await;
    let names: Vec<&str> = seen.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["task.created", "task.claimed", "task.done"]);
    assert_eq!(seen[0].1["id"], id.as_str());
    assert_eq!(seen[0].1["title"], "task s1");
    assert_eq!(seen[2].1["status"], "DONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_wakes_every_watcher_and_marks_the_gap() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let table = fresh_table("reconnect_tasks");
    let (a, b, events) = two_stores(&pg, &table).await;
    let mut watch = b.watch("room").unwrap();
    let mut stream = events.subscribe(None, None);
    a.insert(push_task("room", "before")).await.unwrap();
    let before = tokio::time::timeout(WAIT, stream.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watch.recv().await.unwrap(), before.task);
    // Cut the listening connection from the server's side.
    let client = pg.client().await;
    let ended = client
        .query(
            // Only this test's listener (its channel is named like its
            // table): other tests may be listening on the same server.
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'hookroom-listener' AND query = 'LISTEN ' || $1",
            &[&table],
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1, "one listening connection");

    // Back and listening: every watcher is woken once (announcements made
    // while it was away were not heard), with an empty id.
    let woken = tokio::time::timeout(WAIT, watch.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woken.as_str(), "");
    // Event streams end, and resuming after the last event seen says that
    // some were missed.
    assert!(
        tokio::time::timeout(WAIT, stream.recv())
            .await
            .unwrap()
            .is_none()
    );
    let resumed = events.subscribe(None, Some(before.seq));
    assert!(resumed.missed(), "a resumption across the gap is told");
    let id = a.insert(push_task("room", "after")).await.unwrap().id;
    let woken = tokio::time::timeout(WAIT, watch.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woken, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_store_passes_the_conformance_suite() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let clock = ManualClock::at_unix(1_700_000_000);
    let store = PostgresTaskStore::builder(&pg.url)
        .with_table("listening_conformance")
        .with_clock(Arc::new(clock.clone()))
        .with_events(Arc::new(TaskEvents::new()))
        .build()
        .await
        .expect("connect");
    assert!(store.watch("any").is_some());
    hookroom::conformance::task_store::run_all(Arc::new(store), &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_change_announced_through_one_store_reaches_the_other_stores_hub() {
    use hookroom::status::{
        AnnouncingJobRegistry, InMemoryStatusSink, JobEvent, JobInput, Progress, StatusSink,
    };
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, _b, events) = two_stores(&pg, &fresh_table("notify_jobs")).await;
    let mut room = events.subscribe(Some("room"), None);
    // Gateway A's registry announces through store A's NOTIFY.
    let jobs =
        AnnouncingJobRegistry::with_announcer(Arc::new(InMemoryStatusSink::new()), Arc::new(a));
    let at = time::OffsetDateTime::now_utc();
    jobs.publish(JobEvent::Created {
        job_id: "j1".into(),
        at,
        input_data: JobInput::from(serde_json::json!({"room": "room", "title": "Fix"})),
        metadata: Default::default(),
    })
    .await
    .unwrap();
    jobs.publish(JobEvent::Status {
        job_id: "j1".into(),
        at,
        status: hookroom::status::JobStatus::Running,
        progress: Some(Progress {
            current_step: Some("tests".into()),
            total_steps: Some(4),
            completed_steps: Some(1),
            percentage: Some(25.0),
            estimated_remaining: None,
        }),
        message: None,
        step: None,
    })
    .await
    .unwrap();
    for (status, percentage) in [("PENDING", None), ("RUNNING", Some(25.0))] {
        let event = tokio::time::timeout(WAIT, room.recv())
            .await
            .expect("store B's hub hears the job change")
            .unwrap();
        assert_eq!(event.kind, TaskEventKind::JobUpdated);
        assert_eq!(
            (
                event.task.as_str(),
                event.title.as_str(),
                event.status.as_str()
            ),
            ("j1", "Fix", status)
        );
        assert_eq!(
            event.progress.as_ref().and_then(|p| p.percentage),
            percentage
        );
    }
}
