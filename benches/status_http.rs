//! Status updates per second: `HttpStatusSink` to the Jobs API over
//! loopback HTTP/1, next to the in-process `InMemoryStatusSink`, in one run.
//!
//! `cargo bench --features http-client --bench status_http -- --warm-up-time 1 --measurement-time 3`
//!
//! `sequential`: one publisher, one job, each update awaited (what one
//! worker reporting progress does). `concurrent/8`: eight publishers, each
//! on its own job.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use time::OffsetDateTime;

use hookroom::http::HttpStatusSink;
use hookroom::service::{ApiTokens, BearerTokens, JobsApi};
use hookroom::status::{InMemoryStatusSink, JobEvent, JobStatus, Progress, StatusSink};

const WRITERS: usize = 8;

fn created(id: &str) -> JobEvent {
    JobEvent::Created {
        job_id: id.to_owned(),
        at: OffsetDateTime::now_utc(),
        input_data: serde_json::json!({"room": "bench"}).into(),
        metadata: Default::default(),
    }
}

fn update(id: &str, n: u64) -> JobEvent {
    JobEvent::Status {
        job_id: id.to_owned(),
        at: OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: Some(Progress {
            current_step: Some("processing".into()),
            percentage: Some((n % 100) as f64),
            ..Progress::default()
        }),
        message: Some("Processing PDF files...".into()),
        step: None,
    }
}

/// A Jobs API on 127.0.0.1 and a sink pushing to it.
async fn http_sink() -> HttpStatusSink {
    // Bounded history: a long run keeps the server's memory flat.
    let registry = InMemoryStatusSink::new().with_max_history(100);
    let api = JobsApi::builder(Arc::new(registry))
        .principals(ApiTokens::new(
            BearerTokens::parse_list("bench").unwrap(),
            BearerTokens::none(),
        ))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(api.clone());
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    HttpStatusSink::builder(format!("http://{addr}/api"))
        .bearer_token("bench")
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let http: Arc<dyn StatusSink> = Arc::new(runtime.block_on(http_sink()));
    let memory: Arc<dyn StatusSink> = Arc::new(InMemoryStatusSink::new().with_max_history(100));
    let sinks = [("in_process", memory), ("http_loopback", http)];

    let mut group = c.benchmark_group("status_updates");
    group.throughput(Throughput::Elements(1));
    for (name, sink) in &sinks {
        let job = format!("seq-{name}");
        runtime.block_on(sink.publish(created(&job))).unwrap();
        group.bench_function(BenchmarkId::new("sequential", name), |b| {
            let mut n = 0;
            b.to_async(&runtime).iter(|| {
                n += 1;
                let (sink, job) = (Arc::clone(sink), job.clone());
                async move { sink.publish(update(&job, n)).await.unwrap() }
            });
        });
    }
    group.throughput(Throughput::Elements(WRITERS as u64));
    for (name, sink) in &sinks {
        let jobs: Vec<String> = (0..WRITERS).map(|w| format!("con-{name}-{w}")).collect();
        for job in &jobs {
            runtime.block_on(sink.publish(created(job))).unwrap();
        }
        group.bench_function(
            BenchmarkId::new(format!("concurrent/{WRITERS}"), name),
            |b| {
                let mut n = 0;
                b.to_async(&runtime).iter(|| {
                    n += 1;
                    let tasks: Vec<_> = jobs
                        .iter()
                        .map(|job| {
                            let (sink, job) = (Arc::clone(sink), job.clone());
                            tokio::spawn(async move { sink.publish(update(&job, n)).await })
                        })
                        .collect();
                    async move {
                        for task in tasks {
                            task.await.unwrap().unwrap();
                        }
                    }
                });
            },
        );
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
