//! The MCP server: in process through rmcp's client, over streamable HTTP,
//! and its task tools.
//!
//! Feature gates: see `tests/support/mod.rs`.

#[path = "../support/mod.rs"]
mod support;

mod in_process;
mod mcp_http;
mod mcp_tasks;
