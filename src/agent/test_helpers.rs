//! Fixtures shared by the agent module's unit tests.

use std::sync::Arc;
use std::time::Duration;

use super::{AgentOutput, Worker, WorkerBuilder, agent_fn};
use crate::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};

/// A store that has nothing: enough to start and stop a worker.
#[derive(Debug)]
pub(crate) struct EmptyStore;

#[async_trait::async_trait]
impl TaskStore for EmptyStore {
    async fn insert(&self, _: NewTask) -> Result<Inserted, StoreError> {
        unreachable!("not used")
    }
    async fn get(&self, _: &TaskId) -> Result<Option<Task>, StoreError> {
        Ok(None)
    }
    async fn list(&self, _: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        Ok(Vec::new())
    }
    async fn claim(&self, _: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        Ok(None)
    }
    async fn claim_task(&self, id: &TaskId, _: &ClaimRequest) -> Result<Claimed, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn heartbeat(
        &self,
        id: &TaskId,
        _: &ClaimToken,
        _: Duration,
    ) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn complete(
        &self,
        id: &TaskId,
        _: &ClaimToken,
        _: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn fail(
        &self,
        id: &TaskId,
        _: &ClaimToken,
        _: &str,
        _: FailAction,
    ) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn release(&self, id: &TaskId, _: &ClaimToken) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn request_input(
        &self,
        id: &TaskId,
        _: &ClaimToken,
        _: &str,
    ) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn provide_input(&self, id: &TaskId, _: serde_json::Value) -> Result<Task, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn take_input(
        &self,
        id: &TaskId,
        _: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Err(StoreError::NotFound { id: id.clone() })
    }
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        Ok(Vec::new())
    }
}

/// A builder for a worker with a no-op agent named `noop` over [`EmptyStore`].
pub(crate) fn noop_builder() -> WorkerBuilder {
    let agent = agent_fn(|_, _| async { Ok(AgentOutput::new()) }).with_name("noop");
    Worker::builder(Arc::new(agent), Arc::new(EmptyStore))
}
