//! Jobs API request bodies and query strings, through the whole service.
//! The first byte picks the endpoint; the rest is the body (or the query).
//! Every answer is one of the documented statuses with a JSON body.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hookroom::service::{ApiTokens, BearerTokens, JobsApi};
use hookroom::status::InMemoryStatusSink;
use hookroom::api::jobs::{ApiErrorBody, JobCreateResponse, JobListResponse, JobView};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower_service::Service;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    api: JobsApi,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let registry = InMemoryStatusSink::new().with_max_jobs(1000).with_max_history(50);
        let api = JobsApi::builder(Arc::new(registry))
            .principals(ApiTokens::new(
                BearerTokens::parse_list("t").expect("token"),
                BearerTokens::none(),
            ))
            .body_limit(64 * 1024)
            .build();
        let fixture = Fixture { runtime, api };
        // One job that status and completion bodies can reach.
        let create = http::Request::post("/api/jobs")
            .header("authorization", "Bearer t")
            .body(Full::new(Bytes::from_static(br#"{"job_id":"fuzz"}"#)))
            .expect("request");
        let mut api = fixture.api.clone();
        let _ = fixture.runtime.block_on(api.call(create));
        fixture
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let query = String::from_utf8_lossy(rest).replace(['#', ' '], "");
    let (method, uri, body) = match selector % 6 {
        0 => ("POST", "/api/jobs".to_owned(), rest),
        1 => ("POST", "/api/jobs/fuzz/status".to_owned(), rest),
        2 => ("POST", "/api/jobs/fuzz/complete".to_owned(), rest),
        3 => ("POST", "/api/jobs/other/status".to_owned(), rest),
        4 => ("GET", format!("/api/jobs?{query}"), &[][..]),
        _ => ("GET", format!("/api/jobs/fuzz?{query}"), &[][..]),
    };
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", "Bearer t")
        .body(Full::new(Bytes::copy_from_slice(body)))
    else {
        return;
    };
    let mut api = fixture.api.clone();
    let (status, bytes) = fixture.runtime.block_on(async move {
        let response = api.call(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("full body").to_bytes();
        (status, bytes)
    });
    let parsed = match status {
        201 => serde_json::from_slice::<JobCreateResponse>(&bytes).is_ok(),
        200 if selector % 6 == 4 => serde_json::from_slice::<JobListResponse>(&bytes).is_ok(),
        200 => serde_json::from_slice::<JobView>(&bytes).is_ok(),
        400 | 404 | 413 => serde_json::from_slice::<ApiErrorBody>(&bytes).is_ok(),
        other => panic!("unexpected status {other}"),
    };
    assert!(parsed, "answer {status} does not read back: {bytes:?}");
});
