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

/// The `sslmode` a connection string connects with, and whether it is the
/// default (`prefer` for loopback hosts and Unix sockets, `verify-full` for
/// any other host) rather than written in the string; `None` for a string
/// that cannot be read (connecting says why). For the line a server logs
/// when it starts.
///
/// ```
/// use hookroom::postgres::sslmode_in_force;
///
/// assert_eq!(sslmode_in_force("postgres://u@db.example.com/app"), Some(("verify-full", true)));
/// assert_eq!(sslmode_in_force("postgres://u@127.0.0.1/app"), Some(("prefer", true)));
/// assert_eq!(sslmode_in_force("postgres://u@db.internal/app?sslmode=require"), Some(("require", false)));
/// ```
pub fn sslmode_in_force(url: &str) -> Option<(&'static str, bool)> {
    tls::mode_in_force(url).ok()
}
