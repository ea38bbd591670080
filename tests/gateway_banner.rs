//! The example gateway's banner (`examples/support/banner.rs`): a signed
//! test delivery is printed only for the development secret. GitHub's
//! scheme has no timestamp and its delivery id is not signed, so a curl
//! signed with a real secret in the logs could be replayed forever.

use std::net::SocketAddr;

use hookroom::service::BearerTokens;

#[path = "../examples/support/banner.rs"]
#[allow(dead_code)]
mod banner;
#[path = "../examples/support/serve.rs"]
#[allow(dead_code)]
mod serve;

use banner::{TestCurl, dev_secret};

fn banner_for(secret: &[u8], defaulted: &[String], admin: &BearerTokens) -> String {
    let listen = SocketAddr::from(([127, 0, 0, 1], 8935));
    banner::banner(
        listen,
        &["github".into()],
        TestCurl::choose(Some(secret), defaulted),
        admin,
        &serve::Limits::default(),
    )
}

#[test]
fn a_real_secret_is_never_used_to_sign_the_banner_curl() {
    // A real secret, even in development mode with other variables
    // defaulted.
    let defaulted = vec!["SLACK_SIGNING_SECRET".to_owned()];
    let text = banner_for(b"the-real-github-secret", &defaulted, &BearerTokens::none());
    assert!(!text.contains("X-Hub-Signature-256"), "{text}");
    assert!(!text.contains("sha256="), "{text}");
    assert!(text.contains("--print-test-curl"), "{text}");
}

#[test]
fn the_development_secret_gets_a_signed_curl() {
    let var = "GITHUB_WEBHOOK_SECRET".to_owned();
    let secret = dev_secret(&var);
    let text = banner_for(secret.as_bytes(), &[var], &BearerTokens::none());
    assert!(text.contains("X-Hub-Signature-256: sha256="), "{text}");
}

#[test]
fn the_banner_says_whether_admin_answers_are_enabled() {
    let off = banner_for(b"real", &[], &BearerTokens::none());
    assert!(off.contains("HOOKROOM_ADMIN_TOKEN is not set"), "{off}");
    let on = banner_for(b"real", &[], &BearerTokens::parse_list("t1,t2").unwrap());
    assert!(on.contains("2 token(s)"), "{on}");
    assert!(!on.contains("t1"), "{on}");
    for default in ["10s", "30s", "60s", "10000 connections"] {
        assert!(off.contains(default), "{off}");
    }
}
