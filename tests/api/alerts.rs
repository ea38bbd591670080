//! Alerts from the webhook service's deliveries, shown by `/health`.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::ServiceExt;

use hookroom::alert::{AlertKind, AlertMonitor, AlertRules, AlertState};
use hookroom::clock::ManualClock;
use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::{BearerTokens, HealthService, WebhookService};
use hookroom::source::GithubSource;
use hookroom::task::{InMemoryTaskStore, TaskStore};
use hookroom::verify::{GithubVerifier, Secrets};

const PR: &str = r#"{"action":"opened","pull_request":{"number":42,"title":"Fix"}}"#;

async fn json(
    response: http::Response<impl http_body::Body<Error = impl std::fmt::Debug>>,
) -> Value {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

#[tokio::test]
async fn forged_signatures_fire_the_auth_alert_and_health_shows_it() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let monitor = Arc::new(AlertMonitor::new(
        AlertRules::default(),
        Arc::new(clock.clone()),
    ));
    let routes = RoutesConfig::from_json(
        r#"{"routes": [{"source": "github", "event": "*", "target_room": "r"}]}"#,
    )
    .expect("routes");
    let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
    let service = WebhookService::builder(
        Arc::new(RuleRouter::from_config(&routes).expect("router")),
        store.clone(),
    )
    .source(
        "github",
        Arc::new(GithubVerifier::new(
            Secrets::try_from("s3cret").expect("secret"),
        )),
        Arc::new(GithubSource::new()),
    )
    .alerts(monitor.clone())
    .clock(Arc::new(clock.clone()))
    .build();
    let forged = |n: usize| {
        http::Request::post("/webhook/github")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", format!("d-{n}"))
            .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
            .body(Full::new(Bytes::from(PR)))
            .expect("request")
    };
    for n in 0..11 {
        let response = service.clone().oneshot(forged(n)).await.expect("answer");
        assert_eq!(response.status(), 401);
    }
    let changes = monitor.evaluate();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].kind, AlertKind::AuthFailures);
    assert_eq!(changes[0].state, AlertState::Firing);
    assert_eq!(changes[0].value, 11.0);

    let health = HealthService::new(store)
        .sources(["github"])
        .principals(BearerTokens::parse_list("root").expect("tokens"))
        .clock(Arc::new(clock.clone()))
        .alerts(monitor.clone());
    let anonymous = http::Request::get("/health")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = health.clone().oneshot(anonymous).await.expect("answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        json(answer).await,
        serde_json::json!({"status": "degraded"})
    );
    let admin = http::Request::get("/health")
        .header("authorization", "Bearer root")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let detail = json(health.clone().oneshot(admin).await.expect("answer")).await;
    assert_eq!(detail["status"], "degraded");
    assert_eq!(detail["alerts"][0]["kind"], "auth_failures");
    assert_eq!(detail["alerts"][0]["state"], "firing");

    // Out of the window: resolved, and health is ok again.
    clock.advance(Duration::from_secs(301));
    assert_eq!(monitor.evaluate()[0].state, AlertState::Resolved);
    let anonymous = http::Request::get("/health")
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(
        json(health.oneshot(anonymous).await.expect("answer")).await,
        serde_json::json!({"status": "ok"})
    );
}

/// A component added to `/health` (a status outbox, say) shows in the
/// admin detail, and never in the anonymous answer.
#[tokio::test]
async fn extra_components_show_in_the_admin_detail_only() {
    let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
    let health = HealthService::new(store)
        .sources(["github"])
        .principals(BearerTokens::parse_list("root").expect("tokens"))
        .component(
            "status_pushes",
            Arc::new(|| serde_json::json!([{"queued": 3, "dropped_full": 1}])),
        );
    let admin = http::Request::get("/health")
        .header("authorization", "Bearer root")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let detail = json(health.clone().oneshot(admin).await.expect("answer")).await;
    assert_eq!(detail["components"]["status_pushes"][0]["queued"], 3);
    assert_eq!(detail["components"]["status_pushes"][0]["dropped_full"], 1);
    let anonymous = http::Request::get("/health")
        .body(Full::new(Bytes::new()))
        .expect("request");
    assert_eq!(
        json(health.oneshot(anonymous).await.expect("answer")).await,
        serde_json::json!({"status": "ok"})
    );
}
