//! Group commit for PostgreSQL: the task inserts and job creations of
//! concurrent callers are gathered and stored by one statement each per
//! batch, in one transaction, with one `NOTIFY` statement per batch.
//!
//! Each delivery of a webhook is a task insert, then (once that answered) a
//! job creation. Stored one at a time, each of them is a transaction of its
//! own and a flush of the log to disk, and PostgreSQL's own group commit
//! cannot gather writes that arrive one round trip apart. Here a writer task
//! takes everything queued (at most [`MAX_BATCH`]), writes the batch's tasks
//! with one `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` and its
//! jobs, with their first history entries, with one more statement, and
//! commits: one flush for the batch. A task store and a job registry on one
//! database share one writer
//! ([`PostgresJobRegistry::beside`](super::PostgresJobRegistry::beside)), so
//! a batch holds the tasks of new deliveries and the jobs of the deliveries
//! whose tasks the batch before stored, in one transaction.
//!
//! Nothing waits for a batch to fill: a lone write is stored at once. At
//! most [`IN_FLIGHT`] batches run at a time, each on its own pooled
//! connection, so one batch's statements run while another's commit is
//! being flushed; writes that arrive meanwhile queue for the next batch.
//!
//! Redeliveries: the tasks' `ON CONFLICT (source, delivery_id) DO NOTHING`
//! stores a delivery once however many gateways receive it, and a delivery
//! that was not inserted is answered with the stored task's id, read by a
//! statement of its own in the same transaction (in `READ COMMITTED` it
//! sees the row whose commit the insert waited for). Rows are inserted in
//! `(source, delivery_id)` order, so two gateways' batches holding the same
//! redeliveries take their locks in the same order and never deadlock.
//!
//! A batch that fails (a value PostgreSQL refuses, such as a NUL character
//! in a text column, or a lost connection) is run again one write at a
//! time, so only the writes that fail alone fail.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_postgres::types::ToSql;

use super::pipeline::send;
use crate::task::sql::{COLUMNS, TaskRow};

/// The most writes one batch takes: enough for every connection of a busy
/// gateway, few enough to keep one transaction short.
pub(crate) const MAX_BATCH: usize = 256;

/// Batches that may run at once, each on its own connection.
pub(crate) const IN_FLIGHT: usize = 2;

/// Writes that may wait for a batch; a caller past it waits for room (each
/// queued write is a caller waiting for its answer, so the queue is bounded
/// by the callers anyway).
const QUEUE: usize = 4096;

/// The text of the error that failed a write whose batch could not be
/// stored: shared by the writes of a batch.
#[derive(Debug, Clone)]
pub(crate) struct WriteFailed(pub(crate) Arc<str>);

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteFailed {}

impl WriteFailed {
    fn of(error: &(dyn std::error::Error + 'static)) -> Self {
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
        Self(text.into())
    }

    /// The writer task is gone (it stops when every handle is dropped).
    fn writer_gone() -> Self {
        Self("the PostgreSQL batch writer has stopped".into())
    }
}

/// How a task insert ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskOutcome {
    /// The row was stored under the id it was given.
    Inserted,
    /// A task for the same `(source, delivery_id)` already was: its id.
    Duplicate(String),
}

/// How a job creation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobOutcome {
    /// Stored, with its first history entry.
    Created,
    /// A job with that id already was: nothing stored.
    Exists,
}

/// A new job and its first history entry, as the columns store them.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub(crate) job_id: String,
    pub(crate) status: &'static str,
    pub(crate) at: i64,
    pub(crate) input_data: String,
    pub(crate) metadata: String,
    pub(crate) message: Option<String>,
    pub(crate) step: Option<String>,
}

/// A task insert: the row (built at time zero, moved to the insert's time
/// by the statement), the insert's time (`None`: the database's), and the
/// `NOTIFY` payload announcing it once stored (`None`: not announced).
pub(crate) struct NewTaskRow {
    pub(crate) row: TaskRow,
    pub(crate) time: Option<i64>,
    pub(crate) notice: Option<String>,
}

enum Write {
    Task(
        Box<NewTaskRow>,
        oneshot::Sender<Result<TaskOutcome, WriteFailed>>,
    ),
    Job(NewJob, oneshot::Sender<Result<JobOutcome, WriteFailed>>),
}

/// The SQL of a writer that stores tasks, with the table name filled in.
pub(crate) struct TaskSql {
    insert: String,
    lookup: String,
    /// The `NOTIFY` channel (the table's name).
    channel: String,
}

impl TaskSql {
    /// The statements for table `t` (a checked identifier).
    pub(crate) fn new(t: &str) -> Self {
        use super::task_store::DATABASE_NANOS;

        // The row is built at time zero: each time column is moved by the
        // insert's time, saturating at the largest BIGINT (as the state
        // machine's deadlines do).
        let shifted = |column: &str| {
            format!(
                "CASE WHEN r.{column} IS NULL THEN NULL \
                 WHEN r.at > 9223372036854775807 - r.{column} THEN 9223372036854775807 \
                 ELSE r.at + r.{column} END"
            )
        };
        Self {
            insert: format!(
                "WITH now AS MATERIALIZED (SELECT {DATABASE_NANOS} AS at), \
                 r AS (SELECT i.id, i.room, i.title, i.description, i.priority, i.status, \
                     i.source, i.source_event, i.source_url, i.delivery_id, i.payload, \
                     i.capabilities, i.created_at, i.updated_at, i.expires_at, i.not_before, \
                     i.claimed_by, i.lease_expires_at, i.attempts, i.claim_token, \
                     i.input_request, i.input, i.result, i.failure, i.ord, \
                     COALESCE(i.at, now.at) AS at \
                   FROM now, unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
                     $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], \
                     $11::BYTEA[], $12::TEXT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], \
                     $16::BIGINT[], $17::TEXT[], $18::BIGINT[], $19::BIGINT[], $20::TEXT[], \
                     $21::TEXT[], $22::TEXT[], $23::TEXT[], $24::TEXT[], $25::BIGINT[]) \
                   WITH ORDINALITY AS i(id, room, title, description, priority, status, source, \
                     source_event, source_url, delivery_id, payload, capabilities, created_at, \
                     updated_at, expires_at, not_before, claimed_by, lease_expires_at, attempts, \
                     claim_token, input_request, input, result, failure, at, ord)) \
                 INSERT INTO {t} ({COLUMNS}) \
                 SELECT r.id, r.room, r.title, r.description, r.priority, r.status, r.source, \
                   r.source_event, r.source_url, r.delivery_id, r.payload, \
                   ARRAY(SELECT jsonb_array_elements_text(r.capabilities::JSONB)), \
                   {}, {}, {}, {}, r.claimed_by, {}, r.attempts, r.claim_token, \
                   r.input_request, r.input, r.result, r.failure \
                 FROM r ORDER BY r.ord \
                 ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id",
                shifted("created_at"),
                shifted("updated_at"),
                shifted("expires_at"),
                shifted("not_before"),
                shifted("lease_expires_at"),
            ),
            lookup: format!(
                "SELECT t.source, t.delivery_id, t.id FROM {t} t \
                 JOIN unnest($1::TEXT[], $2::TEXT[]) AS d(source, delivery_id) \
                   ON t.source = d.source AND t.delivery_id = d.delivery_id"
            ),
            channel: t.to_owned(),
        }
    }
}

/// The jobs of a batch, with their first history entries: one statement.
const INSERT_JOBS: &str = "WITH r AS (SELECT * FROM unnest($1::TEXT[], $2::TEXT[], \
       $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[]) WITH ORDINALITY \
       AS r(job_id, status, at, input_data, metadata, message, step, ord)), \
     job AS (INSERT INTO hookroom_jobs (job_id, status, created_at, updated_at, input_data, \
         progress, artifacts, metadata) \
       SELECT job_id, status, at, at, input_data, NULL, '[]', metadata FROM r ORDER BY ord \
       ON CONFLICT (job_id) DO NOTHING RETURNING seq, job_id), \
     entry AS (INSERT INTO hookroom_job_history (job_seq, timestamp, status, message, step) \
       SELECT job.seq, r.at, r.status, r.message, r.step FROM job JOIN r USING (job_id) \
       ORDER BY job.seq) \
     SELECT job_id FROM job";

/// Announces a batch's stored tasks: one notification per task, one
/// statement.
const NOTIFY_ALL: &str = "SELECT pg_notify($1, notice) FROM unnest($2::TEXT[]) AS notice";

/// A handle on a database's batch writer. Cloning shares the writer, which
/// stops once every handle is dropped.
#[derive(Clone)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Write>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts a writer on `pool`'s connections, storing tasks with `tasks`
    /// (`None`: a writer of jobs only). Must be called within a tokio
    /// runtime.
    pub(crate) fn start(pool: Pool, tasks: Option<TaskSql>) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let writer = Writer {
            pool,
            tasks: tasks.map(Arc::new),
        };
        tokio::spawn(writer.run(receiver));
        Self { queue }
    }

    /// Stores `task` in the next batch; answers once that batch committed.
    pub(crate) async fn insert_task(&self, task: NewTaskRow) -> Result<TaskOutcome, WriteFailed> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Write::Task(Box::new(task), answer))
            .await
            .map_err(|_| WriteFailed::writer_gone())?;
        answered.await.map_err(|_| WriteFailed::writer_gone())?
    }

    /// Creates `job` with its first history entry in the next batch;
    /// answers once that batch committed.
    pub(crate) async fn create_job(&self, job: NewJob) -> Result<JobOutcome, WriteFailed> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Write::Job(job, answer))
            .await
            .map_err(|_| WriteFailed::writer_gone())?;
        answered.await.map_err(|_| WriteFailed::writer_gone())?
    }
}

struct Writer {
    pool: Pool,
    tasks: Option<Arc<TaskSql>>,
}

impl Writer {
    async fn run(self, mut receiver: mpsc::Receiver<Write>) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let writer = Arc::new(self);
        loop {
            // A free slot first: the writes that arrive while every slot is
            // busy wait in the queue and form the next batch.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let Some(first) = receiver.recv().await else {
                return;
            };
            // Woken by the first write: the callers about to send the next
            // ones get a turn to join this batch.
            tokio::task::yield_now().await;
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                writer.store(batch).await;
                drop(slot);
            });
        }
    }

    /// Stores `batch` and answers each write; a batch that fails is stored
    /// again one write at a time.
    async fn store(&self, batch: Vec<Write>) {
        let (tasks, jobs) = split(batch);
        if tasks.len() + jobs.len() == 1 {
            return self.store_alone(tasks, jobs).await;
        }
        match self.commit(&tasks, &jobs).await {
            Ok(answers) => answer(tasks, jobs, answers),
            Err(_) => {
                for task in tasks {
                    self.store_alone(vec![task], Vec::new()).await;
                }
                for job in jobs {
                    self.store_alone(Vec::new(), vec![job]).await;
                }
            }
        }
    }

    async fn store_alone(&self, tasks: Vec<TaskWrite>, jobs: Vec<JobWrite>) {
        match self.commit(&tasks, &jobs).await {
            Ok(answers) => answer(tasks, jobs, answers),
            Err(failed) => {
                for (_, reply) in tasks {
                    let _ = reply.send(Err(failed.clone()));
                }
                for (_, reply) in jobs {
                    let _ = reply.send(Err(failed.clone()));
                }
            }
        }
    }

    /// One transaction: the tasks, the duplicates' ids, the jobs, `COMMIT`;
    /// then the `NOTIFY` of the stored tasks, sent without waiting.
    async fn commit(&self, tasks: &[TaskWrite], jobs: &[JobWrite]) -> Result<Answers, WriteFailed> {
        let client = self.pool.get().await.map_err(|e| WriteFailed::of(&e))?;
        let task_sql = match (&self.tasks, tasks.is_empty()) {
            (_, true) => None,
            (Some(sql), false) => Some(sql),
            (None, false) => return Err(WriteFailed("this writer stores no tasks".into())),
        };
        let insert_tasks = match task_sql {
            Some(sql) => Some(
                client
                    .prepare_cached(&sql.insert)
                    .await
                    .map_err(|e| WriteFailed::of(&e))?,
            ),
            None => None,
        };
        let insert_jobs = if jobs.is_empty() {
            None
        } else {
            Some(
                client
                    .prepare_cached(INSERT_JOBS)
                    .await
                    .map_err(|e| WriteFailed::of(&e))?,
            )
        };
        let task_columns = TaskColumns::of(tasks);
        let job_columns = JobColumns::of(jobs);
        let pg: &tokio_postgres::Client = &client;
        // BEGIN and the inserts go out together; the server runs them in
        // order and answers in one round trip.
        let mut open = Open {
            client: pg,
            open: true,
        };
        let begun = send(pg.batch_execute("BEGIN"));
        let task_params = task_columns.params();
        let job_params = job_columns.params();
        let stored_tasks = insert_tasks
            .as_ref()
            .map(|statement| send(pg.query(statement, &task_params)));
        let stored_jobs = insert_jobs
            .as_ref()
            .map(|statement| send(pg.query(statement, &job_params)));
        begun.await.map_err(|e| WriteFailed::of(&e))?;
        let mut answers = Answers::default();
        if let Some(stored) = stored_tasks {
            let rows = stored.await.map_err(|e| WriteFailed::of(&e))?;
            for row in rows {
                let id: String = row.try_get(0).map_err(|e| WriteFailed::of(&e))?;
                answers.tasks.insert(id);
            }
        }
        if let Some(stored) = stored_jobs {
            let rows = stored.await.map_err(|e| WriteFailed::of(&e))?;
            for row in rows {
                let id: String = row.try_get(0).map_err(|e| WriteFailed::of(&e))?;
                answers.jobs.insert(id);
            }
        }
        // Deliveries that were not inserted: the stored task's id, read
        // after the insert (which waited for any conflicting transaction).
        let missing: Vec<&TaskWrite> = tasks
            .iter()
            .filter(|(task, _)| !answers.tasks.contains(&task.row.id))
            .collect();
        if let (Some(sql), false) = (task_sql, missing.is_empty()) {
            let lookup = client
                .prepare_cached(&sql.lookup)
                .await
                .map_err(|e| WriteFailed::of(&e))?;
            let sources: Vec<&str> = missing.iter().map(|(t, _)| t.row.source.as_str()).collect();
            let deliveries: Vec<&str> = missing
                .iter()
                .map(|(t, _)| t.row.delivery_id.as_str())
                .collect();
            let rows = pg
                .query(&lookup, &[&sources, &deliveries])
                .await
                .map_err(|e| WriteFailed::of(&e))?;
            for row in rows {
                let source: String = row.try_get(0).map_err(|e| WriteFailed::of(&e))?;
                let delivery: String = row.try_get(1).map_err(|e| WriteFailed::of(&e))?;
                let id: String = row.try_get(2).map_err(|e| WriteFailed::of(&e))?;
                answers.existing.insert((source, delivery), id);
            }
        }
        pg.batch_execute("COMMIT")
            .await
            .map_err(|e| WriteFailed::of(&e))?;
        open.open = false;
        if let Some(sql) = task_sql {
            let notices: Vec<&str> = tasks
                .iter()
                .filter(|(task, _)| answers.tasks.contains(&task.row.id))
                .filter_map(|(task, _)| task.notice.as_deref())
                .collect();
            if !notices.is_empty()
                && let Ok(notify) = client.prepare_cached(NOTIFY_ALL).await
            {
                // Runs on its own, before anything the connection's next
                // user sends: a wake-up call, which a listener that missed
                // it makes up for (see `listen`).
                drop(send(pg.execute(&notify, &[&sql.channel, &notices])));
            }
        }
        Ok(answers)
    }
}

/// Sends `ROLLBACK` without waiting when dropped before its commit (an
/// error), so the connection goes back to the pool out of the transaction.
struct Open<'c> {
    client: &'c tokio_postgres::Client,
    open: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            drop(send(self.client.batch_execute("ROLLBACK")));
        }
    }
}

type TaskWrite = (
    Box<NewTaskRow>,
    oneshot::Sender<Result<TaskOutcome, WriteFailed>>,
);
type JobWrite = (NewJob, oneshot::Sender<Result<JobOutcome, WriteFailed>>);

/// What a committed batch stored.
#[derive(Default)]
struct Answers {
    /// Ids of the tasks inserted.
    tasks: HashSet<String>,
    /// The stored task of each delivery not inserted.
    existing: HashMap<(String, String), String>,
    /// Ids of the jobs created.
    jobs: HashSet<String>,
}

/// The batch's tasks in `(source, delivery_id)` order (the order their
/// unique index is locked in), without a repeated delivery (answered as
/// the duplicate of the first), and its jobs without a repeated id
/// (answered as existing).
fn split(batch: Vec<Write>) -> (Vec<TaskWrite>, Vec<JobWrite>) {
    let mut tasks = Vec::new();
    let mut jobs: Vec<JobWrite> = Vec::new();
    for write in batch {
        match write {
            Write::Task(task, reply) => tasks.push((task, reply)),
            Write::Job(job, reply) => {
                if jobs.iter().any(|(other, _)| other.job_id == job.job_id) {
                    let _ = reply.send(Ok(JobOutcome::Exists));
                } else {
                    jobs.push((job, reply));
                }
            }
        }
    }
    tasks.sort_by(|(a, _), (b, _)| {
        (&a.row.source, &a.row.delivery_id).cmp(&(&b.row.source, &b.row.delivery_id))
    });
    (tasks, jobs)
}

/// Answers each write of a committed batch. A delivery repeated within the
/// batch was inserted once: its later copies are duplicates of that task.
fn answer(tasks: Vec<TaskWrite>, jobs: Vec<JobWrite>, mut answers: Answers) {
    for (task, reply) in tasks {
        let key = (task.row.source, task.row.delivery_id);
        let outcome = if answers.tasks.contains(&task.row.id) {
            answers.existing.insert(key, task.row.id);
            Ok(TaskOutcome::Inserted)
        } else {
            match answers.existing.get(&key) {
                Some(id) => Ok(TaskOutcome::Duplicate(id.clone())),
                None => Err(WriteFailed(
                    "the delivery was neither stored nor found stored".into(),
                )),
            }
        };
        let _ = reply.send(outcome);
    }
    for (job, reply) in jobs {
        let outcome = if answers.jobs.contains(&job.job_id) {
            JobOutcome::Created
        } else {
            JobOutcome::Exists
        };
        let _ = reply.send(Ok(outcome));
    }
}

/// The batch's task rows as one array per column, for `unnest`.
#[derive(Default)]
struct TaskColumns<'a> {
    id: Vec<&'a str>,
    room: Vec<&'a str>,
    title: Vec<&'a str>,
    description: Vec<&'a str>,
    priority: Vec<i64>,
    status: Vec<&'a str>,
    source: Vec<&'a str>,
    source_event: Vec<&'a str>,
    source_url: Vec<Option<&'a str>>,
    delivery_id: Vec<&'a str>,
    payload: Vec<&'a [u8]>,
    capabilities: Vec<String>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    expires_at: Vec<Option<i64>>,
    not_before: Vec<Option<i64>>,
    claimed_by: Vec<Option<&'a str>>,
    lease_expires_at: Vec<Option<i64>>,
    attempts: Vec<i64>,
    claim_token: Vec<Option<&'a str>>,
    input_request: Vec<Option<&'a str>>,
    input: Vec<Option<&'a str>>,
    result: Vec<Option<&'a str>>,
    failure: Vec<Option<&'a str>>,
    at: Vec<Option<i64>>,
}

impl<'a> TaskColumns<'a> {
    fn of(tasks: &'a [TaskWrite]) -> Self {
        let mut c = Self::default();
        for (task, _) in tasks {
            let r = &task.row;
            c.id.push(&r.id);
            c.room.push(&r.room);
            c.title.push(&r.title);
            c.description.push(&r.description);
            c.priority.push(r.priority);
            c.status.push(&r.status);
            c.source.push(&r.source);
            c.source_event.push(&r.source_event);
            c.source_url.push(r.source_url.as_deref());
            c.delivery_id.push(&r.delivery_id);
            c.payload.push(&r.payload);
            // A JSON array of strings cannot fail to serialize.
            c.capabilities
                .push(serde_json::to_string(&r.required_capabilities).unwrap_or_default());
            c.created_at.push(r.created_at);
            c.updated_at.push(r.updated_at);
            c.expires_at.push(r.expires_at);
            c.not_before.push(r.not_before);
            c.claimed_by.push(r.claimed_by.as_deref());
            c.lease_expires_at.push(r.lease_expires_at);
            c.attempts.push(r.attempts);
            c.claim_token.push(r.claim_token.as_deref());
            c.input_request.push(r.input_request.as_deref());
            c.input.push(r.input.as_deref());
            c.result.push(r.result.as_deref());
            c.failure.push(r.failure.as_deref());
            c.at.push(task.time);
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 25] {
        [
            &self.id,
            &self.room,
            &self.title,
            &self.description,
            &self.priority,
            &self.status,
            &self.source,
            &self.source_event,
            &self.source_url,
            &self.delivery_id,
            &self.payload,
            &self.capabilities,
            &self.created_at,
            &self.updated_at,
            &self.expires_at,
            &self.not_before,
            &self.claimed_by,
            &self.lease_expires_at,
            &self.attempts,
            &self.claim_token,
            &self.input_request,
            &self.input,
            &self.result,
            &self.failure,
            &self.at,
        ]
    }
}

/// The batch's jobs as one array per column, for `unnest`.
#[derive(Default)]
struct JobColumns<'a> {
    job_id: Vec<&'a str>,
    status: Vec<&'a str>,
    at: Vec<i64>,
    input_data: Vec<&'a str>,
    metadata: Vec<&'a str>,
    message: Vec<Option<&'a str>>,
    step: Vec<Option<&'a str>>,
}

impl<'a> JobColumns<'a> {
    fn of(jobs: &'a [JobWrite]) -> Self {
        let mut c = Self::default();
        for (job, _) in jobs {
            c.job_id.push(&job.job_id);
            c.status.push(job.status);
            c.at.push(job.at);
            c.input_data.push(&job.input_data);
            c.metadata.push(&job.metadata);
            c.message.push(job.message.as_deref());
            c.step.push(job.step.as_deref());
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.job_id,
            &self.status,
            &self.at,
            &self.input_data,
            &self.metadata,
            &self.message,
            &self.step,
        ]
    }
}
