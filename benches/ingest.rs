//! The ingest pipeline in-process: verify + parse + route + in-memory insert,
//! per request, for a 1 KiB GitHub `pull_request.opened` delivery with a
//! unique delivery id per iteration. Stage benches break the total down.
//!
//! `cargo bench --bench ingest -- --warm-up-time 1 --measurement-time 3`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::Full;
use tower::ServiceExt;

use hookroom::service::WebhookService;
use hookroom::status::{InMemoryStatusSink, JobEvent, StatusSink};
use hookroom::task::{InMemoryTaskStore, NewTask, Payload, TaskStore};

#[path = "../tests/support/pipeline.rs"]
mod pipeline;

fn headers(signature: &str, delivery: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("pull_request"));
    headers.insert("x-github-delivery", HeaderValue::from(delivery));
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(signature).expect("ascii"),
    );
    headers
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (body, signature) = pipeline::signed_pull_request();
    let verifier = pipeline::github_verifier();
    let source = pipeline::github_source();
    let router = pipeline::router();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Bytes(body.len() as u64));

    let fixed = headers(&signature, 1);
    group.bench_function("verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&fixed), black_box(&body))
                .expect("valid")
        })
    });
    let proof = verifier.verify(&fixed, &body).expect("valid");
    group.bench_function("parse", |b| {
        b.iter(|| {
            source
                .parse("github", black_box(&fixed), body.clone(), proof)
                .expect("parses")
        })
    });
    let hookroom::source::Parsed::Event(event) = source
        .parse("github", &fixed, body.clone(), proof)
        .expect("parses")
    else {
        unreachable!("a pull request is an event")
    };
    group.bench_function("route", |b| b.iter(|| router.route(black_box(&event))));

    let store = InMemoryTaskStore::new();
    let delivery = AtomicU64::new(0);
    group.bench_function("store_insert", |b| {
        b.to_async(&runtime).iter(|| {
            store.insert(NewTask {
                room: "pr-review".into(),
                title: "[PR] opened #42: Test PR".into(),
                description: String::new(),
                priority: 2,
                source: "github".into(),
                source_event: "pull_request.opened".into(),
                source_url: None,
                delivery_id: delivery.fetch_add(1, Ordering::Relaxed).to_string(),
                payload: Payload::from(body.clone()),
                required_capabilities: Vec::new(),
                ttl: None,
            })
        })
    });
    let sink = InMemoryStatusSink::new().with_max_jobs(10_000);
    // What the service sends: the task's summary as JSON text.
    let input = hookroom::status::JobInput::from(serde_json::json!({
        "room": "pr-review", "source": "github", "event": "pull_request.opened",
        "delivery_id": "72d3162e", "title": "[PR] opened #42: Test PR",
        "url": "https://github.com/o/r/pull/42", "priority": 2,
    }));
    group.bench_function("sink_created", |b| {
        b.to_async(&runtime).iter(|| {
            sink.publish(JobEvent::Created {
                job_id: delivery.fetch_add(1, Ordering::Relaxed).to_string(),
                at: time::OffsetDateTime::UNIX_EPOCH,
                input_data: input.clone(),
                metadata: serde_json::Map::new(),
            })
        })
    });

    // The whole service, new deliveries. Each sample starts from an empty
    // store, so the figure is the cost per request at a store size of
    // thousands of tasks, not whatever size the previous samples left.
    let build = || {
        WebhookService::builder(router.clone(), Arc::new(InMemoryTaskStore::new()))
            .status_sink(Arc::new(InMemoryStatusSink::new().with_max_jobs(10_000)))
            .source("github", verifier.clone(), source.clone())
            .build()
    };
    let request = |delivery: u64| {
        let mut request = Request::post("/webhook/github")
            .body(Full::new(Bytes::clone(&body)))
            .expect("request");
        *request.headers_mut() = headers(&signature, delivery);
        request
    };
    group.bench_function("pipeline", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let service = build();
            let requests: Vec<_> = (0..iters).map(request).collect();
            async move {
                let start = Instant::now();
                for request in requests {
                    let response = service.clone().oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), 202);
                }
                start.elapsed()
            }
        })
    });
    // Redeliveries of 1,000 stored tasks: everything but storing.
    group.bench_function("pipeline_duplicate", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let service = build();
            let warm: Vec<_> = (0..1_000).map(request).collect();
            let requests: Vec<_> = (0..iters).map(|n| request(n % 1_000)).collect();
            async move {
                for request in warm {
                    let _ = service.clone().oneshot(request).await;
                }
                let start = Instant::now();
                for request in requests {
                    let response = service.clone().oneshot(request).await.expect("infallible");
                    assert_eq!(response.status(), 200);
                }
                start.elapsed()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
