//! The metrics a webhook service and a metered store record, read back as
//! Prometheus text: counts match what was sent, and no label value comes
//! from a sender.
#![cfg(feature = "memory")]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceExt;

use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::WebhookService;
use hookroom::source::GithubSource;
use hookroom::task::{ClaimRequest, InMemoryTaskStore, MeteredTaskStore, TaskStore};
use hookroom::verify::{GithubVerifier, Secrets, github};

const SECRET: &str = "It's a Secret to Everybody";
const PR: &str = r#"{"action":"opened","pull_request":{"number":42,"title":"Fix","html_url":"https://github.com/o/r/pull/42"},"repository":{"full_name":"o/r"}}"#;
const PUSH: &str = r#"{"ref":"refs/heads/main","repository":{"full_name":"o/r"}}"#;

fn request(
    path: &str,
    event: &str,
    delivery: &str,
    body: &str,
    signature: &str,
) -> http::Request<Full<Bytes>> {
    http::Request::post(path)
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request")
}

/// The value of the series `name{labels}` in Prometheus text, if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn deliveries_are_counted_by_source_and_outcome_with_bounded_labels() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || {
        hookroom::telemetry::describe();
        runtime.block_on(async {
            let routes = RoutesConfig::from_json(
                r#"{"routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review"}]}"#,
            )
            .expect("routes");
            let store: Arc<dyn TaskStore> =
                Arc::new(MeteredTaskStore::new(Arc::new(InMemoryTaskStore::new())));
            let service = WebhookService::builder(
                Arc::new(RuleRouter::from_config(&routes).expect("router")),
                store.clone(),
            )
            .source(
                "github",
                Arc::new(GithubVerifier::new(Secrets::try_from(SECRET).expect("secret"))),
                Arc::new(GithubSource::new()),
            )
            .build();
            let signed = |body: &str| github::sign(SECRET.as_bytes(), body.as_bytes());
            let sends = [
                (request("/webhook/github", "pull_request", "d-1", PR, &signed(PR)), 202),
                (request("/webhook/github", "pull_request", "d-1", PR, &signed(PR)), 200),
                (request("/webhook/github", "push", "d-2", PUSH, &signed(PUSH)), 200),
                (request("/webhook/github", "pull_request", "d-3", PR, "sha256=00"), 401),
                (request("/webhook/github", "pull_request", "d-4", PR, &signed("x")), 401),
                (request("/webhook/gh\"{evil}", "pull_request", "d-5", PR, &signed(PR)), 404),
            ];
            for (request, status) in sends {
                let response = service.clone().oneshot(request).await.expect("answer");
                assert_eq!(response.status().as_u16(), status);
            }
            let claimed = store
                .claim(&ClaimRequest {
                    room: "pr-review".into(),
                    agent: "a".into(),
                    capabilities: vec![],
                    lease: std::time::Duration::from_secs(30),
                })
                .await
                .expect("claim")
                .expect("a task");
            store
                .complete(&claimed.task.id, &claimed.token, None)
                .await
                .expect("complete");
        });
    });
    let text = handle.render();
    let count = |series: &str| value(&text, series).unwrap_or(0.0);
    let deliveries = "hookroom_webhook_deliveries_total";
    assert_eq!(
        count(&format!(
            r#"{deliveries}{{source="github",outcome="accepted"}}"#
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&format!(
            r#"{deliveries}{{source="github",outcome="duplicate"}}"#
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&format!(
            r#"{deliveries}{{source="github",outcome="ignored"}}"#
        )),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(&format!(
            r#"{deliveries}{{source="github",outcome="refused"}}"#
        )),
        2.0,
        "{text}"
    );
    assert_eq!(
        count(&format!(
            r#"{deliveries}{{source="unknown",outcome="refused"}}"#
        )),
        1.0,
        "{text}"
    );
    let failures = "hookroom_webhook_verification_failures_total";
    for reason in ["signature_mismatch", "malformed_header"] {
        assert_eq!(
            count(&format!(
                r#"{failures}{{source="github",reason="{reason}"}}"#
            )),
            1.0,
            "{reason}: {text}"
        );
    }
    assert_eq!(
        count(r#"hookroom_tasks_finished_total{status="DONE"}"#),
        1.0,
        "{text}"
    );
    assert!(
        count("hookroom_task_claim_latency_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(
        count(r#"hookroom_http_request_duration_seconds_count{endpoint="webhook"}"#) >= 6.0,
        "{text}"
    );
    assert!(
        text.contains(r#"hookroom_store_operation_duration_seconds_count{operation="insert"}"#),
        "{text}"
    );
    // No label value is taken from input: the sender's path never shows.
    assert!(!text.contains("evil"), "{text}");
    // Every line is a comment or `name{labels} value`.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, number) = line.rsplit_once(' ').expect("series and value");
        assert!(number.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("hookroom_"), "{line}");
    }
}

/// A request id comes back in the answer's header and, for an error, in
/// its body: the caller's own when it sent a usable one, a fresh one else.
#[tokio::test]
async fn request_ids_are_echoed_in_headers_and_error_bodies() {
    use http_body_util::BodyExt;
    let routes = RoutesConfig::from_json(
        r#"{"routes": [{"source": "github", "event": "*", "target_room": "r"}]}"#,
    )
    .expect("routes");
    let service = WebhookService::builder(
        Arc::new(RuleRouter::from_config(&routes).expect("router")),
        Arc::new(InMemoryTaskStore::new()),
    )
    .source(
        "github",
        Arc::new(GithubVerifier::new(
            Secrets::try_from(SECRET).expect("secret"),
        )),
        Arc::new(GithubSource::new()),
    )
    .build();
    let mut forged = request("/webhook/github", "pull_request", "d-1", PR, "sha256=00");
    forged
        .headers_mut()
        .insert("x-request-id", "req-from-proxy-42".parse().expect("header"));
    let answer = service.clone().oneshot(forged).await.expect("answer");
    assert_eq!(answer.headers()["x-request-id"], "req-from-proxy-42");
    let body: serde_json::Value =
        serde_json::from_slice(&answer.into_body().collect().await.expect("body").to_bytes())
            .expect("json");
    assert_eq!(body["error"]["request_id"], "req-from-proxy-42");

    // No id (or an unusable one): a fresh id, the same in header and body.
    let mut forged = request("/webhook/github", "pull_request", "d-2", PR, "sha256=00");
    forged
        .headers_mut()
        .insert("x-request-id", "has space".parse().expect("header"));
    let answer = service.clone().oneshot(forged).await.expect("answer");
    let header = answer.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(header, "has space");
    assert_eq!(header.len(), 32);
    let body: serde_json::Value =
        serde_json::from_slice(&answer.into_body().collect().await.expect("body").to_bytes())
            .expect("json");
    assert_eq!(body["error"]["request_id"], header.as_str());
}

/// The per-room gauges count every task of the store by status (across
/// list pages) and give the age of the oldest pending task.
#[test]
fn task_gauges_count_rooms_and_statuses_across_pages() {
    use hookroom::clock::{Clock, ManualClock};
    use hookroom::task::NewTask;

    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let clock = ManualClock::at_unix(1_700_000_000);
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let store = InMemoryTaskStore::with_clock(Arc::new(clock.clone()));
            let task = |room: &str, n: usize| NewTask {
                room: room.into(),
                title: "t".into(),
                description: String::new(),
                priority: 1,
                source: "github".into(),
                source_event: "push".into(),
                source_url: None,
                delivery_id: format!("{room}-{n}"),
                payload: "{}".into(),
                required_capabilities: vec![],
                ttl: None,
            };
            // More than one 500-task page in "a".
            for n in 0..1_203 {
                store.insert(task("a", n)).await.expect("insert");
            }
            clock.advance(std::time::Duration::from_secs(60));
            store.insert(task("b", 0)).await.expect("insert");
            store
                .claim(&ClaimRequest {
                    room: "a".into(),
                    agent: "x".into(),
                    capabilities: vec![],
                    lease: std::time::Duration::from_secs(30),
                })
                .await
                .expect("claim")
                .expect("a task");
            clock.advance(std::time::Duration::from_secs(30));
            hookroom::telemetry::record_task_gauges(&store, clock.now())
                .await
                .expect("scan");
        });
    });
    let text = handle.render();
    let count = |series: &str| value(&text, series);
    assert_eq!(
        count(r#"hookroom_tasks{room="a",status="PENDING"}"#),
        Some(1_202.0),
        "{text}"
    );
    assert_eq!(
        count(r#"hookroom_tasks{room="a",status="RUNNING"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"hookroom_tasks{room="b",status="PENDING"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"hookroom_oldest_pending_task_age_seconds{room="a"}"#),
        Some(90.0),
        "{text}"
    );
    assert_eq!(
        count(r#"hookroom_oldest_pending_task_age_seconds{room="b"}"#),
        Some(30.0),
        "{text}"
    );
}
