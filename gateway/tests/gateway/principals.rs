//! Principals as the binary serves them: a principals file made with
//! `hookroom token new`, reloaded on SIGHUP; the Host and Origin check; a
//! random development token; `/metrics` behind an admin.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ADMIN, Gateway, PATIENCE, TOKEN, binary, command, request, routes_file};

/// `hookroom token new` with `args`: the token (stdout) and the entry
/// (stderr).
fn new_token(args: &[&str]) -> (String, String) {
    let output = std::process::Command::new(binary())
        .args(["token", "new"])
        .args(args)
        .output()
        .expect("hookroom token new runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let entry = stderr
        .lines()
        .skip_while(|line| !line.starts_with("[[principal]]"))
        .take_while(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    (token, entry)
}

async fn as_token(addr: std::net::SocketAddr, token: &str, head: &str, body: &str) -> (u16, Value) {
    let (status, text) = request(
        addr,
        &format!("{head} HTTP/1.1\r\nAuthorization: Bearer {token}"),
        body.as_bytes(),
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_principals_file_from_token_new_is_served_and_reloaded_on_sighup() {
    let (agent, agent_entry) = new_token(&[
        "--name",
        "reviewer-1",
        "--role",
        "agent",
        "--rooms",
        "pr-review",
    ]);
    assert!(agent.starts_with("hkr_") && agent.len() > 60, "{agent}");
    assert!(
        !agent_entry.contains(&agent),
        "the entry holds only the digest"
    );
    let (viewer, viewer_entry) = new_token(&["--name", "watcher", "--role", "viewer"]);
    let dir = std::env::temp_dir().join(format!("hookroom-principals-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("principals.toml");
    std::fs::write(&file, format!("{agent_entry}\n")).unwrap();

    let mut cmd = command();
    cmd.arg("serve")
        .arg("--config")
        .arg(routes_file())
        .args([
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--principals",
        ])
        .arg(&file);
    let gateway = Gateway::spawn(cmd);
    let addr = gateway.addr;

    let (status, me) = as_token(addr, &agent, "GET /api/whoami", "").await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "reviewer-1");
    assert_eq!(me["rooms"], serde_json::json!(["pr-review"]));
    // Its own name only, its own room only.
    let claim = |agent_id: &str| format!(r#"{{"agent_id":"{agent_id}","lease_seconds":30}}"#);
    let (status, _) = as_token(
        addr,
        &agent,
        "POST /api/rooms/pr-review/claim",
        &claim("reviewer-1"),
    )
    .await;
    assert_eq!(status, 204, "nothing to claim yet, but allowed");
    let (status, body) = as_token(
        addr,
        &agent,
        "POST /api/rooms/pr-review/claim",
        &claim("someone-else"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = as_token(
        addr,
        &agent,
        "POST /api/rooms/billing/claim",
        &claim("reviewer-1"),
    )
    .await;
    assert_eq!(status, 403);
    // The viewer is not known yet.
    assert_eq!(as_token(addr, &viewer, "GET /api/whoami", "").await.0, 401);

    std::fs::write(&file, format!("{agent_entry}\n\n{viewer_entry}\n")).unwrap();
    let pid = gateway_pid(&gateway);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, me) = as_token(addr, &viewer, "GET /api/whoami", "").await;
        if status == 200 {
            assert_eq!(me["role"], "viewer");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A broken file leaves the principals in force.
    std::fs::write(&file, "[[principal]]\nname = \"x\"\n").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(as_token(addr, &viewer, "GET /api/whoami", "").await.0, 200);
    assert_eq!(as_token(addr, &agent, "GET /api/whoami", "").await.0, 200);
}

fn gateway_pid(gateway: &Gateway) -> u32 {
    gateway.pid()
}

/// Sends `head` with exactly these headers (no Host added).
async fn raw(addr: std::net::SocketAddr, head: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn pages_on_other_sites_and_rebinding_hosts_are_refused() {
    let gateway = Gateway::start(&[]);
    let addr = gateway.addr;
    let port = addr.port();
    let auth = format!("Authorization: Bearer {TOKEN}");
    let cases = [
        // (path, Host, Origin, expected)
        ("/api/rooms", format!("127.0.0.1:{port}"), None, 200),
        (
            "/api/rooms",
            format!("localhost:{port}"),
            Some(format!("http://localhost:{port}")),
            200,
        ),
        (
            "/api/rooms",
            format!("127.0.0.1:{port}"),
            Some("https://evil.example".to_owned()),
            403,
        ),
        (
            "/api/rooms",
            format!("evil.example:{port}"),
            Some(format!("http://evil.example:{port}")),
            403,
        ),
        ("/mcp", format!("evil.example:{port}"), None, 403),
        (
            "/mcp",
            format!("127.0.0.1:{port}"),
            Some("https://evil.example".to_owned()),
            403,
        ),
        // Webhooks and /health are for servers: no Host or Origin check
        // there (the agent token is no admin's: 401, from /health itself).
        ("/health", format!("evil.example:{port}"), None, 401),
    ];
    for (path, host, origin, expected) in cases {
        let origin = origin
            .map(|o| format!("\r\nOrigin: {o}"))
            .unwrap_or_default();
        let status = raw(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{origin}"),
        )
        .await;
        assert_eq!(status, expected, "{path} Host {host}{origin}");
    }
}

#[tokio::test]
async fn the_development_token_is_random_and_metrics_need_an_admin_with_a_config() {
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut cmd = command();
        cmd.args(["serve", "--store", "memory", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped());
        let gateway = Gateway::spawn(cmd);
        let text = gateway.printed("agent token (development").await;
        let token = text
            .lines()
            .find_map(|l| {
                l.split("agent token (development; set HOOKROOM_API_TOKEN to replace it): ")
                    .nth(1)
            })
            .expect("the token is printed")
            .trim()
            .to_owned();
        assert_ne!(token, "hookroom-dev-hookroom-api-token");
        assert_eq!(
            as_token(gateway.addr, &token, "GET /api/whoami", "")
                .await
                .0,
            200
        );
        // Development mode without an admin: /metrics is open.
        assert_eq!(
            request(gateway.addr, "GET /metrics HTTP/1.1", b"").await.0,
            200
        );
        tokens.push(token);
    }
    assert_ne!(tokens[0], tokens[1], "a fresh token at every start");

    // With a routes file, /metrics needs an admin, whatever else is set.
    let gateway = Gateway::start(&[]);
    assert_eq!(
        request(gateway.addr, "GET /metrics HTTP/1.1", b"").await.0,
        401
    );
    assert_eq!(
        as_token(gateway.addr, TOKEN, "GET /metrics", "").await.0,
        401
    );
    assert_eq!(
        as_token(gateway.addr, ADMIN, "GET /metrics", "").await.0,
        200
    );
}
