//! [`PostgresTaskStore`]: a [`TaskStore`] on PostgreSQL, for deployments
//! where several gateways and many agents share one database.
//!
//! A claim selects its task with `FOR UPDATE SKIP LOCKED`: concurrent
//! claimers never wait on each other's rows and never get the same task.
//! Every operation locks its row, applies the [state machine](crate::task::state)
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
//! Statements are prepared once per connection. A claim is one statement
//! that finds, claims and returns the task, and commits on its own: one
//! round trip. Inserts are gathered into batches: every insert waiting at the time is stored by
//! one statement, which reads the time where it writes the rows, in one
//! transaction shared with the jobs of a
//! [`PostgresJobRegistry`](super::PostgresJobRegistry) built
//! [`beside`](super::PostgresJobRegistry::beside) the store (a duplicate
//! delivery costs one more statement, to find the stored task's id). Every operation on one task (lock, change, write back)
//! costs two round trips and one commit: its statements are sent together
//! and the server runs them in order (pipelining), `BEGIN` with the first
//! ones and `COMMIT` with the write.
//!
//! Every change is announced with `NOTIFY` on a channel named like the
//! table, sent once the transaction that makes it has committed (a
//! `NOTIFY` inside it would hold PostgreSQL's notification lock through the
//! commit's flush to disk, so changes could only commit one at a time; a
//! batch of inserts is announced by one statement):
//! `task.created` (a stored insert, not a duplicate), `task.claimed`, `task.needs_input`,
//! `task.input_provided`, `task.released`, `task.done`, `task.failed` and
//! `task.expired`, as [`AnnouncingTaskStore`](crate::task::AnnouncingTaskStore)
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
//! use hookroom::postgres::PostgresTaskStore;
//!
//! let store = PostgresTaskStore::connect("postgres://hookroom@127.0.0.1:5432/hookroom").await?;
//! # let _ = store; Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::clock::Clock;
use crate::clock::{from_unix_nanos, to_unix_nanos};
use crate::lifecycle::JobStatus;
use crate::status::{Job, JobAnnouncer};
use crate::task::sql::{Changes, TaskRow};
use crate::task::state::StoredTask;
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task,
    TaskEventKind, TaskEvents, TaskId, TaskQuery, TaskStore,
};

mod builder;
mod listen;
mod statements;

pub use self::builder::PostgresTaskStoreBuilder;

pub(in crate::postgres) use self::statements::DATABASE_NANOS;
use self::statements::Statements;
use super::batch::{Batcher, NewTaskRow, TaskOutcome};
use super::pipeline::{Sent, send};
use super::tls;

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
    /// The database's batch writer, which every insert goes through (and
    /// the job creations of a registry beside the store).
    batcher: Batcher,
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

/// A transaction begun with a `BEGIN` sent ahead of its first statements.
/// Dropped before [`commit`](Self::commit) succeeded (an error, or the
/// caller gave up), it sends `ROLLBACK` without waiting, as tokio-postgres'
/// own transactions do: the connection goes back to the pool with the
/// rollback queued before anything its next user sends.
struct Tx<'c> {
    client: &'c tokio_postgres::Client,
    open: bool,
}

impl<'c> Tx<'c> {
    /// Sends `BEGIN`; the returned request is its answer.
    fn begin(
        client: &'c tokio_postgres::Client,
    ) -> (
        Self,
        Sent<impl Future<Output = Result<(), tokio_postgres::Error>> + 'c>,
    ) {
        let begun = send(client.batch_execute("BEGIN"));
        (Self { client, open: true }, begun)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").await.map_err(backend)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // After a COMMIT already sent, a no-op (with a warning).
            drop(send(self.client.batch_execute("ROLLBACK")));
        }
    }
}

/// Where an operation reads its time: the answer of a reading of the
/// database's clock already sent, or the configured clock.
enum ReadNow<'a, F: Future> {
    Database(Sent<F>),
    Clock(&'a dyn Clock),
}

/// The parameters of the shared `UPDATE`, in its order.
fn change_params<'a>(c: &'a Changes<'a>) -> [&'a (dyn ToSql + Sync); 13] {
    [
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
    ]
}

/// `sql` prepared on `client`: once per connection, then from its cache.
async fn prepared(client: &deadpool_postgres::Client, sql: &str) -> Result<Statement, StoreError> {
    client.prepare_cached(sql).await.map_err(backend)
}

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
    /// The pool and the batch writer, for a job registry that keeps its
    /// tables in this store's database
    /// ([`PostgresJobRegistry::beside`](super::PostgresJobRegistry::beside)).
    pub(crate) fn shared_writer(&self) -> (Pool, Batcher) {
        (self.pool.clone(), self.batcher.clone())
    }

    /// Connects with default settings (table `hookroom_tasks`, the
    /// database's clock).
    ///
    /// # Errors
    /// As [`PostgresTaskStoreBuilder::build`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        PostgresTaskStoreBuilder::new(url).build().await
    }

    /// A builder for the other settings, from a connection string (`postgres://user:pass@host:port/db`
    /// or `host=… user=…`). TLS follows libpq's `sslmode` (`disable`,
    /// `prefer`, the default, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert=PATH` (PEM CA certificates; without it `verify-ca` and
    /// `verify-full` trust the Mozilla roots). `require` encrypts without
    /// verifying unless `sslrootcert` is given; `verify-full` also checks
    /// that the certificate names the host.
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
    /// The time parameter of a statement that reads its own time: the
    /// configured clock's, or null for the database's.
    fn statement_time(&self) -> Option<i64> {
        match &self.time {
            TimeSource::Database => None,
            TimeSource::Clock(clock) => Some(to_unix_nanos(clock.now())),
        }
    }

    async fn now(
        &self,
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<OffsetDateTime, StoreError> {
        match &self.time {
            TimeSource::Clock(clock) => Ok(clock.now()),
            TimeSource::Database => {
                // Prepared once per connection: one round trip a reading.
                let statement = client
                    .prepare_cached(&self.sql.now)
                    .await
                    .map_err(backend)?;
                let row = client.query_one(&statement, &[]).await.map_err(backend)?;
                Ok(from_unix_nanos(row.try_get(0).map_err(backend)?))
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
                &[&to_unix_nanos(finished_before), &limit],
            )
            .await
            .map_err(backend)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    /// The prepared `NOTIFY`, when announcing.
    async fn notify_statement(
        &self,
        client: &deadpool_postgres::Client,
    ) -> Result<Option<Statement>, StoreError> {
        if self.notify {
            prepared(client, NOTIFY).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Announces `kind` for `task` on `client`, whose change has committed,
    /// without waiting for the answer: the `NOTIFY` runs on its own, before
    /// anything the connection's next user sends. An announcement is a
    /// wake-up call; a listener that lost its connection marks a gap. One
    /// that a process dying right after its commit never sent is lost:
    /// nothing is lost with it but the wake-up, and a waiting agent finds
    /// the task on its next poll (the agent runtime's `poll_interval`).
    fn announce(
        &self,
        client: &tokio_postgres::Client,
        notify: Option<&Statement>,
        kind: TaskEventKind,
        task: &Task,
    ) {
        if let Some(notify) = notify {
            let payload = listen::payload(kind, task);
            drop(send(client.execute(notify, &[&&*self.table, &payload])));
        }
    }

    /// Locks the task's row, applies a state machine operation, writes the
    /// row back and returns the operation's output with the task as it left
    /// it, in two round trips: `BEGIN`, the lock and the time, then the
    /// `UPDATE` and `COMMIT`. The time is read once the row lock is held
    /// (the server runs the reading after the locking statement), so
    /// waiting for it never shortens a lease granted here. Announces `kind`
    /// (if any) once committed.
    async fn update<T>(
        &self,
        id: &TaskId,
        kind: Option<TaskEventKind>,
        op: impl FnOnce(&mut StoredTask, OffsetDateTime) -> Result<T, StoreError> + Send,
    ) -> Result<(T, Task), StoreError> {
        let client = self.client().await?;
        let lock = prepared(&client, &self.sql.lock).await?;
        let write = prepared(&client, &self.sql.update).await?;
        let database_now = prepared(&client, &self.sql.now).await?;
        let notify = match kind {
            Some(_) => self.notify_statement(&client).await?,
            None => None,
        };
        let pg: &tokio_postgres::Client = &client;
        let id_param = id.as_str();
        let lock_params: [&(dyn ToSql + Sync); 1] = [&id_param];
        let (tx, begun) = Tx::begin(pg);
        let row = send(pg.query_opt(&lock, &lock_params));
        let read_now = match &self.time {
            TimeSource::Clock(clock) => ReadNow::Clock(&**clock),
            TimeSource::Database => ReadNow::Database(send(pg.query_one(&database_now, &[]))),
        };
        begun.await.map_err(backend)?;
        let row = row
            .await
            .map_err(backend)?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let now = match read_now {
            ReadNow::Clock(clock) => clock.now(),
            ReadNow::Database(read) => {
                from_unix_nanos(read.await.map_err(backend)?.try_get(0).map_err(backend)?)
            }
        };
        let mut stored = read_row(&row)?;
        let out = op(&mut stored, now)?;
        let row = TaskRow::of(&stored);
        let changes = row.changes();
        let params = change_params(&changes);
        let written = send(pg.execute(&write, &params));
        let committed = send(tx.commit());
        written.await.map_err(backend)?;
        committed.await?;
        if let Some(kind) = kind {
            self.announce(pg, notify.as_ref(), kind, &stored.task);
        }
        Ok((out, stored.task))
    }
}

/// Announces a job's change as tasks' are: with `NOTIFY`, so every store
/// built [`with_events`](PostgresTaskStoreBuilder::with_events) on the
/// database and table publishes it (this one included); a store that does
/// not announce publishes to its own hub, if it has one.
#[async_trait]
impl JobAnnouncer for PostgresTaskStore {
    async fn announce_job(&self, job: &Job) {
        if !self.notify {
            if let Some(events) = &self.events {
                events.publish_job(job);
            }
            return;
        }
        let payload = listen::job_payload(job);
        let sent = async {
            let client = self.client().await?;
            let notify = prepared(&client, NOTIFY).await?;
            client
                .execute(&notify, &[&&*self.table, &payload])
                .await
                .map_err(backend)
        };
        if let Err(error) = sent.await {
            tracing::warn!(%error, job_id = %job.job_id, "a job change was not announced");
        }
    }
}

#[async_trait]
impl TaskStore for PostgresTaskStore {
    /// Stored in the next batch of the database's writer: one statement
    /// and one commit for every insert waiting at the time, announced by
    /// one `NOTIFY` statement.
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        // Built at time zero: the batch's statement moves its times to the
        // time of the insert (see `statement_time`).
        let stored = StoredTask::new(TaskId::time_ordered(), task, OffsetDateTime::UNIX_EPOCH);
        // Announced only when a row was stored, not for a duplicate.
        let notice = self
            .notify
            .then(|| listen::payload(TaskEventKind::Created, &stored.task));
        let write = NewTaskRow {
            row: TaskRow::of(&stored),
            time: self.statement_time(),
            notice,
        };
        match self.batcher.insert_task(write).await.map_err(backend)? {
            TaskOutcome::Inserted => Ok(Inserted {
                id: stored.task.id,
                duplicate: false,
            }),
            TaskOutcome::Duplicate(id) => Ok(Inserted {
                id: TaskId::from(id),
                duplicate: true,
            }),
        }
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

    /// One round trip: one statement picks the better candidate (the room's
    /// best pending task, its best task whose lease ran out), claims it and
    /// commits.
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let client = self.client().await?;
        let claim = prepared(&client, &self.sql.claim).await?;
        let notify = self.notify_statement(&client).await?;
        // SKIP LOCKED never waits, so the time read in the statement is the
        // claim's.
        let time = self.statement_time();
        let lease = i64::try_from(request.lease.as_nanos()).unwrap_or(i64::MAX);
        let token = ClaimToken::random();
        let params: [&(dyn ToSql + Sync); 6] = [
            &request.room,
            &time,
            &request.capabilities,
            &request.agent,
            &lease,
            &token.as_str(),
        ];
        let Some(row) = client.query_opt(&claim, &params).await.map_err(backend)? else {
            return Ok(None);
        };
        let stored = read_row(&row)?;
        self.announce(
            &client,
            notify.as_ref(),
            TaskEventKind::Claimed,
            &stored.task,
        );
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
        let candidates = prepared(&client, &self.sql.expire_candidates).await?;
        let write = prepared(&client, &self.sql.update).await?;
        let notify = self.notify_statement(&client).await?;
        let tx = client.transaction().await.map_err(backend)?;
        let now = self.now(&tx).await?;
        let rows = tx
            .query(&candidates, &[&to_unix_nanos(now)])
            .await
            .map_err(backend)?;
        let mut expired = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut stored = read_row(row)?;
            if stored.expire(now) {
                let row = TaskRow::of(&stored);
                let changes = row.changes();
                tx.execute(&write, &change_params(&changes))
                    .await
                    .map_err(backend)?;
                expired.push(stored.task);
            }
        }
        tx.commit().await.map_err(backend)?;
        for task in &expired {
            self.announce(&client, notify.as_ref(), TaskEventKind::Expired, task);
        }
        Ok(expired)
    }

    /// With [`with_events`](PostgresTaskStoreBuilder::with_events): every
    /// task any store on the database announced in `PENDING` in `room`, and
    /// an empty id after the listener reconnected. `None` without events.
    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        self.events.as_ref().map(|events| events.watch(room))
    }
}
