//! Group commit for SQLite: one writer thread per connection that runs every
//! write waiting at the time in one transaction, and answers each caller
//! only after that transaction has committed.
//!
//! [`SqliteTaskStore`](crate::task::SqliteTaskStore) sends its inserts here,
//! and [`SqliteJobRegistry`](crate::status::SqliteJobRegistry) its job
//! changes. With `synchronous = FULL` every commit is an `fsync`; under load
//! one `fsync` then acknowledges a whole batch instead of one write.
//!
//! Batches form by themselves: the thread takes what is queued (at most
//! [`MAX_BATCH`]), commits, and meanwhile new writes queue for the next
//! batch. Nothing waits for a batch to fill, so a lone write is committed at
//! once. Each write runs in a savepoint of its own: one that fails is rolled
//! back alone and the rest of its batch commits. A batch that fails to begin
//! or commit fails each of its writes, with the cause's text.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

/// The most writes one transaction takes: enough to share one `fsync` among
/// every sender of a busy gateway, few enough that a claim or read waiting
/// for the connection waits about a millisecond.
pub(crate) const MAX_BATCH: usize = 128;

/// Why a write was not committed although it ran without error: its batch
/// could not begin or commit, or the writer thread is gone.
#[derive(Debug, Clone)]
pub(crate) enum CommitFailed {
    /// The batch's transaction failed to begin or commit; the text of the
    /// cause, shared by every write of the batch.
    Batch(Arc<str>),
    /// The writer thread has stopped (it stops only when every handle is
    /// dropped, or if it panicked).
    WriterGone,
}

impl std::fmt::Display for CommitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Batch(cause) => write!(f, "group commit failed: {cause}"),
            Self::WriterGone => f.write_str("the SQLite writer thread has stopped"),
        }
    }
}

impl std::error::Error for CommitFailed {}

/// One queued write: run inside the batch, then told how the batch ended.
trait Write: Send {
    /// Runs the write on the batch's connection (inside its savepoint);
    /// `true` when it succeeded and its changes should be kept.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch ended: `Ok` when it committed.
    fn answer(self: Box<Self>, batch: Result<(), CommitFailed>);
}

/// What a caller hears: its write's own result, or why a write that ran
/// without error was not committed.
type Answer<T, E> = Result<Result<T, E>, CommitFailed>;

/// A write closure and the channel its caller waits on.
struct Pending<F, T, E> {
    write: Option<F>,
    outcome: Option<Result<T, E>>,
    answer: oneshot::Sender<Answer<T, E>>,
}

impl<F, T, E> Write for Pending<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        let outcome = write(conn);
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn answer(self: Box<Self>, batch: Result<(), CommitFailed>) {
        let result = match (batch, self.outcome) {
            // The write's own error stands whatever became of its batch:
            // its savepoint was rolled back either way.
            (_, Some(Err(error))) => Ok(Err(error)),
            (Ok(()), Some(Ok(value))) => Ok(Ok(value)),
            (Err(failed), _) => Err(failed),
            // Not run although the batch committed: cannot happen, as every
            // write of a batch is applied before it commits.
            (Ok(()), None) => Err(CommitFailed::Batch("write was not run".into())),
        };
        // A caller that stopped waiting is no error: its write is committed.
        let _ = self.answer.send(result);
    }
}

/// A handle on a connection's writer thread. Cloning shares the thread; the
/// thread ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: Sender<Box<dyn Write>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer thread on `conn`, named `name`.
    pub(crate) fn start(conn: Arc<Mutex<Connection>>, name: &str) -> std::io::Result<Self> {
        let (queue, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&conn, &receiver))?;
        Ok(Self { queue })
    }

    /// Runs `write` in the next batch and returns its result once the batch
    /// has committed. `Ok` holds `write`'s own result (when it failed, its
    /// changes were rolled back and the batch went on); `Err` says why a
    /// write that succeeded was not committed after all.
    pub(crate) async fn write<F, T, E>(&self, write: F) -> Answer<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            write: Some(write),
            outcome: None,
            answer,
        };
        self.queue
            .send(Box::new(pending))
            .map_err(|_| CommitFailed::WriterGone)?;
        answered.await.unwrap_or(Err(CommitFailed::WriterGone))
    }
}

fn run(conn: &Mutex<Connection>, queue: &Receiver<Box<dyn Write>>) {
    // `recv` fails once every handle (and so every sender) is gone.
    while let Ok(first) = queue.recv() {
        // Woken by the first write, the thread may have taken the core from
        // the tasks about to send the next ones: giving them a turn first
        // lets those writes join this batch. With nothing else to run (a
        // lone write on a quiet machine) this returns at once.
        std::thread::yield_now();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let outcome = commit(&mut lock(conn), &mut batch);
        // Answered after the connection is free again.
        for write in batch {
            write.answer(outcome.clone());
        }
    }
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction, a savepoint per write.
fn commit(conn: &mut Connection, batch: &mut [Box<dyn Write>]) -> Result<(), CommitFailed> {
    let failed = |e: rusqlite::Error| CommitFailed::Batch(e.to_string().into());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    for write in batch.iter_mut() {
        // A savepoint per write, so one that fails leaves no half change
        // and does not take the batch down with it. The three statements
        // are prepared once per connection (rusqlite's `Savepoint` would
        // parse its SQL on every write).
        run_cached(&tx, "SAVEPOINT hookroom_write").map_err(failed)?;
        if !write.apply(&tx) {
            run_cached(&tx, "ROLLBACK TO hookroom_write").map_err(failed)?;
        }
        run_cached(&tx, "RELEASE hookroom_write").map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock cannot leave SQLite inconsistent (an
    // open transaction is rolled back on drop), so the poison flag is moot.
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> (Arc<Mutex<Connection>>, GroupCommit) {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .expect("schema");
        let conn = Arc::new(Mutex::new(conn));
        let writer = GroupCommit::start(Arc::clone(&conn), "test-writer").expect("thread");
        (conn, writer)
    }

    fn count(conn: &Mutex<Connection>) -> i64 {
        lock(conn)
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit_and_a_failing_one_fails_alone() {
        let (conn, writer) = table();
        let mut writes = tokio::task::JoinSet::new();
        for v in 0..200_i64 {
            let writer = writer.clone();
            writes.spawn(async move {
                // Value 7 is written twice: the second breaks UNIQUE.
                let value = if v == 100 { 7 } else { v };
                let result = writer
                    .write(move |conn| conn.execute("INSERT INTO t (v) VALUES (?1)", [value]))
                    .await;
                (v, result)
            });
        }
        let mut failed = Vec::new();
        while let Some(joined) = writes.join_next().await {
            let (v, result) = joined.expect("task");
            match result.expect("every batch commits") {
                Ok(rows) => assert_eq!(rows, 1),
                Err(_) => failed.push(v),
            }
        }
        // Exactly one of the two writes of 7 lost, whichever came second.
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0] == 7 || failed[0] == 100);
        assert_eq!(count(&conn), 199);
    }

    #[tokio::test]
    async fn a_write_that_fails_leaves_nothing_behind() {
        let (conn, writer) = table();
        let result = writer
            .write(|conn| {
                conn.execute("INSERT INTO t (v) VALUES (1)", [])?;
                // Fails after a change: the change goes with the savepoint.
                conn.execute("INSERT INTO t (v) VALUES (1)", [])
            })
            .await
            .expect("the batch commits");
        assert!(result.is_err());
        assert_eq!(count(&conn), 0);
        // The writer goes on after the failure.
        let next = writer
            .write(|conn| conn.execute("INSERT INTO t (v) VALUES (2)", []))
            .await
            .expect("the batch commits");
        assert_eq!(next.expect("insert"), 1);
        assert_eq!(count(&conn), 1);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_begin_fails_each_write_with_its_cause() {
        let (conn, writer) = table();
        // An open transaction on the connection makes BEGIN fail.
        lock(&conn).execute_batch("BEGIN").expect("begin");
        let result = writer
            .write(|conn| conn.execute("INSERT INTO t (v) VALUES (1)", []))
            .await;
        match result {
            Err(CommitFailed::Batch(cause)) => assert!(cause.contains("transaction"), "{cause}"),
            other => panic!("expected a batch failure, got {other:?}"),
        }
        lock(&conn).execute_batch("ROLLBACK").expect("rollback");
        assert_eq!(count(&conn), 0);
    }
}
