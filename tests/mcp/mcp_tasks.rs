//! The MCP Tasks extension (SEP-2663) through rmcp's own client, in process:
//! hookroom tasks followed as MCP tasks, NEEDS_INPUT as `input_required`.
#![cfg(feature = "mcp")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ClientCapabilities,
    ClientConfig, ErrorCode, GetTaskParams, Implementation, InputRequest, ProtocolVersion,
    TaskPayload, TaskStatus, UpdateTaskParams,
};
use hookroom::mcp::rmcp::service::RunningService;
use hookroom::mcp::rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use hookroom::mcp::{McpServer, McpSession};
use hookroom::status::JobStatus;
use hookroom::task::{
    ClaimRequest, FailAction, InMemoryTaskStore, NewTask, Payload, TaskId, TaskStore,
};
use serde_json::{Value, json};

/// A client that declares the tasks extension, or not.
struct Client {
    tasks: bool,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("follower", "1.0"))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }
}

type Running = RunningService<RoleClient, Client>;

async fn connect(session: McpSession, tasks: bool) -> Running {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = session.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    Client { tasks }.serve(client_io).await.expect("initialize")
}

fn params(tool: &'static str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(tool).with_arguments(args)
}

/// The structured output of a call that completes.
async fn ok(client: &Running, tool: &'static str, args: Value) -> Value {
    let result: CallToolResult = match client.call_tool_once(params(tool, args)).await {
        Ok(CallToolResponse::Complete(result)) => result,
        other => panic!("{tool}: {other:?}"),
    };
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result.structured_content.expect("structured output")
}

fn new_task(delivery: &str) -> NewTask {
    NewTask {
        room: "pr-review".into(),
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

fn server() -> (Arc<InMemoryTaskStore>, McpServer) {
    let store = Arc::new(InMemoryTaskStore::new());
    let server = McpServer::builder(store.clone()).build();
    (store, server)
}

fn claim(agent: &str) -> ClaimRequest {
    ClaimRequest {
        room: "pr-review".into(),
        agent: agent.into(),
        capabilities: Vec::new(),
        lease: Duration::from_secs(60),
    }
}

async fn mcp_get(client: &Running, id: &TaskId) -> hookroom::mcp::rmcp::model::DetailedTask {
    client
        .peer()
        .get_task(GetTaskParams::new(id.as_str()))
        .await
        .expect("tasks/get")
        .task
}

/// The single outstanding input request: its key and elicitation message.
fn input_request(payload: &TaskPayload) -> (String, String) {
    let TaskPayload::InputRequired { input_requests } = payload else {
        panic!("expected input_required, got {payload:?}")
    };
    assert_eq!(input_requests.len(), 1, "{input_requests:?}");
    let (key, request) = input_requests.iter().next().expect("one request");
    assert!(
        matches!(request, InputRequest::Elicitation(_)),
        "{request:?}"
    );
    let wire = serde_json::to_value(request).expect("serializes");
    assert_eq!(wire["method"], "elicitation/create");
    let message = wire["params"]["message"].as_str().expect("message");
    (key.clone(), message.to_owned())
}

fn answer(key: &str, response: Value) -> BTreeMap<String, Value> {
    BTreeMap::from([(key.to_owned(), response)])
}

fn protocol_code(error: ServiceError) -> ErrorCode {
    match error {
        ServiceError::McpError(e) => e.code,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test]
async fn ask_input_is_followed_as_an_mcp_task_through_answer_and_completion() {
    let (store, server) = server();
    let id = store.insert(new_task("d-1")).await.unwrap().id;
    let client = connect(server.session(), true).await;
    let info = client.peer_info().expect("server info");
    assert!(
        info.capabilities.supports_tasks(),
        "tasks extension advertised"
    );

    ok(&client, "claim_task", json!({"task_id": id.as_str()})).await;
    assert_eq!(mcp_get(&client, &id).await.status(), TaskStatus::Working);

    // ask_input answers with the hookroom task as an MCP task, same id.
    let response = client
        .call_tool_once(params(
            "ask_input",
            json!({"task_id": id.as_str(), "prompt": "Which branch?"}),
        ))
        .await
        .unwrap();
    let CallToolResponse::Task(created) = response else {
        panic!("expected a CreateTaskResult, got {response:?}")
    };
    assert_eq!(created.task.task_id, id.as_str());
    assert_eq!(created.task.status, TaskStatus::InputRequired);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::NeedsInput
    );

    // tasks/get: input_required with the prompt as a form elicitation.
    let detailed = mcp_get(&client, &id).await;
    assert_eq!(detailed.status(), TaskStatus::InputRequired);
    let (key, message) = input_request(&detailed.payload);
    assert_eq!(message, "Which branch?");

    // tasks/update with the accepted answer provides the input.
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                &key,
                json!({"action": "accept", "content": {"answer": "main"}}),
            ),
        ))
        .await
        .expect("tasks/update");
    let task = store.get(&id).await.unwrap().unwrap();
    assert_eq!(task.input, Some(json!("main")));
    assert_eq!(mcp_get(&client, &id).await.status(), TaskStatus::Working);

    // The holder takes the answer on its heartbeat; still working.
    let beat = ok(&client, "heartbeat", json!({"task_id": id.as_str()})).await;
    assert_eq!(beat["input"], json!("main"));
    assert_eq!(beat["task"]["status"], "RUNNING");
    assert_eq!(mcp_get(&client, &id).await.status(), TaskStatus::Working);

    // A second question is a new request under a new key; the old key no
    // longer answers it.
    let response = client
        .call_tool_once(params(
            "ask_input",
            json!({"task_id": id.as_str(), "prompt": "Squash or merge?"}),
        ))
        .await
        .unwrap();
    assert!(
        matches!(response, CallToolResponse::Task(_)),
        "{response:?}"
    );
    let (second, message) = input_request(&mcp_get(&client, &id).await.payload);
    assert_eq!(message, "Squash or merge?");
    assert_ne!(second, key);
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                &key,
                json!({"action": "accept", "content": {"answer": "stale"}}),
            ),
        ))
        .await
        .unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().input, None);
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                &second,
                json!({"action": "accept", "content": {"answer": "squash"}}),
            ),
        ))
        .await
        .unwrap();
    let beat = ok(&client, "heartbeat", json!({"task_id": id.as_str()})).await;
    assert_eq!(beat["input"], json!("squash"));

    // DONE: completed with the tool result carrying the task's result.
    ok(
        &client,
        "complete_task",
        json!({"task_id": id.as_str(), "result": {"merged": true}}),
    )
    .await;
    let detailed = mcp_get(&client, &id).await;
    let TaskPayload::Completed { result } = detailed.payload else {
        panic!("expected completed, got {:?}", detailed.payload)
    };
    let result: CallToolResult = serde_json::from_value(Value::Object(result)).unwrap();
    assert_ne!(result.is_error, Some(true));
    let structured = result.structured_content.expect("structured");
    assert_eq!(structured["task"]["status"], "DONE");
    assert_eq!(structured["task"]["result"], json!({"merged": true}));
}

#[tokio::test]
async fn needs_input_from_the_store_is_input_required_and_a_decline_changes_nothing() {
    let (store, server) = server();
    let id = store.insert(new_task("d-2")).await.unwrap().id;
    let claimed = store.claim_task(&id, &claim("runtime")).await.unwrap();
    store
        .request_input(&id, &claimed.token, "Approve the deploy?")
        .await
        .unwrap();
    let client = connect(server.session(), true).await;

    let detailed = mcp_get(&client, &id).await;
    assert_eq!(detailed.status(), TaskStatus::InputRequired);
    assert_eq!(
        detailed.task.status_message.as_deref(),
        Some("NEEDS_INPUT: Approve the deploy?")
    );
    let (key, message) = input_request(&detailed.payload);
    assert_eq!(message, "Approve the deploy?");

    // A declined form and an unknown key leave the task waiting.
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(&key, json!({"action": "decline"})),
        ))
        .await
        .expect("decline is acknowledged");
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                "input-other",
                json!({"action": "accept", "content": {"answer": "x"}}),
            ),
        ))
        .await
        .expect("unknown keys are ignored");
    let task = store.get(&id).await.unwrap().unwrap();
    assert_eq!(task.status, JobStatus::NeedsInput);
    assert_eq!(task.input, None);
    assert_eq!(
        mcp_get(&client, &id).await.status(),
        TaskStatus::InputRequired
    );

    // An accepted form without the answer field is invalid params.
    let error = client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(&key, json!({"action": "accept", "content": {}})),
        ))
        .await
        .unwrap_err();
    assert_eq!(protocol_code(error), ErrorCode::INVALID_PARAMS);

    // The holder (not this session) takes the answer as it would from provide_input.
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                &key,
                json!({"action": "accept", "content": {"answer": "yes"}}),
            ),
        ))
        .await
        .unwrap();
    assert_eq!(mcp_get(&client, &id).await.status(), TaskStatus::Working);
    let input = store.take_input(&id, &claimed.token).await.unwrap();
    assert_eq!(input, Some(json!("yes")));
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
}

#[tokio::test]
async fn a_failed_task_is_failed_with_its_reason() {
    let (store, server) = server();
    let id = store.insert(new_task("d-3")).await.unwrap().id;
    let claimed = store.claim_task(&id, &claim("runtime")).await.unwrap();
    store
        .fail(&id, &claimed.token, "repository archived", FailAction::Fail)
        .await
        .unwrap();
    let client = connect(server.session(), true).await;

    let detailed = mcp_get(&client, &id).await;
    let TaskPayload::Failed { error } = detailed.payload else {
        panic!("expected failed, got {:?}", detailed.payload)
    };
    assert_eq!(error["message"], "repository archived");
    assert_eq!(error["data"]["taskId"], id.as_str());
}

#[tokio::test]
async fn an_unknown_id_is_invalid_params() {
    let (_store, server) = server();
    let client = connect(server.session(), true).await;
    let peer = client.peer();

    let error = peer.get_task(GetTaskParams::new("no-such-task")).await;
    assert_eq!(protocol_code(error.unwrap_err()), ErrorCode::INVALID_PARAMS);
    let error = peer
        .update_task(UpdateTaskParams::new("no-such-task", BTreeMap::new()))
        .await;
    assert_eq!(protocol_code(error.unwrap_err()), ErrorCode::INVALID_PARAMS);
    let error = peer
        .cancel_task(CancelTaskParams::new("no-such-task"))
        .await;
    assert_eq!(protocol_code(error.unwrap_err()), ErrorCode::INVALID_PARAMS);
}

#[tokio::test]
async fn a_client_without_the_extension_keeps_tool_results_and_is_refused_tasks_methods() {
    let (store, server) = server();
    let id = store.insert(new_task("d-4")).await.unwrap().id;
    let client = connect(server.session(), false).await;

    ok(&client, "claim_task", json!({"task_id": id.as_str()})).await;
    let out = ok(
        &client,
        "ask_input",
        json!({"task_id": id.as_str(), "prompt": "Which branch?"}),
    )
    .await;
    assert_eq!(out["task"]["status"], "NEEDS_INPUT");
    assert_eq!(out["task"]["input_request"], "Which branch?");

    let peer = client.peer();
    let error = peer.get_task(GetTaskParams::new(id.as_str())).await;
    assert_eq!(
        protocol_code(error.unwrap_err()),
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
    );
    let error = peer
        .update_task(UpdateTaskParams::new(id.as_str(), BTreeMap::new()))
        .await;
    assert_eq!(
        protocol_code(error.unwrap_err()),
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
    );
    let error = peer.cancel_task(CancelTaskParams::new(id.as_str())).await;
    assert_eq!(
        protocol_code(error.unwrap_err()),
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
    );
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::NeedsInput
    );
}

#[tokio::test]
async fn cancel_gives_back_only_this_sessions_claim() {
    let (store, server) = server();
    let id = store.insert(new_task("d-5")).await.unwrap().id;
    let holder = connect(server.session(), true).await;
    let other = connect(server.session(), true).await;
    ok(&holder, "claim_task", json!({"task_id": id.as_str()})).await;

    let error = other
        .peer()
        .cancel_task(CancelTaskParams::new(id.as_str()))
        .await
        .unwrap_err();
    assert_eq!(protocol_code(error), ErrorCode::INVALID_PARAMS);
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().status,
        JobStatus::Running
    );

    holder
        .peer()
        .cancel_task(CancelTaskParams::new(id.as_str()))
        .await
        .expect("the holder may cancel");
    let task = store.get(&id).await.unwrap().unwrap();
    assert_eq!(task.status, JobStatus::Pending);
    assert_eq!(task.claimed_by, None);
    // Back in its room: working, and the other session can claim it now.
    assert_eq!(mcp_get(&holder, &id).await.status(), TaskStatus::Working);
    ok(&other, "claim_task", json!({"task_id": id.as_str()})).await;
    let error = holder
        .peer()
        .cancel_task(CancelTaskParams::new(id.as_str()))
        .await
        .unwrap_err();
    assert_eq!(protocol_code(error), ErrorCode::INVALID_PARAMS);
}

/// The same over streamable HTTP, with rmcp's HTTP client.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn over_streamable_http_needs_input_is_input_required_and_answered() {
    use hookroom::mcp::McpHttpService;
    use hookroom::mcp::rmcp::transport::StreamableHttpClientTransport;
    use hookroom::mcp::rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use hookroom::service::{ApiTokens, BearerTokens};

    fn serve_on_unix_socket(service: McpHttpService) -> String {
        let name = format!("hookroom-mcp-tasks-test-{}", std::process::id());
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

    let (store, server) = server();
    let id = store.insert(new_task("d-http")).await.unwrap().id;
    let socket = serve_on_unix_socket(server.http_service(ApiTokens::new(
        BearerTokens::parse_list("agent-token").unwrap(),
        BearerTokens::none(),
    )));
    let client = Client { tasks: true }
        .serve(StreamableHttpClientTransport::from_unix_socket_with_config(
            &socket,
            StreamableHttpClientTransportConfig::with_uri("http://localhost/mcp")
                .auth_header("agent-token"),
        ))
        .await
        .expect("initialize over HTTP");

    ok(&client, "claim_task", json!({"task_id": id.as_str()})).await;
    let response = client
        .call_tool_once(params(
            "ask_input",
            json!({"task_id": id.as_str(), "prompt": "Ship it?"}),
        ))
        .await
        .unwrap();
    assert!(
        matches!(response, CallToolResponse::Task(_)),
        "{response:?}"
    );
    let (key, message) = input_request(&mcp_get(&client, &id).await.payload);
    assert_eq!(message, "Ship it?");
    client
        .peer()
        .update_task(UpdateTaskParams::new(
            id.as_str(),
            answer(
                &key,
                json!({"action": "accept", "content": {"answer": "yes"}}),
            ),
        ))
        .await
        .unwrap();
    assert_eq!(
        store.get(&id).await.unwrap().unwrap().input,
        Some(json!("yes"))
    );
    assert_eq!(mcp_get(&client, &id).await.status(), TaskStatus::Working);
}
