//! The request and response bodies of the HTTP APIs, defined once for both
//! sides: the servers in [`service`](crate::service) and the clients
//! (`HttpTaskStore`, `HttpStatusSink`, feature `http-client`) read and
//! write the same types, so the two cannot drift.
//!
//! - [`task`]: the Task API (rooms, claims, task changes);
//! - [`jobs`]: the Jobs API (job status).

pub mod jobs;
pub mod task;
