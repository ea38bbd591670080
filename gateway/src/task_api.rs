//! The gateway's principals (for the Task API, the Jobs API, the Routes
//! API, `/mcp`, `/operations` and `/metrics`) and its `TaskApi`.
//!
//! Principals come from the principals file (`--principals`, reloaded on
//! SIGHUP) and from the quick start's variables: `HOOKROOM_ADMIN_TOKEN` is
//! the principal `admin`, `HOOKROOM_API_TOKEN` the principal `agent` (each
//! comma-separated, for rotation). In development mode, with neither an
//! agent token nor a principals file, a random development token, fresh at
//! every start, stands in for `HOOKROOM_API_TOKEN` and is printed. With
//! `--config` or `--strict` and no principal at all, the APIs are off and
//! the banner says so.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookroom::auth::{Principals, Role};
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::status::StatusSink;
use hookroom::task::{TaskEvents, TaskStore};

use crate::banner::ADMIN_TOKEN_VAR;

/// The variable the gateway reads its agent tokens from.
pub(crate) const API_TOKEN_VAR: &str = "HOOKROOM_API_TOKEN";

/// The gateway's principals, and the development token standing in for an
/// unset [`API_TOKEN_VAR`], if one does.
pub(crate) struct ApiAuth {
    /// Every principal, shared by every API (a reload changes them all).
    pub(crate) principals: Principals,
    /// The quick start's tokens from the environment.
    tokens: ApiTokens,
    /// The principals file, reloaded on SIGHUP.
    file: Option<PathBuf>,
    pub(crate) dev_token: Option<String>,
}

impl ApiAuth {
    /// Reads the variables and the principals `file`; in `dev_mode`, with
    /// neither an agent token nor a file, the agent token is a random
    /// development token.
    pub(crate) fn load(dev_mode: bool, file: Option<PathBuf>) -> Result<Self, String> {
        let admin = BearerTokens::from_env(ADMIN_TOKEN_VAR)
            .map_err(|e| format!("{ADMIN_TOKEN_VAR}: {e}"))?;
        let mut agent =
            BearerTokens::from_env(API_TOKEN_VAR).map_err(|e| format!("{API_TOKEN_VAR}: {e}"))?;
        let mut dev_token = None;
        if agent.is_empty() && dev_mode && file.is_none() {
            let token = format!("hookroom-dev-{}", crate::token::fresh()?);
            agent = BearerTokens::parse_list(&token).map_err(|e| e.to_string())?;
            dev_token = Some(token);
        }
        let mut auth = Self {
            principals: Principals::none(),
            tokens: ApiTokens::new(agent, admin),
            file,
            dev_token,
        };
        auth.principals = auth.read()?;
        Ok(auth)
    }

    /// The principals as the variables and the file say now.
    fn read(&self) -> Result<Principals, String> {
        let mut builder = Principals::builder().environment(&self.tokens);
        if let Some(path) = &self.file {
            builder = builder.file(path).map_err(|e| e.to_string())?;
        }
        Ok(builder.build())
    }

    /// Reads the principals file again into every API's principals; on an
    /// error the principals in force stay and the error is returned.
    pub(crate) fn reload(&self) -> Result<usize, String> {
        let fresh = self.read()?;
        let count = fresh.list().len();
        self.principals.replace(&fresh);
        Ok(count)
    }

    /// Reloads on every SIGHUP, logging the outcome.
    pub(crate) fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            let auth = Arc::clone(self);
            tokio::spawn(async move {
                let Ok(mut hangups) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    tracing::warn!("cannot listen for SIGHUP; principals reload only on restart");
                    return;
                };
                while hangups.recv().await.is_some() {
                    match auth.reload() {
                        Ok(count) => tracing::info!(principals = count, "principals reloaded"),
                        Err(error) => {
                            tracing::error!(%error, "principals not reloaded; the previous ones stay in force")
                        }
                    }
                }
            });
        }
    }

    /// Whether the APIs are served.
    pub(crate) fn enabled(&self) -> bool {
        !self.principals.is_empty()
    }

    /// How many principals there are, by role, for the banner.
    pub(crate) fn summary(&self) -> String {
        let principals = self.principals.list();
        let mut parts = Vec::new();
        for role in Role::ALL {
            let count = principals.iter().filter(|p| p.role() == role).count();
            if count > 0 {
                parts.push(format!("{count} {role}"));
            }
        }
        parts.join(", ")
    }
}

/// The Task API over `store` (announcing to `events`), reporting to the
/// jobs in `sink`, answering waiting claims before `request_timeout` cuts
/// them.
pub(crate) fn task_api(
    store: Arc<dyn TaskStore>,
    events: Arc<TaskEvents>,
    sink: Arc<dyn StatusSink>,
    auth: &ApiAuth,
    request_timeout: Duration,
) -> TaskApi {
    TaskApi::builder(store, auth.principals.clone())
        .events(events)
        .status_sink(sink)
        .max_wait(request_timeout.saturating_sub(Duration::from_secs(2)))
        .build()
}

/// The banner's lines about the APIs.
pub(crate) fn banner(listen: SocketAddr, auth: &ApiAuth) -> String {
    let mut out = String::new();
    if !auth.enabled() {
        let _ = writeln!(
            out,
            "  Task API: off ({API_TOKEN_VAR} and {ADMIN_TOKEN_VAR} are not set, and no --principals)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  Task API: http://{listen}/api/rooms, /api/rooms/{{room}}/claim, /api/tasks/{{id}}, /api/events \
         (as each principal's role and rooms allow; GET /api/whoami tells a token's)"
    );
    match &auth.dev_token {
        Some(token) => {
            let _ = writeln!(
                out,
                "  agent token (development; set {API_TOKEN_VAR} to replace it): {token}"
            );
            let _ = writeln!(
                out,
                "  claim: curl -H 'Authorization: Bearer {token}' -X POST http://{listen}/api/rooms/pr-review/claim \
                 -d '{{\"agent_id\":\"a1\",\"lease_seconds\":30}}'"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  principals: {}; send `Authorization: Bearer <token>`",
                auth.summary()
            );
        }
    }
    out
}
