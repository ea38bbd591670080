//! `hookroom mcp`: an MCP server over stdio for LLM agents (Claude, Gemini,
//! Codex, …): rooms, tasks, routes, webhook history and jobs as MCP tools.
//!
//! On a store (`--store`, the gateway's SQLite file by default) it works on
//! the same tasks and jobs as a gateway on that store: the job registry is
//! opened beside the tasks (in the same file or database), so a task
//! finished here shows its final status in the gateway's Jobs API. With
//! `--gateway URL` it works through a running gateway's Task API instead;
//! the gateway reports each claim and result to the task's job itself, and
//! the job tools read and change jobs through its Jobs API.
//!
//! With `--routes FILE` (the gateway's `--config` file), route changes made
//! through the route tools are written to the file, which a gateway on it
//! follows; changes the gateway writes are followed here too.
//!
//! On SQLite, tasks another process stores in the file (a gateway's
//! webhooks) reach joined rooms as notifications within a second: the
//! server watches the file's `PRAGMA data_version`.
//!
//! stdout carries the protocol; errors go to stderr.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hookroom::http::HttpStatusSink;
use hookroom::mcp::{DEFAULT_SQLITE_WAKEUP_POLL, McpServer};
use hookroom::route::{RoutesFile, RuleRouter};
use hookroom::task::{TaskEvents, TaskQuery, TaskStore};

use crate::cli::McpArgs;
use crate::settings::DEFAULT_STORE;
use crate::store::{self, Opened};

/// An `HttpTaskStore` on the gateway at `url`, with the token in
/// `token_env`, checked by one request (a wrong URL or a refused token is
/// an error at start, not at the first tool call), and an `HttpStatusSink`
/// on its Jobs API with the same token.
async fn gateway_store(
    url: &str,
    token_env: &str,
) -> Result<(Arc<dyn TaskStore>, HttpStatusSink), String> {
    let token = match std::env::var(token_env) {
        Ok(token) if !token.is_empty() => token,
        _ => {
            return Err(format!(
                "--gateway: {token_env} is not set: it holds the gateway's API token \
                 (or name another variable with --token-env)"
            ));
        }
    };
    let jobs = HttpStatusSink::builder(format!("{}/api", url.trim_end_matches('/')))
        .bearer_token(token.clone())
        .build()
        .map_err(|e| format!("--gateway {url}: {e}"))?;
    let store = hookroom::http::HttpTaskStore::builder(url, token)
        .build()
        .map_err(|e| format!("--gateway {url}: {e}"))?;
    let probe = TaskQuery {
        limit: Some(1),
        ..TaskQuery::default()
    };
    store
        .list(&probe)
        .await
        .map_err(|e| format!("--gateway {url}: the Task API did not answer a listing: {e}"))?;
    Ok((Arc::new(store), jobs))
}

/// Runs the MCP server on stdin and stdout until the client disconnects.
pub(crate) async fn run(args: McpArgs) -> Result<ExitCode, String> {
    let mut builder = match &args.gateway {
        Some(url) => {
            let (store, jobs) = gateway_store(url, &args.token_env).await?;
            McpServer::builder(store).gateway_jobs(jobs)
        }
        None => {
            let spec = args.store.as_deref().unwrap_or(DEFAULT_STORE);
            // Tasks that other processes store on a PostgreSQL database
            // wake this server's watchers through LISTEN/NOTIFY.
            let events = Arc::new(TaskEvents::new());
            let Opened {
                store,
                jobs: (sink, registry),
                ..
            } = store::open(spec, &events).await?;
            let builder = McpServer::builder(store).job_registry(registry, sink);
            // Tasks that another process (a gateway) stores in the same
            // SQLite file wake the joined rooms through its data_version.
            match spec.strip_prefix("sqlite:") {
                Some(path) => builder.sqlite_wakeups(path, DEFAULT_SQLITE_WAKEUP_POLL),
                None => builder,
            }
        }
    }
    .admin_tools(args.admin);
    let router = match &args.routes {
        Some(path) => {
            let file = RoutesFile::new(path);
            let config = file
                .load()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let router = Arc::new(
                RuleRouter::from_config(&config).map_err(|e| format!("{}: {e}", path.display()))?,
            );
            // Route changes made here are written to the file, and changes
            // others (a gateway's Routes API) write to it are followed.
            builder = builder.routes_file(file);
            crate::reload::spawn(path.clone(), Arc::clone(&router));
            router
        }
        None => Arc::new(RuleRouter::new(Vec::new(), None).map_err(|e| e.to_string())?),
    };
    builder = builder.router(router);
    if let Some(agent) = args.agent {
        builder = builder.agent_name(agent);
    }
    if let Some(lease) = args.lease {
        builder = builder.lease(Duration::from_secs(lease));
    }
    let server = builder.build();
    server
        .serve(tokio::io::stdin(), tokio::io::stdout())
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
