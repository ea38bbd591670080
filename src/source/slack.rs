//! Slack: the Events API (JSON), slash commands and interactivity (form-encoded).

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;

use super::json::{
    OptObj, OptScalar, body_sha256_hex, from_body, header_str, lax_str, opt_obj, opt_str, req_obj,
    req_str, truncate_chars,
};
use super::{ParseError, Parsed, Source};
use crate::event::{Event, Verified};
use crate::verify::Verification;

/// Characters of message text kept in a Slack event's title.
const TITLE_CHARS: usize = 50;

/// Parses Slack deliveries of all three kinds Slack posts to an app.
///
/// | body | event name | delivery id | title |
/// | --- | --- | --- | --- |
/// | JSON `url_verification` | — ([`Parsed::Challenge`] with `challenge`) | — | — |
/// | JSON `event_callback` | the inner `event.type` (`app_mention`) | `event_id` | `[Slack] ` + the first 50 characters of `event.text` (or the type) |
/// | JSON, other `type` (`app_rate_limited`) | that `type` | `event_id`, else the body's SHA-256 | `[Slack] type` |
/// | form, `command` field (slash command) | `slash_command.` + the command without its `/` (`slash_command.weather`) | `trigger_id` | `[Slack] /weather 94070` |
/// | form, `payload` field (interactivity) | the payload's `type` (`block_actions`, `view_submission`) | `trigger_id`, else the body's SHA-256 | `[Slack] block_actions by user` |
///
/// Slash command names are prefixed so that a route can match all of them
/// with `slash_command.*` without also matching Events API names.
///
/// A body is form-encoded when its `Content-Type` says
/// `application/x-www-form-urlencoded`, or, without a `Content-Type`, when it
/// does not start with `{`.
///
/// Slack retries carry the same `event_id` (and a `X-Slack-Retry-Num`
/// header), so a retry maps to the same delivery id and is stored once.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::source::{Parsed, Source, SlackSource};
/// use hookroom::verify::dangerous;
///
/// let body = Bytes::from_static(br#"{"type":"url_verification","challenge":"abc"}"#);
/// let parsed = SlackSource::new()
///     .parse("slack", &http::HeaderMap::new(), body, dangerous::assume_verified(0))
///     .unwrap();
/// assert_eq!(parsed, Parsed::Challenge("abc".into()));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SlackSource {
    _private: (),
}

impl SlackSource {
    /// A Slack parser.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, rename = "type")]
    kind: OptScalar<'a>,
    #[serde(borrow)]
    challenge: OptScalar<'a>,
    #[serde(borrow)]
    event_id: OptScalar<'a>,
    #[serde(borrow)]
    event: OptObj<Inner<'a>>,
}

#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, rename = "type")]
    kind: OptScalar<'a>,
    #[serde(borrow)]
    text: OptScalar<'a>,
}

#[derive(Deserialize)]
struct Interaction<'a> {
    #[serde(borrow, rename = "type")]
    kind: OptScalar<'a>,
    #[serde(borrow)]
    trigger_id: OptScalar<'a>,
    #[serde(borrow)]
    user: OptObj<User<'a>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    name: OptScalar<'a>,
    #[serde(borrow)]
    username: OptScalar<'a>,
    #[serde(borrow)]
    id: OptScalar<'a>,
}

struct Parts {
    name: String,
    delivery_id: String,
    title: String,
    description: String,
}

impl Source for SlackSource {
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError> {
        let parts = if is_form(headers, &body) {
            parse_form(&body)?
        } else {
            match parse_json(&body)? {
                Ok(parts) => parts,
                Err(challenge) => return Ok(Parsed::Challenge(challenge)),
            }
        };
        let event = Event {
            source: source.to_owned(),
            name: parts.name,
            delivery_id: parts.delivery_id,
            title: parts.title,
            description: parts.description,
            url: None,
            payload: body,
        };
        Ok(Parsed::Event(Verified::new(event, proof)))
    }
}

fn is_form(headers: &HeaderMap, body: &[u8]) -> bool {
    const FORM: &str = "application/x-www-form-urlencoded";
    match header_str(headers, &http::header::CONTENT_TYPE) {
        Some(ct) => ct
            .trim_start()
            .get(..FORM.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(FORM)),
        None => body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{'),
    }
}

/// `Ok(Err(challenge))` for a `url_verification` handshake.
fn parse_json(body: &[u8]) -> Result<Result<Parts, String>, ParseError> {
    let env: Envelope<'_> = from_body(body)?;
    let kind = req_name(&env.kind, "/type")?;
    match kind {
        "url_verification" => {
            let challenge = req_str(&env.challenge, "/challenge")?;
            Ok(Err(challenge.to_owned()))
        }
        "event_callback" => {
            let inner = req_obj(&env.event, "/event")?;
            let name = req_name(&inner.kind, "/event/type")?;
            let delivery_id = req_name(&env.event_id, "/event_id")?;
            let text = opt_str(&inner.text, "/event/text")?.unwrap_or("");
            let shown = if text.is_empty() {
                name
            } else {
                truncate_chars(text, TITLE_CHARS)
            };
            Ok(Ok(Parts {
                name: name.to_owned(),
                delivery_id: delivery_id.to_owned(),
                title: format!("[Slack] {shown}"),
                description: text.to_owned(),
            }))
        }
        other => {
            let delivery_id = match opt_str(&env.event_id, "/event_id")? {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => body_sha256_hex(body),
            };
            Ok(Ok(Parts {
                name: other.to_owned(),
                delivery_id,
                title: format!("[Slack] {other}"),
                description: String::new(),
            }))
        }
    }
}

/// The non-empty string at `path`: an event's name and delivery id must say
/// something, or every nameless delivery would be a duplicate of the first.
fn req_name<'t>(v: &'t OptScalar<'_>, path: &str) -> Result<&'t str, ParseError> {
    match req_str(v, path)? {
        "" => Err(ParseError::MissingField {
            field: path.to_owned(),
        }),
        name => Ok(name),
    }
}

fn parse_form(body: &[u8]) -> Result<Parts, ParseError> {
    let mut command: Option<Cow<'_, str>> = None;
    let mut text: Option<Cow<'_, str>> = None;
    let mut trigger_id: Option<Cow<'_, str>> = None;
    let mut payload: Option<Cow<'_, str>> = None;
    for (key, value) in form_urlencoded::parse(body) {
        let slot = match &*key {
            "command" => &mut command,
            "text" => &mut text,
            "trigger_id" => &mut trigger_id,
            "payload" => &mut payload,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    if let Some(payload) = payload {
        return parse_interaction(payload.as_bytes(), body);
    }
    let command = command
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ParseError::MissingField {
            field: "command".to_owned(),
        })?;
    let trigger_id =
        trigger_id
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ParseError::MissingField {
                field: "trigger_id".to_owned(),
            })?;
    let text = text.unwrap_or_default();
    let shown = truncate_chars(&text, TITLE_CHARS);
    let title = if shown.is_empty() {
        format!("[Slack] {command}")
    } else {
        format!("[Slack] {command} {shown}")
    };
    Ok(Parts {
        name: format!(
            "slash_command.{}",
            command.strip_prefix('/').unwrap_or(&command)
        ),
        delivery_id: trigger_id.into_owned(),
        title,
        description: text.into_owned(),
    })
}

fn parse_interaction(payload: &[u8], body: &[u8]) -> Result<Parts, ParseError> {
    let i: Interaction<'_> = from_body(payload).map_err(|e| match e {
        ParseError::InvalidBody { reason } => ParseError::InvalidBody {
            reason: format!("`payload` field: {reason}"),
        },
        other => other,
    })?;
    let kind = req_name(&i.kind, "payload/type")?;
    let delivery_id = match opt_str(&i.trigger_id, "payload/trigger_id")? {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => body_sha256_hex(body),
    };
    let who = match opt_obj(&i.user, "payload/user")? {
        Some(u) => lax_str(&u.name)
            .or_else(|| lax_str(&u.username))
            .or_else(|| lax_str(&u.id)),
        None => None,
    };
    let title = match who {
        Some(who) => format!("[Slack] {kind} by {who}"),
        None => format!("[Slack] {kind}"),
    };
    Ok(Parts {
        name: kind.to_owned(),
        delivery_id,
        title,
        description: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ct: Option<&str>, body: &'static str) -> Result<Parsed, ParseError> {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert("content-type", ct.parse().unwrap());
        }
        SlackSource::new().parse(
            "slack",
            &h,
            Bytes::from_static(body.as_bytes()),
            Verification::new(0),
        )
    }

    fn event(p: Result<Parsed, ParseError>) -> Event {
        match p.unwrap() {
            Parsed::Event(e) => e.into_inner(),
            Parsed::Challenge(c) => panic!("unexpected challenge {c}"),
        }
    }

    #[test]
    fn long_multibyte_text_is_cut_on_a_char_boundary() {
        let body = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","text":"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééé"}}"#;
        let e = event(parse(None, body));
        assert_eq!(e.title.chars().count(), "[Slack] ".len() + 50);
        assert_eq!(e.name, "message");
    }

    #[test]
    fn content_type_is_matched_case_insensitively() {
        let e = event(parse(
            Some("Application/X-WWW-Form-URLEncoded; charset=utf-8"),
            "command=%2Fa&trigger_id=t",
        ));
        assert_eq!(e.name, "slash_command.a");
        assert!(matches!(
            parse(Some("application/json"), "command=%2Fa&trigger_id=t"),
            Err(ParseError::InvalidBody { .. })
        ));
    }

    #[test]
    fn form_is_detected_without_content_type() {
        let e = event(parse(None, "command=%2Fdeploy&trigger_id=t1"));
        assert_eq!(e.name, "slash_command.deploy");
        assert_eq!(e.title, "[Slack] /deploy");
    }

    #[test]
    fn empty_names_and_ids_are_missing_fields() {
        for (body, field) in [
            (r#"{"token":"t","type":""}"#, "/type"),
            (
                r#"{"type":"event_callback","event_id":"E1","event":{"type":""}}"#,
                "/event/type",
            ),
            (
                r#"{"type":"event_callback","event_id":"","event":{"type":"x"}}"#,
                "/event_id",
            ),
            ("payload=%7B%22type%22%3A%22%22%7D", "payload/type"),
        ] {
            assert_eq!(
                parse(None, body),
                Err(ParseError::MissingField {
                    field: field.into()
                }),
                "{body}"
            );
        }
        // Outside `event_callback` an empty event id falls back to the
        // body's hash, like an absent one.
        let e = event(parse(None, r#"{"type":"app_rate_limited","event_id":""}"#));
        assert_eq!(e.delivery_id.len(), 64);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(
            parse(None, r#"{"type":"event_callback","event":{"type":"x"}}"#),
            Err(ParseError::MissingField {
                field: "/event_id".into()
            })
        );
        assert_eq!(
            parse(None, r#"{"type":"url_verification"}"#),
            Err(ParseError::MissingField {
                field: "/challenge".into()
            })
        );
        assert_eq!(
            parse(
                None,
                r#"{"type":"event_callback","event_id":"E","event":"x"}"#
            ),
            Err(ParseError::MissingField {
                field: "/event".into()
            })
        );
        assert_eq!(
            parse(
                Some("application/x-www-form-urlencoded"),
                "text=hi&trigger_id=t"
            ),
            Err(ParseError::MissingField {
                field: "command".into()
            })
        );
        assert!(matches!(
            parse(Some("application/x-www-form-urlencoded"), "payload=%7Bnope"),
            Err(ParseError::InvalidBody { .. })
        ));
        assert_eq!(
            parse(Some("application/x-www-form-urlencoded"), "payload=%7B%7D"),
            Err(ParseError::MissingField {
                field: "payload/type".into()
            })
        );
        assert!(matches!(
            parse(Some("application/json"), "not json"),
            Err(ParseError::InvalidBody { .. })
        ));
    }

    #[test]
    fn other_envelope_types_fall_back_to_a_body_hash() {
        let e = event(parse(
            None,
            r#"{"type":"app_rate_limited","minute_rate_limited":1}"#,
        ));
        assert_eq!(e.name, "app_rate_limited");
        assert_eq!(e.delivery_id.len(), 64);
    }
}
