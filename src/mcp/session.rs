//! One MCP session's state: the agent it speaks for, the rooms it joined,
//! the claims it holds (tokens never leave the server) and the background
//! work (heartbeats, room watchers) that ends with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::Peer;
use tokio::task::AbortHandle;

use crate::task::{ClaimToken, StoreError, TaskId, TaskStore};

/// The URI of a room resource.
pub(crate) fn room_uri(room: &str) -> String {
    format!("hookroom://rooms/{room}")
}

/// The URI of a task resource.
pub(crate) fn task_uri(id: &str) -> String {
    format!("hookroom://tasks/{id}")
}

#[derive(Debug, Default)]
struct State {
    /// Joined rooms and the capabilities declared for each.
    rooms: BTreeMap<String, Vec<String>>,
    /// Claims held: task id → fencing token.
    claims: HashMap<TaskId, ClaimToken>,
    /// Resource URIs the client subscribed to.
    subscriptions: BTreeSet<String>,
    /// The client, for notifications.
    peer: Option<Peer<RoleServer>>,
    /// Room watchers, by room.
    watchers: HashMap<String, AbortHandle>,
    /// The heartbeat loop, once a claim exists.
    heartbeat: Option<AbortHandle>,
}

/// A session. Background tasks hold only a [`Weak`] reference, so dropping
/// the last handler of a session stops them; the session's claims then
/// lapse when their lease runs out.
#[derive(Debug)]
pub(crate) struct Session {
    /// A short random id, part of the default agent name.
    pub(crate) id: String,
    agent: OnceLock<String>,
    state: Mutex<State>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (_, watcher) in state.watchers.drain() {
            watcher.abort();
        }
        if let Some(heartbeat) = state.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl Session {
    pub(crate) fn new() -> Arc<Self> {
        let mut id = uuid::Uuid::new_v4().simple().to_string();
        id.truncate(8);
        Arc::new(Self {
            id,
            agent: OnceLock::new(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The agent name, fixed on first use.
    pub(crate) fn agent(&self, make: impl FnOnce() -> String) -> String {
        self.agent.get_or_init(make).clone()
    }

    pub(crate) fn set_peer(&self, peer: &Peer<RoleServer>) {
        let mut state = self.lock();
        if state.peer.is_none() {
            state.peer = Some(peer.clone());
        }
    }

    pub(crate) fn join(&self, room: &str, capabilities: Vec<String>) -> bool {
        self.lock()
            .rooms
            .insert(room.to_owned(), capabilities)
            .is_none()
    }

    pub(crate) fn leave(&self, room: &str) -> bool {
        let mut state = self.lock();
        if let Some(watcher) = state.watchers.remove(room) {
            watcher.abort();
        }
        state.rooms.remove(room).is_some()
    }

    pub(crate) fn rooms(&self) -> BTreeMap<String, Vec<String>> {
        self.lock().rooms.clone()
    }

    pub(crate) fn capabilities(&self, room: &str) -> Option<Vec<String>> {
        self.lock().rooms.get(room).cloned()
    }

    /// Every capability declared in any joined room.
    pub(crate) fn all_capabilities(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.lock().rooms.values().flatten().cloned().collect();
        set.into_iter().collect()
    }

    pub(crate) fn token(&self, id: &TaskId) -> Option<ClaimToken> {
        self.lock().claims.get(id).cloned()
    }

    pub(crate) fn holds(&self, id: &TaskId) -> bool {
        self.lock().claims.contains_key(id)
    }

    pub(crate) fn forget(&self, id: &TaskId) {
        self.lock().claims.remove(id);
    }

    pub(crate) fn subscribe(&self, uri: &str) {
        self.lock().subscriptions.insert(uri.to_owned());
    }

    pub(crate) fn unsubscribe(&self, uri: &str) {
        self.lock().subscriptions.remove(uri);
    }

    /// Notifies the client that `uri` changed, when it subscribed to it.
    pub(crate) async fn changed(&self, uri: String) {
        let peer = {
            let state = self.lock();
            if !state.subscriptions.contains(&uri) {
                return;
            }
            state.peer.clone()
        };
        if let Some(peer) = peer {
            let _ = peer
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await;
        }
    }

    /// Records a claim and makes sure the heartbeat loop runs.
    pub(crate) fn hold(
        self: &Arc<Self>,
        id: TaskId,
        token: ClaimToken,
        store: &Arc<dyn TaskStore>,
        lease: Duration,
    ) {
        let mut state = self.lock();
        state.claims.insert(id, token);
        if state.heartbeat.is_none() {
            let task = tokio::spawn(heartbeats(Arc::downgrade(self), store.clone(), lease));
            state.heartbeat = Some(task.abort_handle());
        }
    }

    /// Starts forwarding the store's new-task notifications for `room` as
    /// resource updates of the room (once per room). `false` when the store
    /// has no notifications.
    pub(crate) fn watch(self: &Arc<Self>, room: &str, store: &Arc<dyn TaskStore>) -> bool {
        let mut state = self.lock();
        if state.watchers.contains_key(room) {
            return true;
        }
        let Some(mut receiver) = store.watch(room) else {
            return false;
        };
        let weak = Arc::downgrade(self);
        let uri = room_uri(room);
        let task = tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
                let Some(session) = weak.upgrade() else {
                    return;
                };
                session.changed(uri.clone()).await;
            }
        });
        state.watchers.insert(room.to_owned(), task.abort_handle());
        true
    }
}

/// Heartbeats every held claim each third of the lease while the session
/// lives; drops claims the store no longer honours.
async fn heartbeats(session: Weak<Session>, store: Arc<dyn TaskStore>, lease: Duration) {
    let period = (lease / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        let Some(strong) = session.upgrade() else {
            return;
        };
        let claims: Vec<(TaskId, ClaimToken)> = strong
            .lock()
            .claims
            .iter()
            .map(|(id, token)| (id.clone(), token.clone()))
            .collect();
        drop(strong);
        for (id, token) in claims {
            match store.heartbeat(&id, &token, lease).await {
                Ok(_) => {}
                Err(StoreError::Backend { .. }) => {}
                Err(error) => {
                    tracing::debug!(task_id = %id, %error, "claim ended; no longer heartbeated");
                    if let Some(s) = session.upgrade() {
                        s.forget(&id);
                    }
                }
            }
        }
    }
}
