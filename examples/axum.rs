//! Mounting hookroom's services in an axum app.
//!
//! ```text
//! GITHUB_WEBHOOK_SECRET=s3cret cargo run --example axum
//! ```
//!
//! The ingest service is a plain tower service, so axum mounts it with
//! `route_service` next to the app's own routes, at any path:
//! `for_source("github")` serves one source whatever the path, and a
//! [`SourceName`] extension set by a middleware lets axum's own `{provider}`
//! capture pick the source. A small middleware copies axum's `ConnectInfo`
//! into [`PeerAddr`] so per-source IP allowlists work.
//!
//! `/hooks-operations` and `/hooks-health`'s detail need a token from
//! `HOOKROOM_ADMIN_TOKEN` (comma-separated); without it they are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

use hookroom::route::OneRoom;
use hookroom::service::{BearerTokens, OperationsService, PeerAddr, SourceName, WebhookService};
use hookroom::source::GithubSource;
use hookroom::status::InMemoryStatusSink;
use hookroom::task::InMemoryTaskStore;
use hookroom::verify::{GithubVerifier, Secret};

async fn peer_addr(
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(PeerAddr(addr));
    next.run(request).await
}

/// Takes the source from axum's `{provider}` capture.
async fn source_from_path(
    Path(provider): Path<String>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(SourceName::new(provider));
    next.run(request).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let admin = BearerTokens::from_env("HOOKROOM_ADMIN_TOKEN")?;
    // An unset or empty variable is an error, never an empty key.
    let secret = Secret::from_env("GITHUB_WEBHOOK_SECRET")?;
    let ingest = WebhookService::builder(
        Arc::new(OneRoom::new("triage")),
        Arc::new(InMemoryTaskStore::new()),
    )
    .status_sink(Arc::new(InMemoryStatusSink::new()))
    .source(
        "github",
        Arc::new(GithubVerifier::new(secret)),
        Arc::new(GithubSource::new()),
    )
    .build();

    let github = ingest.for_source("github").ok_or("no github source")?;
    let app = axum::Router::new()
        // The source from axum's capture (`route_layer` wraps the routes
        // added so far: this one only).
        .route_service("/in/{provider}", ingest.clone())
        .route_layer(middleware::from_fn(source_from_path))
        // One source at a path of the app's choosing.
        .route_service("/hooks/gh", github)
        .route("/", get(|| async { "my app, with webhooks under /hooks" }))
        // `nest_service` strips `/hooks`, so the service sees `/webhook/{source}`.
        .nest_service("/hooks", ingest.clone())
        .route_service(
            "/hooks-health",
            ingest.health_service().principals(admin.clone()),
        )
        .route_service(
            "/hooks-operations",
            OperationsService::new(ingest.operations_log()).principals(admin),
        )
        .layer(middleware::from_fn(peer_addr));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8937").await?;
    println!("axum app on http://{}", listener.local_addr()?);
    println!("  POST /hooks/gh   POST /in/github   POST /hooks/webhook/github");
    println!("  GET /hooks-health   GET /hooks-operations (admin token)");
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
