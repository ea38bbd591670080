//! Names, tasks and small helpers the checks share.

use std::time::Duration;

use super::model::{ErrKind, kind};
use crate::lifecycle::JobStatus;
use crate::task::{ClaimRequest, Claimed, NewTask, StoreError, Task, TaskId, TaskQuery, TaskStore};

/// Random names so checks never see each other's tasks.
#[derive(Debug)]
pub(super) struct Namespace(String);

impl Namespace {
    pub(super) fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self(id.get(..12).unwrap_or(&id).to_owned())
    }

    pub(super) fn room(&self, name: &str) -> String {
        format!("{name}-{}", self.0)
    }

    pub(super) fn source(&self, name: &str) -> String {
        format!("{name}-{}", self.0)
    }
}

pub(super) fn new_task(room: &str, source: &str, delivery: &str) -> NewTask {
    NewTask {
        room: room.to_owned(),
        title: format!("[PR] opened #{delivery}"),
        description: "conformance task".to_owned(),
        priority: 2,
        source: source.to_owned(),
        source_event: "pull_request.opened".to_owned(),
        source_url: Some(format!("https://example.com/pr/{delivery}")),
        delivery_id: delivery.to_owned(),
        payload: format!(r#"{{"delivery":"{delivery}","n":[1,2,3]}}"#)
            .into_bytes()
            .into(),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

pub(super) fn with_priority(mut task: NewTask, priority: u32) -> NewTask {
    task.priority = priority;
    task
}

pub(super) fn request(
    room: &str,
    agent: &str,
    capabilities: &[&str],
    lease_seconds: u64,
) -> ClaimRequest {
    ClaimRequest {
        room: room.to_owned(),
        agent: agent.to_owned(),
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        lease: Duration::from_secs(lease_seconds),
    }
}

pub(super) async fn insert(store: &dyn TaskStore, task: NewTask) -> crate::task::Inserted {
    store.insert(task).await.expect("insert")
}

pub(super) async fn get(store: &dyn TaskStore, id: &TaskId) -> Task {
    store
        .get(id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("task {id} exists"))
}

pub(super) async fn claim(
    store: &dyn TaskStore,
    room: &str,
    agent: &str,
    capabilities: &[&str],
    lease_seconds: u64,
) -> Claimed {
    store
        .claim(&request(room, agent, capabilities, lease_seconds))
        .await
        .expect("claim")
        .unwrap_or_else(|| panic!("a claimable task in {room}"))
}

pub(super) async fn list(
    store: &dyn TaskStore,
    room: Option<&str>,
    status: Option<JobStatus>,
    source: Option<&str>,
    limit: Option<usize>,
) -> Vec<TaskId> {
    store
        .list(&TaskQuery {
            room: room.map(str::to_owned),
            status,
            source: source.map(str::to_owned),
            limit,
            before: None,
        })
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect()
}

pub(super) async fn expired_in(store: &dyn TaskStore, room: &str) -> Vec<Task> {
    let mut expired = store.expire_pending().await.expect("expire_pending");
    expired.retain(|t| t.room == room);
    expired
}

pub(super) fn err<T: std::fmt::Debug>(result: Result<T, StoreError>) -> ErrKind {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => kind(&e),
    }
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
