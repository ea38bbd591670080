//! Mounting hookroom's services in an axum app.
//!
//! ```text
//! cargo run --example axum
//! ```
//!
//! The ingest service is a plain tower service, so axum mounts it with
//! `route_service` next to the app's own routes; a small middleware copies
//! axum's `ConnectInfo` into [`PeerAddr`] so per-source IP allowlists work.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use hookroom::service::{OperationsService, PeerAddr, WebhookService};
use hookroom::source::GithubSource;
use hookroom::status::InMemoryStatusSink;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::GithubVerifier;

#[path = "support/one_room.rs"]
mod one_room;

async fn peer_addr(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(PeerAddr(addr));
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = one_room::secret_from_env("GITHUB_WEBHOOK_SECRET")?;
    let ingest = WebhookService::builder(
        one_room::router("triage"),
        Arc::new(InMemoryTaskStore::new()),
    )
    .status_sink(Arc::new(InMemoryStatusSink::new()))
    .source(
        "github",
        Arc::new(GithubVerifier::new(secret)),
        Arc::new(GithubSource::new()),
    )
    .build();

    let app = axum::Router::new()
        .route("/", get(|| async { "my app, with webhooks under /hooks" }))
        // `nest_service` strips `/hooks`, so the service sees `/webhook/{source}`.
        .nest_service("/hooks", ingest.clone())
        .route_service("/hooks-health", ingest.health_service())
        .route_service(
            "/hooks-operations",
            OperationsService::new(ingest.operations_log()),
        )
        .layer(middleware::from_fn(peer_addr));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8937").await?;
    println!("axum app on http://{}", listener.local_addr()?);
    println!("  POST /hooks/webhook/github   GET /hooks-health   GET /hooks-operations");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
