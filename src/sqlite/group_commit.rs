//! Group commit for SQLite: one writer thread per connection that runs every
//! write waiting at the time in one transaction, and answers each caller
//! only after that transaction has committed.
//!
//! [`SqliteTaskStore`](crate::sqlite::SqliteTaskStore) sends its inserts here,
//! and [`SqliteJobRegistry`](crate::sqlite::SqliteJobRegistry) its job
//! changes. With `synchronous = FULL` every commit is an `fsync`; under load
//! one `fsync` then acknowledges a whole batch instead of one write.
//!
//! Batches form by themselves: the thread takes what is queued (at most
//! [`MAX_BATCH`]), commits, and meanwhile new writes queue for the next
//! batch. Nothing waits for a batch to fill, so a lone write is committed at
//! once. A batch that fails to begin or commit fails each of its writes,
//! with the cause's text.
//!
//! A write that fails is rolled back alone and the rest of its batch
//! commits. Most writes that fail do so before they change anything (a
//! state machine refusal, a constraint that stops the statement, which
//! SQLite undoes by itself), so a batch first runs without savepoints. Only
//! when a write fails after it changed rows (the connection's change count
//! moved) is the transaction rolled back and the batch run again, each
//! write in a savepoint of its own. That is why a write must be a closure
//! that can run twice (`FnMut`) and why writes change the database only
//! through `INSERT`, `UPDATE` and `DELETE`, the statements SQLite counts.
//! A savepoint per write on every batch would copy each page a write
//! touches into the statement journal, page after page and write after
//! write, for failures that almost never happen.

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
    /// Runs the write on the batch's connection; `true` when it succeeded
    /// and its changes should be kept. Called again, with the batch's
    /// earlier changes rolled back, when the batch is run a second time.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch ended (`Ok` when it committed),
    /// handing it `relay` to deliver.
    fn answer(self: Box<Self>, batch: Result<(), CommitFailed>, relay: Option<Relay>);
}

/// What a caller hears: its write's own result, or why a write that ran
/// without error was not committed.
type Answer<T, E> = Result<Result<T, E>, CommitFailed>;

/// What a caller's channel carries: its answer and, for the first write of a
/// batch, the rest of the batch's answers to deliver.
struct Delivery<T, E> {
    answer: Answer<T, E>,
    relay: Option<Relay>,
}

/// The answers of a batch but its first, delivered by the first write's
/// caller on its runtime thread.
///
/// Why: the writer thread and the runtime usually share cores. Each answer
/// the writer sent itself would wake the runtime, which, woken, often takes
/// the core from the writer to finish that one request before the writer
/// sends the next answer: a context switch per write. Delivered from the
/// runtime, the other wakes are queue pushes on the thread already running,
/// and a batch costs one wake.
///
/// Dropping a relay delivers it, so the answers arrive whatever becomes of
/// the first caller (gone before its answer, or dropped with the answer
/// unread).
struct Relay {
    writes: Vec<Box<dyn Write>>,
    outcome: Result<(), CommitFailed>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for write in self.writes.drain(..) {
            write.answer(self.outcome.clone(), None);
        }
    }
}

/// A write closure and the channel its caller waits on.
struct Pending<F, T, E> {
    write: F,
    /// The result of the write's latest run.
    outcome: Option<Result<T, E>>,
    answer: oneshot::Sender<Delivery<T, E>>,
}

impl<F, T, E> Pending<F, T, E>
where
    F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// `write`, ready for the writer's queue, and the channel its caller
    /// waits on.
    fn queued(write: F) -> (Box<dyn Write>, oneshot::Receiver<Delivery<T, E>>) {
        let (answer, answered) = oneshot::channel();
        let pending = Self {
            write,
            outcome: None,
            answer,
        };
        (Box::new(pending), answered)
    }
}

impl<F, T, E> Write for Pending<F, T, E>
where
    F: FnMut(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let outcome = (self.write)(conn);
        let keep = outcome.is_ok();
        self.outcome = Some(outcome);
        keep
    }

    fn answer(self: Box<Self>, batch: Result<(), CommitFailed>, relay: Option<Relay>) {
        let answer = match (batch, self.outcome) {
            // The write's own error stands whatever became of its batch:
            // its changes were undone either way.
            (_, Some(Err(error))) => Ok(Err(error)),
            (Ok(()), Some(Ok(value))) => Ok(Ok(value)),
            (Err(failed), _) => Err(failed),
            // Not run although the batch committed: cannot happen, as every
            // write of a batch is applied before it commits.
            (Ok(()), None) => Err(CommitFailed::Batch("write was not run".into())),
        };
        // A caller that stopped waiting is no error: its write is committed.
        // The relay comes back with the refused delivery and is dropped,
        // which delivers it here.
        let _ = self.answer.send(Delivery { answer, relay });
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
    ///
    /// `write` may run twice: a second time, from the state before it,
    /// when another write of its batch failed after changing rows.
    pub(crate) async fn write<F, T, E>(&self, write: F) -> Answer<T, E>
    where
        F: FnMut(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (pending, answered) = Pending::queued(write);
        self.queue
            .send(pending)
            .map_err(|_| CommitFailed::WriterGone)?;
        let Delivery { answer, relay } = answered.await.map_err(|_| CommitFailed::WriterGone)?;
        // The rest of the batch hears now, from this thread.
        drop(relay);
        answer
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
        answer_all(batch, outcome);
    }
}

/// Answers the first write's caller, which then answers the others (see
/// [`Relay`]).
fn answer_all(batch: Vec<Box<dyn Write>>, outcome: Result<(), CommitFailed>) {
    let mut writes = batch.into_iter();
    if let Some(first) = writes.next() {
        let relay = Relay {
            writes: writes.collect(),
            outcome: outcome.clone(),
        };
        first.answer(outcome, Some(relay));
    }
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction and commits it: first
/// without savepoints, then, if a write failed after it changed rows, once
/// more with a savepoint per write.
fn commit(conn: &mut Connection, batch: &mut [Box<dyn Write>]) -> Result<(), CommitFailed> {
    match run_batch(conn, batch, Isolation::None)? {
        Ran::Committed => Ok(()),
        // Each write's changes are undone by its own savepoint in this run,
        // so it always ends in a commit (or an error).
        Ran::RolledBack => run_batch(conn, batch, Isolation::SavepointPerWrite).map(drop),
    }
}

/// How the writes of one run of a batch are kept apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// One transaction, nothing between the writes.
    None,
    /// Each write in a savepoint, released when it succeeded and rolled back
    /// when it failed.
    SavepointPerWrite,
}

/// How a run of a batch ended.
enum Ran {
    Committed,
    /// A write failed after it changed rows, with no savepoint to undo them
    /// alone: the transaction was rolled back. Only without isolation.
    RolledBack,
}

fn run_batch(
    conn: &mut Connection,
    batch: &mut [Box<dyn Write>],
    isolation: Isolation,
) -> Result<Ran, CommitFailed> {
    let failed = |e: rusqlite::Error| CommitFailed::Batch(e.to_string().into());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    for write in batch.iter_mut() {
        if isolation == Isolation::SavepointPerWrite {
            // The three statements are prepared once per connection
            // (rusqlite's `Savepoint` would parse its SQL on every write).
            run_cached(&tx, "SAVEPOINT hookroom_write").map_err(failed)?;
        }
        let changes = tx.total_changes();
        let kept = write.apply(&tx);
        // Some errors (a full disk, an I/O error) make SQLite roll back the
        // whole transaction; the writes after it would each commit alone.
        if tx.is_autocommit() {
            return Err(CommitFailed::Batch(
                "SQLite rolled back the transaction after a failed write".into(),
            ));
        }
        match isolation {
            Isolation::None if !kept && tx.total_changes() != changes => {
                tx.rollback().map_err(failed)?;
                return Ok(Ran::RolledBack);
            }
            Isolation::None => {}
            Isolation::SavepointPerWrite => {
                if !kept {
                    run_cached(&tx, "ROLLBACK TO hookroom_write").map_err(failed)?;
                }
                run_cached(&tx, "RELEASE hookroom_write").map_err(failed)?;
            }
        }
    }
    tx.commit().map_err(failed)?;
    Ok(Ran::Committed)
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

    fn queued<F, T>(
        write: F,
    ) -> (
        Box<dyn Write>,
        oneshot::Receiver<Delivery<T, rusqlite::Error>>,
    )
    where
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Pending::queued(write)
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").expect("select");
        let rows = statement.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    /// Runs `batch` through [`commit`] and answers each write.
    fn commit_and_answer(conn: &mut Connection, batch: Vec<Box<dyn Write>>) {
        let mut batch = batch;
        let outcome = commit(conn, &mut batch);
        for write in batch {
            write.answer(outcome.clone(), None);
        }
    }

    type Answered = oneshot::Receiver<Delivery<usize, rusqlite::Error>>;

    /// What a caller heard, delivering any relay it was handed.
    fn heard(answered: Answered) -> Answer<usize, rusqlite::Error> {
        let Delivery { answer, relay } = answered.blocking_recv().expect("answered");
        drop(relay);
        answer
    }

    #[test]
    fn the_first_callers_relay_reaches_the_others_even_when_it_is_gone_or_never_reads() {
        for first_caller_reads in [false, true] {
            let (mut conn, _, first, first_answer) = counted_first_write();
            let (second, second_answer) =
                queued(|conn| conn.execute("INSERT INTO t (v) VALUES (2)", []));
            let (third, third_answer) =
                queued(|conn| conn.execute("INSERT INTO t (v) VALUES (3)", []));
            let mut batch = vec![first, second, third];
            let outcome = commit(&mut conn, &mut batch);
            if first_caller_reads {
                // Answered, with the relay unread: dropped with it.
                answer_all(batch, outcome);
                drop(first_answer);
            } else {
                // Gone before the answer: the send fails, the relay drops.
                drop(first_answer);
                answer_all(batch, outcome);
            }
            assert_eq!(heard(second_answer).expect("committed").expect("insert"), 1);
            assert_eq!(heard(third_answer).expect("committed").expect("insert"), 1);
            assert_eq!(values(&conn), [1, 2, 3]);
        }
    }

    /// A fresh table and a write of 1 that counts its runs.
    fn counted_first_write() -> (
        Connection,
        Arc<std::sync::atomic::AtomicUsize>,
        Box<dyn Write>,
        Answered,
    ) {
        let conn = Connection::open_in_memory().expect("in-memory database");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .expect("schema");
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let (first, first_answer) = queued(move |conn| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            conn.execute("INSERT INTO t (v) VALUES (1)", [])
        });
        (conn, runs, first, first_answer)
    }

    #[test]
    fn a_write_failing_after_a_change_is_undone_alone_by_a_second_run() {
        let (mut conn, runs, first, first_answer) = counted_first_write();
        // Changes a row, then breaks UNIQUE on the first write's value.
        let (bad, bad_answer) = queued(|conn| {
            conn.execute("INSERT INTO t (v) VALUES (2)", [])?;
            conn.execute("INSERT INTO t (v) VALUES (1)", [])
        });
        let (last, last_answer) = queued(|conn| conn.execute("INSERT INTO t (v) VALUES (3)", []));
        commit_and_answer(&mut conn, vec![first, bad, last]);
        assert_eq!(heard(first_answer).expect("committed").expect("insert"), 1);
        assert!(heard(bad_answer).expect("its own error").is_err());
        assert_eq!(heard(last_answer).expect("committed").expect("insert"), 1);
        assert_eq!(values(&conn), [1, 3]);
        // The batch ran twice: once together, once a savepoint per write.
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_write_failing_before_any_change_does_not_run_the_batch_again() {
        let (mut conn, runs, first, first_answer) = counted_first_write();
        // Its only statement fails, and SQLite undoes a failed statement.
        let (bad, bad_answer) = queued(|conn| conn.execute("INSERT INTO t (v) VALUES (1)", []));
        commit_and_answer(&mut conn, vec![first, bad]);
        assert!(heard(first_answer).expect("committed").is_ok());
        assert!(heard(bad_answer).expect("its own error").is_err());
        assert_eq!(values(&conn), [1]);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
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
