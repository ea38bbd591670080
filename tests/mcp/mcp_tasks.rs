//! The MCP Tasks utility of protocol version 2025-11-25, as JSON on the
//! wire: [`McpServer::serve`] over an in-memory pipe, driven with raw
//! JSON-RPC lines (rmcp's own types lag this version, so its client cannot
//! send a task-augmented call).
#![cfg(feature = "mcp")]

use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::McpServer;
use hookroom::task::InMemoryTaskStore;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, ReadHalf, WriteHalf};

type Pipe = tokio::io::DuplexStream;

/// A client speaking newline-delimited JSON-RPC.
struct Wire {
    write: WriteHalf<Pipe>,
    lines: Lines<BufReader<ReadHalf<Pipe>>>,
    next_id: u64,
    /// Notifications received while waiting for answers.
    notifications: Vec<Value>,
}

impl Wire {
    /// Connects and initializes at `version`; answers the initialize
    /// result.
    async fn connect(server: &McpServer, version: &str) -> (Self, Value) {
        let (client, server_end) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_end);
        let server = server.clone();
        tokio::spawn(async move {
            let _ = server.serve(server_read, server_write).await;
        });
        let (read, write) = tokio::io::split(client);
        let mut wire = Self {
            write,
            lines: BufReader::new(read).lines(),
            next_id: 0,
            notifications: Vec::new(),
        };
        let init = wire
            .request(
                "initialize",
                json!({"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "wire", "version": "1"}}),
            )
            .await;
        wire.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        (wire, init["result"].clone())
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.write.write_all(line.as_bytes()).await.unwrap();
    }

    /// Sends a request and answers its response message (`result` or
    /// `error`), keeping notifications that arrive before it.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("the server is still there");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message;
            }
            if message.get("method").is_some() && message.get("id").is_none() {
                self.notifications.push(message);
            }
        }
    }

    async fn result(&mut self, method: &str, params: Value) -> Value {
        let answer = self.request(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    async fn error(&mut self, method: &str, params: Value) -> Value {
        let answer = self.request(method, params).await;
        assert!(answer.get("result").is_none(), "{method}: {answer}");
        answer["error"].clone()
    }
}

fn server() -> McpServer {
    McpServer::builder(Arc::new(InMemoryTaskStore::new())).build()
}

#[tokio::test]
async fn a_2025_11_25_session_is_told_of_tasks_and_every_tool_allows_them() {
    let (mut wire, init) = Wire::connect(&server(), "2025-11-25").await;
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert_eq!(
        init["capabilities"]["tasks"],
        json!({"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}})
    );
    // The later tasks extension (SEP-2663) is not what this server speaks.
    assert!(init["capabilities"].get("extensions").is_none(), "{init}");
    let tools = wire.result("tools/list", json!({})).await;
    let tools = tools["tools"].as_array().unwrap();
    assert!(!tools.is_empty());
    for tool in tools {
        assert_eq!(tool["execution"]["taskSupport"], "optional", "{tool}");
    }

    let (_, older) = Wire::connect(&server(), "2025-06-18").await;
    assert_eq!(older["protocolVersion"], "2025-06-18");
    assert!(older["capabilities"].get("tasks").is_none(), "{older}");
}

#[tokio::test]
async fn a_call_becomes_a_task_only_when_its_request_asks_for_one() {
    let (mut wire, _) = Wire::connect(&server(), "2025-11-25").await;
    let plain = wire
        .result("tools/call", json!({"name": "list_rooms", "arguments": {}}))
        .await;
    assert!(plain.get("task").is_none(), "{plain}");
    assert!(plain["structuredContent"]["rooms"].is_array(), "{plain}");

    let created = wire
        .result(
            "tools/call",
            json!({"name": "list_rooms", "arguments": {}, "task": {"ttl": 60000}}),
        )
        .await;
    let task = &created["task"];
    let id = task["taskId"].as_str().expect("a task id").to_owned();
    assert_eq!(task["ttl"], 60000);
    for field in ["status", "createdAt", "lastUpdatedAt", "pollInterval"] {
        assert!(task.get(field).is_some(), "{field} missing: {task}");
    }
    assert!(created.get("content").is_none(), "{created}");

    // tasks/result waits for the end and answers the tool's result.
    let result = wire.result("tasks/result", json!({"taskId": id})).await;
    assert!(result["structuredContent"]["rooms"].is_array(), "{result}");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id
    );
    let got = wire.result("tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["taskId"], id);
    assert_eq!(got["status"], "completed");
    assert_eq!(got["ttl"], 60000);
    let listed = wire.result("tasks/list", json!({})).await;
    assert!(
        listed["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["taskId"] == id),
        "{listed}"
    );
    // Its end was announced.
    let status: Vec<&Value> = wire
        .notifications
        .iter()
        .filter(|n| n["method"] == "notifications/tasks/status")
        .collect();
    assert!(
        status
            .iter()
            .any(|n| n["params"]["taskId"] == id && n["params"]["status"] == "completed"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_tool_error_fails_the_task_and_its_result_is_the_error_result() {
    let (mut wire, _) = Wire::connect(&server(), "2025-11-25").await;
    let created = wire
        .result(
            "tools/call",
            json!({"name": "complete_task", "arguments": {"task_id": "nope", "result": 1},
                   "task": {"ttl": 60000}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    let result = wire.result("tasks/result", json!({"taskId": id})).await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("task_not_found:"),
        "{result}"
    );
    let got = wire.result("tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["status"], "failed");
    // A terminal task cannot be cancelled.
    let refused = wire.error("tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(refused["code"], -32602, "{refused}");
}

#[tokio::test]
async fn unknown_and_expired_tasks_are_invalid_params_and_ttls_are_capped() {
    let (mut wire, _) = Wire::connect(&server(), "2025-11-25").await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let error = wire.error(method, json!({"taskId": "nope"})).await;
        assert_eq!(error["code"], -32602, "{method}: {error}");
    }
    let long = wire
        .result(
            "tools/call",
            json!({"name": "list_rooms", "arguments": {}, "task": {"ttl": 999_999_999u64}}),
        )
        .await;
    assert_eq!(long["task"]["ttl"], 3_600_000, "capped at an hour: {long}");
    let short = wire
        .result(
            "tools/call",
            json!({"name": "list_rooms", "arguments": {}, "task": {"ttl": 1}}),
        )
        .await;
    let id = short["task"]["taskId"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gone = wire.error("tasks/get", json!({"taskId": id})).await;
    assert_eq!(gone["code"], -32602, "expired: {gone}");
    // An unknown tool is refused before any task exists.
    let unknown = wire
        .error(
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}, "task": {}}),
        )
        .await;
    assert_eq!(unknown["code"], -32602, "{unknown}");
}

#[tokio::test]
async fn tasks_belong_to_their_session() {
    let server = server();
    let (mut a, _) = Wire::connect(&server, "2025-11-25").await;
    let (mut b, _) = Wire::connect(&server, "2025-11-25").await;
    let created = a
        .result(
            "tools/call",
            json!({"name": "list_rooms", "arguments": {}, "task": {"ttl": 60000}}),
        )
        .await;
    let id = created["task"]["taskId"].as_str().unwrap().to_owned();
    let error = b.error("tasks/get", json!({"taskId": id})).await;
    assert_eq!(error["code"], -32602, "{error}");
    let listed = b.result("tasks/list", json!({})).await;
    assert_eq!(listed["tasks"], json!([]));
}
