//! Who may do what over MCP, as one table: every tool called over
//! streamable HTTP as every role (and as no one), each role in a fresh
//! session on a fresh fixture, checked against the row. A tool without a
//! row fails here.
#![cfg(feature = "mcp")]

use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::{McpHttpService, McpServer};
use hookroom::route::{RouteSpec, RuleRouter};
use hookroom::status::{InMemoryStatusSink, JobEvent, JobInput, StatusSink};
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, TaskStore};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::mcp_http::{open, post, rpc};

/// The roles, in the order of each row's expectations.
const ROLES: [&str; 5] = ["admin", "operator", "viewer", "agent", "reporter"];

struct Row {
    tool: &'static str,
    /// With `{pending}`, `{asking}`, `{beta}`, `{job}` for ids.
    args: &'static str,
    /// Join `alpha` first (claims need a joined room).
    join_first: bool,
    /// admin, operator, viewer, agent, reporter: allowed or refused.
    allowed: [bool; 5],
}

const fn row(tool: &'static str, args: &'static str, allowed: [bool; 5]) -> Row {
    Row {
        tool,
        args,
        join_first: false,
        allowed,
    }
}

const Y: bool = true;
const N: bool = false;

fn rows() -> Vec<Row> {
    vec![
        row("list_rooms", "{}", [Y, Y, Y, Y, N]),
        row("list_tasks", r#"{"room":"alpha"}"#, [Y, Y, Y, Y, N]),
        row("list_tasks", r#"{"room":"beta"}"#, [Y, N, N, N, N]),
        row("get_task", r#"{"task_id":"{pending}"}"#, [Y, Y, Y, Y, N]),
        row("get_task", r#"{"task_id":"{beta}"}"#, [Y, N, N, N, N]),
        row("join_room", r#"{"room":"alpha"}"#, [Y, N, N, Y, N]),
        row("join_room", r#"{"room":"beta"}"#, [Y, N, N, N, N]),
        row("leave_room", r#"{"room":"alpha"}"#, [Y, N, N, Y, N]),
        Row {
            join_first: true,
            ..row("claim_task", r#"{"task_id":"{pending}"}"#, [Y, N, N, Y, N])
        },
        Row {
            join_first: true,
            ..row("claim_next", r#"{"room":"alpha"}"#, [Y, N, N, Y, N])
        },
        // A task held by another agent: nobody's session holds it.
        row("heartbeat", r#"{"task_id":"{asking}"}"#, [N, N, N, N, N]),
        row(
            "complete_task",
            r#"{"task_id":"{asking}","result":1}"#,
            [N, N, N, N, N],
        ),
        row(
            "fail_task",
            r#"{"task_id":"{asking}","reason":"x","retry":false}"#,
            [N, N, N, N, N],
        ),
        row(
            "ask_input",
            r#"{"task_id":"{asking}","prompt":"?"}"#,
            [N, N, N, N, N],
        ),
        row(
            "provide_input",
            r#"{"task_id":"{asking}","input":"yes"}"#,
            [Y, Y, N, N, N],
        ),
        row("webhook_routes", "{}", [Y, Y, Y, N, N]),
        row(
            "explain_route",
            r#"{"source":"github","event":"push","payload":{}}"#,
            [Y, Y, Y, N, N],
        ),
        row("webhook_history", "{}", [Y, Y, Y, N, N]),
        row(
            "add_route",
            r#"{"source":"jira","event":"*","target_room":"alpha"}"#,
            [Y, N, N, N, N],
        ),
        row("remove_route", r#"{"id":0}"#, [Y, N, N, N, N]),
        row("get_job", r#"{"job_id":"{pending}"}"#, [Y, Y, Y, Y, N]),
        row("get_job", r#"{"job_id":"{job}"}"#, [Y, Y, Y, N, Y]),
        row(
            "update_job",
            r#"{"job_id":"{job}","status":"RUNNING"}"#,
            [Y, N, N, N, Y],
        ),
        row(
            "update_job",
            r#"{"job_id":"{pending}","status":"RUNNING"}"#,
            [Y, N, N, N, N],
        ),
        row(
            "complete_job",
            r#"{"job_id":"{job}","final_status":"DONE"}"#,
            [Y, N, N, N, Y],
        ),
        row(
            "complete_job",
            r#"{"job_id":"{pending}","final_status":"DONE"}"#,
            [Y, N, N, N, N],
        ),
    ]
}

/// A fresh server and the ids its rows name.
async fn fixture() -> (McpHttpService, Vec<(&'static str, String)>) {
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let mut ids = Vec::new();
    for (name, room) in [("pending", "alpha"), ("asking", "alpha"), ("beta", "beta")] {
        let id = store
            .insert(NewTask {
                source_event: "pull_request.opened".into(),
                payload: r#"{"secret":"in the payload"}"#.into(),
                ..crate::support::tasks::push_task(room, name)
            })
            .await
            .unwrap()
            .id;
        jobs.publish(JobEvent::Created {
            job_id: id.to_string(),
            at: OffsetDateTime::now_utc(),
            input_data: JobInput::from_serialize(&json!({ "room": room })).unwrap(),
            metadata: serde_json::Map::new(),
        })
        .await
        .unwrap();
        ids.push((name, id.to_string()));
    }
    let asking = store
        .claim_task(
            &ids[1].1.as_str().into(),
            &ClaimRequest {
                room: String::new(),
                agent: "someone-else".into(),
                capabilities: vec![],
                lease: Duration::from_secs(600),
            },
        )
        .await
        .unwrap();
    store
        .request_input(&ids[1].1.as_str().into(), &asking.token, "which?")
        .await
        .unwrap();
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        hookroom::api::jobs::CREATED_BY.to_owned(),
        "pdf-reporter".into(),
    );
    jobs.publish(JobEvent::Created {
        job_id: "reporter-job".into(),
        at: OffsetDateTime::now_utc(),
        input_data: JobInput::null(),
        metadata,
    })
    .await
    .unwrap();
    ids.push(("job", "reporter-job".into()));
    let router = RuleRouter::new(vec![RouteSpec::new("github", "*", "alpha")], None).unwrap();
    let service = McpServer::builder(store)
        .jobs(jobs)
        .router(Arc::new(router))
        .build()
        .http_service(crate::support::principals::one_per_role());
    (service, ids)
}

/// `Ok` for a successful call, else the error's code.
fn outcome(response: &Value) -> Result<(), String> {
    let result = &response["result"];
    if result["isError"] != Value::Bool(true) {
        return Ok(());
    }
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    Err(text.split(':').next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_tool_as_every_role() {
    let mut failures = Vec::new();
    for row in rows() {
        for (role, allowed) in ROLES.iter().zip(row.allowed) {
            let (service, ids) = fixture().await;
            let token = format!("t-{role}");
            let session = open(&service, &token).await;
            if row.join_first {
                rpc(
                    &service,
                    &token,
                    &session,
                    2,
                    "tools/call",
                    json!({"name": "join_room", "arguments": {"room": "alpha"}}),
                )
                .await;
            }
            let args = ids.iter().fold(row.args.to_owned(), |text, (name, id)| {
                text.replace(&format!("{{{name}}}"), id)
            });
            let args: Value = serde_json::from_str(&args).unwrap();
            let response = rpc(
                &service,
                &token,
                &session,
                3,
                "tools/call",
                json!({"name": row.tool, "arguments": args}),
            )
            .await;
            let got = outcome(&response);
            // Refused by authority: forbidden (or, for a claim after a
            // refused join, not joined; for a task no session holds,
            // not held by this session).
            let refused_by_authority = matches!(
                got.as_ref().map_err(String::as_str),
                Err("forbidden" | "admin_required" | "room_not_joined" | "task_held" | "not_held")
            );
            let ok = if allowed {
                got.is_ok()
            } else {
                refused_by_authority
            };
            if !ok {
                failures.push(format!("{} {} as {role}: {got:?}", row.tool, row.args));
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

#[tokio::test]
async fn no_token_opens_no_session() {
    let (service, _) = fixture().await;
    let response = service
        .oneshot(post(None, None, crate::mcp_http::initialize()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = answer_json(response).await;
    assert_eq!(body["error"]["code"], "unauthorized");
}

async fn answer_json(response: http::Response<hookroom::mcp::McpBody>) -> Value {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[test]
fn every_tool_has_a_row() {
    let mut tools: Vec<&str> = rows().iter().map(|r| r.tool).collect();
    tools.sort();
    tools.dedup();
    assert_eq!(tools, crate::in_process::TOOLS);
}
