//! Signs and sends a test webhook, as its provider would, for every scheme
//! the crate verifies: the safe, client-side way to simulate a delivery.
//!
//! ```sh
//! export GITHUB_WEBHOOK_SECRET=...        # the secret the gateway checks
//! cargo run --example send -- --source github
//! cargo run --example send -- --source huggingface --secret-env HF_WEBHOOK_SECRET
//! cargo run --example send -- --source standard --secret-env SVIX_SECRET \
//!     --url http://127.0.0.1:3000/hooks/orders --body order.json
//! ```
//!
//! Flags: `--source github|slack|jira|huggingface|standard|stripe`,
//! `--secret-env VAR` (default: the gateway's variable for the source),
//! `--url URL` (default `http://127.0.0.1:8935/webhook/{source}`),
//! `--body FILE` (default: a built-in sample), `--event NAME` (GitHub's
//! `X-GitHub-Event`, default `pull_request`), `--dry-run` (print the curl,
//! send nothing). Every run uses a fresh delivery id and the current time.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hookroom::verify::{Secret, github, huggingface, jira, slack, standard_webhooks, stripe};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const USAGE: &str = "usage: send --source github|slack|jira|huggingface|standard|stripe \
                     [--secret-env VAR] [--url URL] [--body FILE] [--event NAME] [--dry-run]";

struct Args {
    source: String,
    secret_env: Option<String>,
    url: Option<String>,
    body: Option<String>,
    event: String,
    dry_run: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        source: String::new(),
        secret_env: None,
        url: None,
        body: None,
        event: "pull_request".to_owned(),
        dry_run: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--source" => args.source = value()?,
            "--secret-env" => args.secret_env = Some(value()?),
            "--url" => args.url = Some(value()?),
            "--body" => args.body = Some(value()?),
            "--event" => args.event = value()?,
            "--dry-run" => args.dry_run = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown flag `{other}`\n{USAGE}")),
        }
    }
    if args.source.is_empty() {
        return Err(USAGE.to_owned());
    }
    Ok(args)
}

/// The gateway's secret variable and a sample body for each source.
fn defaults(source: &str, delivery: &str) -> Option<(&'static str, String)> {
    Some(match source {
        "github" => (
            "GITHUB_WEBHOOK_SECRET",
            r#"{"action":"opened","pull_request":{"number":42,"title":"Test PR","html_url":"https://github.com/octo/repo/pull/42"},"repository":{"full_name":"octo/repo"}}"#.to_owned(),
        ),
        "slack" => (
            "SLACK_SIGNING_SECRET",
            format!(r#"{{"type":"event_callback","event_id":"Ev{delivery}","event":{{"type":"app_mention","text":"<@U1> help","channel":"C1","user":"U2"}}}}"#),
        ),
        "jira" => (
            "JIRA_WEBHOOK_SECRET",
            format!(r#"{{"webhookEvent":"jira:issue_created","timestamp":1700000000000,"issue":{{"id":"{delivery}","key":"PROJ-1","fields":{{"summary":"Test issue"}}}}}}"#),
        ),
        "huggingface" => (
            "HF_WEBHOOK_SECRET",
            format!(r#"{{"event":{{"action":"create","scope":"discussion.comment"}},"repo":{{"type":"model","name":"user/model"}},"discussion":{{"num":1,"title":"Tags","url":{{"web":"https://huggingface.co/user/model/discussions/1"}}}},"comment":{{"id":"{delivery}","content":"please tag this","url":{{"web":"https://huggingface.co/user/model/discussions/1#c"}}}}}}"#),
        ),
        "standard" => (
            "STANDARD_WEBHOOK_SECRET",
            r#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#.to_owned(),
        ),
        "stripe" => (
            "STRIPE_WEBHOOK_SECRET",
            format!(r#"{{"id":"evt_{delivery}","type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_1"}}}}}}"#),
        ),
        _ => return None,
    })
}

/// The headers that sign `body` for `source`.
fn signed_headers(
    args: &Args,
    secret: &Secret,
    body: &[u8],
    delivery: &str,
    now: i64,
) -> Result<Vec<(String, String)>, String> {
    let key = secret.expose();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    match args.source.as_str() {
        "github" => {
            headers.push(("X-GitHub-Event".into(), args.event.clone()));
            headers.push(("X-GitHub-Delivery".into(), delivery.to_owned()));
            headers.push((github::HEADER.into(), github::sign(key, body)));
        }
        "slack" => {
            headers.push((slack::TIMESTAMP_HEADER.into(), now.to_string()));
            headers.push((slack::SIGNATURE_HEADER.into(), slack::sign(key, now, body)));
        }
        "jira" => headers.push((jira::HEADER.into(), jira::sign(key, body))),
        "huggingface" => {
            let value = huggingface::sign(secret).map_err(|e| e.to_string())?;
            let value = value.to_str().map_err(|e| e.to_string())?.to_owned();
            headers.push((huggingface::HEADER.into(), value));
        }
        "standard" => {
            let raw = std::str::from_utf8(key).map_err(|e| e.to_string())?;
            let decoded = standard_webhooks::decode_secret(raw).map_err(|e| e.to_string())?;
            let id = format!("msg_{delivery}");
            let signature = standard_webhooks::sign(decoded.expose(), &id, now, body);
            headers.push(("webhook-id".into(), id));
            headers.push(("webhook-timestamp".into(), now.to_string()));
            headers.push(("webhook-signature".into(), signature));
        }
        "stripe" => headers.push((stripe::HEADER.into(), stripe::sign(key, now, body))),
        other => return Err(format!("unknown source `{other}`\n{USAGE}")),
    }
    Ok(headers)
}

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let delivery = uuid::Uuid::new_v4().to_string();
    let (default_var, sample) = defaults(&args.source, &delivery)
        .ok_or_else(|| format!("unknown source `{}`\n{USAGE}", args.source))?;
    let var = args
        .secret_env
        .clone()
        .unwrap_or_else(|| default_var.to_owned());
    // A variable that is unset or empty is an error, never an empty key.
    let secret =
        Secret::from_env(&var).map_err(|e| format!("{e} (set {var}, or pass --secret-env)"))?;
    let body = match &args.body {
        Some(path) => std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
        None => sample.into_bytes(),
    };
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    let headers = signed_headers(&args, &secret, &body, &delivery, now)?;
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://127.0.0.1:8935/webhook/{}", args.source));

    if args.dry_run {
        let mut curl = format!("curl -sS -X POST {}", shell_quote(&url));
        for (name, value) in &headers {
            curl.push_str(&format!(
                " \\\n  -H {}",
                shell_quote(&format!("{name}: {value}"))
            ));
        }
        curl.push_str(&format!(
            " \\\n  --data-binary {}",
            shell_quote(&String::from_utf8_lossy(&body))
        ));
        println!("{curl}");
        return Ok(());
    }

    let mut request = http::Request::post(&url);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    println!("{status} {}", String::from_utf8_lossy(&answer));
    if !status.is_success() {
        std::process::exit(1);
    }
    Ok(())
}
