//! Starting the built `hookroom` binary and talking to it over loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The agent token the tests start gateways with.
pub const TOKEN: &str = "t";
/// The admin token the tests start gateways with.
pub const ADMIN: &str = "admin-token";
/// The GitHub secret the tests start gateways with.
pub const GITHUB_SECRET: &str = "gateway-test-github-secret";
/// How long a check waits before calling the gateway stuck.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The `hookroom` binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_hookroom")
}

/// The shipped routes file.
pub fn routes_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("routes.json")
}

/// A running gateway, killed when dropped.
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `hookroom` command with the shipped routes file's secrets set and no
/// tokens from the test's own environment.
pub fn command() -> Command {
    let mut command = Command::new(binary());
    command
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("SLACK_SIGNING_SECRET", "gateway-test-slack")
        .env("JIRA_WEBHOOK_SECRET", "gateway-test-jira")
        .env("HF_WEBHOOK_SECRET", "gateway-test-hf")
        .env_remove("HOOKROOM_ADMIN_TOKEN")
        .env_remove("HOOKROOM_API_TOKEN")
        .env_remove("HOOKROOM_SETTINGS")
        .env_remove("HOOKROOM_STORE")
        .env_remove("HOOKROOM_CONFIG");
    command
}

impl Gateway {
    /// `hookroom serve --config routes.json --store memory --listen
    /// 127.0.0.1:0` with the agent and admin tokens set, plus `args`.
    pub fn start(args: &[&str]) -> Self {
        let mut command = command();
        command
            .env("HOOKROOM_API_TOKEN", TOKEN)
            .env("HOOKROOM_ADMIN_TOKEN", ADMIN)
            .arg("serve")
            .arg("--config")
            .arg(routes_file())
            .args(["--store", "memory", "--listen", "127.0.0.1:0"])
            .args(args);
        Self::spawn(command)
    }

    /// Spawns `command` and waits for its banner's address.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hookroom starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let seen = Arc::new(Mutex::new(String::new()));
        let prefix = "hookroom gateway listening on http://";
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!(
                    "hookroom exited before its banner: {}",
                    seen.lock().unwrap()
                );
            };
            seen.lock().unwrap().push_str(&line);
            seen.lock().unwrap().push('\n');
            if let Some(addr) = line.strip_prefix(prefix) {
                break addr.trim().parse().expect("an address");
            }
        };
        // Keep draining stdout so the gateway never blocks on a full pipe.
        let drained = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut text = drained.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self {
            child,
            addr,
            stdout: seen,
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout holds `needle` (the banner is printed after the
    /// address line).
    pub async fn printed(&self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.stdout.lock().unwrap().clone();
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never printed {needle:?}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One HTTP/1.1 request on a fresh connection: `head` is the request line
/// and any headers (without the final blank line); answers the status and
/// the body.
pub async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `request` with the agent token, answering JSON.
pub async fn api(addr: SocketAddr, method_and_path: &str, body: &str) -> (u16, Value) {
    let (status, text) = request(
        addr,
        &format!("{method_and_path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}"),
        body.as_bytes(),
    )
    .await;
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// A signed GitHub `pull_request.opened` delivery (routed to `pr-review` by
/// the shipped routes file); answers the gateway's JSON.
pub async fn deliver(addr: SocketAddr, delivery: &str) -> (u16, Value) {
    let body = r#"{"action":"opened","pull_request":{"number":7,"title":"Fix","html_url":"https://github.com/o/r/pull/7"},"repository":{"full_name":"o/r"}}"#;
    let signature = hookroom::verify::github::sign(GITHUB_SECRET.as_bytes(), body.as_bytes());
    let (status, text) = request(
        addr,
        &format!(
            "POST /webhook/github HTTP/1.1\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}"
        ),
        body.as_bytes(),
    )
    .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
