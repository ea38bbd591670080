//! [`FnAgent`]: an [`Agent`] made from an async closure.

use std::future::Future;

use async_trait::async_trait;

use super::{Agent, AgentError, AgentOutput, JobHandle};
use crate::task::Task;

/// An [`Agent`] that runs an async closure; made by [`agent_fn`].
///
/// The closure gets the task and a clone of the job handle (clones share
/// the claim).
///
/// ```
/// use hookroom::agent::{Agent, AgentError, AgentOutput, agent_fn};
/// use hookroom::task::Task;
///
/// let agent = agent_fn(|task: Task, _job| async move {
///     if task.title.is_empty() {
///         return Err(AgentError::permanent("task has no title"));
///     }
///     Ok(AgentOutput::new().with_result(serde_json::json!({"title": task.title})))
/// })
/// .with_name("echo")
/// .with_capabilities(["text"]);
/// assert_eq!(agent.name(), "echo");
/// assert_eq!(agent.capabilities(), ["text"]);
/// ```
pub struct FnAgent<F> {
    name: String,
    capabilities: Vec<String>,
    run: F,
}

/// Wraps an async closure `|task, job| async move { .. }` as an [`Agent`]
/// named `fn-agent` with no capabilities.
pub fn agent_fn<F, Fut>(run: F) -> FnAgent<F>
where
    F: Fn(Task, JobHandle) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AgentOutput, AgentError>> + Send + 'static,
{
    FnAgent {
        name: "fn-agent".to_owned(),
        capabilities: Vec::new(),
        run,
    }
}

impl<F> FnAgent<F> {
    /// Sets the name recorded as `claimed_by`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the capabilities the agent declares.
    pub fn with_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }
}

impl<F> std::fmt::Debug for FnAgent<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnAgent")
            .field("name", &self.name)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut> Agent for FnAgent<F>
where
    F: Fn(Task, JobHandle) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AgentOutput, AgentError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Vec<String> {
        self.capabilities.clone()
    }

    async fn handle(&self, task: Task, job: &JobHandle) -> Result<AgentOutput, AgentError> {
        (self.run)(task, job.clone()).await
    }
}
