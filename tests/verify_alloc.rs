//! GitHub, Jira, Slack, Standard Webhooks (`v1`), Stripe and generic HMAC
//! verification allocate nothing on the heap per call.
//!
//! This binary holds a single test so the counting global allocator sees only
//! the calls under test (no other test threads allocate meanwhile).

use std::alloc::System;

use hookroom::verify::{
    GithubVerifier, HmacVerifier, JiraVerifier, Secrets, SlackVerifier, StandardWebhooksVerifier,
    StripeVerifier, Verifier, VerifyError, github, jira, slack, standard_webhooks, stripe,
};
use http::HeaderMap;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

#[test]
fn hmac_verifiers_do_not_allocate_per_call() {
    let body = vec![b'x'; 16 * 1024];
    let ts = now();
    let secret = b"0123456789abcdef0123456789abcdef";

    // Everything is built before counting; the system clock is the default.
    let mut cases: Vec<(&str, Box<dyn Verifier>, HeaderMap)> = Vec::new();
    let mut h = HeaderMap::new();
    h.insert(
        "X-Hub-Signature-256",
        github::sign(secret, &body).parse().unwrap(),
    );
    let rotated = Secrets::from(hookroom::verify::Secret::new("old").unwrap())
        .with(hookroom::verify::Secret::new(&secret[..]).unwrap());
    cases.push((
        "github (second key)",
        Box::new(GithubVerifier::new(rotated)),
        h.clone(),
    ));
    cases.push((
        "github",
        Box::new(GithubVerifier::new(
            hookroom::verify::Secrets::try_from(&secret[..]).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert(
        "X-Hub-Signature",
        jira::sign(secret, &body).parse().unwrap(),
    );
    cases.push((
        "jira",
        Box::new(JiraVerifier::new(
            hookroom::verify::Secrets::try_from(&secret[..]).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert("X-Slack-Request-Timestamp", ts.to_string().parse().unwrap());
    h.insert(
        "X-Slack-Signature",
        slack::sign(secret, ts, &body).parse().unwrap(),
    );
    cases.push((
        "slack",
        Box::new(SlackVerifier::new(
            hookroom::verify::Secrets::try_from(&secret[..]).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W".parse().unwrap(),
    );
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    let signature = standard_webhooks::sign(secret, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, &body);
    let list = format!("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {signature}");
    h.insert("webhook-signature", list.parse().unwrap());
    cases.push((
        "standard webhooks",
        Box::new(StandardWebhooksVerifier::from_raw_keys(
            hookroom::verify::Secrets::try_from(&secret[..]).unwrap(),
        )),
        h,
    ));

    let mut h = HeaderMap::new();
    let header = stripe::sign(secret, ts, &body);
    h.insert(
        "Stripe-Signature",
        format!("{header},v0=abc").parse().unwrap(),
    );
    cases.push((
        "stripe",
        Box::new(StripeVerifier::new(
            hookroom::verify::Secrets::try_from(&secret[..]).unwrap(),
        )),
        h,
    ));

    let generic = HmacVerifier::builder("X-Signature")
        .prefix("sha256=")
        .timestamp_header("X-Timestamp")
        .signed_content("{timestamp}.{header:X-Id}.{body}")
        .build(hookroom::verify::Secrets::try_from(&secret[..]).unwrap())
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert("X-Timestamp", ts.to_string().parse().unwrap());
    h.insert("X-Id", "7".parse().unwrap());
    h.insert(
        "X-Signature",
        generic.sign(secret, &h, &body).unwrap().parse().unwrap(),
    );
    cases.push(("generic hmac", Box::new(generic), h));

    for (name, verifier, headers) in &cases {
        // Warm up anything lazily initialised (CPU feature detection).
        assert!(verifier.verify(headers, &body).is_ok(), "{name}");

        let region = Region::new(GLOBAL);
        let mut accepted = 0;
        for _ in 0..100 {
            accepted += usize::from(verifier.verify(headers, &body).is_ok());
            // Rejections must not allocate either.
            let rejected = verifier.verify(headers, &body[1..]);
            assert!(matches!(rejected, Err(VerifyError::SignatureMismatch)));
        }
        let stats = region.change();
        assert_eq!(accepted, 100, "{name}");
        assert_eq!(
            (
                stats.allocations,
                stats.reallocations,
                stats.bytes_allocated
            ),
            (0, 0, 0),
            "{name} allocated"
        );
    }

    // Control: the counter does see an allocation made in a region.
    let region = Region::new(GLOBAL);
    let boxed = std::hint::black_box(Box::new(0u64));
    assert_eq!(region.change().allocations, 1);
    drop(boxed);
}
