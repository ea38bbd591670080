//! Every `JobRegistry` against the registry conformance suite (updates
//! applied once per idempotency key, finished jobs purged by age in
//! batches), and durable keys: a retried update reaching a restarted Jobs
//! API on the same SQLite file (or PostgreSQL database) is applied once.
#![cfg(all(feature = "integration", feature = "sqlite"))]

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

use hookroom::conformance::job_registry;
use hookroom::service::{ApiTokens, BearerTokens, JobsApi};
use hookroom::sqlite::SqliteJobRegistry;
use hookroom::status::{Applied, InMemoryStatusSink, JobEvent, JobRegistry, JobStatus};

const TOKEN: &str = "agent-token";

fn temp_db() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("hookroom-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hookroom.db");
    (dir, path)
}

fn api(registry: Arc<dyn JobRegistry>) -> JobsApi {
    JobsApi::builder(registry)
        .principals(ApiTokens::new(
            BearerTokens::parse_list(TOKEN).unwrap(),
            BearerTokens::none(),
        ))
        .build()
}

/// POSTs `body` to `uri` with an `Idempotency-Key`; status, whether it was
/// a replay, and the JSON answer.
async fn post(api: &JobsApi, uri: &str, key: &str, body: Value) -> (StatusCode, bool, Value) {
    let request = Request::post(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        replayed,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn running(id: &str, message: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.into(),
        at: OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: None,
        message: Some(message.into()),
        step: None,
    }
}

async fn history_len(registry: &dyn JobRegistry, id: &str) -> usize {
    let view = registry.job(id, true).await.unwrap().expect("job");
    view.history.map_or(0, |h| h.len())
}

/// The Jobs API sequence of a pushing backend: create, status, complete,
/// each with its key; run once, then again against `second` (the same
/// database after a restart): the second run is all replays.
async fn replay_after_restart(
    first: Arc<dyn JobRegistry>,
    second: impl Fn() -> Arc<dyn JobRegistry>,
) {
    let job_id = format!("task-{}", uuid::Uuid::new_v4());
    let steps = [
        (
            "/api/jobs".to_owned(),
            "k-create",
            json!({"job_id": job_id, "input_data": {"room": "r"}}),
            StatusCode::CREATED,
        ),
        (
            format!("/api/jobs/{job_id}/status"),
            "k-status",
            json!({"status": "RUNNING", "message": "working",
                   "artifacts": [{"name": "partial.csv", "type": "csv"}]}),
            StatusCode::OK,
        ),
        (
            format!("/api/jobs/{job_id}/complete"),
            "k-complete",
            json!({"final_status": "DONE", "completion_message": "done"}),
            StatusCode::OK,
        ),
    ];
    let jobs = api(Arc::clone(&first));
    for (uri, key, body, status) in &steps {
        let (got, replayed, _) = post(&jobs, uri, key, body.clone()).await;
        assert_eq!(got, *status, "{uri}");
        assert!(!replayed, "{uri}: first time");
    }
    let applied = history_len(first.as_ref(), &job_id).await;
    assert_eq!(applied, 4, "created, running, artifact, done");
    drop(jobs);
    drop(first);

    // A restarted gateway: no reply is remembered in memory any more.
    let registry = second();
    let jobs = api(Arc::clone(&registry));
    for (uri, key, body, status) in &steps {
        let (got, replayed, answer) = post(&jobs, uri, key, body.clone()).await;
        assert_eq!(got, *status, "{uri}: {answer}");
        assert!(replayed, "{uri}: the registry remembered the key");
        let id = answer.get("job").unwrap_or(&answer)["job_id"].clone();
        assert_eq!(id, json!(job_id), "{answer}");
    }
    assert_eq!(history_len(registry.as_ref(), &job_id).await, applied);
    let view = registry.job(&job_id, false).await.unwrap().unwrap();
    assert_eq!(view.job.status, JobStatus::Done);
    assert_eq!(view.job.artifacts.len(), 1);
    // A new key is a new update: refused, since the job ended.
    let (got, _, answer) = post(
        &jobs,
        &format!("/api/jobs/{job_id}/status"),
        "k-new",
        json!({"status": "RUNNING"}),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn in_memory_registry_passes_the_registry_suite() {
    job_registry::run_all(Arc::new(InMemoryStatusSink::new())).await;
    job_registry::run_all(Arc::new(InMemoryStatusSink::new().with_max_jobs(10_000))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_registry_passes_the_registry_suite() {
    let (dir, path) = temp_db();
    job_registry::run_all(Arc::new(SqliteJobRegistry::open(&path).unwrap())).await;
    job_registry::run_all(Arc::new(SqliteJobRegistry::open_in_memory().unwrap())).await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn sqlite_keys_survive_a_reopen_of_the_file() {
    let (dir, path) = temp_db();
    let registry = SqliteJobRegistry::open(&path).unwrap();
    let created = JobEvent::Created {
        job_id: "job-1".into(),
        at: OffsetDateTime::now_utc(),
        input_data: json!({"room": "r"}).into(),
        metadata: Default::default(),
    };
    let first = registry.apply_once("job-1", "create", vec![created]).await;
    assert_eq!(first.unwrap(), Applied::Now);
    let first = registry
        .apply_once("job-1", "k1", vec![running("job-1", "once")])
        .await;
    assert_eq!(first.unwrap(), Applied::Now);
    drop(registry);

    let reopened = SqliteJobRegistry::open(&path).unwrap();
    let again = reopened
        .apply_once("job-1", "k1", vec![running("job-1", "once")])
        .await;
    assert_eq!(again.unwrap(), Applied::Before);
    assert_eq!(history_len(&reopened, "job-1").await, 2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_restarted_jobs_api_on_sqlite_applies_a_retried_update_once() {
    let (dir, path) = temp_db();
    let first: Arc<dyn JobRegistry> = Arc::new(SqliteJobRegistry::open(&path).unwrap());
    let reopen = || -> Arc<dyn JobRegistry> { Arc::new(SqliteJobRegistry::open(&path).unwrap()) };
    replay_after_restart(first, reopen).await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_in_memory_reply_cache_still_answers_without_a_restart() {
    // Same process, same JobsApi: the remembered answer is replayed as is.
    let registry = InMemoryStatusSink::new();
    let jobs = api(Arc::new(registry.clone()));
    let body = json!({"job_id": "j", "input_data": {}});
    let (status, replayed, _) = post(&jobs, "/api/jobs", "k", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    let (status, replayed, _) = post(&jobs, "/api/jobs", "k", body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(registry.len(), 1);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_registry_passes_the_registry_suite_and_keeps_keys_across_a_reconnect() {
    use hookroom::postgres::PostgresJobRegistry;
    let Some(pg) = support::postgres::TestPostgres::start() else {
        return;
    };
    let registry = PostgresJobRegistry::connect(&pg.url)
        .await
        .expect("connect");
    job_registry::run_all(Arc::new(registry.clone())).await;
    let reconnected = PostgresJobRegistry::connect(&pg.url)
        .await
        .expect("reconnect");
    // The closure cannot await: the second registry is connected up front
    // and handed over once the first is dropped.
    let handover = std::sync::Mutex::new(Some(reconnected));
    replay_after_restart(Arc::new(registry), || {
        Arc::new(handover.lock().unwrap().take().expect("one restart"))
    })
    .await;
}

#[tokio::test]
async fn the_alert_monitors_sink_passes_keys_through() {
    use hookroom::alert::{AlertMonitor, AlertRules};
    use hookroom::status::StatusSink;
    let registry = InMemoryStatusSink::new();
    let monitor = Arc::new(AlertMonitor::new(
        AlertRules::default(),
        Arc::new(hookroom::clock::SystemClock),
    ));
    let sink = monitor.status_sink(Arc::new(registry.clone()));
    let created = JobEvent::Created {
        job_id: "j".into(),
        at: OffsetDateTime::now_utc(),
        input_data: json!({}).into(),
        metadata: Default::default(),
    };
    sink.publish_once(created, "create").await.unwrap();
    for _ in 0..2 {
        sink.publish_once(running("j", "once"), "k").await.unwrap();
    }
    assert_eq!(history_len(&registry, "j").await, 2);
}
