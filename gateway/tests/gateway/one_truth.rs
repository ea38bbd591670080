//! Two processes on one store see one truth: a task delivered to a gateway
//! and finished through `hookroom mcp` on the same store shows `DONE` in
//! the gateway's Jobs API, on SQLite and on PostgreSQL.

use std::process::Stdio;

use hookroom::mcp::rmcp::RoleClient;
use hookroom::mcp::rmcp::ServiceExt;
use hookroom::mcp::rmcp::model::{CallToolRequestParams, CallToolResult};
use hookroom::mcp::rmcp::service::RunningService;
use serde_json::{Value, json};

use crate::support::{Gateway, TOKEN, api, binary, deliver, routes_file};

async fn call(client: &RunningService<RoleClient, ()>, tool: &'static str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let result: CallToolResult = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result.structured_content.expect("structured output")
}

/// Delivers a webhook to a gateway on `store`, finishes its task through
/// `hookroom mcp --store store`, and reads the job from the gateway.
async fn a_task_finished_through_mcp_is_done_in_the_gateways_jobs_api(store: &str) {
    let mut command = crate::support::command();
    command
        .env("HOOKROOM_API_TOKEN", TOKEN)
        .arg("serve")
        .arg("--config")
        .arg(routes_file())
        .args(["--store", store, "--listen", "127.0.0.1:0"]);
    let gateway = Gateway::spawn(command);
    let (status, accepted) = deliver(gateway.addr, "one-truth-1").await;
    assert_eq!(status, 202, "{accepted}");
    let task_id = accepted["task_id"].as_str().unwrap().to_owned();

    let mut mcp = tokio::process::Command::new(binary())
        .args(["mcp", "--store", store, "--agent", "mcp-agent"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("hookroom mcp starts");
    let stdout = mcp.stdout.take().unwrap();
    let stdin = mcp.stdin.take().unwrap();
    let client = ().serve((stdout, stdin)).await.expect("initialize");
    call(&client, "join_room", json!({"room": "pr-review"})).await;
    let claimed = call(&client, "claim_task", json!({"task_id": task_id})).await;
    assert_eq!(claimed["task"]["status"], "RUNNING", "{claimed}");
    let done = call(
        &client,
        "complete_task",
        json!({"task_id": task_id, "result": {"verdict": "approved"}}),
    )
    .await;
    assert_eq!(done["task"]["status"], "DONE", "{done}");
    client.cancel().await.expect("the session ends");

    let (status, job) = api(
        gateway.addr,
        &format!("GET /api/jobs/{task_id}?include_history=true"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["job"]["status"], "DONE", "{job}");
    let history: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["PENDING", "RUNNING", "DONE"], "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    let dir = std::env::temp_dir().join(format!("hookroom-one-truth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", dir.join("shared.db").display());
    a_task_finished_through_mcp_is_done_in_the_gateways_jobs_api(&store).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(pg) = crate::postgres::TestPostgres::start() else {
        return;
    };
    a_task_finished_through_mcp_is_done_in_the_gateways_jobs_api(&pg.url).await;
}

/// A route added through `hookroom mcp --routes FILE --admin` changes where
/// a gateway on the same `--config FILE` sends webhooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_added_through_mcp_changes_where_the_gateways_webhooks_go() {
    let dir =
        std::env::temp_dir().join(format!("hookroom-one-truth-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.json");
    std::fs::copy(routes_file(), &routes).unwrap();
    let mut command = crate::support::command();
    command
        .env("HOOKROOM_API_TOKEN", TOKEN)
        .arg("serve")
        .arg("--config")
        .arg(&routes)
        .args(["--store", "memory", "--listen", "127.0.0.1:0"]);
    let gateway = Gateway::spawn(command);

    let mut mcp = tokio::process::Command::new(binary())
        .arg("mcp")
        .arg("--store")
        .arg(format!("sqlite:{}", dir.join("mcp.db").display()))
        .arg("--routes")
        .arg(&routes)
        .arg("--admin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("hookroom mcp starts");
    let stdout = mcp.stdout.take().unwrap();
    let stdin = mcp.stdin.take().unwrap();
    let client = ().serve((stdout, stdin)).await.expect("initialize");
    // Before every shipped route: pull requests now go to `urgent`.
    call(
        &client,
        "add_route",
        json!({"source": "github", "event": "pull_request.*", "target_room": "urgent", "priority": 0}),
    )
    .await;
    client.cancel().await.expect("the session ends");

    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    let mut n = 0;
    loop {
        n += 1;
        let (status, accepted) = deliver(gateway.addr, &format!("one-truth-route-{n}")).await;
        assert_eq!(status, 202, "{accepted}");
        if accepted["room"] == "urgent" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway never routed by the MCP-added route: {accepted}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(gateway);
    std::fs::remove_dir_all(&dir).unwrap();
}
