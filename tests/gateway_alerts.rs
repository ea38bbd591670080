//! The gateway example's `--alert-url` / `--alert-secret-env` wiring
//! (`examples/support/observability.rs`): the signed alert webhook is added
//! only with a URL and its secret, and a missing piece is a startup error.

#[path = "../examples/support/observability.rs"]
#[allow(dead_code)]
mod observability;

use observability::{ALERT_SECRET_VAR, AlertArgs, alert_webhook};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[test]
fn the_alert_webhook_needs_a_url_and_its_secret() {
    let none = alert_webhook(&AlertArgs::default(), |_| None).expect("no flags");
    assert!(none.is_none());

    let url = AlertArgs {
        url: Some("https://ops.example.com/alerts".into()),
        secret_env: None,
    };
    let missing = alert_webhook(&url, |_| None).expect_err("no secret");
    assert!(missing.contains(ALERT_SECRET_VAR), "{missing}");
    let read = alert_webhook(&url, |var| {
        (var == ALERT_SECRET_VAR).then(|| SECRET.to_owned())
    });
    assert!(read.expect("secret set").is_some());

    let named = AlertArgs {
        url: Some("https://ops.example.com/alerts".into()),
        secret_env: Some("OPS_ALERT_SECRET".into()),
    };
    let read = alert_webhook(&named, |var| {
        (var == "OPS_ALERT_SECRET").then(|| SECRET.to_owned())
    });
    assert!(read.expect("named variable").is_some());
    let bad = alert_webhook(&named, |_| Some("not a secret!".into())).expect_err("bad secret");
    assert!(
        !bad.contains("not a secret"),
        "the secret is never echoed: {bad}"
    );

    let orphan = AlertArgs {
        url: None,
        secret_env: Some("OPS_ALERT_SECRET".into()),
    };
    assert!(alert_webhook(&orphan, |_| None).is_err());
}
