//! One MCP session's state: the agent it speaks for, the rooms it joined,
//! the claims it holds (tokens never leave the server) and the background
//! work (heartbeats, room watchers) that ends with it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::Peer;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

use crate::lifecycle::JobStatus;
use crate::task::{ClaimToken, StoreError, TaskId, TaskQuery, TaskStore};

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
    /// The MCP tasks (2025-11-25 tasks utility) this session created.
    pub(crate) mcp_tasks: super::tasks::McpTasks,
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
            mcp_tasks: super::tasks::McpTasks::default(),
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

    /// The client, once a request has shown it.
    pub(crate) fn peer(&self) -> Option<Peer<RoleServer>> {
        self.lock().peer.clone()
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

    /// Starts notifying the client of new work in `room` as resource
    /// updates of the room (once per room): a task that is `PENDING` and
    /// was not in `known` (the room's pending tasks when the session looked)
    /// nor notified before. A retried task is new work again. The wake-ups
    /// come from the store's own notifications, or else from `changes`
    /// (commits to a shared file, say), after which the room is listed.
    /// `false` when there are neither.
    pub(crate) fn watch(
        self: &Arc<Self>,
        room: &str,
        store: &Arc<dyn TaskStore>,
        changes: impl FnOnce() -> Option<broadcast::Receiver<()>>,
        known: Vec<WorkKey>,
    ) -> bool {
        let mut state = self.lock();
        if state.watchers.contains_key(room) {
            return true;
        }
        let source = match store.watch(room) {
            Some(receiver) => Source::Store(receiver),
            None => match changes() {
                Some(receiver) => Source::Changes(receiver),
                None => return false,
            },
        };
        let watcher = Watcher {
            session: Arc::downgrade(self),
            store: store.clone(),
            room: room.to_owned(),
            uri: room_uri(room),
            seen: Seen::new(known),
        };
        let task = tokio::spawn(watcher.run(source));
        state.watchers.insert(room.to_owned(), task.abort_handle());
        true
    }
}

/// A task as new work: its id and how many claims it had, so that a retry
/// counts as new.
pub(crate) type WorkKey = (TaskId, u32);

/// Most work keys a watcher remembers; the oldest are forgotten first.
const MAX_SEEN: usize = 4096;

/// The work keys a watcher has notified or was told of, bounded.
#[derive(Debug)]
struct Seen {
    set: HashSet<WorkKey>,
    order: VecDeque<WorkKey>,
}

impl Seen {
    fn new(known: Vec<WorkKey>) -> Self {
        let mut seen = Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        };
        for key in known {
            seen.insert(key);
        }
        seen
    }

    /// `true` when `key` is new.
    fn insert(&mut self, key: WorkKey) -> bool {
        if !self.set.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > MAX_SEEN
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        true
    }
}

/// Where a watcher hears that something may have changed.
enum Source {
    /// The store's new-task notifications for the room.
    Store(broadcast::Receiver<TaskId>),
    /// Commits to the store's file by any process.
    Changes(broadcast::Receiver<()>),
}

struct Watcher {
    session: Weak<Session>,
    store: Arc<dyn TaskStore>,
    room: String,
    uri: String,
    seen: Seen,
}

impl Watcher {
    async fn run(mut self, mut source: Source) {
        // What arrived between the caller's listing and the subscription.
        self.list_and_notify().await;
        loop {
            match &mut source {
                Source::Store(receiver) => match receiver.recv().await {
                    Ok(id) => self.one_and_notify(id).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.list_and_notify().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Source::Changes(receiver) => match receiver.recv().await {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.list_and_notify().await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
            if self.session.strong_count() == 0 {
                return;
            }
        }
    }

    async fn notify(&self) {
        if let Some(session) = self.session.upgrade() {
            session.changed(self.uri.clone()).await;
        }
    }

    /// Notifies when the announced task is new work in the room.
    async fn one_and_notify(&mut self, id: TaskId) {
        let Ok(Some(task)) = self.store.get(&id).await else {
            return;
        };
        if task.room == self.room
            && task.status == JobStatus::Pending
            && self.seen.insert((task.id, task.attempts))
        {
            self.notify().await;
        }
    }

    /// Lists the room's pending tasks and notifies once if any is new.
    async fn list_and_notify(&mut self) {
        let Ok(tasks) = pending(&self.store, &self.room).await else {
            return;
        };
        let mut new = false;
        for task in tasks {
            new |= self.seen.insert((task.id, task.attempts));
        }
        if new {
            self.notify().await;
        }
    }
}

/// A room's pending tasks (at most the newest [`MAX_PENDING_LISTED`]).
pub(crate) async fn pending(
    store: &Arc<dyn TaskStore>,
    room: &str,
) -> Result<Vec<crate::task::Task>, StoreError> {
    store
        .list(&TaskQuery {
            room: Some(room.to_owned()),
            status: Some(JobStatus::Pending),
            limit: Some(MAX_PENDING_LISTED),
            ..TaskQuery::default()
        })
        .await
}

/// Most pending tasks one wake-up lists.
const MAX_PENDING_LISTED: usize = 100;

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
