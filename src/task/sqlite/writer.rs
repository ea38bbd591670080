//! The group-commit writer: one thread that stores every insert waiting at
//! the time in one transaction, and answers each caller after the commit.
//!
//! Batches form by themselves: the thread takes what is queued, commits, and
//! meanwhile new inserts queue for the next batch. Nothing waits for a batch
//! to fill.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{MAX_INSERT_BATCH, backend, insert_in, lock};
use crate::clock::Clock;
use crate::task::{Inserted, NewTask, StoreError};

/// An insert waiting for its batch, and where its answer goes.
pub(super) struct PendingInsert {
    pub(super) task: NewTask,
    pub(super) answer: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// The writer thread is gone (it only stops when every store handle is
/// dropped, or if it panicked).
#[derive(Debug)]
pub(super) struct WriterGone;

impl std::fmt::Display for WriterGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the SQLite insert writer has stopped")
    }
}

impl std::error::Error for WriterGone {}

/// Starts the writer on `conn`; it runs until every sender is dropped.
pub(super) fn start(
    conn: Arc<Mutex<Connection>>,
    clock: Arc<dyn Clock>,
) -> Result<Sender<PendingInsert>, StoreError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hookroom-sqlite-writer".to_owned())
        .spawn(move || run(&conn, &*clock, &receiver))
        .map_err(backend)?;
    Ok(sender)
}

fn run(conn: &Mutex<Connection>, clock: &dyn Clock, queue: &Receiver<PendingInsert>) {
    // `recv` fails once every store handle (and so every sender) is gone.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_INSERT_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit(conn, clock, batch);
    }
}

/// Stores `batch` in one transaction and answers each insert: its own
/// result once the commit succeeded, the commit's error otherwise.
fn commit(conn: &Mutex<Connection>, clock: &dyn Clock, batch: Vec<PendingInsert>) {
    let mut guard = lock(conn);
    let (answers, results) = match store(&mut guard, clock, batch) {
        Ok(done) => done,
        Err((answers, error)) => {
            // One error for all: each caller gets its own copy of the text.
            let text = error.to_string();
            let results = answers.iter().map(|_| Err(batch_failed(&text))).collect();
            (answers, results)
        }
    };
    drop(guard);
    for (answer, result) in answers.into_iter().zip(results) {
        // A caller that stopped waiting (its request was cancelled) is no
        // error: its task is stored and a redelivery finds it.
        let _ = answer.send(result);
    }
}

type Answers = Vec<oneshot::Sender<Result<Inserted, StoreError>>>;

/// Runs the batch's inserts in one `BEGIN IMMEDIATE` transaction. An insert
/// that fails on its own (a bad value) fails alone; the others commit.
#[allow(clippy::type_complexity)]
fn store(
    conn: &mut Connection,
    clock: &dyn Clock,
    batch: Vec<PendingInsert>,
) -> Result<(Answers, Vec<Result<Inserted, StoreError>>), (Answers, StoreError)> {
    let (tasks, answers): (Vec<NewTask>, Answers) = batch
        .into_iter()
        .map(|pending| (pending.task, pending.answer))
        .unzip();
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Err((answers, backend(e))),
    };
    // Read once the write lock is held, as every operation does.
    let now = clock.now();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        // A savepoint per insert, so one that fails leaves no half row and
        // does not take the batch down with it.
        let result = match tx.savepoint() {
            Ok(mut savepoint) => match insert_in(&savepoint, task, now) {
                Ok(inserted) => savepoint.commit().map(|()| inserted).map_err(backend),
                Err(e) => {
                    let _ = savepoint.rollback();
                    Err(e)
                }
            },
            Err(e) => Err(backend(e)),
        };
        results.push(result);
    }
    match tx.commit() {
        Ok(()) => Ok((answers, results)),
        Err(e) => Err((answers, backend(e))),
    }
}

/// A copy of a batch's commit error for one of its callers.
fn batch_failed(text: &str) -> StoreError {
    StoreError::Backend {
        store: super::STORE,
        source: format!("group commit failed: {text}").into(),
    }
}
