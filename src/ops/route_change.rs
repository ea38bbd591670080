//! [`RouteChanges`]: changing a [`RuleRouter`]'s routes, and its routes
//! file with them.

use std::fmt;
use std::sync::{Arc, PoisonError, Weak};

use tokio::sync::Mutex;

use crate::error_code::ErrorCode;
use crate::route::{RouteEntry, RouteError, RouteId, RouteSpec, RoutesFile, RuleRouter, SaveError};

/// Changes a [`RuleRouter`]'s routes at run time, and, with a
/// [`routes_file`](Self::routes_file), the file the router was loaded from.
///
/// Every change takes the router's change lock, writes the whole new list of
/// routes to the file ([`RoutesFile::save_routes`]: only its `routes`
/// change, atomically), and only once the file is on disk applies the change
/// to the router. A write that fails changes nothing. Without a file,
/// changes last until the process ends.
///
/// The Routes API ([`RoutesApi`](crate::service::RoutesApi)) and the MCP
/// route tools both change routes through this. Every `RouteChanges` over
/// the same `Arc<RuleRouter>` shares one lock, whichever service made it, so
/// two changes never interleave between the file and the router. Give every
/// service that changes a router the same routes file: one without it
/// changes the router only, and the next change made with the file writes
/// that change too.
///
/// The file's routes become the router's: edits made to them by hand while
/// the process runs are overwritten by the next change. Routes are written
/// in the order they were listed and added.
///
/// Cloning is cheap; clones share the router, the file and the lock.
///
/// # Example
/// ```
/// use std::sync::Arc;
///
/// use hookroom::ops::RouteChanges;
/// use hookroom::route::{RouteSpec, RoutesFile, RuleRouter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("hookroom-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("routes.json");
/// std::fs::write(&path, r#"{"routes": [], "default_room": "triage"}"#)?;
/// let file = RoutesFile::new(&path);
/// let router = Arc::new(RuleRouter::from_config(&file.load()?)?);
///
/// let changes = RouteChanges::new(router.clone()).routes_file(file.clone());
/// let added = changes.add(RouteSpec::new("github", "push", "ci")).await?;
/// assert_eq!(router.routes()[0].id, added.id);
/// assert_eq!(file.load()?.routes[0].target_room, "ci");
///
/// changes.remove(added.id).await?;
/// assert!(router.routes().is_empty());
/// assert!(file.load()?.routes.is_empty());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RouteChanges {
    router: Arc<RuleRouter>,
    file: Option<Arc<RoutesFile>>,
    lock: Arc<Mutex<()>>,
}

impl fmt::Debug for RouteChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteChanges")
            .field("router", &self.router)
            .field("file", &self.file.as_ref().map(|f| f.path()))
            .finish_non_exhaustive()
    }
}

impl RouteChanges {
    /// Changes `router`, in memory only until a
    /// [`routes_file`](Self::routes_file) is set.
    pub fn new(router: Arc<RuleRouter>) -> Self {
        let lock = change_lock(&router);
        Self {
            router,
            file: None,
            lock,
        }
    }

    /// Writes every change to `file` (the one the router was loaded from)
    /// before applying it, so changes survive a restart.
    pub fn routes_file(mut self, file: RoutesFile) -> Self {
        self.file = Some(Arc::new(file));
        self
    }

    /// The router changed.
    pub fn router(&self) -> &Arc<RuleRouter> {
        &self.router
    }

    /// The routes file changes are written to, if any.
    pub fn file(&self) -> Option<&RoutesFile> {
        self.file.as_deref()
    }

    /// Whether changes are written to a routes file.
    pub fn is_persistent(&self) -> bool {
        self.file.is_some()
    }

    /// Adds `spec` after the routes of the same priority.
    ///
    /// # Errors
    /// [`RouteChangeError::InvalidRoute`] for an invalid route,
    /// [`RouteChangeError::NotSaved`] when the file could not be written;
    /// nothing changed then.
    pub async fn add(&self, spec: RouteSpec) -> Result<RouteEntry, RouteChangeError> {
        // Checked before the file is written: an invalid route must not
        // reach it.
        spec.compile().map_err(RouteChangeError::InvalidRoute)?;
        let _change = self.lock.lock().await;
        let mut specs: Vec<RouteSpec> = self.in_file_order().into_iter().map(|r| r.spec).collect();
        specs.push(spec.clone());
        self.save(specs).await?;
        let id = self
            .router
            .add(spec.clone())
            .map_err(RouteChangeError::InvalidRoute)?;
        Ok(RouteEntry { id, spec })
    }

    /// Removes the route `id`, and returns it.
    ///
    /// # Errors
    /// [`RouteChangeError::RouteNotFound`] when no route has this id,
    /// [`RouteChangeError::NotSaved`] when the file could not be written;
    /// nothing changed then.
    pub async fn remove(&self, id: RouteId) -> Result<RouteEntry, RouteChangeError> {
        let _change = self.lock.lock().await;
        let (removed, kept): (Vec<RouteEntry>, Vec<RouteEntry>) =
            self.in_file_order().into_iter().partition(|r| r.id == id);
        let removed = removed
            .into_iter()
            .next()
            .ok_or(RouteChangeError::RouteNotFound)?;
        self.save(kept.into_iter().map(|r| r.spec).collect())
            .await?;
        if !self.router.remove(id) {
            return Err(RouteChangeError::RouteNotFound);
        }
        Ok(removed)
    }

    /// Removes every route whose `source` and `event` patterns are exactly
    /// these strings (as written, not what they match), and returns them.
    ///
    /// # Errors
    /// [`RouteChangeError::RouteNotFound`] when no route has these patterns,
    /// [`RouteChangeError::NotSaved`] when the file could not be written;
    /// nothing changed then.
    pub async fn remove_matching(
        &self,
        source: &str,
        event: &str,
    ) -> Result<Vec<RouteEntry>, RouteChangeError> {
        let _change = self.lock.lock().await;
        let (removed, kept): (Vec<RouteEntry>, Vec<RouteEntry>) = self
            .in_file_order()
            .into_iter()
            .partition(|r| r.spec.source == source && r.spec.event == event);
        if removed.is_empty() {
            return Err(RouteChangeError::RouteNotFound);
        }
        self.save(kept.into_iter().map(|r| r.spec).collect())
            .await?;
        for route in &removed {
            self.router.remove(route.id);
        }
        Ok(removed)
    }

    /// The router's routes in the order they were listed and added (ids
    /// grow in that order), which is the file's order.
    fn in_file_order(&self) -> Vec<RouteEntry> {
        let mut routes = self.router.routes();
        routes.sort_by_key(|r| r.id);
        routes
    }

    /// Writes `routes` to the routes file, if there is one.
    async fn save(&self, routes: Vec<RouteSpec>) -> Result<(), RouteChangeError> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        let saved = tokio::task::spawn_blocking(move || file.save_routes(&routes))
            .await
            .map_err(|_| RouteChangeError::NotSaved(None))?;
        saved.map_err(|error| {
            tracing::error!(%error, "the routes file was not written; the routes did not change");
            RouteChangeError::NotSaved(Some(error))
        })
    }
}

/// A router, and the lock its changes take.
type RouterLock = (Weak<RuleRouter>, Arc<Mutex<()>>);

/// The change lock of `router`: one per router, shared by every
/// [`RouteChanges`] over it while the router lives.
fn change_lock(router: &Arc<RuleRouter>) -> Arc<Mutex<()>> {
    // Keyed by a weak reference rather than an address: the router's
    // allocation outlives its last strong reference as long as the weak one
    // is here, so a new router can never be mistaken for a dropped one.
    // Entries of dropped routers are cleared on the next lookup; there are
    // as many as routers ever made in the process, usually one.
    static LOCKS: std::sync::Mutex<Vec<RouterLock>> = std::sync::Mutex::new(Vec::new());
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.retain(|(router, _)| router.strong_count() > 0);
    let weak = Arc::downgrade(router);
    if let Some((_, lock)) = locks.iter().find(|(known, _)| known.ptr_eq(&weak)) {
        return Arc::clone(lock);
    }
    let lock = Arc::new(Mutex::new(()));
    locks.push((weak, Arc::clone(&lock)));
    lock
}

/// Why [`RouteChanges`] changed nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum RouteChangeError {
    /// The route is invalid (the [`RouteError`]'s code).
    InvalidRoute(RouteError),
    /// No route has this id, or these patterns (`route_not_found`).
    RouteNotFound,
    /// The routes file could not be written (`routes_not_saved`): the
    /// [`SaveError`], or `None` when the thread writing it did not finish.
    NotSaved(Option<SaveError>),
}

impl ErrorCode for RouteChangeError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRoute(e) => e.code(),
            Self::RouteNotFound => "route_not_found",
            Self::NotSaved(_) => "routes_not_saved",
        }
    }
}

impl fmt::Display for RouteChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRoute(e) => write!(f, "invalid route: {e}"),
            Self::RouteNotFound => f.write_str("no such route"),
            Self::NotSaved(Some(e)) => {
                write!(
                    f,
                    "the routes file could not be written; nothing changed: {e}"
                )
            }
            Self::NotSaved(None) => {
                f.write_str("the routes file could not be written; nothing changed")
            }
        }
    }
}

impl std::error::Error for RouteChangeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidRoute(e) => Some(e),
            Self::NotSaved(Some(e)) => Some(e),
            Self::RouteNotFound | Self::NotSaved(None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_router() {
        let router = Arc::new(RuleRouter::new(Vec::new(), None).unwrap());
        let other = Arc::new(RuleRouter::new(Vec::new(), None).unwrap());
        let a = RouteChanges::new(router.clone());
        let b = RouteChanges::new(router);
        let c = RouteChanges::new(other);
        assert!(Arc::ptr_eq(&a.lock, &b.lock));
        assert!(!Arc::ptr_eq(&a.lock, &c.lock));
    }

    #[tokio::test]
    async fn an_invalid_route_or_unknown_id_changes_nothing() {
        let router = Arc::new(RuleRouter::new(Vec::new(), None).unwrap());
        let changes = RouteChanges::new(router.clone());
        let invalid = RouteSpec::new("github", "push", "");
        assert!(matches!(
            changes.add(invalid).await,
            Err(RouteChangeError::InvalidRoute(_))
        ));
        assert!(matches!(
            changes.remove(RouteId::from_u64(7)).await,
            Err(RouteChangeError::RouteNotFound)
        ));
        assert!(matches!(
            changes.remove_matching("github", "push").await,
            Err(RouteChangeError::RouteNotFound)
        ));
        assert!(router.routes().is_empty());
    }
}
