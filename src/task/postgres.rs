//! [`PostgresTaskStore`]: a [`TaskStore`] on PostgreSQL, for deployments
//! where several gateways and many agents share one database.
//!
//! Claims are one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)` statement:
//! concurrent claimers never wait on each other's rows and never get the same
//! task. Inserts are `INSERT … ON CONFLICT DO NOTHING` on
//! `(source, delivery_id)`, so two gateways receiving the same retry store it
//! once. Times come from the store's [`Clock`] (not the database's `now()`),
//! so every backend obeys the same clock in tests.
//!
//! ```no_run
//! # async fn run() -> Result<(), hookroom::task::StoreError> {
//! use hookroom::task::PostgresTaskStore;
//!
//! let store = PostgresTaskStore::connect("postgres://hookroom@127.0.0.1:5432/hookroom").await?;
//! # let _ = store; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, Row};

use super::fence::{ClaimView, check_held};
use super::sql_time::{duration_nanos, from_nanos, to_nanos};
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, Payload, StoreError, Task,
    TaskId, TaskQuery, TaskStore,
};
use crate::clock::{Clock, SystemClock};
use crate::lifecycle::JobStatus;

const STORE: &str = "postgres";
const DEFAULT_TABLE: &str = "hookroom_tasks";
const DEFAULT_LIST_LIMIT: usize = 100;
const DEFAULT_POOL_SIZE: usize = 16;

const COLUMNS: &str = "id, room, title, description, priority, status, source, source_event, \
     source_url, delivery_id, payload, required_capabilities, created_at, updated_at, expires_at, \
     not_before, claimed_by, lease_expires_at, attempts, input_request, input, result, failure, \
     claim_token";

/// A [`TaskStore`] on a PostgreSQL database, shared safely by many processes.
///
/// Cloning is cheap and shares the connection pool. `watch` is not
/// supported (agents poll).
#[derive(Clone)]
pub struct PostgresTaskStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
    table: Arc<str>,
    sql: Arc<Statements>,
}

impl std::fmt::Debug for PostgresTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: show only the table.
        f.debug_struct("PostgresTaskStore")
            .field("table", &self.table)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Builds a [`PostgresTaskStore`].
#[derive(Clone)]
pub struct PostgresTaskStoreBuilder {
    url: String,
    table: String,
    pool_size: usize,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresTaskStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTaskStoreBuilder")
            .field("url", &"[redacted]")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresTaskStoreBuilder {
    /// Starts from a connection string (`postgres://user:pass@host:port/db`
    /// or `host=… user=…`).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            clock: Arc::new(SystemClock),
        }
    }

    /// Table to keep tasks in (default `hookroom_tasks`): lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Maximum pooled connections (default 16).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Clock for every timestamp the store writes and compares.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Connects and creates the table and indexes if they do not exist.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a bad connection string, a bad table name,
    /// an unreachable server or a failed migration.
    pub async fn build(self) -> Result<PostgresTaskStore, StoreError> {
        if !valid_identifier(&self.table) {
            return Err(backend(InvalidTableName));
        }
        let config: tokio_postgres::Config = self.url.parse().map_err(backend)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .build()
            .map_err(backend)?;
        let store = PostgresTaskStore {
            pool,
            clock: self.clock,
            sql: Arc::new(Statements::new(&self.table)),
            table: self.table.into(),
        };
        store.migrate().await?;
        Ok(store)
    }
}

/// The table name given to the builder is not a plain SQL identifier.
#[derive(Debug)]
struct InvalidTableName;

impl std::fmt::Display for InvalidTableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("table name must be lowercase ASCII letters, digits and '_'")
    }
}

impl std::error::Error for InvalidTableName {}

fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

/// SQL text with the table name filled in once.
struct Statements {
    schema: String,
    insert: String,
    select_delivery: String,
    get: String,
    list: String,
    claim: String,
    expire: String,
}

impl Statements {
    fn new(t: &str) -> Self {
        Self {
            schema: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    seq                   BIGSERIAL PRIMARY KEY,
                    id                    TEXT NOT NULL UNIQUE,
                    room                  TEXT NOT NULL,
                    title                 TEXT NOT NULL,
                    description           TEXT NOT NULL,
                    priority              BIGINT NOT NULL,
                    status                TEXT NOT NULL,
                    source                TEXT NOT NULL,
                    source_event          TEXT NOT NULL,
                    source_url            TEXT,
                    delivery_id           TEXT NOT NULL,
                    payload               BYTEA NOT NULL,
                    required_capabilities TEXT[] NOT NULL,
                    created_at            BIGINT NOT NULL,
                    updated_at            BIGINT NOT NULL,
                    expires_at            BIGINT,
                    not_before            BIGINT,
                    claimed_by            TEXT,
                    lease_expires_at      BIGINT,
                    attempts              BIGINT NOT NULL DEFAULT 0,
                    claim_token           TEXT,
                    input_request         TEXT,
                    input                 TEXT,
                    result                TEXT,
                    failure               TEXT,
                    UNIQUE (source, delivery_id)
                );
                CREATE INDEX IF NOT EXISTS {t}_claim ON {t} (room, status, priority, created_at, seq);
                CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (status, expires_at);
                CREATE INDEX IF NOT EXISTS {t}_lease ON {t} (status, lease_expires_at);
                CREATE INDEX IF NOT EXISTS {t}_created ON {t} (created_at DESC, seq DESC);"
            ),
            insert: format!(
                "INSERT INTO {t} (id, room, title, description, priority, status, source, \
                 source_event, source_url, delivery_id, payload, required_capabilities, \
                 created_at, updated_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8, $9, $10, $11, $12, $12, $13) \
                 ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id"
            ),
            select_delivery: format!(
                "SELECT id FROM {t} WHERE source = $1 AND delivery_id = $2"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE id = $1"),
            list: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE ($1::TEXT IS NULL OR room = $1) AND ($2::TEXT IS NULL OR status = $2) \
                   AND ($3::TEXT IS NULL OR source = $3) \
                 ORDER BY created_at DESC, seq DESC LIMIT $4"
            ),
            claim: format!(
                "UPDATE {t} AS t SET status = 'RUNNING', claimed_by = $3, lease_expires_at = $4, \
                   attempts = t.attempts + 1, claim_token = $6, not_before = NULL, expires_at = NULL, \
                   input_request = NULL, input = NULL, updated_at = $2 \
                 FROM (SELECT seq FROM {t} \
                       WHERE room = $1 \
                         AND ((status = 'PENDING' AND (not_before IS NULL OR not_before <= $2) \
                               AND (expires_at IS NULL OR expires_at > $2)) \
                           OR (status IN ('RUNNING', 'NEEDS_INPUT') AND lease_expires_at <= $2)) \
                         AND required_capabilities <@ $5::TEXT[] \
                       ORDER BY priority ASC, created_at ASC, seq ASC \
                       LIMIT 1 FOR UPDATE SKIP LOCKED) AS next \
                 WHERE t.seq = next.seq \
                 RETURNING {}",
                prefixed_columns("t")
            ),
            expire: format!(
                "UPDATE {t} SET status = 'FAILED', failure = 'expired', updated_at = $1 \
                 WHERE status = 'PENDING' AND expires_at IS NOT NULL AND expires_at <= $1 \
                 RETURNING {COLUMNS}"
            ),
        }
    }
}

fn prefixed_columns(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(e),
    }
}

fn task_from_row(row: &Row) -> Result<(Task, Option<String>), StoreError> {
    fn json(s: Option<String>) -> Option<serde_json::Value> {
        s.and_then(|s| serde_json::from_str(&s).ok())
    }
    let status: String = row.try_get("status").map_err(backend)?;
    let task = Task {
        id: TaskId::from(row.try_get::<_, String>("id").map_err(backend)?),
        room: row.try_get("room").map_err(backend)?,
        title: row.try_get("title").map_err(backend)?,
        description: row.try_get("description").map_err(backend)?,
        priority: u32::try_from(row.try_get::<_, i64>("priority").map_err(backend)?)
            .unwrap_or(u32::MAX),
        status: status.parse().map_err(backend)?,
        source: row.try_get("source").map_err(backend)?,
        source_event: row.try_get("source_event").map_err(backend)?,
        source_url: row.try_get("source_url").map_err(backend)?,
        delivery_id: row.try_get("delivery_id").map_err(backend)?,
        payload: Payload::from(row.try_get::<_, Vec<u8>>("payload").map_err(backend)?),
        required_capabilities: row.try_get("required_capabilities").map_err(backend)?,
        created_at: from_nanos(row.try_get("created_at").map_err(backend)?),
        updated_at: from_nanos(row.try_get("updated_at").map_err(backend)?),
        expires_at: row
            .try_get::<_, Option<i64>>("expires_at")
            .map_err(backend)?
            .map(from_nanos),
        not_before: row
            .try_get::<_, Option<i64>>("not_before")
            .map_err(backend)?
            .map(from_nanos),
        claimed_by: row.try_get("claimed_by").map_err(backend)?,
        lease_expires_at: row
            .try_get::<_, Option<i64>>("lease_expires_at")
            .map_err(backend)?
            .map(from_nanos),
        attempts: u32::try_from(row.try_get::<_, i64>("attempts").map_err(backend)?)
            .unwrap_or(u32::MAX),
        input_request: row.try_get("input_request").map_err(backend)?,
        input: json(row.try_get("input").map_err(backend)?),
        result: json(row.try_get("result").map_err(backend)?),
        failure: row.try_get("failure").map_err(backend)?,
    };
    Ok((task, row.try_get("claim_token").map_err(backend)?))
}

/// What a held-task operation writes, once the claim is checked.
enum HeldUpdate {
    Heartbeat { lease_until: i64 },
    Complete { result: Option<String> },
    Retry { reason: String, not_before: i64 },
    Fail { reason: String },
    Release,
    RequestInput { prompt: String },
    TakeInput,
}

impl PostgresTaskStore {
    /// Connects with default settings (table `hookroom_tasks`, system clock).
    ///
    /// # Errors
    /// As [`PostgresTaskStoreBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PostgresTaskStoreBuilder::new(url).build().await
    }

    /// A builder for the other settings.
    pub fn builder(url: impl Into<String>) -> PostgresTaskStoreBuilder {
        PostgresTaskStoreBuilder::new(url)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(backend)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // Two gateways starting at once would race on CREATE TABLE IF NOT
        // EXISTS; a transaction-scoped advisory lock serialises them.
        tx.execute("SELECT pg_advisory_xact_lock(7401207)", &[])
            .await
            .map_err(backend)?;
        tx.batch_execute(&self.sql.schema).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    fn now(&self) -> i64 {
        to_nanos(self.clock.now())
    }

    /// Applies `update` to a held task in one transaction: lock the row,
    /// check the claim with the shared fencing rules, write, return the row.
    async fn update_held(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        operation: &'static str,
        allowed: &'static [JobStatus],
        update: HeldUpdate,
    ) -> Result<(Task, Option<serde_json::Value>), StoreError> {
        let now = self.now();
        let t = &*self.table;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let row = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM {t} WHERE id = $1 FOR UPDATE"),
                &[&id.as_str()],
            )
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let (task, current) = task_from_row(&row)?;
        check_held(
            ClaimView::of(&task, current.as_deref()),
            token,
            from_nanos(now),
            operation,
            allowed,
        )?;
        let id_str = id.as_str().to_owned();
        let mut taken = None;
        type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;
        let (sql, params): (String, Vec<Param>) = match update {
            HeldUpdate::Heartbeat { lease_until } => (
                format!("UPDATE {t} SET lease_expires_at = $2, updated_at = $3 WHERE id = $1"),
                vec![Box::new(id_str), Box::new(lease_until), Box::new(now)],
            ),
            HeldUpdate::Complete { result } => (
                format!(
                    "UPDATE {t} SET status = 'DONE', result = $2, lease_expires_at = NULL, \
                     updated_at = $3 WHERE id = $1"
                ),
                vec![Box::new(id_str), Box::new(result), Box::new(now)],
            ),
            HeldUpdate::Retry { reason, not_before } => (
                format!(
                    "UPDATE {t} SET status = 'PENDING', failure = $2, claimed_by = NULL, \
                     lease_expires_at = NULL, not_before = $3, input_request = NULL, \
                     input = NULL, updated_at = $4 WHERE id = $1"
                ),
                vec![
                    Box::new(id_str),
                    Box::new(reason),
                    Box::new(not_before),
                    Box::new(now),
                ],
            ),
            HeldUpdate::Fail { reason } => (
                format!(
                    "UPDATE {t} SET status = 'FAILED', failure = $2, lease_expires_at = NULL, \
                     updated_at = $3 WHERE id = $1"
                ),
                vec![Box::new(id_str), Box::new(reason), Box::new(now)],
            ),
            HeldUpdate::Release => (
                format!(
                    "UPDATE {t} SET status = 'PENDING', claimed_by = NULL, lease_expires_at = NULL, \
                     attempts = GREATEST(attempts - 1, 0), input_request = NULL, input = NULL, \
                     updated_at = $2 WHERE id = $1"
                ),
                vec![Box::new(id_str), Box::new(now)],
            ),
            HeldUpdate::RequestInput { prompt } => (
                format!(
                    "UPDATE {t} SET status = 'NEEDS_INPUT', input_request = $2, input = NULL, \
                     updated_at = $3 WHERE id = $1"
                ),
                vec![Box::new(id_str), Box::new(prompt), Box::new(now)],
            ),
            HeldUpdate::TakeInput => {
                let Some(input) = task.input.clone() else {
                    tx.commit().await.map_err(backend)?;
                    return Ok((task, None));
                };
                taken = Some(input);
                (
                    format!(
                        "UPDATE {t} SET status = 'RUNNING', input = NULL, input_request = NULL, \
                         updated_at = $2 WHERE id = $1"
                    ),
                    vec![Box::new(id_str), Box::new(now)],
                )
            }
        };
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        tx.execute(&sql, &refs).await.map_err(backend)?;
        self.finish(tx, id, taken).await
    }

    async fn finish(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        id: &TaskId,
        taken: Option<serde_json::Value>,
    ) -> Result<(Task, Option<serde_json::Value>), StoreError> {
        let row = tx
            .query_one(&self.sql.get, &[&id.as_str()])
            .await
            .map_err(backend)?;
        let (task, _) = task_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok((task, taken))
    }
}

#[async_trait]
impl TaskStore for PostgresTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        let now = self.now();
        let client = self.client().await?;
        let id = TaskId::random();
        let expires = task.ttl.map(|ttl| now.saturating_add(duration_nanos(ttl)));
        let inserted = client
            .query_opt(
                &self.sql.insert,
                &[
                    &id.as_str(),
                    &task.room,
                    &task.title,
                    &task.description,
                    &i64::from(task.priority),
                    &task.source,
                    &task.source_event,
                    &task.source_url,
                    &task.delivery_id,
                    &task.payload.as_bytes(),
                    &task.required_capabilities,
                    &now,
                    &expires,
                ],
            )
            .await
            .map_err(backend)?;
        if inserted.is_some() {
            return Ok(Inserted {
                id,
                duplicate: false,
            });
        }
        let row = client
            .query_one(
                &self.sql.select_delivery,
                &[&task.source, &task.delivery_id],
            )
            .await
            .map_err(backend)?;
        Ok(Inserted {
            id: TaskId::from(row.try_get::<_, String>(0).map_err(backend)?),
            duplicate: true,
        })
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&self.sql.get, &[&id.as_str()])
            .await
            .map_err(backend)?;
        row.map(|r| task_from_row(&r).map(|(t, _)| t)).transpose()
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(query.limit.unwrap_or(DEFAULT_LIST_LIMIT)).unwrap_or(i64::MAX);
        let status = query.status.map(JobStatus::as_str);
        let rows = client
            .query(
                &self.sql.list,
                &[&query.room, &status, &query.source, &limit],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| task_from_row(r).map(|(t, _)| t))
            .collect()
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let now = self.now();
        let lease = now.saturating_add(duration_nanos(request.lease));
        let token = ClaimToken::new(uuid::Uuid::new_v4().to_string());
        let client = self.client().await?;
        let row = client
            .query_opt(
                &self.sql.claim,
                &[
                    &request.room,
                    &now,
                    &request.agent,
                    &lease,
                    &request.capabilities,
                    &token.as_str(),
                ],
            )
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (task, _) = task_from_row(&row)?;
        Ok(Some(Claimed { task, token }))
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        let lease_until = self.now().saturating_add(duration_nanos(lease));
        self.update_held(
            id,
            token,
            "heartbeat",
            &[JobStatus::Running, JobStatus::NeedsInput],
            HeldUpdate::Heartbeat { lease_until },
        )
        .await
        .map(|(t, _)| t)
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let result = result.map(|v| v.to_string());
        self.update_held(
            id,
            token,
            "complete",
            &[JobStatus::Running],
            HeldUpdate::Complete { result },
        )
        .await
        .map(|(t, _)| t)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let reason = reason.to_owned();
        let update = match action {
            FailAction::Retry { after } => HeldUpdate::Retry {
                reason,
                not_before: self.now().saturating_add(duration_nanos(after)),
            },
            FailAction::Fail => HeldUpdate::Fail { reason },
        };
        self.update_held(
            id,
            token,
            "fail",
            &[JobStatus::Running, JobStatus::NeedsInput],
            update,
        )
        .await
        .map(|(t, _)| t)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        self.update_held(
            id,
            token,
            "release",
            &[JobStatus::Running, JobStatus::NeedsInput],
            HeldUpdate::Release,
        )
        .await
        .map(|(t, _)| t)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        self.update_held(
            id,
            token,
            "request_input",
            &[JobStatus::Running],
            HeldUpdate::RequestInput {
                prompt: prompt.to_owned(),
            },
        )
        .await
        .map(|(t, _)| t)
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        let now = self.now();
        let t = &*self.table;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let row = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM {t} WHERE id = $1 FOR UPDATE"),
                &[&id.as_str()],
            )
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let (task, _) = task_from_row(&row)?;
        if task.status != JobStatus::NeedsInput {
            return Err(StoreError::InvalidTransition {
                id: id.clone(),
                from: task.status,
                operation: "provide_input",
            });
        }
        tx.execute(
            &format!("UPDATE {t} SET input = $2, updated_at = $3 WHERE id = $1"),
            &[&id.as_str(), &input.to_string(), &now],
        )
        .await
        .map_err(backend)?;
        self.finish(tx, id, None).await.map(|(t, _)| t)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.update_held(
            id,
            token,
            "take_input",
            &[JobStatus::NeedsInput],
            HeldUpdate::TakeInput,
        )
        .await
        .map(|(_, input)| input)
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let now = self.now();
        let client = self.client().await?;
        let rows = client
            .query(&self.sql.expire, &[&now])
            .await
            .map_err(backend)?;
        let mut expired = rows
            .iter()
            .map(|r| task_from_row(r).map(|(t, _)| t))
            .collect::<Result<Vec<_>, _>>()?;
        expired.sort_by_key(|t| t.created_at);
        Ok(expired)
    }
}
