//! MCP over streamable HTTP behind the agent token: what the gateway mounts
//! at `/mcp`.
#![cfg(feature = "mcp")]

use std::sync::Arc;

use bytes::Bytes;
use hookroom::mcp::{McpHttpService, McpServer};
use hookroom::route::{RouteSpec, RuleRouter};
use hookroom::service::{ApiTokens, BearerTokens};
use hookroom::status::InMemoryStatusSink;
use hookroom::task::InMemoryTaskStore;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;

fn service() -> McpHttpService {
    let router = RuleRouter::new(vec![RouteSpec::new("github", "*", "pr-review")], None).unwrap();
    McpServer::builder(Arc::new(InMemoryTaskStore::new()))
        .jobs(InMemoryStatusSink::new())
        .router(Arc::new(router))
        .build()
        .http_service(ApiTokens::new(
            BearerTokens::parse_list("agent-token").unwrap(),
            BearerTokens::parse_list("admin-token").unwrap(),
        ))
}

pub(crate) fn post(
    token: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> Request<Full<Bytes>> {
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("host", "gateway.example.com");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The JSON-RPC response in a JSON or server-sent-events body.
pub(crate) async fn answer(response: http::Response<hookroom::mcp::McpBody>) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        return value;
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {text:?}"))
}

pub(crate) fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "http-agent", "version": "1"}}})
}

/// Opens an MCP session with `token`; returns its id.
pub(crate) async fn open(service: &McpHttpService, token: &str) -> String {
    let response = service
        .clone()
        .oneshot(post(Some(token), None, initialize()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = response
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let init = answer(response).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "hookroom", "{init}");
    let notified = service
        .clone()
        .oneshot(post(
            Some(token),
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        ))
        .await
        .unwrap();
    assert_eq!(notified.status(), StatusCode::ACCEPTED);
    session
}

pub(crate) async fn rpc(
    service: &McpHttpService,
    token: &str,
    session: &str,
    id: u64,
    method: &str,
    params: Value,
) -> Value {
    let response = service
        .clone()
        .oneshot(post(
            Some(token),
            Some(session),
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    answer(response).await
}

#[tokio::test]
async fn mcp_without_a_token_or_with_a_wrong_one_answers_401() {
    let service = service();
    for token in [None, Some("wrong-token"), Some("")] {
        let response = service
            .clone()
            .oneshot(post(token, None, initialize()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = answer(response).await;
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn an_agent_token_opens_a_session_that_lists_and_calls_tools() {
    let service = service();
    let session = open(&service, "agent-token").await;
    let listed = rpc(
        &service,
        "agent-token",
        &session,
        2,
        "tools/list",
        json!({}),
    )
    .await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    // An agent is offered the agent's tools only.
    assert_eq!(tools.len(), 14, "{listed}");
    assert!(tools.iter().any(|t| t["name"] == "claim_task"));
    assert!(!tools.iter().any(|t| t["name"] == "provide_input"));

    let joined = rpc(
        &service,
        "agent-token",
        &session,
        3,
        "tools/call",
        json!({"name": "join_room", "arguments": {"room": "pr-review"}}),
    )
    .await;
    assert_eq!(joined["result"]["isError"], false, "{joined}");
    assert!(
        joined["result"]["structuredContent"]["agent"]
            .as_str()
            .unwrap()
            .starts_with("http-agent-")
    );

    // The session remembers what it joined.
    let claimed = rpc(
        &service,
        "agent-token",
        &session,
        4,
        "tools/call",
        json!({"name": "claim_next", "arguments": {"room": "pr-review"}}),
    )
    .await;
    assert_eq!(claimed["result"]["isError"], false, "{claimed}");
    assert_eq!(claimed["result"]["structuredContent"]["task"], Value::Null);

    // An agent token does not grant the route tools.
    let refused = rpc(
        &service,
        "agent-token",
        &session,
        5,
        "tools/call",
        json!({"name": "webhook_routes", "arguments": {}}),
    )
    .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert!(
        refused["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("forbidden")
    );

    // A request of that session without the token is still refused.
    let response = service
        .clone()
        .oneshot(post(
            None,
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_token_grants_the_route_tools() {
    let service = service();
    let session = open(&service, "admin-token").await;
    let routes = rpc(
        &service,
        "admin-token",
        &session,
        2,
        "tools/call",
        json!({"name": "webhook_routes", "arguments": {}}),
    )
    .await;
    assert_eq!(routes["result"]["isError"], false, "{routes}");
    assert_eq!(
        routes["result"]["structuredContent"]["routes"][0]["target_room"],
        "pr-review"
    );
}

#[tokio::test]
async fn mount_mcp_sends_its_path_to_mcp_and_the_rest_to_the_gateway() {
    let gateway = tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let body = format!(r#"{{"gateway":"{}"}}"#, request.uri().path());
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(body))))
    });
    let app = hookroom::mcp::MountMcp::new("/mcp", service(), gateway);
    let response = app
        .clone()
        .oneshot(post(None, None, initialize()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut request = post(Some("agent-token"), None, initialize());
    *request.uri_mut() = "/health".parse().unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(answer(response).await, json!({"gateway": "/health"}));
    let response = app
        .oneshot(post(Some("agent-token"), None, initialize()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));
}

/// The gateway mounts as is, served by hyper.
#[allow(dead_code)]
fn the_gateway_mounts_under_hyper(gateway: hookroom::service::Gateway, mcp: McpHttpService) {
    fn served_by_hyper<S>(_: &S)
    where
        S: tower::Service<
                Request<hyper::body::Incoming>,
                Response = http::Response<hookroom::mcp::McpBody>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
    }
    served_by_hyper(&hookroom::mcp::MountMcp::new("/mcp", mcp, gateway));
}

/// Serves `service` over HTTP/1 on a fresh abstract Unix socket; returns
/// its name (`@…`).
#[cfg(target_os = "linux")]
fn serve_on_unix_socket(service: McpHttpService) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "hookroom-mcp-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let address =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name.as_bytes(),
        )
        .unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::UnixListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper_util::service::TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("@{name}")
}

/// rmcp's own streamable HTTP client, in process: the flow over HTTP, with
/// the room notification on the session's event stream.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn rmcp_client_over_streamable_http_joins_claims_and_is_notified() {
    use hookroom::mcp::rmcp::model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
        ResourceUpdatedNotificationParam,
    };
    use hookroom::mcp::rmcp::service::NotificationContext;
    use hookroom::mcp::rmcp::transport::StreamableHttpClientTransport;
    use hookroom::mcp::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use hookroom::mcp::rmcp::{ClientHandler, RoleClient, ServiceExt as _};
    use hookroom::task::{NewTask, Payload, TaskStore};
    use std::time::Duration;

    struct Agent(tokio::sync::mpsc::UnboundedSender<String>);
    impl ClientHandler for Agent {
        fn get_info(&self) -> ClientConfig {
            ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("http-claude", "1.0"),
            )
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
        }
        async fn on_resource_updated(
            &self,
            params: ResourceUpdatedNotificationParam,
            _context: NotificationContext<RoleClient>,
        ) {
            let _ = self.0.send(params.uri);
        }
    }

    let store = Arc::new(InMemoryTaskStore::new());
    let jobs = InMemoryStatusSink::new();
    let service = McpServer::builder(store.clone())
        .jobs(jobs.clone())
        .build()
        .http_service(ApiTokens::new(
            BearerTokens::parse_list("agent-token").unwrap(),
            BearerTokens::none(),
        ));
    let socket = serve_on_unix_socket(service);

    // A wrong token: the client cannot even initialize.
    let (tx, _) = tokio::sync::mpsc::unbounded_channel();
    let refused = Agent(tx)
        .serve(StreamableHttpClientTransport::from_unix_socket_with_config(
            &socket,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp")
                .auth_header("wrong-token"),
        ))
        .await;
    assert!(refused.is_err());

    let (tx, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let client = Agent(tx)
        .serve(StreamableHttpClientTransport::from_unix_socket_with_config(
            &socket,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp")
                .auth_header("agent-token"),
        ))
        .await
        .expect("initialize over HTTP");
    let call = |name: &'static str, args: Value| {
        let client = &client;
        async move {
            let Value::Object(args) = args else {
                unreachable!()
            };
            let result = client
                .call_tool(CallToolRequestParams::new(name).with_arguments(args))
                .await
                .unwrap();
            assert_ne!(result.is_error, Some(true), "{name}: {result:?}");
            result.structured_content.unwrap()
        }
    };
    assert_eq!(client.list_all_tools().await.unwrap().len(), 14);
    let joined = call("join_room", json!({"room": "pr-review"})).await;
    assert!(
        joined["agent"]
            .as_str()
            .unwrap()
            .starts_with("http-claude-")
    );

    let id = store
        .insert(NewTask {
            room: "pr-review".into(),
            title: "[PR] opened #7".into(),
            description: String::new(),
            priority: 1,
            source: "github".into(),
            source_event: "pull_request.opened".into(),
            source_url: None,
            delivery_id: "http-1".into(),
            payload: Payload::from("{}"),
            required_capabilities: Vec::new(),
            ttl: None,
        })
        .await
        .unwrap()
        .id;
    let uri = tokio::time::timeout(Duration::from_secs(10), updates.recv())
        .await
        .expect("a notification over the event stream")
        .unwrap();
    assert_eq!(uri, "hookroom://rooms/pr-review");

    let claimed = call("claim_next", json!({"room": "pr-review"})).await;
    assert_eq!(claimed["task"]["id"], id.as_str());
    let done = call(
        "complete_task",
        json!({"task_id": id.as_str(), "result": "ok"}),
    )
    .await;
    assert_eq!(done["task"]["status"], "DONE");
    let job = call(
        "get_job",
        json!({"job_id": id.as_str(), "include_history": true}),
    )
    .await;
    assert_eq!(job["job"]["status"], "DONE");
    client.cancel().await.unwrap();
}

/// The protocol edges an SDK meets first and last: the newer-version probe
/// every default connection sends, and the session's deletion.
#[tokio::test]
async fn a_newer_version_probe_is_refused_with_the_versions_spoken_and_deletion_answers_204() {
    let service = service();
    let probe = json!({"jsonrpc": "2.0", "id": 7, "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}}}});
    let response = service
        .clone()
        .oneshot(post(Some("agent-token"), None, probe))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let refused = answer(response).await;
    assert_eq!(refused["id"], 7);
    assert_eq!(refused["error"]["code"], -32022, "{refused}");
    assert_eq!(refused["error"]["data"]["requested"], "2026-07-28");
    assert!(
        refused["error"]["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!("2025-11-25")),
        "{refused}"
    );

    let session = open(&service, "agent-token").await;
    let delete = Request::delete("/mcp")
        .header("authorization", "Bearer agent-token")
        .header("host", "gateway.example.com")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let deleted = service.clone().oneshot(delete).await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

/// A task-augmented call over streamable HTTP: the wire layer carries the
/// 2025-11-25 tasks utility on this transport too.
#[tokio::test]
async fn a_task_augmented_call_over_http_is_a_task_to_follow() {
    let service = service();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "http-agent", "version": "1"}}});
    let response = service
        .clone()
        .oneshot(post(Some("agent-token"), None, init))
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let init = answer(response).await;
    assert!(
        init["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"].is_object(),
        "{init}"
    );
    let created = rpc(
        &service,
        "agent-token",
        &session,
        2,
        "tools/call",
        json!({"name": "list_rooms", "arguments": {}, "task": {"ttl": 30000}}),
    )
    .await;
    let id = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["result"]["task"]["ttl"], 30000);
    let result = rpc(
        &service,
        "agent-token",
        &session,
        3,
        "tasks/result",
        json!({"taskId": id}),
    )
    .await;
    assert!(
        result["result"]["structuredContent"]["rooms"].is_array(),
        "{result}"
    );
}
