//! [`SqliteTaskStore`]: a durable, embedded [`TaskStore`] on one SQLite file.
//!
//! Every acknowledged insert is committed with `synchronous = FULL` in WAL
//! mode before [`TaskStore::insert`] returns, so a crash after the gateway's
//! 2xx never loses the task. Claims run in `BEGIN IMMEDIATE` transactions, so
//! several processes sharing the file still claim exclusively.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hookroom::sqlite::SqliteTaskStore;
//! use hookroom::task::{NewTask, TaskStore};
//!
//! let store = SqliteTaskStore::open_in_memory()?;
//! let inserted = store
//!     .insert(NewTask {
//!         room: "pr-review".into(),
//!         title: "[PR] opened #42: Test PR".into(),
//!         description: String::new(),
//!         priority: 2,
//!         source: "github".into(),
//!         source_event: "pull_request.opened".into(),
//!         source_url: None,
//!         delivery_id: "72d3162e".into(),
//!         payload: "{}".into(),
//!         required_capabilities: vec![],
//!         ttl: None,
//!     })
//!     .await?;
//! assert!(!inserted.duplicate);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::checkpoint::{Checkpointer, WAL_BOUND_PAGES};
use super::group_commit::GroupCommit;
use crate::clock::{Clock, SystemClock, to_unix_nanos};
use crate::lifecycle::JobStatus;
use crate::task::sql::COLUMNS;
use crate::task::state::StoredTask;
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};

mod rows;

use self::rows::{BestCandidate, COLUMN_COUNT, fetch, insert_in, query, read_row, write};

const STORE: &str = "sqlite";
const TABLE: &str = "hookroom_tasks";
const DEFAULT_LIST_LIMIT: usize = 100;

/// The table and its indexes. The expiry and lease indexes hold only the
/// rows that have such a time (a task without a TTL, and every pending
/// task, has none), so an insert writes two index entries fewer; the
/// queries that read them compare that time, which tells SQLite's planner
/// it is not NULL. The two `DROP`s replace the full indexes of earlier
/// versions on files that still have them.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hookroom_tasks (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    room                  TEXT NOT NULL,
    title                 TEXT NOT NULL,
    description           TEXT NOT NULL,
    priority              INTEGER NOT NULL,
    status                TEXT NOT NULL,
    source                TEXT NOT NULL,
    source_event          TEXT NOT NULL,
    source_url            TEXT,
    delivery_id           TEXT NOT NULL,
    payload               BLOB NOT NULL,
    required_capabilities TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    expires_at            INTEGER,
    not_before            INTEGER,
    claimed_by            TEXT,
    lease_expires_at      INTEGER,
    attempts              INTEGER NOT NULL DEFAULT 0,
    claim_token           TEXT,
    input_request         TEXT,
    input                 TEXT,
    result                TEXT,
    failure               TEXT,
    UNIQUE (source, delivery_id)
);
CREATE INDEX IF NOT EXISTS hookroom_tasks_claim
    ON hookroom_tasks (room, status, priority, created_at, seq);
DROP INDEX IF EXISTS hookroom_tasks_expiry;
DROP INDEX IF EXISTS hookroom_tasks_lease;
CREATE INDEX IF NOT EXISTS hookroom_tasks_expiring
    ON hookroom_tasks (status, expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS hookroom_tasks_leased
    ON hookroom_tasks (status, lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS hookroom_tasks_finished
    ON hookroom_tasks (updated_at) WHERE status IN ('DONE', 'FAILED');
";

/// The condition of [`SqliteTaskStore::purge_finished`], the same as the
/// partial index `hookroom_tasks_finished`'s so that index serves it.
const FINISHED: &str = "status IN ('DONE', 'FAILED')";

/// SQLite's page cache for the connection, in KiB (as `PRAGMA cache_size`
/// takes it, negative), instead of SQLite's default of 2 MiB.
const CACHE_KIB: i64 = -32 * 1024;

/// How large the write-ahead log file may stay after it is rewound, in
/// bytes: above the log's bound ([`WAL_BOUND_PAGES`] pages of at most
/// 8 KiB), so the file is reused rather than cut and grown again, and
/// rewriting blocks already allocated is all a commit's flush covers.
const JOURNAL_SIZE_LIMIT: i64 = 80 * 1024 * 1024;

/// A durable [`TaskStore`] in one SQLite database file.
///
/// Cloning is cheap and shares the connection. Blocking SQLite calls run on
/// tokio's blocking pool, never on the async workers. Every operation loads
/// the task in a `BEGIN IMMEDIATE` transaction, applies the
/// [state machine](crate::task::state) and writes the row back.
///
/// # Group commit
/// Every write (inserts, claims, updates) goes to one writer thread, which
/// runs every write waiting at the time in one transaction (at most 128)
/// and answers each caller once that transaction has committed. With one caller a batch holds one write and nothing waits
/// for company; under load, writes that arrive during a commit share the
/// next one, and one `fsync` acknowledges them all. Durability is unchanged:
/// `synchronous = FULL`, and no write returns before its commit. A write
/// that fails (a stale claim token, say) is rolled back alone: almost always
/// it failed before changing anything, and otherwise the batch runs again
/// with a savepoint per write. A batch that fails to commit fails each of
/// its writes. Reads take the connection
/// between batches, so they wait at most for one bounded batch.
#[derive(Clone)]
pub struct SqliteTaskStore {
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
    location: Arc<str>,
    /// The group-commit writer on `conn`, which every insert goes through.
    writer: GroupCommit,
    /// The background checkpoints of a database file (none in memory);
    /// they stop with the last clone.
    _checkpointer: Option<Arc<Checkpointer>>,
}

impl std::fmt::Debug for SqliteTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTaskStore")
            .field("location", &self.location)
            .field("clock", &self.clock)
            .finish()
    }
}

impl std::fmt::Display for SqliteTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteTaskStore({})", self.location)
    }
}

impl SqliteTaskStore {
    /// Opens (creating if needed) the database at `path`, with the system clock.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or the schema
    /// cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Opens the database at `path` with a given clock.
    ///
    /// # Errors
    /// As [`SqliteTaskStore::open`].
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn, clock, path.display().to_string(), Some(path))
    }

    /// A private database in memory (gone when the store is dropped).
    ///
    /// # Errors
    /// As [`SqliteTaskStore::open`].
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with_clock(Arc::new(SystemClock))
    }

    /// A private in-memory database with a given clock.
    ///
    /// # Errors
    /// As [`SqliteTaskStore::open`].
    pub fn open_in_memory_with_clock(clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        Self::init(conn, clock, ":memory:".to_owned(), None)
    }

    fn init(
        conn: Connection,
        clock: Arc<dyn Clock>,
        location: String,
        path: Option<&Path>,
    ) -> Result<Self, StoreError> {
        // First: a new file takes auto_vacuum only before anything is
        // written to it (switching to WAL writes its header).
        incremental_auto_vacuum(&conn)?;
        // WAL lets readers run beside the single writer; FULL makes a commit
        // durable before insert returns (the gateway acknowledges after it).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        // Pages kept in memory: the unique indexes on random ids (task and
        // job ids) are written at random places, and a page found in this
        // cache is one `pread` fewer on every insert.
        conn.pragma_update(None, "cache_size", CACHE_KIB)
            .map_err(backend)?;
        // Statement journals (a statement that may fail halfway, a batch
        // run again with a savepoint per write) in memory, not in a
        // temporary file created and deleted per batch.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(backend)?;
        // The log file shrinks back to this when it is rewound.
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        // A file's log is copied into it by a thread of its own (see
        // `checkpoint`); this connection checkpoints inside a commit only
        // past the log's bound, when that thread fell behind.
        let checkpointer = match path {
            Some(path) => {
                conn.pragma_update(None, "wal_autocheckpoint", WAL_BOUND_PAGES)
                    .map_err(backend)?;
                let checkpointer =
                    Checkpointer::start(path.to_owned(), "hookroom-sqlite-checkpoint")
                        .map_err(backend)?;
                Some(Arc::new(checkpointer))
            }
            None => None,
        };
        let conn = Arc::new(Mutex::new(conn));
        let writer =
            GroupCommit::start(Arc::clone(&conn), "hookroom-sqlite-tasks").map_err(backend)?;
        Ok(Self {
            conn,
            clock,
            location: location.into(),
            writer,
            _checkpointer: checkpointer,
        })
    }

    /// The file this store keeps its tasks in (`:memory:` for a private
    /// in-memory database).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The connection and its group-commit writer, for a job registry that
    /// keeps its tables in this store's database
    /// ([`SqliteJobRegistry::beside`](crate::sqlite::SqliteJobRegistry::beside)).
    pub(crate) fn shared_writer(&self) -> (Arc<Mutex<Connection>>, GroupCommit) {
        (Arc::clone(&self.conn), self.writer.clone())
    }

    /// Deletes at most `limit` finished tasks (`DONE` or `FAILED`) last
    /// changed before `finished_before`, oldest first, in one transaction,
    /// then gives the freed pages back to the file system
    /// (`PRAGMA incremental_vacuum`), so the database file stays bounded
    /// under sustained load. Returns how many were deleted: fewer than
    /// `limit` means none is left. Call it in a loop to purge everything;
    /// other operations run between two calls, so a small `limit` keeps
    /// their wait short ([`crate::retention`] runs such a loop in the
    /// background from a routes file's `log_retention_days`).
    ///
    /// A redelivery of a purged task's webhook is a new task: purge only
    /// what its sender no longer retries.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when SQLite fails.
    pub async fn purge_finished(
        &self,
        finished_before: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            let tx = guard
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let deleted = tx
                .prepare_cached(&format!(
                    "DELETE FROM {TABLE} WHERE seq IN (SELECT seq FROM {TABLE} \
                     WHERE {FINISHED} AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)"
                ))
                .map_err(backend)?
                .execute(params![to_unix_nanos(finished_before), limit])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            if deleted > 0 {
                // Each step of the pragma frees one page: step to the end.
                let mut vacuum = guard
                    .prepare_cached("PRAGMA incremental_vacuum")
                    .map_err(backend)?;
                let mut steps = vacuum.query([]).map_err(backend)?;
                while steps.next().map_err(backend)?.is_some() {}
            }
            Ok(deleted)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` in the writer's next group commit (a `BEGIN IMMEDIATE`
    /// transaction) and returns once that has committed; an `Err` from `f`
    /// undoes only what `f` did. `f` may run twice (see `group_commit`).
    /// `f` gets the time read once the write lock is held, so the wait for
    /// it never shortens a lease granted in `f`.
    async fn in_transaction<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, OffsetDateTime) -> Result<T, StoreError> + Send + 'static,
    {
        let clock = Arc::clone(&self.clock);
        let mut f = f;
        self.writer
            .write(move |tx| f(tx, clock.now()))
            .await
            .map_err(backend)?
    }

    /// Runs `f` without a transaction (single reads).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&lock(&conn)))
            .await
            .map_err(backend)?
    }

    /// Loads the task, applies a state machine operation, writes the row
    /// back and returns the operation's output with the task as it left it.
    async fn update<T, F>(&self, id: &TaskId, op: F) -> Result<(T, Task), StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut StoredTask, OffsetDateTime) -> Result<T, StoreError> + Send + 'static,
    {
        let id = id.clone();
        let mut op = op;
        self.in_transaction(move |tx, now| {
            let mut stored =
                fetch(tx, &id)?.ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
            let out = op(&mut stored, now)?;
            write(tx, &stored)?;
            Ok((out, stored.task))
        })
        .await
    }
}

/// Turns on `auto_vacuum = INCREMENTAL`, so pages freed by a purge can be
/// given back to the file system. A new database takes it as is; one made
/// without it is rebuilt once by `VACUUM` (the setting only changes then).
fn incremental_auto_vacuum(conn: &Connection) -> Result<(), StoreError> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .map_err(backend)?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", INCREMENTAL)
        .map_err(backend)?;
    let mode: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
        .map_err(backend)?;
    if mode != INCREMENTAL {
        // The file already has pages: only a rebuild applies the setting.
        conn.execute_batch("VACUUM").map_err(backend)?;
    }
    Ok(())
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent (an
    // open transaction is rolled back on drop), so the poison flag is moot.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(e),
    }
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.in_transaction(move |tx, now| insert_in(tx, task.clone(), now))
            .await
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let id = id.clone();
        self.read(move |conn| Ok(fetch(conn, &id)?.map(|stored| stored.task)))
            .await
    }

    async fn list(&self, query_: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let q = query_.clone();
        self.read(move |conn| {
            let limit = i64::try_from(q.limit.unwrap_or(DEFAULT_LIST_LIMIT)).unwrap_or(i64::MAX);
            // The cursor's place in list order, or NotFound.
            let cursor: Option<(i64, i64)> = match &q.before {
                None => None,
                Some(id) => Some(
                    conn.prepare_cached(&format!(
                        "SELECT created_at, seq FROM {TABLE} WHERE id = ?1"
                    ))
                    .map_err(backend)?
                    .query_row(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(backend)?
                    .ok_or_else(|| StoreError::NotFound { id: id.clone() })?,
                ),
            };
            let sql = format!(
                "SELECT {COLUMNS} FROM {TABLE} \
                 WHERE (?1 IS NULL OR room = ?1) AND (?2 IS NULL OR status = ?2) \
                   AND (?3 IS NULL OR source = ?3) \
                   AND (?5 IS NULL OR (created_at, seq) < (?5, ?6)) \
                 ORDER BY created_at DESC, seq DESC LIMIT ?4"
            );
            let status = q.status.map(JobStatus::as_str);
            let (created, seq) = (cursor.map(|c| c.0), cursor.map(|c| c.1));
            let found = query(
                conn,
                &sql,
                params![q.room, status, q.source, limit, created, seq],
            )?;
            Ok(found.into_iter().map(|stored| stored.task).collect())
        })
        .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let request = request.clone();
        self.in_transaction(move |tx, now| {
            // Two sources of claimable tasks, each read in claim order
            // straight off an index, so a claim looks at the front of the
            // room, not at every task it ever held: pending tasks (index
            // `hookroom_tasks_claim`, already in claim order), and held
            // tasks whose lease ran out (index `hookroom_tasks_leased`, few).
            // The state machine has the last word on each candidate
            // (capabilities are a JSON column SQL cannot test); the better
            // of the two sources' first claimable task is claimed.
            let pending = format!(
                "SELECT {COLUMNS}, seq FROM {TABLE} \
                 WHERE room = ?1 AND status = 'PENDING' \
                   AND (not_before IS NULL OR not_before <= ?2) \
                   AND (expires_at IS NULL OR expires_at > ?2) \
                 ORDER BY priority ASC, created_at ASC, seq ASC"
            );
            let lapsed = format!(
                "SELECT {COLUMNS}, seq FROM {TABLE} \
                 WHERE status IN ('RUNNING', 'NEEDS_INPUT') AND lease_expires_at <= ?2 \
                   AND room = ?1 \
                 ORDER BY priority ASC, created_at ASC, seq ASC"
            );
            let mut best = BestCandidate::default();
            for sql in [&pending, &lapsed] {
                let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
                let mut rows = stmt
                    .query(params![request.room, to_unix_nanos(now)])
                    .map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    let stored = read_row(row)?;
                    if stored.is_claimable(&request.capabilities, now) {
                        best.offer(stored, row.get(COLUMN_COUNT).map_err(backend)?);
                        break;
                    }
                }
            }
            let Some(mut stored) = best.into_best() else {
                return Ok(None);
            };
            let token = stored.claim(&request.agent, &request.capabilities, request.lease, now)?;
            write(tx, &stored)?;
            Ok(Some(Claimed {
                task: stored.task,
                token,
            }))
        })
        .await
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let request = request.clone();
        let (token, task) = self
            .update(id, move |stored, now| {
                stored.claim(&request.agent, &request.capabilities, request.lease, now)
            })
            .await?;
        Ok(Claimed { task, token })
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        let token = token.clone();
        let ((), task) = self
            .update(id, move |stored, now| stored.heartbeat(&token, lease, now))
            .await?;
        Ok(task)
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let token = token.clone();
        let ((), task) = self
            .update(id, move |stored, now| {
                stored.complete(&token, result.clone(), now)
            })
            .await?;
        Ok(task)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let (token, reason) = (token.clone(), reason.to_owned());
        let ((), task) = self
            .update(id, move |stored, now| {
                stored.fail(&token, &reason, action, now)
            })
            .await?;
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let token = token.clone();
        let ((), task) = self
            .update(id, move |stored, now| stored.release(&token, now))
            .await?;
        Ok(task)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let (token, prompt) = (token.clone(), prompt.to_owned());
        let ((), task) = self
            .update(id, move |stored, now| {
                stored.request_input(&token, &prompt, now)
            })
            .await?;
        Ok(task)
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let ((), task) = self
            .update(id, move |stored, now| {
                stored.provide_input(input.clone(), now)
            })
            .await?;
        Ok(task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let token = token.clone();
        let (input, _) = self
            .update(id, move |stored, now| stored.take_input(&token, now))
            .await?;
        Ok(input)
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        self.in_transaction(move |tx, now| {
            let sql = format!(
                "SELECT {COLUMNS} FROM {TABLE} WHERE status = 'PENDING' \
                 AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY seq"
            );
            let mut expired = Vec::new();
            for mut stored in query(tx, &sql, params![to_unix_nanos(now)])? {
                if stored.expire(now) {
                    write(tx, &stored)?;
                    expired.push(stored.task);
                }
            }
            Ok(expired)
        })
        .await
    }
}
