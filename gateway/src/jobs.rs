//! The gateway's job registries (beside the task store) and the pushes of
//! every job change to other Jobs APIs (`--status-url`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::task_api::{API_TOKEN_VAR, ApiAuth};
use hookroom::status::{InMemoryStatusSink, JobRegistry, OutboxStatusSink, StatusSink};

/// How many jobs the in-memory registry keeps.
pub(crate) const MEMORY_MAX_JOBS: usize = 10_000;

/// How many history entries each job keeps.
pub(crate) const MAX_HISTORY: usize = 200;

/// One registry, as the ingest service's sink and as the Jobs API's
/// registry.
pub(crate) type Registries = (Arc<dyn StatusSink>, Arc<dyn JobRegistry>);

/// `registry`, as the ingest service's sink and as the Jobs API's registry,
/// keeping at most `MAX_HISTORY` history entries per job.
pub(crate) fn shared<R>(registry: R) -> Registries
where
    R: StatusSink + JobRegistry + 'static,
{
    let registry = Arc::new(registry);
    (registry.clone(), registry)
}

/// The job registry of `--store memory`: in memory, bounded.
pub(crate) fn memory() -> Registries {
    shared(
        InMemoryStatusSink::new()
            .with_max_jobs(MEMORY_MAX_JOBS)
            .with_max_history(MAX_HISTORY),
    )
}

/// The job registry of `--store sqlite:PATH`: in the task store's file, on
/// its connection and group-commit writer.
pub(crate) fn sqlite(store: &hookroom::sqlite::SqliteTaskStore) -> Result<Registries, String> {
    let registry = hookroom::sqlite::SqliteJobRegistry::beside(store)
        .map_err(|e| format!("--store sqlite: job registry: {e}"))?;
    Ok(shared(registry.with_max_history(MAX_HISTORY)))
}

/// The job registry of `--store postgres://…`: in the same database, on
/// the task store's connections and batch writer.
pub(crate) async fn postgres(
    store: &hookroom::postgres::PostgresTaskStore,
) -> Result<Registries, String> {
    // The URL may hold a password: errors name the store, not the URL.
    let registry = hookroom::postgres::PostgresJobRegistry::beside(store)
        .await
        .map_err(|e| format!("--store postgres: job registry: {e}"))?;
    Ok(shared(registry.with_max_history(MAX_HISTORY)))
}

/// The banner's Jobs API lines.
pub(crate) fn banner(listen: SocketAddr, tokens: &ApiAuth) -> String {
    let mut out = String::new();
    if !tokens.enabled() {
        let _ = writeln!(
            out,
            "  jobs: {API_TOKEN_VAR} is not set: the Jobs API (/api/jobs) is off"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  POST http://{listen}/api/jobs   GET /api/jobs?status=&limit=&cursor=   (Jobs API, bearer token)"
    );
    let _ = writeln!(
        out,
        "  POST /api/jobs/{{job_id}}/status   GET /api/jobs/{{job_id}}?include_history=true   POST /api/jobs/{{job_id}}/complete"
    );
    match &tokens.dev_token {
        Some(token) => {
            let _ = writeln!(
                out,
                "  jobs: WARNING (development mode): {API_TOKEN_VAR} is not set; \
                 use the development token: Authorization: Bearer {token}"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  jobs: reporters create jobs and change their own; agents, viewers and \
                 operators read; send `Authorization: Bearer <token>`"
            );
        }
    }
    out
}

/// The `/health` detail of the status pushes: per URL, the outbox's
/// capacity and what it has done (a full outbox refuses new changes; they
/// are counted in `dropped_full`).
pub(crate) fn push_health(pushes: &[Push]) -> hookroom::service::ComponentReport {
    let outboxes: Vec<(String, bool, OutboxStatusSink)> = pushes
        .iter()
        .map(|push| (push.url.clone(), push.durable, push.outbox.clone()))
        .collect();
    Arc::new(move || {
        serde_json::Value::Array(
            outboxes
                .iter()
                .map(|(url, durable, outbox)| {
                    let stats = outbox.stats();
                    serde_json::json!({
                        "url": url,
                        "durable": durable,
                        "capacity": PUSH_CAPACITY,
                        "queued": stats.queued,
                        "delivered": stats.delivered,
                        "dropped_full": stats.dropped_full,
                        "failed": stats.failed,
                    })
                })
                .collect(),
        )
    })
}

/// `--status-url URL` (repeatable) and `--status-token-env VAR`.
#[derive(Debug, Default)]
pub(crate) struct PushArgs {
    pub(crate) urls: Vec<String>,
    pub(crate) token_env: Option<String>,
}

/// One external backend job changes are pushed to.
#[derive(Debug)]
pub(crate) struct Push {
    pub(crate) url: String,
    pub(crate) durable: bool,
    pub(crate) outbox: OutboxStatusSink,
}

/// How many changes wait for each external backend at most.
pub(crate) const PUSH_CAPACITY: usize = hookroom::status::DEFAULT_OUTBOX_CAPACITY;

/// `registry` as the primary sink, and an outbox per `--status-url` (in the
/// SQLite file for `sqlite:PATH` stores) pushing through an
/// `HttpStatusSink`; `env` reads the token variable. Must run within the
/// Tokio runtime.
pub(crate) fn push(
    registry: Arc<dyn StatusSink>,
    args: &PushArgs,
    store_spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Arc<dyn StatusSink>, Vec<Push>), String> {
    if args.urls.is_empty() {
        if args.token_env.is_some() {
            return Err("--status-token-env needs at least one --status-url".into());
        }
        return Ok((registry, Vec::new()));
    }
    let token = match &args.token_env {
        Some(var) => Some(env(var).ok_or_else(|| {
            format!("--status-token-env {var}: the variable is not set (or not Unicode)")
        })?),
        None => None,
    };
    let mut pushes = Vec::new();
    for url in &args.urls {
        let sink = http_sink(url, token.as_deref())?;
        let (outbox, durable) = outbox(sink, url, store_spec)?;
        pushes.push(Push {
            url: url.clone(),
            durable,
            outbox,
        });
    }
    let others = pushes
        .iter()
        .map(|push| Arc::new(push.outbox.clone()) as Arc<dyn StatusSink>)
        .collect();
    Ok((
        Arc::new(hookroom::status::TeeStatusSink::new(registry, others)),
        pushes,
    ))
}

fn http_sink(url: &str, token: Option<&str>) -> Result<Arc<dyn StatusSink>, String> {
    let mut builder = hookroom::http::HttpStatusSink::builder(url);
    if let Some(token) = token {
        builder = builder.bearer_token(token);
    }
    builder
        .build()
        .map(|sink| Arc::new(sink) as Arc<dyn StatusSink>)
        .map_err(|e| format!("--status-url {url}: {e}"))
}

fn outbox(
    sink: Arc<dyn StatusSink>,
    url: &str,
    store_spec: &str,
) -> Result<(OutboxStatusSink, bool), String> {
    if let Some(path) = store_spec.strip_prefix("sqlite:") {
        return OutboxStatusSink::sqlite(sink, path, url, PUSH_CAPACITY)
            .map(|outbox| (outbox, true))
            .map_err(|e| format!("--status-url {url}: outbox: {e}"));
    }
    let _ = (store_spec, url);
    Ok((OutboxStatusSink::in_memory(sink, PUSH_CAPACITY), false))
}

/// The banner's lines for the external backends.
pub(crate) fn push_banner(pushes: &[Push]) -> String {
    let mut out = String::new();
    for push in pushes {
        let _ = writeln!(
            out,
            "  status push: every job change to {} (outbox {}, at most {PUSH_CAPACITY} waiting; \
             when full, new changes are dropped and logged)",
            push.url,
            if push.durable {
                "in the SQLite file"
            } else {
                "in memory"
            },
        );
    }
    out
}
