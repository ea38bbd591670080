//! `HttpStatusSink` against the Jobs API over 127.0.0.1: the `StatusSink`
//! conformance suite, and a fault test (dropped connections, 500, 503 with
//! `Retry-After`, stalls past the timeout) showing every update arrives
//! exactly once and in order, or fails with the right code after the last
//! retry.
#![cfg(all(feature = "memory", feature = "integration", feature = "http-client"))]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use hookroom::ErrorCode;
use hookroom::api::jobs::JobView;
use hookroom::conformance::status_sink::{JobReader, run_all};
use hookroom::http::{HttpStatusSink, RetryPolicy};
use hookroom::service::{ApiTokens, BearerTokens, JobsApi};
use hookroom::status::{InMemoryStatusSink, JobEvent, JobStatus, SinkError, StatusSink};

const TOKEN: &str = "mcp_webhook_token_12345";

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Fault {
    /// Hand it to the Jobs API.
    Pass,
    /// Close the connection without answering.
    Drop,
    /// Answer this status without applying anything.
    Status(u16),
    /// Answer 503 with this `Retry-After`, applying nothing.
    RetryAfter(String),
    /// Apply it, then answer only after this long.
    Stall(Duration),
}

struct Server {
    addr: SocketAddr,
    registry: InMemoryStatusSink,
    script: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Self {
        let registry = InMemoryStatusSink::new();
        let api = JobsApi::builder(Arc::new(registry.clone()))
            .principals(ApiTokens::new(
                BearerTokens::parse_list(TOKEN).unwrap(),
                BearerTokens::none(),
            ))
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script: Arc<Mutex<VecDeque<Fault>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (s, r) = (Arc::clone(&script), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (api, script, requests) = (api.clone(), Arc::clone(&s), Arc::clone(&r));
                let service = service_fn(move |request: Request<Incoming>| {
                    let (api, script) = (api.clone(), Arc::clone(&script));
                    requests.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let fault = script.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
                        let answer = |status: u16, retry_after: Option<String>| {
                            let mut response = Response::new(Full::new(Bytes::from_static(
                                br#"{"error":{"code":"E_WEBHOOK_FAILED","message":"injected"}}"#,
                            )));
                            *response.status_mut() = StatusCode::from_u16(status).unwrap();
                            if let Some(value) = retry_after {
                                response
                                    .headers_mut()
                                    .insert("retry-after", value.parse().unwrap());
                            }
                            Ok(response)
                        };
                        match fault {
                            Fault::Drop => Err("dropped".to_owned()),
                            Fault::Status(status) => answer(status, None),
                            Fault::RetryAfter(value) => answer(503, Some(value)),
                            Fault::Pass | Fault::Stall(_) => {
                                let response = api.oneshot(request).await.unwrap();
                                if let Fault::Stall(by) = fault {
                                    tokio::time::sleep(by).await;
                                }
                                Ok::<_, String>(response)
                            }
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            registry,
            script,
            requests,
        }
    }

    fn base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script.lock().unwrap().extend(faults);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        backoff_factor: 2.0,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        max_retry_after: Duration::from_secs(2),
    }
}

fn sink(server: &Server, policy: RetryPolicy) -> HttpStatusSink {
    HttpStatusSink::builder(server.base())
        .bearer_token(TOKEN)
        .retry_policy(policy)
        .build()
        .unwrap()
}

struct HttpReader(HttpStatusSink);

#[async_trait]
impl JobReader for HttpReader {
    async fn read_job(&self, job_id: &str) -> Option<JobView> {
        self.0.pull_job(job_id, true).await.unwrap()
    }
}

fn created(id: &str) -> JobEvent {
    JobEvent::Created {
        job_id: id.into(),
        at: time::OffsetDateTime::now_utc(),
        input_data: serde_json::json!({"room": "r"}).into(),
        metadata: Default::default(),
    }
}

fn update(id: &str, message: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.into(),
        at: time::OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: None,
        message: Some(message.into()),
        step: None,
    }
}

fn messages(registry: &InMemoryStatusSink, id: &str) -> Vec<String> {
    registry
        .get(id, true)
        .unwrap()
        .history
        .unwrap()
        .into_iter()
        .map(|entry| entry.message.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_status_sink_conformance_suite_over_loopback() {
    let server = Server::start().await;
    let sink = sink(&server, RetryPolicy::default());
    run_all(Arc::new(sink.clone()), &HttpReader(sink)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_arrives_once_and_in_order_through_faults() {
    let server = Server::start().await;
    let sink = sink(&server, quick_policy());
    sink.publish(created("job")).await.unwrap();
    let in_a_second = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1));
    // Each update meets at most three faults before it passes (3 retries).
    let faults = [
        vec![Fault::Drop],
        vec![Fault::Status(500), Fault::Status(502)],
        vec![Fault::RetryAfter("0".into())],
        vec![Fault::Stall(Duration::from_millis(800))],
        vec![
            Fault::Drop,
            Fault::RetryAfter(in_a_second),
            Fault::Stall(Duration::from_millis(800)),
        ],
        vec![Fault::Status(408), Fault::Status(429)],
        vec![],
    ];
    let injected: usize = faults.iter().map(Vec::len).sum();
    let mut expected = vec!["Job created".to_owned()];
    for (i, faults) in faults.into_iter().enumerate() {
        server.script(faults);
        let message = format!("update {i}");
        sink.publish(update("job", &message)).await.unwrap();
        expected.push(message);
    }
    assert_eq!(messages(&server.registry, "job"), expected);
    // Every fault was met and retried: the create, each fault, and one
    // answered attempt per update.
    assert_eq!(server.requests(), 1 + injected + 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_failures_carry_the_right_code_after_the_last_retry() {
    let server = Server::start().await;
    let policy = quick_policy();
    let sink = sink(&server, policy);
    sink.publish(created("job")).await.unwrap();

    let cases = [
        (Fault::Status(500), "E_WEBHOOK_FAILED"),
        (Fault::RetryAfter("0".into()), "E_WEBHOOK_FAILED"),
        (Fault::Status(429), "E_WEBHOOK_FAILED"),
        (Fault::Drop, "E_NETWORK_ERROR"),
        (Fault::Stall(Duration::from_millis(800)), "E_TIMEOUT"),
    ];
    for (fault, code) in cases {
        let attempts = policy.max_retries as usize + 1;
        server.script(std::iter::repeat_n(fault.clone(), attempts));
        let before = server.requests();
        let error = sink.publish(update("job", "never")).await.unwrap_err();
        assert_eq!(error.code(), code, "{fault:?}: {error}");
        assert_eq!(server.requests() - before, attempts, "{fault:?}");
    }
    // The stalled update was applied by its first attempt and replayed for
    // the retries (same Idempotency-Key); the other faults applied nothing.
    let never = messages(&server.registry, "job")
        .iter()
        .filter(|m| *m == "never")
        .count();
    assert_eq!(never, 1, "a stalled update was applied {never} times");

    // Other 4xx are never retried.
    let before = server.requests();
    server.script([Fault::Status(409)]);
    let error = sink.publish(update("job", "conflict")).await.unwrap_err();
    assert_eq!(error.code(), "E_WEBHOOK_FAILED");
    assert_eq!(server.requests() - before, 1);
    let before = server.requests();
    let error = sink.publish(update("nope", "x")).await.unwrap_err();
    assert!(matches!(error, SinkError::JobNotFound { ref job_id } if job_id == "nope"));
    assert_eq!(server.requests() - before, 1);

    let wrong = HttpStatusSink::builder(server.base())
        .bearer_token("wrong")
        .retry_policy(policy)
        .build()
        .unwrap();
    let before = server.requests();
    let error = wrong.publish(update("job", "x")).await.unwrap_err();
    assert_eq!(error.code(), "E_AUTHENTICATION_FAILED");
    assert!(!error.to_string().contains("wrong"));
    assert_eq!(server.requests() - before, 1);

    // Nobody listening: a network error after the retries.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = HttpStatusSink::builder(format!("http://{closed}/api"))
        .retry_policy(policy)
        .build()
        .unwrap();
    let error = nowhere.publish(created("x")).await.unwrap_err();
    assert_eq!(error.code(), "E_NETWORK_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_to_one_job_keep_each_ones_order_through_faults() {
    let server = Server::start().await;
    // Concurrent publishers take the faults in any order: enough retries
    // that none runs out.
    let sink = sink(
        &server,
        RetryPolicy {
            max_retries: 30,
            ..quick_policy()
        },
    );
    sink.publish(created("shared")).await.unwrap();
    server.script(
        [Fault::Drop, Fault::Status(503), Fault::Pass]
            .into_iter()
            .cycle()
            .take(30),
    );
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let sink = sink.clone();
        writers.spawn(async move {
            for i in 0..10 {
                sink.publish(update("shared", &format!("w{w}-{i}")))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.unwrap();
    }
    let messages = messages(&server.registry, "shared");
    assert_eq!(messages.len(), 1 + 40);
    for w in 0..4 {
        let mine: Vec<&String> = messages
            .iter()
            .filter(|m| m.starts_with(&format!("w{w}-")))
            .collect();
        let expected: Vec<String> = (0..10).map(|i| format!("w{w}-{i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_and_completion_travel_over_http() {
    let server = Server::start().await;
    let sink = sink(&server, quick_policy());
    sink.publish(created("a")).await.unwrap();
    sink.publish(JobEvent::Artifact {
        job_id: "a".into(),
        at: time::OffsetDateTime::now_utc(),
        artifact: hookroom::status::Artifact {
            name: "partial.csv".into(),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    sink.publish(JobEvent::Completed {
        job_id: "a".into(),
        at: time::OffsetDateTime::now_utc(),
        final_status: JobStatus::Done,
        summary: Some(serde_json::json!({"n": 1})),
        artifacts: vec![],
        message: Some("ok".into()),
    })
    .await
    .unwrap();
    let view = sink.pull_job("a", true).await.unwrap().unwrap();
    assert_eq!(view.job.status, JobStatus::Done);
    assert_eq!(view.job.artifacts[0].name, "partial.csv");
    assert_eq!(view.history.unwrap().len(), 3);
    assert!(sink.pull_job("missing", false).await.unwrap().is_none());
    // An id that needs escaping reaches the same job.
    sink.publish(created("room/a b")).await.unwrap();
    assert!(server.registry.get("room/a b", false).is_some());
    sink.publish(update("room/a b", "escaped")).await.unwrap();
    assert_eq!(messages(&server.registry, "room/a b")[1], "escaped");
}
