//! Two gateways on one PostgreSQL database, one killed with SIGKILL under
//! load: the gateway (`hookroom serve --store postgres://…`)
//! runs twice on one throwaway database, on different ports. Concurrent
//! clients send signed GitHub deliveries to both, and agents claim and
//! complete tasks through the Task API of both. One gateway is killed
//! mid-load and restarted. Then:
//!
//! - every delivery that got a 2xx is stored exactly once: sent again (to
//!   either gateway), it is a duplicate with the task id it was given;
//! - no task was claimed twice: every successful claim names a different
//!   task, every stored task was claimed at most once (its `attempts`), and
//!   each was completed at most once.
//!
//! Without PostgreSQL's server binaries it says so and skips (under
//! `CI=true` it fails).

// The library's throwaway PostgreSQL server for tests, shared by both
// crates' tests; its feature gates name the library's features.
#[path = "../../tests/support/postgres.rs"]
#[allow(unexpected_cfgs, dead_code, unreachable_pub)]
mod postgres;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookroom::lifecycle::JobStatus;
use hookroom::postgres::PostgresTaskStore;
use hookroom::task::{TaskQuery, TaskStore};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use postgres::TestPostgres;
use serde_json::{Value, json};

const SECRET: &str = "crash-test-github-secret";
const AGENT_TOKEN: &str = "crash-agent-token";
const BODY: &str = include_str!("../../tests/fixtures/pull_request.opened.1k.json");
/// Where `routes.json` sends a `pull_request.opened`.
const ROOM: &str = "pr-review";
/// Senders per gateway.
const SENDERS: usize = 8;
/// Claiming agents per gateway.
const AGENTS: usize = 2;
/// How many acknowledgements (from both gateways) come before the kill.
const ACKED_BEFORE_KILL: usize = 300;
/// Longer than the test: no lease runs out, so a second claim of a task
/// could only be a double claim.
const LEASE_SECONDS: u64 = 3600;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// The `hookroom` binary cargo built for this test.
fn gateway_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hookroom"))
}

struct Gateway {
    child: Child,
    addr: SocketAddr,
}

/// Starts a gateway on the database at `url` and waits for its banner's
/// address.
fn start(binary: &Path, url: &str) -> Gateway {
    let mut child = Command::new(binary)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "serve",
            "--config",
            "routes.json",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--store", url])
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SLACK_SIGNING_SECRET", "crash-slack")
        .env("JIRA_WEBHOOK_SECRET", "crash-jira")
        .env("HF_WEBHOOK_SECRET", "crash-hf")
        .env("HOOKROOM_API_TOKEN", AGENT_TOKEN)
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

fn kill(gateway: &mut Gateway) {
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

async fn deliver(client: &HttpClient, addr: SocketAddr, delivery: &str) -> Result<Answer, Error> {
    let request = http::Request::post(format!("http://{addr}/webhook/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature(BODY.as_bytes()))
        .body(Full::new(Bytes::from_static(BODY.as_bytes())))?;
    let response = client.request(request).await?;
    let code = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    let json: Value = serde_json::from_slice(&body)?;
    let field = |name: &str| json[name].as_str().unwrap_or_default().to_owned();
    Ok(Answer {
        code,
        status: field("status"),
        task_id: field("task_id"),
    })
}

/// A Task API call: the status code and the JSON body (`Null` when empty).
async fn api(
    client: &HttpClient,
    addr: SocketAddr,
    path: &str,
    body: Value,
) -> Result<(u16, Value), Error> {
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {AGENT_TOKEN}"))
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = client.request(request).await?;
    let code = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((code, json))
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Seen {
    /// Every delivery sent.
    sent: Vec<String>,
    /// The task id of each acknowledged delivery.
    acked: BTreeMap<String, String>,
    /// The task id of every successful claim, in order.
    claims: Vec<String>,
    /// The task id of every successful completion.
    completed: Vec<String>,
}

/// The two gateways' current addresses (a restart changes one).
type Addresses = Arc<Mutex<[SocketAddr; 2]>>;

/// Sends fresh deliveries to gateway `which` until a send fails (it was
/// killed) or `stop` is set.
async fn sender(
    client: HttpClient,
    addr: SocketAddr,
    name: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let delivery = format!("{name}-{i}");
        seen.lock().unwrap().sent.push(delivery.clone());
        match deliver(&client, addr, &delivery).await {
            Ok(answer) if (200..300).contains(&answer.code) => {
                assert_eq!(answer.status, "accepted", "{delivery}: {answer:?}");
                seen.lock().unwrap().acked.insert(delivery, answer.task_id);
            }
            Ok(answer) => panic!("{delivery}: refused: {answer:?}"),
            // The gateway was killed: this delivery's fate is unknown.
            Err(_) => return,
        }
    }
}

/// Claims from the room through gateway `which` and completes each claim,
/// recording every success, until `stop` is set. While its gateway is down
/// it retries.
async fn agent(
    client: HttpClient,
    addresses: Addresses,
    which: usize,
    name: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) {
    let claim = json!({"agent_id": name, "lease_seconds": LEASE_SECONDS, "wait_seconds": 1});
    while !stop.load(Ordering::Relaxed) {
        let addr = addresses.lock().unwrap()[which];
        let (code, body) = match api(
            &client,
            addr,
            &format!("/api/rooms/{ROOM}/claim"),
            claim.clone(),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match code {
            204 => continue,
            200 => {}
            other => panic!("{name}: claim answered {other}: {body}"),
        }
        let id = body["task"]["id"].as_str().expect("a task id").to_owned();
        let token = body["claim_token"].clone();
        seen.lock().unwrap().claims.push(id.clone());
        // The gateway may die before answering: the task then stays held
        // (the lease outlives the test), never completed.
        if let Ok((code, body)) = api(
            &client,
            addr,
            &format!("/api/tasks/{id}/done"),
            json!({"claim_token": token}),
        )
        .await
        {
            assert_eq!(code, 200, "{name}: completing {id}: {body}");
            seen.lock().unwrap().completed.push(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_one_killed_store_each_delivery_once_and_claim_each_task_once() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let binary = gateway_binary();
    let mut gateways = [start(&binary, &pg.url), start(&binary, &pg.url)];
    let addresses: Addresses = Arc::new(Mutex::new([gateways[0].addr, gateways[1].addr]));
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_senders = Arc::new(AtomicBool::new(false));
    let stop_agents = Arc::new(AtomicBool::new(false));

    let mut senders = tokio::task::JoinSet::new();
    for (which, gateway) in gateways.iter().enumerate() {
        for s in 0..SENDERS {
            senders.spawn(sender(
                client.clone(),
                gateway.addr,
                format!("g{which}-s{s}"),
                Arc::clone(&seen),
                Arc::clone(&stop_senders),
            ));
        }
    }
    let mut agents = tokio::task::JoinSet::new();
    for which in 0..2 {
        for a in 0..AGENTS {
            agents.spawn(agent(
                client.clone(),
                Arc::clone(&addresses),
                which,
                format!("g{which}-agent{a}"),
                Arc::clone(&seen),
                Arc::clone(&stop_agents),
            ));
        }
    }

    // Under load on both: kill gateway 0.
    let loaded = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            {
                let seen = seen.lock().unwrap();
                if seen.acked.len() >= ACKED_BEFORE_KILL && !seen.claims.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        loaded.is_ok(),
        "too few acknowledgements or claims before the kill"
    );
    kill(&mut gateways[0]);
    // Gateway 1 carries on alone for a while, then gateway 0 comes back.
    let acked_at_kill = seen.lock().unwrap().acked.len();
    let carried_on = tokio::time::timeout(Duration::from_secs(120), async {
        while seen.lock().unwrap().acked.len() < acked_at_kill + ACKED_BEFORE_KILL / 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(carried_on.is_ok(), "gateway 1 stopped acknowledging");
    gateways[0] = start(&binary, &pg.url);
    addresses.lock().unwrap()[0] = gateways[0].addr;
    stop_senders.store(true, Ordering::Relaxed);
    while let Some(joined) = senders.join_next().await {
        joined.expect("a sender panicked");
    }

    // Every acknowledged delivery is there under its task id, whichever
    // gateway it is sent to again.
    let (sent, acked) = {
        let seen = seen.lock().unwrap();
        (seen.sent.clone(), seen.acked.clone())
    };
    let now = *addresses.lock().unwrap();
    for (n, (delivery, task_id)) in acked.iter().enumerate() {
        let answer = deliver(&client, now[n % 2], delivery)
            .await
            .expect("the gateways answer");
        assert_eq!(
            (answer.code, answer.status.as_str(), answer.task_id.as_str()),
            (200, "duplicate", task_id.as_str()),
            "acknowledged delivery {delivery} was lost or changed"
        );
    }
    // Deliveries in flight at the kill: stored or not, a redelivery settles
    // each one.
    for delivery in sent.iter().filter(|d| !acked.contains_key(*d)) {
        let answer = deliver(&client, now[1], delivery)
            .await
            .expect("the gateway answers");
        assert!((200..300).contains(&answer.code), "{delivery}: {answer:?}");
    }

    // The agents work through what is left.
    let store = PostgresTaskStore::connect(&pg.url).await.expect("connect");
    let pending = TaskQuery {
        room: Some(ROOM.into()),
        status: Some(JobStatus::Pending),
        limit: Some(1),
        ..TaskQuery::default()
    };
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while !store.list(&pending).await.expect("list").is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(drained.is_ok(), "the agents did not claim every task");
    stop_agents.store(true, Ordering::Relaxed);
    while let Some(joined) = agents.join_next().await {
        joined.expect("an agent panicked");
    }
    for gateway in &mut gateways {
        kill(gateway);
    }

    // Each delivery sent is stored exactly once, acknowledged ones under the
    // id they were given.
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

    // No task was claimed twice: not by the agents' count, not by the
    // store's; none was completed twice, and every completion stuck.
    let mut claims: HashMap<&str, usize> = HashMap::new();
    for id in &seen.claims {
        *claims.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "claimed twice: {twice:?}");
    for task in &tasks {
        assert!(
            task.attempts <= 1,
            "{} was claimed {} times",
            task.id,
            task.attempts
        );
        assert_ne!(
            task.status,
            JobStatus::Pending,
            "{} was never claimed",
            task.id
        );
    }
    let completed: HashSet<&str> = seen.completed.iter().map(String::as_str).collect();
    assert_eq!(
        completed.len(),
        seen.completed.len(),
        "a task was completed twice"
    );
    let by_id: HashMap<&str, _> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    for id in &completed {
        assert_eq!(by_id[id].status, JobStatus::Done, "{id}");
    }
    eprintln!(
        "two gateways, one SIGKILLed: {} deliveries sent, {} acknowledged, all stored once; \
         {} claims, {} completions, none twice",
        seen.sent.len(),
        seen.acked.len(),
        seen.claims.len(),
        seen.completed.len()
    );
}
