//! Wake-ups for a store without notifications of its own: a SQLite file
//! that other processes (a gateway, another MCP server) write to. SQLite's
//! `PRAGMA data_version` changes on a connection whenever another
//! connection commits to the file, so one thread reading it a few times a
//! second hears of every commit, from any process, without reading a task.
//! The room watchers of [`super::session`] then list the room and notify
//! what is new.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast;

/// A shared `data_version` poller: its thread runs while some room watcher
/// listens, and stops when the last one goes.
#[derive(Debug)]
pub(crate) struct Wakeups {
    path: PathBuf,
    every: Duration,
    /// The live thread's sender; `None` when no thread runs.
    sender: Arc<Mutex<Option<broadcast::Sender<()>>>>,
}

impl Wakeups {
    pub(crate) fn new(path: PathBuf, every: Duration) -> Self {
        Self {
            path,
            every: every.max(Duration::from_millis(10)),
            sender: Arc::new(Mutex::new(None)),
        }
    }

    /// A receiver that gets `()` after each commit by another connection,
    /// starting the polling thread if none runs.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<()> {
        let mut slot = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = slot.as_ref() {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(1);
        *slot = Some(sender.clone());
        let path = self.path.clone();
        let every = self.every;
        let shared = Arc::clone(&self.sender);
        let spawned = std::thread::Builder::new()
            .name("hookroom-mcp-data-version".into())
            .spawn(move || poll(&path, every, &sender, &shared));
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not start the SQLite wake-up thread; rooms are not notified");
            *slot = None;
        }
        receiver
    }
}

/// Reads `data_version` every `every` and wakes the receivers when it
/// changes, until none is left (checked under the slot's lock, so a new
/// subscriber either joins this thread or starts the next).
fn poll(
    path: &std::path::Path,
    every: Duration,
    sender: &broadcast::Sender<()>,
    slot: &Mutex<Option<broadcast::Sender<()>>>,
) {
    let mut connection = None;
    let mut last = None;
    loop {
        std::thread::sleep(every);
        {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if sender.receiver_count() == 0 {
                *slot = None;
                return;
            }
        }
        if connection.is_none() {
            match rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ) {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot open the SQLite file to watch it; trying again");
                    continue;
                }
            }
        }
        let Some(open) = connection.as_ref() else {
            continue;
        };
        match open.query_row("PRAGMA data_version", [], |row| row.get::<_, i64>(0)) {
            Ok(version) => {
                // The first read wakes too: a commit between a watcher's
                // own listing and this thread's first read is not missed.
                if last != Some(version) {
                    let _ = sender.send(());
                }
                last = Some(version);
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "reading PRAGMA data_version failed; reopening");
                connection = None;
            }
        }
    }
}
