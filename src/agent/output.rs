//! What an agent returns: [`AgentOutput`] on success, [`AgentError`] on failure.

use serde_json::Value;

use super::JobError;
use crate::error_code::ErrorCode;
use crate::status::Artifact;

/// A boxed error from an agent's own code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a successful run: completes the task `DONE`.
///
/// ```
/// use hookroom::agent::AgentOutput;
/// use hookroom::status::Artifact;
///
/// let output = AgentOutput::new()
///     .with_result(serde_json::json!({"labels": ["bug"]}))
///     .with_message("tagged")
///     .with_artifact(Artifact { name: "report.md".into(), ..Artifact::default() });
/// assert_eq!(output.artifacts.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct AgentOutput {
    /// Stored as the task's result.
    pub result: Option<Value>,
    /// Sent to the status sink as the job's summary (the result when `None`).
    pub summary: Option<Value>,
    /// Final artifacts, sent with the completion.
    pub artifacts: Vec<Artifact>,
    /// Human completion message.
    pub message: Option<String>,
}

impl AgentOutput {
    /// An empty output: no result, no summary, no artifacts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the task's result.
    pub fn with_result(mut self, result: Value) -> Self {
        self.result = Some(result);
        self
    }

    /// Sets the job's summary.
    pub fn with_summary(mut self, summary: Value) -> Self {
        self.summary = Some(summary);
        self
    }

    /// Adds a final artifact.
    pub fn with_artifact(mut self, artifact: Artifact) -> Self {
        self.artifacts.push(artifact);
        self
    }

    /// Sets the completion message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Why a run failed, and so what the worker does next.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError {
    /// A passing failure (upstream 5xx, network, timeout of a call): the
    /// worker retries with backoff until the attempts run out.
    Retryable(BoxError),
    /// A failure another try cannot fix (bad input, 4xx): the task fails
    /// at once.
    Permanent(BoxError),
    /// The job handle failed: a lost lease ends the run without touching
    /// the task; a store failure is retried.
    Job(JobError),
}

impl AgentError {
    /// A failure worth retrying. Takes an error or a message.
    pub fn retryable(error: impl Into<BoxError>) -> Self {
        Self::Retryable(error.into())
    }

    /// A failure not worth retrying. Takes an error or a message.
    pub fn permanent(error: impl Into<BoxError>) -> Self {
        Self::Permanent(error.into())
    }

    /// Whether the worker may try the task again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Retryable(_) => true,
            Self::Permanent(_) => false,
            Self::Job(err) => !matches!(err, JobError::LeaseLost { .. }),
        }
    }
}

impl From<JobError> for AgentError {
    fn from(err: JobError) -> Self {
        Self::Job(err)
    }
}

impl ErrorCode for AgentError {
    fn code(&self) -> &'static str {
        match self {
            Self::Retryable(_) => "agent_retryable",
            Self::Permanent(_) => "agent_permanent",
            Self::Job(err) => err.code(),
        }
    }
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retryable(err) | Self::Permanent(err) => write!(f, "{err}"),
            Self::Job(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for AgentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Retryable(err) | Self::Permanent(err) => Some(err.as_ref()),
            Self::Job(err) => Some(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{StoreError, TaskId};

    #[test]
    fn retryability_follows_the_variant() {
        assert!(AgentError::retryable("upstream 503").is_retryable());
        assert!(!AgentError::permanent("bad input").is_retryable());
        let lost = AgentError::from(JobError::from(StoreError::NotHeld {
            id: TaskId::from("t"),
        }));
        assert!(!lost.is_retryable());
        let store = AgentError::from(JobError::from(StoreError::NotFound {
            id: TaskId::from("t"),
        }));
        assert!(store.is_retryable());
    }

    #[test]
    fn every_variant_has_a_code_and_formats() {
        let errors = [
            AgentError::retryable("upstream 503"),
            AgentError::permanent(String::from("bad input")),
            AgentError::Job(JobError::LeaseLost {
                id: TaskId::from("t"),
            }),
        ];
        let codes: Vec<_> = errors.iter().map(ErrorCode::code).collect();
        assert_eq!(codes, ["agent_retryable", "agent_permanent", "lease_lost"]);
        assert_eq!(errors[0].to_string(), "upstream 503");
        assert!(std::error::Error::source(&errors[1]).is_some());
        for err in &errors {
            assert!(!format!("{err:?}").is_empty());
        }
    }
}
