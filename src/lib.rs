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
//! # Quick start: mount, store, worker
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use hookroom::JobStatus;
//! use hookroom::agent::{AgentOutput, Worker, agent_fn};
//! use hookroom::route::{RoutesConfig, RuleRouter};
//! use hookroom::service::WebhookService;
//! use hookroom::source::GithubSource;
//! use hookroom::task::{InMemoryTaskStore, Task, TaskStore};
//! use hookroom::verify::{GithubVerifier, Secrets, github};
//! use tower::ServiceExt;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Where deliveries go: GitHub pull request events to the `pr-review` room.
//! let routes = RoutesConfig::from_json(
//!     r#"{"routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review"}]}"#,
//! )?;
//! let router = Arc::new(RuleRouter::from_config(&routes)?);
//! let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
//!
//! // 1. Mount: one tower service. In axum,
//! //    `Router::new().route_service("/hooks/github", service.for_source("github").unwrap())`;
//! //    `/webhook/{source}` works without `for_source`.
//! let secret = "It's a Secret to Everybody";
//! let service = WebhookService::builder(router, store.clone())
//!     .source(
//!         "github",
//!         Arc::new(GithubVerifier::new(Secrets::try_from(secret)?)),
//!         Arc::new(GithubSource::new()),
//!     )
//!     .build();
//!
//! // 2. A signed delivery arrives and is stored before the 202.
//! let body = r#"{"action":"opened","pull_request":{"number":42,"title":"Fix","html_url":"https://github.com/o/r/pull/42"},"repository":{"full_name":"o/r"}}"#;
//! let request = http::Request::post("/webhook/github")
//!     .header("x-github-event", "pull_request")
//!     .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
//!     .header("x-hub-signature-256", github::sign(secret.as_bytes(), body.as_bytes()))
//!     .header("content-type", "application/json")
//!     .body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), 202);
//!
//! // 3. A worker claims it from the room and runs the agent.
//! let agent = agent_fn(|task: Task, _job| async move {
//!     Ok(AgentOutput::new().with_result(serde_json::json!({"reviewed": task.title})))
//! });
//! let worker = Worker::builder(Arc::new(agent), store.clone())
//!     .room("pr-review")
//!     .poll_interval(Duration::from_millis(10))
//!     .build()?
//!     .spawn();
//! let task = loop {
//!     let tasks = store.list(&Default::default()).await?;
//!     if tasks.first().is_some_and(|t| t.status == JobStatus::Done) {
//!         break tasks[0].clone();
//!     }
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//! };
//! assert_eq!(task.room, "pr-review");
//! worker.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `memory` | yes | in-memory task store and status sink |
//! | `sqlite` | no | `sqlite::SqliteTaskStore`, a durable embedded store, and `sqlite::SqliteJobRegistry` (bundled SQLite) |
//! | `postgres` | no | `postgres::PostgresTaskStore`, shared by many gateways and agents (LISTEN/NOTIFY, TLS), and `postgres::PostgresJobRegistry` |
//! | `integration` | no | the public `conformance` suites for third-party backends |
//! | `http-client` | no | `http::HttpTaskStore`, `http::HttpAgent`, `http::HttpStatusSink` and `alert::WebhookAlertSink`, on hyper-util's client with rustls |
//! | `mcp` | no | `mcp`: an MCP server (rmcp) over the task store, router and job registry |
//! | `dashboard` | no | `dashboard::Dashboard`: the web page over the APIs, a tower service with its assets embedded |
//! | `full` | no | all of the above |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
pub mod alert;
pub mod api;
pub mod auth;
pub mod clock;
#[cfg(any(test, feature = "integration"))]
#[cfg_attr(docsrs, doc(cfg(feature = "integration")))]
pub mod conformance;
#[cfg(feature = "dashboard")]
#[cfg_attr(docsrs, doc(cfg(feature = "dashboard")))]
pub mod dashboard;
pub mod error_code;
pub mod event;
#[cfg(feature = "http-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-client")))]
pub mod http;
pub mod lifecycle;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod ops;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod retention;
pub mod route;
pub mod service;
pub mod source;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
pub mod status;
pub mod task;
pub mod telemetry;
pub mod verify;

pub use error_code::ErrorCode;
pub use event::{Event, Verified};
pub use lifecycle::JobStatus;
