//! The domain operations every entry point shares: one function (or small
//! type) per operation, so the webhook service, the Routes API, the Task
//! API, the agent runtime and the MCP server cannot drift apart.
//!
//! | operation | here | called by |
//! | --- | --- | --- |
//! | deliver an event: route it, store a new task, create its job | [`Deliverer`] | [`WebhookService`](crate::service::WebhookService), the Routes API's replay ([`RoutesApi`](crate::service::RoutesApi)) |
//! | change the routes: take the change lock, write the routes file when there is one, apply | [`RouteChanges`] | the Routes API, the MCP route tools |
//! | report a task change to its job, creating the job when the sink never heard of it | [`report_to_job`] | the agent runtime, the Task API, the MCP task tools |
//!
//! Each returns what went wrong as an error enum ([`RouteChangeError`],
//! [`JobReportError`], [`StoreError`](crate::task::StoreError)); the entry
//! point decides how to answer it.

mod deliver;
mod job_report;
mod route_change;

pub use deliver::{Delivered, Deliverer};
pub use job_report::{JobReportError, report_to_job};
pub use route_change::{RouteChangeError, RouteChanges};
