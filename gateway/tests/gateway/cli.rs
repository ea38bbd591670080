//! The command line: every subcommand's `--help`, `check`, `send`, the
//! settings file, and start-up errors that name what is wrong.

use std::process::Output;

use crate::support::{GITHUB_SECRET, Gateway, command, routes_file};

fn run(args: &[&str]) -> Output {
    command().args(args).output().expect("hookroom runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_help_prints_usage_and_exits_0() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["mcp", "--help"],
        &["send", "--help"],
        &["check", "--help"],
    ] {
        let output = run(args);
        let shown = text(&output);
        assert!(output.status.success(), "{args:?}: {shown}");
        assert!(shown.contains("Usage: hookroom"), "{args:?}: {shown}");
    }
    // Every serve flag names its variable; the defaults are stated.
    let serve = text(&run(&["serve", "--help"]));
    for needle in [
        "HOOKROOM_LISTEN",
        "HOOKROOM_STORE",
        "HOOKROOM_CONFIG",
        "HOOKROOM_SETTINGS",
        "HOOKROOM_ADMIN_TOKEN",
        "HOOKROOM_API_TOKEN",
        "127.0.0.1:8935",
        "sqlite:hookroom.db",
    ] {
        assert!(
            serve.contains(needle),
            "serve --help lacks {needle}: {serve}"
        );
    }
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let output = run(&["serve", "--lissten", "x"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--lissten"));
}

#[test]
fn check_prints_routes_and_which_secrets_are_set() {
    let output = run(&["check", "--config", routes_file().to_str().unwrap()]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("-> room `pr-review`"), "{shown}");
    assert!(shown.contains("${GITHUB_WEBHOOK_SECRET}: set"), "{shown}");
    assert!(
        !shown.contains(GITHUB_SECRET),
        "a secret was printed: {shown}"
    );

    let unset = command()
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .args(["check", "--config", routes_file().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(1), "{}", text(&unset));
    assert!(text(&unset).contains("${GITHUB_WEBHOOK_SECRET}: NOT SET"));
}

#[test]
fn check_fails_on_a_broken_routes_file_and_names_it() {
    let path = std::env::temp_dir().join(format!("hookroom-broken-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"routes": [{"source": "github", "evnt": "*"}]}"#).unwrap();
    let output = run(&["check", "--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let shown = text(&output);
    assert!(shown.contains("evnt"), "{shown}");
}

#[test]
fn a_broken_settings_file_stops_serve_and_names_the_key() {
    let path = std::env::temp_dir().join(format!("hookroom-settings-{}.toml", std::process::id()));
    std::fs::write(&path, "lissten = \"127.0.0.1:1\"\n").unwrap();
    let output = run(&["serve", "--settings", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("lissten"), "{}", text(&output));
}

#[tokio::test]
async fn the_settings_file_sets_what_serve_runs_with() {
    let dir = std::env::temp_dir().join(format!("hookroom-settings-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(routes_file(), dir.join("routes.json")).unwrap();
    let settings = dir.join("hookroom.toml");
    std::fs::write(
        &settings,
        "listen = \"127.0.0.1:0\"\nstore = \"memory\"\nconfig = \"routes.json\"\nrequest_timeout_secs = 7\n",
    )
    .unwrap();
    let mut serve = command();
    serve.arg("serve").arg("--settings").arg(&settings);
    let gateway = Gateway::spawn(serve);
    let banner = gateway.printed("limits:").await;
    assert!(banner.contains("task store: memory"), "{banner}");
    assert!(banner.contains("request 7s"), "{banner}");
    drop(gateway);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn send_signs_a_delivery_the_gateway_accepts_once() {
    let gateway = Gateway::start(&[]);
    let url = format!("http://{}", gateway.addr);
    let body = std::env::temp_dir().join(format!("hookroom-send-{}.json", std::process::id()));
    std::fs::write(
        &body,
        r#"{"action":"opened","pull_request":{"number":1,"title":"t"},"repository":{"full_name":"o/r"}}"#,
    )
    .unwrap();
    let sent = tokio::task::spawn_blocking({
        let body = body.clone();
        move || {
            command()
                .args(["send", "--source", "github", "--url", &url, "--body"])
                .arg(&body)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    std::fs::remove_file(&body).unwrap();
    let shown = text(&sent);
    assert!(sent.status.success(), "{shown}");
    assert!(shown.starts_with("202 Accepted"), "{shown}");
    assert!(shown.contains("\"accepted\""), "{shown}");
}

#[test]
fn send_dry_run_prints_a_signed_curl_and_an_unset_secret_exits_1() {
    let dry = command()
        .env("GITHUB_WEBHOOK_SECRET", "x")
        .args(["send", "--source", "github", "--dry-run"])
        .output()
        .unwrap();
    let shown = text(&dry);
    assert!(dry.status.success(), "{shown}");
    assert!(
        shown.contains("http://127.0.0.1:8935/webhook/github"),
        "{shown}"
    );
    assert!(shown.contains("X-Hub-Signature-256: sha256="), "{shown}");

    let unset = command()
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .args(["send", "--source", "github", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(1));
    assert!(text(&unset).contains("GITHUB_WEBHOOK_SECRET"));
}

#[tokio::test]
async fn mcp_with_a_refused_gateway_token_stops_at_start() {
    let gateway = Gateway::start(&[]);
    let url = format!("http://{}", gateway.addr);
    let output = tokio::task::spawn_blocking(move || {
        command()
            .env("HOOKROOM_API_TOKEN", "not-the-token")
            .args(["mcp", "--gateway", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let shown = text(&output);
    assert!(shown.contains("--gateway"), "{shown}");

    let unset = run(&["mcp", "--gateway", "http://127.0.0.1:1"]);
    assert_eq!(unset.status.code(), Some(1));
    assert!(
        text(&unset).contains("HOOKROOM_API_TOKEN is not set"),
        "{}",
        text(&unset)
    );
}

#[test]
fn development_mode_refuses_a_public_address() {
    let output = run(&["serve", "--listen", "0.0.0.0:0", "--store", "memory"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("loopback"), "{}", text(&output));
}

/// With no subcommand, `serve`'s flags work as they are.
#[tokio::test]
async fn serve_runs_without_being_named() {
    let mut command = command();
    command.arg("--config").arg(routes_file()).args([
        "--store",
        "memory",
        "--listen",
        "127.0.0.1:0",
    ]);
    let gateway = Gateway::spawn(command);
    let banner = gateway.printed("/webhook/github").await;
    assert!(banner.contains("task store: memory"), "{banner}");
}
