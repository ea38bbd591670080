//! Parsing and routing cost per request for a GitHub `pull_request.opened`
//! delivery: the typed, borrowed [`GithubSource`] against a full
//! `serde_json::Value` parse, and [`RuleRouter::route`] with and without a
//! payload filter.
//!
//! `cargo bench --bench ingest_parse -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookroom::route::{FieldFilter, Router, RoutesConfig, RuleRouter};
use hookroom::source::{GithubSource, Parsed, Source};

use hookroom::{Event, Verified};
use http::HeaderMap;

/// The fixture's pull request, compacted and trimmed to about 1 KiB.
const PR_1K: &str = r#"{"action":"opened","number":2,"pull_request":{"url":"https://api.github.com/repos/Codertocat/Hello-World/pulls/2","id":279147437,"node_id":"MDExOlB1bGxSZXF1ZXN0Mjc5MTQ3NDM3","html_url":"https://github.com/Codertocat/Hello-World/pull/2","number":2,"state":"open","locked":false,"title":"Update the README with new information.","body":"This is a pretty simple change that we need to pull into master.","created_at":"2019-05-15T15:20:33Z","updated_at":"2019-05-15T15:20:33Z","draft":false,"merged":false,"commits":1,"additions":1,"deletions":1,"changed_files":1,"user":{"login":"Codertocat","id":21031067,"type":"User"},"head":{"ref":"changes","sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821"},"base":{"ref":"master","sha":"f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},"labels":[{"id":1362934389,"name":"bug","color":"d73a4a"}]},"repository":{"id":186853002,"name":"Hello-World","full_name":"Codertocat/Hello-World","private":false,"html_url":"https://github.com/Codertocat/Hello-World","default_branch":"master"},"sender":{"login":"Codertocat","id":21031067,"type":"User"}}"#;

fn fixture(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/payloads/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(path).expect("fixture"))
}

fn headers(event: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-github-event", event.parse().expect("header"));
    h.insert(
        "x-github-delivery",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958"
            .parse()
            .expect("header"),
    );
    h
}

fn parse(source: &GithubSource, h: &HeaderMap, body: &Bytes) -> Verified<Event> {
    match source.parse(
        "github",
        h,
        body.clone(),
        hookroom::verify::dangerous::assume_verified(0),
    ) {
        Ok(Parsed::Event(e)) => e,
        other => panic!("unexpected {other:?}"),
    }
}

fn bench_parse(c: &mut Criterion) {
    let source = GithubSource::new();
    let h = headers("pull_request");
    let bodies = [
        ("1k", Bytes::from_static(PR_1K.as_bytes())),
        ("fixture_5.9k", fixture("pull_request.opened.json")),
    ];
    let mut g = c.benchmark_group("parse_pull_request_opened");
    for (label, body) in &bodies {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("github_source/{label}"), |b| {
            b.iter(|| {
                source.parse(
                    "github",
                    black_box(&h),
                    black_box(body.clone()),
                    hookroom::verify::dangerous::assume_verified(0),
                )
            })
        });
        g.bench_function(format!("serde_json_value/{label}"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)))
        });
    }
    g.finish();
}

fn bench_route(c: &mut Criterion) {
    let config = RoutesConfig::from_path(format!(
        "{}/gateway/routes.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("routes.json");
    let router = RuleRouter::from_config(&config).expect("router");
    let source = GithubSource::new();
    let pr = parse(
        &source,
        &headers("pull_request"),
        &Bytes::from_static(PR_1K.as_bytes()),
    );
    let labeled = parse(&source, &headers("issues"), &fixture("issues.labeled.json"));
    let mut g = c.benchmark_group("route");
    g.bench_function("rule_router/pull_request.opened_no_filter", |b| {
        b.iter(|| router.route(black_box(&pr)))
    });
    g.bench_function("rule_router/issues.labeled_filter_4.8k", |b| {
        b.iter(|| router.route(black_box(&labeled)))
    });
    g.finish();

    let filter = FieldFilter::new("label", &serde_json::json!("AI-WIP")).expect("filter");
    let body = fixture("issues.labeled.json");
    let mut g = c.benchmark_group("filter_label_issues.labeled_4.8k");
    g.bench_function("streaming_matches_json", |b| {
        b.iter(|| filter.matches_json(black_box(&body)))
    });
    g.bench_function("value_parse_then_matches", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde_json::Value>(black_box(&body))
                .is_ok_and(|v| filter.matches(&v))
        })
    });
    g.finish();

    c.bench_function("parse_and_route/pull_request.opened_1k", |b| {
        let h = headers("pull_request");
        let body = Bytes::from_static(PR_1K.as_bytes());
        b.iter(|| router.route(&parse(&source, black_box(&h), black_box(&body))))
    });
}

criterion_group!(benches, bench_parse, bench_route);
criterion_main!(benches);
