//! The MCP server: in process through rmcp's client, over streamable HTTP,
//! over a gateway's Task API, its task tools, and the domain operations it
//! shares with the HTTP APIs and the agent runtime.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod authz_matrix;
mod gateway;
mod in_process;
mod mcp_http;
mod mcp_tasks;
mod notify;
mod operations;
