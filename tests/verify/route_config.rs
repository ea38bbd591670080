//! The routes file: the shipped example, the documented shapes, every error,
//! routing of every payload fixture, and run-time changes under load.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use hookroom::route::{
    ConfigWarning, GlobError, RouteDecision, RouteError, RouteSpec, Router, RoutesConfig,
    RoutesConfigError, RuleRouter, SecretSource,
};
use hookroom::source::{GithubSource, HuggingFaceSource, JiraSource, Parsed, SlackSource, Source};
use hookroom::verify::ConfigError;
use hookroom::{ErrorCode, Event, Verified};
use http::HeaderMap;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example() -> RoutesConfig {
    RoutesConfig::from_path(format!("{ROOT}/gateway/routes.json")).unwrap()
}

fn env(name: &str) -> Option<String> {
    name.ends_with("_SECRET")
        .then(|| format!("value-of-{name}"))
}

#[test]
fn shipped_example_parses_and_resolves() {
    let c = example();
    assert_eq!(c.routes.len(), 5);
    assert_eq!(c.default_room.as_deref(), Some("general"));
    // The shipped file sets nothing that is silently ignored.
    assert_eq!(c.log_retention_days, None);
    assert!(c.warnings().is_empty());
    let vars: Vec<_> = c
        .secrets
        .iter()
        .map(|(k, v)| match v.as_slice() {
            [SecretSource::Env(var)] => (k.as_str(), var.as_str()),
            other => panic!("{k}: {other:?}"),
        })
        .collect();
    assert_eq!(
        vars,
        [
            ("github", "GITHUB_WEBHOOK_SECRET"),
            ("huggingface", "HF_WEBHOOK_SECRET"),
            ("jira", "JIRA_WEBHOOK_SECRET"),
            ("slack", "SLACK_SIGNING_SECRET"),
        ]
    );
    let resolved = c.resolve_secrets_with(&env).unwrap();
    assert_eq!(
        resolved["slack"][0].expose(),
        b"value-of-SLACK_SIGNING_SECRET"
    );
    assert!(!format!("{resolved:?}").contains("value-of"));

    let err = c
        .resolve_secrets_with(&|n| (n != "JIRA_WEBHOOK_SECRET").then(|| "x".into()))
        .unwrap_err();
    assert_eq!(err.code(), "env_var_missing");
    assert!(
        matches!(err.secret_error(), Some(ConfigError::EnvVarMissing { name }) if name == "JIRA_WEBHOOK_SECRET")
    );
    assert_eq!(
        err.to_string(),
        "secret of source `jira`: environment variable `JIRA_WEBHOOK_SECRET` is not set"
    );
}

#[test]
fn documented_shapes_parse() {
    // Rules and a default room.
    let a = RoutesConfig::from_json(
        r#"{
  "routes": [
    {"source": "github", "event": "pull_request.opened", "target_room": "pr-review", "priority": 2},
    {"source": "github", "event": "issues.labeled", "filter": { "label": "AI-WIP" }, "target_room": "auto-code", "priority": 1},
    {"source": "slack", "event": "app_mention", "target_room": "slack-support", "priority": 3},
    {"source": "jira", "event": "issue_created", "target_room": "jira-work", "priority": 3}
  ],
  "default_room": "general"
}"#,
    )
    .unwrap();
    assert_eq!(a.routes.len(), 4);
    assert!(a.secrets.is_empty());
    // Secrets as variable references, and a retention setting.
    let b = RoutesConfig::from_json(
        r#"{
  "routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review", "priority": 2}],
  "secrets": {"github": "${GITHUB_WEBHOOK_SECRET}", "slack": "${SLACK_SIGNING_SECRET}", "jira": "${JIRA_WEBHOOK_SECRET}"},
  "default_room": "general",
  "log_retention_days": 7
}"#,
    )
    .unwrap();
    assert_eq!(b.secrets.len(), 3);
}

/// `log_retention_days` is applied (the stores' `purge_finished`, run by
/// `hookroom::retention`; see tests/stores/retention.rs), so it does not warn.
#[test]
fn retention_setting_is_read_and_does_not_warn() {
    let with = RoutesConfig::from_json(r#"{"log_retention_days": 30}"#).unwrap();
    assert_eq!(with.log_retention_days, Some(30));
    assert_eq!(with.warnings(), Vec::<ConfigWarning>::new());
    let without = RoutesConfig::from_json(r#"{"routes": []}"#).unwrap();
    assert_eq!(without.log_retention_days, None);
    assert!(without.warnings().is_empty());
}

#[test]
fn rotation_lists_files_and_defaults() {
    let c = RoutesConfig::from_json(
        r#"{"routes": [{"source": "x", "event": "*", "target_room": "r"}],
            "secrets": {"a": ["${NEW}", "${OLD}"], "b": {"file": "${DIR}/b.key"}, "c": [{"file": "/k"}, "lit"]}}"#,
    )
    .unwrap();
    assert_eq!(c.routes[0].priority, hookroom::route::DEFAULT_PRIORITY);
    assert_eq!(c.routes[0].ttl_seconds, None);
    assert!(
        matches!(c.secrets["a"].as_slice(), [SecretSource::Env(n), SecretSource::Env(o)] if n == "NEW" && o == "OLD")
    );
    assert!(
        matches!(c.secrets["b"].as_slice(), [SecretSource::File(p)] if p.as_path() == std::path::Path::new("${DIR}/b.key"))
    );
    assert!(matches!(
        c.secrets["c"].as_slice(),
        [SecretSource::File(_), SecretSource::Literal(_)]
    ));
    assert_eq!(c.default_room, None);
    let json = c.to_json().to_string();
    assert!(json.contains("${NEW}") && !json.contains("lit\""), "{json}");
}

fn config_err(text: &str) -> RoutesConfigError {
    RoutesConfig::from_json(text).unwrap_err()
}

#[test]
fn config_errors_are_specific() {
    let e = config_err("{\n  \"routes\": [\n    {\"source\": \"github\",}\n  ]\n}");
    assert!(
        matches!(
            e,
            RoutesConfigError::Json {
                line: 3,
                column: 25,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), "config_invalid_json");

    let e = config_err(r#"{"routes": [{"source": "a", "event": "b", "taget_room": "r"}]}"#);
    assert_eq!(e.code(), "config_invalid_shape");
    assert!(e.to_string().contains("unknown field `taget_room`"), "{e}");

    let e = config_err(r#"{"rooutes": []}"#);
    assert!(e.to_string().contains("rooutes"), "{e}");

    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "b", "target_room": "r"}, {"source": "a", "event": "b"}]}"#,
    );
    assert_eq!(
        e,
        RoutesConfigError::Route {
            index: 1,
            error: RouteError::MissingTargetRoom
        }
    );
    assert_eq!(e.to_string(), "route 1: missing `target_room`");
    assert_eq!(e.code(), "route_missing_target_room");

    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "pull_request.[a-z]", "target_room": "r"}]}"#,
    );
    assert!(matches!(
        e,
        RoutesConfigError::Route {
            index: 0,
            error: RouteError::InvalidGlob {
                field: "event",
                reason: GlobError::UnsupportedSyntax,
                ..
            }
        }
    ));

    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "b", "target_room": "r", "filter": {"a..b": 1}}]}"#,
    );
    assert_eq!(e.code(), "route_invalid_filter");
    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "b", "target_room": "r", "filter": {"a": null}}]}"#,
    );
    assert_eq!(e.code(), "route_invalid_filter");
    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "b", "target_room": "r", "priority": -1}]}"#,
    );
    assert_eq!(e.code(), "config_invalid_shape");
    let e = config_err(
        r#"{"routes": [{"source": "a", "event": "b", "target_room": "r", "ttl_seconds": 0}]}"#,
    );
    assert_eq!(e.code(), "route_zero_ttl");
    assert_eq!(
        config_err(r#"{"default_room": ""}"#).code(),
        "config_empty_default_room"
    );
}

#[test]
fn secret_errors_never_quote_the_value() {
    for text in [
        r#"{"secrets": {"github": 8675309}}"#,
        r#"{"secrets": {"github": [8675309]}}"#,
        r#"{"secrets": {"github": {"file": 8675309}}}"#,
        r#"{"secrets": {"github": {"path8675309": "x"}}}"#,
    ] {
        let e = config_err(text);
        assert_eq!(e.code(), "config_invalid_shape", "{text}");
        assert!(!format!("{e} {e:?}").contains("8675309"), "{e}");
    }
    let e = config_err(r#"{"secrets": {"github": "pre-${GITHUB_SECRET}"}}"#);
    assert_eq!(
        e,
        RoutesConfigError::SecretReference {
            source: "github".into()
        }
    );
    assert!(!e.to_string().contains("pre-"));
    assert_eq!(
        config_err(r#"{"secrets": {"github": []}}"#).code(),
        "no_secrets"
    );
}

#[test]
fn every_config_error_has_a_distinct_code_and_message() {
    let errors = [
        RoutesConfigError::FileUnreadable {
            path: "/x".into(),
            kind: std::io::ErrorKind::NotFound,
        },
        config_err("{"),
        config_err(r#"{"x": 1}"#),
        RoutesConfigError::Route {
            index: 0,
            error: RouteError::ZeroTtl,
        },
        RoutesConfigError::EmptyDefaultRoom,
        RoutesConfigError::SecretReference { source: "s".into() },
        RoutesConfigError::SourceSecret {
            source: "s".into(),
            error: ConfigError::EnvVarMissing { name: "V".into() },
        },
        RoutesConfigError::SourceSecret {
            source: "s".into(),
            error: ConfigError::EmptySecret { origin: "V".into() },
        },
        RoutesConfigError::NoSecrets { source: "s".into() },
    ];
    let codes: BTreeSet<_> = errors.iter().map(ErrorCode::code).collect();
    assert_eq!(codes.len(), errors.len());
    for e in &errors {
        assert!(!e.to_string().is_empty());
        assert!(!format!("{e:?}").is_empty());
    }
    assert_eq!(
        RoutesConfig::from_path("/nonexistent/routes.json")
            .unwrap_err()
            .code(),
        "file_unreadable"
    );
}

// ---- routing the payload fixtures through the shipped example ----

fn fixture(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("{ROOT}/tests/fixtures/payloads/{name}")).unwrap())
}

fn fixture_headers(name: &str) -> HeaderMap {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&fixture(name)).unwrap();
    map.into_iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            )
        })
        .collect()
}

fn parsed(source: &dyn Source, name: &str, h: &HeaderMap, body: Bytes) -> Verified<Event> {
    match source
        .parse(
            name,
            h,
            body,
            hookroom::verify::dangerous::assume_verified(0),
        )
        .unwrap()
    {
        Parsed::Event(e) => e,
        Parsed::Challenge(_) => panic!("challenge"),
    }
}

fn decision(router: &RuleRouter, e: &Verified<Event>) -> (String, u32) {
    match router.route(e) {
        RouteDecision::Deliver(r) => (r.room.to_string(), r.priority),
        RouteDecision::Ignore { reason } => panic!("ignored: {reason}"),
    }
}

#[test]
fn fixtures_route_to_the_shipped_rooms() {
    let router = RuleRouter::from_config(&example()).unwrap();
    let gh = GithubSource::new();
    let gh_event = |name: &str| {
        parsed(
            &gh,
            "github",
            &fixture_headers(&format!("github/{name}.headers.json")),
            fixture(&format!("github/{name}.json")),
        )
    };
    assert_eq!(
        decision(&router, &gh_event("pull_request.opened")),
        ("pr-review".into(), 2)
    );
    assert_eq!(
        decision(&router, &gh_event("issues.labeled")),
        ("auto-code".into(), 1)
    );
    assert_eq!(decision(&router, &gh_event("push")).0, "general");
    assert_eq!(decision(&router, &gh_event("ping")).0, "general");

    // The same labeled event with another label falls through to the default.
    let relabeled = String::from_utf8(fixture("github/issues.labeled.json").to_vec())
        .unwrap()
        .replace("\"name\": \"AI-WIP\"", "\"name\": \"docs\"");
    let e = parsed(
        &gh,
        "github",
        &fixture_headers("github/issues.labeled.headers.json"),
        Bytes::from(relabeled),
    );
    assert_eq!(decision(&router, &e).0, "general");

    let slack = SlackSource::new();
    let e = parsed(
        &slack,
        "slack",
        &HeaderMap::new(),
        fixture("slack/event_callback.app_mention.json"),
    );
    assert_eq!(decision(&router, &e), ("slack-support".into(), 3));
    let mut form = HeaderMap::new();
    form.insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let e = parsed(
        &slack,
        "slack",
        &form,
        fixture("slack/slash_command.form.txt"),
    );
    assert_eq!(decision(&router, &e).0, "general");

    let e = parsed(
        &JiraSource::new(),
        "jira",
        &fixture_headers("jira/jira_issue_created.headers.json"),
        fixture("jira/jira_issue_created.json"),
    );
    assert_eq!(decision(&router, &e), ("jira-work".into(), 3));

    let e = parsed(
        &HuggingFaceSource::new(),
        "huggingface",
        &HeaderMap::new(),
        fixture("huggingface/discussion.comment.create.json"),
    );
    assert_eq!(decision(&router, &e), ("hf-tagging".into(), 2));

    // A source name with no route and no default room is ignored.
    router.set_default_room(None);
    match router.route(&gh_event("push")) {
        RouteDecision::Ignore { reason } => assert!(reason.contains("push")),
        RouteDecision::Deliver(r) => panic!("delivered to {}", r.room),
    }
}

#[test]
fn routes_change_while_other_threads_route() {
    let router = Arc::new(
        RuleRouter::new(
            vec![RouteSpec::new("github", "*", "stable").with_priority(5)],
            None,
        )
        .unwrap(),
    );
    let event = Verified::new(
        Event {
            source: "github".into(),
            name: "push".into(),
            delivery_id: "d".into(),
            title: String::new(),
            description: String::new(),
            url: None,
            payload: Bytes::from_static(b"{}"),
        },
        hookroom::verify::dangerous::assume_verified(0),
    );
    std::thread::scope(|s| {
        for _ in 0..2 {
            let router = router.clone();
            let event = event.clone();
            s.spawn(move || {
                for _ in 0..20_000 {
                    match router.route(&event) {
                        RouteDecision::Deliver(r) => {
                            assert!(r.room.as_ref() == "stable" || r.room.starts_with("w"));
                        }
                        RouteDecision::Ignore { reason } => panic!("{reason}"),
                    }
                }
            });
        }
        for w in 0..2 {
            let router = router.clone();
            s.spawn(move || {
                for i in 0..200 {
                    let id = router
                        .add(RouteSpec::new("github", "push", format!("w{w}-{i}")).with_priority(9))
                        .unwrap();
                    if i % 2 == 0 {
                        assert!(router.remove(id));
                    }
                }
            });
        }
    });
    // Concurrent adds are never lost: 2 writers × 100 kept routes + the original.
    assert_eq!(router.routes().len(), 201);
    assert_eq!(
        router.routes().first().map(|r| r.spec.target_room.as_str()),
        Some("stable")
    );
}
