//! HTTP clients (feature `http-client`), on hyper-util's pooled client with
//! rustls (ring) for `https://`:
//!
//! - [`HttpTaskStore`]: a [`TaskStore`](crate::task::TaskStore) served by a
//!   Task API ([`TaskApi`](crate::service::TaskApi));
//! - [`HttpStatusSink`]: a [`StatusSink`](crate::status::StatusSink) that
//!   pushes job status to a Jobs API ([`JobsApi`](crate::service::JobsApi));
//! - [`HttpAgent`]: an [`Agent`](crate::agent::Agent) that hands each task to
//!   an HTTP endpoint, signed with Standard Webhooks;
//! - [`RetryPolicy`]: how the status sink and the alert webhook
//!   ([`WebhookAlertSink`](crate::alert::WebhookAlertSink)) retry a failed
//!   request.
//!
//! The request and response bodies they exchange with the servers are the
//! ones the servers use, from [`api`](crate::api).

mod agent;
mod body;
pub(crate) mod client;
pub(crate) mod retry;
mod status_sink;
mod task_store;
#[cfg(test)]
mod tests;

pub use agent::{AgentRequest, DEFAULT_AGENT_TIMEOUT, HttpAgent, HttpAgentError, MAX_INPUT_ROUNDS};
pub use body::{DEFAULT_MAX_RESPONSE_BYTES, ResponseBodyError};
pub use retry::RetryPolicy;
pub use status_sink::{HttpSinkBuildError, HttpStatusSink, HttpStatusSinkBuilder};
pub use task_store::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_EVENT_BYTES, DEFAULT_REQUEST_TIMEOUT, HTTP_STORE,
    HttpStoreError, HttpTaskStore, HttpTaskStoreBuilder,
};
