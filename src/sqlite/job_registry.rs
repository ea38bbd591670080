//! [`SqliteJobRegistry`]: jobs and their history in SQLite, beside the
//! tasks of a `SqliteTaskStore` in the same database file.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::group_commit::GroupCommit;
use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};
use crate::clock::{from_unix_nanos, to_unix_nanos};
use crate::status::change;
use crate::status::registry::{
    Applied, DEFAULT_MAX_KEYS_PER_JOB, JobPage, JobQuery, JobRegistry, MAX_PAGE_SIZE,
    check_same_job, from_json, to_json,
};
use crate::status::{HistoryEntry, Job, JobEvent, JobStatus, SinkError, StatusSink};

/// The name this backend gives in its errors.
const SINK: &str = "sqlite";

/// History entries kept per job unless told otherwise.
pub const DEFAULT_MAX_HISTORY: usize = 1000;

/// The job tables. The index of finished jobs by their last change (which
/// the purge reads) holds only `DONE` and `FAILED` jobs, so creating a job
/// writes no entry in it; its `DROP` replaces the full index of earlier
/// versions.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hookroom_jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT    NOT NULL UNIQUE,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    input_data  TEXT    NOT NULL,
    progress    TEXT,
    artifacts   TEXT    NOT NULL,
    metadata    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS hookroom_jobs_by_status ON hookroom_jobs (status, seq);
DROP INDEX IF EXISTS hookroom_jobs_by_update;
CREATE INDEX IF NOT EXISTS hookroom_jobs_finished ON hookroom_jobs (updated_at)
    WHERE status IN ('DONE', 'FAILED');
CREATE TABLE IF NOT EXISTS hookroom_job_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_seq    INTEGER NOT NULL REFERENCES hookroom_jobs (seq) ON DELETE CASCADE,
    timestamp  INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    message    TEXT,
    step       TEXT
);
CREATE INDEX IF NOT EXISTS hookroom_job_history_by_job ON hookroom_job_history (job_seq, id);
CREATE TABLE IF NOT EXISTS hookroom_job_keys (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    UNIQUE (job_id, key)
);
CREATE INDEX IF NOT EXISTS hookroom_job_keys_by_job ON hookroom_job_keys (job_id, id);
";

/// A [`JobRegistry`] in SQLite: jobs survive restarts wherever a
/// `SqliteTaskStore`'s tasks do.
///
/// It keeps its own tables (`hookroom_jobs`, `hookroom_job_history`) and its
/// own connection, and is usually opened on the task store's file, so one
/// file holds a gateway's whole state. Events follow the same contract as
/// [`InMemoryStatusSink`](crate::status::InMemoryStatusSink)'s; each is applied in
/// a `BEGIN IMMEDIATE` transaction, so racing completions of a job leave
/// exactly one winner even across processes sharing the file.
///
/// # Group commit
/// Changes go to one writer thread, as the task store's inserts do: every
/// change waiting at the time is applied in one transaction (one that is
/// refused is undone alone and leaves the others) and each caller is
/// answered once that transaction has committed. Under load one `fsync`
/// acknowledges a batch of changes; alone, a change commits at once.
///
/// # Why a job table rather than jobs derived from tasks
/// A job is not always a task: the Jobs API creates jobs of its own, and a
/// job keeps what a task does not (progress, artifacts, metadata, the
/// history of every status change). The task table is owned by the task
/// store and its rows are purged on the store's own schedule. A separate
/// table keeps the Jobs API's model and retention independent of the task
/// store's schema, at the cost of one extra row per task.
///
/// # Idempotency keys
/// [`apply_once`](JobRegistry::apply_once) keeps each applied key in
/// `hookroom_job_keys`, keyed by `(job_id, key)` and written in the same
/// transaction as the update, so a Jobs API restarted on the same file
/// still applies a retried update once.
///
/// # Bounds
/// Each job keeps its newest [`with_max_history`](Self::with_max_history)
/// history entries (default [`DEFAULT_MAX_HISTORY`]) and its newest
/// [`DEFAULT_MAX_KEYS_PER_JOB`] idempotency keys;
/// [`purge_finished`](JobRegistry::purge_finished) removes finished jobs
/// with their history and keys, in batches.
///
/// ```
/// use hookroom::api::jobs::JobCreateRequest;
/// use hookroom::sqlite::SqliteJobRegistry;
/// use hookroom::status::JobRegistry;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let dir = std::env::temp_dir().join(format!("hookroom-doc-{}", uuid::Uuid::new_v4()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("hookroom.db");
/// let registry = SqliteJobRegistry::open(&path).unwrap();
/// let now = time::OffsetDateTime::now_utc();
/// let created = registry.create_job(JobCreateRequest::default(), now).await.unwrap();
/// drop(registry);
///
/// let reopened = SqliteJobRegistry::open(&path).unwrap();
/// assert!(reopened.job(&created.job_id, true).await.unwrap().is_some());
/// # std::fs::remove_dir_all(dir).ok();
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteJobRegistry {
    conn: Arc<Mutex<Connection>>,
    /// The group-commit writer on `conn`, which every change goes through.
    writer: GroupCommit,
    location: Arc<str>,
    max_history: usize,
}

impl std::fmt::Debug for SqliteJobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJobRegistry")
            .field("location", &self.location)
            .field("max_history", &self.max_history)
            .finish_non_exhaustive()
    }
}

fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SinkError {
    SinkError::Backend {
        sink: SINK,
        source: error.into(),
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic mid-transaction rolls the transaction back when it is dropped.
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parse_status(text: &str) -> Result<JobStatus, SinkError> {
    text.parse().map_err(backend)
}

impl SqliteJobRegistry {
    /// Opens (creating if needed) the job tables in the database at `path`,
    /// which may be a `SqliteTaskStore`'s file.
    ///
    /// # Errors
    /// [`SinkError::Backend`] when the file cannot be opened or the tables
    /// cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(backend)?;
        Self::init(conn, path.display().to_string())
    }

    /// The job registry in `store`'s own database, sharing its connection
    /// and its group-commit writer: a task's insert and its job's creation
    /// then queue for the same commits (one `fsync` covers both under load),
    /// and the two never wait for each other's lock on the file.
    ///
    /// This is how a gateway on one SQLite file should open its registry;
    /// [`open`](Self::open) on the same path works too, with a second
    /// connection that takes turns with the store's for the file's write
    /// lock.
    ///
    /// # Errors
    /// [`SinkError::Backend`] when the tables cannot be created.
    pub fn beside(store: &crate::sqlite::SqliteTaskStore) -> Result<Self, SinkError> {
        let (conn, writer) = store.shared_writer();
        {
            // Held while no batch runs (the writer holds this lock for a
            // whole batch), so no transaction is open: the pragma applies.
            let guard = lock(&conn);
            guard
                .pragma_update(None, "foreign_keys", "ON")
                .map_err(backend)?;
            guard.execute_batch(SCHEMA).map_err(backend)?;
        }
        Ok(Self {
            writer,
            conn,
            location: store.location().into(),
            max_history: DEFAULT_MAX_HISTORY,
        })
    }

    /// A private database in memory (gone when the registry is dropped).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_in_memory() -> Result<Self, SinkError> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        Self::init(conn, ":memory:".to_owned())
    }

    fn init(conn: Connection, location: String) -> Result<Self, SinkError> {
        // The same settings as the task store's connection to the file: WAL
        // so readers run beside the writer, FULL so a committed change
        // survives a crash, and a wait for the other connection's lock.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        // Statement journals (a statement that may fail halfway, a batch
        // run again with a savepoint per change) in memory, not in a
        // temporary file per batch.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        let conn = Arc::new(Mutex::new(conn));
        let writer =
            GroupCommit::start(Arc::clone(&conn), "hookroom-sqlite-jobs").map_err(backend)?;
        Ok(Self {
            writer,
            conn,
            location: location.into(),
            max_history: DEFAULT_MAX_HISTORY,
        })
    }

    /// Keeps at most the newest `max` history entries (at least one) per job.
    pub fn with_max_history(mut self, max: usize) -> Self {
        self.max_history = max.max(1);
        self
    }

    /// Removes every job that finished (`DONE` or `FAILED`) and last
    /// changed before `cutoff`, with its history and idempotency keys, in
    /// batches of 1000; returns how many.
    ///
    /// # Errors
    /// [`SinkError::Backend`].
    pub async fn purge_finished_before(&self, cutoff: OffsetDateTime) -> Result<usize, SinkError> {
        const BATCH: usize = 1000;
        let mut total = 0;
        loop {
            let purged = self.purge_finished(cutoff, BATCH).await?;
            total += purged;
            if purged < BATCH {
                return Ok(total);
            }
        }
    }

    /// Runs `f` in the writer's next group commit (a `BEGIN IMMEDIATE`
    /// transaction) and returns once that has committed; an `Err` from `f`
    /// undoes only what `f` did. `f` may run twice (see `group_commit`).
    async fn in_transaction<T, F>(&self, f: F) -> Result<T, SinkError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, usize) -> Result<T, SinkError> + Send + 'static,
    {
        let max_history = self.max_history;
        let mut f = f;
        self.writer
            .write(move |tx| f(tx, max_history))
            .await
            .map_err(backend)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T, SinkError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, SinkError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&lock(&conn)))
            .await
            .map_err(backend)?
    }
}

/// One job row, with its sequence number.
struct Row {
    seq: i64,
    job: Job,
}

const JOB_COLUMNS: &str =
    "seq, job_id, status, created_at, updated_at, input_data, progress, artifacts, metadata";

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        seq: row.get(0)?,
        job_id: row.get(1)?,
        status: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        input_data: row.get(5)?,
        progress: row.get(6)?,
        artifacts: row.get(7)?,
        metadata: row.get(8)?,
    })
}

/// A job row as stored.
struct RawRow {
    seq: i64,
    job_id: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    input_data: String,
    progress: Option<String>,
    artifacts: String,
    metadata: String,
}

impl RawRow {
    fn parse(self) -> Result<Row, SinkError> {
        Ok(Row {
            seq: self.seq,
            job: Job {
                job_id: self.job_id,
                status: parse_status(&self.status)?,
                created_at: from_unix_nanos(self.created_at),
                updated_at: from_unix_nanos(self.updated_at),
                input_data: from_json(SINK, &self.input_data)?,
                progress: self
                    .progress
                    .as_deref()
                    .map(|text| from_json(SINK, text))
                    .transpose()?,
                artifacts: from_json(SINK, &self.artifacts)?,
                metadata: from_json(SINK, &self.metadata)?,
            },
        })
    }
}

fn load(conn: &Connection, job_id: &str) -> Result<Option<Row>, SinkError> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM hookroom_jobs WHERE job_id = ?1"
    ))
    .map_err(backend)?
    .query_row(params![job_id], read_row)
    .optional()
    .map_err(backend)?
    .map(RawRow::parse)
    .transpose()
}

fn history(conn: &Connection, seq: i64) -> Result<Vec<HistoryEntry>, SinkError> {
    let mut statement = conn
        .prepare_cached(
            "SELECT timestamp, status, message, step FROM hookroom_job_history
             WHERE job_seq = ?1 ORDER BY id",
        )
        .map_err(backend)?;
    let rows = statement
        .query_map(params![seq], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })
        .map_err(backend)?;
    rows.map(|row| {
        let (timestamp, status, message, step) = row.map_err(backend)?;
        Ok(HistoryEntry {
            timestamp: from_unix_nanos(timestamp),
            status: parse_status(&status)?,
            message,
            step,
        })
    })
    .collect()
}

/// Appends `entry` to the history of the job numbered `seq` and drops its
/// oldest entries beyond `max_history`.
fn push_history(
    tx: &Connection,
    seq: i64,
    entry: &HistoryEntry,
    max_history: usize,
) -> Result<(), SinkError> {
    insert_history(tx, seq, entry)?;
    // The entry `max_history` places below the newest, and every older one,
    // go; none when there are not that many (the subquery is then NULL).
    tx.prepare_cached(
        "DELETE FROM hookroom_job_history WHERE job_seq = ?1 AND id <=
           (SELECT id FROM hookroom_job_history WHERE job_seq = ?1
            ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .map_err(backend)?
    .execute(params![seq, i64::try_from(max_history).unwrap_or(i64::MAX)])
    .map_err(backend)?;
    Ok(())
}

fn insert_history(tx: &Connection, seq: i64, entry: &HistoryEntry) -> Result<(), SinkError> {
    tx.prepare_cached(
        "INSERT INTO hookroom_job_history (job_seq, timestamp, status, message, step)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(backend)?
    .execute(params![
        seq,
        to_unix_nanos(entry.timestamp),
        entry.status.as_str(),
        entry.message,
        entry.step
    ])
    .map_err(backend)?;
    Ok(())
}

fn save(tx: &Connection, row: &Row) -> Result<(), SinkError> {
    let job = &row.job;
    tx.prepare_cached(
        "UPDATE hookroom_jobs SET status = ?2, updated_at = ?3, progress = ?4, artifacts = ?5,
           metadata = ?6 WHERE seq = ?1",
    )
    .map_err(backend)?
    .execute(params![
        row.seq,
        job.status.as_str(),
        to_unix_nanos(job.updated_at),
        job.progress
            .as_ref()
            .map(|value| to_json(SINK, value))
            .transpose()?,
        to_json(SINK, &job.artifacts)?,
        to_json(SINK, &job.metadata)?,
    ])
    .map_err(backend)?;
    Ok(())
}

fn insert_created(
    tx: &Connection,
    job_id: &str,
    at: OffsetDateTime,
    input_data: &str,
    metadata: &Map<String, Value>,
) -> Result<(), SinkError> {
    // The unique index on `job_id` finds an existing job; the failed
    // statement changes nothing.
    let inserted = tx
        .prepare_cached(
            "INSERT INTO hookroom_jobs (job_id, status, created_at, updated_at, input_data,
               progress, artifacts, metadata) VALUES (?1, 'PENDING', ?2, ?2, ?3, NULL, '[]', ?4)",
        )
        .map_err(backend)?
        .execute(params![
            job_id,
            to_unix_nanos(at),
            input_data,
            to_json(SINK, metadata)?
        ]);
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Err(SinkError::InvalidStatus {
                reason: format!("job `{job_id}` already exists"),
            });
        }
        Err(e) => return Err(backend(e)),
    }
    // A new job's history is this one entry, within any `max_history`
    // (at least 1): nothing to trim.
    insert_history(tx, tx.last_insert_rowid(), &change::created_entry(at))
}

/// Applies one event inside a transaction; the contract is
/// [`InMemoryStatusSink`](crate::status::InMemoryStatusSink)'s.
fn apply(tx: &Connection, event: JobEvent, max_history: usize) -> Result<(), SinkError> {
    if let JobEvent::Created {
        job_id,
        at,
        input_data,
        metadata,
    } = &event
    {
        return insert_created(tx, job_id, *at, input_data.as_str(), metadata);
    }
    change::precheck(&event)?;
    let job_id = event.job_id().to_owned();
    let mut row = load(tx, &job_id)?.ok_or(SinkError::JobNotFound { job_id })?;
    let entry = change::apply(&mut row.job, event)?;
    save(tx, &row)?;
    push_history(tx, row.seq, &entry, max_history)
}

/// Remembers `key` for `job_id`; `false` when it already was.
fn remember_key(tx: &Connection, job_id: &str, key: &str) -> Result<bool, SinkError> {
    let inserted = tx
        .prepare_cached("INSERT OR IGNORE INTO hookroom_job_keys (job_id, key) VALUES (?1, ?2)")
        .map_err(backend)?
        .execute(params![job_id, key])
        .map_err(backend)?;
    if inserted == 0 {
        return Ok(false);
    }
    // As the history's trim: the key that many places below the newest, and
    // every older one, go.
    tx.prepare_cached(
        "DELETE FROM hookroom_job_keys WHERE job_id = ?1 AND id <=
           (SELECT id FROM hookroom_job_keys WHERE job_id = ?1
            ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )
    .map_err(backend)?
    .execute(params![
        job_id,
        i64::try_from(DEFAULT_MAX_KEYS_PER_JOB).unwrap_or(i64::MAX)
    ])
    .map_err(backend)?;
    Ok(true)
}

/// Removes at most `limit` finished jobs older than `cutoff`, with their
/// history (by cascade) and keys.
fn purge(tx: &Connection, cutoff: OffsetDateTime, limit: usize) -> Result<usize, SinkError> {
    let doomed: Vec<(i64, String)> = {
        let mut statement = tx
            .prepare_cached(
                "SELECT seq, job_id FROM hookroom_jobs
                 WHERE status IN ('DONE', 'FAILED') AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(
                params![
                    to_unix_nanos(cutoff),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for (seq, job_id) in &doomed {
        tx.execute(
            "DELETE FROM hookroom_job_keys WHERE job_id = ?1",
            params![job_id],
        )
        .map_err(backend)?;
        tx.execute("DELETE FROM hookroom_jobs WHERE seq = ?1", params![seq])
            .map_err(backend)?;
    }
    Ok(doomed.len())
}

#[async_trait]
impl StatusSink for SqliteJobRegistry {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        self.in_transaction(move |tx, max_history| apply(tx, event.clone(), max_history))
            .await
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let job_id = event.job_id().to_owned();
        self.apply_once(&job_id, key, vec![event]).await.map(drop)
    }
}

#[async_trait]
impl JobRegistry for SqliteJobRegistry {
    async fn create_job(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError> {
        let event = request.into_event(uuid::Uuid::new_v4().to_string(), at);
        let job_id = event.job_id().to_owned();
        self.in_transaction(move |tx, max_history| {
            apply(tx, event.clone(), max_history)?;
            let row = load(tx, &job_id)?.ok_or_else(|| SinkError::JobNotFound {
                job_id: job_id.clone(),
            })?;
            Ok(JobCreateResponse::for_job(&row.job))
        })
        .await
    }

    async fn job(&self, job_id: &str, include_history: bool) -> Result<Option<JobView>, SinkError> {
        let job_id = job_id.to_owned();
        self.read(move |conn| {
            let Some(row) = load(conn, &job_id)? else {
                return Ok(None);
            };
            let history = if include_history {
                Some(history(conn, row.seq)?)
            } else {
                None
            };
            Ok(Some(JobView {
                job: row.job,
                history,
            }))
        })
        .await
    }

    async fn jobs(&self, query: JobQuery) -> Result<JobPage, SinkError> {
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        self.read(move |conn| {
            let before = query
                .cursor
                .and_then(|c| i64::try_from(c).ok())
                .unwrap_or(i64::MAX);
            let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM hookroom_jobs
                     WHERE seq < ?1 AND (?2 IS NULL OR status = ?2)
                     ORDER BY seq DESC LIMIT ?3"
                ))
                .map_err(backend)?;
            let status = query.status.map(JobStatus::as_str);
            let mut rows = statement
                .query_map(params![before, status, fetch], read_row)
                .map_err(backend)?
                .map(|row| row.map_err(backend)?.parse())
                .collect::<Result<Vec<Row>, SinkError>>()?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = if more {
                rows.last().and_then(|row| u64::try_from(row.seq).ok())
            } else {
                None
            };
            Ok(JobPage {
                jobs: rows.into_iter().map(|row| row.job).collect(),
                next,
            })
        })
        .await
    }

    async fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        check_same_job(job_id, &events)?;
        let (job_id, key) = (job_id.to_owned(), key.to_owned());
        // The key and the update commit together, or neither does.
        self.in_transaction(move |tx, max_history| {
            if !remember_key(tx, &job_id, &key)? {
                return Ok(Applied::Before);
            }
            for event in events.iter().cloned() {
                apply(tx, event, max_history)?;
            }
            Ok(Applied::Now)
        })
        .await
    }

    async fn purge_finished(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, SinkError> {
        self.in_transaction(move |tx, _| purge(tx, cutoff, limit))
            .await
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::conformance::status_sink::{JobReader, run_all};

    struct Reader(SqliteJobRegistry);

    #[async_trait]
    impl JobReader for Reader {
        async fn read_job(&self, job_id: &str) -> Option<JobView> {
            self.0.job(job_id, true).await.ok().flatten()
        }
    }

    fn temp_db() -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("hookroom-jobs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookroom.db");
        (dir, path)
    }

    fn created(id: &str) -> JobEvent {
        JobEvent::Created {
            job_id: id.into(),
            at: OffsetDateTime::now_utc(),
            input_data: serde_json::json!({"room": "r"}).into(),
            metadata: Map::new(),
        }
    }

    fn running_event(id: &str, message: &str) -> JobEvent {
        JobEvent::Status {
            job_id: id.into(),
            at: OffsetDateTime::now_utc(),
            status: JobStatus::Running,
            progress: None,
            message: Some(message.into()),
            step: None,
        }
    }

    fn done(id: &str) -> JobEvent {
        JobEvent::Completed {
            job_id: id.into(),
            at: OffsetDateTime::now_utc(),
            final_status: JobStatus::Done,
            summary: None,
            artifacts: vec![],
            message: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_status_sink_conformance_suite() {
        let (dir, path) = temp_db();
        let registry = SqliteJobRegistry::open(&path).unwrap();
        run_all(Arc::new(registry.clone()), &Reader(registry)).await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn passes_the_suite_in_memory() {
        let registry = SqliteJobRegistry::open_in_memory().unwrap();
        run_all(Arc::new(registry.clone()), &Reader(registry)).await;
    }

    #[tokio::test]
    async fn jobs_and_history_survive_a_reopen_beside_the_task_store() {
        let (dir, path) = temp_db();
        // The task store's tables and the job tables share the file.
        let tasks = crate::sqlite::SqliteTaskStore::open(&path).unwrap();
        let registry = SqliteJobRegistry::open(&path).unwrap();
        registry.publish(created("task-1")).await.unwrap();
        registry
            .publish(running_event("task-1", "claimed"))
            .await
            .unwrap();
        drop(registry);
        drop(tasks);

        let reopened = SqliteJobRegistry::open(&path).unwrap();
        let view = reopened.job("task-1", true).await.unwrap().unwrap();
        assert_eq!(view.job.status, JobStatus::Running);
        assert_eq!(view.job.input_data, serde_json::json!({"room": "r"}));
        let history = view.history.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].message.as_deref(), Some("claimed"));
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('hookroom_tasks', 'hookroom_jobs', 'hookroom_job_history')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 3);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn history_is_bounded_per_job() {
        let registry = SqliteJobRegistry::open_in_memory()
            .unwrap()
            .with_max_history(3);
        registry.publish(created("a")).await.unwrap();
        registry.publish(created("b")).await.unwrap();
        for i in 0..10 {
            registry
                .publish(running_event("a", &format!("m{i}")))
                .await
                .unwrap();
        }
        registry.publish(done("a")).await.unwrap();
        let history = registry.job("a", true).await.unwrap().unwrap().history;
        let history = history.unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[0].message.as_deref(), Some("m8"));
        assert_eq!(history[2].status, JobStatus::Done);
        // Another job's history is untouched.
        let other = registry.job("b", true).await.unwrap().unwrap();
        assert_eq!(other.history.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn purge_removes_only_finished_jobs_with_their_history() {
        let registry = SqliteJobRegistry::open_in_memory().unwrap();
        registry.publish(created("old-done")).await.unwrap();
        registry.publish(done("old-done")).await.unwrap();
        registry.publish(created("still-pending")).await.unwrap();
        let cutoff = OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(registry.purge_finished_before(cutoff).await.unwrap(), 1);
        assert!(registry.job("old-done", false).await.unwrap().is_none());
        assert!(
            registry
                .job("still-pending", false)
                .await
                .unwrap()
                .is_some()
        );
        let orphans: i64 = registry
            .read(|conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM hookroom_job_history h
                     WHERE NOT EXISTS (SELECT 1 FROM hookroom_jobs j WHERE j.seq = h.job_seq)",
                    [],
                    |row| row.get(0),
                )
                .map_err(backend)
            })
            .await
            .unwrap();
        assert_eq!(orphans, 0);
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_newest_first() {
        let registry = SqliteJobRegistry::open_in_memory().unwrap();
        for i in 0..5 {
            registry.publish(created(&format!("j{i}"))).await.unwrap();
        }
        registry.publish(running_event("j2", "go")).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = registry
                .jobs(JobQuery {
                    status: None,
                    limit: 2,
                    cursor,
                })
                .await
                .unwrap();
            seen.extend(page.jobs.into_iter().map(|job| job.job_id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["j4", "j3", "j2", "j1", "j0"]);
        let running = registry
            .jobs(JobQuery {
                status: Some(JobStatus::Running),
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(running.jobs.len(), 1);
        assert_eq!(running.jobs[0].job_id, "j2");
    }
}
