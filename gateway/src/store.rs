//! `--store`: the task store a spec names, with the job registry kept
//! beside it (in the same SQLite file or PostgreSQL database, or in memory)
//! and its purge for retention.

use std::sync::Arc;

use hookroom::status::JobAnnouncer;
use hookroom::task::{InMemoryTaskStore, TaskEvents, TaskStore};

use crate::jobs;
use hookroom::retention;

/// What `--store` opened.
pub(crate) struct Opened {
    /// The task store.
    pub(crate) store: Arc<dyn TaskStore>,
    /// Its purge, for retention.
    pub(crate) purge: retention::PurgeBatch,
    /// The job registry beside it.
    pub(crate) jobs: jobs::Registries,
    /// Whether the store publishes its changes to `events` itself
    /// (PostgreSQL, through LISTEN/NOTIFY); otherwise the caller wraps it.
    pub(crate) announces: bool,
    /// Where job changes are announced: `events`, or on PostgreSQL the
    /// store's NOTIFY, which every gateway on the database hears.
    pub(crate) job_announcer: Arc<dyn JobAnnouncer>,
}

/// The store kinds, for error messages.
const KINDS: &str = "`sqlite:PATH`, `memory` or `postgres://…`";

/// The spec as it may be shown: a URL may hold a password, so only its
/// scheme is repeated.
pub(crate) fn shown(spec: &str) -> &str {
    spec.split_once("://").map_or(spec, |(scheme, _)| scheme)
}

/// Opens the store `spec` names. On PostgreSQL the store announces every
/// change with NOTIFY and hears everyone's (its own included) on one
/// listening connection, published to `events`: the events of
/// `/api/events` and waiting claims cross gateways.
pub(crate) async fn open(spec: &str, events: &Arc<TaskEvents>) -> Result<Opened, String> {
    if spec == "memory" {
        let store = Arc::new(InMemoryTaskStore::new());
        return Ok(Opened {
            store: store.clone(),
            purge: retention::memory(store),
            jobs: jobs::memory(),
            announces: false,
            job_announcer: events.clone(),
        });
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        let store = hookroom::sqlite::SqliteTaskStore::open(path)
            .map_err(|e| format!("--store {spec}: {e}"))?;
        return Ok(Opened {
            jobs: jobs::sqlite(&store)?,
            store: Arc::new(store.clone()),
            purge: retention::sqlite(store),
            announces: false,
            job_announcer: events.clone(),
        });
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        // The URL may hold a password: errors name the store, not the URL.
        if let Some((mode, default)) = hookroom::postgres::sslmode_in_force(spec) {
            let why = if default {
                " (the default for this host; set sslmode in the URL to choose)"
            } else {
                ""
            };
            println!("postgres TLS: sslmode={mode}{why}");
        }
        let store = hookroom::postgres::PostgresTaskStore::builder(spec)
            .with_events(Arc::clone(events))
            .build()
            .await
            .map_err(|e| format!("--store postgres: {e}"))?;
        return Ok(Opened {
            jobs: jobs::postgres(&store).await?,
            store: Arc::new(store.clone()),
            job_announcer: Arc::new(store.clone()),
            purge: retention::postgres(store),
            announces: true,
        });
    }
    Err(format!("--store {}: unsupported; use {KINDS}", shown(spec)))
}
