//! An MCP server (Model Context Protocol) for LLM agents: rooms, tasks,
//! routes, webhook history and jobs as MCP tools, over stdio or streamable
//! HTTP. Feature `mcp`, built on rmcp, the official Rust SDK.
//!
//! The tools work over the crate's own collaborators, so they work with
//! every [`TaskStore`](crate::task::TaskStore):
//!
//! | group | tools |
//! | --- | --- |
//! | rooms | `join_room(room, capabilities)`, `leave_room(room)`, `list_rooms()` |
//! | tasks | `list_tasks(room, status?, source?, limit?)`, `get_task(task_id)`, `claim_task(task_id)`, `claim_next(room)`, `heartbeat(task_id)`, `complete_task(task_id, result)`, `fail_task(task_id, reason, retry)`, `ask_input(task_id, prompt)`, `provide_input(task_id, input)` |
//! | routes and history | `webhook_routes()`, `add_route(source, event, target_room, filter?, priority?)`, `remove_route(id)`, `explain_route(source, event, payload)` (these four need the admin grant), `webhook_history(room?, source?, limit?)` |
//! | jobs | `get_job(job_id, include_history)`, `update_job(job_id, status, progress?, message?)`, `complete_job(job_id, final_status, summary?, artifacts?)` |
//!
//! # Sessions hold the claims
//! Claim tokens never reach the model: the session keeps each claim's token
//! and heartbeats its claims every third of the lease while it lives. When
//! the session ends (the stdio client exits, the HTTP session is deleted or
//! idles out) the heartbeats stop and the claims lapse with their lease.
//! The agent name is `{client name}-{8 hex digits}` unless the server sets
//! one, and capabilities are those declared in `join_room`.
//!
//! # Errors
//! A refused call (bad argument, a task held by another agent, a missing
//! grant) is a tool result with `isError: true` and the text
//! `{code}: {message}` ([`ToolError`]), never a protocol error; arguments
//! that do not match the tool's schema are tool errors as well.
//!
//! A task tool whose change reached the store but not the task's job (the
//! status sink refused it; see [`report_to_job`](crate::ops::report_to_job))
//! still succeeds, and its answer carries `job_report_error`
//! (`{code}: {message}`).
//!
//! # Routes
//! `add_route` and `remove_route` change the router through
//! [`RouteChanges`](crate::ops::RouteChanges), as the Routes API does: with a
//! [`routes_file`](McpServerBuilder::routes_file), each change is written to
//! the file before it applies, and nothing changes when the write fails
//! (`routes_not_saved`).
//!
//! # Resources and notifications
//! `hookroom://rooms/{room}` (a room's open tasks) and
//! `hookroom://tasks/{id}` (one task) can be read and subscribed to
//! (`resources/subscribe`). Joining a room subscribes to it: a new task in
//! the room sends `notifications/resources/updated` for the room's URI,
//! when the store has notifications ([`TaskStore::watch`](crate::task::TaskStore::watch)).
//! A task's URI is notified when a session of the same [`McpServer`]
//! changes the task (claims, completes, fails it, asks or provides input);
//! changes made elsewhere (an agent runtime, another gateway) are not seen.
//!
//! # Tasks extension
//! The server advertises the MCP Tasks extension
//! (`io.modelcontextprotocol/tasks`, SEP-2663). For a client that declares
//! it, `ask_input` answers with a `CreateTaskResult` for the hookroom task
//! (same id), and `tasks/get` reads any hookroom task from the store:
//!
//! | hookroom | MCP task |
//! | --- | --- |
//! | `PENDING`, `RUNNING` | `working` |
//! | `NEEDS_INPUT`, not answered yet | `input_required`: a form elicitation with the prompt and one `answer` field |
//! | `NEEDS_INPUT`, answered, not yet taken by the holder | `working` |
//! | `DONE` | `completed`: the tool result `{"task": …}` carrying the task's `result` |
//! | `FAILED` | `failed`: a JSON-RPC error whose message is the failure reason |
//!
//! `tasks/update` with an accepted elicitation provides its `answer` as the
//! task's input (as `provide_input`); a declined or cancelled form, or a key
//! that is not the outstanding one, changes nothing. `tasks/cancel` gives
//! back a claim this session holds (the task returns to `PENDING` in its
//! room, so it reads `working`) and is refused (`-32602`) for any other
//! task: the task belongs to its room, not to the client. An unknown id is
//! `-32602`; a client that did not declare the extension gets plain tool
//! results and `-32021` from `tasks/*`.
//!
//! Sessions carry state, so the server offers the protocol versions that
//! have sessions (up to 2025-11-25).

mod answer;
mod error;
mod explain;
mod http;
mod jobs;
mod server;
mod session;
mod tasks;
mod tools;
#[cfg(feature = "sqlite")]
mod wakeups;
mod wire;

pub use error::ToolError;
pub use http::{McpBody, McpHttpService, MountMcp};
pub use rmcp;
pub use server::{
    DEFAULT_MAX_ROOMS_PER_SESSION, DEFAULT_MCP_LEASE, DEFAULT_MCP_SESSION_IDLE,
    DEFAULT_SQLITE_WAKEUP_POLL, McpServer, McpServerBuilder, McpSession, ServeError,
};
#[cfg(test)]
mod tests;
