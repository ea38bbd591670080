//! `WebhookAlertSink` against a local hyper server that checks each
//! delivery with the crate's Standard Webhooks verifier: firing and
//! resolved alerts arrive signed, a 503 is retried with the same
//! `webhook-id`, and a URL that never answers does not hold up the monitor.
#![cfg(feature = "http-client")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::Value;

use hookroom::alert::{AlertKind, AlertMonitor, AlertRules, AlertSink, WebhookAlertSink};
use hookroom::clock::ManualClock;
use hookroom::http::RetryPolicy;
use hookroom::verify::{Secrets, StandardWebhooksVerifier, Verifier};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    verified: bool,
    body: Value,
}

/// A server answering the n-th request (0-based) with `statuses[n]` (200
/// past the end), after checking its signature (401 when it fails).
async fn server(statuses: Vec<u16>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let verifier =
        Arc::new(StandardWebhooksVerifier::new(Secrets::try_from(SECRET).unwrap()).unwrap());
    let recorded = Arc::clone(&seen);
    let statuses = Arc::new(statuses);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (verifier, seen, statuses) = (
                Arc::clone(&verifier),
                Arc::clone(&recorded),
                Arc::clone(&statuses),
            );
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let (verifier, seen, statuses) = (
                    Arc::clone(&verifier),
                    Arc::clone(&seen),
                    Arc::clone(&statuses),
                );
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let verified = verifier.verify(&parts.headers, &body).is_ok();
                    let id = parts.headers["webhook-id"].to_str().unwrap().to_owned();
                    let mut seen = seen.lock().unwrap();
                    let status = if verified {
                        statuses.get(seen.len()).copied().unwrap_or(200)
                    } else {
                        401
                    };
                    seen.push(Seen {
                        id,
                        verified,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    let mut response = http::Response::new(Full::new(Bytes::new()));
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
    (addr, seen)
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(5),
        timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    }
}

/// Waits (up to 10 s) until `seen` holds `n` requests.
async fn wait_for(seen: &Mutex<Vec<Seen>>, n: usize) -> Vec<Seen> {
    for _ in 0..1000 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.lock().unwrap().clone()
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn firing_and_resolved_alerts_arrive_signed_and_a_503_is_retried() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (addr, seen) = server(vec![503]).await;
            let clock = ManualClock::at_unix(1_700_000_000);
            let monitor = AlertMonitor::new(AlertRules::default(), Arc::new(clock.clone()));
            let sink = WebhookAlertSink::builder(format!("http://{addr}/alerts"), SECRET)
                .retry_policy(fast_retries())
                .build()
                .unwrap();
            for _ in 0..11 {
                monitor.record_auth_failure();
            }
            for alert in monitor.evaluate() {
                sink.send(&alert).await;
            }
            clock.advance(Duration::from_secs(301));
            for alert in monitor.evaluate() {
                sink.send(&alert).await;
            }
            wait_for(&seen, 3).await
        })
    });
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|s| s.verified), "every delivery verifies");
    assert_eq!(seen[0].id, seen[1].id, "a retry keeps its webhook-id");
    assert_ne!(seen[1].id, seen[2].id);
    let types: Vec<&str> = seen
        .iter()
        .map(|s| s.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["alert.firing", "alert.firing", "alert.resolved"]);
    assert_eq!(
        seen[2].body["data"]["kind"],
        AlertKind::AuthFailures.as_str()
    );
    assert_eq!(seen[2].body["data"]["state"], "resolved");
    let text = handle.render();
    assert_eq!(
        value(
            &text,
            r#"hookroom_alert_deliveries_total{outcome="delivered"}"#
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"hookroom_status_push_retries_total{reason="server_error"}"#
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn a_url_that_never_answers_does_not_hold_up_the_monitor() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            // Accepts connections and never answers.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    held.push(stream);
                }
            });
            let sink = WebhookAlertSink::builder(format!("http://{addr}/alerts"), SECRET)
                .queue_capacity(2)
                .build()
                .unwrap();
            let clock = ManualClock::at_unix(1_700_000_000);
            let monitor = AlertMonitor::new(AlertRules::default(), Arc::new(clock.clone()));
            for _ in 0..11 {
                monitor.record_auth_failure();
            }
            let alert = monitor.evaluate().remove(0);
            // Ten sends return without the server ever answering: two wait
            // in the queue, the rest are dropped and counted.
            for _ in 0..10 {
                sink.send(&alert).await;
            }
        });
    });
    let text = handle.render();
    assert_eq!(
        value(
            &text,
            r#"hookroom_alert_deliveries_total{outcome="dropped"}"#
        ),
        8.0,
        "{text}"
    );
}
