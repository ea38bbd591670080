//! The example gateway's Jobs API over 127.0.0.1: the job-status document's
//! curl calls and Python helpers, run as written with `Authorization: Bearer
//! t`, give the document's answers. Skipped (with a note) where `curl` or
//! Python's `requests` is not installed.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use hookroom::route::{RoutesConfig, RuleRouter};
use hookroom::service::{BearerTokens, Gateway, JobsApi, WebhookService};
use hookroom::source::GithubSource;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::{GithubVerifier, Secrets};

#[path = "../examples/support/banner.rs"]
#[allow(dead_code)]
mod banner;
#[path = "../examples/support/jobs.rs"]
#[allow(dead_code)]
mod jobs;
#[path = "../examples/support/serve.rs"]
#[allow(dead_code)]
mod serve;

/// The gateway as the example builds it, with `HOOKROOM_API_TOKEN=t`, on a
/// free loopback port.
async fn start_gateway() -> SocketAddr {
    let config = RoutesConfig::from_json(
        r#"{"routes":[{"source":"github","event":"pull_request.*","target_room":"pr-review"}]}"#,
    )
    .unwrap();
    let (sink, registry) = jobs::memory();
    let ingest = WebhookService::builder(
        Arc::new(RuleRouter::from_config(&config).unwrap()),
        Arc::new(InMemoryTaskStore::new()),
    )
    .status_sink(sink)
    .source(
        "github",
        Arc::new(GithubVerifier::new(Secrets::try_from("s").unwrap())),
        Arc::new(GithubSource::new()),
    )
    .build();
    let tokens = jobs::tokens(Some("t"), &BearerTokens::none(), false).unwrap();
    let api = JobsApi::new(registry).tokens(tokens.tokens);
    let service = jobs::WithJobs::new(Gateway::new(ingest), Some(api));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve::serve(
        listener,
        service,
        serve::Limits::default(),
        std::future::pending(),
    ));
    addr
}

fn curl(args: &[&str]) -> Option<(u16, Value)> {
    let mut command = Command::new("curl");
    command.args(["-sS", "-w", "\n%{http_code}"]).args(args);
    let output = command.output().ok()?;
    assert!(output.status.success(), "curl failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    Some((status.parse().unwrap(), serde_json::from_str(body).unwrap()))
}

/// Says loudly that a test is skipped for want of `what`; under `CI=true`
/// fails instead, as a missing PostgreSQL server does.
fn skip_or_fail(what: &str) {
    let message = format!("SKIPPED: {what}; the job-status protocol's own calls were not run");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message} (CI=true: a missing tool fails the run)");
    }
    eprintln!("{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_curl_sequence_works_against_the_gateway() {
    if Command::new("curl").arg("--version").output().is_err() {
        skip_or_fail("curl is not installed");
        return;
    }
    let addr = start_gateway().await;
    let base = format!("http://{addr}/api");
    tokio::task::spawn_blocking(move || {
        let auth = "Authorization: Bearer t";
        let json = "Content-Type: application/json";
        let (status, created) = curl(&[
            "-X", "POST", &format!("{base}/jobs"), "-H", json, "-H", auth, "-d",
            r#"{"input_data":{"pop_file_path":"populacja/data.xlsx","pdf_directory":"pdfs/","validation_mode":"full"},"metadata":{"user_id":"user123","session_id":"session456"}}"#,
        ])
        .unwrap();
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["status"], "PENDING");
        assert_eq!(created["message"], "Job created successfully");
        let id = created["job_id"].as_str().unwrap().to_owned();

        let (status, updated) = curl(&[
            "-X", "POST", &format!("{base}/jobs/{id}/status"), "-H", json, "-H", auth, "-d",
            r#"{"status":"RUNNING","progress":{"current_step":"PDF Processing","total_steps":5,"completed_steps":2,"percentage":40,"estimated_remaining":"5 minutes"},"message":"Processing PDF files..."}"#,
        ])
        .unwrap();
        assert_eq!(status, 200, "{updated}");

        let (status, fetched) = curl(&[
            &format!("{base}/jobs/{id}?include_history=true"), "-H", auth,
        ])
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(fetched["job"]["status"], "RUNNING");
        assert_eq!(fetched["job"]["progress"]["percentage"], 40);
        assert_eq!(fetched["history"][0]["status"], "PENDING");
        assert_eq!(fetched["history"][1]["message"], "Processing PDF files...");

        let (status, completed) = curl(&[
            "-X", "POST", &format!("{base}/jobs/{id}/complete"), "-H", json, "-H", auth, "-d",
            r#"{"final_status":"DONE","summary":{"total_records_processed":1500},"final_artifacts":[{"name":"audit_report.xlsx","path":"outputs/reports/audit_report_20240115.xlsx","type":"excel_report","size":2048576,"description":"Comprehensive audit report"}],"completion_message":"Audit completed successfully"}"#,
        ])
        .unwrap();
        assert_eq!(status, 200, "{completed}");
        assert_eq!(completed["job"]["status"], "DONE");

        // Without the token: 401, and the webhook side still answers.
        let (status, refused) = curl(&[&format!("{base}/jobs/{id}")]).unwrap();
        assert_eq!(status, 401);
        assert_eq!(refused["error"]["code"], "E_AUTHENTICATION_FAILED");
        let (status, _) = curl(&[&format!("http://{addr}/health")]).unwrap();
        assert_eq!(status, 200);
    })
    .await
    .unwrap();
}

/// The document's `push_status`, `pull_job` and `complete_job`, verbatim
/// but for the job creation before them.
const PYTHON: &str = r#"
import json, sys, requests
base_url, token = sys.argv[1], sys.argv[2]

def push_status(job_id, status, progress=None, message=None):
    payload = {
        "status": status,
        "progress": progress,
        "message": message
    }

    response = requests.post(
        f"{base_url}/jobs/{job_id}/status",
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30
    )

    return response.json()

def pull_job(job_id, include_history=False):
    params = {"include_history": include_history}

    response = requests.get(
        f"{base_url}/jobs/{job_id}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30
    )

    return response.json()

def complete_job(job_id, final_status, summary=None, artifacts=None):
    payload = {
        "final_status": final_status,
        "summary": summary,
        "final_artifacts": artifacts
    }

    response = requests.post(
        f"{base_url}/jobs/{job_id}/complete",
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30
    )

    return response.json()

job_id = requests.post(f"{base_url}/jobs", json={"input_data": {"pdf_directory": "pdfs/"}},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["job_id"]
out = {
    "pushed": push_status(job_id, "RUNNING", {"percentage": 40}, "Processing PDF files..."),
    "pulled": pull_job(job_id),
    "pulled_history": pull_job(job_id, include_history=True),
    "completed": complete_job(job_id, "DONE", {"processing_time": 180.5}),
    "missing": pull_job("no-such-job"),
    "wrong": push_status(job_id, "PAUSED"),
}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documents_python_helpers_work_against_the_gateway() {
    let has_requests = Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_requests {
        skip_or_fail("python3 with `requests` is not installed");
        return;
    }
    let addr = start_gateway().await;
    let base = format!("http://{addr}/api");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", PYTHON, &base, "t"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["pushed"]["job"]["status"], "RUNNING");
    assert!(out["pulled"].get("history").is_none());
    assert_eq!(out["pulled"]["job"]["progress"]["percentage"], 40);
    assert_eq!(
        out["pulled_history"]["history"].as_array().unwrap().len(),
        2
    );
    assert_eq!(out["completed"]["job"]["status"], "DONE");
    assert_eq!(
        out["completed"]["job"]["metadata"]["summary"]["processing_time"],
        180.5
    );
    assert_eq!(out["missing"]["error"]["code"], "E_JOB_NOT_FOUND");
    assert_eq!(out["wrong"]["error"]["code"], "E_INVALID_STATUS");
}

#[test]
fn the_banner_says_whether_the_jobs_api_is_on() {
    let listen = SocketAddr::from(([127, 0, 0, 1], 8935));
    let none = BearerTokens::none();
    let off = jobs::tokens(None, &none, false).unwrap();
    assert!(off.tokens.is_empty());
    assert!(jobs::banner(listen, &off).contains("Jobs API (/api/jobs) is off"));

    let dev = jobs::tokens(None, &none, true).unwrap();
    let text = jobs::banner(listen, &dev);
    let token = dev.dev_token.clone().unwrap();
    assert!(text.contains(&format!("Bearer {token}")), "{text}");

    let set = jobs::tokens(Some("secret-one,secret-two"), &none, true).unwrap();
    assert!(set.dev_token.is_none());
    let text = jobs::banner(listen, &set);
    assert!(text.contains("2 agent token(s)"), "{text}");
    assert!(!text.contains("secret-one"), "{text}");

    assert!(jobs::tokens(Some("a,,b"), &none, false).is_err());
}

/// `--status-url` with `--status-token-env`: a webhook task's job, kept by
/// the gateway, is pushed to another Jobs API through the outbox.
#[cfg(feature = "http-client")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_changes_are_pushed_to_every_status_url() {
    use hookroom::status::{JobEvent, JobStatus, StatusSink};

    let backend = start_gateway().await;
    let (local_sink, local) = jobs::memory();
    let args = jobs::PushArgs {
        urls: vec![format!("http://{backend}/api")],
        token_env: Some("BACKEND_TOKEN".into()),
    };
    let env = |var: &str| (var == "BACKEND_TOKEN").then(|| "t".to_owned());
    let (sink, pushes) = jobs::push(local_sink, &args, "memory", env).unwrap();
    assert_eq!(pushes.len(), 1);
    assert!(jobs::push_banner(&pushes).contains(&args.urls[0]));
    let at = time::OffsetDateTime::now_utc();
    sink.publish(JobEvent::Created {
        job_id: "task-1".into(),
        at,
        input_data: serde_json::json!({"room": "pr-review"}).into(),
        metadata: Default::default(),
    })
    .await
    .unwrap();
    sink.publish(JobEvent::Status {
        job_id: "task-1".into(),
        at,
        status: JobStatus::Running,
        progress: None,
        message: Some("claimed".into()),
        step: None,
    })
    .await
    .unwrap();
    pushes[0].outbox.drained().await;
    assert_eq!(pushes[0].outbox.stats().delivered, 2);
    assert!(local.job("task-1", false).await.unwrap().is_some());

    let pulled = hookroom::http::HttpStatusSink::builder(format!("http://{backend}/api"))
        .bearer_token("t")
        .build()
        .unwrap()
        .pull_job("task-1", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pulled.job.status, JobStatus::Running);
    assert_eq!(pulled.history.unwrap().len(), 2);

    let missing = jobs::PushArgs {
        urls: vec!["http://127.0.0.1:1/api".into()],
        token_env: Some("UNSET".into()),
    };
    let (sink, _) = jobs::memory();
    assert!(jobs::push(sink, &missing, "memory", |_| None).is_err());
}
