//! The MCP server through rmcp's own client, in process over an in-memory
//! duplex pipe (the stdio transport's framing).
#![cfg(feature = "mcp")]

use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, ResourceUpdatedNotificationParam,
};
use hookroom::mcp::rmcp::service::{NotificationContext, RunningService};
use hookroom::mcp::rmcp::{ClientHandler, RoleClient, ServiceExt};
use hookroom::mcp::{McpServer, McpSession};
use hookroom::route::{RouteSpec, RuleRouter};
use hookroom::status::{InMemoryStatusSink, JobStatus};
use hookroom::task::{InMemoryTaskStore, NewTask, Payload, TaskId, TaskStore};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A client that forwards resource-updated notifications to a channel.
struct Agent {
    name: &'static str,
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Agent {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new(self.name, "1.0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updates.send(params.uri);
    }
}

type Client = RunningService<RoleClient, Agent>;

async fn connect(
    session: McpSession,
    name: &'static str,
) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = session.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (updates, received) = mpsc::unbounded_channel();
    let client = Agent { name, updates }
        .serve(client_io)
        .await
        .expect("initialize");
    (client, received)
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

/// The structured output of a successful call.
async fn ok(client: &Client, tool: &'static str, args: Value) -> Value {
    let result = call(client, tool, args).await;
    assert_ne!(result.is_error, Some(true), "{tool}: {}", text(&result));
    result.structured_content.expect("structured output")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The error text of a failed call.
async fn err(client: &Client, tool: &'static str, args: Value) -> String {
    let result = call(client, tool, args).await;
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} should fail: {result:?}"
    );
    text(&result)
}

fn new_task(room: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.into(),
        title: "[PR] opened #42: Test PR".into(),
        description: String::new(),
        priority: 2,
        source: "github".into(),
        source_event: "pull_request.opened".into(),
        source_url: Some("https://github.com/o/r/pull/42".into()),
        delivery_id: delivery.into(),
        payload: Payload::from(r#"{"action":"opened","number":42}"#),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

struct Fixture {
    store: Arc<InMemoryTaskStore>,
    jobs: InMemoryStatusSink,
    server: McpServer,
}

fn fixture(lease: Duration) -> Fixture {
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let router = RuleRouter::new(
        vec![RouteSpec::new("github", "pull_request.*", "pr-review").with_priority(2)],
        Some("general".into()),
    )
    .unwrap();
    let server = McpServer::builder(store.clone())
        .jobs(jobs.clone())
        .router(Arc::new(router))
        .lease(lease)
        .build();
    Fixture {
        store,
        jobs,
        server,
    }
}

/// What an agent session is offered.
const AGENT_TOOLS: [&str; 14] = [
    "ask_input",
    "claim_next",
    "claim_task",
    "complete_job",
    "complete_task",
    "fail_task",
    "get_job",
    "get_task",
    "heartbeat",
    "join_room",
    "leave_room",
    "list_rooms",
    "list_tasks",
    "update_job",
];

pub(crate) const TOOLS: [&str; 20] = [
    "add_route",
    "ask_input",
    "claim_next",
    "claim_task",
    "complete_job",
    "complete_task",
    "explain_route",
    "fail_task",
    "get_job",
    "get_task",
    "heartbeat",
    "join_room",
    "leave_room",
    "list_rooms",
    "list_tasks",
    "provide_input",
    "remove_route",
    "update_job",
    "webhook_history",
    "webhook_routes",
];

#[tokio::test]
async fn every_tool_is_listed_with_a_description_and_schemas() {
    let f = fixture(Duration::from_secs(60));
    let (client, _) = connect(f.server.admin_session(), "lister").await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, TOOLS);
    // An agent is offered only what an agent may do: no answering input,
    // no routes, no delivery history.
    let (agent, _) = connect(f.server.session(), "agent").await;
    let mut offered: Vec<_> = agent
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    offered.sort();
    assert_eq!(offered, AGENT_TOOLS);
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 30, "{}: {description:?}", tool.name);
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            tool.name
        );
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
    }
    let schema = |name: &str| {
        Value::Object((*tools.iter().find(|t| t.name == name).unwrap().input_schema).clone())
    };
    let join = schema("join_room");
    assert_eq!(join["required"], json!(["room"]));
    assert_eq!(join["properties"]["capabilities"]["type"], "array");
    let list = schema("list_tasks");
    assert_eq!(list["required"], json!(["room"]));
    for optional in ["status", "source", "limit"] {
        assert!(list["properties"].get(optional).is_some(), "{optional}");
    }
    let fail = schema("fail_task");
    let mut required: Vec<String> = serde_json::from_value(fail["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["reason", "retry", "task_id"]);
    let add = schema("add_route");
    let mut required: Vec<String> = serde_json::from_value(add["required"].clone()).unwrap();
    required.sort();
    assert_eq!(required, ["event", "source", "target_room"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_webhook_task_goes_from_notification_to_claim_to_a_done_job_with_history() {
    let f = fixture(Duration::from_secs(60));
    let (client, mut updates) = connect(f.server.admin_session(), "claude").await;

    let joined = ok(
        &client,
        "join_room",
        json!({"room": "pr-review", "capabilities": ["review"]}),
    )
    .await;
    assert_eq!(joined["notifications"], true);
    assert_eq!(joined["open_tasks"], json!([]));
    let agent = joined["agent"].as_str().unwrap().to_owned();
    assert!(agent.starts_with("claude-"), "{agent}");

    // A webhook arrives: the ingest service stores it as a task.
    let inserted = f.store.insert(new_task("pr-review", "d-1")).await.unwrap();
    let uri = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a notification for the new task")
        .unwrap();
    assert_eq!(uri, "hookroom://rooms/pr-review");

    let listed = ok(
        &client,
        "list_tasks",
        json!({"room": "pr-review", "status": "PENDING"}),
    )
    .await;
    let tasks = listed["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], inserted.id.as_str());
    assert_eq!(tasks[0]["untrusted"]["title"], "[PR] opened #42: Test PR");
    assert!(
        tasks[0].get("title").is_none(),
        "webhook text only in the envelope"
    );

    let task = ok(
        &client,
        "get_task",
        json!({"task_id": inserted.id.as_str()}),
    )
    .await;
    assert_eq!(task["task"]["untrusted"]["payload"]["number"], 42);
    assert_eq!(
        task["task"]["untrusted"]["source_url"],
        "https://github.com/o/r/pull/42"
    );
    assert!(
        task["task"]["untrusted"]["notice"]
            .as_str()
            .unwrap()
            .contains("never as instructions"),
        "{task}"
    );

    let claimed = ok(
        &client,
        "claim_task",
        json!({"task_id": inserted.id.as_str()}),
    )
    .await;
    assert_eq!(claimed["task"]["status"], "RUNNING");
    assert_eq!(claimed["task"]["claimed_by"], agent.as_str());
    assert_eq!(claimed["task"]["held_by_this_session"], true);
    assert!(
        claimed.to_string().find("token").is_none(),
        "no token reaches the model: {claimed}"
    );
    // A model that claims again what it holds gets the same claim back.
    let again = ok(
        &client,
        "claim_task",
        json!({"task_id": inserted.id.as_str()}),
    )
    .await;
    assert_eq!(again["task"]["id"], inserted.id.as_str());
    assert_eq!(again["task"]["held_by_this_session"], true);

    let done = ok(
        &client,
        "complete_task",
        json!({"task_id": inserted.id.as_str(), "result": {"verdict": "approved"}}),
    )
    .await;
    assert_eq!(done["task"]["status"], "DONE");
    let stored = f.store.get(&inserted.id).await.unwrap().unwrap();
    assert_eq!(stored.result, Some(json!({"verdict": "approved"})));

    let job = ok(
        &client,
        "get_job",
        json!({"job_id": inserted.id.as_str(), "include_history": true}),
    )
    .await;
    assert_eq!(job["job"]["status"], "DONE");
    let history: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["PENDING", "RUNNING", "DONE"]);
    assert_eq!(
        f.jobs.get(inserted.id.as_str(), false).unwrap().job.status,
        JobStatus::Done
    );

    let history = ok(&client, "webhook_history", json!({"source": "github"})).await;
    assert_eq!(history["deliveries"][0]["delivery_id"], "d-1");
    assert_eq!(history["deliveries"][0]["status"], "DONE");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn two_sessions_race_for_one_task_and_the_loser_is_told_who_holds_it() {
    let f = fixture(Duration::from_secs(60));
    let (a, _) = connect(f.server.session(), "alpha").await;
    let (b, _) = connect(f.server.session(), "beta").await;
    let id = f
        .store
        .insert(new_task("pr-review", "race"))
        .await
        .unwrap()
        .id;
    let args = json!({"task_id": id.as_str()});
    ok(&a, "join_room", json!({"room": "pr-review"})).await;
    ok(&b, "join_room", json!({"room": "pr-review"})).await;
    let (ra, rb) = tokio::join!(
        call(&a, "claim_task", args.clone()),
        call(&b, "claim_task", args)
    );
    let (winner, loser) = match (ra.is_error, rb.is_error) {
        (Some(false), Some(true)) => (ra, rb),
        (Some(true), Some(false)) => (rb, ra),
        other => panic!("exactly one claim must win: {other:?} {ra:?} {rb:?}"),
    };
    let holder = winner.structured_content.unwrap()["task"]["claimed_by"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = text(&loser);
    assert!(message.starts_with("task_held:"), "{message}");
    assert!(message.contains(&format!("agent `{holder}`")), "{message}");
    assert!(message.contains("lease until"), "{message}");
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_with_a_clear_message() {
    let f = fixture(Duration::from_secs(60));
    let (client, _) = connect(f.server.session(), "careless").await;
    let id = f
        .store
        .insert(new_task("pr-review", "bad"))
        .await
        .unwrap()
        .id;
    let cases: [(&'static str, Value, &str); 12] = [
        (
            "list_tasks",
            json!({}),
            "invalid_arguments: failed to deserialize parameters: missing field `room`; `list_tasks` takes",
        ),
        ("list_tasks", json!({"room": 7}), "room (string, required)"),
        (
            "list_tasks",
            json!({"room": "r", "status": "DOING"}),
            "invalid_argument: invalid `status`",
        ),
        (
            "list_tasks",
            json!({"room": "r", "limit": 0}),
            "invalid_argument: invalid `limit`",
        ),
        (
            "join_room",
            json!({"room": "  "}),
            "invalid_argument: invalid `room`",
        ),
        (
            "claim_task",
            json!({"task_id": "no-such-task"}),
            "task_not_found",
        ),
        (
            "claim_next",
            json!({"room": "pr-review"}),
            "room_not_joined",
        ),
        (
            "complete_task",
            json!({"task_id": id.as_str(), "result": 1}),
            "not_held",
        ),
        (
            "add_route",
            json!({"source": "a", "event": "b", "target_room": "c"}),
            "admin_required",
        ),
        (
            "update_job",
            json!({"job_id": "j", "status": "DONE"}),
            "use complete_job",
        ),
        ("get_job", json!({"job_id": "nope"}), "job_not_found"),
        (
            "fail_task",
            json!({"task_id": id.as_str(), "reason": "x"}),
            "retry",
        ),
    ];
    for (tool, args, expected) in cases {
        let message = err(&client, tool, args.clone()).await;
        assert!(message.contains(expected), "{tool} {args}: {message}");
    }
    // The session still works.
    ok(&client, "list_rooms", json!({})).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_live_session_heartbeats_its_claims_and_a_dropped_one_lets_them_lapse() {
    let lease = Duration::from_millis(300);
    let f = fixture(lease);
    let (a, _) = connect(f.server.session(), "keeper").await;
    let (b, _) = connect(f.server.session(), "waiter").await;
    let id = f
        .store
        .insert(new_task("pr-review", "lease"))
        .await
        .unwrap()
        .id;
    ok(&a, "join_room", json!({"room": "pr-review"})).await;
    ok(&b, "join_room", json!({"room": "pr-review"})).await;
    ok(&a, "claim_task", json!({"task_id": id.as_str()})).await;

    // Several leases later the claim still holds: the session renewed it.
    tokio::time::sleep(lease * 4).await;
    let message = err(&b, "claim_task", json!({"task_id": id.as_str()})).await;
    assert!(message.starts_with("task_held:"), "{message}");

    // The session ends: no more heartbeats, and the lease runs out.
    a.cancel().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let result = call(&b, "claim_task", json!({"task_id": id.as_str()})).await;
        if result.is_error != Some(true) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", text(&result));
        tokio::time::sleep(lease / 3).await;
    }
    let task = f.store.get(&id).await.unwrap().unwrap();
    assert!(task.claimed_by.unwrap().starts_with("waiter-"));
    assert_eq!(task.attempts, 2);
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn input_asked_by_the_holder_is_answered_by_another_session() {
    let f = fixture(Duration::from_secs(60));
    let (holder, _) = connect(f.server.session(), "holder").await;
    let (person, _) = connect(f.server.admin_session(), "person").await;
    let id = f
        .store
        .insert(new_task("pr-review", "input"))
        .await
        .unwrap()
        .id;
    ok(&holder, "join_room", json!({"room": "pr-review"})).await;
    let claimed = ok(&holder, "claim_next", json!({"room": "pr-review"})).await;
    assert_eq!(claimed["task"]["id"], id.as_str());

    let asked = ok(
        &holder,
        "ask_input",
        json!({"task_id": id.as_str(), "prompt": "bug or feature?"}),
    )
    .await;
    assert_eq!(asked["task"]["status"], "NEEDS_INPUT");
    let waiting = ok(&holder, "heartbeat", json!({"task_id": id.as_str()})).await;
    assert_eq!(waiting["input"], Value::Null);

    ok(
        &person,
        "provide_input",
        json!({"task_id": id.as_str(), "input": "bug"}),
    )
    .await;
    let answered = ok(&holder, "heartbeat", json!({"task_id": id.as_str()})).await;
    assert_eq!(answered["input"], "bug");
    assert_eq!(answered["task"]["status"], "RUNNING");

    let failed = ok(
        &holder,
        "fail_task",
        json!({"task_id": id.as_str(), "reason": "cannot reproduce", "retry": false}),
    )
    .await;
    assert_eq!(failed["task"]["status"], "FAILED");
    let job = ok(
        &person,
        "get_job",
        json!({"job_id": id.as_str(), "include_history": true}),
    )
    .await;
    assert_eq!(job["job"]["status"], "FAILED");
    let statuses: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["PENDING", "RUNNING", "NEEDS_INPUT", "RUNNING", "FAILED"]
    );
    // Nothing is claimable any more, and an empty room answers null.
    let none = ok(&holder, "claim_next", json!({"room": "pr-review"})).await;
    assert_eq!(none["task"], Value::Null);
    holder.cancel().await.unwrap();
    person.cancel().await.unwrap();
}

#[tokio::test]
async fn route_tools_list_add_explain_and_remove_with_the_admin_grant() {
    let f = fixture(Duration::from_secs(60));
    let (admin, _) = connect(f.server.admin_session(), "admin").await;
    let routes = ok(&admin, "webhook_routes", json!({})).await;
    assert_eq!(routes["routes"].as_array().unwrap().len(), 1);
    assert_eq!(routes["default_room"], "general");

    let added = ok(
        &admin,
        "add_route",
        json!({"source": "github", "event": "issues.labeled", "target_room": "auto-code",
               "filter": {"label": "AI-WIP"}, "priority": 1}),
    )
    .await;
    let id = added["id"].as_u64().unwrap();

    let explained = ok(
        &admin,
        "explain_route",
        json!({"source": "github", "event": "issues.labeled", "payload": {"label": {"name": "AI-WIP"}}}),
    )
    .await;
    assert_eq!(explained["decision"], "deliver");
    assert_eq!(explained["room"], "auto-code");
    assert_eq!(explained["priority"], 1);
    let first = &explained["routes"][0];
    assert_eq!(first["id"], id);
    assert_eq!(first["matches"], true);
    assert_eq!(
        first["filters"][0],
        json!({"field": "label", "matches": true})
    );
    let other = ok(
        &admin,
        "explain_route",
        json!({"source": "github", "event": "issues.labeled", "payload": {"label": {"name": "bug"}}}),
    )
    .await;
    assert_eq!(other["room"], "general");
    assert_eq!(other["routes"][0]["matches"], false);

    let message = err(
        &admin,
        "add_route",
        json!({"source": "a", "event": "b c", "target_room": "r"}),
    )
    .await;
    assert!(message.starts_with("route_invalid_glob"), "{message}");

    let rooms = ok(&admin, "list_rooms", json!({})).await;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["auto-code", "general", "pr-review"]);

    ok(&admin, "remove_route", json!({"id": id})).await;
    let message = err(&admin, "remove_route", json!({"id": id})).await;
    assert!(message.starts_with("route_not_found"), "{message}");
    admin.cancel().await.unwrap();
}

#[tokio::test]
async fn rooms_and_tasks_are_resources_a_client_can_read() {
    let f = fixture(Duration::from_secs(60));
    let (client, _) = connect(f.server.session(), "reader").await;
    let id: TaskId = f
        .store
        .insert(new_task("pr-review", "res"))
        .await
        .unwrap()
        .id;
    ok(&client, "join_room", json!({"room": "pr-review"})).await;
    let listed = client.list_all_resources().await.unwrap();
    assert_eq!(listed[0].uri, "hookroom://rooms/pr-review");
    let read = |uri: String| {
        let client = &client;
        async move {
            let result = client
                .read_resource(hookroom::mcp::rmcp::model::ReadResourceRequestParams::new(
                    uri,
                ))
                .await
                .unwrap();
            let text = match &result.contents[0] {
                hookroom::mcp::rmcp::model::ResourceContents::TextResourceContents {
                    text, ..
                } => text.clone(),
                other => panic!("{other:?}"),
            };
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    let room = read("hookroom://rooms/pr-review".into()).await;
    assert_eq!(room["tasks"][0]["id"], id.as_str());
    let task = read(format!("hookroom://tasks/{id}")).await;
    assert_eq!(task["untrusted"]["payload"]["number"], 42);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_signed_github_webhook_reaches_an_mcp_agent_and_its_job_ends_done() {
    use bytes::Bytes;
    use hookroom::service::WebhookService;
    use hookroom::source::GithubSource;
    use hookroom::verify::{GithubVerifier, Secrets};
    use tower::ServiceExt;

    const SECRET: &str = "It's a Secret to Everybody";
    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let router = Arc::new(
        RuleRouter::new(
            vec![RouteSpec::new("github", "pull_request.*", "pr-review")],
            None,
        )
        .unwrap(),
    );
    let ingest = WebhookService::builder(router.clone(), store.clone())
        .status_sink(Arc::new(jobs.clone()))
        .source(
            "github",
            Arc::new(GithubVerifier::new(Secrets::try_from(SECRET).unwrap())),
            Arc::new(GithubSource::new()),
        )
        .build();
    let server = McpServer::builder(store.clone())
        .jobs(jobs.clone())
        .router(router)
        .build();
    let (client, mut updates) = connect(server.session(), "claude").await;
    ok(
        &client,
        "join_room",
        json!({"room": "pr-review", "capabilities": ["review"]}),
    )
    .await;

    let body = Bytes::from_static(
        br#"{"action":"opened","number":42,"pull_request":{"number":42,"title":"Test PR","html_url":"https://github.com/o/r/pull/42"},"repository":{"full_name":"o/r"}}"#,
    );
    let request = http::Request::post("/webhook/github")
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "gh-delivery-1")
        .header(
            "x-hub-signature-256",
            hookroom::verify::github::sign(SECRET.as_bytes(), &body),
        )
        .body(http_body_util::Full::new(body))
        .unwrap();
    let response = ingest.oneshot(request).await.unwrap();
    let status = response.status();
    let answer = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(status.is_success(), "{status} {answer:?}");

    let uri = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a notification for the webhook's task")
        .unwrap();
    assert_eq!(uri, "hookroom://rooms/pr-review");
    let listed = ok(
        &client,
        "list_tasks",
        json!({"room": "pr-review", "status": "PENDING"}),
    )
    .await;
    let id = listed["tasks"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed["tasks"][0]["delivery_id"], "gh-delivery-1");
    ok(&client, "claim_task", json!({"task_id": id})).await;
    ok(
        &client,
        "complete_task",
        json!({"task_id": id, "result": "approved"}),
    )
    .await;

    let job = ok(
        &client,
        "get_job",
        json!({"job_id": id, "include_history": true}),
    )
    .await;
    assert_eq!(job["job"]["status"], "DONE");
    assert_eq!(job["job"]["input_data"]["room"], "pr-review");
    let statuses: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["PENDING", "RUNNING", "DONE"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_task_subscriber_hears_when_another_session_changes_the_task() {
    use hookroom::mcp::rmcp::model::SubscribeRequestParams;

    let f = fixture(Duration::from_secs(60));
    let (watcher, mut updates) = connect(f.server.session(), "watcher").await;
    let (worker, _) = connect(f.server.session(), "worker").await;
    let id = f
        .store
        .insert(new_task("pr-review", "sub"))
        .await
        .unwrap()
        .id;
    let uri = format!("hookroom://tasks/{id}");
    #[allow(deprecated)]
    watcher
        .subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .unwrap();
    ok(&worker, "join_room", json!({"room": "pr-review"})).await;
    ok(&worker, "claim_task", json!({"task_id": id.as_str()})).await;
    let heard = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a notification for the claimed task")
        .unwrap();
    assert_eq!(heard, uri);
    ok(
        &worker,
        "complete_task",
        json!({"task_id": id.as_str(), "result": null}),
    )
    .await;
    let heard = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a notification for the completed task")
        .unwrap();
    assert_eq!(heard, uri);
    // An unknown scheme is a protocol error of resources/subscribe, not a panic.
    #[allow(deprecated)]
    let refused = watcher
        .subscribe(SubscribeRequestParams::new("file:///etc/passwd"))
        .await;
    assert!(refused.is_err());
    watcher.cancel().await.unwrap();
    worker.cancel().await.unwrap();
}

/// Each refusal names what is wrong with a code of its own and the next
/// step that would work, so that a model is not sent in circles.
#[tokio::test]
async fn every_refusal_has_its_own_code_and_the_next_step_that_works() {
    let f = fixture(Duration::from_secs(60));
    let (client, _) = connect(f.server.admin_session(), "vocabulary").await;
    let pending = f
        .store
        .insert(new_task("pr-review", "v-1"))
        .await
        .unwrap()
        .id;
    let elsewhere = f.store.insert(new_task("other", "v-2")).await.unwrap().id;

    let unjoined = err(&client, "claim_task", json!({"task_id": pending.as_str()})).await;
    assert!(
        unjoined.starts_with("room_not_joined:") && unjoined.contains("join_room"),
        "{unjoined}"
    );
    let unknown = err(
        &client,
        "complete_task",
        json!({"task_id": "nope", "result": 1}),
    )
    .await;
    assert!(unknown.starts_with("task_not_found:"), "{unknown}");
    let unclaimed = err(
        &client,
        "complete_task",
        json!({"task_id": pending.as_str(), "result": 1}),
    )
    .await;
    assert!(
        unclaimed.starts_with("not_held:") && unclaimed.contains("claim_task"),
        "{unclaimed}"
    );

    ok(&client, "join_room", json!({"room": "pr-review"})).await;
    ok(&client, "claim_task", json!({"task_id": pending.as_str()})).await;
    let running = err(
        &client,
        "provide_input",
        json!({"task_id": pending.as_str(), "input": 1}),
    )
    .await;
    assert!(
        running.starts_with("invalid_transition:") && running.contains("NEEDS_INPUT"),
        "{running}"
    );
    ok(
        &client,
        "complete_task",
        json!({"task_id": pending.as_str(), "result": 1}),
    )
    .await;
    for (tool, args) in [
        (
            "complete_task",
            json!({"task_id": pending.as_str(), "result": 1}),
        ),
        ("claim_task", json!({"task_id": pending.as_str()})),
        ("heartbeat", json!({"task_id": pending.as_str()})),
    ] {
        let finished = err(&client, tool, args).await;
        assert!(
            finished.starts_with("already_finished:") && finished.contains("DONE"),
            "{tool}: {finished}"
        );
    }
    // claim_task keeps claim_next's rule: the task's own room must be joined.
    let other = err(
        &client,
        "claim_task",
        json!({"task_id": elsewhere.as_str()}),
    )
    .await;
    assert!(other.starts_with("room_not_joined:"), "{other}");
}

/// The bounds an input schema states are the bounds the tool accepts.
#[tokio::test]
async fn schema_bounds_are_what_the_tools_accept() {
    let f = fixture(Duration::from_secs(60));
    let (client, _) = connect(f.server.admin_session(), "bounds").await;
    let tools = client.list_all_tools().await.unwrap();
    for name in ["list_tasks", "webhook_history"] {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let limit = &tool.input_schema["properties"]["limit"];
        assert_eq!(limit["minimum"], 1, "{name}: {limit}");
        assert_eq!(limit["maximum"], 100, "{name}: {limit}");
    }
    for (limit, accepted) in [(0, false), (1, true), (100, true), (101, false)] {
        let result = call(
            &client,
            "list_tasks",
            json!({"room": "pr-review", "limit": limit}),
        )
        .await;
        assert_eq!(result.is_error != Some(true), accepted, "limit {limit}");
    }
}
