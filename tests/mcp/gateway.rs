//! The MCP server over a gateway: its task store is an `HttpTaskStore`
//! against a Task API on 127.0.0.1 (what `hookroom mcp --gateway
//! URL` runs), driven through rmcp's own client. A task stored at the
//! gateway wakes the joined session through the gateway's event stream, and
//! the tools list, claim and complete it at the gateway.
#![cfg(all(feature = "mcp", feature = "http-client"))]

use crate::support::serve::serve;

use std::sync::Arc;
use std::time::Duration;

use hookroom::http::HttpTaskStore;
use hookroom::lifecycle::JobStatus;
use hookroom::mcp::McpServer;
use hookroom::mcp::rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, ResourceUpdatedNotificationParam,
};
use hookroom::mcp::rmcp::service::{NotificationContext, RunningService};
use hookroom::mcp::rmcp::{ClientHandler, RoleClient, ServiceExt};
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{
    AnnouncingTaskStore, InMemoryTaskStore, NewTask, Payload, TaskEvents, TaskStore,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const TOKEN: &str = "agent-token";

struct Agent {
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Agent {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("gateway-agent", "1.0"),
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

async fn ok(client: &RunningService<RoleClient, Agent>, tool: &'static str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result.structured_content.expect("structured output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tools_work_a_gateways_room_through_its_task_api() {
    // The gateway: a Task API with an event hub over an in-memory store.
    let events = Arc::new(TaskEvents::new());
    let backing = Arc::new(AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::new()),
        events.clone(),
    ));
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(TOKEN).unwrap(),
        BearerTokens::none(),
    );
    let addr = serve(
        TaskApi::builder(backing.clone(), tokens)
            .events(events)
            .keep_alive(Duration::from_millis(200))
            .build(),
    )
    .await;

    // The MCP server of `mcp_server --gateway`, without a job registry.
    let store = HttpTaskStore::builder(format!("http://{addr}"), TOKEN)
        .build()
        .unwrap();
    let server = McpServer::builder(Arc::new(store)).build();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let session = server.session();
    tokio::spawn(async move {
        if let Ok(running) = session.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (updates, mut received) = mpsc::unbounded_channel();
    let client = Agent { updates }
        .serve(client_io)
        .await
        .expect("initialize");

    let joined = ok(&client, "join_room", json!({"room": "pr-review"})).await;
    assert_eq!(joined["notifications"], true, "{joined}");

    // A task stored at the gateway wakes the session.
    let inserted = backing
        .insert(NewTask {
            room: "pr-review".into(),
            title: "[PR] opened #42: Test PR".into(),
            description: String::new(),
            priority: 1,
            source: "github".into(),
            source_event: "pull_request.opened".into(),
            source_url: None,
            delivery_id: "d-42".into(),
            payload: Payload::from(r#"{"number":42}"#),
            required_capabilities: vec![],
            ttl: None,
        })
        .await
        .unwrap();
    let uri = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("a resource update within 20 s")
        .expect("the session is alive");
    assert_eq!(uri, "hookroom://rooms/pr-review");

    let rooms = ok(&client, "list_rooms", json!({})).await;
    let room = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == "pr-review")
        .unwrap_or_else(|| panic!("pr-review in {rooms}"));
    assert_eq!(room["joined"], true);
    assert_eq!(room["pending"], 1);

    let listed = ok(
        &client,
        "list_tasks",
        json!({"room": "pr-review", "status": "PENDING"}),
    )
    .await;
    assert_eq!(listed["tasks"][0]["id"], inserted.id.as_str());

    let claimed = ok(
        &client,
        "claim_task",
        json!({"task_id": inserted.id.as_str()}),
    )
    .await;
    assert_eq!(claimed["task"]["status"], "RUNNING");
    let done = ok(
        &client,
        "complete_task",
        json!({"task_id": inserted.id.as_str(), "result": {"verdict": "approved"}}),
    )
    .await;
    assert_eq!(done["task"]["status"], "DONE");

    // The gateway's store has it.
    let stored = backing.get(&inserted.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Done);
    assert_eq!(stored.result, Some(json!({"verdict": "approved"})));
    client.cancel().await.unwrap();
}

/// Behind a gateway, a refused token and a body too large are named as
/// such (not as a failing store), with what to do about them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_401_and_413_are_unauthorized_and_payload_too_large() {
    let backing = Arc::new(InMemoryTaskStore::new());
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(TOKEN).unwrap(),
        BearerTokens::none(),
    );
    let addr = serve(
        TaskApi::builder(backing.clone(), tokens)
            .body_limit(512)
            .build(),
    )
    .await;
    let connect = |token: &str| {
        let store = HttpTaskStore::builder(format!("http://{addr}"), token)
            .build()
            .unwrap();
        McpServer::builder(Arc::new(store)).build()
    };
    let (updates, _received) = mpsc::unbounded_channel();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_io);
    let refused = connect("wrong-token");
    tokio::spawn(async move {
        let _ = refused.serve(read, write).await;
    });
    let client = Agent { updates }.serve(client_io).await.unwrap();
    let Value::Object(args) = json!({"room": "pr-review"}) else {
        unreachable!()
    };
    let answer = client
        .call_tool(CallToolRequestParams::new("list_tasks").with_arguments(args))
        .await
        .unwrap();
    let text = format!("{:?}", answer.content);
    assert!(text.contains("unauthorized:"), "{text}");
    assert!(text.contains("HOOKROOM_API_TOKEN"), "{text}");

    let (updates, _received) = mpsc::unbounded_channel();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_io);
    let accepted = connect(TOKEN);
    tokio::spawn(async move {
        let _ = accepted.serve(read, write).await;
    });
    let client = Agent { updates }.serve(client_io).await.unwrap();
    let task = backing
        .insert(NewTask {
            room: "pr-review".into(),
            title: "big".into(),
            description: String::new(),
            priority: 1,
            source: "github".into(),
            source_event: "pull_request.opened".into(),
            source_url: None,
            delivery_id: "d-big".into(),
            payload: Payload::from("{}"),
            required_capabilities: vec![],
            ttl: None,
        })
        .await
        .unwrap();
    ok(&client, "join_room", json!({"room": "pr-review"})).await;
    ok(&client, "claim_task", json!({"task_id": task.id.as_str()})).await;
    let Value::Object(args) = json!({"task_id": task.id.as_str(), "result": "x".repeat(4096)})
    else {
        unreachable!()
    };
    let answer = client
        .call_tool(CallToolRequestParams::new("complete_task").with_arguments(args))
        .await
        .unwrap();
    let text = format!("{:?}", answer.content);
    assert!(text.contains("payload_too_large:"), "{text}");
}
