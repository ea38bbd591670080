//! The MCP Tasks utility of protocol version 2025-11-25, on the wire.
//!
//! rmcp 3.11 models the later tasks extension (SEP-2663,
//! `io.modelcontextprotocol/tasks`) instead of the 2025-11-25 utility: its
//! `CallToolRequestParams` has no `task` field (a request's ask for task
//! execution would be dropped while parsing), its capabilities have no
//! `tasks` member, its `Tool` has no `execution`, and its `tasks/get` and
//! `tasks/cancel` answer the extension's shapes. Until rmcp carries the
//! 2025-11-25 types, both transports pass every JSON-RPC message through
//! this module before rmcp parses it ([`inbound`]) and after rmcp writes it
//! ([`outbound`]):
//!
//! - a `tools/call` whose params carry `task` becomes the custom request
//!   [`CALL`], and `tasks/get`, `tasks/result`, `tasks/list` and
//!   `tasks/cancel` become [`TASKS_PREFIX`]`tasks/…`: rmcp hands custom
//!   requests to the handler with their params untouched, and their
//!   results go back untouched;
//! - an `initialize` result for 2025-11-25 gains `capabilities.tasks`, and
//!   each tool of a `tools/list` result gains `execution.taskSupport:
//!   "optional"`.
//!
//! The tests in `tests/mcp/mcp_tasks.rs` check the resulting wire format.

use std::convert::Infallible;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::http::McpBody;

/// Prefix of the custom methods the 2025-11-25 tasks requests become.
pub(crate) const TASKS_PREFIX: &str = "hookroom/";

/// The custom method a task-augmented `tools/call` becomes.
pub(crate) const CALL: &str = "hookroom/tasks/call";

/// The protocol version whose tasks utility this module carries.
pub(crate) const TASKS_VERSION: &str = "2025-11-25";

/// Longest line the stdio pump reads, as rmcp's own stdio limit: a longer
/// line is dropped, as rmcp would drop it.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// What a client request is, for a transport that must treat its answer:
/// only `initialize` and `tools/list` results are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The answer goes out as rmcp wrote it.
    AsIs,
    /// The answer may need [`outbound`].
    Rewrite,
}

/// Rewrites one client message (or batch) before rmcp parses it.
pub(crate) fn inbound(message: &mut Value) -> Answer {
    match message {
        Value::Array(batch) => batch
            .iter_mut()
            .map(inbound_one)
            .fold(
                Answer::AsIs,
                |a, b| if b == Answer::Rewrite { b } else { a },
            ),
        one => inbound_one(one),
    }
}

fn inbound_one(message: &mut Value) -> Answer {
    let Some(object) = message.as_object_mut() else {
        return Answer::AsIs;
    };
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return Answer::AsIs;
    };
    let renamed = match method {
        "initialize" | "tools/list" => return Answer::Rewrite,
        "tools/call" => {
            let asks_for_task = object
                .get("params")
                .and_then(|p| p.get("task"))
                .is_some_and(|t| !t.is_null());
            if !asks_for_task {
                return Answer::AsIs;
            }
            CALL.to_owned()
        }
        "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" => {
            format!("{TASKS_PREFIX}{method}")
        }
        _ => return Answer::AsIs,
    };
    object.insert("method".into(), Value::String(renamed));
    Answer::AsIs
}

/// Rewrites one server message (or batch) after rmcp wrote it.
pub(crate) fn outbound(message: &mut Value) {
    match message {
        Value::Array(batch) => batch.iter_mut().for_each(outbound_one),
        one => outbound_one(one),
    }
}

fn outbound_one(message: &mut Value) {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    let initialize = result.contains_key("serverInfo")
        && result.get("protocolVersion").and_then(Value::as_str) == Some(TASKS_VERSION);
    if initialize && let Some(Value::Object(capabilities)) = result.get_mut("capabilities") {
        capabilities.insert(
            "tasks".into(),
            json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } }),
        );
        return;
    }
    if let Some(Value::Array(tools)) = result.get_mut("tools") {
        for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
            if tool.contains_key("inputSchema") {
                tool.entry("execution")
                    .or_insert_with(|| json!({ "taskSupport": "optional" }));
                for schema in ["inputSchema", "outputSchema"] {
                    if let Some(schema) = tool.get_mut(schema) {
                        drop_rust_formats(schema);
                    }
                }
            }
        }
    }
}

/// Removes the `format`s schemars writes for Rust's number types (`uint32`,
/// `int64`, `double`, …), which JSON Schema does not define: the TypeScript
/// SDK's validator warns about each one on every `tools/list`. The bounds
/// they imply are stated as `minimum`/`maximum` where a tool relies on them.
fn drop_rust_formats(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let rust = object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| {
                    matches!(f, "double" | "float") || f.starts_with("int") || f.starts_with("uint")
                });
            if rust {
                object.remove("format");
            }
            object.values_mut().for_each(drop_rust_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_rust_formats),
        _ => {}
    }
}

/// One line through `rewrite`; a line that is not JSON passes as it is.
fn rewrite_line<T>(line: &str, rewrite: impl Fn(&mut Value) -> T) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(mut value) => {
            rewrite(&mut value);
            value.to_string()
        }
        Err(_) => line.to_owned(),
    }
}

/// Copies newline-delimited messages from `read` to `write` through
/// `rewrite`, until `read` ends; lines longer than [`MAX_LINE`] are dropped.
pub(crate) async fn pump<R, W, T>(
    read: R,
    mut write: W,
    rewrite: fn(&mut Value) -> T,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut oversized = false;
        // Bounded: a line past the limit is skipped to its end rather
        // than buffered.
        loop {
            let buffer = read.fill_buf().await?;
            if buffer.is_empty() {
                break;
            }
            let (chunk, found) = match buffer.iter().position(|b| *b == b'\n') {
                Some(at) => (&buffer[..=at], true),
                None => (buffer, false),
            };
            let length = chunk.len();
            if !oversized && line.len() + length <= MAX_LINE {
                line.extend_from_slice(chunk);
            } else {
                oversized = true;
                line.clear();
            }
            read.consume(length);
            if found {
                break;
            }
        }
        if line.is_empty() && !oversized {
            // Half-closes a duplex pipe, so the reader on its other end
            // sees the end too.
            write.shutdown().await?;
            return Ok(());
        }
        if oversized {
            tracing::warn!(
                limit = MAX_LINE,
                "dropped an MCP message longer than the limit"
            );
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.trim().is_empty() {
            continue;
        }
        let out = rewrite_line(trimmed, rewrite);
        write.write_all(out.as_bytes()).await?;
        write.write_all(b"\n").await?;
        write.flush().await?;
    }
}

/// Rewrites a streamable HTTP answer body: a JSON message, or an SSE stream
/// whose `data:` lines are messages.
pub(crate) fn outbound_body(body: &[u8], event_stream: bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    if !event_stream {
        return rewrite_line(&text, outbound).into_bytes();
    }
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(content) => (content, "\n"),
            None => (line, ""),
        };
        match content.strip_prefix("data:") {
            Some(data) => {
                out.push_str("data: ");
                out.push_str(&rewrite_line(data.trim_start(), outbound));
            }
            None => out.push_str(content),
        }
        out.push_str(end);
    }
    out.into_bytes()
}

/// Largest streamable HTTP message body the wire layer reads, as the
/// stdio limit.
const MAX_BODY: usize = MAX_LINE;

/// Why a body could not be read whole.
#[derive(Debug)]
enum ReadBody {
    /// Longer than [`MAX_BODY`].
    TooLarge,
    /// The body's stream failed.
    Failed(String),
}

/// Reads a whole body, up to [`MAX_BODY`] bytes.
async fn read_body<B>(body: B) -> Result<Bytes, ReadBody>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadBody::Failed(e.to_string()))?;
        if let Ok(mut data) = frame.into_data() {
            if bytes.len() + data.remaining() > MAX_BODY {
                return Err(ReadBody::TooLarge);
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                bytes.extend_from_slice(chunk);
                let read = chunk.len();
                data.advance(read);
            }
        }
    }
    Ok(bytes.freeze())
}

fn body_error(error: ReadBody) -> Response<McpBody> {
    let (status, code, message) = match error {
        ReadBody::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("an MCP message may be at most {MAX_BODY} bytes"),
        ),
        ReadBody::Failed(detail) => (
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the request body could not be read: {detail}"),
        ),
    };
    crate::service::json_error::JsonError::new(status, code, &message)
        .into_response()
        .map(BodyExt::boxed)
}

/// The `META_PROTOCOL_VERSION` a request names in its `_meta` (the
/// 2026-07-28 way to pick a version without `initialize`).
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// The answer to a request that names, in its `_meta`, a protocol version
/// this server does not speak (an SDK probing `server/discover` at a newer
/// version before it falls back to `initialize`): `400` with the
/// `-32022` error listing the versions it does speak, as rmcp would answer,
/// but answered here so the probe every default SDK connection sends is not
/// logged as a failure.
fn unsupported_version(body: &[u8]) -> Option<Response<McpBody>> {
    let message: Value = serde_json::from_slice(body).ok()?;
    let id = message.get("id")?.clone();
    let requested = message
        .get("params")?
        .get("_meta")?
        .get(META_PROTOCOL_VERSION)?
        .as_str()?;
    let supported = super::server::supported_protocol_versions();
    if supported.iter().any(|v| v.as_str() == requested) {
        return None;
    }
    let error = rmcp::ErrorData::new(
        rmcp::model::ErrorCode::UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        Some(json!({ "requested": requested, "supported": supported })),
    );
    let answer = json!({ "jsonrpc": "2.0", "id": id, "error": error });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())).boxed());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Some(response)
}

/// Passes an authenticated streamable HTTP request to rmcp's service
/// through the wire layer: a POSTed message through [`inbound`], the answer
/// to `initialize` or `tools/list` through [`outbound`]. A session's
/// deletion answers `204 No Content`, which the SDKs take as done (rmcp
/// answers `202`, which they report as a failed termination).
pub(crate) async fn forward<S, B>(mut inner: S, request: Request<B>) -> Response<McpBody>
where
    S: tower_service::Service<
            Request<Full<Bytes>>,
            Response = Response<McpBody>,
            Error = Infallible,
        >,
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let (mut parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return body_error(error),
    };
    if parts.method == Method::POST
        && !parts.headers.contains_key("mcp-session-id")
        && let Some(refusal) = unsupported_version(&body)
    {
        return refusal;
    }
    let delete = parts.method == Method::DELETE;
    let mut answer = Answer::AsIs;
    let body = if parts.method == Method::POST
        && let Ok(mut message) = serde_json::from_slice::<Value>(&body)
    {
        answer = inbound(&mut message);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Bytes::from(message.to_string())
    } else {
        body
    };
    let Ok(mut response) = inner
        .call(Request::from_parts(parts, Full::new(body)))
        .await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    if answer == Answer::AsIs || !response.status().is_success() {
        return response;
    }
    let event_stream = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let (mut parts, body) = response.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(error) => return body_error(error),
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let body = Bytes::from(outbound_body(&body, event_stream));
    Response::from_parts(parts, Full::new(body).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_asks_for_a_task_becomes_the_custom_request() {
        let mut call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "get_task", "arguments": {}, "task": {"ttl": 1000}}});
        inbound(&mut call);
        assert_eq!(call["method"], CALL);
        let mut plain = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "get_task", "arguments": {}}});
        inbound(&mut plain);
        assert_eq!(plain["method"], "tools/call");
        let mut get =
            json!({"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"taskId": "x"}});
        inbound(&mut get);
        assert_eq!(get["method"], "hookroom/tasks/get");
    }

    #[test]
    fn only_a_2025_11_25_initialize_gains_the_tasks_capability() {
        let mut new = json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}}, "serverInfo": {"name": "h", "version": "1"}}});
        outbound(&mut new);
        assert_eq!(
            new["result"]["capabilities"]["tasks"]["requests"]["tools"]["call"],
            json!({})
        );
        let mut old = json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}}, "serverInfo": {"name": "h", "version": "1"}}});
        outbound(&mut old);
        assert!(old["result"]["capabilities"].get("tasks").is_none());
    }

    #[test]
    fn tool_schemas_lose_only_the_formats_json_schema_does_not_define() {
        let mut list = json!({"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "t",
            "inputSchema": {"properties": {"limit": {"type": "integer", "format": "uint32", "minimum": 1},
                                           "at": {"type": "string", "format": "date-time"}}}}]}});
        outbound(&mut list);
        let properties = &list["result"]["tools"][0]["inputSchema"]["properties"];
        assert!(properties["limit"].get("format").is_none(), "{properties}");
        assert_eq!(properties["limit"]["minimum"], 1);
        assert_eq!(properties["at"]["format"], "date-time");
    }

    #[test]
    fn an_event_stream_keeps_its_framing() {
        let body = b"id: 0\nretry: 3000\ndata: \n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\",\"inputSchema\":{}}]}}\n\n";
        let out = String::from_utf8(outbound_body(body, true)).unwrap();
        assert!(out.starts_with("id: 0\nretry: 3000\ndata: \n\n"), "{out}");
        assert!(out.contains("\"taskSupport\":\"optional\""), "{out}");
        assert!(out.ends_with("}\n\n"), "{out}");
    }
}
