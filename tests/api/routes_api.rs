//! The Routes API, black-box: every endpoint, every error answer, explain's
//! verdicts, delivery history pages, and changes written back to the routes
//! file.
#![cfg(feature = "memory")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower_service::Service;

use hookroom::route::{RouteDecision, RouteSpec, Router, RoutesConfig, RoutesFile, RuleRouter};
use hookroom::service::{ApiTokens, BearerTokens, RoutesApi, RoutesApiBuilder};
use hookroom::task::{
    ClaimRequest, ClaimToken, Claimed, FailAction, InMemoryTaskStore, Inserted, NewTask, Payload,
    StoreError, Task, TaskId, TaskQuery, TaskStore,
};
use hookroom::verify::dangerous;
use hookroom::{Event, Verified};

const ADMIN: &str = "Bearer admin-token";
const AGENT: &str = "Bearer agent-token";

fn tokens() -> ApiTokens {
    ApiTokens::new(
        BearerTokens::parse_list("agent-token").unwrap(),
        BearerTokens::parse_list("admin-token").unwrap(),
    )
}

fn router() -> Arc<RuleRouter> {
    Arc::new(
        RuleRouter::new(
            vec![
                RouteSpec::new("github", "pull_request.*", "pr-review").with_priority(2),
                RouteSpec::new("github", "issues.labeled", "auto-code")
                    .with_filter("label", "AI-WIP")
                    .with_priority(1),
                RouteSpec::new("slack", "app_mention", "slack-support").with_priority(3),
            ],
            Some("general".into()),
        )
        .unwrap(),
    )
}

fn api(router: Arc<RuleRouter>, store: Arc<dyn TaskStore>) -> RoutesApi {
    api_with(router, store).build()
}

/// The API with the admin tokens, to set more before building.
fn api_with(router: Arc<RuleRouter>, store: Arc<dyn TaskStore>) -> RoutesApiBuilder {
    RoutesApi::builder(router, store).principals(tokens())
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn call(
    api: &mut RoutesApi,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = api.call(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {bytes:?}"));
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(api: &mut RoutesApi, path: &str) -> Answer {
    call(api, Method::GET, path, Some(ADMIN), "").await
}

async fn post(api: &mut RoutesApi, path: &str, body: Value) -> Answer {
    call(api, Method::POST, path, Some(ADMIN), &body.to_string()).await
}

fn room_of(router: &RuleRouter, source: &str, name: &str, payload: &'static str) -> String {
    let event = Verified::new(
        Event {
            source: source.into(),
            name: name.into(),
            delivery_id: "d".into(),
            title: String::new(),
            description: String::new(),
            url: None,
            payload: Bytes::from_static(payload.as_bytes()),
        },
        dangerous::assume_verified(0),
    );
    match router.route(&event) {
        RouteDecision::Deliver(route) => route.room.to_string(),
        RouteDecision::Ignore { .. } => "<ignored>".into(),
    }
}

fn memory() -> Arc<dyn TaskStore> {
    Arc::new(InMemoryTaskStore::new())
}

// --- auth ---------------------------------------------------------------

#[tokio::test]
async fn every_endpoint_needs_an_admin_token() {
    let mut api = api(router(), memory());
    let endpoints = [
        (Method::GET, "/api/routes"),
        (Method::POST, "/api/routes"),
        (Method::DELETE, "/api/routes/0"),
        (Method::POST, "/api/routes/explain"),
        (Method::GET, "/api/deliveries"),
    ];
    for (method, path) in endpoints {
        let a = call(&mut api, method.clone(), path, None, "").await;
        assert_eq!(
            (a.status, a.code()),
            (401, "unauthorized"),
            "{method} {path}"
        );
        assert_eq!(a.headers["www-authenticate"], "Bearer");
        let a = call(&mut api, method.clone(), path, Some("Bearer wrong"), "").await;
        assert_eq!(
            (a.status, a.code()),
            (401, "unauthorized"),
            "{method} {path}"
        );
        let a = call(&mut api, method.clone(), path, Some(AGENT), "").await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{method} {path}");
    }
    // Nothing was removed by the refused DELETE.
    assert_eq!(
        get(&mut api, "/api/routes").await.body["routes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn without_an_admin_only_admins_are_refused_route_changes_and_reads() {
    let mut api = RoutesApi::builder(router(), memory())
        .principals(ApiTokens::new(
            BearerTokens::parse_list("agent-token").unwrap(),
            BearerTokens::none(),
        ))
        .build();
    let a = call(&mut api, Method::GET, "/api/routes", Some(ADMIN), "").await;
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
    let a = call(&mut api, Method::GET, "/api/routes", Some(AGENT), "").await;
    assert_eq!((a.status, a.code()), (403, "forbidden"));
    let mut default = RoutesApi::builder(router(), memory()).build();
    let a = call(&mut default, Method::GET, "/api/routes", Some(ADMIN), "").await;
    assert_eq!((a.status, a.code()), (401, "unauthorized"));
}

// --- paths and methods ----------------------------------------------------

#[tokio::test]
async fn unknown_paths_and_methods() {
    let mut api = api(router(), memory());
    assert!(
        api.handles("/api/routes")
            && api.handles("/api/routes/7")
            && api.handles("/api/deliveries")
    );
    assert!(!api.handles("/api/tasks") && !api.handles("/api/routesx") && !api.handles("/routes"));
    let a = get(&mut api, "/api/tasks").await;
    assert_eq!((a.status, a.code()), (404, "not_found"));
    for (method, path, allow) in [
        (Method::PUT, "/api/routes", "GET, POST, DELETE"),
        (Method::GET, "/api/routes/explain", "POST"),
        (Method::GET, "/api/routes/0", "DELETE"),
        (Method::POST, "/api/deliveries", "GET"),
    ] {
        let a = call(&mut api, method.clone(), path, Some(ADMIN), "").await;
        assert_eq!(
            (a.status, a.code()),
            (405, "method_not_allowed"),
            "{method} {path}"
        );
        assert_eq!(a.headers["allow"], allow);
    }
    let mut rooted = RoutesApi::builder(router(), memory())
        .principals(tokens())
        .prefix("/")
        .build();
    assert_eq!(get(&mut rooted, "/routes").await.status, 200);
    assert_eq!(get(&mut rooted, "/api/routes").await.status, 404);
}

// --- GET /api/routes --------------------------------------------------------

#[tokio::test]
async fn list_routes_in_evaluation_order() {
    let mut api = api(router(), memory());
    let a = get(&mut api, "/api/routes").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["default_room"], "general");
    assert_eq!(a.body["persistent"], false);
    let routes = a.body["routes"].as_array().unwrap();
    let rooms: Vec<&str> = routes
        .iter()
        .map(|r| r["target_room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["auto-code", "pr-review", "slack-support"]);
    assert_eq!(routes[0]["id"], 1);
    assert_eq!(routes[0]["filter"], json!({"label": "AI-WIP"}));
}

// --- POST /api/routes -------------------------------------------------------

#[tokio::test]
async fn add_a_route_and_it_routes() {
    let router = router();
    let mut api = api(Arc::clone(&router), memory());
    assert_eq!(room_of(&router, "github", "push", "{}"), "general");
    let a = post(
        &mut api,
        "/api/routes",
        json!({"source": "github", "event": "push", "filter": {"ref": "refs/heads/main"},
               "target_room": "ci", "priority": 1}),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["route"]["id"], 3);
    assert_eq!(a.body["route"]["target_room"], "ci");
    assert_eq!(a.headers["location"], "/api/routes/3");
    assert_eq!(
        room_of(&router, "github", "push", r#"{"ref":"refs/heads/main"}"#),
        "ci"
    );
    // Same priority as `auto-code`, which is older: it ranks second.
    let listed = get(&mut api, "/api/routes").await;
    assert_eq!(listed.body["routes"][1]["target_room"], "ci");
}

#[tokio::test]
async fn invalid_routes_are_refused_with_the_reason() {
    let router = router();
    let mut api = api(Arc::clone(&router), memory());
    let cases = [
        (
            json!({"source": "github", "event": "push a", "target_room": "r"}),
            "route_invalid_glob",
            "`event`",
        ),
        (
            json!({"source": "github", "event": "push"}),
            "route_missing_target_room",
            "target_room",
        ),
        (
            json!({"source": "github", "event": "push", "target_room": "r", "ttl_seconds": 0}),
            "route_zero_ttl",
            "ttl_seconds",
        ),
        (
            json!({"source": "github", "event": "push", "target_room": "r", "filter": {"a": null}}),
            "route_invalid_filter",
            "`a`",
        ),
        (
            json!({"source": "github", "event": "push", "target_room": "r", "colour": 1}),
            "invalid_json",
            "colour",
        ),
        (
            json!({"event": "push", "target_room": "r"}),
            "invalid_json",
            "source",
        ),
        (
            json!({"source": 1, "event": "push", "target_room": "r"}),
            "invalid_json",
            "invalid type",
        ),
    ];
    for (body, code, mentions) in cases {
        let a = post(&mut api, "/api/routes", body.clone()).await;
        assert_eq!((a.status, a.code()), (400, code), "{body}");
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    let a = call(&mut api, Method::POST, "/api/routes", Some(ADMIN), "{").await;
    assert_eq!((a.status, a.code()), (400, "invalid_json"));
    assert_eq!(router.routes().len(), 3);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let mut api = api_with(router(), memory()).body_limit(64).build();
    let payload = "x".repeat(100);
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "push", "payload": payload}),
    )
    .await;
    assert_eq!((a.status, a.code()), (413, "payload_too_large"));
}

// --- DELETE /api/routes/{id} ---------------------------------------------------

#[tokio::test]
async fn remove_a_route() {
    let router = router();
    let mut api = api(Arc::clone(&router), memory());
    assert_eq!(
        room_of(&router, "github", "pull_request.opened", "{}"),
        "pr-review"
    );
    let a = call(&mut api, Method::DELETE, "/api/routes/0", Some(ADMIN), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["removed"]["target_room"], "pr-review");
    assert_eq!(
        room_of(&router, "github", "pull_request.opened", "{}"),
        "general"
    );
    for path in [
        "/api/routes/0",
        "/api/routes/99",
        "/api/routes/abc",
        "/api/routes/-1",
    ] {
        let a = call(&mut api, Method::DELETE, path, Some(ADMIN), "").await;
        assert_eq!((a.status, a.code()), (404, "route_not_found"), "{path}");
    }
    assert_eq!(router.routes().len(), 2);
}

#[tokio::test]
async fn remove_routes_by_source_and_event() {
    let router = router();
    router
        .add(RouteSpec::new("github", "pull_request.*", "second").with_priority(9))
        .unwrap();
    let mut api = api(Arc::clone(&router), memory());
    let a = call(
        &mut api,
        Method::DELETE,
        "/api/routes?source=github&event=pull_request.*",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let rooms: Vec<&str> = a.body["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target_room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, ["pr-review", "second"]);
    assert_eq!(router.routes().len(), 2);
    // Patterns as written, not what they match.
    for (query, status, code) in [
        (
            "source=github&event=pull_request.opened",
            404,
            "route_not_found",
        ),
        ("source=github", 400, "invalid_query"),
        ("event=push", 400, "invalid_query"),
        ("source=github&event=push&room=x", 400, "unknown_parameter"),
    ] {
        let path = format!("/api/routes?{query}");
        let a = call(&mut api, Method::DELETE, &path, Some(ADMIN), "").await;
        assert_eq!((a.status, a.code()), (status, code), "{query}");
    }
    assert_eq!(router.routes().len(), 2);
}

// --- POST /api/routes/explain ---------------------------------------------------

fn verdict(explained: &Value, id: u64) -> &Value {
    explained["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no route {id} in {explained}"))
}

#[tokio::test]
async fn explain_a_matching_route() {
    let mut api = api(router(), memory());
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "issues.labeled", "payload": {"label": {"name": "AI-WIP"}}}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["decision"],
        json!({"outcome": "route", "route_id": 1, "room": "auto-code", "priority": 1})
    );
    assert_eq!(verdict(&a.body, 1)["result"], "selected");
}

#[tokio::test]
async fn explain_a_source_mismatch() {
    let mut api = api(router(), memory());
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "app_mention", "payload": {}}),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        verdict(&a.body, 2)["failed"],
        json!({"condition": "source", "pattern": "slack", "actual": "github"})
    );
    assert_eq!(verdict(&a.body, 2)["result"], "no_match");
    assert_eq!(a.body["decision"]["outcome"], "default_room");
    assert_eq!(a.body["decision"]["room"], "general");
}

#[tokio::test]
async fn explain_an_event_glob_mismatch() {
    let mut api = api(router(), memory());
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "pull_requests.opened"}),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        verdict(&a.body, 0)["failed"],
        json!({"condition": "event", "pattern": "pull_request.*", "actual": "pull_requests.opened"})
    );
}

#[tokio::test]
async fn explain_a_filter_mismatch_with_expected_and_actual() {
    let mut api = api(router(), memory());
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "issues.labeled",
               "payload": {"label": {"name": "bug", "color": "d73a4a"}}}),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        verdict(&a.body, 1)["failed"],
        json!({"condition": "filter", "field": "label", "expected": "AI-WIP", "actual": "bug",
               "reason": "different"})
    );
    // A form-encoded body, given as a JSON string, is no JSON: filters fail.
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "issues.labeled", "payload": "label=AI-WIP"}),
    )
    .await;
    assert_eq!(verdict(&a.body, 1)["failed"]["reason"], "not_json");
    let a = post(
        &mut api,
        "/api/routes/explain",
        json!({"source": "github", "event": "issues.labeled", "payload": {}}),
    )
    .await;
    assert_eq!(verdict(&a.body, 1)["failed"]["reason"], "missing");
    assert_eq!(verdict(&a.body, 1)["failed"]["actual"], Value::Null);
}

#[tokio::test]
async fn explain_refuses_bad_requests() {
    let mut api = api(router(), memory());
    for body in [
        json!({"event": "push"}),
        json!({"source": "s", "event": "e", "extra": 1}),
        json!([]),
    ] {
        let a = post(&mut api, "/api/routes/explain", body.clone()).await;
        assert_eq!((a.status, a.code()), (400, "invalid_json"), "{body}");
    }
}

// --- GET /api/deliveries ----------------------------------------------------------

async fn deliver(store: &dyn TaskStore, room: &str, source: &str, n: usize) -> TaskId {
    let inserted = store
        .insert(NewTask {
            room: room.into(),
            title: format!("task {n}"),
            description: String::new(),
            priority: 2,
            source: source.into(),
            source_event: "pull_request.opened".into(),
            source_url: None,
            delivery_id: format!("{source}-{n}"),
            payload: Payload::new(format!(r#"{{"n":{n}}}"#).into_bytes()),
            required_capabilities: Vec::new(),
            ttl: None,
        })
        .await
        .unwrap();
    // Distinct creation times, so that newest-first is well defined.
    tokio::time::sleep(Duration::from_millis(2)).await;
    inserted.id
}

#[tokio::test]
async fn deliveries_come_from_the_store_newest_first_in_pages() {
    let store = memory();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(deliver(&*store, "pr-review", "github", n).await);
    }
    deliver(&*store, "slack-support", "slack", 9).await;
    let mut api = api(router(), Arc::clone(&store));

    let a = get(&mut api, "/api/deliveries?room=pr-review&limit=2").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let page = a.body["deliveries"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["task_id"], ids[4].as_str());
    assert_eq!(page[0]["source"], "github");
    assert_eq!(page[0]["event"], "pull_request.opened");
    assert_eq!(page[0]["delivery_id"], "github-4");
    assert_eq!(page[0]["room"], "pr-review");
    assert_eq!(page[0]["status"], "PENDING");
    assert!(page[0]["created_at"].as_str().unwrap().contains('T'));
    assert!(page[0].get("payload").is_none(), "no payload unless asked");
    let cursor = a.body["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, ids[3].as_str());

    let mut seen: Vec<String> = page
        .iter()
        .map(|d| d["task_id"].as_str().unwrap().to_owned())
        .collect();
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let a = get(
            &mut api,
            &format!("/api/deliveries?room=pr-review&limit=2&cursor={c}"),
        )
        .await;
        assert_eq!(a.status, 200);
        seen.extend(
            a.body["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["task_id"].as_str().unwrap().to_owned()),
        );
        cursor = a.body["next_cursor"].as_str().map(str::to_owned);
    }
    let expected: Vec<String> = ids.iter().rev().map(|id| id.to_string()).collect();
    assert_eq!(seen, expected);

    let a = get(&mut api, "/api/deliveries?source=slack&payload=true").await;
    let page = a.body["deliveries"].as_array().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["payload"], json!({"n": 9}));
    assert_eq!(a.body["next_cursor"], Value::Null);

    let a = get(&mut api, "/api/deliveries?status=DONE").await;
    assert_eq!(a.body["deliveries"], json!([]));
    let a = get(&mut api, "/api/deliveries").await;
    assert_eq!(a.body["deliveries"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn deliveries_refuse_bad_queries() {
    let store = memory();
    deliver(&*store, "r", "github", 1).await;
    let mut api = api(router(), store);
    for (query, code) in [
        ("limit=0", "invalid_query"),
        ("limit=501", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("status=done", "invalid_query"),
        ("payload=yes", "invalid_query"),
        ("cursor=", "invalid_query"),
        ("cursor=no-such-task", "invalid_query"),
        ("rooms=r", "unknown_parameter"),
    ] {
        let a = get(&mut api, &format!("/api/deliveries?{query}")).await;
        assert_eq!((a.status, a.code()), (400, code), "{query}");
    }
    let a = get(&mut api, "/api/deliveries?cursor=no-such-task").await;
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cursor")
    );
}

/// A store whose every call fails.
#[derive(Debug)]
struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Backend {
        store: "down",
        source: "connection refused to db.internal:5432".into(),
    })
}

#[async_trait::async_trait]
impl TaskStore for DownStore {
    async fn insert(&self, _: NewTask) -> Result<Inserted, StoreError> {
        down()
    }
    async fn get(&self, _: &TaskId) -> Result<Option<Task>, StoreError> {
        down()
    }
    async fn list(&self, _: &TaskQuery) -> Result<Vec<Task>, StoreError> {
        down()
    }
    async fn claim(&self, _: &ClaimRequest) -> Result<Option<Claimed>, StoreError> {
        down()
    }
    async fn claim_task(&self, _: &TaskId, _: &ClaimRequest) -> Result<Claimed, StoreError> {
        down()
    }
    async fn heartbeat(&self, _: &TaskId, _: &ClaimToken, _: Duration) -> Result<Task, StoreError> {
        down()
    }
    async fn complete(
        &self,
        _: &TaskId,
        _: &ClaimToken,
        _: Option<Value>,
    ) -> Result<Task, StoreError> {
        down()
    }
    async fn fail(
        &self,
        _: &TaskId,
        _: &ClaimToken,
        _: &str,
        _: FailAction,
    ) -> Result<Task, StoreError> {
        down()
    }
    async fn release(&self, _: &TaskId, _: &ClaimToken) -> Result<Task, StoreError> {
        down()
    }
    async fn request_input(&self, _: &TaskId, _: &ClaimToken, _: &str) -> Result<Task, StoreError> {
        down()
    }
    async fn provide_input(&self, _: &TaskId, _: Value) -> Result<Task, StoreError> {
        down()
    }
    async fn take_input(&self, _: &TaskId, _: &ClaimToken) -> Result<Option<Value>, StoreError> {
        down()
    }
    async fn expire_pending(&self) -> Result<Vec<Task>, StoreError> {
        down()
    }
}

#[tokio::test]
async fn a_failing_store_answers_503_without_its_details() {
    let mut api = api(router(), Arc::new(DownStore));
    let a = get(&mut api, "/api/deliveries").await;
    assert_eq!((a.status, a.code()), (503, "store_unavailable"));
    assert!(!a.body.to_string().contains("db.internal"), "{}", a.body);
}

// --- persistence -----------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("hookroom-routes-api-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const ROUTES_FILE: &str = r#"{
  "routes": [
    {"source": "github", "event": "pull_request.opened", "target_room": "pr-review", "priority": 2},
    {"source": "github", "event": "issues.labeled", "filter": {"label": "AI-WIP"}, "target_room": "auto-code", "priority": 1}
  ],
  "secrets": {"github": "${GITHUB_WEBHOOK_SECRET}"},
  "default_room": "general"
}"#;

/// Loads the routes file the way a restarted gateway does.
fn restart(path: &std::path::Path) -> RuleRouter {
    RuleRouter::from_config(&RoutesConfig::from_path(path).unwrap()).unwrap()
}

#[tokio::test]
async fn changes_are_written_back_to_the_routes_file_and_survive_a_restart() {
    let dir = TempDir::new();
    let path = dir.0.join("routes.json");
    std::fs::write(&path, ROUTES_FILE).unwrap();
    let file = RoutesFile::new(&path);
    let router = Arc::new(RuleRouter::from_config(&file.load().unwrap()).unwrap());
    let mut api = api_with(Arc::clone(&router), memory())
        .routes_file(file)
        .build();

    let a = post(
        &mut api,
        "/api/routes",
        json!({"source": "github", "event": "push", "target_room": "ci", "priority": 2}),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.body["persistent"], true);
    assert_eq!(get(&mut api, "/api/routes").await.body["persistent"], true);

    let restarted = restart(&path);
    assert_eq!(room_of(&restarted, "github", "push", "{}"), "ci");
    // Ties keep their order: the added route ranks after the older one.
    let rooms: Vec<String> = restarted
        .routes()
        .into_iter()
        .map(|r| r.spec.target_room)
        .collect();
    assert_eq!(rooms, ["auto-code", "pr-review", "ci"]);
    let config = RoutesConfig::from_path(&path).unwrap();
    assert_eq!(config.default_room.as_deref(), Some("general"));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("${GITHUB_WEBHOOK_SECRET}")
    );

    // Remove the file's first route (id 0).
    let a = call(&mut api, Method::DELETE, "/api/routes/0", Some(ADMIN), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let restarted = restart(&path);
    assert_eq!(
        room_of(&restarted, "github", "pull_request.opened", "{}"),
        "general"
    );
    assert_eq!(restarted.routes().len(), 2);
    // Remove by patterns.
    let a = call(
        &mut api,
        Method::DELETE,
        "/api/routes?source=github&event=push",
        Some(ADMIN),
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let restarted = restart(&path);
    assert_eq!(room_of(&restarted, "github", "push", "{}"), "general");
    assert_eq!(restarted.routes().len(), 1);
    // Only the routes file is in the directory: no temporary file is left.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[tokio::test]
async fn a_failed_write_changes_nothing() {
    let dir = TempDir::new();
    let path = dir.0.join("routes.json");
    std::fs::write(&path, ROUTES_FILE).unwrap();
    let file = RoutesFile::new(&path);
    let router = Arc::new(RuleRouter::from_config(&file.load().unwrap()).unwrap());
    let mut api = api_with(Arc::clone(&router), memory())
        .routes_file(file)
        .build();
    // Someone broke the file meanwhile: it is not overwritten.
    std::fs::write(&path, "[]").unwrap();
    let a = post(
        &mut api,
        "/api/routes",
        json!({"source": "github", "event": "push", "target_room": "ci"}),
    )
    .await;
    assert_eq!((a.status, a.code()), (500, "routes_not_saved"));
    let a = call(&mut api, Method::DELETE, "/api/routes/0", Some(ADMIN), "").await;
    assert_eq!((a.status, a.code()), (500, "routes_not_saved"));
    assert_eq!(router.routes().len(), 2);
    assert_eq!(room_of(&router, "github", "push", "{}"), "general");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]");
}

/// Replay routes a stored delivery again with today's routes: after a route
/// is added, a delivery that went to the default room goes to the new room,
/// as exactly one new task that names the task it replays.
#[tokio::test]
async fn replay_routes_a_stored_delivery_again_into_one_new_task() {
    let store = memory();
    let router = router();
    let original = deliver(&*store, "general", "github", 1).await;
    let mut api = api(Arc::clone(&router), Arc::clone(&store));
    // `pull_request.opened` from GitHub goes to pr-review with today's routes.
    let replayed = post(
        &mut api,
        &format!("/api/deliveries/{original}/replay"),
        json!({}),
    )
    .await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert_eq!(replayed.body["status"], "accepted");
    assert_eq!(replayed.body["room"], "pr-review");
    assert_eq!(replayed.body["replay_of"], original.as_str());
    let new_id = TaskId::from(replayed.body["task_id"].as_str().unwrap());
    assert_ne!(new_id, original);
    let task = store.get(&new_id).await.unwrap().expect("stored");
    assert!(
        task.description.contains(original.as_str()),
        "{}",
        task.description
    );
    assert!(task.delivery_id.starts_with(&format!("replay:{original}:")));
    assert_eq!(
        task.payload,
        store.get(&original).await.unwrap().unwrap().payload
    );
    let all = store.list(&TaskQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2, "exactly one new task");

    let missing = post(&mut api, "/api/deliveries/no-such-task/replay", json!({})).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "task_not_found");
    let wrong_method = get(&mut api, &format!("/api/deliveries/{original}/replay")).await;
    assert_eq!(wrong_method.status, 405);
}
