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
//! use hookroom::task::{NewTask, SqliteTaskStore, TaskStore};
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
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::fence::{ClaimView, check_held, has_capabilities};
use super::sql_time::{duration_nanos, from_nanos, to_nanos};
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, Payload, StoreError, Task,
    TaskId, TaskQuery, TaskStore,
};
use crate::clock::{Clock, SystemClock};
use crate::lifecycle::JobStatus;

const STORE: &str = "sqlite";
const DEFAULT_LIST_LIMIT: usize = 100;

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
CREATE INDEX IF NOT EXISTS hookroom_tasks_expiry
    ON hookroom_tasks (status, expires_at);
CREATE INDEX IF NOT EXISTS hookroom_tasks_lease
    ON hookroom_tasks (status, lease_expires_at);
";

const COLUMNS: &str = "id, room, title, description, priority, status, source, source_event, \
     source_url, delivery_id, payload, required_capabilities, created_at, updated_at, expires_at, \
     not_before, claimed_by, lease_expires_at, attempts, input_request, input, result, failure, \
     claim_token";

/// A durable [`TaskStore`] in one SQLite database file.
///
/// Cloning is cheap and shares the connection. Blocking SQLite calls run on
/// tokio's blocking pool, never on the async workers.
#[derive(Clone)]
pub struct SqliteTaskStore {
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
    location: Arc<str>,
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
        Self::init(conn, clock, path.display().to_string())
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
        Self::init(conn, clock, ":memory:".to_owned())
    }

    fn init(conn: Connection, clock: Arc<dyn Clock>, location: String) -> Result<Self, StoreError> {
        // WAL lets readers run beside the single writer; FULL makes a commit
        // durable before insert returns (the gateway acknowledges after it).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            clock,
            location: location.into(),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let now = to_nanos(self.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            f(&mut guard, now)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `f` inside an immediate (write-locking) transaction on a claimed
    /// task, after checking that `token` still holds it.
    async fn with_held<T, F>(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        operation: &'static str,
        allowed: &'static [JobStatus],
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>, &Task, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let id = id.clone();
        let token = token.clone();
        self.with_conn(move |conn, now| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let (task, current) =
                fetch(&tx, &id)?.ok_or(StoreError::NotFound { id: id.clone() })?;
            check_held(
                ClaimView::of(&task, current.as_deref()),
                &token,
                from_nanos(now),
                operation,
                allowed,
            )?;
            let out = f(&tx, &task, now)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
    }
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

fn json_column(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Reads a task row (in `COLUMNS` order) and its claim sequence.
fn task_from_row(row: &Row<'_>) -> rusqlite::Result<(Task, Option<String>)> {
    fn parse_json(s: Option<String>) -> Option<serde_json::Value> {
        s.and_then(|s| serde_json::from_str(&s).ok())
    }
    let status: String = row.get(5)?;
    let status = status.parse::<JobStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let caps: String = row.get(11)?;
    let attempts: i64 = row.get(18)?;
    let priority: i64 = row.get(4)?;
    let task = Task {
        id: TaskId::from(row.get::<_, String>(0)?),
        room: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        priority: u32::try_from(priority).unwrap_or(u32::MAX),
        status,
        source: row.get(6)?,
        source_event: row.get(7)?,
        source_url: row.get(8)?,
        delivery_id: row.get(9)?,
        payload: Payload::from(row.get::<_, Vec<u8>>(10)?),
        required_capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        created_at: from_nanos(row.get(12)?),
        updated_at: from_nanos(row.get(13)?),
        expires_at: row.get::<_, Option<i64>>(14)?.map(from_nanos),
        not_before: row.get::<_, Option<i64>>(15)?.map(from_nanos),
        claimed_by: row.get(16)?,
        lease_expires_at: row.get::<_, Option<i64>>(17)?.map(from_nanos),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        input_request: row.get(19)?,
        input: parse_json(row.get(20)?),
        result: parse_json(row.get(21)?),
        failure: row.get(22)?,
    };
    Ok((task, row.get(23)?))
}

fn fetch(conn: &Connection, id: &TaskId) -> Result<Option<(Task, Option<String>)>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM hookroom_tasks WHERE id = ?1"),
        params![id.as_str()],
        task_from_row,
    )
    .optional()
    .map_err(backend)
}

fn fetch_task(conn: &Connection, id: &TaskId) -> Result<Task, StoreError> {
    fetch(conn, id)?
        .map(|(t, _)| t)
        .ok_or_else(|| StoreError::NotFound { id: id.clone() })
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.with_conn(move |conn, now| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let existing: Option<String> = tx
                .query_row(
                    "SELECT id FROM hookroom_tasks WHERE source = ?1 AND delivery_id = ?2",
                    params![task.source, task.delivery_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if let Some(id) = existing {
                return Ok(Inserted {
                    id: TaskId::from(id),
                    duplicate: true,
                });
            }
            let id = TaskId::random();
            let caps = serde_json::to_string(&task.required_capabilities).map_err(backend)?;
            let expires = task.ttl.map(|ttl| now.saturating_add(duration_nanos(ttl)));
            tx.execute(
                "INSERT INTO hookroom_tasks (id, room, title, description, priority, status, \
                 source, source_event, source_url, delivery_id, payload, required_capabilities, \
                 created_at, updated_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
                params![
                    id.as_str(),
                    task.room,
                    task.title,
                    task.description,
                    i64::from(task.priority),
                    task.source,
                    task.source_event,
                    task.source_url,
                    task.delivery_id,
                    task.payload.as_bytes(),
                    caps,
                    now,
                    expires,
                ],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(Inserted {
                id,
                duplicate: false,
            })
        })
        .await
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, _| Ok(fetch(conn, &id)?.map(|(t, _)| t)))
            .await
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let query = query.clone();
        self.with_conn(move |conn, _| {
            let limit =
                i64::try_from(query.limit.unwrap_or(DEFAULT_LIST_LIMIT)).unwrap_or(i64::MAX);
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM hookroom_tasks \
                     WHERE (?1 IS NULL OR room = ?1) AND (?2 IS NULL OR status = ?2) \
                       AND (?3 IS NULL OR source = ?3) \
                     ORDER BY created_at DESC, seq DESC LIMIT ?4"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        query.room,
                        query.status.map(JobStatus::as_str),
                        query.source,
                        limit
                    ],
                    task_from_row,
                )
                .map_err(backend)?;
            rows.map(|r| r.map(|(t, _)| t).map_err(backend)).collect()
        })
        .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let request = request.clone();
        self.with_conn(move |conn, now| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let chosen = {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM hookroom_tasks \
                         WHERE room = ?1 AND ( \
                           (status = 'PENDING' AND (not_before IS NULL OR not_before <= ?2) \
                              AND (expires_at IS NULL OR expires_at > ?2)) \
                           OR (status IN ('RUNNING', 'NEEDS_INPUT') AND lease_expires_at <= ?2)) \
                         ORDER BY priority ASC, created_at ASC, seq ASC"
                    ))
                    .map_err(backend)?;
                let mut rows = stmt
                    .query_map(params![request.room, now], task_from_row)
                    .map_err(backend)?;
                let mut chosen = None;
                for row in rows.by_ref() {
                    let (task, _) = row.map_err(backend)?;
                    if has_capabilities(&task, &request.capabilities) {
                        chosen = Some(task.id);
                        break;
                    }
                }
                chosen
            };
            let Some(id) = chosen else {
                return Ok(None);
            };
            let token = ClaimToken::new(uuid::Uuid::new_v4().to_string());
            let lease = now.saturating_add(duration_nanos(request.lease));
            tx.execute(
                "UPDATE hookroom_tasks SET status = 'RUNNING', claimed_by = ?2, \
                 lease_expires_at = ?3, attempts = attempts + 1, claim_token = ?4, \
                 not_before = NULL, expires_at = NULL, input_request = NULL, input = NULL, \
                 updated_at = ?5 \
                 WHERE id = ?1",
                params![id.as_str(), request.agent, lease, token.as_str(), now],
            )
            .map_err(backend)?;
            let task = fetch_task(&tx, &id)?;
            tx.commit().map_err(backend)?;
            Ok(Some(Claimed { task, token }))
        })
        .await
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        self.with_held(
            id,
            token,
            "heartbeat",
            &[JobStatus::Running, JobStatus::NeedsInput],
            move |tx, task, now| {
                tx.execute(
                    "UPDATE hookroom_tasks SET lease_expires_at = ?2, updated_at = ?3 WHERE id = ?1",
                    params![
                        task.id.as_str(),
                        now.saturating_add(duration_nanos(lease)),
                        now
                    ],
                )
                .map_err(backend)?;
                fetch_task(tx, &task.id)
            },
        )
        .await
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        self.with_held(
            id,
            token,
            "complete",
            &[JobStatus::Running],
            move |tx, task, now| {
                tx.execute(
                    "UPDATE hookroom_tasks SET status = 'DONE', result = ?2, \
                     lease_expires_at = NULL, updated_at = ?3 WHERE id = ?1",
                    params![task.id.as_str(), json_column(result.as_ref()), now],
                )
                .map_err(backend)?;
                fetch_task(tx, &task.id)
            },
        )
        .await
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let reason = reason.to_owned();
        self.with_held(
            id,
            token,
            "fail",
            &[JobStatus::Running, JobStatus::NeedsInput],
            move |tx, task, now| {
                match action {
                    FailAction::Retry { after } => tx.execute(
                        "UPDATE hookroom_tasks SET status = 'PENDING', failure = ?2, \
                         claimed_by = NULL, lease_expires_at = NULL, not_before = ?3, \
                         input_request = NULL, input = NULL, updated_at = ?4 WHERE id = ?1",
                        params![
                            task.id.as_str(),
                            reason,
                            now.saturating_add(duration_nanos(after)),
                            now
                        ],
                    ),
                    FailAction::Fail => tx.execute(
                        "UPDATE hookroom_tasks SET status = 'FAILED', failure = ?2, \
                         lease_expires_at = NULL, updated_at = ?3 WHERE id = ?1",
                        params![task.id.as_str(), reason, now],
                    ),
                }
                .map_err(backend)?;
                fetch_task(tx, &task.id)
            },
        )
        .await
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        self.with_held(
            id,
            token,
            "release",
            &[JobStatus::Running, JobStatus::NeedsInput],
            move |tx, task, now| {
                tx.execute(
                    "UPDATE hookroom_tasks SET status = 'PENDING', claimed_by = NULL, \
                     lease_expires_at = NULL, attempts = MAX(attempts - 1, 0), \
                     input_request = NULL, input = NULL, updated_at = ?2 WHERE id = ?1",
                    params![task.id.as_str(), now],
                )
                .map_err(backend)?;
                fetch_task(tx, &task.id)
            },
        )
        .await
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let prompt = prompt.to_owned();
        self.with_held(
            id,
            token,
            "request_input",
            &[JobStatus::Running],
            move |tx, task, now| {
                tx.execute(
                    "UPDATE hookroom_tasks SET status = 'NEEDS_INPUT', input_request = ?2, \
                     input = NULL, updated_at = ?3 WHERE id = ?1",
                    params![task.id.as_str(), prompt, now],
                )
                .map_err(backend)?;
                fetch_task(tx, &task.id)
            },
        )
        .await
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let id = id.clone();
        self.with_conn(move |conn, now| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let task = fetch_task(&tx, &id)?;
            if task.status != JobStatus::NeedsInput {
                return Err(StoreError::InvalidTransition {
                    id,
                    from: task.status,
                    operation: "provide_input",
                });
            }
            tx.execute(
                "UPDATE hookroom_tasks SET input = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.as_str(), input.to_string(), now],
            )
            .map_err(backend)?;
            let task = fetch_task(&tx, &id)?;
            tx.commit().map_err(backend)?;
            Ok(task)
        })
        .await
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.with_held(
            id,
            token,
            "take_input",
            &[JobStatus::NeedsInput],
            move |tx, task, now| {
                let Some(input) = task.input.clone() else {
                    return Ok(None);
                };
                tx.execute(
                    "UPDATE hookroom_tasks SET status = 'RUNNING', input = NULL, \
                     input_request = NULL, updated_at = ?2 WHERE id = ?1",
                    params![task.id.as_str(), now],
                )
                .map_err(backend)?;
                Ok(Some(input))
            },
        )
        .await
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        self.with_conn(move |conn, now| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT id FROM hookroom_tasks WHERE status = 'PENDING' \
                         AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY seq",
                    )
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![now], |r| r.get(0))
                    .map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            let mut expired = Vec::with_capacity(ids.len());
            for id in ids {
                let id = TaskId::from(id);
                tx.execute(
                    "UPDATE hookroom_tasks SET status = 'FAILED', failure = 'expired', \
                     updated_at = ?2 WHERE id = ?1",
                    params![id.as_str(), now],
                )
                .map_err(backend)?;
                expired.push(fetch_task(&tx, &id)?);
            }
            tx.commit().map_err(backend)?;
            Ok(expired)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn new_task(delivery: &str, priority: u32) -> NewTask {
        NewTask {
            room: "room".into(),
            title: format!("task {delivery}"),
            description: String::new(),
            priority,
            source: "github".into(),
            source_event: "push".into(),
            source_url: None,
            delivery_id: delivery.into(),
            payload: Payload::from(format!("{{\"d\":\"{delivery}\"}}").into_bytes()),
            required_capabilities: vec![],
            ttl: None,
        }
    }

    fn claim_req(agent: &str) -> ClaimRequest {
        ClaimRequest {
            room: "room".into(),
            agent: agent.into(),
            capabilities: vec![],
            lease: Duration::from_secs(30),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let store =
            SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
        crate::conformance::task_store::run_all(Arc::new(store), &clock).await;
    }

    #[tokio::test]
    async fn survives_reopen_of_the_same_file() {
        let path = std::env::temp_dir().join(format!("hookroom-{}.db", uuid::Uuid::new_v4()));
        let id = {
            let store = SqliteTaskStore::open(&path).expect("open");
            store.insert(new_task("d1", 1)).await.expect("insert").id
        };
        let reopened = SqliteTaskStore::open(&path).expect("reopen");
        let task = reopened.get(&id).await.expect("get").expect("task kept");
        assert_eq!(task.delivery_id, "d1");
        assert_eq!(task.payload.as_bytes(), br#"{"d":"d1"}"#);
        let dup = reopened.insert(new_task("d1", 1)).await.expect("insert");
        assert_eq!(
            dup,
            Inserted {
                id,
                duplicate: true
            }
        );
        drop(reopened);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn stale_token_is_fenced_out_after_reclaim() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let store =
            SqliteTaskStore::open_in_memory_with_clock(Arc::new(clock.clone())).expect("open");
        store.insert(new_task("a", 2)).await.expect("insert");
        let first = store
            .claim(&claim_req("w1"))
            .await
            .expect("claim")
            .expect("some");
        clock.advance(Duration::from_secs(31));
        let second = store
            .claim(&claim_req("w2"))
            .await
            .expect("claim")
            .expect("reclaimed");
        assert_eq!(first.task.id, second.task.id);
        assert_eq!(second.task.attempts, 2);
        let err = store
            .complete(&first.task.id, &first.token, None)
            .await
            .expect_err("old token refused");
        assert!(matches!(err, StoreError::NotHeld { .. }));
        let done = store
            .complete(
                &second.task.id,
                &second.token,
                Some(serde_json::json!({"ok": true})),
            )
            .await
            .expect("new holder completes");
        assert_eq!(done.status, JobStatus::Done);
    }
}
