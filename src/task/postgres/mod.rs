//! [`PostgresTaskStore`]: a [`TaskStore`] on PostgreSQL, for deployments
//! where several gateways and many agents share one database.
//!
//! A claim selects its task with `FOR UPDATE SKIP LOCKED`: concurrent
//! claimers never wait on each other's rows and never get the same task.
//! Every operation locks its row, applies the [state machine](super::state)
//! and writes the row back in one transaction. Inserts are `INSERT … ON CONFLICT DO NOTHING` on
//! `(source, delivery_id)`, so two gateways receiving the same retry store it
//! once.
//!
//! Times (creation, leases, TTLs, `not_before`) come from the database's
//! clock (`clock_timestamp()`), read once the pool has given a connection
//! and any row lock is held, so gateways on hosts whose clocks disagree
//! still grant every lease on one clock.
//! [`with_clock`](PostgresTaskStoreBuilder::with_clock) substitutes a
//! [`Clock`] (tests move time by hand with one).
//!
//! Every change is announced with `NOTIFY` on a channel named like the
//! table, in the transaction that makes it: `task.created` (a stored insert,
//! not a duplicate), `task.claimed`, `task.needs_input`,
//! `task.input_provided`, `task.released`, `task.done`, `task.failed` and
//! `task.expired`, as [`AnnouncingTaskStore`](super::AnnouncingTaskStore)
//! names them. A store built
//! [`with_events`](PostgresTaskStoreBuilder::with_events) keeps one
//! connection listening and publishes what every store on the database
//! announced to a [`TaskEvents`] hub, so the Task API's event stream,
//! long-poll claims and [`watch`](TaskStore::watch) on every gateway see
//! the changes made through the others. Do not also wrap that store in an
//! `AnnouncingTaskStore` on the same hub: each change would be announced
//! twice.
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
use deadpool_postgres::Pool;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio_postgres::Row;

use super::sql::{BestCandidate, COLUMN_COUNT, TaskRow, from_nanos, to_nanos};
use super::state::StoredTask;
use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task,
    TaskEventKind, TaskEvents, TaskId, TaskQuery, TaskStore,
};
use crate::clock::Clock;
use crate::lifecycle::JobStatus;

mod builder;
mod listen;
mod statements;
pub(crate) mod tls;

pub use self::builder::PostgresTaskStoreBuilder;

use self::statements::Statements;

const STORE: &str = "postgres";
const DEFAULT_TABLE: &str = "hookroom_tasks";
const DEFAULT_LIST_LIMIT: usize = 100;
const DEFAULT_POOL_SIZE: usize = 16;

/// The TLS connector of every connection.
type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// A [`TaskStore`] on a PostgreSQL database, shared safely by many processes.
///
/// Cloning is cheap and shares the connection pool (and the listener, when
/// built [`with_events`](PostgresTaskStoreBuilder::with_events)). `watch`
/// is supported when built with events; without, agents poll.
#[derive(Clone)]
pub struct PostgresTaskStore {
    pool: Pool,
    time: TimeSource,
    table: Arc<str>,
    sql: Arc<Statements>,
    /// Whether changes are announced with `NOTIFY` (on the table's name).
    notify: bool,
    events: Option<Arc<TaskEvents>>,
    /// Stops listening when the last clone is dropped.
    _listener: Option<Arc<listen::Listener>>,
}

/// Where a store reads the time.
#[derive(Clone, Debug)]
enum TimeSource {
    /// The database server's `clock_timestamp()`.
    Database,
    /// A clock of the caller's.
    Clock(Arc<dyn Clock>),
}

/// Announces a change: `pg_notify(channel, payload)`.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// The database's time, in nanoseconds since the Unix epoch.
const DATABASE_NOW: &str = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000)::BIGINT";

impl std::fmt::Debug for PostgresTaskStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: show only the table.
        f.debug_struct("PostgresTaskStore")
            .field("table", &self.table)
            .field("time", &self.time)
            .field("notify", &self.notify)
            .field("listening", &self._listener.is_some())
            .finish_non_exhaustive()
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Backend {
        store: STORE,
        source: Box::new(e),
    }
}

/// A failure to connect, saying why in its own message: the pool's and the
/// driver's messages alone end at "error performing TLS handshake", while
/// the reason (e.g. an unknown certificate issuer) is in their sources.
#[derive(Debug)]
struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

fn connect_error(error: &(dyn std::error::Error + 'static)) -> StoreError {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    backend(ConnectError(text))
}

/// Reads a row selected as [`COLUMNS`].
fn read_row(row: &Row) -> Result<StoredTask, StoreError> {
    let columns = || -> Result<TaskRow, tokio_postgres::Error> {
        Ok(TaskRow {
            id: row.try_get(0)?,
            room: row.try_get(1)?,
            title: row.try_get(2)?,
            description: row.try_get(3)?,
            priority: row.try_get(4)?,
            status: row.try_get(5)?,
            source: row.try_get(6)?,
            source_event: row.try_get(7)?,
            source_url: row.try_get(8)?,
            delivery_id: row.try_get(9)?,
            payload: row.try_get(10)?,
            required_capabilities: row.try_get(11)?,
            created_at: row.try_get(12)?,
            updated_at: row.try_get(13)?,
            expires_at: row.try_get(14)?,
            not_before: row.try_get(15)?,
            claimed_by: row.try_get(16)?,
            lease_expires_at: row.try_get(17)?,
            attempts: row.try_get(18)?,
            claim_token: row.try_get(19)?,
            input_request: row.try_get(20)?,
            input: row.try_get(21)?,
            result: row.try_get(22)?,
            failure: row.try_get(23)?,
        })
    };
    columns().map_err(backend)?.into_stored(STORE)
}

impl PostgresTaskStore {
    /// Connects with default settings (table `hookroom_tasks`, the
    /// database's clock).
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
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(_) => connect_error(&e),
            other => backend(other),
        })
    }

    /// The time now: the database's, asked on `client` (so after waiting
    /// for the pool and any lock it holds), or the configured clock's.
    async fn now(
        &self,
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<OffsetDateTime, StoreError> {
        match &self.time {
            TimeSource::Clock(clock) => Ok(clock.now()),
            TimeSource::Database => {
                // Prepared once per connection: one round trip a reading.
                let statement = client.prepare_cached(DATABASE_NOW).await.map_err(backend)?;
                let row = client.query_one(&statement, &[]).await.map_err(backend)?;
                Ok(from_nanos(row.try_get(0).map_err(backend)?))
            }
        }
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

    /// Deletes at most `limit` finished tasks (`DONE` or `FAILED`) last
    /// changed before `finished_before`, oldest first, in one transaction;
    /// returns how many. Fewer than `limit` means none is left (apart from
    /// rows another transaction held, which the next call finds). Call it
    /// in a loop to purge everything: each call is a short transaction, so
    /// claims and inserts go on meanwhile. PostgreSQL's autovacuum reuses
    /// the space.
    ///
    /// A redelivery of a purged task's webhook is a new task: purge only
    /// what its sender no longer retries.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the pool or the server fails.
    pub async fn purge_finished(
        &self,
        finished_before: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let deleted = client
            .execute(
                &self.sql.purge_finished,
                &[&to_nanos(finished_before), &limit],
            )
            .await
            .map_err(backend)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    /// Writes back the columns a state machine operation can change.
    async fn write(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        stored: &StoredTask,
    ) -> Result<(), StoreError> {
        let row = TaskRow::of(stored);
        let c = row.changes();
        tx.execute(
            &self.sql.update,
            &[
                &c.status,
                &c.updated_at,
                &c.expires_at,
                &c.not_before,
                &c.claimed_by,
                &c.lease_expires_at,
                &c.attempts,
                &c.claim_token,
                &c.input_request,
                &c.input,
                &c.result,
                &c.failure,
                &c.id,
            ],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Locks the task's row, applies a state machine operation, writes the
    /// row back and returns the operation's output with the task as it left
    /// it. The time is read once the row lock is held, so waiting for it
    /// never shortens a lease granted here.
    /// Announces `kind` for `task` in `tx` (when announcing).
    async fn announce(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        kind: TaskEventKind,
        task: &Task,
    ) -> Result<(), StoreError> {
        if !self.notify {
            return Ok(());
        }
        let statement = tx.prepare_cached(NOTIFY).await.map_err(backend)?;
        tx.execute(&statement, &[&&*self.table, &listen::payload(kind, task)])
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Writes `stored` back and announces `kind` (if any), pipelined.
    async fn write_and_announce(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        stored: &StoredTask,
        kind: Option<TaskEventKind>,
    ) -> Result<(), StoreError> {
        match kind {
            Some(kind) => {
                tokio::try_join!(
                    self.write(tx, stored),
                    self.announce(tx, kind, &stored.task)
                )?;
                Ok(())
            }
            None => self.write(tx, stored).await,
        }
    }

    async fn update<T>(
        &self,
        id: &TaskId,
        kind: Option<TaskEventKind>,
        op: impl FnOnce(&mut StoredTask, OffsetDateTime) -> Result<T, StoreError> + Send,
    ) -> Result<(T, Task), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let row = tx
            .query_opt(&self.sql.lock, &[&id.as_str()])
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let mut stored = read_row(&row)?;
        let now = self.now(&tx).await?;
        let out = op(&mut stored, now)?;
        self.write_and_announce(&tx, &stored, kind).await?;
        tx.commit().await.map_err(backend)?;
        Ok((out, stored.task))
    }
}

#[async_trait]
impl TaskStore for PostgresTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        let client = self.client().await?;
        let now = self.now(&client).await?;
        let stored = StoredTask::new(TaskId::time_ordered(), task, now);
        let r = TaskRow::of(&stored);
        let payload;
        let channel: &str = &self.table;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &r.id,
            &r.room,
            &r.title,
            &r.description,
            &r.priority,
            &r.status,
            &r.source,
            &r.source_event,
            &r.source_url,
            &r.delivery_id,
            &r.payload,
            &r.required_capabilities,
            &r.created_at,
            &r.updated_at,
            &r.expires_at,
            &r.not_before,
            &r.claimed_by,
            &r.lease_expires_at,
            &r.attempts,
            &r.claim_token,
            &r.input_request,
            &r.input,
            &r.result,
            &r.failure,
        ];
        let statement = if self.notify {
            // The announcement goes in the insert's own statement (and so
            // its transaction), only when a row was stored.
            payload = listen::payload(TaskEventKind::Created, &stored.task);
            params.push(&channel);
            params.push(&payload);
            &self.sql.insert_notify
        } else {
            &self.sql.insert
        };
        let inserted = client
            .query_opt(statement, &params)
            .await
            .map_err(backend)?;
        if inserted.is_some() {
            return Ok(Inserted {
                id: stored.task.id,
                duplicate: false,
            });
        }
        let row = client
            .query_one(&self.sql.select_delivery, &[&r.source, &r.delivery_id])
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
        row.map(|r| read_row(&r).map(|stored| stored.task))
            .transpose()
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(query.limit.unwrap_or(DEFAULT_LIST_LIMIT)).unwrap_or(i64::MAX);
        let status = query.status.map(JobStatus::as_str);
        // The cursor's place in list order, or NotFound.
        let cursor: Option<(i64, i64)> = match &query.before {
            None => None,
            Some(id) => {
                let row = client
                    .query_opt(&self.sql.cursor, &[&id.as_str()])
                    .await
                    .map_err(backend)?
                    .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
                Some((
                    row.try_get(0).map_err(backend)?,
                    row.try_get(1).map_err(backend)?,
                ))
            }
        };
        let (created, seq) = (cursor.map(|c| c.0), cursor.map(|c| c.1));
        let rows = client
            .query(
                &self.sql.list,
                &[&query.room, &status, &query.source, &limit, &created, &seq],
            )
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| read_row(r).map(|stored| stored.task))
            .collect()
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        // SKIP LOCKED never waits, so the time read before the query is the
        // claim's time.
        let now = self.now(&tx).await?;
        // The better of the best pending task and the best task whose lease
        // ran out (the other stays locked only until this commit).
        let mut best = BestCandidate::default();
        for sql in [&self.sql.claim_pending, &self.sql.claim_lapsed] {
            let row = tx
                .query_opt(sql, &[&request.room, &to_nanos(now), &request.capabilities])
                .await
                .map_err(backend)?;
            if let Some(row) = row {
                best.offer(read_row(&row)?, row.try_get(COLUMN_COUNT).map_err(backend)?);
            }
        }
        let Some(mut stored) = best.into_best() else {
            return Ok(None);
        };
        let token = stored.claim(&request.agent, &request.capabilities, request.lease, now)?;
        self.write_and_announce(&tx, &stored, Some(TaskEventKind::Claimed))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(Claimed {
            task: stored.task,
            token,
        }))
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let (token, task) = self
            .update(id, Some(TaskEventKind::Claimed), |stored, now| {
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
        let ((), task) = self
            .update(id, None, |stored, now| stored.heartbeat(token, lease, now))
            .await?;
        Ok(task)
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let ((), task) = self
            .update(id, Some(TaskEventKind::Done), |stored, now| {
                stored.complete(token, result, now)
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
        let ((), task) = self
            .update(id, Some(TaskEventKind::Failed), |stored, now| {
                stored.fail(token, reason, action, now)
            })
            .await?;
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        let ((), task) = self
            .update(id, Some(TaskEventKind::Released), |stored, now| {
                stored.release(token, now)
            })
            .await?;
        Ok(task)
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        let ((), task) = self
            .update(id, Some(TaskEventKind::NeedsInput), |stored, now| {
                stored.request_input(token, prompt, now)
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
            .update(id, Some(TaskEventKind::InputProvided), |stored, now| {
                stored.provide_input(input, now)
            })
            .await?;
        Ok(task)
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (input, _) = self
            .update(id, None, |stored, now| stored.take_input(token, now))
            .await?;
        Ok(input)
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(backend)?;
        let now = self.now(&tx).await?;
        let rows = tx
            .query(&self.sql.expire_candidates, &[&to_nanos(now)])
            .await
            .map_err(backend)?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut stored = read_row(row)?;
            if stored.expire(now) {
                self.write_and_announce(&tx, &stored, Some(TaskEventKind::Expired))
                    .await?;
                expired.push(stored.task);
            }
        }
        tx.commit().await.map_err(backend)?;
        Ok(expired)
    }

    /// With [`with_events`](PostgresTaskStoreBuilder::with_events): every
    /// task any store on the database announced in `PENDING` in `room`, and
    /// an empty id after the listener reconnected. `None` without events.
    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        self.events.as_ref().map(|events| events.watch(room))
    }
}
