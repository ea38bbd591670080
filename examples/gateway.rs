//! The example gateway: `/webhook/{source}`, `/health` and `/operations` at
//! the root of 127.0.0.1:8935.
//!
//! ```text
//! cargo run --features sqlite --example gateway
//! cargo run --features sqlite --example gateway -- --config examples/routes.json --listen 127.0.0.1:8935 --store sqlite:hookroom.db
//! cargo run --example gateway -- --store memory
//! cargo run --features postgres --example gateway -- --store postgres://user:pass@host/db
//! ```
//!
//! Retention: when the routes file sets `log_retention_days`, finished
//! tasks and jobs are purged that many days after they finish, in the background and
//! in batches (`examples/support/retention.rs`); without it they are kept.
//!
//! Secrets come from the `${ENV_VAR}` references in the routes file (a
//! string or a list per source, for rotation).
//!
//! Development mode: when no `--config` is given, the shipped
//! `examples/routes.json` is used, and each variable it references that is
//! not set stands in for a printed development secret
//! (`hookroom-dev-<variable>`, e.g. `hookroom-dev-github-webhook-secret`),
//! with a warning — so the README's command works on a fresh machine; it
//! then listens on loopback only. With
//! an explicit `--config`, a missing variable is a startup error naming it;
//! `--strict` makes the shipped file strict too.
//!
//! On start it prints the endpoints. In development mode, with the
//! development GitHub secret, it also prints a ready-to-paste, signed
//! `curl` for a test `pull_request.opened` delivery; with real secrets it
//! never prints a signature into its logs (GitHub's scheme has no timestamp
//! and its delivery id is not signed, so a logged curl could be replayed
//! forever): `--print-test-curl` prints one on stdout and exits instead.
//!
//! `/operations` and `/health`'s component detail need an admin bearer
//! token from `HOOKROOM_ADMIN_TOKEN` (comma-separated, for rotation);
//! without it they are refused, and `/health` answers liveness only.
//!
//! The Routes API (`/api/routes`, `/api/routes/{id}`,
//! `/api/routes/explain`, `/api/deliveries`; `examples/support/routes_api.rs`)
//! also needs an admin token. With `--config`, route changes are written
//! back to that file (atomically); in development mode they last until exit.
//!
//! The Task API (`/api/rooms`, `/api/rooms/{room}/claim`, `/api/tasks/{id}`,
//! `/api/events`, …; see `hookroom::service::task_api`) is served beside
//! them for agents in other processes, with agent tokens from
//! `HOOKROOM_API_TOKEN` and admin tokens from `HOOKROOM_ADMIN_TOKEN`
//! (comma-separated). In development mode an unset `HOOKROOM_API_TOKEN`
//! stands in for the printed development token
//! `hookroom-dev-hookroom-api-token`; with `--config` or `--strict` and no
//! token, the APIs are off and the banner says so. The store is wrapped so
//! every change (webhook inserts included) is announced on `/api/events`;
//! on PostgreSQL the store announces with `NOTIFY` and listens instead, so
//! several gateways on one database each stream every gateway's changes.
//! See `examples/support/task_api.rs`.
//!
//! Jobs API (`/api/jobs`, see `examples/support/jobs.rs`): agent tokens
//! from `HOOKROOM_API_TOKEN` (comma-separated; admin tokens work too). A
//! webhook task's job has the task's id. In development mode an unset
//! variable stands in for a printed development token; with `--config` or
//! `--strict` and no token the Jobs API is off and the banner says so. Jobs
//! live beside the tasks: in the task store's SQLite file (on its
//! connection and group-commit writer) with `--store sqlite:PATH`, in the
//! same database with `--store postgres://…`, in memory with `--store
//! memory`. `--status-url URL` (repeatable; needs the
//! `http-client` feature) pushes every job change to another Jobs API
//! through an outbox (in the SQLite file with `--store sqlite:PATH`), with
//! the bearer token in the variable named by `--status-token-env VAR`.
//!
//! Alerts (`examples/support/observability.rs`) are logged; `--alert-url URL`
//! (feature `http-client`) also POSTs each firing and resolved alert there,
//! signed with Standard Webhooks, with the `whsec_` secret from the
//! variable named by `--alert-secret-env VAR` (default
//! `HOOKROOM_ALERT_SECRET`).
//!
//! Connection limits: `--header-timeout SECS` (default 10),
//! `--request-timeout SECS` (30), `--idle-timeout SECS` (60),
//! `--max-connections N` (10000); see `examples/support/serve.rs`. Ctrl-C
//! stops it gracefully (in-flight requests finish).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::{BearerTokens, Gateway, RouteCount, WebhookService};
use hookroom::source::{GithubSource, HuggingFaceSource, JiraSource, SlackSource, Source};
use hookroom::task::{
    AnnouncingTaskStore, InMemoryTaskStore, MeteredTaskStore, TaskEvents, TaskStore,
};
use hookroom::verify::ConfigError;
use hookroom::verify::{
    GithubVerifier, HuggingFaceVerifier, JiraVerifier, Secrets, SlackVerifier, Verifier,
};

#[path = "support/banner.rs"]
mod banner;
#[path = "support/observability.rs"]
mod observability;
#[path = "support/retention.rs"]
mod retention;
#[path = "support/routes_api.rs"]
mod routes_api;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/task_api.rs"]
mod task_api;
// Jobs API wiring.
#[path = "support/jobs.rs"]
mod jobs;

use banner::{ADMIN_TOKEN_VAR, TestCurl, dev_secret, test_curl};

/// jemalloc, as servers commonly run (the load example and the in-memory
/// store bench too). glibc's malloc, on a gateway whose SQLite writer thread
/// frees what the runtime's threads allocated and the other way round,
/// spends its time consolidating and unlinking chunks across arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SHIPPED_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/routes.json");

fn usage() -> String {
    format!(
        "usage: gateway [--config PATH] [--listen ADDR] [--store memory|sqlite:PATH|postgres://…] \
         [--strict] [--print-test-curl] [--log-format text|json] [--no-metrics] \
         [--status-url URL]... [--status-token-env VAR] [--alert-url URL] [--alert-secret-env VAR] {}",
        serve::LIMIT_FLAGS
    )
}

struct Args {
    config: Option<PathBuf>,
    listen: SocketAddr,
    store: String,
    strict: bool,
    print_test_curl: bool,
    // Jobs API: external backends every job change is pushed to.
    status: jobs::PushArgs,
    limits: serve::Limits,
    log_format: observability::LogFormat,
    metrics: bool,
    alerts: observability::AlertArgs,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 8935)),
        // The embedded durable store when it is compiled in: an acknowledged
        // delivery survives a restart.
        store: if cfg!(feature = "sqlite") {
            "sqlite:hookroom.db".into()
        } else {
            "memory".into()
        },
        strict: false,
        print_test_curl: false,
        status: jobs::PushArgs::default(),
        limits: serve::Limits::default(),
        log_format: observability::LogFormat::Text,
        metrics: true,
        alerts: observability::AlertArgs::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or(format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--config" => args.config = Some(PathBuf::from(value()?)),
            "--listen" => {
                let v = value()?;
                args.listen = v.parse().map_err(|_| {
                    format!("--listen: `{v}` is not an address like 127.0.0.1:8935")
                })?;
            }
            "--store" => args.store = value()?,
            "--strict" => args.strict = true,
            "--print-test-curl" => args.print_test_curl = true,
            "--log-format" => args.log_format = value()?.parse()?,
            "--no-metrics" => args.metrics = false,
            "--alert-url" => args.alerts.url = Some(value()?),
            "--alert-secret-env" => args.alerts.secret_env = Some(value()?),
            "--status-url" => args.status.urls.push(value()?),
            "--status-token-env" => args.status.token_env = Some(value()?),
            "-h" | "--help" => return Err(usage()),
            other if serve::LIMIT_FLAG_NAMES.contains(&other) => {
                let v = value()?;
                args.limits.set(other, &v)?;
            }
            other => return Err(format!("unknown flag `{other}`\n{}", usage())),
        }
    }
    Ok(args)
}

/// What `--store` opened: the task store, its purge for retention, the
/// job registry kept beside it (in the same file or database), and whether
/// the store publishes to the Task API's events itself.
struct Opened {
    store: Arc<dyn TaskStore>,
    purge: retention::PurgeBatch,
    jobs: jobs::Registries,
    announces: bool,
}

/// The store `spec` names, with its purge and its job registry.
async fn open_store(spec: &str, events: &Arc<TaskEvents>) -> Result<Opened, String> {
    #[cfg(not(feature = "postgres"))]
    let _ = events; // only the PostgreSQL store publishes itself
    if spec == "memory" {
        let store = Arc::new(InMemoryTaskStore::new());
        return Ok(Opened {
            store: store.clone(),
            purge: retention::memory(store),
            jobs: jobs::memory(),
            announces: false,
        });
    }
    #[cfg(feature = "sqlite")]
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = hookroom::sqlite::SqliteTaskStore::open(path)
            .map_err(|e| format!("--store {spec}: {e}"))?;
        return Ok(Opened {
            jobs: jobs::sqlite(&store)?,
            store: Arc::new(store.clone()),
            purge: retention::sqlite(store),
            announces: false,
        });
    }
    #[cfg(feature = "postgres")]
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        // The URL may hold a password: errors name the store, not the URL.
        // Every gateway on the database announces its changes with NOTIFY
        // and hears everyone's (its own included) on one listening
        // connection: the events of `/api/events` and waiting claims cross
        // gateways.
        let store = hookroom::postgres::PostgresTaskStore::builder(spec)
            .with_events(Arc::clone(events))
            .build()
            .await
            .map_err(|e| format!("--store postgres: {e}"))?;
        return Ok(Opened {
            jobs: jobs::postgres(spec).await?,
            store: Arc::new(store.clone()),
            purge: retention::postgres(store),
            announces: true,
        });
    }
    let mut kinds = vec!["`memory`"];
    if cfg!(feature = "sqlite") {
        kinds.push("`sqlite:PATH`");
    }
    if cfg!(feature = "postgres") {
        kinds.push("`postgres://…`");
    }
    // A URL may hold a password: only its scheme is repeated.
    let shown = spec.split_once("://").map_or(spec, |(scheme, _)| scheme);
    Err(format!(
        "--store {shown}: unsupported; use {}{}",
        kinds.join(" or "),
        if cfg!(all(feature = "sqlite", feature = "postgres")) {
            ""
        } else {
            " (build with --features sqlite / postgres for the others)"
        }
    ))
}

/// The verifier and parser for a built-in source name.
fn builtin(name: &str, secrets: Secrets) -> Option<(Arc<dyn Verifier>, Arc<dyn Source>)> {
    Some(match name {
        "github" => (
            Arc::new(GithubVerifier::new(secrets)),
            Arc::new(GithubSource::new()),
        ),
        "slack" => (
            Arc::new(SlackVerifier::new(secrets)),
            Arc::new(SlackSource::new()),
        ),
        "jira" => (
            Arc::new(JiraVerifier::new(secrets)),
            Arc::new(JiraSource::new()),
        ),
        "huggingface" => (
            Arc::new(HuggingFaceVerifier::new(secrets)),
            Arc::new(HuggingFaceSource::new()),
        ),
        _ => return None,
    })
}

async fn run(args: Args) -> Result<(), String> {
    let dev_mode = args.config.is_none() && !args.strict;
    if dev_mode && !args.listen.ip().is_loopback() {
        // Development secrets are printed and public: never serve them
        // beyond this machine.
        return Err(format!(
            "--listen {}: development mode (no --config) only listens on loopback; \
             pass --config PATH (or --strict) with real secrets to listen on other addresses",
            args.listen
        ));
    }
    let admin =
        BearerTokens::from_env(ADMIN_TOKEN_VAR).map_err(|e| format!("{ADMIN_TOKEN_VAR}: {e}"))?;
    // --- Observability: logs, /metrics, alerts (examples/support/observability.rs) ---
    observability::init_tracing(args.log_format);
    // `--no-metrics` installs no recorder (recording is then a no-op) and
    // meters nothing: the baseline for what metrics cost.
    let metrics = if args.metrics {
        Some(observability::install_metrics()?)
    } else {
        None
    };
    let alerts = observability::start_alerts(&args.alerts)?;
    // --- end observability ---
    let api_auth = task_api::ApiAuth::from_env(dev_mode)?;
    // Every change the store makes is announced to the Task API's events,
    // and every call is measured.
    let events = Arc::new(TaskEvents::new());
    let Opened {
        store: opened,
        purge,
        jobs: (job_sink, job_registry),
        announces,
    } = open_store(&args.store, &events).await?;
    let metered: Arc<dyn TaskStore> = if args.metrics {
        Arc::new(MeteredTaskStore::new(opened))
    } else {
        opened
    };
    // A store that publishes to the hub itself (PostgreSQL) is not wrapped:
    // each change would be announced twice.
    let store: Arc<dyn TaskStore> = if announces {
        metered
    } else {
        Arc::new(AnnouncingTaskStore::new(metered, Arc::clone(&events)))
    };
    let routes_store = Arc::clone(&store);
    observability::start_task_gauges(Arc::clone(&store));
    // Jobs API: tokens and the job registry (the ingest service's sink).
    let jobs_tokens = jobs::tokens(
        std::env::var(jobs::API_TOKEN_VAR).ok().as_deref(),
        &admin,
        dev_mode,
    )?;
    let (job_sink, pushes) = jobs::push(job_sink, &args.status, &args.store, |var| {
        std::env::var(var).ok()
    })?;
    // The alert monitor follows every job change, from webhooks and from
    // the Task API alike.
    let job_sink: Arc<dyn hookroom::status::StatusSink> = Arc::new(alerts.status_sink(job_sink));
    if !args.print_test_curl {
        let shown = if args.store.starts_with("postgres") {
            "postgres"
        } else {
            &args.store
        };
        println!("task store: {shown}");
    }
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(SHIPPED_CONFIG));
    let config = RoutesConfig::from_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let defaulted = RefCell::new(Vec::new());
    let env = |var: &str| {
        std::env::var(var).ok().or_else(|| {
            dev_mode.then(|| {
                defaulted.borrow_mut().push(var.to_owned());
                dev_secret(var)
            })
        })
    };
    let secrets = config
        .resolve_secrets_with(&env)
        .map_err(|e| match e.secret_error() {
            Some(ConfigError::EnvVarMissing { name: var }) => format!(
                "{}: {e}\n  export {var}=<the secret configured at the sender> and start again",
                path.display()
            ),
            _ => format!("{}: {e}", path.display()),
        })?;
    let defaulted = defaulted.into_inner();
    for var in &defaulted {
        eprintln!(
            "WARNING (development mode): {var} is not set; using the development secret `{}`.\n         \
             Set it (export {var}=...) before exposing this gateway, or pass --config / --strict.",
            dev_secret(var)
        );
    }
    let router =
        Arc::new(RuleRouter::from_config(&config).map_err(|e| format!("{}: {e}", path.display()))?);
    let routes_router = Arc::clone(&router);
    #[cfg(feature = "mcp")]
    let mcp_router = Arc::clone(&router);
    let counted = Arc::clone(&router);
    let route_count: RouteCount = Arc::new(move || counted.routes().len());

    let mut builder = WebhookService::builder(router, Arc::clone(&store))
        .status_sink(Arc::clone(&job_sink))
        .alerts(Arc::clone(&alerts));
    let mut sources = Vec::new();
    let mut github_secret = None;
    for (name, resolved) in secrets {
        if name == "github" {
            github_secret = resolved
                .first()
                .map(|s| zeroize::Zeroizing::new(s.expose().to_vec()));
        }
        let secrets: Secrets = resolved.into_iter().collect();
        match builtin(&name, secrets) {
            Some((verifier, parser)) => {
                builder = builder.source(name.clone(), verifier, parser);
                sources.push(name);
            }
            None => {
                eprintln!("note: source `{name}` has secrets but no built-in parser; not served")
            }
        }
    }
    if sources.is_empty() {
        return Err(format!(
            "{}: no source with secrets; nothing to serve",
            path.display()
        ));
    }
    // A signature is printed only for a development secret: one made with
    // a real secret could be replayed by anyone who reads the logs.
    let test = TestCurl::choose(github_secret.as_deref().map(Vec::as_slice), &defaulted);
    if args.print_test_curl {
        return match github_secret {
            Some(secret) => {
                println!("{}", test_curl(args.listen, &secret));
                Ok(())
            }
            None => Err("--print-test-curl: no github source is configured".into()),
        };
    }
    // Retention: the routes file's `log_retention_days`, applied in the
    // background (examples/support/retention.rs).
    match config.log_retention_days {
        Some(days) => {
            let clock = Arc::new(hookroom::clock::SystemClock);
            retention::spawn(purge, Arc::clone(&job_registry), clock, days);
            println!(
                "retention: finished tasks and jobs are purged {days} day(s) after they finish"
            );
        }
        None => println!("retention: finished tasks are kept (no log_retention_days)"),
    }

    let ingest = builder.build();
    let gateway = Gateway::new(ingest.clone())
        .admin_tokens(admin.clone())
        .with_health(
            ingest
                .health_service()
                .routes_count(route_count)
                .alerts(Arc::clone(&alerts))
                .component("status_pushes", jobs::push_health(&pushes)),
        );

    let task_api = api_auth.enabled().then(|| {
        task_api::task_api(
            Arc::clone(&store),
            events,
            Arc::clone(&job_sink),
            &api_auth,
            args.limits.request_timeout,
        )
    });

    // Jobs API: served next to the gateway when a token is configured.
    #[cfg(feature = "mcp")]
    let mcp_jobs = Arc::clone(&job_registry);
    let jobs_api = (!jobs_tokens.tokens.is_empty())
        .then(|| hookroom::service::JobsApi::new(job_registry).tokens(jobs_tokens.tokens.clone()));
    let gateway = jobs::WithJobs::new(gateway, jobs_api);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let listen = listener.local_addr().map_err(|e| e.to_string())?;
    let banner = banner::banner(listen, &sources, test, &admin, &args.limits);

    // --- Routes API: /api/routes, /api/deliveries (examples/support/routes_api.rs) ---
    // Route changes are written back only to an explicit --config file.
    let routes_file = args.config.clone();
    let banner = routes_api::with_banner_lines(banner, listen, routes_file.as_deref());
    let gateway = routes_api::WithRoutesApi::new(
        routes_api::routes_api(
            routes_router,
            routes_store,
            ADMIN_TOKEN_VAR,
            routes_file.clone(),
        )?,
        gateway,
    );
    // --- end Routes API ---
    let gateway = observability::WithMetrics::new(metrics, admin.clone(), gateway);
    let banner = banner.replacen(
        "\n\n",
        &format!(
            "\n  GET  http://{listen}/metrics   (Prometheus text; admin token when one is set)\n\n"
        ),
        1,
    );
    let app = task_api::WithTaskApi::new(gateway, task_api);
    // --- MCP: streamable HTTP at /mcp for LLM agents (feature mcp) ---
    #[cfg(feature = "mcp")]
    let app = {
        let mcp = hookroom::mcp::McpServer::builder(Arc::clone(&store))
            .router(Arc::clone(&mcp_router))
            .job_registry(Arc::clone(&mcp_jobs), Arc::clone(&job_sink))
            .build();
        hookroom::mcp::MountMcp::new("/mcp", mcp.http_service(api_auth.tokens.clone()), app)
    };
    // --- end MCP ---

    print!("{banner}");
    print!("{}", jobs::banner(listen, &jobs_tokens));
    print!("{}", jobs::push_banner(&pushes));
    print!("{}", task_api::banner(listen, &api_auth));
    if let Some(token) = &api_auth.dev_token {
        eprintln!(
            "WARNING (development mode): {} is not set; agents use the development token `{token}`.",
            task_api::API_TOKEN_VAR
        );
    }

    serve::serve(listener, app, args.limits, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down: finishing in-flight requests");
    })
    .await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}
