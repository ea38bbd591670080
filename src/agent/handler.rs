//! The [`Agent`] trait: what does the work of one claimed task.

use std::sync::Arc;

use async_trait::async_trait;

use super::{AgentError, AgentOutput, JobHandle};
use crate::task::Task;

/// Handles one claimed task.
///
/// The [`Worker`](super::Worker) claims a task, calls [`handle`](Self::handle)
/// under a timeout while it heartbeats the claim, and turns the result into
/// the task's end: [`AgentOutput`] completes it `DONE`; an [`AgentError`]
/// retries it ([`AgentError::Retryable`]) or fails it for good
/// ([`AgentError::Permanent`]).
///
/// # Contract
/// - `handle` may be dropped at any `.await` (timeout, lost lease, shutdown
///   past the grace period): keep side effects idempotent, since the task
///   may run again.
/// - Progress, artifacts and questions go through the [`JobHandle`]; status
///   sink failures are logged by the handle and never reach the agent.
/// - Wrappers (`Arc<A>`, `Box<A>`) forward every method.
#[async_trait]
pub trait Agent: std::fmt::Debug + Send + Sync + 'static {
    /// Name recorded as the task's `claimed_by`.
    fn name(&self) -> &str;

    /// Capabilities this agent has; it only claims tasks whose
    /// `required_capabilities` are all among them.
    fn capabilities(&self) -> Vec<String> {
        Vec::new()
    }

    /// Does the work of one task.
    async fn handle(&self, task: Task, job: &JobHandle) -> Result<AgentOutput, AgentError>;
}

macro_rules! forward_agent {
    ($($wrapper:ident),*) => {$(
        #[deny(clippy::missing_trait_methods)]
        #[async_trait]
        impl<A: Agent + ?Sized> Agent for $wrapper<A> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn capabilities(&self) -> Vec<String> {
                (**self).capabilities()
            }
            async fn handle(&self, task: Task, job: &JobHandle) -> Result<AgentOutput, AgentError> {
                (**self).handle(task, job).await
            }
        }
    )*};
}

forward_agent!(Arc, Box);
