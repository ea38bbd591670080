//! Signature verification per scheme against two baselines in the same group:
//! `ring`'s bare HMAC-SHA256 over the body (key prepared once) and a bare
//! `sha2::Sha256` digest (the hardware floor).
//!
//! `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookroom::clock::ManualClock;
use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
use hookroom::verify::{
    BearerVerifier, GithubVerifier, HmacVerifier, HuggingFaceVerifier, JiraVerifier, Secret,
    SlackVerifier, StandardWebhooksVerifier, StripeVerifier, Verifier, bearer, github, huggingface,
    jira, slack, standard_webhooks, stripe,
};
use http::HeaderMap;
use sha2::Digest;

const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (1024 * 1024, "1MiB"),
];
const SECRET: &[u8] = b"whsec_bench_0123456789abcdef0123";
const NOW: i64 = 1_700_000_000;

fn cases(body: &[u8]) -> Vec<(&'static str, Box<dyn Verifier>, HeaderMap)> {
    let clock = ManualClock::at_unix(NOW);
    let mut out: Vec<(&'static str, Box<dyn Verifier>, HeaderMap)> = Vec::new();

    let mut h = HeaderMap::new();
    h.insert(
        "X-Hub-Signature-256",
        github::sign(SECRET, body).parse().unwrap(),
    );
    out.push((
        "github",
        Box::new(GithubVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert("X-Hub-Signature", jira::sign(SECRET, body).parse().unwrap());
    out.push((
        "jira",
        Box::new(JiraVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert(
        "X-Slack-Request-Timestamp",
        NOW.to_string().parse().unwrap(),
    );
    h.insert(
        "X-Slack-Signature",
        slack::sign(SECRET, NOW, body).parse().unwrap(),
    );
    out.push((
        "slack",
        Box::new(
            SlackVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .with_clock(clock.clone()),
        ),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".parse().unwrap(),
    );
    h.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
    let sig = standard_webhooks::sign(SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NOW, body);
    h.insert("webhook-signature", sig.parse().unwrap());
    let verifier = StandardWebhooksVerifier::from_raw_keys(
        hookroom::verify::Secrets::try_from(SECRET).unwrap(),
    )
    .with_clock(clock.clone());
    out.push(("standard_webhooks", Box::new(verifier), h.clone()));

    let key = V1aSigningKey::from_seed([7; 32]);
    let mut h1a = h;
    let sig = key.sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NOW, body);
    h1a.insert("webhook-signature", sig.parse().unwrap());
    let verifier = StandardWebhooksAsymmetricVerifier::new([key.public_key_whpk()])
        .unwrap()
        .with_clock(clock.clone());
    out.push(("standard_webhooks_v1a", Box::new(verifier), h1a));

    let mut h = HeaderMap::new();
    h.insert(
        "Stripe-Signature",
        stripe::sign(SECRET, NOW, body).parse().unwrap(),
    );
    out.push((
        "stripe",
        Box::new(
            StripeVerifier::new(hookroom::verify::Secrets::try_from(SECRET).unwrap())
                .with_clock(clock.clone()),
        ),
        h,
    ));

    let generic = HmacVerifier::builder("X-Signature")
        .prefix("sha256=")
        .timestamp_header("X-Timestamp")
        .signed_content("{timestamp}.{body}")
        .clock(clock)
        .build(hookroom::verify::Secrets::try_from(SECRET).unwrap())
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert("X-Timestamp", NOW.to_string().parse().unwrap());
    h.insert(
        "X-Signature",
        generic.sign(SECRET, &h, body).unwrap().parse().unwrap(),
    );
    out.push(("hmac_generic", Box::new(generic), h));

    let token = Secret::new(SECRET).unwrap();
    let mut h = HeaderMap::new();
    h.insert("X-Webhook-Secret", huggingface::sign(&token).unwrap());
    out.push((
        "huggingface",
        Box::new(HuggingFaceVerifier::new(token.clone())),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, bearer::sign(&token).unwrap());
    out.push(("bearer", Box::new(BearerVerifier::new(token)), h));

    out
}

fn verify(c: &mut Criterion) {
    // sha2 0.10 picks its SHA-NI backend at run time (cpufeatures) on exactly
    // this condition; without it every number below is ~5x slower.
    #[cfg(target_arch = "x86_64")]
    eprintln!(
        "SHA-NI (cpuid `sha`) detected: {}",
        std::is_x86_feature_detected!("sha")
    );
    for (size, label) in SIZES {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut group = c.benchmark_group(format!("verify/{label}"));
        group.throughput(Throughput::Bytes(size as u64));

        let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        group.bench_function("baseline_ring_hmac", |b| {
            b.iter(|| ring::hmac::sign(&ring_key, black_box(&body)))
        });
        group.bench_function("baseline_sha2_digest", |b| {
            b.iter(|| sha2::Sha256::digest(black_box(&body)))
        });
        for (name, verifier, headers) in cases(&body) {
            assert!(verifier.verify(&headers, &body).is_ok(), "{name}");
            group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
                b.iter(|| verifier.verify(black_box(&headers), black_box(body)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
