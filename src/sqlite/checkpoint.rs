//! Checkpoints out of the commit path: a thread with a connection of its
//! own copies the write-ahead log into the database file with passive
//! checkpoints, while the writer goes on committing.
//!
//! Left to SQLite, the connection that commits runs the checkpoint, inside
//! that commit, once the log passes its `wal_autocheckpoint` size: every
//! write queued behind that commit waits for a copy of the whole log and two
//! flushes to disk, which is most of a busy store's slowest answers. Here a
//! checkpoint runs every [`INTERVAL`] from its own connection. A passive
//! checkpoint takes no lock a writer needs: commits go on while it copies,
//! so it copies what was committed when it started.
//!
//! The log stays bounded: the writer keeps a `wal_autocheckpoint` of
//! [`WAL_BOUND_PAGES`]. The log is only rewound when a checkpoint copied
//! all of it before the next write, which a checkpoint racing the writer
//! seldom does; the log then grows to that bound, and the writer's own
//! checkpoint, which has only the frames since the last background pass to
//! copy, rewinds it. If this thread falls behind, the writer's
//! checkpoint does the copying, as SQLite does on its own.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the log is copied into the database file.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// The log size, in pages, past which the committing connection checkpoints
/// itself (its `wal_autocheckpoint`): the log's bound.
pub(crate) const WAL_BOUND_PAGES: i64 = 8192;

/// The background checkpoints of one database file; they stop when this is
/// dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode)
    /// every [`INTERVAL`], on a thread named `name`.
    pub(crate) fn start(path: PathBuf, name: &str) -> std::io::Result<Self> {
        // Opened here, so that a file that cannot be opened fails the
        // store's opening rather than the thread.
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(std::io::Error::other)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&conn, &stopped))?;
        Ok(Self { stop })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

fn run(conn: &Connection, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut guard = stopped
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let (next, _) = wake
            .wait_timeout(guard, INTERVAL)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard = next;
        if *guard {
            return;
        }
        // Not holding the flag's lock while copying.
        drop(guard);
        // A failure (the file busy with another process's checkpoint, say)
        // is left for the next round or the writer's own checkpoint.
        if let Err(error) = checkpoint(conn) {
            tracing::debug!(%error, "background SQLite checkpoint failed");
        }
        guard = stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// One passive checkpoint: copies the frames committed so far that no
/// reader still needs; never waits for a lock.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(conn: &Connection) -> (i64, i64) {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint")
    }

    #[test]
    fn the_log_is_copied_without_the_writer_checkpointing() {
        let dir = std::env::temp_dir().join(format!(
            "hookroom-checkpoint-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("db.sqlite");
        let writer = Connection::open(&path).expect("open");
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        // The writer never checkpoints by itself.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no autocheckpoint");
        writer
            .execute_batch("CREATE TABLE t (v BLOB)")
            .expect("table");
        let checkpointer = Checkpointer::start(path.clone(), "test-checkpoint").expect("start");
        for _ in 0..50 {
            writer
                .execute("INSERT INTO t (v) VALUES (zeroblob(4000))", [])
                .expect("insert");
        }
        // Within a few rounds every frame is in the database file.
        let mut copied = false;
        for _ in 0..50 {
            std::thread::sleep(INTERVAL);
            let reader = Connection::open(&path).expect("open");
            let size: i64 = reader
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .expect("pages");
            let file_pages = std::fs::metadata(&path).expect("file").len() / 4096;
            if size > 40 && i64::try_from(file_pages).expect("size") >= size {
                copied = true;
                break;
            }
        }
        drop(checkpointer);
        assert!(copied, "the background checkpoint did not copy the log");
        let (log, checkpointed) = frames(&writer);
        assert_eq!(log, checkpointed);
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
