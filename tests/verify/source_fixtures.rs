//! Every source parser against the recorded provider payloads in
//! `tests/fixtures/payloads`, plus malformed variants of them.

use bytes::Bytes;
use hookroom::source::{
    GenericSource, GithubSource, HuggingFaceSource, JiraSource, ParseError, Parsed, SlackSource,
    Source,
};

use hookroom::{ErrorCode, Event};
use http::HeaderMap;
use sha2::Digest;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/payloads/");

fn body(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("{DIR}{name}")).unwrap())
}

fn headers(name: &str) -> HeaderMap {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).unwrap();
    let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    let mut h = HeaderMap::new();
    for (k, v) in map {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn form_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    h
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    h
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn event(source: &dyn Source, name: &str, h: &HeaderMap, b: &Bytes) -> Event {
    match source
        .parse(
            name,
            h,
            b.clone(),
            hookroom::verify::dangerous::assume_verified(1),
        )
        .unwrap()
    {
        Parsed::Event(e) => {
            assert_eq!(e.proof(), hookroom::verify::dangerous::assume_verified(1));
            let e = e.into_inner();
            assert_eq!(e.source, name);
            assert_eq!(&e.payload, b, "payload must be the raw body");
            e
        }
        Parsed::Challenge(c) => panic!("unexpected challenge {c}"),
    }
}

struct Expect<'a> {
    name: &'a str,
    delivery_id: &'a str,
    title: &'a str,
    url: Option<&'a str>,
}

fn check(e: &Event, x: Expect<'_>) {
    assert_eq!(e.name, x.name);
    assert_eq!(e.delivery_id, x.delivery_id);
    assert_eq!(e.title, x.title);
    assert_eq!(e.url.as_deref(), x.url);
}

#[test]
fn github_pull_request_opened() {
    let b = body("github/pull_request.opened.json");
    let e = event(
        &GithubSource::new(),
        "github",
        &headers("github/pull_request.opened.headers.json"),
        &b,
    );
    check(
        &e,
        Expect {
            name: "pull_request.opened",
            delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            title: "[PR] opened #2: Update the README with new information.",
            url: Some("https://github.com/Codertocat/Hello-World/pull/2"),
        },
    );
    assert_eq!(
        e.description,
        "This is a pretty simple change that we need to pull into master."
    );
}

#[test]
fn github_issues_labeled() {
    let b = body("github/issues.labeled.json");
    let e = event(
        &GithubSource::new(),
        "github",
        &headers("github/issues.labeled.headers.json"),
        &b,
    );
    check(
        &e,
        Expect {
            name: "issues.labeled",
            delivery_id: "a1b7c6e0-7722-11e9-8d5c-3ad7f0e1c2b4",
            title: "[Issue] labeled #1: Spelling error in the README file",
            url: Some("https://github.com/Codertocat/Hello-World/issues/1"),
        },
    );
}

#[test]
fn github_push() {
    let b = body("github/push.json");
    let e = event(
        &GithubSource::new(),
        "github",
        &headers("github/push.headers.json"),
        &b,
    );
    check(
        &e,
        Expect {
            name: "push",
            delivery_id: "3f2b9a40-7722-11e9-9a1e-d1c8a6b3f5e7",
            title: "[Push] Codertocat/Hello-World refs/heads/master (1 commit)",
            url: Some(
                "https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            ),
        },
    );
    assert_eq!(e.description, "Initial commit");
}

#[test]
fn github_ping() {
    let b = body("github/ping.json");
    let e = event(
        &GithubSource::new(),
        "github",
        &headers("github/ping.headers.json"),
        &b,
    );
    check(
        &e,
        Expect {
            name: "ping",
            delivery_id: "1c0d2e20-7722-11e9-8a3f-b2f4c1d9e806",
            title: "[Ping] Codertocat/Hello-World: Anything added dilutes everything else.",
            url: Some("https://github.com/Codertocat/Hello-World"),
        },
    );
}

#[test]
fn github_missing_headers_are_named() {
    let b = body("github/ping.json");
    let mut h = headers("github/ping.headers.json");
    h.remove("x-github-delivery");
    let err = GithubSource::new()
        .parse(
            "github",
            &h,
            b.clone(),
            hookroom::verify::dangerous::assume_verified(0),
        )
        .unwrap_err();
    assert_eq!(
        err,
        ParseError::MissingHeader {
            header: "X-GitHub-Delivery"
        }
    );
    h.remove("x-github-event");
    let err = GithubSource::new()
        .parse(
            "github",
            &h,
            b,
            hookroom::verify::dangerous::assume_verified(0),
        )
        .unwrap_err();
    assert_eq!(
        err,
        ParseError::MissingHeader {
            header: "X-GitHub-Event"
        }
    );
    assert_eq!(err.code(), "missing_event_header");
}

#[test]
fn slack_url_verification_is_a_challenge() {
    let parsed = SlackSource::new()
        .parse(
            "slack",
            &HeaderMap::new(),
            body("slack/url_verification.json"),
            hookroom::verify::dangerous::assume_verified(0),
        )
        .unwrap();
    assert_eq!(
        parsed,
        Parsed::Challenge("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into())
    );
}

#[test]
fn slack_app_mention() {
    let b = body("slack/event_callback.app_mention.json");
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    let e = event(&SlackSource::new(), "slack", &h, &b);
    check(
        &e,
        Expect {
            name: "app_mention",
            delivery_id: "Ev123ABC456",
            title: "[Slack] <@U0LAN0Z89> is it everything a river should be?",
            url: None,
        },
    );
    // A retry carries the same event_id, hence the same delivery id.
    h.insert("x-slack-retry-num", "1".parse().unwrap());
    assert_eq!(
        event(&SlackSource::new(), "slack", &h, &b).delivery_id,
        "Ev123ABC456"
    );
}

#[test]
fn slack_slash_command() {
    let b = body("slack/slash_command.form.txt");
    let e = event(&SlackSource::new(), "slack", &form_headers(), &b);
    check(
        &e,
        Expect {
            name: "slash_command.weather",
            delivery_id: "13345224609.738474920.8088930838d88f008e0",
            title: "[Slack] /weather 94070",
            url: None,
        },
    );
    assert_eq!(e.description, "94070");
}

#[test]
fn slack_block_actions() {
    let b = body("slack/interactivity.block_actions.form.txt");
    let e = event(&SlackSource::new(), "slack", &form_headers(), &b);
    check(
        &e,
        Expect {
            name: "block_actions",
            delivery_id: "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
            title: "[Slack] block_actions by jtorrance",
            url: None,
        },
    );
}

#[test]
fn jira_issue_created() {
    let b = body("jira/jira_issue_created.json");
    let e = event(
        &JiraSource::new(),
        "jira",
        &headers("jira/jira_issue_created.headers.json"),
        &b,
    );
    check(
        &e,
        Expect {
            name: "issue_created",
            delivery_id: "7c1e2a9d-5b43-4f0e-8a6d-2f9b1c3e4d57",
            title: "[JIRA] PROJ-42: Webhook receiver rejects large payloads",
            url: Some("https://your-domain.atlassian.net/browse/PROJ-42"),
        },
    );
    assert!(e.description.starts_with("Deliveries larger than 1 MB"));
    // Without the identifier header, the body hash stands in.
    let e = event(&JiraSource::new(), "jira", &HeaderMap::new(), &b);
    assert_eq!(e.delivery_id, sha256_hex(&b));
}

#[test]
fn huggingface_discussion_comment_create() {
    let b = body("huggingface/discussion.comment.create.json");
    let e = event(
        &HuggingFaceSource::new(),
        "huggingface",
        &HeaderMap::new(),
        &b,
    );
    check(
        &e,
        Expect {
            name: "discussion.comment.create",
            delivery_id: &sha256_hex(&b),
            title: "[HF] some-user/some-repo #3: Model card is missing the evaluation results",
            url: Some("https://huggingface.co/some-user/some-repo/discussions/3"),
        },
    );
    assert!(e.description.starts_with("@discussion-bot could you add"));
}

#[test]
fn generic_standard_webhooks() {
    let b = body("standard/user.created.json");
    let e = event(&GenericSource::new(), "standard", &HeaderMap::new(), &b);
    check(
        &e,
        Expect {
            name: "user.created",
            delivery_id: &sha256_hex(&b),
            title: "[Webhook] user.created",
            url: None,
        },
    );
    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W".parse().unwrap(),
    );
    let e = event(&GenericSource::new(), "standard", &h, &b);
    assert_eq!(e.delivery_id, "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W");
}

#[test]
fn generic_stripe() {
    let b = body("stripe/payment_intent.succeeded.json");
    let e = event(&GenericSource::new(), "stripe", &HeaderMap::new(), &b);
    check(
        &e,
        Expect {
            name: "payment_intent.succeeded",
            delivery_id: "evt_3MtweELkdIwHu7ix0Pq4zS8b",
            title: "[Webhook] payment_intent.succeeded",
            url: None,
        },
    );
}

/// All sources with the headers their fixture needs.
fn sources() -> Vec<(Box<dyn Source>, &'static str, HeaderMap)> {
    vec![
        (
            Box::new(GithubSource::new()),
            "github/pull_request.opened.json",
            headers("github/pull_request.opened.headers.json"),
        ),
        (
            Box::new(GithubSource::new()),
            "github/push.json",
            headers("github/push.headers.json"),
        ),
        (
            Box::new(SlackSource::new()),
            "slack/event_callback.app_mention.json",
            json_headers(),
        ),
        (
            Box::new(SlackSource::new()),
            "slack/interactivity.block_actions.form.txt",
            form_headers(),
        ),
        (
            Box::new(JiraSource::new()),
            "jira/jira_issue_created.json",
            HeaderMap::new(),
        ),
        (
            Box::new(HuggingFaceSource::new()),
            "huggingface/discussion.comment.create.json",
            HeaderMap::new(),
        ),
        (
            Box::new(GenericSource::new()),
            "stripe/payment_intent.succeeded.json",
            HeaderMap::new(),
        ),
    ]
}

#[test]
fn every_truncation_of_every_fixture_is_an_error_not_a_panic() {
    for (source, file, h) in sources() {
        let b = body(file);
        let mut errors = 0;
        for cut in 0..b.len() {
            match source.parse(
                "s",
                &h,
                b.slice(..cut),
                hookroom::verify::dangerous::assume_verified(0),
            ) {
                Err(e) => {
                    errors += 1;
                    assert!(!e.to_string().is_empty());
                }
                // A form body stays valid when cut between fields, a JSON
                // body when only its trailing newline is cut.
                Ok(_) => assert!(
                    file.ends_with(".txt") || b[cut..].iter().all(u8::is_ascii_whitespace),
                    "{file} cut at {cut} parsed"
                ),
            }
        }
        assert!(errors > b.len() / 2, "{file}: only {errors} errors");
    }
}

#[test]
fn wrongly_typed_top_level_bodies_are_invalid_bodies() {
    for (source, file, h) in sources() {
        if file.ends_with(".txt") {
            continue;
        }
        // The generic source takes any JSON document, not only objects.
        let invalid: &[&str] = if file.starts_with("stripe") {
            &["{\"a\":1}}", "", "nul"]
        } else {
            &["[]", "\"text\"", "42", "null", "{\"a\":1}}", ""]
        };
        for &b in invalid {
            let err = source
                .parse(
                    "s",
                    &h,
                    Bytes::from_static(b.as_bytes()),
                    hookroom::verify::dangerous::assume_verified(0),
                )
                .unwrap_err();
            assert_eq!(err.code(), "invalid_body", "{file}: {b}");
        }
    }
}

#[test]
fn errors_never_echo_body_text() {
    let secretish = Bytes::from_static(b"{\"action\": sk_live_SECRET}");
    let mut h = headers("github/ping.headers.json");
    h.insert("x-github-event", "issues".parse().unwrap());
    let err = GithubSource::new()
        .parse(
            "github",
            &h,
            secretish,
            hookroom::verify::dangerous::assume_verified(0),
        )
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRET"));
}

/// Found by fuzzing: serde_json skips strings without checking their UTF-8,
/// so a body with an invalid byte in an unread field used to parse, and the
/// stored payload was then not valid JSON for later readers.
#[test]
fn invalid_utf8_in_an_unread_field_is_an_invalid_body() {
    for (source, file, h) in sources() {
        if file.ends_with(".txt") {
            continue;
        }
        let mut b = body(file).to_vec();
        // Corrupt the last string value's first character.
        let at = b.iter().rposition(|&c| c == b'"').unwrap();
        let start = b[..at].iter().rposition(|&c| c == b'"').unwrap() + 1;
        b[start] = 0xfb;
        let err = source
            .parse(
                "s",
                &h,
                Bytes::from(b),
                hookroom::verify::dangerous::assume_verified(0),
            )
            .unwrap_err();
        assert_eq!(err.code(), "invalid_body", "{file}");
        assert!(err.to_string().contains("UTF-8"), "{file}: {err}");
    }
}
