//! Jira (Cloud and Data Center) webhooks.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use super::json::{
    OptObj, OptScalar, body_sha256_hex, from_body, header_str, lax_str, opt_obj, req_obj, req_str,
};
use super::{ParseError, Parsed, Source};
use crate::event::{Event, Verified};
use crate::verify::Verification;

const DELIVERY_HEADER: HeaderName = HeaderName::from_static("x-atlassian-webhook-identifier");

/// Parses Jira webhook deliveries.
///
/// - Event name: `webhookEvent` without its `jira:` prefix
///   (`jira:issue_created` → `issue_created`; `comment_created` stays).
/// - Delivery id: the `X-Atlassian-Webhook-Identifier` header, which Jira
///   Cloud keeps across retries; without it (older servers), the hex SHA-256
///   of the body, so a byte-identical retry is still a duplicate.
/// - Title: `[JIRA] KEY: summary` when the payload has an issue, else
///   `[JIRA] event`.
/// - URL: the issue's browse page, `{site}/browse/{KEY}`, derived from the
///   issue's REST `self` link.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::source::{JiraSource, Parsed, Source};
/// use hookroom::verify::dangerous;
///
/// let body = Bytes::from_static(br#"{"webhookEvent":"jira:issue_created","issue":{"key":"P-1","self":"https://x.atlassian.net/rest/api/2/issue/1","fields":{"summary":"Fix it"}}}"#);
/// let Parsed::Event(e) = JiraSource::new()
///     .parse("jira", &http::HeaderMap::new(), body, dangerous::assume_verified(0))
///     .unwrap()
/// else {
///     panic!()
/// };
/// assert_eq!((e.name.as_str(), e.title.as_str()), ("issue_created", "[JIRA] P-1: Fix it"));
/// assert_eq!(e.url.as_deref(), Some("https://x.atlassian.net/browse/P-1"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JiraSource {
    _private: (),
}

impl JiraSource {
    /// A Jira parser.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, rename = "webhookEvent")]
    webhook_event: OptScalar<'a>,
    #[serde(borrow)]
    issue: OptObj<Issue<'a>>,
}

#[derive(Deserialize)]
struct Issue<'a> {
    #[serde(borrow)]
    key: OptScalar<'a>,
    #[serde(borrow, rename = "self")]
    self_link: OptScalar<'a>,
    #[serde(borrow)]
    fields: OptObj<Fields<'a>>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    summary: OptScalar<'a>,
    /// A string in REST v2 payloads; an Atlassian Document Format object in
    /// some v3 ones, which is not rendered.
    #[serde(borrow)]
    description: OptScalar<'a>,
}

impl Source for JiraSource {
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError> {
        let b: Body<'_> = from_body(&body)?;
        let raw = req_str(&b.webhook_event, "/webhookEvent")?;
        let name = raw.strip_prefix("jira:").unwrap_or(raw);
        if name.is_empty() {
            return Err(ParseError::MissingField {
                field: "/webhookEvent".to_owned(),
            });
        }
        let delivery_id = match header_str(headers, &DELIVERY_HEADER).filter(|v| !v.is_empty()) {
            Some(id) => id.to_owned(),
            None => body_sha256_hex(&body),
        };
        let (title, description, url) = match opt_obj(&b.issue, "/issue")? {
            Some(issue) => {
                let key = req_str(&issue.key, "/issue/key")?;
                let fields = req_obj(&issue.fields, "/issue/fields")?;
                let summary = req_str(&fields.summary, "/issue/fields/summary")?;
                let url = lax_str(&issue.self_link).and_then(|s| browse_url(s, key));
                (
                    format!("[JIRA] {key}: {summary}"),
                    lax_str(&fields.description).unwrap_or("").to_owned(),
                    url,
                )
            }
            None => (format!("[JIRA] {name}"), String::new(), None),
        };
        let event = Event {
            source: source.to_owned(),
            name: name.to_owned(),
            delivery_id,
            title,
            description,
            url,
            payload: body,
        };
        Ok(Parsed::Event(Verified::new(event, proof)))
    }
}

/// `https://site/rest/api/2/issue/10042` + `KEY` → `https://site/browse/KEY`
/// (keeps a Data Center context path such as `/jira`).
fn browse_url(self_link: &str, key: &str) -> Option<String> {
    let (site, _) = self_link.split_once("/rest/api/")?;
    if !(site.starts_with("https://") || site.starts_with("http://")) {
        return None;
    }
    Some(format!("{site}/browse/{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &'static str) -> Result<Event, ParseError> {
        match JiraSource::new().parse(
            "jira",
            &HeaderMap::new(),
            Bytes::from_static(body.as_bytes()),
            Verification::new(0),
        )? {
            Parsed::Event(e) => Ok(e.into_inner()),
            Parsed::Challenge(_) => panic!("jira never answers a challenge"),
        }
    }

    #[test]
    fn browse_url_keeps_context_path_and_rejects_odd_links() {
        assert_eq!(
            browse_url("https://h/jira/rest/api/2/issue/1", "K-1").as_deref(),
            Some("https://h/jira/browse/K-1")
        );
        assert_eq!(browse_url("javascript:x/rest/api/2", "K"), None);
        assert_eq!(browse_url("https://h/issue/1", "K"), None);
    }

    #[test]
    fn events_without_an_issue_and_a_hash_delivery_id() {
        let e = parse(r#"{"webhookEvent":"sprint_started"}"#).unwrap();
        assert_eq!(e.name, "sprint_started");
        assert_eq!(e.title, "[JIRA] sprint_started");
        assert_eq!(
            e.delivery_id,
            body_sha256_hex(br#"{"webhookEvent":"sprint_started"}"#)
        );
    }

    #[test]
    fn malformed_inputs_name_the_field() {
        for (body, field) in [
            ("{}", "/webhookEvent"),
            (r#"{"webhookEvent":"jira:"}"#, "/webhookEvent"),
            (
                r#"{"webhookEvent":"x","issue":{"key":"K"}}"#,
                "/issue/fields",
            ),
            (
                r#"{"webhookEvent":"x","issue":{"key":"K","fields":{"summary":7}}}"#,
                "/issue/fields/summary",
            ),
            (
                r#"{"webhookEvent":"x","issue":{"fields":{}}}"#,
                "/issue/key",
            ),
        ] {
            assert_eq!(
                parse(body),
                Err(ParseError::MissingField {
                    field: field.into()
                }),
                "{body}"
            );
        }
    }
}
