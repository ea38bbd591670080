//! Everything on SQLite (feature `sqlite`, bundled: nothing to install):
//!
//! - [`SqliteTaskStore`]: a durable, embedded
//!   [`TaskStore`](crate::task::TaskStore) on one file;
//! - [`SqliteJobRegistry`]: a durable [`JobRegistry`](crate::status::JobRegistry),
//!   in its own file or [beside](SqliteJobRegistry::beside) a task store's;
//! - the durable queue of
//!   [`OutboxStatusSink::sqlite`](crate::status::OutboxStatusSink::sqlite);
//! - group commit: the writes of concurrent callers share one transaction
//!   and one flush to disk;
//! - checkpoints of a task store's write-ahead log by a thread of their
//!   own, out of the commits' way.
//!
//! The traits stay with their models, in [`task`](crate::task) and
//! [`status`](crate::status).

mod checkpoint;
mod group_commit;
mod job_registry;
mod outbox;
mod task_store;

pub use job_registry::{DEFAULT_MAX_HISTORY, SqliteJobRegistry};
pub(crate) use outbox::SqliteOutbox;
pub use task_store::SqliteTaskStore;
