//! The domain operations of `hookroom::ops` as each entry point performs
//! them: the Routes API and MCP change routes alike, ingest and replay
//! deliver alike, and the agent runtime, the Task API and MCP report a task
//! change to its job alike.
#![cfg(feature = "mcp")]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;

use hookroom::agent::{AgentOutput, Worker, agent_fn};
use hookroom::mcp::rmcp::model::{CallToolRequestParams, CallToolResult};
use hookroom::mcp::rmcp::service::RunningService;
use hookroom::mcp::rmcp::{RoleClient, ServiceExt as _};
use hookroom::mcp::{McpServer, McpSession};
use hookroom::route::{RoutesConfig, RoutesFile, RuleRouter};
use hookroom::service::{ApiTokens, BearerTokens, RoutesApi, TaskApi};
use hookroom::status::{
    InMemoryStatusSink, JobEvent, JobRegistry, JobStatus, SinkError, StatusSink,
};
use hookroom::task::{InMemoryTaskStore, NewTask, Payload, Task, TaskId, TaskStore};

const AGENT: &str = "agent-token";
const ADMIN: &str = "admin-token";

fn tokens() -> ApiTokens {
    ApiTokens::new(
        BearerTokens::parse_list(AGENT).unwrap(),
        BearerTokens::parse_list(ADMIN).unwrap(),
    )
}

/// A task as a webhook would have stored it, in `room`.
fn new_task(room: &str) -> NewTask {
    NewTask {
        room: room.into(),
        title: "[PR] opened #42: Test PR".into(),
        description: String::new(),
        priority: 2,
        source: "github".into(),
        source_event: "pull_request.opened".into(),
        source_url: Some("https://github.com/o/r/pull/42".into()),
        delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        payload: Payload::from(r#"{"action":"opened","number":42}"#),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

/// Stores `new` without a job (as a bare `TaskStore::insert` does), and
/// returns its id.
async fn stored(store: &InMemoryTaskStore, new: NewTask) -> TaskId {
    store.insert(new).await.unwrap().id
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hookroom-operations-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ----- an MCP client over an in-memory pipe -----

type Client = RunningService<RoleClient, ()>;

async fn connect(session: McpSession) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = session.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.expect("initialize")
}

async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool} must not be a protocol error: {e}"))
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured output of a call that must succeed.
async fn ok(client: &Client, tool: &'static str, args: Value) -> Value {
    let result = call(client, tool, args).await;
    assert_ne!(result.is_error, Some(true), "{tool}: {}", text(&result));
    result.structured_content.expect("structured output")
}

// ----- HTTP -----

async fn post(
    service: impl tower::Service<
        Request<Full<Bytes>>,
        Response = http::Response<impl http_body::Body<Error = impl std::fmt::Debug>>,
        Error = std::convert::Infallible,
    >,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

// ----- change a route -----

/// MCP's `add_route` and `remove_route` write the routes file, as the
/// Routes API does.
#[tokio::test]
async fn mcp_route_changes_are_written_to_the_routes_file() {
    let dir = temp_dir("mcp-routes");
    let path = dir.join("routes.json");
    std::fs::write(&path, r#"{"routes": [], "default_room": "triage"}"#).unwrap();
    let file = RoutesFile::new(&path);
    let router = Arc::new(RuleRouter::from_config(&file.load().unwrap()).unwrap());
    let server = McpServer::builder(Arc::new(InMemoryTaskStore::new()))
        .router(router.clone())
        .routes_file(file.clone())
        .build();
    let client = connect(server.admin_session()).await;

    let added = ok(
        &client,
        "add_route",
        json!({"source": "github", "event": "push", "target_room": "ci"}),
    )
    .await;
    let saved = file.load().unwrap();
    assert_eq!(saved.routes.len(), 1, "the file holds the new route");
    assert_eq!(saved.routes[0].target_room, "ci");
    assert_eq!(saved.default_room.as_deref(), Some("triage"));
    assert_eq!(router.routes()[0].id.get(), added["id"].as_u64().unwrap());

    ok(&client, "remove_route", json!({"id": added["id"]})).await;
    assert!(file.load().unwrap().routes.is_empty());
    assert!(router.routes().is_empty());
    client.cancel().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A routes file that cannot be written leaves the router as it was, and
/// the tool says so.
#[tokio::test]
async fn mcp_route_change_that_cannot_be_saved_changes_nothing() {
    let dir = temp_dir("mcp-unsaved");
    // A file in a folder that does not exist cannot be read back or replaced.
    let file = RoutesFile::new(dir.join("missing").join("routes.json"));
    let router = Arc::new(RuleRouter::new(Vec::new(), None).unwrap());
    let server = McpServer::builder(Arc::new(InMemoryTaskStore::new()))
        .router(router.clone())
        .routes_file(file)
        .build();
    let client = connect(server.admin_session()).await;
    let result = call(
        &client,
        "add_route",
        json!({"source": "github", "event": "push", "target_room": "ci"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).starts_with("routes_not_saved"),
        "{}",
        text(&result)
    );
    assert!(router.routes().is_empty());
    client.cancel().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----- deliver -----

/// A replayed delivery gets its job, as a delivered webhook does.
#[tokio::test]
async fn replay_creates_the_new_tasks_job() {
    let routes = RoutesConfig::from_json(
        r#"{"routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review"}]}"#,
    )
    .unwrap();
    let router = Arc::new(RuleRouter::from_config(&routes).unwrap());
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let original = stored(&store, new_task("old-room")).await;
    let api = RoutesApi::builder(router, store.clone())
        .principals(tokens())
        .status_sink(Arc::new(jobs.clone()))
        .build();

    let (status, body) = post(
        api,
        &format!("/api/deliveries/{original}/replay"),
        ADMIN,
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let replayed = body["task_id"].as_str().unwrap();
    let job = jobs
        .job(replayed, true)
        .await
        .unwrap()
        .expect("the replayed task has a job");
    assert_eq!(job.job.status, JobStatus::Pending);
    assert_eq!(job.job.input_data["room"], "pr-review");
    assert_eq!(job.history.unwrap().len(), 1);
}

// ----- report a task change to its job -----

/// A status sink whose registry refuses to create jobs.
#[derive(Debug)]
struct RefusesCreate(InMemoryStatusSink);

#[async_trait::async_trait]
impl StatusSink for RefusesCreate {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        match event {
            JobEvent::Created { .. } => Err(SinkError::Backend {
                sink: "refuses-create",
                source: "the registry is read-only".into(),
            }),
            other => self.0.publish(other).await,
        }
    }
}

/// When the job is missing and cannot be created, MCP says why: the create
/// error, not the missing job it left behind.
#[tokio::test]
async fn mcp_surfaces_a_refused_job_creation() {
    let store = Arc::new(InMemoryTaskStore::new());
    let id = stored(&store, new_task("dev")).await;
    let server = McpServer::builder(store)
        .status_sink(Arc::new(RefusesCreate(InMemoryStatusSink::new())))
        .build();
    let client = connect(server.session()).await;

    ok(&client, "join_room", json!({"room": "dev"})).await;
    let claimed = ok(&client, "claim_task", json!({"task_id": id.as_str()})).await;
    assert_eq!(claimed["task"]["status"], "RUNNING", "the task changed");
    let error = claimed["job_report_error"]
        .as_str()
        .unwrap_or_else(|| panic!("the answer names the refusal: {claimed}"));
    assert!(error.starts_with("E_WEBHOOK_FAILED"), "{error}");
    assert!(error.contains("create"), "{error}");
    assert!(error.contains("read-only"), "{error}");
    client.cancel().await.unwrap();
}

/// What a job of a claimed-then-done task shows, whoever reported it.
#[derive(Debug, PartialEq)]
struct JobStory {
    history: Vec<JobStatus>,
    status: JobStatus,
    input: Value,
    summary: Option<Value>,
}

async fn story(jobs: &InMemoryStatusSink, task: &TaskId) -> Option<JobStory> {
    let view = jobs.job(task.as_str(), true).await.unwrap()?;
    Some(JobStory {
        history: view.history.unwrap().iter().map(|h| h.status).collect(),
        status: view.job.status,
        input: view.job.input_data,
        summary: view.job.metadata.get("summary").cloned(),
    })
}

/// The same task, stored without a job, claimed and finished with the same
/// result through the agent runtime, the Task API and MCP: each job tells
/// the same story.
#[tokio::test]
async fn every_entry_point_reports_the_same_job_history() {
    let result = json!({"reviewed": true});

    // The agent runtime.
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let id = stored(&store, new_task("dev")).await;
    let answer = result.clone();
    let agent = agent_fn(move |_task: Task, _job| {
        let answer = answer.clone();
        async move { Ok(AgentOutput::new().with_result(answer)) }
    });
    let worker = Worker::builder(Arc::new(agent), store.clone())
        .room("dev")
        .status_sink(Arc::new(jobs.clone()))
        .poll_interval(Duration::from_millis(5))
        .build()
        .unwrap()
        .spawn();
    let by_agent = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(story) = story(&jobs, &id).await
                && story.status == JobStatus::Done
            {
                break story;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the worker finishes the task");
    worker.shutdown().await;

    // The Task API.
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let id = stored(&store, new_task("dev")).await;
    let api = TaskApi::builder(store.clone(), tokens())
        .status_sink(Arc::new(jobs.clone()))
        .build();
    let (status, claimed) = post(
        api.clone(),
        &format!("/api/tasks/{id}/claim"),
        AGENT,
        json!({"agent_id": "http-agent", "lease_seconds": 60}),
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    let (status, done) = post(
        api,
        &format!("/api/tasks/{id}/done"),
        AGENT,
        json!({"claim_token": claimed["claim_token"], "result": result}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let by_task_api = story(&jobs, &id).await.expect("a job");

    // MCP.
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let id = stored(&store, new_task("dev")).await;
    let server = McpServer::builder(store).jobs(jobs.clone()).build();
    let client = connect(server.session()).await;
    ok(&client, "join_room", json!({"room": "dev"})).await;
    ok(&client, "claim_task", json!({"task_id": id.as_str()})).await;
    ok(
        &client,
        "complete_task",
        json!({"task_id": id.as_str(), "result": result}),
    )
    .await;
    client.cancel().await.unwrap();
    let by_mcp = story(&jobs, &id).await.expect("a job");

    let expected = JobStory {
        history: vec![JobStatus::Pending, JobStatus::Running, JobStatus::Done],
        status: JobStatus::Done,
        input: by_agent.input.clone(),
        summary: Some(result),
    };
    assert_eq!(expected.input["room"], "dev");
    assert_eq!(expected.input["delivery_id"], new_task("dev").delivery_id);
    assert_eq!(by_agent, expected, "agent runtime");
    assert_eq!(by_task_api, expected, "Task API");
    assert_eq!(by_mcp, expected, "MCP");
}
