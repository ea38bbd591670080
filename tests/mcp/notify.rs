//! What a joined room notifies: only work that is new since the session
//! joined (or since the last notification), whether the store announces its
//! tasks (an event hub) or the server hears of them through a SQLite file's
//! `data_version`, written by another process.
#![cfg(feature = "mcp")]

use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::McpServer;
use hookroom::mcp::rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProtocolVersion, ResourceUpdatedNotificationParam,
};
use hookroom::mcp::rmcp::service::{NotificationContext, RunningService};
use hookroom::mcp::rmcp::{ClientHandler, RoleClient, ServiceExt};
use hookroom::task::{
    AnnouncingTaskStore, ClaimRequest, InMemoryTaskStore, NewTask, Payload, TaskEvents, TaskStore,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct Agent {
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Agent {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("notified", "1.0"),
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

async fn connect(server: &McpServer) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_io);
    let server = server.clone();
    tokio::spawn(async move {
        let _ = server.serve(read, write).await;
    });
    let (updates, received) = mpsc::unbounded_channel();
    let client = Agent { updates }
        .serve(client_io)
        .await
        .expect("initialize");
    (client, received)
}

async fn ok(client: &Client, tool: &'static str, args: Value) -> Value {
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

fn new_task(delivery: &str) -> NewTask {
    NewTask {
        room: "pr-review".into(),
        title: format!("[PR] {delivery}"),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "pull_request.opened".into(),
        source_url: None,
        delivery_id: delivery.into(),
        payload: Payload::from("{}"),
        required_capabilities: vec![],
        ttl: None,
    }
}

/// Nothing arrives within `quiet`.
async fn silent(received: &mut mpsc::UnboundedReceiver<String>, quiet: Duration, why: &str) {
    if let Ok(Some(uri)) = tokio::time::timeout(quiet, received.recv()).await {
        panic!("{why}: notified about {uri}");
    }
}

/// One notification for the room within 10 s.
async fn heard(received: &mut mpsc::UnboundedReceiver<String>) {
    let uri = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("a notification within 10 s")
        .expect("the session is alive");
    assert_eq!(uri, "hookroom://rooms/pr-review");
}

/// Puts history in the room: a finished task and a pending one.
async fn history(store: &dyn TaskStore) {
    let done = store.insert(new_task("old-done")).await.unwrap();
    let claim = ClaimRequest {
        room: "pr-review".into(),
        agent: "someone".into(),
        capabilities: vec![],
        lease: Duration::from_secs(60),
    };
    let claimed = store.claim_task(&done.id, &claim).await.unwrap();
    store
        .complete(&done.id, &claimed.token, None)
        .await
        .unwrap();
    store.insert(new_task("old-pending")).await.unwrap();
}

#[tokio::test]
async fn an_announcing_store_notifies_only_work_new_since_join() {
    let events = Arc::new(TaskEvents::new());
    let store = Arc::new(AnnouncingTaskStore::new(
        Arc::new(InMemoryTaskStore::new()),
        events,
    ));
    history(store.as_ref()).await;
    let server = McpServer::builder(store.clone()).build();
    let (client, mut received) = connect(&server).await;
    let joined = ok(&client, "join_room", json!({"room": "pr-review"})).await;
    assert_eq!(joined["notifications"], true);
    silent(
        &mut received,
        Duration::from_millis(300),
        "history is not news",
    )
    .await;

    store.insert(new_task("new-1")).await.unwrap();
    heard(&mut received).await;
    // Claiming it is not new work.
    ok(&client, "claim_next", json!({"room": "pr-review"})).await;
    silent(
        &mut received,
        Duration::from_millis(300),
        "a claim is not new work",
    )
    .await;
}

/// `hookroom mcp --store sqlite:FILE` beside a gateway on the same file:
/// the gateway's commits reach the MCP server only through the file.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_file_written_by_another_connection_wakes_a_joined_room() {
    use hookroom::sqlite::SqliteTaskStore;
    let dir = std::env::temp_dir().join(format!("hookroom-mcp-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasks.db");
    // The other process: its own connection to the file.
    let gateway = SqliteTaskStore::open(&path).unwrap();
    history(&gateway).await;
    let mine = Arc::new(SqliteTaskStore::open(&path).unwrap());

    let without = McpServer::builder(mine.clone()).build();
    let (client, _) = connect(&without).await;
    let joined = ok(&client, "join_room", json!({"room": "pr-review"})).await;
    assert_eq!(
        joined["notifications"], false,
        "no notifications without wake-ups"
    );

    let server = McpServer::builder(mine)
        .sqlite_wakeups(&path, Duration::from_millis(50))
        .build();
    let (client, mut received) = connect(&server).await;
    let joined = ok(&client, "join_room", json!({"room": "pr-review"})).await;
    assert_eq!(joined["notifications"], true);
    silent(
        &mut received,
        Duration::from_millis(400),
        "history is not news",
    )
    .await;

    gateway.insert(new_task("from-the-gateway")).await.unwrap();
    heard(&mut received).await;
    // A commit that adds no work (a claim by the other process) is silent.
    let claim = ClaimRequest {
        room: "pr-review".into(),
        agent: "other".into(),
        capabilities: vec![],
        lease: Duration::from_secs(60),
    };
    gateway
        .claim(&claim)
        .await
        .unwrap()
        .expect("a task to claim");
    silent(
        &mut received,
        Duration::from_millis(400),
        "a claim is not new work",
    )
    .await;
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
}
