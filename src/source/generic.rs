//! Any JSON sender: event name, delivery id, title and URL taken from
//! configurable headers or JSON pointers.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};

use super::json::{
    PointerToken, Scalar, body_sha256_hex, header_str, invalid_json, parse_pointer, seek, utf8,
};
use super::{ParseError, Parsed, Source};
use crate::error_code::ErrorCode;
use crate::event::{Event, Verified};
use crate::verify::Verification;

/// Where to read one value of a generic delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// A request header (its value as text).
    Header(HeaderName),
    /// A JSON pointer (RFC 6901) into the body, e.g. `/data/id`. Strings are
    /// taken as they are; numbers and booleans as their JSON text.
    Pointer(JsonPointer),
}

impl Locator {
    /// A header locator.
    pub fn header(name: HeaderName) -> Self {
        Self::Header(name)
    }

    /// A JSON pointer locator.
    ///
    /// # Errors
    /// [`InvalidPointer`] when `pointer` is neither empty nor starts with `/`.
    pub fn pointer(pointer: &str) -> Result<Self, InvalidPointer> {
        JsonPointer::new(pointer).map(Self::Pointer)
    }
}

/// A parsed RFC 6901 JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: Box<str>,
    tokens: Box<[PointerToken]>,
}

impl JsonPointer {
    /// Parses `pointer` (`""` is the whole document, `/a/b~1c` is key `b/c`
    /// of object `a`).
    ///
    /// # Errors
    /// [`InvalidPointer`] when `pointer` is neither empty nor starts with `/`.
    pub fn new(pointer: &str) -> Result<Self, InvalidPointer> {
        let tokens = parse_pointer(pointer).ok_or(InvalidPointer)?;
        Ok(Self {
            text: pointer.into(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A JSON pointer that is neither empty nor starts with `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPointer;

impl ErrorCode for InvalidPointer {
    fn code(&self) -> &'static str {
        "invalid_json_pointer"
    }
}

impl std::fmt::Display for InvalidPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON pointer must be empty or start with `/`")
    }
}

impl std::error::Error for InvalidPointer {}

/// Parses deliveries from any sender that posts JSON.
///
/// Each value is looked up in a list of [`Locator`]s, first hit wins:
///
/// | value | default locators | when none hits |
/// | --- | --- | --- |
/// | event name | `/type` (Standard Webhooks, Stripe), `/event` | the fallback name (`webhook`), or an error when the fallback is removed |
/// | delivery id | header `webhook-id` (Standard Webhooks), `/id` (Stripe) | hex SHA-256 of the body |
/// | title | none | `[Webhook] {event}` |
/// | URL | none | no URL |
///
/// Each JSON pointer is one streaming pass over the body that skips
/// everything off its path; nothing is collected into a tree. The body must
/// be valid JSON even when every value comes from a header.
///
/// # Example
/// ```
/// use bytes::Bytes;
/// use hookroom::source::{GenericSource, Locator, Parsed, Source};
/// use hookroom::verify::dangerous;
///
/// let source = GenericSource::new()
///     .event_from(vec![Locator::pointer("/kind").unwrap()])
///     .title_from(Locator::pointer("/subject").unwrap());
/// let body = Bytes::from_static(br#"{"kind":"build.failed","id":17,"subject":"main is red"}"#);
/// let Parsed::Event(e) = source
///     .parse("ci", &http::HeaderMap::new(), body, dangerous::assume_verified(0))
///     .unwrap()
/// else {
///     panic!()
/// };
/// assert_eq!((e.name.as_str(), e.delivery_id.as_str()), ("build.failed", "17"));
/// assert_eq!(e.title, "main is red");
/// ```
#[derive(Debug, Clone)]
pub struct GenericSource {
    event: Vec<Locator>,
    event_fallback: Option<String>,
    delivery: Vec<Locator>,
    title: Option<Locator>,
    url: Option<Locator>,
}

/// The fallback event name of [`GenericSource::new`].
pub const GENERIC_FALLBACK_EVENT: &str = "webhook";

impl Default for GenericSource {
    fn default() -> Self {
        Self::new()
    }
}

impl GenericSource {
    /// A parser with the default locators (see the type docs).
    pub fn new() -> Self {
        let ptr = |p: &str| {
            // Both literals start with `/`, so parsing cannot fail; fall back
            // to the whole-document pointer rather than panic.
            Locator::Pointer(JsonPointer::new(p).unwrap_or(JsonPointer {
                text: "".into(),
                tokens: Box::new([]),
            }))
        };
        Self {
            event: vec![ptr("/type"), ptr("/event")],
            event_fallback: Some(GENERIC_FALLBACK_EVENT.to_owned()),
            delivery: vec![
                Locator::Header(HeaderName::from_static("webhook-id")),
                ptr("/id"),
            ],
            title: None,
            url: None,
        }
    }

    /// Replaces the event name locators.
    pub fn event_from(mut self, locators: Vec<Locator>) -> Self {
        self.event = locators;
        self
    }

    /// Sets the event name used when no locator hits (`None`: such a
    /// delivery is a [`ParseError::MissingField`]).
    pub fn event_fallback(mut self, name: Option<String>) -> Self {
        self.event_fallback = name;
        self
    }

    /// Replaces the delivery id locators (the body hash stays the last resort).
    pub fn delivery_from(mut self, locators: Vec<Locator>) -> Self {
        self.delivery = locators;
        self
    }

    /// Takes the title from `locator`.
    pub fn title_from(mut self, locator: Locator) -> Self {
        self.title = Some(locator);
        self
    }

    /// Takes the URL from `locator`.
    pub fn url_from(mut self, locator: Locator) -> Self {
        self.url = Some(locator);
        self
    }
}

/// Looks values up and remembers whether the body was already walked (and
/// so validated) once.
struct Lookup<'a> {
    headers: &'a HeaderMap,
    body: &'a str,
    walked: bool,
}

impl Lookup<'_> {
    fn first(&mut self, locators: &[Locator]) -> Result<Option<String>, ParseError> {
        for locator in locators {
            if let Some(v) = self.one(locator)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn one(&mut self, locator: &Locator) -> Result<Option<String>, ParseError> {
        match locator {
            Locator::Header(name) => Ok(header_str(self.headers, name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)),
            Locator::Pointer(p) => {
                self.walked = true;
                match seek(self.body, &p.tokens).map_err(|e| invalid_json(&e))? {
                    None => Ok(None),
                    Some(Scalar::Composite) => Err(ParseError::MissingField {
                        field: p.text.to_string(),
                    }),
                    Some(s) => Ok(s
                        .to_text()
                        .map(|t| t.into_owned())
                        .filter(|t| !t.is_empty())),
                }
            }
        }
    }
}

impl Source for GenericSource {
    fn parse(
        &self,
        source: &str,
        headers: &HeaderMap,
        body: Bytes,
        proof: Verification,
    ) -> Result<Parsed, ParseError> {
        let mut look = Lookup {
            headers,
            body: utf8(&body)?,
            walked: false,
        };
        let name = match (look.first(&self.event)?, &self.event_fallback) {
            (Some(name), _) => name,
            (None, Some(fallback)) => fallback.clone(),
            (None, None) => {
                return Err(match self.event.first() {
                    Some(Locator::Header(h)) => ParseError::MissingField {
                        field: format!("header {h}"),
                    },
                    Some(Locator::Pointer(p)) => ParseError::MissingField {
                        field: p.text.to_string(),
                    },
                    None => ParseError::MissingField {
                        field: "event".to_owned(),
                    },
                });
            }
        };
        let delivery_id = match look.first(&self.delivery)? {
            Some(id) => id,
            None => body_sha256_hex(&body),
        };
        let title = match &self.title {
            Some(l) => look.one(l)?,
            None => None,
        }
        .unwrap_or_else(|| format!("[Webhook] {name}"));
        let url = match &self.url {
            Some(l) => look.one(l)?,
            None => None,
        };
        if !look.walked {
            serde_json::from_str::<serde::de::IgnoredAny>(look.body)
                .map_err(|e| invalid_json(&e))?;
        }
        let event = Event {
            source: source.to_owned(),
            name,
            delivery_id,
            title,
            description: String::new(),
            url,
            payload: body,
        };
        Ok(Parsed::Event(Verified::new(event, proof)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &GenericSource, h: &HeaderMap, body: &'static str) -> Result<Event, ParseError> {
        match src.parse(
            "g",
            h,
            Bytes::from_static(body.as_bytes()),
            Verification::new(0),
        )? {
            Parsed::Event(e) => Ok(e.into_inner()),
            Parsed::Challenge(_) => panic!("no challenge"),
        }
    }

    #[test]
    fn defaults_accept_any_json_object() {
        let e = parse(&GenericSource::new(), &HeaderMap::new(), r#"{"hello":1}"#).unwrap();
        assert_eq!(e.name, "webhook");
        assert_eq!(e.title, "[Webhook] webhook");
        assert_eq!(e.delivery_id, body_sha256_hex(br#"{"hello":1}"#));
    }

    #[test]
    fn header_only_locators_still_validate_the_body() {
        let src = GenericSource::new()
            .event_from(vec![Locator::header(HeaderName::from_static("x-event"))])
            .delivery_from(vec![Locator::header(HeaderName::from_static("x-id"))]);
        let mut h = HeaderMap::new();
        h.insert("x-event", "a.b".parse().unwrap());
        h.insert("x-id", "1".parse().unwrap());
        assert_eq!(parse(&src, &h, "{}").unwrap().name, "a.b");
        assert!(matches!(
            parse(&src, &h, "{"),
            Err(ParseError::InvalidBody { .. })
        ));
    }

    #[test]
    fn missing_event_without_fallback_names_the_locator() {
        let src = GenericSource::new().event_fallback(None);
        assert_eq!(
            parse(&src, &HeaderMap::new(), "{}"),
            Err(ParseError::MissingField {
                field: "/type".into()
            })
        );
        assert_eq!(
            parse(&src, &HeaderMap::new(), r#"{"type":{"nested":1}}"#),
            Err(ParseError::MissingField {
                field: "/type".into()
            })
        );
        assert!(Locator::pointer("type").is_err());
    }
}
