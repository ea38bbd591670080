//! [`SqliteOutbox`]: the durable queue of
//! [`OutboxStatusSink::sqlite`](crate::status::OutboxStatusSink::sqlite), one
//! table shared by several outboxes, each with its own queue.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::status::outbox::{Entry, StoredEvent, lock};
use crate::status::{JobEvent, SinkError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hookroom_status_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    target           TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    event            TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS hookroom_status_outbox_by_target
    ON hookroom_status_outbox (target, id);
";

fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SinkError {
    SinkError::Backend {
        sink: "outbox",
        source: error.into(),
    }
}

/// The outbox table of one target.
pub(crate) struct SqliteOutbox {
    conn: Arc<Mutex<Connection>>,
    target: Arc<str>,
}

impl SqliteOutbox {
    pub(crate) fn open(path: &Path, target: String) -> Result<Self, SinkError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        // A change is acknowledged once it is on disk.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            target: target.into(),
        })
    }

    pub(crate) fn count(&self) -> Result<u64, SinkError> {
        let count: i64 = lock(&self.conn)
            .query_row(
                "SELECT COUNT(*) FROM hookroom_status_outbox WHERE target = ?1",
                params![&*self.target],
                |row| row.get(0),
            )
            .map_err(backend)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn run<T, F>(&self, f: F) -> Result<T, SinkError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &str) -> Result<T, SinkError> + Send + 'static,
    {
        let (conn, target) = (Arc::clone(&self.conn), Arc::clone(&self.target));
        tokio::task::spawn_blocking(move || f(&lock(&conn), &target))
            .await
            .map_err(backend)?
    }

    pub(crate) async fn push(&self, key: String, event: JobEvent) -> Result<(), SinkError> {
        let text = serde_json::to_string(&StoredEvent::from(event)).map_err(backend)?;
        self.run(move |conn, target| {
            conn.execute(
                "INSERT INTO hookroom_status_outbox (target, idempotency_key, event)
                 VALUES (?1, ?2, ?3)",
                params![target, key, text],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    pub(crate) async fn first(&self) -> Result<Option<Entry>, SinkError> {
        self.run(|conn, target| {
            let row: Option<(i64, String, String)> = conn
                .query_row(
                    "SELECT id, idempotency_key, event FROM hookroom_status_outbox
                     WHERE target = ?1 ORDER BY id LIMIT 1",
                    params![target],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(id, key, text)| {
                let stored: StoredEvent = serde_json::from_str(&text).map_err(backend)?;
                Ok(Entry {
                    id,
                    key,
                    event: stored.into(),
                })
            })
            .transpose()
        })
        .await
    }

    pub(crate) async fn remove(&self, id: i64) -> Result<(), SinkError> {
        self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM hookroom_status_outbox WHERE id = ?1",
                params![id],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }
}
