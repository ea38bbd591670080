//! The metrics of job-status pushes, read back as Prometheus text:
//! `HttpStatusSink` counts each push by outcome and each retry by reason,
//! and outboxes show their depth and count what they drop.
#![cfg(feature = "http-client")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusBuilder;
use time::OffsetDateTime;

use hookroom::http::{HttpStatusSink, RetryPolicy};
use hookroom::status::{JobEvent, JobStatus, OutboxStatusSink, SinkError, StatusSink};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Answers the n-th request with `script[n]` (status, body).
async fn server(script: Vec<(u16, &'static str)>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (script, count) = (Arc::clone(&script), Arc::clone(&count));
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (script, count) = (Arc::clone(&script), Arc::clone(&count));
                async move {
                    let _ = request.into_body().collect().await;
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = script.get(n).copied().unwrap_or((200, "{}"));
                    let mut response = http::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn running(id: &str) -> JobEvent {
    JobEvent::Status {
        job_id: id.into(),
        at: OffsetDateTime::now_utc(),
        status: JobStatus::Running,
        progress: None,
        message: None,
        step: None,
    }
}

#[test]
fn http_pushes_are_counted_by_outcome_and_retries_by_reason() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let addr = server(vec![
                (503, ""),
                (429, ""),
                (200, "{}"),
                (
                    404,
                    r#"{"error":{"code":"E_JOB_NOT_FOUND","message":"no"}}"#,
                ),
            ])
            .await;
            let sink = HttpStatusSink::builder(format!("http://{addr}/api"))
                .retry_policy(RetryPolicy {
                    base_delay: Duration::from_millis(5),
                    ..RetryPolicy::default()
                })
                .build()
                .unwrap();
            sink.publish(running("a"))
                .await
                .expect("delivered after two retries");
            let refused = sink.publish(running("b")).await;
            assert!(
                matches!(refused, Err(SinkError::JobNotFound { .. })),
                "{refused:?}"
            );
        });
    });
    let text = handle.render();
    let pushes = "hookroom_status_pushes_total";
    assert_eq!(
        value(&text, &format!(r#"{pushes}{{outcome="delivered"}}"#)),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, &format!(r#"{pushes}{{outcome="E_JOB_NOT_FOUND"}}"#)),
        1.0,
        "{text}"
    );
    let retries = "hookroom_status_push_retries_total";
    assert_eq!(
        value(&text, &format!(r#"{retries}{{reason="server_error"}}"#)),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, &format!(r#"{retries}{{reason="rate_limited"}}"#)),
        1.0,
        "{text}"
    );
}

/// A downstream that holds every change until released.
#[derive(Debug, Default)]
struct Gate {
    open: tokio::sync::Notify,
    opened: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl StatusSink for Gate {
    async fn publish(&self, _event: JobEvent) -> Result<(), SinkError> {
        while !self.opened.load(Ordering::SeqCst) {
            self.open.notified().await;
        }
        Ok(())
    }
}

#[test]
fn outboxes_show_their_depth_and_count_what_they_drop() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (full, drained) = metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let gate = Arc::new(Gate::default());
            let outbox = OutboxStatusSink::in_memory(gate.clone(), 3);
            for id in ["a", "b", "c"] {
                outbox.publish(running(id)).await.expect("queued");
            }
            let refused = outbox.publish(running("d")).await;
            assert!(refused.is_err(), "the fourth change finds the outbox full");
            // Let the drain take the first change and wait at the gate.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let full = handle.render();
            gate.opened.store(true, Ordering::SeqCst);
            gate.open.notify_waiters();
            outbox.drained().await;
            (full, handle.render())
        })
    });
    let depth = "hookroom_status_outbox_depth";
    assert_eq!(value(&full, depth), 3.0, "{full}");
    assert_eq!(
        value(
            &full,
            r#"hookroom_status_outbox_dropped_total{reason="full"}"#
        ),
        1.0,
        "{full}"
    );
    assert_eq!(value(&drained, depth), 0.0, "{drained}");
}
