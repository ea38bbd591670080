//! The gateway's Routes API (`/api/routes`, `/api/deliveries`): the
//! library's [`RoutesApi`] over the gateway's router and task store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookroom::route::{RoutesFile, RuleRouter};
use hookroom::service::RoutesApi;
use hookroom::status::StatusSink;
use hookroom::task::TaskStore;

use crate::task_api::ApiAuth;

/// The Routes API for the gateway: viewers and operators read, operators
/// replay, admins change routes; changes written back to `routes_file` when there is one (an
/// explicit `--config`; the shipped routes file is never rewritten).
pub(crate) fn routes_api(
    router: Arc<RuleRouter>,
    store: Arc<dyn TaskStore>,
    jobs: Arc<dyn StatusSink>,
    auth: &ApiAuth,
    routes_file: Option<PathBuf>,
) -> RoutesApi {
    // A replayed delivery's task gets its job, as ingest's does.
    let api = RoutesApi::builder(router, store)
        .status_sink(jobs)
        .principals(auth.principals.clone());
    match routes_file {
        Some(path) => api.routes_file(RoutesFile::new(path)),
        None => api,
    }
    .build()
}

/// `banner` with the Routes API's lines added at the end of its endpoint
/// list (before the first blank line).
pub(crate) fn with_banner_lines(
    banner: String,
    listen: SocketAddr,
    persistent_file: Option<&Path>,
) -> String {
    let saved = match persistent_file {
        Some(path) => format!("changes are written back to {}", path.display()),
        None => "changes last until exit (only a --config file is rewritten)".to_owned(),
    };
    let lines = format!(
        "  GET|POST http://{listen}/api/routes, DELETE /api/routes/{{id}}, POST /api/routes/explain   \
         (admin changes; viewers read; {saved})\n  \
         GET  http://{listen}/api/deliveries?room=&source=&limit=&cursor=   (viewer; replay: operator)\n"
    );
    match banner.find("\n\n") {
        Some(end) => {
            let (endpoints, rest) = banner.split_at(end + 1);
            format!("{endpoints}{lines}{rest}")
        }
        None => banner + &lines,
    }
}
