//! Following the routes file: another process (`hookroom mcp --routes
//! FILE`, an editor, a deploy) may change it while the gateway runs, and
//! webhooks must go where the file says.
//!
//! The file's modification time is polled; when it changes, the file is
//! read and, if its routes or default room differ from the router's, they
//! replace the router's at once. A file that does not parse is reported and
//! the routes in force are kept. A change the gateway itself wrote (through
//! the Routes API) reads back equal and changes nothing, so route ids stay
//! stable.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hookroom::route::{RouteSpec, RoutesFile, RuleRouter};

/// How often the file's modification time is read.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// Starts following `path` for `router`.
pub(crate) fn spawn(path: PathBuf, router: Arc<RuleRouter>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let file = RoutesFile::new(path.clone());
        let mut seen = modified(&path);
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            match file.load() {
                Ok(config) => {
                    if same_routes(&router, &config.routes, config.default_room.as_deref()) {
                        continue;
                    }
                    match router.replace(config.routes, config.default_room) {
                        Ok(()) => tracing::info!(
                            file = %path.display(),
                            routes = router.routes().len(),
                            "routes file changed: routes reloaded"
                        ),
                        Err(error) => tracing::warn!(
                            file = %path.display(),
                            %error,
                            "routes file changed but is invalid: the routes in force are kept"
                        ),
                    }
                }
                Err(error) => tracing::warn!(
                    file = %path.display(),
                    %error,
                    "routes file changed but cannot be read: the routes in force are kept"
                ),
            }
        }
    })
}

/// The file's modification time, `None` when it cannot be read (a rename
/// in progress, say).
fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `router` already holds exactly `routes` (in any order) and
/// `default_room`.
fn same_routes(router: &RuleRouter, routes: &[RouteSpec], default_room: Option<&str>) -> bool {
    if router.default_room().as_deref() != default_room {
        return false;
    }
    let key = |spec: &RouteSpec| serde_json::to_string(spec).unwrap_or_default();
    let mut held: Vec<String> = router
        .routes()
        .iter()
        .map(|entry| key(&entry.spec))
        .collect();
    let mut wanted: Vec<String> = routes.iter().map(key).collect();
    held.sort_unstable();
    wanted.sort_unstable();
    held == wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_back_equal_in_any_order_are_the_same() {
        let a = RouteSpec::new("github", "push", "ci");
        let b = RouteSpec::new("slack", "*", "chat");
        let router = RuleRouter::new(vec![a.clone(), b.clone()], Some("general".into())).unwrap();
        assert!(same_routes(
            &router,
            &[b.clone(), a.clone()],
            Some("general")
        ));
        assert!(!same_routes(
            &router,
            std::slice::from_ref(&a),
            Some("general")
        ));
        assert!(!same_routes(&router, &[a, b], None));
    }
}
