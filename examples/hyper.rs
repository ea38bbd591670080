//! Serving hookroom's gateway with hyper 1 directly, no framework.
//!
//! ```text
//! cargo run --example hyper
//! ```
//!
//! One connection task per accepted socket; each request gets the socket's
//! peer address as [`PeerAddr`] before it reaches the gateway.

use std::sync::Arc;

use http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tower_service::Service;

use hookroom::service::{Gateway, PeerAddr, WebhookService};
use hookroom::source::GithubSource;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::GithubVerifier;

#[path = "support/one_room.rs"]
mod one_room;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let gateway = Gateway::new(ingest);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8936").await?;
    println!("hyper server on http://{}", listener.local_addr()?);
    println!("  POST /webhook/github   GET /health   GET /operations");
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                gateway.clone().call(request)
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}
