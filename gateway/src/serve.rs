//! `hookroom serve`: the gateway.
//!
//! It opens the store (`--store`, SQLite by default; jobs beside the
//! tasks), reads the routes file (`--config`) with its `${ENV}` secrets,
//! and mounts the library's services on one router ([`crate::app`]):
//! webhooks, `/health`, `/operations`, the Task, Jobs and Routes APIs,
//! `/mcp` and `/metrics`.
//!
//! Development mode (no `--config`, no `--strict`): the shipped routes
//! file, with a printed development secret (`hookroom-dev-<variable>`)
//! standing in for each unset variable and a development agent token for an
//! unset `HOOKROOM_API_TOKEN`; it listens on loopback only and prints a
//! signed test `curl`. With `--config`, a missing variable is a start-up
//! error naming it. With real secrets it never prints a signature into its
//! logs (GitHub's scheme has no timestamp and its delivery id is not
//! signed, so a logged curl could be replayed forever): `--print-test-curl`
//! prints one on stdout and exits instead.
//!
//! Retention: when the routes file sets `log_retention_days`, finished
//! tasks and jobs are purged that many days after they finish, in the
//! background and in batches. Ctrl-C stops it gracefully (in-flight
//! requests finish).

use std::cell::RefCell;
use std::process::ExitCode;
use std::sync::Arc;

use hookroom::route::{RoutesConfig, RoutesFile, RuleRouter};
use hookroom::service::{BearerTokens, Gateway, RouteCount, WebhookService};
use hookroom::source::{GithubSource, HuggingFaceSource, JiraSource, SlackSource, Source};
use hookroom::task::{AnnouncingTaskStore, MeteredTaskStore, TaskEvents, TaskStore};
use hookroom::verify::{
    ConfigError, GithubVerifier, HuggingFaceVerifier, JiraVerifier, Secrets, SlackVerifier,
    Verifier,
};

use crate::app::{self, Services};
use crate::banner::{self, ADMIN_TOKEN_VAR, TestCurl, dev_secret, test_curl};
use crate::cli::ServeArgs;
use crate::settings::Settings;
use crate::store::{self, Opened};
use hookroom::retention;

use crate::{conn, jobs, observability, reload, routes_api, task_api};

/// The routes file used in development mode (no `--config`), built in so
/// that an installed binary runs from any folder.
pub(crate) const SHIPPED_ROUTES: &str = include_str!("../routes.json");

/// Where the shipped routes file is said to come from in messages.
pub(crate) const SHIPPED_ROUTES_NAME: &str = "the shipped routes file";

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

/// The routes file `settings` names, or the shipped one, with the name to
/// show in messages.
pub(crate) fn load_routes(
    config: Option<&std::path::Path>,
) -> Result<(RoutesConfig, String), String> {
    match config {
        Some(path) => RoutesConfig::from_path(path)
            .map(|config| (config, path.display().to_string()))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => RoutesConfig::from_json(SHIPPED_ROUTES)
            .map(|config| (config, SHIPPED_ROUTES_NAME.to_owned()))
            .map_err(|e| format!("{SHIPPED_ROUTES_NAME}: {e}")),
    }
}

/// Runs `hookroom serve` until Ctrl-C.
pub(crate) async fn run(args: ServeArgs) -> Result<ExitCode, String> {
    let settings = Settings::resolve(args)?;
    let dev_mode = settings.dev_mode();
    if dev_mode && !settings.listen.ip().is_loopback() {
        // Development secrets are printed and public: never serve them
        // beyond this machine.
        return Err(format!(
            "--listen {}: development mode (no --config) only listens on loopback; \
             pass --config PATH (or --strict) with real secrets to listen on other addresses",
            settings.listen
        ));
    }
    let admin =
        BearerTokens::from_env(ADMIN_TOKEN_VAR).map_err(|e| format!("{ADMIN_TOKEN_VAR}: {e}"))?;
    observability::init_tracing(settings.log_format);
    // With metrics off no recorder is installed (recording is then a no-op)
    // and nothing is metered: the baseline for what metrics cost.
    let metrics = if settings.metrics {
        Some(observability::install_metrics()?)
    } else {
        None
    };
    let alerts = observability::start_alerts(&observability::AlertArgs {
        url: settings.alert_url.clone(),
        secret_env: settings.alert_secret_env.clone(),
    })?;
    let api_auth = Arc::new(task_api::ApiAuth::load(
        dev_mode,
        settings.principals.clone(),
    )?);
    api_auth.reload_on_sighup();
    // Every change the store makes is announced to the Task API's events,
    // and every call is measured.
    let events = Arc::new(TaskEvents::new());
    let Opened {
        store: opened,
        purge,
        jobs: (_, job_registry),
        announces,
        job_announcer,
    } = store::open(&settings.store, &events).await?;
    // Every job change, whoever makes it, is announced as `job.updated`
    // (on PostgreSQL to every gateway on the database).
    let job_registry = Arc::new(hookroom::status::AnnouncingJobRegistry::with_announcer(
        job_registry,
        job_announcer,
    ));
    let job_sink: Arc<dyn hookroom::status::StatusSink> = job_registry.clone();
    let job_registry: Arc<dyn hookroom::status::JobRegistry> = job_registry;
    let metered: Arc<dyn TaskStore> = if settings.metrics {
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
    observability::start_task_gauges(Arc::clone(&store));
    let push_args = jobs::PushArgs {
        urls: settings.status_urls.clone(),
        token_env: settings.status_token_env.clone(),
    };
    let (job_sink, pushes) = jobs::push(job_sink, &push_args, &settings.store, |var| {
        std::env::var(var).ok()
    })?;
    // The alert monitor follows every job change, from webhooks and from
    // the Task API alike.
    let job_sink: Arc<dyn hookroom::status::StatusSink> = Arc::new(alerts.status_sink(job_sink));
    if !settings.print_test_curl {
        println!("task store: {}", store::shown(&settings.store));
    }
    let (config, config_name) = load_routes(settings.config.as_deref())?;
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
                "{config_name}: {e}\n  export {var}=<the secret configured at the sender> and start again"
            ),
            _ => format!("{config_name}: {e}"),
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
        Arc::new(RuleRouter::from_config(&config).map_err(|e| format!("{config_name}: {e}"))?);
    let counted = Arc::clone(&router);
    let route_count: RouteCount = Arc::new(move || counted.routes().len());

    let mut builder = WebhookService::builder(router.clone(), Arc::clone(&store))
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
            "{config_name}: no source with secrets; nothing to serve"
        ));
    }
    // A signature is printed only for a development secret: one made with
    // a real secret could be replayed by anyone who reads the logs.
    let test = TestCurl::choose(github_secret.as_deref().map(Vec::as_slice), &defaulted);
    if settings.print_test_curl {
        return match github_secret {
            Some(secret) => {
                println!("{}", test_curl(settings.listen, &secret));
                Ok(ExitCode::SUCCESS)
            }
            None => Err("--print-test-curl: no github source is configured".into()),
        };
    }
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
    let gateway = Gateway::builder(ingest.clone())
        .principals(api_auth.principals.clone())
        .health(
            ingest
                .health_service()
                .routes_count(route_count)
                .alerts(Arc::clone(&alerts))
                .component("status_pushes", jobs::push_health(&pushes)),
        )
        .build();
    let task_api = api_auth.enabled().then(|| {
        task_api::task_api(
            Arc::clone(&store),
            events,
            Arc::clone(&job_sink),
            &api_auth,
            settings.limits.request_timeout,
        )
    });
    let jobs_api = api_auth.enabled().then(|| {
        hookroom::service::JobsApi::builder(Arc::clone(&job_registry))
            .task_store(Arc::clone(&store))
            .principals(api_auth.principals.clone())
            .build()
    });
    // Route changes are written back only to an explicit --config file,
    // and changes other processes make to it are followed.
    let routes_file = settings.config.clone();
    if let Some(path) = &routes_file {
        reload::spawn(path.clone(), Arc::clone(&router));
    }
    let routes_api = routes_api::routes_api(
        Arc::clone(&router),
        Arc::clone(&store),
        Arc::clone(&job_sink),
        &api_auth,
        routes_file.clone(),
    );
    let mcp = api_auth.enabled().then(|| {
        let mut mcp = hookroom::mcp::McpServer::builder(Arc::clone(&store))
            .router(Arc::clone(&router))
            .job_registry(Arc::clone(&job_registry), Arc::clone(&job_sink));
        if let Some(path) = &routes_file {
            mcp = mcp.routes_file(RoutesFile::new(path));
        }
        mcp.build().http_service(api_auth.principals.clone())
    });
    let served_mcp = mcp.is_some();
    // Bound before the router is built: the Host check needs the real port.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let listen = listener.local_addr().map_err(|e| e.to_string())?;
    let app = app::router(Services {
        gateway,
        task_api,
        jobs_api,
        routes_api: Some(routes_api),
        mcp,
        // Open only in development mode without an admin: with a routes
        // file or --strict, it needs an admin's token.
        metrics: metrics.map(|handle| app::Metrics {
            handle,
            principals: api_auth.principals.clone(),
            open: dev_mode && admin.is_empty() && settings.principals.is_none(),
        }),
        origin: app::origin_check(listen, &settings.allowed_hosts, &settings.allowed_origins),
    });

    let mut text = banner::banner(listen, &sources, test, &admin, &settings.limits);
    text = routes_api::with_banner_lines(text, listen, routes_file.as_deref());
    if settings.metrics {
        text = banner::with_endpoint_line(
            text,
            &format!(
                "  GET  http://{listen}/metrics   (Prometheus text; admin token, open only in development mode without one)"
            ),
        );
    }
    text = banner::with_endpoint_line(
        text,
        &format!(
            "  GET  http://{listen}/dashboard/   (dashboard; sign in with a token: an operator's or admin's for actions)"
        ),
    );
    if served_mcp {
        text = banner::with_endpoint_line(
            text,
            &format!(
                "  POST http://{listen}/mcp   (MCP streamable HTTP; the session acts as its token's principal)"
            ),
        );
    }
    print!("{text}");
    print!("{}", jobs::banner(listen, &api_auth));
    print!("{}", jobs::push_banner(&pushes));
    print!("{}", task_api::banner(listen, &api_auth));
    if let Some(token) = &api_auth.dev_token {
        eprintln!(
            "WARNING (development mode): {} is not set; agents use the development token `{token}`.",
            task_api::API_TOKEN_VAR
        );
    }

    conn::serve(listener, app, settings.limits, async {
        let _ = tokio::signal::ctrl_c().await;
        println!("shutting down: finishing in-flight requests");
    })
    .await;
    Ok(ExitCode::SUCCESS)
}
