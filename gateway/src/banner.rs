//! The gateway's start-up banner and its test delivery.

use std::fmt::Write as _;
use std::net::SocketAddr;

use hookroom::service::BearerTokens;
use hookroom::verify;

use crate::conn::Limits;

/// The variable the gateway reads its admin tokens from.
pub(crate) const ADMIN_TOKEN_VAR: &str = "HOOKROOM_ADMIN_TOKEN";

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// The development secret standing in for an unset `var`.
pub(crate) fn dev_secret(var: &str) -> String {
    format!(
        "hookroom-dev-{}",
        var.to_ascii_lowercase().replace('_', "-")
    )
}

/// A `pull_request.opened` body small enough to paste.
const TEST_BODY: &str = r#"{"action":"opened","pull_request":{"number":42,"title":"Test PR","html_url":"https://github.com/octo-org/hello/pull/42"},"repository":{"full_name":"octo-org/hello","html_url":"https://github.com/octo-org/hello"}}"#;

/// A signed `curl` for a test GitHub delivery to `listen`.
pub(crate) fn test_curl(listen: SocketAddr, secret: &[u8]) -> String {
    let signature = verify::github::sign(secret, TEST_BODY.as_bytes());
    let delivery = uuid::Uuid::new_v4();
    format!(
        "curl -sS -X POST http://{listen}/webhook/github \\\n  \
         -H 'Content-Type: application/json' \\\n  \
         -H 'X-GitHub-Event: pull_request' \\\n  \
         -H 'X-GitHub-Delivery: {delivery}' \\\n  \
         -H 'X-Hub-Signature-256: {signature}' \\\n  \
         --data-binary '{TEST_BODY}'\n"
    )
}

/// What the banner may say about a test delivery.
pub(crate) enum TestCurl<'a> {
    /// No GitHub source.
    None,
    /// The development secret: printing a signature for it is harmless.
    Development(&'a [u8]),
    /// A real secret: say how to get a curl, never print a signature.
    Real,
}

impl<'a> TestCurl<'a> {
    /// What to offer for the GitHub secret `secret`, given the variables
    /// that stood in for development secrets.
    pub(crate) fn choose(secret: Option<&'a [u8]>, defaulted: &[String]) -> Self {
        match secret {
            None => Self::None,
            Some(secret)
                if defaulted
                    .iter()
                    .any(|var| dev_secret(var).as_bytes() == secret) =>
            {
                Self::Development(secret)
            }
            Some(_) => Self::Real,
        }
    }
}

/// The endpoints, the admin and connection settings, and what to do for a
/// test delivery.
pub(crate) fn banner(
    listen: SocketAddr,
    sources: &[String],
    test: TestCurl<'_>,
    admin: &BearerTokens,
    limits: &Limits,
) -> String {
    let mut out = String::new();
    outln!(out, "hookroom gateway listening on http://{listen}");
    for source in sources {
        outln!(out, "  POST http://{listen}/webhook/{source}");
    }
    outln!(
        out,
        "  GET  http://{listen}/health   (liveness; component detail with an admin token)"
    );
    outln!(
        out,
        "  GET  http://{listen}/operations?limit=20   (admin token)"
    );
    if admin.is_empty() {
        outln!(
            out,
            "  admin: {ADMIN_TOKEN_VAR} is not set: /operations and /health's detail are refused"
        );
    } else {
        outln!(
            out,
            "  admin: {} token(s) from {ADMIN_TOKEN_VAR}; send `Authorization: Bearer <token>`",
            admin.len()
        );
    }
    outln!(
        out,
        "  limits: header read {:?}, request {:?}, idle keep-alive {:?}, {} connections",
        limits.header_read_timeout,
        limits.request_timeout,
        limits.idle_timeout,
        limits.max_connections
    );
    match test {
        TestCurl::None => {}
        TestCurl::Development(secret) => {
            outln!(
                out,
                "\nA signed test delivery (development secret; paste it twice: the second answer is a duplicate):\n"
            );
            outln!(out, "{}", test_curl(listen, secret));
        }
        TestCurl::Real => outln!(
            out,
            "\nTo send a signed test delivery: `hookroom send --source github` \
             (signs with GITHUB_WEBHOOK_SECRET, a fresh delivery id each time), or run the same \
             command with --print-test-curl (it prints one and exits; keep it out of logs: it can \
             be replayed)."
        ),
    }
    out
}

/// `banner` with `line` added at the end of its endpoint list (before the
/// first blank line).
pub(crate) fn with_endpoint_line(banner: String, line: &str) -> String {
    match banner.find("\n\n") {
        Some(end) => {
            let (endpoints, rest) = banner.split_at(end + 1);
            format!("{endpoints}{line}\n{rest}")
        }
        None => format!("{banner}{line}\n"),
    }
}

#[cfg(test)]
mod tests {
    //! A signed test delivery is printed only for the development secret.
    //! GitHub's scheme has no timestamp and its delivery id is not signed,
    //! so a curl signed with a real secret in the logs could be replayed
    //! forever.

    use super::*;

    fn banner_for(secret: &[u8], defaulted: &[String], admin: &BearerTokens) -> String {
        let listen = SocketAddr::from(([127, 0, 0, 1], 8935));
        banner(
            listen,
            &["github".into()],
            TestCurl::choose(Some(secret), defaulted),
            admin,
            &Limits::default(),
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
}
