//! Who may do what, as one table: every route of the Task, Jobs and Routes
//! APIs and of `/operations` and `/health`, sent as every role and as no
//! one, each against a fresh fixture, checked against the row's expected
//! answer. Every [`Operation`] must be exercised by some row, so an
//! operation added to the policy without a row fails here.
#![cfg(feature = "memory")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

use hookroom::route::{RouteSpec, RuleRouter};
use hookroom::service::{Gateway, JobsApi, RoutesApi, TaskApi, WebhookService};
use hookroom::status::{InMemoryStatusSink, JobEvent, JobInput, StatusSink};
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, TaskStore};

/// The callers, in the order of each row's expectations.
const CALLERS: [&str; 6] = ["admin", "operator", "viewer", "agent", "reporter", "nobody"];

/// A row's expectation for one caller: `Ok` is a 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Status(u16),
}

use Expect::{Ok as Y, Status};
/// Refused for the role (`403 forbidden` or the Jobs API's `E_FORBIDDEN`).
const F: Expect = Status(403);
/// No principal.
const U: Expect = Status(401);

struct Row {
    /// The operations the row exercises (names from `Operation::name`).
    operations: &'static [&'static str],
    method: Method,
    /// With `{pending}`, `{held}`, `{asking}`, `{beta}`, `{job}` for ids.
    path: &'static str,
    /// With `{token}` and `{asking_token}` for claim tokens.
    body: &'static str,
    /// admin, operator, viewer, agent, reporter, nobody.
    expect: [Expect; 6],
}

fn rows() -> Vec<Row> {
    let row = |operations, method, path, body, expect| Row {
        operations,
        method,
        path,
        body,
        expect,
    };
    use Method as M;
    vec![
        // The Task API.
        row(&[], M::GET, "/api/whoami", "", [Y, Y, Y, Y, Y, U]),
        row(
            &["list_rooms"],
            M::GET,
            "/api/rooms",
            "",
            [Y, Y, Y, Y, F, U],
        ),
        row(
            &["read_tasks", "read_payloads"],
            M::GET,
            "/api/rooms/alpha/tasks",
            "",
            [Y, Y, Y, Y, F, U],
        ),
        row(
            &["read_tasks"],
            M::GET,
            "/api/rooms/beta/tasks",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["read_tasks"],
            M::GET,
            "/api/tasks/{pending}",
            "",
            [Y, Y, Y, Y, F, U],
        ),
        row(
            &["read_tasks"],
            M::GET,
            "/api/tasks/{beta}",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["join_room"],
            M::POST,
            "/api/rooms/alpha/join",
            r#"{"agent_id":"agent"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["join_room"],
            M::POST,
            "/api/rooms/alpha/join",
            r#"{"agent_id":"agent/worker-2"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["join_room"],
            M::POST,
            "/api/rooms/alpha/join",
            r#"{"agent_id":"someone-else"}"#,
            [Y, F, F, F, F, U],
        ),
        row(
            &["join_room"],
            M::POST,
            "/api/rooms/beta/join",
            r#"{"agent_id":"agent"}"#,
            [Y, F, F, F, F, U],
        ),
        row(
            &["leave_room"],
            M::DELETE,
            "/api/rooms/alpha/agents/agent",
            "",
            [Y, F, F, Y, F, U],
        ),
        row(
            &["leave_room"],
            M::DELETE,
            "/api/rooms/alpha/agents/someone-else",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["claim_task"],
            M::POST,
            "/api/rooms/alpha/claim",
            r#"{"agent_id":"agent","lease_seconds":30}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["claim_task"],
            M::POST,
            "/api/rooms/alpha/claim",
            r#"{"agent_id":"someone-else","lease_seconds":30}"#,
            [Y, F, F, F, F, U],
        ),
        row(
            &["claim_task"],
            M::POST,
            "/api/tasks/{pending}/claim",
            r#"{"agent_id":"agent","lease_seconds":30}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["claim_task"],
            M::POST,
            "/api/tasks/{beta}/claim",
            r#"{"agent_id":"agent","lease_seconds":30}"#,
            [Y, F, F, F, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{held}/heartbeat",
            r#"{"claim_token":"{token}","lease_seconds":30}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{held}/done",
            r#"{"claim_token":"{token}"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{held}/fail",
            r#"{"claim_token":"{token}","reason":"x"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{held}/release",
            r#"{"claim_token":"{token}"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{held}/ask",
            r#"{"claim_token":"{token}","prompt":"which?"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["work_on_task"],
            M::POST,
            "/api/tasks/{asking}/take_input",
            r#"{"claim_token":"{asking_token}"}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["answer_input"],
            M::POST,
            "/api/tasks/{asking}/input",
            r#"{"input":"the second"}"#,
            [Y, Y, F, F, F, U],
        ),
        row(
            &["insert_task"],
            M::POST,
            "/api/rooms/alpha/tasks",
            r#"{"title":"t","source":"s","source_event":"e","delivery_id":"d-new","payload":{}}"#,
            [Status(201), F, F, F, F, U],
        ),
        row(
            &["expire_tasks"],
            M::POST,
            "/api/tasks/expire",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["read_events"],
            M::GET,
            "/api/rooms/alpha/events",
            "",
            [Y, Y, Y, Y, F, U],
        ),
        row(
            &["read_events"],
            M::GET,
            "/api/rooms/beta/events",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["read_events"],
            M::GET,
            "/api/events",
            "",
            [Y, F, F, F, F, U],
        ),
        // The Jobs API.
        row(
            &["create_job"],
            M::POST,
            "/api/jobs",
            r#"{"input_data":{"k":1}}"#,
            [Status(201), F, F, F, Status(201), Status(401)],
        ),
        row(&["list_jobs"], M::GET, "/api/jobs", "", [Y, Y, Y, Y, Y, U]),
        row(
            &["read_job"],
            M::GET,
            "/api/jobs/{job}",
            "",
            [Y, Y, Y, F, Y, U],
        ),
        row(
            &["read_job"],
            M::GET,
            "/api/jobs/{pending}",
            "",
            [Y, Y, Y, Y, F, U],
        ),
        row(
            &["read_job"],
            M::GET,
            "/api/jobs/{beta}",
            "",
            [Y, Y, Y, F, F, U],
        ),
        row(
            &["change_job"],
            M::POST,
            "/api/jobs/{job}/status",
            r#"{"status":"RUNNING"}"#,
            [Y, F, F, F, Y, U],
        ),
        // A task's job: its claim holder (and an admin) may report on it;
        // on a pending or another room's task's job, only an admin.
        row(
            &["change_job", "work_on_task"],
            M::POST,
            "/api/jobs/{held}/status",
            r#"{"status":"RUNNING","progress":{"percentage":50}}"#,
            [Y, F, F, Y, F, U],
        ),
        row(
            &["change_job"],
            M::POST,
            "/api/jobs/{pending}/complete",
            r#"{"final_status":"DONE"}"#,
            [Y, F, F, F, F, U],
        ),
        row(
            &["change_job"],
            M::POST,
            "/api/jobs/{beta}/status",
            r#"{"status":"RUNNING"}"#,
            [Y, F, F, F, F, U],
        ),
        // The Routes API.
        row(
            &["read_routes"],
            M::GET,
            "/api/routes",
            "",
            [Y, Y, Y, F, F, U],
        ),
        row(
            &["read_routes"],
            M::POST,
            "/api/routes/explain",
            r#"{"source":"github","event":"pull_request.opened","payload":{}}"#,
            [Y, Y, Y, F, F, U],
        ),
        row(
            &["change_routes"],
            M::POST,
            "/api/routes",
            r#"{"source":"jira","event":"*","target_room":"alpha"}"#,
            [Status(201), F, F, F, F, U],
        ),
        row(
            &["change_routes"],
            M::DELETE,
            "/api/routes?source=github&event=pull_request.*",
            "",
            [Y, F, F, F, F, U],
        ),
        row(
            &["read_deliveries"],
            M::GET,
            "/api/deliveries",
            "",
            [Y, Y, Y, F, F, U],
        ),
        row(
            &["read_delivery_payloads"],
            M::GET,
            "/api/deliveries?payload=true",
            "",
            [Y, Y, F, F, F, U],
        ),
        row(
            &["replay_delivery"],
            M::POST,
            "/api/deliveries/{pending}/replay",
            "",
            [Status(202), Status(202), F, F, F, U],
        ),
        // Admin endpoints: /health answers anyone's liveness without a
        // token, its detail only to an admin.
        row(
            &["read_operations"],
            M::GET,
            "/operations",
            "",
            [Y, U, U, U, U, U],
        ),
        row(
            &["read_health_detail"],
            M::GET,
            "/health",
            "",
            [Y, U, U, U, U, Y],
        ),
    ]
}

/// One fixture: every service over one store and one job registry, the
/// principals of [`CALLERS`], and tasks in each state.
struct Fixture {
    task_api: TaskApi,
    jobs_api: JobsApi,
    routes_api: RoutesApi,
    gateway: Gateway,
    ids: Vec<(&'static str, String)>,
}

async fn fixture() -> Fixture {
    let store = Arc::new(InMemoryTaskStore::new());
    let sink = InMemoryStatusSink::new();
    let principals = crate::support::principals::one_per_role();
    let mut ids = Vec::new();
    for (name, room) in [
        ("pending", "alpha"),
        ("held", "alpha"),
        ("asking", "alpha"),
        ("beta", "beta"),
    ] {
        let id = store
            .insert(NewTask {
                source_event: "pull_request.opened".into(),
                payload: r#"{"secret":"in the payload"}"#.into(),
                ..crate::support::tasks::push_task(room, name)
            })
            .await
            .unwrap()
            .id;
        sink.publish(JobEvent::Created {
            job_id: id.to_string(),
            at: OffsetDateTime::now_utc(),
            input_data: JobInput::from_serialize(&json!({ "room": room })).unwrap(),
            metadata: serde_json::Map::new(),
        })
        .await
        .unwrap();
        ids.push((name, id.to_string()));
    }
    let claim = |id: &str| {
        let store = Arc::clone(&store);
        let id = id.to_owned();
        async move {
            store
                .claim_task(
                    &id.as_str().into(),
                    &ClaimRequest {
                        room: String::new(),
                        agent: "agent".into(),
                        capabilities: vec![],
                        lease: Duration::from_secs(60),
                    },
                )
                .await
                .unwrap()
                .token
        }
    };
    let held = claim(&ids[1].1).await;
    let asking = claim(&ids[2].1).await;
    store
        .request_input(&ids[2].1.as_str().into(), &asking, "which?")
        .await
        .unwrap();
    ids.push(("token", held.as_str().to_owned()));
    ids.push(("asking_token", asking.as_str().to_owned()));

    let jobs_api = JobsApi::builder(Arc::new(sink.clone()))
        .task_store(store.clone())
        .principals(principals.clone())
        .build();
    // The reporter's own job, made through the API as the reporter.
    let created = jobs_api
        .clone()
        .oneshot(
            Request::post("/api/jobs")
                .header("authorization", "Bearer t-reporter")
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await
        .unwrap();
    let created: Value =
        serde_json::from_slice(&created.into_body().collect().await.unwrap().to_bytes()).unwrap();
    ids.push(("job", created["job_id"].as_str().unwrap().to_owned()));

    let router = Arc::new(
        RuleRouter::new(
            vec![RouteSpec::new("github", "pull_request.*", "alpha")],
            None,
        )
        .unwrap(),
    );
    let routes_api = RoutesApi::builder(Arc::clone(&router), store.clone())
        .status_sink(Arc::new(sink.clone()))
        .principals(principals.clone())
        .build();
    let task_api = TaskApi::builder(store.clone(), principals.clone())
        .events(Arc::new(hookroom::task::TaskEvents::new()))
        .status_sink(Arc::new(sink))
        .build();
    let ingest = WebhookService::builder(router, store)
        .source(
            "github",
            Arc::new(hookroom::verify::GithubVerifier::new(
                hookroom::verify::Secrets::try_from("matrix-secret").unwrap(),
            )),
            Arc::new(hookroom::source::GithubSource::new()),
        )
        .build();
    let gateway = Gateway::builder(ingest).principals(principals).build();
    Fixture {
        task_api,
        jobs_api,
        routes_api,
        gateway,
        ids,
    }
}

fn fill(template: &str, ids: &[(&str, String)]) -> String {
    ids.iter().fold(template.to_owned(), |text, (name, id)| {
        text.replace(&format!("{{{name}}}"), id)
    })
}

async fn send(f: &Fixture, row: &Row, caller: &str) -> (u16, Value) {
    let path = fill(row.path, &f.ids);
    let mut request = Request::builder().method(row.method.clone()).uri(&path);
    if caller != "nobody" {
        request = request.header("authorization", format!("Bearer t-{caller}"));
    }
    let request = request
        .body(Full::new(Bytes::from(fill(row.body, &f.ids))))
        .unwrap();
    if path.starts_with("/api/jobs") {
        finish(f.jobs_api.clone().oneshot(request).await.unwrap()).await
    } else if path.starts_with("/api/routes") || path.starts_with("/api/deliveries") {
        finish(f.routes_api.clone().oneshot(request).await.unwrap()).await
    } else if path.starts_with("/api/") {
        finish(f.task_api.clone().oneshot(request).await.unwrap()).await
    } else {
        finish(f.gateway.clone().oneshot(request).await.unwrap()).await
    }
}

/// The status and JSON body of `response` (`null` for an event stream,
/// which stays open: only its head is read).
async fn finish<B>(response: http::Response<B>) -> (u16, Value)
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream");
    if streaming {
        return (status, Value::Null);
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_route_as_every_role() {
    let mut failures = Vec::new();
    for row in rows() {
        for (caller, expect) in CALLERS.iter().zip(row.expect) {
            let f = fixture().await;
            let (status, body) = send(&f, &row, caller).await;
            let matches = match expect {
                Expect::Ok => (200..300).contains(&status),
                Expect::Status(s) => s == status,
            };
            if !matches {
                failures.push(format!(
                    "{} {} as {caller}: expected {expect:?}, got {status} {body}",
                    row.method, row.path
                ));
            }
            // A refusal says why, with a stable code.
            if status == 403 {
                let code = body["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    code == "forbidden" || code == "E_FORBIDDEN",
                    "{} {} as {caller}: {body}",
                    row.method,
                    row.path
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_operation_has_a_row() {
    let covered: BTreeSet<&str> = rows()
        .iter()
        .flat_map(|r| r.operations.iter().copied())
        .collect();
    let missing: Vec<&str> = hookroom::auth::Operation::NAMES
        .iter()
        .copied()
        .filter(|name| !covered.contains(name) && !UNROUTED.contains(name))
        .collect();
    assert!(missing.is_empty(), "operations without a row: {missing:?}");
}

/// Operations no HTTP route performs yet (their rows come with their
/// routes), each with the reason.
const UNROUTED: [&str; 3] = [
    // Read by the gateway's own /metrics handler, tested with the binary.
    "read_metrics",
    // Task store operations the dashboard's actions will need.
    "retry_task",
    "cancel_task",
];

#[tokio::test]
async fn a_listing_keeps_only_the_rooms_a_principal_reaches_and_hides_payloads() {
    let f = fixture().await;
    let row = Row {
        operations: &[],
        method: Method::GET,
        path: "/api/tasks",
        body: "",
        expect: [Y; 6],
    };
    for caller in ["admin", "viewer", "agent"] {
        let (status, body) = send(&f, &row, caller).await;
        assert_eq!(status, 200);
        let tasks = body["tasks"].as_array().unwrap();
        let rooms: BTreeSet<&str> = tasks.iter().map(|t| t["room"].as_str().unwrap()).collect();
        let payloads: Vec<&Value> = tasks.iter().map(|t| &t["payload"]).collect();
        match caller {
            "admin" => {
                assert_eq!(rooms, BTreeSet::from(["alpha", "beta"]));
                assert!(payloads.iter().all(|p| p["secret"] == "in the payload"));
            }
            "viewer" => {
                assert_eq!(rooms, BTreeSet::from(["alpha"]));
                assert!(payloads.iter().all(|p| p.is_null()), "{payloads:?}");
            }
            _ => {
                assert_eq!(rooms, BTreeSet::from(["alpha"]));
                assert!(payloads.iter().all(|p| p["secret"] == "in the payload"));
            }
        }
    }
    let whoami = Row {
        operations: &[],
        method: Method::GET,
        path: "/api/whoami",
        body: "",
        expect: [Y; 6],
    };
    let (_, me) = send(&f, &whoami, "agent").await;
    assert_eq!(
        me,
        json!({"name":"agent","role":"agent","rooms":["alpha"],"payloads":true,"creates_jobs":false})
    );
}
