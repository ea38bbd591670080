//! # hookroom
//!
//! Signed webhooks in, tasks in rooms that agents claim out, and every task's
//! life reported as job status.
//!
//! ```text
//! HTTP request ─► WebhookService (tower)
//!                  1. size limit, method, source lookup
//!                  2. Verifier::verify(headers, raw body)    verify/
//!                  3. Source::parse → Verified<Event>         source/
//!                  4. Router::route → Route | ignored         route/
//!                  5. TaskStore::insert (idempotent)          task/
//!                  6. StatusSink: job PENDING                 status/
//!                  7. 202 {task_id, room}                     service/
//! Agent runtime ─► TaskStore::claim → Agent::handle           agent/
//! ```
//!
//! Every stage is a trait with an in-memory implementation, so any one can be
//! swapped: [`verify::Verifier`], [`route::Router`], [`task::TaskStore`],
//! [`agent::Agent`] and [`status::StatusSink`].
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `memory` | yes | in-memory task store and status sink |
//! | `sqlite` | no | `task::SqliteTaskStore`, a durable embedded store (bundled SQLite) |
//! | `postgres` | no | `task::PostgresTaskStore`, shared by many gateways and agents |
//! | `integration` | no | the public `conformance` suites for third-party backends |
//! | `full` | no | all of the above |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
pub mod clock;
#[cfg(any(test, feature = "integration"))]
#[cfg_attr(docsrs, doc(cfg(feature = "integration")))]
pub mod conformance;
pub mod error_code;
pub mod event;
pub mod lifecycle;
pub mod route;
pub mod service;
pub mod source;
pub mod status;
pub mod task;
pub mod verify;

pub use error_code::ErrorCode;
pub use event::{Event, Verified};
pub use lifecycle::JobStatus;
