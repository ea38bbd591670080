//! The example gateway's Routes API wiring (`examples/support/routes_api.rs`):
//! the Routes API's paths go to it, every other path to the gateway.
#![cfg(feature = "memory")]

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tower_service::Service;

use hookroom::route::{RouteSpec, RuleRouter};
use hookroom::service::{BearerTokens, Gateway, WebhookService};
use hookroom::status::NoopStatusSink;
use hookroom::task::{InMemoryTaskStore, TaskStore};

#[path = "../examples/support/routes_api.rs"]
#[allow(dead_code)]
mod routes_api;

#[tokio::test]
async fn routes_api_paths_go_to_it_and_others_to_the_gateway() {
    let router = Arc::new(RuleRouter::new(vec![RouteSpec::new("github", "*", "r")], None).unwrap());
    let store: Arc<dyn TaskStore> = Arc::new(InMemoryTaskStore::new());
    let ingest = WebhookService::builder(Arc::clone(&router) as _, Arc::clone(&store))
        .status_sink(Arc::new(NoopStatusSink))
        .build();
    let gateway = Gateway::new(ingest).admin_tokens(BearerTokens::parse_list("adm").unwrap());
    // A variable nobody sets: no admin token (setting one would need
    // `unsafe`), so the Routes API answers with its own refusal.
    let api =
        routes_api::routes_api(router, store, "HOOKROOM_TEST_ROUTES_API_ADMIN", None).unwrap();
    let mut app = routes_api::WithRoutesApi::new(api, gateway);
    let mut status = async |path: &str| {
        let request = Request::get(path)
            .header("authorization", "Bearer adm")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = app.call(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    // The Routes API's own answer (the gateway would say `not_found`).
    assert_eq!(
        status("/api/routes").await,
        (403, "admin_not_configured".into())
    );
    assert_eq!(
        status("/api/deliveries").await,
        (403, "admin_not_configured".into())
    );
    // The gateway's own paths still answer.
    assert_eq!(status("/operations").await, (200, String::new()));
    assert_eq!(status("/api/tasks").await, (404, "not_found".into()));
}
