//! [`MeteredTaskStore`]: any [`TaskStore`], with its calls measured.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{
    ClaimRequest, ClaimToken, Claimed, FailAction, Inserted, NewTask, StoreError, Task, TaskId,
    TaskQuery, TaskStore,
};
use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;
use crate::telemetry;

/// Wraps a [`TaskStore`] and records, through the [`metrics`] facade, how
/// long each call takes, which calls fail and with what code, how long tasks
/// wait for their claim and how long jobs take to finish (see
/// [`telemetry`](crate::telemetry) for the names).
///
/// It changes nothing else: every call goes to the inner store as it is.
///
/// ```
/// use std::sync::Arc;
/// use hookroom::task::{InMemoryTaskStore, MeteredTaskStore, TaskStore};
///
/// let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
/// let store: Arc<dyn TaskStore> = Arc::new(MeteredTaskStore::new(store));
/// ```
#[derive(Debug, Clone)]
pub struct MeteredTaskStore {
    inner: Arc<dyn TaskStore>,
}

impl MeteredTaskStore {
    /// Measures `inner`.
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        Self { inner }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn TaskStore> {
        &self.inner
    }
}

/// Runs `call`, recording its duration and, when it fails, its error code.
async fn measured<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    ::metrics::histogram!(telemetry::STORE_OPERATION_DURATION, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        ::metrics::counter!(
            telemetry::STORE_OPERATION_ERRORS,
            "operation" => operation,
            "code" => error.code(),
        )
        .increment(1);
    }
    result
}

/// Seconds from `from` to `to`, zero if the clock ran backwards.
fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    Duration::try_from(to - from)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn claimed(task: &Task) {
    ::metrics::histogram!(telemetry::CLAIM_LATENCY)
        .record(seconds_between(task.created_at, task.updated_at));
}

fn finished(task: &Task) {
    if task.status.is_terminal() {
        let status = task.status.as_str();
        ::metrics::histogram!(telemetry::JOB_DURATION, "status" => status)
            .record(seconds_between(task.created_at, task.updated_at));
        ::metrics::counter!(telemetry::TASKS_FINISHED, "status" => status).increment(1);
    }
}

#[async_trait]
impl TaskStore for MeteredTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        measured("insert", self.inner.insert(task)).await
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        measured("get", self.inner.get(id)).await
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        measured("list", self.inner.list(query)).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let result = measured("claim", self.inner.claim(request)).await;
        if let Ok(Some(claim)) = &result {
            claimed(&claim.task);
        }
        result
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let result = measured("claim_task", self.inner.claim_task(id, request)).await;
        if let Ok(claim) = &result {
            claimed(&claim.task);
        }
        result
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        measured("heartbeat", self.inner.heartbeat(id, token, lease)).await
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let task = measured("complete", self.inner.complete(id, token, result)).await?;
        finished(&task);
        Ok(task)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let task = measured("fail", self.inner.fail(id, token, reason, action)).await?;
        finished(&task);
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        measured("release", self.inner.release(id, token)).await
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        measured("request_input", self.inner.request_input(id, token, prompt)).await
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        measured("provide_input", self.inner.provide_input(id, input)).await
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        measured("take_input", self.inner.take_input(id, token)).await
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let expired = measured("expire_pending", self.inner.expire_pending()).await?;
        for task in &expired {
            debug_assert_eq!(task.status, JobStatus::Failed);
            finished(task);
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        self.inner.watch(room)
    }
}
