//! hookroom's MCP server driven by clients nobody here wrote: the official
//! Python SDK (`mcp`, from PyPI) and the official TypeScript SDK
//! (`@modelcontextprotocol/sdk`, from npm), each over stdio (`hookroom mcp
//! --gateway URL` and `hookroom mcp --store sqlite:FILE` beside the gateway)
//! and over streamable HTTP (the gateway's `/mcp`).
//!
//! The clients are `tests/interop/python/client.py` and
//! `tests/interop/ts/client.mjs`; each runs one scenario (initialize, list
//! tools, join, a notification for a webhook that lands, claim, heartbeat,
//! ask for input and answer it, complete, an error code, read the job, the
//! Tasks utility) and prints a JSON line per step. The versions are pinned
//! in [`PYTHON_SDK`] and [`TYPESCRIPT_SDK`]; `.ci/run` installs them. On a
//! machine without them each test says so on stderr and passes, except
//! under `CI=true`, where it fails.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python SDK version the tests run (`pip install mcp==…`).
const PYTHON_SDK: &str = "2.3.0";
/// The TypeScript SDK version the tests run (`tests/interop/ts/package.json`).
const TYPESCRIPT_SDK: &str = "1.32.2";
/// The agent token the gateway is started with.
const TOKEN: &str = "interop-agent-token";
/// The admin token the clients work with: each client both works on a task
/// and answers the question it asked, and only an admin may do both (an
/// agent may not answer `NEEDS_INPUT`).
const ADMIN: &str = "interop-admin-token";
/// The GitHub secret the gateway checks and the clients sign with.
const SECRET: &str = "interop-github-secret";
/// How long one client may take.
const PATIENCE: Duration = Duration::from_secs(90);

/// The steps every client must report, in order.
const STEPS: &[&str] = &[
    "initialize",
    "list_tools",
    "join_room",
    "notification",
    "list_tasks",
    "claim_task",
    "heartbeat",
    "ask_input",
    "provide_input",
    "complete_task",
    "error_vocabulary",
    "get_job",
    "tasks",
    "closed",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn interop() -> PathBuf {
    repo().join("tests").join("interop")
}

#[derive(Clone, Copy, Debug)]
enum Sdk {
    Python,
    TypeScript,
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    /// The gateway's `/mcp`.
    Http,
    /// `hookroom mcp --gateway URL`.
    StdioGateway,
    /// `hookroom mcp --store sqlite:FILE`, the gateway's file.
    StdioSqlite,
}

/// Why the SDK cannot run here, if it cannot.
fn missing(sdk: Sdk) -> Option<String> {
    match sdk {
        Sdk::Python => {
            let out = Command::new("python3")
                .args([
                    "-c",
                    "import importlib.metadata as m; print(m.version('mcp'))",
                ])
                .output();
            match out {
                Ok(out) if out.status.success() => {
                    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    (version != PYTHON_SDK).then(|| {
                        format!("Python package mcp is {version}, the tests pin {PYTHON_SDK}")
                    })
                }
                _ => Some(format!(
                    "Python package mcp=={PYTHON_SDK} is not installed (pip install mcp=={PYTHON_SDK})"
                )),
            }
        }
        Sdk::TypeScript => {
            let node = Command::new("node").arg("--version").output();
            if !node.is_ok_and(|o| o.status.success()) {
                return Some("node is not installed".into());
            }
            let manifest = interop().join("ts/node_modules/@modelcontextprotocol/sdk/package.json");
            let text = std::fs::read_to_string(&manifest).unwrap_or_default();
            let pinned = format!("\"version\": \"{TYPESCRIPT_SDK}\"");
            (!text.contains(&pinned)).then(|| {
                format!(
                    "@modelcontextprotocol/sdk {TYPESCRIPT_SDK} is not installed in tests/interop/ts \
                     (npm ci --prefix tests/interop/ts)"
                )
            })
        }
    }
}

/// A loud skip on a user's machine; a failure under `CI=true`.
fn skip_or_fail(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI must install it (.ci/run does)"
    );
    eprintln!("SKIPPED: MCP interop test: {why}");
}

/// A running gateway on a SQLite file, killed when dropped.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    /// Its log, at `RUST_LOG=debug`.
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Gateway {
    /// Starts a gateway logging at `RUST_LOG=debug`, with
    /// `HOOKROOM_LOG_MCP_MESSAGES=1` when `log_messages`.
    fn start(name: &str, log_messages: bool) -> Self {
        let dir =
            std::env::temp_dir().join(format!("hookroom-interop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let log = dir.join("gateway.log");
        let stderr = std::fs::File::create(&log).expect("a log file");
        let mut command = base_command();
        if log_messages {
            command.env("HOOKROOM_LOG_MCP_MESSAGES", "1");
        }
        let mut child = command
            .env("RUST_LOG", "debug")
            .arg("serve")
            .arg("--config")
            .arg(interop().join("routes.json"))
            .arg("--store")
            .arg(format!("sqlite:{}", dir.join("hookroom.db").display()))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("hookroom starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let prefix = "hookroom gateway listening on http://";
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("hookroom exited before its banner");
            };
            if let Some(addr) = line.strip_prefix(prefix) {
                break addr.trim().parse().expect("an address");
            }
        };
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Self {
            child,
            addr,
            dir,
            log,
        }
    }

    fn sqlite(&self) -> String {
        format!("sqlite:{}", self.dir.join("hookroom.db").display())
    }
}

/// `hookroom` with the test's secret and token, and none of the caller's
/// settings.
fn base_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookroom"));
    command
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOOKROOM_API_TOKEN", TOKEN)
        .env("HOOKROOM_ADMIN_TOKEN", ADMIN)
        .env_remove("HOOKROOM_SETTINGS")
        .env_remove("HOOKROOM_STORE")
        .env_remove("HOOKROOM_CONFIG")
        .env_remove("HOOKROOM_GATEWAY")
        .env_remove("RUST_LOG")
        .env_remove("HOOKROOM_LOG_MCP_MESSAGES");
    command
}

/// Runs one client to its end (or kills it after [`PATIENCE`]); answers
/// whether it succeeded, its stdout and its stderr.
fn run_client(sdk: Sdk, transport: Transport, gateway: &Gateway) -> (bool, String, String) {
    let url = format!("http://{}", gateway.addr);
    let mut command = match sdk {
        Sdk::Python => {
            let mut c = Command::new("python3");
            c.arg(interop().join("python/client.py"));
            c
        }
        Sdk::TypeScript => {
            let mut c = Command::new("node");
            c.arg(interop().join("ts/client.mjs"));
            c
        }
    };
    let binary = env!("CARGO_BIN_EXE_hookroom");
    match transport {
        Transport::Http => {
            command.args(["http", &format!("{url}/mcp")]);
        }
        Transport::StdioGateway => {
            // The admin grant locally; the gateway checks the admin token.
            command.args(["stdio", binary, "mcp", "--admin", "--gateway", &url]);
        }
        Transport::StdioSqlite => {
            // The local user, with the admin grant (see [`ADMIN`]).
            command.args([
                "stdio",
                binary,
                "mcp",
                "--admin",
                "--store",
                &gateway.sqlite(),
            ]);
        }
    }
    // The client passes its environment to the stdio server it starts.
    let delivery = format!("interop-{sdk:?}-{transport:?}-{}", std::process::id());
    command
        .env("HOOKROOM_INTEROP_GATEWAY", &url)
        .env("HOOKROOM_INTEROP_TOKEN", ADMIN)
        .env("HOOKROOM_INTEROP_DELIVERY", delivery)
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        // `hookroom mcp --gateway` reaches the gateway with this token.
        .env("HOOKROOM_API_TOKEN", ADMIN)
        .env_remove("HOOKROOM_GATEWAY")
        .env_remove("HOOKROOM_STORE")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the client starts");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + PATIENCE;
    let success = loop {
        if let Some(status) = child.try_wait().expect("the client's status") {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        success,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

fn scenario(sdk: Sdk, transport: Transport) {
    if let Some(why) = missing(sdk) {
        skip_or_fail(&why);
        return;
    }
    // Over HTTP the gateway serves the session itself; the TypeScript run
    // asks for MCP messages in its log, the Python run does not.
    let log_messages = matches!(sdk, Sdk::TypeScript);
    let gateway = Gateway::start(&format!("{sdk:?}-{transport:?}"), log_messages);
    let (success, stdout, stderr) = run_client(sdk, transport, &gateway);
    let steps: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|step| step["ok"] == true)
        .filter_map(|step| step["step"].as_str().map(str::to_owned))
        .collect();
    // The stderr of a failing client ends with why it failed.
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert!(
        success,
        "{sdk:?} over {transport:?} failed after {steps:?}\n{stdout}\n{tail}"
    );
    let expected: Vec<&str> = STEPS.to_vec();
    let seen: Vec<&str> = steps
        .iter()
        .map(String::as_str)
        .filter(|s| expected.contains(s))
        .collect();
    assert_eq!(seen, expected, "{sdk:?} over {transport:?}\n{stdout}");
    if matches!(transport, Transport::Http) {
        // The gateway served the session at RUST_LOG=debug: what the
        // webhook's sender wrote (in tool results) is in its log only when
        // HOOKROOM_LOG_MCP_MESSAGES asks for MCP messages.
        let log = std::fs::read_to_string(&gateway.log).unwrap_or_default();
        assert_eq!(
            log.contains("Ignore previous instructions"),
            log_messages,
            "{sdk:?}: HOOKROOM_LOG_MCP_MESSAGES={log_messages}"
        );
    }
}

#[test]
fn python_sdk_over_streamable_http() {
    scenario(Sdk::Python, Transport::Http);
}

#[test]
fn python_sdk_over_stdio_through_the_gateway() {
    scenario(Sdk::Python, Transport::StdioGateway);
}

#[test]
fn python_sdk_over_stdio_on_the_gateways_sqlite_file() {
    scenario(Sdk::Python, Transport::StdioSqlite);
}

#[test]
fn typescript_sdk_over_streamable_http() {
    scenario(Sdk::TypeScript, Transport::Http);
}

#[test]
fn typescript_sdk_over_stdio_through_the_gateway() {
    scenario(Sdk::TypeScript, Transport::StdioGateway);
}

#[test]
fn typescript_sdk_over_stdio_on_the_gateways_sqlite_file() {
    scenario(Sdk::TypeScript, Transport::StdioSqlite);
}
