//! `hookroom send`: signs and sends a test webhook, as its provider would,
//! for every scheme the crate verifies: the safe, client-side way to
//! simulate a delivery.
//!
//! ```sh
//! export GITHUB_WEBHOOK_SECRET=...        # the secret the gateway checks
//! hookroom send --source github
//! hookroom send --source huggingface --secret-env HF_WEBHOOK_SECRET
//! hookroom send --source standard --secret-env SVIX_SECRET \
//!     --url http://127.0.0.1:3000/hooks/orders --body order.json
//! ```

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hookroom::verify::{Secret, github, huggingface, jira, slack, standard_webhooks, stripe};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::cli::{SendArgs, SendSource};

impl SendSource {
    /// The source's name in the gateway's paths (`/webhook/{name}`).
    fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Slack => "slack",
            Self::Jira => "jira",
            Self::Huggingface => "huggingface",
            Self::Standard => "standard",
            Self::Stripe => "stripe",
        }
    }
}

/// The URL to post to: `url` itself when it has a path, else the gateway's
/// `/webhook/{source}` under it.
fn target_url(url: &str, source: SendSource) -> String {
    let trimmed = url.trim_end_matches('/');
    let has_path = trimmed
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    if has_path {
        url.to_owned()
    } else {
        format!("{trimmed}/webhook/{}", source.name())
    }
}

/// The gateway's secret variable and a sample body for each source.
fn defaults(source: SendSource, delivery: &str) -> (&'static str, String) {
    match source {
        SendSource::Github => (
            "GITHUB_WEBHOOK_SECRET",
            r#"{"action":"opened","pull_request":{"number":42,"title":"Test PR","html_url":"https://github.com/octo/repo/pull/42"},"repository":{"full_name":"octo/repo"}}"#.to_owned(),
        ),
        SendSource::Slack => (
            "SLACK_SIGNING_SECRET",
            format!(r#"{{"type":"event_callback","event_id":"Ev{delivery}","event":{{"type":"app_mention","text":"<@U1> help","channel":"C1","user":"U2"}}}}"#),
        ),
        SendSource::Jira => (
            "JIRA_WEBHOOK_SECRET",
            format!(r#"{{"webhookEvent":"jira:issue_created","timestamp":1700000000000,"issue":{{"id":"{delivery}","key":"PROJ-1","fields":{{"summary":"Test issue"}}}}}}"#),
        ),
        SendSource::Huggingface => (
            "HF_WEBHOOK_SECRET",
            format!(r#"{{"event":{{"action":"create","scope":"discussion.comment"}},"repo":{{"type":"model","name":"user/model"}},"discussion":{{"num":1,"title":"Tags","url":{{"web":"https://huggingface.co/user/model/discussions/1"}}}},"comment":{{"id":"{delivery}","content":"please tag this","url":{{"web":"https://huggingface.co/user/model/discussions/1#c"}}}}}}"#),
        ),
        SendSource::Standard => (
            "STANDARD_WEBHOOK_SECRET",
            r#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#.to_owned(),
        ),
        SendSource::Stripe => (
            "STRIPE_WEBHOOK_SECRET",
            format!(r#"{{"id":"evt_{delivery}","type":"payment_intent.succeeded","data":{{"object":{{"id":"pi_1"}}}}}}"#),
        ),
    }
}

/// The headers that sign `body` for `source`.
fn signed_headers(
    args: &SendArgs,
    secret: &Secret,
    body: &[u8],
    delivery: &str,
    now: i64,
) -> Result<Vec<(String, String)>, String> {
    let key = secret.expose();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    match args.source {
        SendSource::Github => {
            headers.push(("X-GitHub-Event".into(), args.event.clone()));
            headers.push(("X-GitHub-Delivery".into(), delivery.to_owned()));
            headers.push((github::HEADER.into(), github::sign(key, body)));
        }
        SendSource::Slack => {
            headers.push((slack::TIMESTAMP_HEADER.into(), now.to_string()));
            headers.push((slack::SIGNATURE_HEADER.into(), slack::sign(key, now, body)));
        }
        SendSource::Jira => headers.push((jira::HEADER.into(), jira::sign(key, body))),
        SendSource::Huggingface => {
            let value = huggingface::sign(secret).map_err(|e| e.to_string())?;
            let value = value.to_str().map_err(|e| e.to_string())?.to_owned();
            headers.push((huggingface::HEADER.into(), value));
        }
        SendSource::Standard => {
            let raw = std::str::from_utf8(key).map_err(|e| e.to_string())?;
            let decoded = standard_webhooks::decode_secret(raw).map_err(|e| e.to_string())?;
            let id = format!("msg_{delivery}");
            let signature = standard_webhooks::sign(decoded.expose(), &id, now, body);
            headers.push(("webhook-id".into(), id));
            headers.push(("webhook-timestamp".into(), now.to_string()));
            headers.push(("webhook-signature".into(), signature));
        }
        SendSource::Stripe => headers.push((stripe::HEADER.into(), stripe::sign(key, now, body))),
    }
    Ok(headers)
}

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Signs and sends (or, with `--dry-run`, prints) one test delivery.
pub(crate) async fn run(args: SendArgs) -> Result<ExitCode, String> {
    let delivery = uuid::Uuid::new_v4().to_string();
    let (default_var, sample) = defaults(args.source, &delivery);
    let var = args
        .secret_env
        .clone()
        .unwrap_or_else(|| default_var.to_owned());
    // A variable that is unset or empty is an error, never an empty key.
    let secret =
        Secret::from_env(&var).map_err(|e| format!("{e} (set {var}, or pass --secret-env)"))?;
    let body = match &args.body {
        Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => sample.into_bytes(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok())
        .ok_or("the system clock is before 1970")?;
    let headers = signed_headers(&args, &secret, &body, &delivery, now)?;
    let url = target_url(&args.url, args.source);

    if args.dry_run {
        let mut curl = format!("curl -sS -X POST {}", shell_quote(&url));
        for (name, value) in &headers {
            let _ = write!(
                curl,
                " \\\n  -H {}",
                shell_quote(&format!("{name}: {value}"))
            );
        }
        let _ = write!(
            curl,
            " \\\n  --data-binary {}",
            shell_quote(&String::from_utf8_lossy(&body))
        );
        println!("{curl}");
        return Ok(ExitCode::SUCCESS);
    }

    let mut request = http::Request::post(&url);
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let answer = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    println!("{status} {}", String::from_utf8_lossy(&answer));
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_webhook_path_and_a_full_url_is_kept() {
        assert_eq!(
            target_url("http://127.0.0.1:8935", SendSource::Github),
            "http://127.0.0.1:8935/webhook/github"
        );
        assert_eq!(
            target_url("http://127.0.0.1:8935/", SendSource::Slack),
            "http://127.0.0.1:8935/webhook/slack"
        );
        assert_eq!(
            target_url("http://127.0.0.1:3000/hooks/orders", SendSource::Standard),
            "http://127.0.0.1:3000/hooks/orders"
        );
    }
}
