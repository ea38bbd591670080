//! Serving hookroom's webhook gateway with hyper 1 directly, no framework.
//!
//! ```text
//! GITHUB_WEBHOOK_SECRET=s3cret cargo run --example hyper
//! ```
//!
//! One connection task per accepted socket; each request gets the socket's
//! peer address as [`PeerAddr`](hookroom::service::PeerAddr) (for IP
//! allow-lists and rate limits) before it reaches the gateway. hyper reads
//! headers within 10 s here; a public endpoint also wants a whole-request
//! timeout, an idle timeout and a connection cap, which `hookroom serve`
//! applies.

use std::sync::Arc;
use std::time::Duration;

use hookroom::route::OneRoom;
use hookroom::service::{Gateway, PeerAddr, WebhookService};
use hookroom::source::GithubSource;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::{GithubVerifier, Secret};
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An unset or empty variable is an error, never an empty key.
    let secret = Secret::from_env("GITHUB_WEBHOOK_SECRET")?;
    let ingest = WebhookService::builder(
        Arc::new(OneRoom::new("triage")),
        Arc::new(InMemoryTaskStore::new()),
    )
    .source(
        "github",
        Arc::new(GithubVerifier::new(secret)),
        Arc::new(GithubSource::new()),
    )
    .build();
    let gateway = Gateway::builder(ingest).build();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8936").await?;
    println!("hyper server on http://{}", listener.local_addr()?);
    println!("  POST /webhook/github   GET /health");
    loop {
        let (stream, peer) = listener.accept().await?;
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                // The gateway is always ready: no `poll_ready` is needed.
                tower_service::Service::call(&mut gateway.clone(), request)
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                eprintln!("{peer}: {error}");
            }
        });
    }
}
