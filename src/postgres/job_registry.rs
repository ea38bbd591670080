//! [`PostgresJobRegistry`]: jobs and their history in PostgreSQL, beside a
//! `PostgresTaskStore`'s tasks in the same database. Statements are
//! prepared once per connection.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresTaskStore;
use super::batch::{Batcher, JobOutcome, NewJob};
use super::pipeline::send;

use crate::api::jobs::{JobCreateRequest, JobCreateResponse, JobView};
use crate::clock::{from_unix_nanos, to_unix_nanos};
use crate::status::change;
use crate::status::registry::{
    Applied, DEFAULT_MAX_KEYS_PER_JOB, JobPage, JobQuery, JobRegistry, MAX_PAGE_SIZE,
    check_same_job, from_json, to_json,
};
use crate::status::{HistoryEntry, Job, JobEvent, JobStatus, SinkError, StatusSink};

/// The name this backend gives in its errors.
const SINK: &str = "postgres";

/// History entries kept per job unless told otherwise.
const DEFAULT_MAX_HISTORY: usize = 1000;

/// Connections in the pool unless told otherwise.
const DEFAULT_POOL_SIZE: usize = 16;

/// The job tables. The index of finished jobs by their last change (which
/// the purge reads) holds only `DONE` and `FAILED` jobs, so creating a job
/// writes no entry in it; its `DROP` replaces the full index of earlier
/// versions.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hookroom_jobs (
    seq         BIGSERIAL PRIMARY KEY,
    job_id      TEXT   NOT NULL UNIQUE,
    status      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    input_data  TEXT   NOT NULL,
    progress    TEXT,
    artifacts   TEXT   NOT NULL,
    metadata    TEXT   NOT NULL
);
CREATE INDEX IF NOT EXISTS hookroom_jobs_by_status ON hookroom_jobs (status, seq);
DROP INDEX IF EXISTS hookroom_jobs_by_update;
CREATE INDEX IF NOT EXISTS hookroom_jobs_finished ON hookroom_jobs (updated_at)
    WHERE status IN ('DONE', 'FAILED');
CREATE TABLE IF NOT EXISTS hookroom_job_history (
    id         BIGSERIAL PRIMARY KEY,
    job_seq    BIGINT NOT NULL REFERENCES hookroom_jobs (seq) ON DELETE CASCADE,
    timestamp  BIGINT NOT NULL,
    status     TEXT   NOT NULL,
    message    TEXT,
    step       TEXT
);
CREATE INDEX IF NOT EXISTS hookroom_job_history_by_job ON hookroom_job_history (job_seq, id);
CREATE TABLE IF NOT EXISTS hookroom_job_keys (
    id      BIGSERIAL PRIMARY KEY,
    job_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    UNIQUE (job_id, key)
);
";

const JOB_COLUMNS: &str =
    "seq, job_id, status, created_at, updated_at, input_data, progress, artifacts, metadata";

/// A [`JobRegistry`] in PostgreSQL: jobs survive restarts wherever a
/// `PostgresTaskStore`'s tasks do, and several gateways share them.
///
/// Its tables (`hookroom_jobs`, `hookroom_job_history`) sit beside the task
/// store's in the same database; the reasons for a job table of its own are
/// those given for `SqliteJobRegistry`. Each event is applied in one
/// transaction holding the job's row lock, so racing completions leave
/// exactly one winner across gateways. History is bounded per job
/// ([`with_max_history`](Self::with_max_history), default 1000), as are
/// the idempotency keys of [`apply_once`](JobRegistry::apply_once) (table
/// `hookroom_job_keys`, keyed by `(job_id, key)`, written in the update's
/// transaction; the newest [`DEFAULT_MAX_KEYS_PER_JOB`] per job), and
/// [`purge_finished`](JobRegistry::purge_finished) removes finished jobs
/// with their history and keys, in batches.
#[derive(Clone)]
pub struct PostgresJobRegistry {
    pool: Pool,
    max_history: i64,
    /// Where job creations go: gathered into batches, each stored by one
    /// statement (the task store's writer, for a registry beside it).
    batcher: Batcher,
}

impl std::fmt::Debug for PostgresJobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may carry a password: not shown.
        f.debug_struct("PostgresJobRegistry")
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

fn parse_status(text: &str) -> Result<JobStatus, SinkError> {
    text.parse().map_err(backend)
}

/// A job row, with its sequence number.
struct Stored {
    seq: i64,
    job: Job,
}

fn read_row(row: &Row) -> Result<Stored, SinkError> {
    let progress: Option<String> = row.try_get(6).map_err(backend)?;
    Ok(Stored {
        seq: row.try_get(0).map_err(backend)?,
        job: Job {
            job_id: row.try_get(1).map_err(backend)?,
            status: parse_status(row.try_get(2).map_err(backend)?)?,
            created_at: from_unix_nanos(row.try_get(3).map_err(backend)?),
            updated_at: from_unix_nanos(row.try_get(4).map_err(backend)?),
            input_data: from_json(SINK, row.try_get(5).map_err(backend)?)?,
            progress: progress
                .as_deref()
                .map(|text| from_json(SINK, text))
                .transpose()?,
            artifacts: from_json(SINK, row.try_get(7).map_err(backend)?)?,
            metadata: from_json(SINK, row.try_get(8).map_err(backend)?)?,
        },
    })
}

impl PostgresJobRegistry {
    /// Connects to the database at `url` (a `PostgresTaskStore`'s will do)
    /// and creates the job tables if needed.
    ///
    /// # Errors
    /// [`SinkError::Backend`] for a bad connection string (TLS options
    /// included), an unreachable server or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, SinkError> {
        // TLS as the task store's: libpq's `sslmode` and `sslrootcert`.
        let (config, tls) = super::tls::connection(url).map_err(backend)?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(DEFAULT_POOL_SIZE)
            .build()
            .map_err(backend)?;
        let batcher = Batcher::start(pool.clone(), None);
        Self::on(pool, batcher).await
    }

    /// A registry in `store`'s database, on its connections, sharing its
    /// batch writer: the jobs created by [`publish`](StatusSink::publish)
    /// are stored in the same transactions as the store's inserts (a
    /// webhook's job in the batch after its task's), so a delivery costs
    /// its share of one commit rather than a commit of its own. Creates the
    /// job tables if needed.
    ///
    /// # Errors
    /// [`SinkError::Backend`] for an unreachable server or a failed
    /// migration.
    pub async fn beside(store: &PostgresTaskStore) -> Result<Self, SinkError> {
        let (pool, batcher) = store.shared_writer();
        Self::on(pool, batcher).await
    }

    async fn on(pool: Pool, batcher: Batcher) -> Result<Self, SinkError> {
        let registry = Self {
            pool,
            max_history: i64::try_from(DEFAULT_MAX_HISTORY).unwrap_or(i64::MAX),
            batcher,
        };
        registry.migrate().await?;
        Ok(registry)
    }

    /// Keeps at most the newest `max` history entries (at least one) per job.
    pub fn with_max_history(mut self, max: usize) -> Self {
        self.max_history = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// Removes every job that finished (`DONE` or `FAILED`) and last
    /// changed before `cutoff`, with its history and idempotency keys, in
    /// batches of 1000; returns how many.
    ///
    /// # Errors
    /// [`SinkError::Backend`].
    pub async fn purge_finished_before(&self, cutoff: OffsetDateTime) -> Result<u64, SinkError> {
        const BATCH: usize = 1000;
        let mut total = 0;
        loop {
            let purged = self.purge_finished(cutoff, BATCH).await?;
            total += purged as u64;
            if purged < BATCH {
                return Ok(total);
            }
        }
    }

    /// Remembers `key` for `job_id` in `tx`; `false` when it already was
    /// (a concurrent first use waits here for the other to commit). The
    /// insert and the trim of the job's oldest keys go out together: after
    /// a repeated key the trim finds nothing to delete.
    async fn remember_key(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        job_id: &str,
        key: &str,
    ) -> Result<bool, SinkError> {
        let insert = tx
            .prepare_cached(
                "INSERT INTO hookroom_job_keys (job_id, key) VALUES ($1, $2)
                 ON CONFLICT (job_id, key) DO NOTHING",
            )
            .await
            .map_err(backend)?;
        let trim = tx
            .prepare_cached(
                "DELETE FROM hookroom_job_keys WHERE job_id = $1 AND id NOT IN
               (SELECT id FROM hookroom_job_keys WHERE job_id = $1 ORDER BY id DESC LIMIT $2)",
            )
            .await
            .map_err(backend)?;
        let bound = i64::try_from(DEFAULT_MAX_KEYS_PER_JOB).unwrap_or(i64::MAX);
        let insert_params: [&(dyn ToSql + Sync); 2] = [&job_id, &key];
        let trim_params: [&(dyn ToSql + Sync); 2] = [&job_id, &bound];
        let inserted = send(tx.execute(&insert, &insert_params));
        let trimmed = send(tx.execute(&trim, &trim_params));
        let inserted = inserted.await.map_err(backend)?;
        trimmed.await.map_err(backend)?;
        Ok(inserted > 0)
    }

    async fn migrate(&self) -> Result<(), SinkError> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        // Gateways starting at once would race on CREATE TABLE IF NOT EXISTS.
        tx.execute("SELECT pg_advisory_xact_lock(7401208)", &[])
            .await
            .map_err(backend)?;
        tx.batch_execute(SCHEMA).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// Creates the job with its first history entry in one statement: one
    /// round trip, where an insert of each then took two. A new job's
    /// history has one entry, within any bound, so nothing is trimmed.
    async fn create(
        &self,
        client: &impl GenericClient,
        job_id: &str,
        at: OffsetDateTime,
        input_data: &str,
        metadata: &Map<String, Value>,
    ) -> Result<(), SinkError> {
        let entry = change::created_entry(at);
        let inserted = client
            .query_opt(
                &client
                    .prepare_cached(
                        "WITH job AS (
                   INSERT INTO hookroom_jobs (job_id, status, created_at, updated_at, input_data,
                     progress, artifacts, metadata)
                   VALUES ($1, $5, $2, $2, $3, NULL, '[]', $4)
                   ON CONFLICT (job_id) DO NOTHING RETURNING seq
                 )
                 INSERT INTO hookroom_job_history (job_seq, timestamp, status, message, step)
                 SELECT seq, $2, $5, $6, $7 FROM job RETURNING job_seq",
                    )
                    .await
                    .map_err(backend)?,
                &[
                    &job_id,
                    &to_unix_nanos(at),
                    &input_data,
                    &to_json(SINK, metadata)?,
                    &entry.status.as_str(),
                    &entry.message,
                    &entry.step,
                ],
            )
            .await
            .map_err(backend)?;
        match inserted {
            Some(_) => Ok(()),
            None => Err(SinkError::InvalidStatus {
                reason: format!("job `{job_id}` already exists"),
            }),
        }
    }

    async fn apply(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        event: JobEvent,
    ) -> Result<(), SinkError> {
        if let JobEvent::Created {
            job_id,
            at,
            input_data,
            metadata,
        } = &event
        {
            return self
                .create(tx, job_id, *at, input_data.as_str(), metadata)
                .await;
        }
        change::precheck(&event)?;
        let job_id = event.job_id().to_owned();
        let row = tx
            .query_opt(
                &tx.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM hookroom_jobs WHERE job_id = $1 FOR UPDATE"
                ))
                .await
                .map_err(backend)?,
                &[&job_id],
            )
            .await
            .map_err(backend)?
            .ok_or(SinkError::JobNotFound { job_id })?;
        let mut stored = read_row(&row)?;
        let entry = change::apply(&mut stored.job, event)?;
        let job = &stored.job;
        let update = tx
            .prepare_cached(
                "UPDATE hookroom_jobs SET status = $2, updated_at = $3, progress = $4,
                   artifacts = $5, metadata = $6 WHERE seq = $1",
            )
            .await
            .map_err(backend)?;
        let push = tx
            .prepare_cached(
                "INSERT INTO hookroom_job_history (job_seq, timestamp, status, message, step)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(backend)?;
        let trim = tx
            .prepare_cached(
                "DELETE FROM hookroom_job_history WHERE job_seq = $1 AND id NOT IN
               (SELECT id FROM hookroom_job_history WHERE job_seq = $1 ORDER BY id DESC LIMIT $2)",
            )
            .await
            .map_err(backend)?;
        let (status, updated_at) = (job.status.as_str(), to_unix_nanos(job.updated_at));
        let progress = job
            .progress
            .as_ref()
            .map(|value| to_json(SINK, value))
            .transpose()?;
        let (artifacts, metadata) = (
            to_json(SINK, &job.artifacts)?,
            to_json(SINK, &job.metadata)?,
        );
        let (at, entry_status) = (to_unix_nanos(entry.timestamp), entry.status.as_str());
        let update_params: [&(dyn ToSql + Sync); 6] = [
            &stored.seq,
            &status,
            &updated_at,
            &progress,
            &artifacts,
            &metadata,
        ];
        let push_params: [&(dyn ToSql + Sync); 5] =
            [&stored.seq, &at, &entry_status, &entry.message, &entry.step];
        let trim_params: [&(dyn ToSql + Sync); 2] = [&stored.seq, &self.max_history];
        // The job's row, its new history entry and the trim of its oldest
        // go out together (one round trip), in this order.
        let updated = send(tx.execute(&update, &update_params));
        let pushed = send(tx.execute(&push, &push_params));
        let trimmed = send(tx.execute(&trim, &trim_params));
        updated.await.map_err(backend)?;
        pushed.await.map_err(backend)?;
        trimmed.await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl StatusSink for PostgresJobRegistry {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        // A creation joins the next batch of the database's writer.
        if let JobEvent::Created {
            job_id,
            at,
            input_data,
            metadata,
        } = event
        {
            let entry = change::created_entry(at);
            let job = NewJob {
                status: entry.status.as_str(),
                at: to_unix_nanos(at),
                input_data: input_data.as_str().to_owned(),
                metadata: to_json(SINK, &metadata)?,
                message: entry.message,
                step: entry.step,
                job_id,
            };
            let job_id = job.job_id.clone();
            return match self.batcher.create_job(job).await.map_err(backend)? {
                JobOutcome::Created => Ok(()),
                JobOutcome::Exists => Err(SinkError::InvalidStatus {
                    reason: format!("job `{job_id}` already exists"),
                }),
            };
        }
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        self.apply(&tx, event).await?;
        tx.commit().await.map_err(backend)
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        let job_id = event.job_id().to_owned();
        self.apply_once(&job_id, key, vec![event]).await.map(drop)
    }
}

#[async_trait]
impl JobRegistry for PostgresJobRegistry {
    async fn create_job(
        &self,
        request: JobCreateRequest,
        at: OffsetDateTime,
    ) -> Result<JobCreateResponse, SinkError> {
        let event = request.into_event(uuid::Uuid::new_v4().to_string(), at);
        let job_id = event.job_id().to_owned();
        self.publish(event).await?;
        let view = self
            .job(&job_id, false)
            .await?
            .ok_or(SinkError::JobNotFound { job_id })?;
        Ok(JobCreateResponse::for_job(&view.job))
    }

    async fn job(&self, job_id: &str, include_history: bool) -> Result<Option<JobView>, SinkError> {
        let client = self.pool.get().await.map_err(backend)?;
        let Some(row) = client
            .query_opt(
                &client
                    .prepare_cached(&format!(
                        "SELECT {JOB_COLUMNS} FROM hookroom_jobs WHERE job_id = $1"
                    ))
                    .await
                    .map_err(backend)?,
                &[&job_id],
            )
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let stored = read_row(&row)?;
        let history = if include_history {
            let rows = client
                .query(
                    &client
                        .prepare_cached(
                            "SELECT timestamp, status, message, step FROM hookroom_job_history
                     WHERE job_seq = $1 ORDER BY id",
                        )
                        .await
                        .map_err(backend)?,
                    &[&stored.seq],
                )
                .await
                .map_err(backend)?;
            let entries = rows
                .iter()
                .map(|row| {
                    Ok(HistoryEntry {
                        timestamp: from_unix_nanos(row.try_get(0).map_err(backend)?),
                        status: parse_status(row.try_get(1).map_err(backend)?)?,
                        message: row.try_get(2).map_err(backend)?,
                        step: row.try_get(3).map_err(backend)?,
                    })
                })
                .collect::<Result<Vec<_>, SinkError>>()?;
            Some(entries)
        } else {
            None
        };
        Ok(Some(JobView {
            job: stored.job,
            history,
        }))
    }

    async fn jobs(&self, query: JobQuery) -> Result<JobPage, SinkError> {
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        let before = query
            .cursor
            .and_then(|c| i64::try_from(c).ok())
            .unwrap_or(i64::MAX);
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let status = query.status.map(JobStatus::as_str);
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                &client
                    .prepare_cached(&format!(
                        "SELECT {JOB_COLUMNS} FROM hookroom_jobs
                     WHERE seq < $1 AND ($2::TEXT IS NULL OR status = $2)
                     ORDER BY seq DESC LIMIT $3"
                    ))
                    .await
                    .map_err(backend)?,
                &[&before, &status, &fetch],
            )
            .await
            .map_err(backend)?;
        let mut stored = rows
            .iter()
            .map(read_row)
            .collect::<Result<Vec<_>, SinkError>>()?;
        let more = stored.len() > limit;
        stored.truncate(limit);
        let next = if more {
            stored.last().and_then(|row| u64::try_from(row.seq).ok())
        } else {
            None
        };
        Ok(JobPage {
            jobs: stored.into_iter().map(|row| row.job).collect(),
            next,
        })
    }

    async fn apply_once(
        &self,
        job_id: &str,
        key: &str,
        events: Vec<JobEvent>,
    ) -> Result<Applied, SinkError> {
        check_same_job(job_id, &events)?;
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        // The key and the update commit together, or neither does (a
        // refused event drops `tx`, which rolls back).
        if !self.remember_key(&tx, job_id, key).await? {
            return Ok(Applied::Before);
        }
        for event in events {
            self.apply(&tx, event).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Applied::Now)
    }

    async fn purge_finished(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<usize, SinkError> {
        let client = self.pool.get().await.map_err(backend)?;
        let purged = client
            .execute(
                &client
                    .prepare_cached(
                        "WITH doomed AS (
                   SELECT seq, job_id FROM hookroom_jobs
                   WHERE status IN ('DONE', 'FAILED') AND updated_at < $1
                   ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED
                 ), forgotten AS (
                   DELETE FROM hookroom_job_keys k USING doomed d WHERE k.job_id = d.job_id
                 )
                 DELETE FROM hookroom_jobs j USING doomed d WHERE j.seq = d.seq",
                    )
                    .await
                    .map_err(backend)?,
                &[
                    &to_unix_nanos(cutoff),
                    &i64::try_from(limit).unwrap_or(i64::MAX),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}
