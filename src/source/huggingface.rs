//! Hugging Face Hub webhooks.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use super::json::{
    OptObj, OptScalar, Scalar, body_sha256_hex, from_body, header_str, lax_str, opt_obj, req_obj,
    req_str,
};
use super::{ParseError, Parsed, Source};
use crate::event::{Event, Verified};
use crate::verify::Verification;

/// Parses Hugging Face Hub webhook deliveries (payload version 3).
///
/// - Event name: `{event.scope}.{event.action}`, e.g.
///   `discussion.comment.create`, `repo.content.update`.
/// - Delivery id: the value of a configured header
///   ([`with_delivery_header`](Self::with_delivery_header)) when present;
///   otherwise the hex SHA-256 of the raw body. The Hub documents no delivery
///   id header, and a retried delivery carries the same body, so the hash
///   still makes retries duplicates.
/// - Title: `[HF] {repo.name} #{discussion.num}: {discussion.title}` for
///   discussion events, else `[HF] {scope}.{action} {repo.name}`.
/// - Description: the comment's `content` when there is one.
/// - URL: `discussion.url.web`, else `repo.url.web`.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::source::{HuggingFaceSource, Parsed, Source};
/// use hookroom::verify::dangerous;
///
/// let body = Bytes::from_static(br#"{"event":{"scope":"discussion.comment","action":"create"},"repo":{"name":"u/m"},"discussion":{"num":3,"title":"Missing tags"}}"#);
/// let Parsed::Event(e) = HuggingFaceSource::new()
///     .parse("huggingface", &http::HeaderMap::new(), body, dangerous::assume_verified(0))
///     .unwrap()
/// else {
///     panic!()
/// };
/// assert_eq!(e.name, "discussion.comment.create");
/// assert_eq!(e.title, "[HF] u/m #3: Missing tags");
/// assert_eq!(e.delivery_id.len(), 64);
/// ```
#[derive(Debug, Clone, Default)]
pub struct HuggingFaceSource {
    delivery_header: Option<HeaderName>,
}

impl HuggingFaceSource {
    /// A Hugging Face parser that uses the body hash as the delivery id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the delivery id from `header` when a request has it (for
    /// example one added by a relay in front of the gateway).
    pub fn with_delivery_header(mut self, header: HeaderName) -> Self {
        self.delivery_header = Some(header);
        self
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    event: OptObj<EventField<'a>>,
    #[serde(borrow)]
    repo: OptObj<Repo<'a>>,
    #[serde(borrow)]
    discussion: OptObj<Discussion<'a>>,
    #[serde(borrow)]
    comment: OptObj<Comment<'a>>,
}

#[derive(Deserialize)]
struct EventField<'a> {
    #[serde(borrow)]
    scope: OptScalar<'a>,
    #[serde(borrow)]
    action: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    name: OptScalar<'a>,
    #[serde(borrow)]
    url: OptObj<Urls<'a>>,
}

#[derive(Deserialize)]
struct Discussion<'a> {
    #[serde(borrow)]
    title: OptScalar<'a>,
    #[serde(borrow)]
    num: OptScalar<'a>,
    #[serde(borrow)]
    url: OptObj<Urls<'a>>,
}

#[derive(Deserialize)]
struct Comment<'a> {
    #[serde(borrow)]
    content: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Urls<'a> {
    #[serde(borrow)]
    web: OptScalar<'a>,
}

fn web_url<'t>(urls: &'t OptObj<Urls<'_>>, path: &str) -> Result<Option<&'t str>, ParseError> {
    Ok(opt_obj(urls, path)?.and_then(|u| lax_str(&u.web)))
}

impl Source for HuggingFaceSource {
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError> {
        let b: Body<'_> = from_body(&body)?;
        let ev = req_obj(&b.event, "/event")?;
        let scope = req_str(&ev.scope, "/event/scope")?;
        let action = req_str(&ev.action, "/event/action")?;
        let name = format!("{scope}.{action}");

        let repo = opt_obj(&b.repo, "/repo")?;
        let repo_name = repo.and_then(|r| lax_str(&r.name)).unwrap_or("");
        let repo_url = match repo {
            Some(r) => web_url(&r.url, "/repo/url")?,
            None => None,
        };

        let (title, url) = match opt_obj(&b.discussion, "/discussion")? {
            Some(d) => {
                let title = req_str(&d.title, "/discussion/title")?;
                let num = match &d.num {
                    Some(Scalar::U64(n)) => format!(" #{n}"),
                    _ => String::new(),
                };
                let prefix = if repo_name.is_empty() {
                    String::new()
                } else {
                    format!(" {repo_name}")
                };
                let url = web_url(&d.url, "/discussion/url")?.or(repo_url);
                (format!("[HF]{prefix}{num}: {title}"), url)
            }
            None => (
                format!("[HF] {name} {repo_name}").trim_end().to_owned(),
                repo_url,
            ),
        };
        let description = match opt_obj(&b.comment, "/comment")? {
            Some(c) => lax_str(&c.content).unwrap_or(""),
            None => "",
        };

        let header_id = self
            .delivery_header
            .as_ref()
            .and_then(|h| header_str(headers, h))
            .filter(|v| !v.is_empty());
        let delivery_id = match header_id {
            Some(id) => id.to_owned(),
            None => body_sha256_hex(&body),
        };

        let event = Event {
            source: source.to_owned(),
            name,
            delivery_id,
            title,
            description: description.to_owned(),
            url: url.map(str::to_owned),
            payload: body,
        };
        Ok(Parsed::Event(Verified::new(event, proof)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        src: &HuggingFaceSource,
        h: &HeaderMap,
        body: &'static str,
    ) -> Result<Event, ParseError> {
        match src.parse(
            "hf",
            h,
            Bytes::from_static(body.as_bytes()),
            Verification::new(0),
        )? {
            Parsed::Event(e) => Ok(e.into_inner()),
            Parsed::Challenge(_) => panic!("no challenge"),
        }
    }

    #[test]
    fn configured_delivery_header_wins_over_the_hash() {
        let src =
            HuggingFaceSource::new().with_delivery_header(HeaderName::from_static("x-request-id"));
        let body = r#"{"event":{"scope":"repo","action":"update"},"repo":{"name":"u/m","url":{"web":"https://huggingface.co/u/m"}}}"#;
        let e = parse(&src, &HeaderMap::new(), body).unwrap();
        assert_eq!(e.delivery_id, body_sha256_hex(body.as_bytes()));
        assert_eq!(e.title, "[HF] repo.update u/m");
        assert_eq!(e.url.as_deref(), Some("https://huggingface.co/u/m"));
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "req-9".parse().unwrap());
        assert_eq!(parse(&src, &h, body).unwrap().delivery_id, "req-9");
    }

    #[test]
    fn malformed_inputs_name_the_field() {
        let src = HuggingFaceSource::new();
        for (body, field) in [
            ("{}", "/event"),
            (r#"{"event":[]}"#, "/event"),
            (r#"{"event":{"scope":"x"}}"#, "/event/action"),
            (r#"{"event":{"scope":1,"action":"a"}}"#, "/event/scope"),
            (
                r#"{"event":{"scope":"s","action":"a"},"discussion":{"num":1}}"#,
                "/discussion/title",
            ),
            (
                r#"{"event":{"scope":"s","action":"a"},"repo":{"url":"u"}}"#,
                "/repo/url",
            ),
        ] {
            assert_eq!(
                parse(&src, &HeaderMap::new(), body),
                Err(ParseError::MissingField {
                    field: field.into()
                }),
                "{body}"
            );
        }
    }
}
