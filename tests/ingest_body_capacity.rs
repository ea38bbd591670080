//! A request that declares a large `Content-Length` and sends a few bytes
//! must not make the service reserve the declared size: the bytes reserved
//! before any arrive are capped, and the buffer grows as they come.
//!
//! This binary holds a single test so the counting allocator sees only the
//! request under test.

#![cfg(feature = "memory")]

use std::alloc::System;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;

use hookroom::service::WebhookService;
use hookroom::task::InMemoryTaskStore;

#[path = "support/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_declared_length_is_not_reserved_up_front() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let service = WebhookService::builder(pipeline::router(), Arc::new(InMemoryTaskStore::new()))
        .source(
            "github",
            pipeline::github_verifier(),
            pipeline::github_source(),
        )
        .build();
    // Declares 1,000,000 bytes (under the 1 MiB limit), sends 2, unsigned.
    let request = Request::post("/webhook/github")
        .header("content-length", "1000000")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    let region = Region::new(GLOBAL);
    let response = runtime
        .block_on(service.oneshot(request))
        .expect("infallible");
    let allocated = region.change().bytes_allocated;
    assert_eq!(response.status(), 401);
    assert!(
        allocated < 64 * 1024,
        "{allocated} bytes allocated for a 2-byte body"
    );
}
