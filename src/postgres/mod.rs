//! Everything on PostgreSQL (feature `postgres`), for several gateways and
//! many agents sharing one database:
//!
//! - [`PostgresTaskStore`]: a [`TaskStore`](crate::task::TaskStore) that
//!   claims with `FOR UPDATE SKIP LOCKED` and announces changes with
//!   LISTEN/NOTIFY;
//! - [`PostgresJobRegistry`]: a [`JobRegistry`](crate::status::JobRegistry);
//! - what both use: group commit of inserts and job creations in batches,
//!   TLS on rustls as libpq's `sslmode` says, and request
//!   pipelining on one connection.
//!
//! The traits stay with their models, in [`task`](crate::task) and
//! [`status`](crate::status).

mod batch;
mod job_registry;
mod pipeline;
mod task_store;
mod tls;

pub use job_registry::PostgresJobRegistry;
pub use task_store::{PostgresTaskStore, PostgresTaskStoreBuilder};
