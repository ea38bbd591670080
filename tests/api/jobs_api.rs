//! Black-box tests of the Jobs API service: every endpoint, every refusal
//! code, the job-status document's curl sequence, idempotent retries, and a
//! webhook task's job.
#![cfg(feature = "memory")]

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower::ServiceExt;

use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::{ApiTokens, BearerTokens, JobsApi, JobsApiBuilder, WebhookService};
use hookroom::source::GithubSource;
use hookroom::status::{InMemoryStatusSink, JobEvent, JobStatus, StatusSink};
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::{self, GithubVerifier, Secrets};

const AGENT: &str = "agent-token-1";
const AGENT_OLD: &str = "agent-token-0";
const ADMIN: &str = "admin-token";

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

fn api() -> (JobsApi, InMemoryStatusSink) {
    let registry = InMemoryStatusSink::new();
    (api_over(&registry).build(), registry)
}

/// The API over `registry` with the test's tokens, to set more before
/// building.
fn api_over(registry: &InMemoryStatusSink) -> JobsApiBuilder {
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(&format!("{AGENT},{AGENT_OLD}")).unwrap(),
        BearerTokens::parse_list(ADMIN).unwrap(),
    );
    JobsApi::builder(Arc::new(registry.clone())).principals(tokens)
}

async fn send_with(
    api: &JobsApi,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_owned()));
    let response = api
        .clone()
        .oneshot(request.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        json,
    }
}

async fn send(api: &JobsApi, method: &str, uri: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    let auth = format!("Bearer {AGENT}");
    send_with(
        api,
        method,
        uri,
        body.as_deref(),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
    )
    .await
}

async fn create(api: &JobsApi) -> String {
    let answer = send(api, "POST", "/api/jobs", Some(json!({}))).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    answer.json["job_id"].as_str().unwrap().to_owned()
}

fn code(answer: &Answer) -> &str {
    answer.json["error"]["code"].as_str().unwrap_or("")
}

// --- The document's sequence -------------------------------------------------

/// create → status → get with history → complete, with the document's own
/// bodies, as its curl calls send them.
#[tokio::test]
async fn the_documents_curl_sequence_gives_the_documents_answers() {
    let (api, _) = api();
    let created = send(
        &api,
        "POST",
        "/api/jobs",
        Some(json!({
            "input_data": {
                "pop_file_path": "populacja/data.xlsx",
                "pdf_directory": "pdfs/",
                "validation_mode": "full"
            },
            "metadata": {"user_id": "user123", "session_id": "session456"}
        })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["status"], "PENDING");
    assert_eq!(created.json["message"], "Job created successfully");
    let job_id = created.json["job_id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&job_id).is_ok(), "{job_id}");
    assert!(
        time::OffsetDateTime::parse(
            created.json["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    let updated = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/status"),
        Some(json!({
            "status": "RUNNING",
            "progress": {
                "current_step": "PDF Processing",
                "total_steps": 5,
                "completed_steps": 2,
                "percentage": 40,
                "estimated_remaining": "5 minutes"
            },
            "message": "Processing PDF files..."
        })),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.json["job"]["status"], "RUNNING");

    let fetched = send(
        &api,
        "GET",
        &format!("/api/jobs/{job_id}?include_history=true"),
        None,
    )
    .await;
    assert_eq!(fetched.status, StatusCode::OK);
    let job = &fetched.json["job"];
    assert_eq!(job["job_id"], job_id.as_str());
    assert_eq!(job["status"], "RUNNING");
    assert_eq!(job["input_data"]["validation_mode"], "full");
    assert_eq!(job["progress"]["percentage"], 40);
    assert_eq!(job["progress"]["current_step"], "PDF Processing");
    assert_eq!(job["metadata"]["user_id"], "user123");
    assert!(job["updated_at"].is_string());
    let history = fetched.json["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["status"], "PENDING");
    assert_eq!(history[0]["message"], "Job created");
    assert_eq!(history[0]["step"], "initialization");
    assert_eq!(history[1]["status"], "RUNNING");
    assert_eq!(history[1]["message"], "Processing PDF files...");
    assert_eq!(history[1]["step"], "PDF Processing");

    let completed = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/complete"),
        Some(json!({
            "final_status": "DONE",
            "summary": {
                "total_records_processed": 1500,
                "validation_issues_found": 23,
                "high_risk_records": 5,
                "processing_time": 180.5,
                "artifacts_generated": 4
            },
            "final_artifacts": [
                {"name": "audit_report.xlsx", "path": "outputs/reports/audit_report_20240115.xlsx",
                 "type": "excel_report", "size": 2048576, "description": "Comprehensive audit report"},
                {"name": "evidence_package.zip", "path": "outputs/evidence/evidence_20240115.zip",
                 "type": "evidence_package", "size": 15728640, "description": "Complete evidence package"}
            ],
            "completion_message": "Audit completed successfully"
        })),
    )
    .await;
    assert_eq!(completed.status, StatusCode::OK);
    let job = &completed.json["job"];
    assert_eq!(job["status"], "DONE");
    assert_eq!(job["artifacts"].as_array().unwrap().len(), 2);
    assert_eq!(job["artifacts"][0]["type"], "excel_report");
    assert_eq!(job["metadata"]["summary"]["total_records_processed"], 1500);
    assert!(completed.json.get("history").is_none());

    let history = send(
        &api,
        "GET",
        &format!("/api/jobs/{job_id}?include_history=true"),
        None,
    )
    .await
    .json["history"]
        .clone();
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["PENDING", "RUNNING", "DONE"]);
}

/// The document's Python helpers send `null` for what they leave out and
/// `include_history=False` / `True` as `requests` writes booleans.
#[tokio::test]
async fn the_documents_python_calls_work_as_written() {
    let (api, _) = api();
    let job_id = create(&api).await;
    // push_status(job_id, "RUNNING"): progress and message are None.
    let pushed = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/status"),
        Some(json!({"status": "RUNNING", "progress": null, "message": null})),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::OK);
    // pull_job(job_id): params={"include_history": False}.
    let pulled = send(
        &api,
        "GET",
        &format!("/api/jobs/{job_id}?include_history=False"),
        None,
    )
    .await;
    assert_eq!(pulled.status, StatusCode::OK);
    assert!(pulled.json.get("history").is_none());
    let pulled = send(
        &api,
        "GET",
        &format!("/api/jobs/{job_id}?include_history=True"),
        None,
    )
    .await;
    assert_eq!(pulled.json["history"].as_array().unwrap().len(), 2);
    // complete_job(job_id, "FAILED"): summary and final_artifacts are None.
    let completed = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/complete"),
        Some(json!({"final_status": "FAILED", "summary": null, "final_artifacts": null})),
    )
    .await;
    assert_eq!(completed.status, StatusCode::OK);
    assert_eq!(completed.json["job"]["status"], "FAILED");
}

// --- Endpoints ---------------------------------------------------------------

#[tokio::test]
async fn get_without_history_omits_it() {
    let (api, _) = api();
    let job_id = create(&api).await;
    let answer = send(&api, "GET", &format!("/api/jobs/{job_id}"), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["job"]["status"], "PENDING");
    assert!(answer.json.get("history").is_none());
}

#[tokio::test]
async fn create_takes_a_chosen_job_id() {
    let (api, registry) = api();
    let answer = send(
        &api,
        "POST",
        "/api/jobs",
        Some(json!({"job_id": "task-42"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json["job_id"], "task-42");
    assert!(registry.get("task-42", false).is_some());
}

#[tokio::test]
async fn list_is_newest_first_filtered_and_paged() {
    let (api, _) = api();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(create(&api).await);
    }
    send(
        &api,
        "POST",
        &format!("/api/jobs/{}/status", ids[1]),
        Some(json!({"status": "RUNNING"})),
    )
    .await;
    let listed = |answer: &Answer| -> Vec<String> {
        answer.json["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| job["job_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = send(&api, "GET", "/api/jobs", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed(&all), newest_first);
    assert!(all.json.get("next_cursor").is_none());

    let running = send(&api, "GET", "/api/jobs?status=RUNNING", None).await;
    assert_eq!(listed(&running), [ids[1].clone()]);

    let mut seen = Vec::new();
    let mut uri = "/api/jobs?limit=2".to_owned();
    loop {
        let page = send(&api, "GET", &uri, None).await;
        assert_eq!(page.status, StatusCode::OK);
        let jobs = listed(&page);
        assert!(jobs.len() <= 2);
        seen.extend(jobs);
        match page.json["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/jobs?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
}

#[tokio::test]
async fn agent_and_admin_tokens_both_work_and_any_of_several() {
    let (api, _) = api();
    for token in [AGENT, AGENT_OLD, ADMIN] {
        let auth = format!("Bearer {token}");
        let answer = send_with(&api, "GET", "/api/jobs", None, &[("authorization", &auth)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{token}");
    }
}

// --- Refusals ----------------------------------------------------------------

#[tokio::test]
async fn unknown_job_is_e_job_not_found_on_every_endpoint() {
    let (api, _) = api();
    for (method, uri, body) in [
        ("GET", "/api/jobs/nope", None),
        ("GET", "/api/jobs/nope?include_history=true", None),
        (
            "POST",
            "/api/jobs/nope/status",
            Some(json!({"status": "RUNNING"})),
        ),
        (
            "POST",
            "/api/jobs/nope/complete",
            Some(json!({"final_status": "DONE"})),
        ),
    ] {
        let answer = send(&api, method, uri, body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(code(&answer), "E_JOB_NOT_FOUND", "{method} {uri}");
    }
}

#[tokio::test]
async fn bad_statuses_and_illegal_transitions_are_e_invalid_status() {
    let (api, registry) = api();
    let job_id = create(&api).await;
    let status_uri = format!("/api/jobs/{job_id}/status");
    let complete_uri = format!("/api/jobs/{job_id}/complete");
    for (uri, body) in [
        (&status_uri, json!({"status": "PAUSED"})),
        (&status_uri, json!({"status": "running"})),
        (&status_uri, json!({"status": 3})),
        (&status_uri, json!({"status": "DONE"})),
        (&complete_uri, json!({"final_status": "RUNNING"})),
        (&complete_uri, json!({"final_status": "FINISHED"})),
    ] {
        let answer = send(&api, "POST", uri, Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(code(&answer), "E_INVALID_STATUS", "{body}");
    }
    assert_eq!(
        registry.get(&job_id, false).unwrap().job.status,
        JobStatus::Pending
    );

    // DONE → RUNNING, and a second completion.
    let done = send(
        &api,
        "POST",
        &complete_uri,
        Some(json!({"final_status": "DONE"})),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK);
    let late = send(
        &api,
        "POST",
        &status_uri,
        Some(json!({"status": "RUNNING"})),
    )
    .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&late), "E_INVALID_STATUS");
    let again = send(
        &api,
        "POST",
        &complete_uri,
        Some(json!({"final_status": "FAILED"})),
    )
    .await;
    assert_eq!(code(&again), "E_INVALID_STATUS");
    assert_eq!(
        registry.get(&job_id, false).unwrap().job.status,
        JobStatus::Done
    );

    let listed = send(&api, "GET", "/api/jobs?status=FINISHED", None).await;
    assert_eq!(
        (listed.status, code(&listed)),
        (StatusCode::BAD_REQUEST, "E_INVALID_STATUS")
    );
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_e_authentication_failed_and_never_echoed() {
    let (api, registry) = api();
    let job_id = create(&api).await;
    let secret_looking = "Bearer sk-live-do-not-echo-me";
    for headers in [
        vec![],
        vec![("authorization", secret_looking)],
        vec![("authorization", "Basic YWdlbnQ6dG9rZW4=")],
        vec![("authorization", "Bearer ")],
    ] {
        for (method, uri, body) in [
            ("GET", "/api/jobs".to_owned(), None),
            ("GET", format!("/api/jobs/{job_id}"), None),
            ("POST", "/api/jobs".to_owned(), Some("{}")),
            (
                "POST",
                format!("/api/jobs/{job_id}/status"),
                Some(r#"{"status":"RUNNING"}"#),
            ),
            (
                "POST",
                format!("/api/jobs/{job_id}/complete"),
                Some(r#"{"final_status":"DONE"}"#),
            ),
        ] {
            let answer = send_with(&api, method, &uri, body, &headers).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
            assert_eq!(code(&answer), "E_AUTHENTICATION_FAILED");
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
            let text = answer.json.to_string();
            assert!(!text.contains("do-not-echo"), "{text}");
        }
    }
    // Nothing was applied.
    assert_eq!(registry.len(), 1);
    assert_eq!(
        registry.get(&job_id, false).unwrap().job.status,
        JobStatus::Pending
    );

    // No token configured: everything is refused.
    let closed = JobsApi::builder(Arc::new(InMemoryStatusSink::new())).build();
    let answer = send(&closed, "GET", "/api/jobs", None).await;
    assert_eq!(code(&answer), "E_AUTHENTICATION_FAILED");
}

#[tokio::test]
async fn bad_json_and_bad_parameters_are_e_serialization_error() {
    let (api, _) = api();
    let job_id = create(&api).await;
    let auth = format!("Bearer {AGENT}");
    for (uri, body) in [
        ("/api/jobs".to_owned(), "{not json"),
        ("/api/jobs".to_owned(), "[]"),
        ("/api/jobs".to_owned(), r#"{"metadata": 5}"#),
        (format!("/api/jobs/{job_id}/status"), ""),
        (format!("/api/jobs/{job_id}/status"), "{}"),
        (
            format!("/api/jobs/{job_id}/status"),
            r#"{"status":"RUNNING","progress":{"total_steps":"five"}}"#,
        ),
        (format!("/api/jobs/{job_id}/complete"), r#"{"summary":{}}"#),
    ] {
        let answer = send_with(
            &api,
            "POST",
            &uri,
            Some(body),
            &[("authorization", auth.as_str())],
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri} {body}");
        assert_eq!(code(&answer), "E_SERIALIZATION_ERROR", "{uri} {body}");
    }
    for uri in [
        format!("/api/jobs/{job_id}?include_history=maybe"),
        "/api/jobs?limit=0".to_owned(),
        "/api/jobs?limit=lots".to_owned(),
        "/api/jobs?limit=100000".to_owned(),
        "/api/jobs?cursor=abc".to_owned(),
    ] {
        let answer = send(&api, "GET", &uri, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(code(&answer), "E_SERIALIZATION_ERROR", "{uri}");
    }
}

#[tokio::test]
async fn other_paths_methods_and_sizes_are_refused() {
    let (api, registry) = api();
    let job_id = create(&api).await;
    let answer = send(&api, "GET", &format!("/api/jobs/{job_id}/history"), None).await;
    assert_eq!(
        (answer.status, code(&answer)),
        (StatusCode::NOT_FOUND, "E_NOT_FOUND")
    );
    let answer = send(&api, "DELETE", &format!("/api/jobs/{job_id}"), None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "GET");
    let answer = send(&api, "GET", &format!("/api/jobs/{job_id}/status"), None).await;
    assert_eq!(answer.headers["allow"], "POST");

    let small = api_over(&registry).body_limit(64).build();
    let big = json!({"input_data": {"blob": "x".repeat(200)}});
    let answer = send(&small, "POST", "/api/jobs", Some(big)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&answer), "E_PAYLOAD_TOO_LARGE");
    assert!(api.serves_path("/api/jobs/x") && !api.serves_path("/api/jobsx"));
}

// --- Idempotency -------------------------------------------------------------

#[tokio::test]
async fn a_repeated_idempotency_key_is_applied_once() {
    let (api, registry) = api();
    let job_id = create(&api).await;
    let auth = format!("Bearer {AGENT}");
    let uri = format!("/api/jobs/{job_id}/status");
    let body = r#"{"status":"RUNNING","message":"step 1"}"#;
    let headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "update-1"),
    ];
    let first = send_with(&api, "POST", &uri, Some(body), &headers).await;
    let second = send_with(&api, "POST", &uri, Some(body), &headers).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(first.json, second.json);
    let history = registry.get(&job_id, true).unwrap().history.unwrap();
    assert_eq!(history.len(), 2, "the retry was applied again");

    // A create retried with its key makes one job.
    let create_headers = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "create-1"),
    ];
    let a = send_with(&api, "POST", "/api/jobs", Some("{}"), &create_headers).await;
    let b = send_with(&api, "POST", "/api/jobs", Some("{}"), &create_headers).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json["job_id"], b.json["job_id"]);
    assert_eq!(registry.len(), 2);

    // Another key is another update.
    let other = [
        ("authorization", auth.as_str()),
        ("idempotency-key", "update-2"),
    ];
    send_with(&api, "POST", &uri, Some(body), &other).await;
    assert_eq!(
        registry.get(&job_id, true).unwrap().history.unwrap().len(),
        3
    );
}

#[tokio::test]
async fn concurrent_retries_with_one_key_apply_once() {
    let (api, registry) = api();
    let job_id = create(&api).await;
    let auth = format!("Bearer {AGENT}");
    let uri = format!("/api/jobs/{job_id}/status");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (api, auth, uri) = (api.clone(), auth.clone(), uri.clone());
        tasks.spawn(async move {
            send_with(
                &api,
                "POST",
                &uri,
                Some(r#"{"status":"RUNNING"}"#),
                &[("authorization", &auth), ("idempotency-key", "same")],
            )
            .await
        });
    }
    let mut applied = 0;
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        applied += usize::from(answer.headers.get("idempotent-replayed").is_none());
    }
    assert_eq!(applied, 1, "exactly one answer applies the update");
    assert_eq!(
        registry.get(&job_id, true).unwrap().history.unwrap().len(),
        2
    );
}

// --- Webhook tasks -------------------------------------------------------------

/// A webhook task's job has the task's id, and shows PENDING → RUNNING →
/// DONE with its history when the worker reports through the same registry.
#[tokio::test]
async fn a_webhook_tasks_job_is_read_under_the_task_id() {
    const SECRET: &str = "jobs-api-test-secret";
    let registry = InMemoryStatusSink::new();
    let config = RoutesConfig::from_json(
        r#"{"routes":[{"source":"github","event":"pull_request.*","target_room":"pr-review"}]}"#,
    )
    .unwrap();
    let ingest = WebhookService::builder(
        Arc::new(RuleRouter::from_config(&config).unwrap()),
        Arc::new(InMemoryTaskStore::new()),
    )
    .status_sink(Arc::new(registry.clone()))
    .source(
        "github",
        Arc::new(GithubVerifier::new(Secrets::try_from(SECRET).unwrap())),
        Arc::new(GithubSource::new()),
    )
    .build();
    let body = Bytes::from_static(br#"{"action":"opened","number":7,"pull_request":{"number":7,"title":"t","html_url":"https://github.com/o/r/pull/7"},"repository":{"full_name":"o/r"}}"#);
    let request = Request::post("/webhook/github")
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", "d-1")
        .header(
            "x-hub-signature-256",
            verify::github::sign(SECRET.as_bytes(), &body),
        )
        .body(Full::new(body))
        .unwrap();
    let response = ingest.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let accepted: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let task_id = accepted["task_id"].as_str().unwrap().to_owned();

    let api = JobsApi::builder(Arc::new(registry.clone()))
        .principals(ApiTokens::new(
            BearerTokens::parse_list(AGENT).unwrap(),
            BearerTokens::none(),
        ))
        .build();
    let pending = send(&api, "GET", &format!("/api/jobs/{task_id}"), None).await;
    assert_eq!(pending.status, StatusCode::OK);
    assert_eq!(pending.json["job"]["status"], "PENDING");
    assert_eq!(pending.json["job"]["input_data"]["room"], "pr-review");

    // The worker reports as the agent runtime does.
    let at = time::OffsetDateTime::now_utc();
    registry
        .publish(JobEvent::Status {
            job_id: task_id.clone(),
            at,
            status: JobStatus::Running,
            progress: None,
            message: Some("claimed".into()),
            step: None,
        })
        .await
        .unwrap();
    registry
        .publish(JobEvent::Completed {
            job_id: task_id.clone(),
            at,
            final_status: JobStatus::Done,
            summary: None,
            artifacts: vec![],
            message: Some("done".into()),
        })
        .await
        .unwrap();
    let done = send(
        &api,
        "GET",
        &format!("/api/jobs/{task_id}?include_history=true"),
        None,
    )
    .await;
    let statuses: Vec<&str> = done.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["PENDING", "RUNNING", "DONE"]);
}

// --- Durable jobs ----------------------------------------------------------------

/// Over the SQLite registry, jobs made through the API are read back by a
/// new registry on the same file (a restart).
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn jobs_made_through_the_api_survive_a_restart_with_sqlite() {
    use hookroom::sqlite::SqliteJobRegistry;
    let dir = std::env::temp_dir().join(format!("hookroom-jobs-api-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hookroom.db");
    let tokens = || {
        ApiTokens::new(
            BearerTokens::parse_list(AGENT).unwrap(),
            BearerTokens::none(),
        )
    };
    let api = JobsApi::builder(Arc::new(SqliteJobRegistry::open(&path).unwrap()))
        .principals(tokens())
        .build();
    let job_id = create(&api).await;
    let updated = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/status"),
        Some(json!({"status": "RUNNING", "progress": {"percentage": 40}, "message": "go"})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK);
    drop(api);

    let api = JobsApi::builder(Arc::new(SqliteJobRegistry::open(&path).unwrap()))
        .principals(tokens())
        .build();
    let fetched = send(
        &api,
        "GET",
        &format!("/api/jobs/{job_id}?include_history=true"),
        None,
    )
    .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.json["job"]["progress"]["percentage"], 40);
    assert_eq!(fetched.json["history"].as_array().unwrap().len(), 2);
    let late = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/complete"),
        Some(json!({"final_status": "DONE"})),
    )
    .await;
    assert_eq!(late.json["job"]["status"], "DONE");
    let again = send(
        &api,
        "POST",
        &format!("/api/jobs/{job_id}/status"),
        Some(json!({"status": "RUNNING"})),
    )
    .await;
    assert_eq!(code(&again), "E_INVALID_STATUS");
    std::fs::remove_dir_all(dir).ok();
}
