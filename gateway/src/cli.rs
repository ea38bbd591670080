//! The command line: subcommands and flags, each with the variable it reads
//! and its default.
//!
//! The gateway's settings come, from weakest to strongest, from their
//! defaults, the settings file (`--settings`, TOML; every key is listed in
//! `hookroom.default.toml`), the `HOOKROOM_*` variables and the flags. The
//! flags here are therefore all optional; [`crate::settings`] resolves them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Signed webhooks (GitHub, Slack, Jira, Hugging Face, Standard Webhooks,
/// Stripe) in, tasks in rooms that agents claim out, with every task's life
/// reported as job status.
#[derive(Debug, Parser)]
#[command(name = "hookroom", version, propagate_version = true)]
#[command(args_conflicts_with_subcommands = true)]
#[command(
    after_help = "With no subcommand, `hookroom` runs `hookroom serve`: `hookroom --store memory` is `hookroom serve --store memory`."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// `serve`'s flags, for running it without naming it.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway: webhooks, the Task, Jobs and Routes APIs, MCP over
    /// HTTP, health, operations and metrics on one listener (the default).
    Serve(Box<ServeArgs>),
    /// Run an MCP server over stdio for an LLM agent, on a task store or on
    /// a running gateway.
    Mcp(McpArgs),
    /// Sign and send a test webhook as its provider would.
    Send(SendArgs),
    /// Load a routes file (and a settings file), print the effective routes
    /// and which secrets are set, by name only; exit 1 on any error.
    Check(CheckArgs),
    /// Make principals' tokens for a principals file (`--principals`).
    Token(TokenArgs),
}

/// `hookroom token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
}

/// What `hookroom token` does.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a fresh random token once (on stdout) and the principals-file
    /// entry that holds its SHA-256 digest (on stderr).
    New(TokenNewArgs),
}

/// `hookroom token new`.
#[derive(Debug, Args)]
pub(crate) struct TokenNewArgs {
    /// The principal's name (an agent's id): ASCII letters, digits, `.`,
    /// `_`, `-`.
    #[arg(long)]
    pub(crate) name: String,
    /// Its role.
    #[arg(long, value_enum)]
    pub(crate) role: RoleArg,
    /// The rooms it may reach (comma-separated); every room when omitted.
    #[arg(long, value_delimiter = ',', value_name = "ROOM")]
    pub(crate) rooms: Vec<String>,
    /// Let a viewer or operator read payloads.
    #[arg(long)]
    pub(crate) payloads: bool,
    /// Let an agent also create jobs of its own through the Jobs API.
    #[arg(long)]
    pub(crate) reports: bool,
    /// When the token stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub(crate) expires_at: Option<String>,
}

/// A principal's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    /// Everything.
    Admin,
    /// A viewer that also answers input, retries and cancels tasks and
    /// replays deliveries.
    Operator,
    /// Reads rooms, tasks, jobs, events, routes and deliveries.
    Viewer,
    /// Joins rooms and claims tasks under its own name.
    Agent,
    /// Creates jobs through the Jobs API and changes its own.
    Reporter,
}

impl RoleArg {
    /// The role's name in a principals file.
    pub(crate) fn as_str(self) -> &'static str {
        hookroom::auth::Role::from(self).as_str()
    }
}

impl From<RoleArg> for hookroom::auth::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Self::Admin,
            RoleArg::Operator => Self::Operator,
            RoleArg::Viewer => Self::Viewer,
            RoleArg::Agent => Self::Agent,
            RoleArg::Reporter => Self::Reporter,
        }
    }
}

/// Environment variables that are not flags, listed under `serve --help`.
const SERVE_ENV: &str = "\
Tokens (comma-separated, for rotation), beside the principals of --principals:
  HOOKROOM_ADMIN_TOKEN  the principal `admin` (role admin): everything, /operations, /health's
                        detail, route changes, /metrics
  HOOKROOM_API_TOKEN    the principal `agent` (role agent, every room, may also report jobs):
                        the Task API, the Jobs API and /mcp; unset in development mode: a
                        random development token printed at start; unset otherwise (and no
                        --principals): those APIs are off
Secrets: the routes file names the variable of each source's secret (`${GITHUB_WEBHOOK_SECRET}`).
Development mode (no --config and no --strict): the shipped routes file, development secrets
for unset variables, loopback only, and a signed test curl in the banner.";

/// `hookroom serve`.
#[derive(Debug, Default, Args)]
#[command(after_help = SERVE_ENV)]
pub(crate) struct ServeArgs {
    /// Settings file (TOML; see hookroom.default.toml for every key and its
    /// default). Flags and variables override it.
    #[arg(long, env = "HOOKROOM_SETTINGS", value_name = "PATH")]
    pub(crate) settings: Option<PathBuf>,
    /// Routes file (JSON: sources, secrets, routes, default room). Without
    /// it the shipped routes file is used in development mode.
    #[arg(long, alias = "routes", env = "HOOKROOM_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Principals file (TOML or JSON): named tokens (as SHA-256 digests)
    /// with roles and rooms; `hookroom token new` makes entries. Reloaded on
    /// SIGHUP.
    #[arg(long, env = "HOOKROOM_PRINCIPALS", value_name = "PATH")]
    pub(crate) principals: Option<PathBuf>,
    /// Also accept browser requests from this Origin on /api and /mcp
    /// (repeatable; comma-separated in the variable). A page's own origin
    /// is always accepted.
    #[arg(
        long = "allowed-origin",
        env = "HOOKROOM_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub(crate) allowed_origins: Vec<String>,
    /// Host header values /api and /mcp answer to (repeatable) [default:
    /// localhost, 127.0.0.1 and [::1] at the port when listening on
    /// loopback; any otherwise].
    #[arg(
        long = "allowed-host",
        env = "HOOKROOM_ALLOWED_HOSTS",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub(crate) allowed_hosts: Vec<String>,
    /// Address to listen on [default: 127.0.0.1:8935].
    #[arg(long, env = "HOOKROOM_LISTEN", value_name = "ADDR")]
    pub(crate) listen: Option<SocketAddr>,
    /// Task store: `sqlite:PATH`, `memory` or `postgres://…` [default:
    /// sqlite:hookroom.db]. Jobs are kept beside the tasks.
    #[arg(long, env = "HOOKROOM_STORE", value_name = "SPEC")]
    pub(crate) store: Option<String>,
    /// Treat the shipped routes file like a real one: a missing secret
    /// variable is a start-up error and no development token is made.
    #[arg(long, env = "HOOKROOM_STRICT")]
    pub(crate) strict: bool,
    /// Print a signed test `curl` for the GitHub source on stdout and exit
    /// (keep it out of logs: it can be replayed).
    #[arg(long)]
    pub(crate) print_test_curl: bool,
    /// Log format [default: text].
    #[arg(long, env = "HOOKROOM_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,
    /// Serve no /metrics and record nothing (the baseline for what metrics
    /// cost).
    #[arg(long, env = "HOOKROOM_NO_METRICS")]
    pub(crate) no_metrics: bool,
    /// Also push every job change to this Jobs API (repeatable; through an
    /// outbox, in the SQLite file with a SQLite store).
    #[arg(
        long,
        env = "HOOKROOM_STATUS_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub(crate) status_url: Vec<String>,
    /// Variable holding the bearer token for --status-url.
    #[arg(long, env = "HOOKROOM_STATUS_TOKEN_ENV", value_name = "VAR")]
    pub(crate) status_token_env: Option<String>,
    /// Also POST every firing and resolved alert here, signed with Standard
    /// Webhooks.
    #[arg(long, env = "HOOKROOM_ALERT_URL", value_name = "URL")]
    pub(crate) alert_url: Option<String>,
    /// Variable holding the `whsec_` secret for --alert-url [default:
    /// HOOKROOM_ALERT_SECRET].
    #[arg(long, env = "HOOKROOM_ALERT_SECRET_ENV", value_name = "VAR")]
    pub(crate) alert_secret_env: Option<String>,
    /// Seconds from a connection's first byte to the end of a request's
    /// headers [default: 10].
    #[arg(long, env = "HOOKROOM_HEADER_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) header_timeout: Option<u64>,
    /// Seconds from the end of the headers to the answer; past it, 408
    /// [default: 30].
    #[arg(long, env = "HOOKROOM_REQUEST_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) request_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection stays open [default: 60].
    #[arg(long, env = "HOOKROOM_IDLE_TIMEOUT", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) idle_timeout: Option<u64>,
    /// Open connections at most; more wait in the listen backlog [default:
    /// 10000].
    #[arg(long, env = "HOOKROOM_MAX_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_connections: Option<u64>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `hookroom mcp`.
#[derive(Debug, Args)]
#[command(after_help = "stdout carries the protocol; errors and logs go to stderr.")]
pub(crate) struct McpArgs {
    /// Task store: `sqlite:PATH`, `postgres://…` or `memory`; point it at
    /// the gateway's store to work on its tasks and jobs [default:
    /// sqlite:hookroom.db, the gateway's default].
    #[arg(
        long,
        env = "HOOKROOM_STORE",
        value_name = "SPEC",
        conflicts_with = "gateway"
    )]
    pub(crate) store: Option<String>,
    /// Work on a running gateway's tasks and jobs through its Task and Jobs
    /// APIs (`http://` or `https://` base URL) instead of a store. The URL
    /// and token are checked at start.
    #[arg(long, env = "HOOKROOM_GATEWAY", value_name = "URL")]
    pub(crate) gateway: Option<String>,
    /// Variable holding the gateway's API token, for --gateway.
    #[arg(
        long,
        env = "HOOKROOM_TOKEN_ENV",
        value_name = "VAR",
        default_value = "HOOKROOM_API_TOKEN"
    )]
    pub(crate) token_env: String,
    /// Routes file for the route tools and `list_rooms`; route changes are
    /// written back to it.
    #[arg(long, alias = "config", env = "HOOKROOM_CONFIG", value_name = "PATH")]
    pub(crate) routes: Option<PathBuf>,
    /// Offer the route tools (`add_route`, `remove_route`, …).
    #[arg(long)]
    pub(crate) admin: bool,
    /// Agent name claims are recorded under.
    #[arg(long, value_name = "NAME")]
    pub(crate) agent: Option<String>,
    /// Claim lease in seconds [default: 60].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) lease: Option<u64>,
}

/// A webhook provider whose signature `hookroom send` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SendSource {
    /// GitHub: `X-Hub-Signature-256`.
    Github,
    /// Slack: `X-Slack-Signature` v0 with a timestamp.
    Slack,
    /// Jira: `X-Hub-Signature`.
    Jira,
    /// Hugging Face: `X-Webhook-Secret`.
    Huggingface,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`.
    Standard,
    /// Stripe: `Stripe-Signature`.
    Stripe,
}

/// `hookroom send`.
#[derive(Debug, Args)]
#[command(
    after_help = "Every run uses a fresh delivery id and the current time. Exit status: 0 on a 2xx answer, 1 otherwise."
)]
pub(crate) struct SendArgs {
    /// Whose signature to make.
    #[arg(long, value_enum)]
    pub(crate) source: SendSource,
    /// Variable holding the secret [default: the gateway's variable for the
    /// source, e.g. GITHUB_WEBHOOK_SECRET].
    #[arg(long, value_name = "VAR")]
    pub(crate) secret_env: Option<String>,
    /// The gateway's base URL (`/webhook/{source}` is added) or a full
    /// webhook URL.
    #[arg(
        long,
        env = "HOOKROOM_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8935"
    )]
    pub(crate) url: String,
    /// Body file [default: a built-in sample for the source].
    #[arg(long, value_name = "FILE")]
    pub(crate) body: Option<PathBuf>,
    /// GitHub's `X-GitHub-Event`.
    #[arg(long, value_name = "NAME", default_value = "pull_request")]
    pub(crate) event: String,
    /// Print the signed `curl` instead of sending.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `hookroom check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Settings file (TOML) to check and to take the routes file from.
    #[arg(long, env = "HOOKROOM_SETTINGS", value_name = "PATH")]
    pub(crate) settings: Option<PathBuf>,
    /// Routes file (JSON) [default: the settings file's `config`, else the
    /// shipped routes file].
    #[arg(long, alias = "routes", env = "HOOKROOM_CONFIG", value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
}
