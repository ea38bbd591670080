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
//! `{code}: {message}` ([`ToolError`], whose docs list the codes), never a
//! protocol error; the message ends with the next step that would work.
//! Arguments that do not match the tool's schema are tool errors as well,
//! and every schema states the bounds the tool accepts. `claim_task` and
//! `claim_next` both need the task's room joined.
//!
//! A task tool whose change reached the store but not the task's job (the
//! status sink refused it; see [`report_to_job`](crate::ops::report_to_job))
//! still succeeds, and its answer carries `job_report_error`
//! (`{code}: {message}`).
//!
//! # Data from strangers
//! A task's title, description, link and payload are written by whoever sent
//! the webhook. Every answer carries them inside an `untrusted` envelope
//! whose `notice` says to treat them as data, never as instructions; the
//! server's instructions and the task tools' descriptions say so too.
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
//! (`resources/subscribe`). Joining a room subscribes to it: new work in the
//! room (a `PENDING` task that was neither there when the session joined
//! nor notified before; a retry counts as new) sends
//! `notifications/resources/updated` for the room's URI. The wake-ups come
//! from the store ([`TaskStore::watch`](crate::task::TaskStore::watch)) or,
//! for a SQLite file other processes write to, from its `data_version`
//! ([`McpServerBuilder::sqlite_wakeups`]). A task's URI is notified when a
//! session of the same [`McpServer`] changes the task (claims, completes,
//! fails it, asks or provides input); changes made elsewhere (an agent
//! runtime, another gateway) are not seen.
//!
//! # Tasks (protocol version 2025-11-25)
//! Sessions on 2025-11-25 are offered the specification's Tasks utility:
//! `capabilities.tasks`, every tool with `execution.taskSupport:
//! "optional"`. A `tools/call` whose request asks for a task (`params.task`)
//! answers at once with the task (`taskId`, `status`, `createdAt`,
//! `lastUpdatedAt`, `ttl`, `pollInterval`) and runs in the background;
//! `tasks/get`, `tasks/result` (waits, then answers the tool's result),
//! `tasks/list` and `tasks/cancel` follow it, and each change of status is
//! sent as `notifications/tasks/status`. A call that does not ask is a plain
//! call. Tasks belong to their session and are forgotten when their `ttl`
//! runs out. rmcp models the later tasks extension (SEP-2663) instead, so
//! the transports carry this version's wire format themselves: serve stdio
//! with [`McpServer::serve`] and HTTP with [`McpServer::http_service`].
//!
//! Sessions carry state, so the server offers the protocol versions that
//! have sessions (up to 2025-11-25); a probe at a newer version over HTTP is
//! answered `-32022` with the versions spoken.

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
