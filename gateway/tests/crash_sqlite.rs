//! Crash safety of the gateway on SQLite: the gateway
//! (`hookroom serve --store sqlite:FILE`) is killed with SIGKILL
//! while concurrent clients send signed GitHub deliveries, then restarted on
//! the same file. Every delivery that was acknowledged (a 2xx) must come back
//! as a duplicate with the task id it was given; once every delivery has
//! been sent again, each one is stored exactly once.
//!
//! Inserts are group-committed (one transaction for every insert waiting at
//! the time), and the concurrent clients make batches form, so this is the
//! group-commit case.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookroom::sqlite::SqliteTaskStore;
use hookroom::task::{TaskQuery, TaskStore};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const SECRET: &str = "crash-test-github-secret";
const BODY: &str = include_str!("../../tests/fixtures/pull_request.opened.1k.json");
const CLIENTS: usize = 16;
/// How many acknowledgements a round waits for before the kill.
const ACKED_BEFORE_KILL: usize = 150;
const CRASHES: usize = 3;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The `hookroom` binary cargo built for this test.
fn gateway_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hookroom"))
}

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

/// Starts the gateway on `db` and waits for its banner's address.
fn start(binary: &Path, db: &Path) -> Gateway {
    let mut child = Command::new(binary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--config",
            "routes.json",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--store")
        .arg(format!("sqlite:{}", db.display()))
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SLACK_SIGNING_SECRET", "crash-slack")
        .env("JIRA_WEBHOOK_SECRET", "crash-jira")
        .env("HF_WEBHOOK_SECRET", "crash-hf")
        .env_remove("HOOKROOM_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the gateway starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let prefix = "hookroom gateway listening on http://";
    let addr = loop {
        let line = lines
            .next()
            .expect("the gateway printed its banner")
            .expect("stdout is text");
        if let Some(addr) = line.strip_prefix(prefix) {
            break addr.trim().parse().expect("an address");
        }
    };
    // Keep draining stdout so the gateway never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Gateway { child, addr }
}

fn kill(mut gateway: Gateway) {
    gateway.child.kill().expect("SIGKILL");
    let _ = gateway.child.wait();
}

fn signature(body: &[u8]) -> String {
    hookroom::verify::github::sign(SECRET.as_bytes(), body)
}

/// The answer to a delivery: its status, the body's `status` and `task_id`.
#[derive(Debug)]
struct Answer {
    code: u16,
    status: String,
    task_id: String,
}

async fn deliver(
    client: &HttpClient,
    addr: SocketAddr,
    delivery: &str,
) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
    let request = http::Request::post(format!("http://{addr}/webhook/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature(BODY.as_bytes()))
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))?;
    let response = client.request(request).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body)?;
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    Ok(Answer {
        code,
        status: field("status"),
        task_id: field("task_id"),
    })
}

/// What the clients saw: every delivery sent, and the task id of each one
/// that was acknowledged.
#[derive(Debug, Default)]
struct Seen {
    sent: Vec<String>,
    acked: BTreeMap<String, String>,
}

/// Runs `CLIENTS` clients against `addr` until each one fails (the gateway
/// is gone); `kill` is called once `ACKED_BEFORE_KILL` deliveries of this
/// round are acknowledged.
async fn load_until_killed(
    addr: SocketAddr,
    round: usize,
    gateway: Gateway,
    seen: &Arc<Mutex<Seen>>,
) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let acked_this_round = Arc::new(tokio::sync::Notify::new());
    let count = Arc::new(Mutex::new(0usize));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, notify, count) = (client.clone(), acked_this_round.clone(), count.clone());
        let seen = Arc::clone(seen);
        clients.spawn(async move {
            for i in 0.. {
                let delivery = format!("crash-{round}-{c}-{i}");
                seen.lock().unwrap().sent.push(delivery.clone());
                match deliver(&client, addr, &delivery).await {
                    Ok(answer) if (200..300).contains(&answer.code) => {
                        assert_eq!(answer.status, "accepted", "{delivery}: {answer:?}");
                        seen.lock().unwrap().acked.insert(delivery, answer.task_id);
                        *count.lock().unwrap() += 1;
                        notify.notify_one();
                    }
                    Ok(answer) => panic!("{delivery}: refused: {answer:?}"),
                    // The gateway was killed: this delivery's fate is unknown.
                    Err(_) => return,
                }
            }
        });
    }
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while *count.lock().unwrap() < ACKED_BEFORE_KILL {
            acked_this_round.notified().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "round {round}: too few acknowledgements");
    kill(gateway);
    while let Some(joined) = clients.join_next().await {
        joined.expect("a client panicked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_deliveries_survive_sigkill_and_are_stored_once() {
    let binary = gateway_binary();
    let dir = std::env::temp_dir().join(format!("hookroom-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("crash.db");
    let seen = Arc::new(Mutex::new(Seen::default()));

    let mut gateway = start(&binary, &db);
    for round in 0..CRASHES {
        let addr = gateway.addr;
        load_until_killed(addr, round, gateway, &seen).await;

        // Restart on the same file: every acknowledged delivery is there,
        // under the task id it was acknowledged with.
        gateway = start(&binary, &db);
        let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
        let (sent, acked) = {
            let seen = seen.lock().unwrap();
            (seen.sent.clone(), seen.acked.clone())
        };
        for (delivery, task_id) in &acked {
            let answer = deliver(&client, gateway.addr, delivery)
                .await
                .expect("the restarted gateway answers");
            assert_eq!(
                (answer.code, answer.status.as_str(), answer.task_id.as_str()),
                (200, "duplicate", task_id.as_str()),
                "round {round}: acknowledged delivery {delivery} was lost or changed"
            );
        }
        // Deliveries in flight at the kill: stored or not, a redelivery
        // settles each one.
        for delivery in sent.iter().filter(|d| !acked.contains_key(*d)) {
            let answer = deliver(&client, gateway.addr, delivery)
                .await
                .expect("the restarted gateway answers");
            assert!((200..300).contains(&answer.code), "{delivery}: {answer:?}");
        }
        eprintln!(
            "after SIGKILL {}: {} deliveries acknowledged so far, all found after the restart; \
             {} were in flight",
            round + 1,
            acked.len(),
            sent.len() - acked.len()
        );
    }
    kill(gateway);

    // Each delivery sent is stored exactly once.
    let store = SqliteTaskStore::open(&db).expect("the file opens");
    let tasks = store
        .list(&TaskQuery {
            limit: Some(usize::MAX),
            ..TaskQuery::default()
        })
        .await
        .expect("list");
    let seen = seen.lock().unwrap();
    let sent: HashSet<&str> = seen.sent.iter().map(String::as_str).collect();
    let stored: Vec<&str> = tasks.iter().map(|t| t.delivery_id.as_str()).collect();
    let distinct: HashSet<&str> = stored.iter().copied().collect();
    assert_eq!(stored.len(), distinct.len(), "a delivery was stored twice");
    assert_eq!(distinct, sent, "stored deliveries differ from those sent");
    for task in &tasks {
        if let Some(id) = seen.acked.get(&task.delivery_id) {
            assert_eq!(task.id.as_str(), id, "{}", task.delivery_id);
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
