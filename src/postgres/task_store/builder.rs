//! [`PostgresTaskStoreBuilder`]: the settings of a [`PostgresTaskStore`],
//! and connecting.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use super::statements::{Statements, valid_identifier};
use super::{
    DEFAULT_POOL_SIZE, DEFAULT_TABLE, PostgresTaskStore, TimeSource, backend, listen, tls,
};
use crate::clock::Clock;
use crate::postgres::batch::{Batcher, TaskSql};
use crate::task::{StoreError, TaskEvents};

/// Builds a [`PostgresTaskStore`].
#[derive(Clone)]
pub struct PostgresTaskStoreBuilder {
    url: String,
    table: String,
    pool_size: usize,
    time: TimeSource,
    notify: bool,
    events: Option<Arc<TaskEvents>>,
}

impl std::fmt::Debug for PostgresTaskStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTaskStoreBuilder")
            .field("url", &"[redacted]")
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("notify", &self.notify)
            .field("events", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresTaskStoreBuilder {
    /// Starts from a connection string (`postgres://user:pass@host:port/db`
    /// or `host=… user=…`). TLS follows libpq's `sslmode` (`disable`,
    /// `prefer`, the default, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert=PATH` (PEM CA certificates; without it `verify-ca` and
    /// `verify-full` trust the Mozilla roots). `require` encrypts without
    /// verifying unless `sslrootcert` is given; `verify-full` also checks
    /// that the certificate names the host.
    pub(crate) fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            table: DEFAULT_TABLE.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            time: TimeSource::Database,
            notify: true,
            events: None,
        }
    }

    /// Table to keep tasks in (default `hookroom_tasks`): lowercase ASCII
    /// letters, digits and `_`, starting with a letter or `_`.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Maximum pooled connections (default 16).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Clock for every timestamp the store writes and compares, instead of
    /// the database's (the default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.time = TimeSource::Clock(clock);
        self
    }

    /// Whether every change is announced with `NOTIFY` (default `true`).
    /// Turn it off only when no process listens: each change then costs
    /// one statement less (the `NOTIFY`, sent after its commit). A store
    /// built [`with_events`](Self::with_events)
    /// still hears the others' announcements.
    pub fn with_notifications(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Keeps one extra connection running `LISTEN` and publishes every
    /// change announced by any store on this database and table (this one
    /// included) to `events`; [`watch`](crate::task::TaskStore::watch) is then fed from
    /// it. After losing that connection the store reconnects with backoff
    /// and then marks a gap in `events` ([`TaskEvents::mark_gap`]: every
    /// watcher is woken once, every subscription ends and resumes with
    /// [`missed`](crate::task::Subscription::missed)), since announcements made
    /// meanwhile were not heard.
    pub fn with_events(mut self, events: Arc<TaskEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Connects and creates the table and indexes if they do not exist;
    /// with [`with_events`](Self::with_events), returns once listening.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for a bad connection string, a bad table name,
    /// an unknown `sslmode`, an unreadable `sslrootcert`, an unreachable
    /// server, a refused certificate, a failed migration or a failed
    /// `LISTEN`.
    pub async fn build(self) -> Result<PostgresTaskStore, StoreError> {
        if !valid_identifier(&self.table) {
            return Err(backend(InvalidTableName));
        }
        let (config, tls) = tls::connection(&self.url).map_err(backend)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .build()
            .map_err(backend)?;
        let batcher = Batcher::start(pool.clone(), Some(TaskSql::new(&self.table)));
        let mut store = PostgresTaskStore {
            batcher,
            pool,
            time: self.time,
            sql: Arc::new(Statements::new(&self.table)),
            notify: self.notify,
            events: None,
            _listener: None,
            table: self.table.into(),
        };
        store.migrate().await?;
        if let Some(events) = self.events {
            let listener =
                listen::start(config, tls, store.table.to_string(), Arc::clone(&events)).await?;
            store.events = Some(events);
            store._listener = Some(Arc::new(listener));
        }
        Ok(store)
    }
}

/// The table name given to the builder is not a plain SQL identifier.
#[derive(Debug)]
struct InvalidTableName;

impl std::fmt::Display for InvalidTableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("table name must be lowercase ASCII letters, digits and '_'")
    }
}

impl std::error::Error for InvalidTableName {}
