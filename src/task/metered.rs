//! [`MeteredTaskStore`]: any [`TaskStore`], with its calls measured.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use metrics::{Counter, Histogram};
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
    handles: Arc<Handles>,
}

impl MeteredTaskStore {
    /// Measures `inner`.
    ///
    /// The metric handles are looked up in the installed recorder at their
    /// first use and kept, so install the recorder before the first call.
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            inner,
            handles: Arc::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn TaskStore> {
        &self.inner
    }

    /// Runs `call`, recording its duration and, when it fails, its error
    /// code.
    async fn measured<T>(
        &self,
        operation: Op,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.handles
            .duration(operation)
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            // Failures are rare enough to look their counter up each time.
            ::metrics::counter!(
                telemetry::STORE_OPERATION_ERRORS,
                "operation" => operation.as_str(),
                "code" => error.code(),
            )
            .increment(1);
        }
        result
    }

    fn claimed(&self, task: &Task) {
        self.handles
            .claim_latency
            .get_or_init(|| ::metrics::histogram!(telemetry::CLAIM_LATENCY))
            .record(seconds_between(task.created_at, task.updated_at));
    }

    fn finished(&self, task: &Task) {
        if let Some(ended) = self.handles.ended(task.status) {
            ended
                .duration
                .record(seconds_between(task.created_at, task.updated_at));
            ended.count.increment(1);
        }
    }
}

/// The store calls measured, by their `operation` label.
#[derive(Debug, Clone, Copy)]
enum Op {
    Insert,
    Get,
    List,
    Claim,
    ClaimTask,
    Heartbeat,
    Complete,
    Fail,
    Release,
    RequestInput,
    ProvideInput,
    TakeInput,
    ExpirePending,
}

impl Op {
    const ALL: [Op; 13] = [
        Op::Insert,
        Op::Get,
        Op::List,
        Op::Claim,
        Op::ClaimTask,
        Op::Heartbeat,
        Op::Complete,
        Op::Fail,
        Op::Release,
        Op::RequestInput,
        Op::ProvideInput,
        Op::TakeInput,
        Op::ExpirePending,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Get => "get",
            Op::List => "list",
            Op::Claim => "claim",
            Op::ClaimTask => "claim_task",
            Op::Heartbeat => "heartbeat",
            Op::Complete => "complete",
            Op::Fail => "fail",
            Op::Release => "release",
            Op::RequestInput => "request_input",
            Op::ProvideInput => "provide_input",
            Op::TakeInput => "take_input",
            Op::ExpirePending => "expire_pending",
        }
    }
}

/// A final status's duration histogram and counter.
struct Ended {
    duration: Histogram,
    count: Counter,
}

/// The metric handles, each looked up in the recorder at its first use and
/// kept: `histogram!` and `counter!` with labels build the label list, hash
/// it and search the recorder's registry on every call, which costs more
/// than recording the value.
#[derive(Default)]
struct Handles {
    /// `hookroom_store_operation_duration_seconds`, in [`Op::ALL`]'s order.
    durations: OnceLock<Vec<Histogram>>,
    claim_latency: OnceLock<Histogram>,
    /// For `DONE`, then `FAILED`.
    ended: OnceLock<[Ended; 2]>,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

impl Handles {
    fn duration(&self, operation: Op) -> &Histogram {
        let durations = self.durations.get_or_init(|| {
            Op::ALL
                .iter()
                .map(|op| {
                    ::metrics::histogram!(
                        telemetry::STORE_OPERATION_DURATION,
                        "operation" => op.as_str()
                    )
                })
                .collect()
        });
        // `Op::ALL` lists every variant in declaration order.
        &durations[operation as usize]
    }

    fn ended(&self, status: JobStatus) -> Option<&Ended> {
        let [done, failed] = self.ended.get_or_init(|| {
            [JobStatus::Done, JobStatus::Failed].map(|status| Ended {
                duration: ::metrics::histogram!(
                    telemetry::JOB_DURATION,
                    "status" => status.as_str()
                ),
                count: ::metrics::counter!(telemetry::TASKS_FINISHED, "status" => status.as_str()),
            })
        });
        match status {
            JobStatus::Done => Some(done),
            JobStatus::Failed => Some(failed),
            _ => None,
        }
    }
}

/// Seconds from `from` to `to`, zero if the clock ran backwards.
fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    Duration::try_from(to - from)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[async_trait]
impl TaskStore for MeteredTaskStore {
    async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.measured(Op::Insert, self.inner.insert(task)).await
    }

    async fn get(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.measured(Op::Get, self.inner.get(id)).await
    }

    async fn list(&self, query: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        self.measured(Op::List, self.inner.list(query)).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        let result = self.measured(Op::Claim, self.inner.claim(request)).await;
        if let Ok(Some(claim)) = &result {
            self.claimed(&claim.task);
        }
        result
    }

    async fn claim_task(&self, id: &TaskId, request: &ClaimRequest) -> Result<Claimed, StoreError> {
        let result = self
            .measured(Op::ClaimTask, self.inner.claim_task(id, request))
            .await;
        if let Ok(claim) = &result {
            self.claimed(&claim.task);
        }
        result
    }

    async fn heartbeat(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        lease: Duration,
    ) -> Result<Task, StoreError> {
        self.measured(Op::Heartbeat, self.inner.heartbeat(id, token, lease))
            .await
    }

    async fn complete(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        result: Option<serde_json::Value>,
    ) -> Result<Task, StoreError> {
        let task = self
            .measured(Op::Complete, self.inner.complete(id, token, result))
            .await?;
        self.finished(&task);
        Ok(task)
    }

    async fn fail(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        reason: &str,
        action: FailAction,
    ) -> Result<Task, StoreError> {
        let task = self
            .measured(Op::Fail, self.inner.fail(id, token, reason, action))
            .await?;
        self.finished(&task);
        Ok(task)
    }

    async fn release(&self, id: &TaskId, token: &ClaimToken) -> Result<Task, StoreError> {
        self.measured(Op::Release, self.inner.release(id, token))
            .await
    }

    async fn request_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
        prompt: &str,
    ) -> Result<Task, StoreError> {
        self.measured(
            Op::RequestInput,
            self.inner.request_input(id, token, prompt),
        )
        .await
    }

    async fn provide_input(
        &self,
        id: &TaskId,
        input: serde_json::Value,
    ) -> Result<Task, StoreError> {
        self.measured(Op::ProvideInput, self.inner.provide_input(id, input))
            .await
    }

    async fn take_input(
        &self,
        id: &TaskId,
        token: &ClaimToken,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.measured(Op::TakeInput, self.inner.take_input(id, token))
            .await
    }

    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        let expired = self
            .measured(Op::ExpirePending, self.inner.expire_pending())
            .await?;
        for task in &expired {
            debug_assert_eq!(task.status, JobStatus::Failed);
            self.finished(task);
        }
        Ok(expired)
    }

    fn watch(&self, room: &str) -> Option<broadcast::Receiver<TaskId>> {
        self.inner.watch(room)
    }
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn every_operation_has_its_own_place_in_the_handle_list() {
        for (place, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, place, "{}", op.as_str());
        }
    }
}
