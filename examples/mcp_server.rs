//! An MCP server over stdio for LLM agents (Claude, Gemini, Codex, …):
//! rooms, tasks, routes, webhook history and jobs as MCP tools.
//!
//! ```text
//! cargo run --example mcp_server --features mcp -- --store memory
//! cargo run --example mcp_server --features mcp,sqlite -- --store sqlite:/var/lib/hookroom/tasks.db \
//!     --routes examples/routes.json --admin
//! HOOKROOM_API_TOKEN=t cargo run --example mcp_server --features mcp,http-client -- \
//!     --gateway http://127.0.0.1:8935
//! ```
//!
//! Options:
//! - `--store memory|sqlite:PATH|postgres://…`: the task store (`sqlite:`
//!   and `postgres://` need the feature of that name; point it at the
//!   gateway's database to work on the gateway's tasks);
//! - `--gateway URL`: instead of `--store`, work on a running gateway's
//!   tasks through its Task API (`HttpTaskStore`, feature `http-client`;
//!   `http://` or `https://`). The gateway reports each claim and result to
//!   the task's job itself, so the job tools are off here: read jobs from
//!   the gateway's Jobs API;
//! - `--token-env VAR`: the variable holding the Task API token for
//!   `--gateway` (default `HOOKROOM_API_TOKEN`);
//! - `--routes FILE`: a routes file for the route tools and `list_rooms`;
//! - `--admin`: grant the route tools (`add_route`, `remove_route`, …);
//! - `--agent NAME`: the agent name claims are recorded under;
//! - `--lease SECONDS`: claim lease (default 60).
//!
//! stdout carries the protocol; errors go to stderr.

use std::sync::Arc;
use std::time::Duration;

use hookroom::mcp::McpServer;
use hookroom::mcp::rmcp::ServiceExt;
use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::status::InMemoryStatusSink;
use hookroom::task::{InMemoryTaskStore, TaskStore};

/// The variable `--gateway` reads its token from unless `--token-env` names
/// another.
const DEFAULT_TOKEN_ENV: &str = "HOOKROOM_API_TOKEN";

/// An `HttpTaskStore` on the gateway at `url`, with the token in `token_env`.
#[cfg(feature = "http-client")]
fn gateway_store(url: &str, token_env: &str) -> Result<Arc<dyn TaskStore>, String> {
    let token = match std::env::var(token_env) {
        Ok(token) if !token.is_empty() => token,
        _ => {
            return Err(format!(
                "{token_env} is not set: it holds the Task API token"
            ));
        }
    };
    hookroom::http::HttpTaskStore::builder(url, token)
        .build()
        .map(|s| Arc::new(s) as Arc<dyn TaskStore>)
        .map_err(|e| format!("--gateway {url}: {e}"))
}

#[cfg(not(feature = "http-client"))]
fn gateway_store(_url: &str, _token_env: &str) -> Result<Arc<dyn TaskStore>, String> {
    Err("--gateway URL needs the `http-client` feature".into())
}

async fn store(spec: &str) -> Result<Arc<dyn TaskStore>, String> {
    if spec == "memory" {
        return Ok(Arc::new(InMemoryTaskStore::new()));
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            return hookroom::sqlite::SqliteTaskStore::open(path)
                .map(|s| Arc::new(s) as Arc<dyn TaskStore>)
                .map_err(|e| e.to_string());
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = path;
            return Err("--store sqlite:PATH needs the `sqlite` feature".into());
        }
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            // Listening (LISTEN/NOTIFY): tasks that other processes (a
            // gateway) store on the database wake this server's watchers,
            // so joined sessions hear of them.
            return hookroom::postgres::PostgresTaskStore::builder(spec)
                .with_events(Arc::new(hookroom::task::TaskEvents::new()))
                .build()
                .await
                .map(|s| Arc::new(s) as Arc<dyn TaskStore>)
                .map_err(|e| e.to_string());
        }
        #[cfg(not(feature = "postgres"))]
        {
            return Err("--store postgres://… needs the `postgres` feature".into());
        }
    }
    Err(format!(
        "unknown --store `{spec}`; use memory, sqlite:PATH or postgres://…"
    ))
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut builder_store = "memory".to_owned();
    let mut routes = None;
    let mut admin = false;
    let mut agent = None;
    let mut lease = None;
    let mut gateway = None;
    let mut token_env = DEFAULT_TOKEN_ENV.to_owned();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--store" => builder_store = value("--store")?,
            "--gateway" => gateway = Some(value("--gateway")?),
            "--token-env" => token_env = value("--token-env")?,
            "--routes" => routes = Some(value("--routes")?),
            "--admin" => admin = true,
            "--agent" => agent = Some(value("--agent")?),
            "--lease" => {
                let secs: u64 = value("--lease")?
                    .parse()
                    .map_err(|_| "--lease takes whole seconds".to_owned())?;
                lease = Some(Duration::from_secs(secs));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if gateway.is_some() && builder_store != "memory" {
        return Err("--gateway and --store exclude each other".into());
    }
    let mut builder = match &gateway {
        // The gateway's Task API reports to its jobs: no local registry
        // that would report a second time and show other jobs.
        Some(url) => McpServer::builder(gateway_store(url, &token_env)?),
        None => McpServer::builder(store(&builder_store).await?).jobs(InMemoryStatusSink::new()),
    }
    .admin_tools(admin);
    let router = match routes {
        Some(path) => {
            let config = RoutesConfig::from_path(&path).map_err(|e| e.to_string())?;
            RuleRouter::from_config(&config).map_err(|e| e.to_string())?
        }
        None => RuleRouter::new(Vec::new(), None).map_err(|e| e.to_string())?,
    };
    builder = builder.router(Arc::new(router));
    if let Some(agent) = agent {
        builder = builder.agent_name(agent);
    }
    if let Some(lease) = lease {
        builder = builder.lease(lease);
    }
    let server = builder.build();
    let running = server
        .session()
        .serve(hookroom::mcp::rmcp::transport::stdio())
        .await
        .map_err(|e| e.to_string())?;
    running.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("mcp_server: {error}");
        std::process::exit(2);
    }
}
