//! Serving hookroom's gateway with hyper 1 directly, no framework.
//!
//! ```text
//! cargo run --example hyper
//! cargo run --example hyper -- --header-timeout 10 --request-timeout 30 --idle-timeout 60 --max-connections 10000
//! ```
//!
//! One connection task per accepted socket, with the limits a public
//! endpoint needs (a header-read timeout, a whole-request timeout, an idle
//! keep-alive timeout and a connection cap; the flags above show the
//! defaults); each request gets the socket's peer address as
//! [`PeerAddr`](hookroom::service::PeerAddr) before it reaches the gateway.
//! The serving loop is `examples/support/serve.rs`: copy it along.
//!
//! `/operations` and `/health`'s detail need a token from
//! `HOOKROOM_ADMIN_TOKEN` (comma-separated); without it they are refused.

use std::sync::Arc;

use hookroom::service::{BearerTokens, Gateway, WebhookService};
use hookroom::source::GithubSource;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::GithubVerifier;

#[path = "support/one_room.rs"]
mod one_room;
#[path = "support/serve.rs"]
mod serve;

fn limits() -> Result<serve::Limits, String> {
    let mut limits = serve::Limits::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let usage = || format!("usage: hyper {}", serve::LIMIT_FLAGS);
        let value = args.next().ok_or_else(usage)?;
        if !limits.set(&flag, &value)? {
            return Err(format!("unknown flag `{flag}`\n{}", usage()));
        }
    }
    Ok(limits)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limits = limits()?;
    let admin = BearerTokens::from_env("HOOKROOM_ADMIN_TOKEN")?;
    let secret = one_room::secret_from_env("GITHUB_WEBHOOK_SECRET")?;
    let ingest = WebhookService::builder(
        one_room::router("triage"),
        Arc::new(InMemoryTaskStore::new()),
    )
    .source(
        "github",
        Arc::new(GithubVerifier::new(secret)),
        Arc::new(GithubSource::new()),
    )
    .build();
    let gateway = Gateway::new(ingest).admin_tokens(admin);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8936").await?;
    println!("hyper server on http://{}", listener.local_addr()?);
    println!("  POST /webhook/github   GET /health   GET /operations (admin token)");
    println!("  limits: {limits:?}");
    serve::serve(listener, gateway, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
