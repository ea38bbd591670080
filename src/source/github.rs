//! GitHub webhooks (`X-GitHub-Event`, `X-GitHub-Delivery`).

use std::fmt::Write as _;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use super::json::{
    ArrayLen, OptObj, OptScalar, from_body, header_str, lax_str, opt_obj, opt_str, req_str, req_u64,
};
use super::{ParseError, Parsed, Source};
use crate::event::{Event, Verified};
use crate::verify::Verification;

const EVENT_HEADER: HeaderName = HeaderName::from_static("x-github-event");
const DELIVERY_HEADER: HeaderName = HeaderName::from_static("x-github-delivery");

/// Parses GitHub webhook deliveries.
///
/// - Event name: `{X-GitHub-Event}.{action}` (`pull_request.opened`,
///   `issues.labeled`), or the bare header value when the payload has no
///   `action` (`push`, `ping`).
/// - Delivery id: the `X-GitHub-Delivery` header (stable across redeliveries).
/// - Title: `[PR] opened #2: Update the README…` for payloads with a
///   `pull_request`, `[Issue] labeled #1: …` for payloads with an `issue`
///   (`[Issue comment] created #1: …` when a `comment` comes with it),
///   `[Push] owner/repo refs/heads/main (3 commits)`, `[Ping] owner/repo: zen`,
///   otherwise `[GitHub] event.action owner/repo`.
/// - URL: the comment's, pull request's or issue's `html_url`, a push's
///   `compare` link, else the repository's `html_url`.
/// - Description: the comment's, pull request's or issue's body, or a push's
///   head commit message.
///
/// Only those fields are read: the rest of the body is skipped by the
/// parser and kept untouched as the event payload.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::source::{GithubSource, Parsed, Source};
/// use hookroom::verify::dangerous;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-github-event", "pull_request".parse().unwrap());
/// headers.insert("x-github-delivery", "72d3162e".parse().unwrap());
/// let body = Bytes::from_static(
///     br#"{"action":"opened","pull_request":{"number":42,"title":"Test PR","html_url":"https://github.com/o/r/pull/42"}}"#,
/// );
/// let Parsed::Event(event) = GithubSource::new()
///     .parse("github", &headers, body, dangerous::assume_verified(0))
///     .unwrap()
/// else {
///     panic!("not an event")
/// };
/// assert_eq!(event.name, "pull_request.opened");
/// assert_eq!(event.title, "[PR] opened #42: Test PR");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GithubSource {
    _private: (),
}

impl GithubSource {
    /// A GitHub parser.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    action: OptScalar<'a>,
    #[serde(borrow)]
    pull_request: OptObj<Numbered<'a>>,
    #[serde(borrow)]
    issue: OptObj<Numbered<'a>>,
    #[serde(borrow)]
    repository: OptObj<Repository<'a>>,
    // push
    #[serde(borrow, rename = "ref")]
    git_ref: OptScalar<'a>,
    #[serde(borrow)]
    compare: OptScalar<'a>,
    commits: Option<ArrayLen>,
    #[serde(borrow)]
    head_commit: OptObj<Commit<'a>>,
    // ping
    #[serde(borrow)]
    zen: OptScalar<'a>,
    // issue_comment, pull_request_review_comment, commit_comment, …
    #[serde(borrow)]
    comment: OptObj<GhComment<'a>>,
}

#[derive(Deserialize)]
struct GhComment<'a> {
    #[serde(borrow)]
    html_url: OptScalar<'a>,
    #[serde(borrow)]
    body: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Numbered<'a> {
    #[serde(borrow)]
    number: OptScalar<'a>,
    #[serde(borrow)]
    title: OptScalar<'a>,
    #[serde(borrow)]
    html_url: OptScalar<'a>,
    #[serde(borrow)]
    body: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Repository<'a> {
    #[serde(borrow)]
    full_name: OptScalar<'a>,
    #[serde(borrow)]
    html_url: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Commit<'a> {
    #[serde(borrow)]
    message: OptScalar<'a>,
}

impl Source for GithubSource {
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError> {
        let kind = header_str(headers, &EVENT_HEADER)
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::MissingHeader {
                header: "X-GitHub-Event",
            })?;
        let delivery_id = header_str(headers, &DELIVERY_HEADER)
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::MissingHeader {
                header: "X-GitHub-Delivery",
            })?;

        let b: Body<'_> = from_body(&body)?;
        let action = opt_str(&b.action, "/action")?;
        let name = match action {
            Some(action) => [kind, ".", action].concat(),
            None => kind.to_owned(),
        };
        let repo = opt_obj(&b.repository, "/repository")?;
        let repo_name = repo.and_then(|r| lax_str(&r.full_name)).unwrap_or("");
        let repo_url = repo.and_then(|r| lax_str(&r.html_url));
        let verb = action.unwrap_or(kind);

        let comment = opt_obj(&b.comment, "/comment")?;
        let (title, description, url) = if let Some(pr) = opt_obj(&b.pull_request, "/pull_request")?
        {
            numbered("PR", verb, pr, PR_PATHS, comment)?
        } else if let Some(issue) = opt_obj(&b.issue, "/issue")? {
            numbered("Issue", verb, issue, ISSUE_PATHS, comment)?
        } else if kind == "push" {
            let git_ref = req_str(&b.git_ref, "/ref")?;
            let n = b.commits.map_or(0, |c| c.0);
            let plural = if n == 1 { "" } else { "s" };
            let message = match opt_obj(&b.head_commit, "/head_commit")? {
                Some(c) => lax_str(&c.message).unwrap_or(""),
                None => "",
            };
            let repo_part = if repo_name.is_empty() {
                String::new()
            } else {
                format!("{repo_name} ")
            };
            (
                format!("[Push] {repo_part}{git_ref} ({n} commit{plural})"),
                message.to_owned(),
                lax_str(&b.compare).or(repo_url).map(str::to_owned),
            )
        } else if kind == "ping" {
            let zen = lax_str(&b.zen).unwrap_or("");
            (
                if repo_name.is_empty() {
                    format!("[Ping] {zen}")
                } else {
                    format!("[Ping] {repo_name}: {zen}")
                },
                String::new(),
                repo_url.map(str::to_owned),
            )
        } else {
            (
                format!("[GitHub] {name} {repo_name}").trim_end().to_owned(),
                String::new(),
                repo_url.map(str::to_owned),
            )
        };

        let event = Event {
            source: source.to_owned(),
            name,
            delivery_id: delivery_id.to_owned(),
            title,
            description,
            url,
            payload: body,
        };
        Ok(Parsed::Event(Verified::new(event, proof)))
    }
}

/// Where a pull request's number and title are, for error messages.
const PR_PATHS: (&str, &str) = ("/pull_request/number", "/pull_request/title");
/// Where an issue's number and title are, for error messages.
const ISSUE_PATHS: (&str, &str) = ("/issue/number", "/issue/title");

/// Title, description and URL of an event about a pull request or an issue;
/// for a comment on one, the comment's text and link.
fn numbered(
    label: &str,
    verb: &str,
    item: &Numbered<'_>,
    (number_path, title_path): (&str, &str),
    comment: Option<&GhComment<'_>>,
) -> Result<(String, String, Option<String>), ParseError> {
    let number = req_u64(&item.number, number_path)?;
    let title = req_str(&item.title, title_path)?;
    let (label_suffix, body, url) = match comment {
        Some(c) => (
            " comment",
            lax_str(&c.body),
            lax_str(&c.html_url).or(lax_str(&item.html_url)),
        ),
        None => ("", lax_str(&item.body), lax_str(&item.html_url)),
    };
    // Sized up front: `format!` would grow the string once or twice.
    let mut text =
        String::with_capacity(label.len() + label_suffix.len() + verb.len() + title.len() + 28);
    // Writing into a `String` cannot fail.
    let _ = write!(text, "[{label}{label_suffix}] {verb} #{number}: {title}");
    Ok((text, body.unwrap_or("").to_owned(), url.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(event: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(EVENT_HEADER, event.parse().unwrap());
        h.insert(DELIVERY_HEADER, "d-1".parse().unwrap());
        h
    }

    fn parse(event: &str, body: &'static str) -> Result<Event, ParseError> {
        match GithubSource::new().parse(
            "github",
            &headers(event),
            Bytes::from_static(body.as_bytes()),
            Verification::new(0),
        )? {
            Parsed::Event(e) => Ok(e.into_inner()),
            Parsed::Challenge(_) => panic!("github never answers a challenge"),
        }
    }

    #[test]
    fn opened_pull_request_gives_its_title() {
        let e = parse(
            "pull_request",
            r#"{"action":"opened","pull_request":{"number":42,"title":"Test PR"},"repository":{"full_name":"owner/repo"}}"#,
        )
        .unwrap();
        assert_eq!(e.name, "pull_request.opened");
        assert_eq!(e.title, "[PR] opened #42: Test PR");
        assert_eq!(e.url, None);
        assert_eq!(e.delivery_id, "d-1");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let e = parse(
            "issues",
            r#"{"action":"opened","issue":{"number":1,"title":"a \"quoted\" \u00e9"}}"#,
        )
        .unwrap();
        assert_eq!(e.title, "[Issue] opened #1: a \"quoted\" é");
    }

    #[test]
    fn mistyped_fields_name_their_path() {
        let cases = [
            (r#"{"action":1}"#, "/action"),
            (r#"{"action":"x","pull_request":[]}"#, "/pull_request"),
            (
                r#"{"action":"x","pull_request":{"number":"2","title":"t"}}"#,
                "/pull_request/number",
            ),
            (
                r#"{"action":"x","pull_request":{"number":-2,"title":"t"}}"#,
                "/pull_request/number",
            ),
            (r#"{"action":"x","issue":{"number":2}}"#, "/issue/title"),
            (r#"{"action":"x","repository":"r"}"#, "/repository"),
        ];
        for (body, path) in cases {
            assert_eq!(
                parse("pull_request", body),
                Err(ParseError::MissingField { field: path.into() }),
                "{body}"
            );
        }
        assert_eq!(
            parse("push", r#"{"commits":[]}"#),
            Err(ParseError::MissingField {
                field: "/ref".into()
            })
        );
    }

    #[test]
    fn comments_are_titled_and_linked_as_comments() {
        let e = parse(
            "issue_comment",
            r#"{"action":"created","issue":{"number":7,"title":"Bug","html_url":"https://x/i/7","body":"issue text"},"comment":{"html_url":"https://x/i/7#c1","body":"me too"}}"#,
        )
        .unwrap();
        assert_eq!(e.name, "issue_comment.created");
        assert_eq!(e.title, "[Issue comment] created #7: Bug");
        assert_eq!(e.url.as_deref(), Some("https://x/i/7#c1"));
        assert_eq!(e.description, "me too");
        assert_eq!(
            parse(
                "issue_comment",
                r#"{"action":"created","issue":{"number":7,"title":"B"},"comment":5}"#
            ),
            Err(ParseError::MissingField {
                field: "/comment".into()
            })
        );
    }

    #[test]
    fn unknown_events_get_a_generic_title() {
        let e = parse(
            "star",
            r#"{"action":"created","repository":{"full_name":"o/r","html_url":"https://github.com/o/r"}}"#,
        )
        .unwrap();
        assert_eq!(e.name, "star.created");
        assert_eq!(e.title, "[GitHub] star.created o/r");
        assert_eq!(e.url.as_deref(), Some("https://github.com/o/r"));
        assert_eq!(parse("meta", "{}").unwrap().title, "[GitHub] meta");
        // Organization hooks have no repository.
        assert_eq!(
            parse("ping", r#"{"zen":"Keep it simple."}"#).unwrap().title,
            "[Ping] Keep it simple."
        );
        assert_eq!(
            parse("push", r#"{"ref":"refs/heads/x","commits":[1,2]}"#)
                .unwrap()
                .title,
            "[Push] refs/heads/x (2 commits)"
        );
    }
}
