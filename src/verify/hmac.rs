//! Generic HMAC-SHA256 for any sender: configurable signature header, prefix,
//! encoding (hex or base64), optional timestamp header and the layout of the
//! signed content.
//!
//! The signed content is a template of literal text and placeholders:
//! `{body}` (required, exactly once), `{timestamp}` (the timestamp header's
//! exact text; requires [`timestamp_header`](HmacVerifierBuilder::timestamp_header))
//! and `{header:Name}` (another request header's value). `{{` and `}}` stand
//! for literal braces. The default is `{body}`. Parts are fed to the MAC one
//! after another; nothing is concatenated.
//!
//! Because header names here are chosen at run time, errors name the header's
//! role (`signature`, `timestamp`, `signed header`) instead of its name.
//!
//! ```
//! use hookroom::clock::ManualClock;
//! use hookroom::verify::{HmacVerifier, Secret, SignatureEncoding, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! let verifier = HmacVerifier::builder("X-Signature")
//!     .prefix("hmac-sha256=")
//!     .encoding(SignatureEncoding::Base64)
//!     .timestamp_header("X-Timestamp")
//!     .signed_content("{timestamp}.{header:X-Delivery}.{body}")
//!     .clock(ManualClock::at_unix(1_700_000_000))
//!     .build(Secret::new("shared secret")?)?;
//!
//! let body = br#"{"event":"build.finished"}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("X-Timestamp", "1700000000".parse()?);
//! headers.insert("X-Delivery", "d-42".parse()?);
//! // What the sender computes, given the same configuration:
//! let signature = verifier.sign(b"shared secret", &headers, body)?;
//! assert!(signature.starts_with("hmac-sha256="));
//! headers.insert("X-Signature", signature.parse()?);
//!
//! assert_eq!(verifier.verify(&headers, body)?.key_index(), 0);
//! headers.insert("X-Delivery", "d-43".parse()?);
//! assert_eq!(verifier.verify(&headers, body), Err(VerifyError::SignatureMismatch));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ::hmac::Mac as _;
use http::{HeaderMap, HeaderName};

use super::common::{
    HmacKeys, HmacSha256, TAG_LEN, TimeWindow, decode_base64, decode_hex_any_case, encode_base64,
    encode_hex, header_once, parse_unix_seconds, prepare_key,
};
use super::{ConfigError, Secrets, Verification, Verifier, VerifyError};
use crate::clock::{Clock, SystemClock};

const SIGNATURE_ROLE: &str = "signature";
const TIMESTAMP_ROLE: &str = "timestamp";
const SIGNED_HEADER_ROLE: &str = "signed header";

/// How the tag is written in the signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignatureEncoding {
    /// 64 hex digits, either case.
    #[default]
    Hex,
    /// 44 characters of padded standard base64.
    Base64,
}

impl SignatureEncoding {
    /// Decodes exactly one 32-byte tag; wrong lengths are `None`.
    pub fn decode(self, text: &[u8]) -> Option<[u8; TAG_LEN]> {
        match self {
            Self::Hex => decode_hex_any_case(text),
            Self::Base64 => decode_base64::<TAG_LEN>(text),
        }
    }

    fn encode(self, tag: &[u8]) -> String {
        match self {
            Self::Hex => encode_hex(tag),
            Self::Base64 => encode_base64(tag),
        }
    }
}

/// One piece of the signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Body,
    Timestamp,
    Header(HeaderName),
}

/// The layout of the signed content, parsed from a template such as
/// `{timestamp}.{body}`. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedContent {
    parts: Vec<Part>,
}

impl Default for SignedContent {
    fn default() -> Self {
        Self {
            parts: vec![Part::Body],
        }
    }
}

impl SignedContent {
    /// Parses a template.
    ///
    /// # Errors
    /// [`ConfigError::InvalidTemplate`] for unbalanced braces, unknown
    /// placeholders, bad header names, or a `{body}` count other than one.
    pub fn parse(template: &str) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::InvalidTemplate { reason };
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{") {
                literal.push(b'{');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("}}") {
                literal.push(b'}');
                rest = after;
            } else if c == '}' {
                return Err(invalid("unmatched `}` (write `}}` for a literal brace)"));
            } else if let Some(after) = rest.strip_prefix('{') {
                let end = after
                    .find('}')
                    .ok_or(invalid("unclosed `{` (write `{{` for a literal brace)"))?;
                let (name, after) = after.split_at(end);
                rest = after.get(1..).unwrap_or_default();
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(match name {
                    "body" => Part::Body,
                    "timestamp" => Part::Timestamp,
                    _ => {
                        let header = name
                            .strip_prefix("header:")
                            .ok_or(invalid("unknown placeholder"))?;
                        Part::Header(
                            HeaderName::from_bytes(header.as_bytes())
                                .map_err(|_| invalid("invalid header name in `{header:…}`"))?,
                        )
                    }
                });
            } else {
                let mut buf = [0u8; 4];
                literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                rest = rest.get(c.len_utf8()..).unwrap_or_default();
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        if parts.iter().filter(|p| **p == Part::Body).count() != 1 {
            return Err(invalid("`{body}` must appear exactly once"));
        }
        Ok(Self { parts })
    }

    fn uses_timestamp(&self) -> bool {
        self.parts.contains(&Part::Timestamp)
    }

    /// Whether the value of header `name` is part of the signed content,
    /// as `{timestamp}` or as `{header:name}`.
    fn signs_timestamp(&self, name: &HeaderName) -> bool {
        self.parts
            .iter()
            .any(|p| *p == Part::Timestamp || *p == Part::Header(name.clone()))
    }
}

/// Configuration for an [`HmacVerifier`]; see [`HmacVerifier::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HmacVerifierBuilder {
    header: String,
    prefix: String,
    encoding: SignatureEncoding,
    timestamp_header: Option<String>,
    template: Option<String>,
    tolerance: Duration,
    clock: Arc<dyn Clock>,
}

impl HmacVerifierBuilder {
    /// Text before the encoded tag, e.g. `sha256=` (default: none). Matched
    /// exactly, case included.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How the tag is encoded (default: hex).
    pub fn encoding(mut self, encoding: SignatureEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Requires a timestamp (decimal Unix seconds) in `header`, checked
    /// against the tolerance. The [`signed_content`](Self::signed_content)
    /// template must sign it (`{timestamp}`): [`build`](Self::build) refuses
    /// a timestamp header that is not signed, since anyone could change it.
    pub fn timestamp_header(mut self, header: impl Into<String>) -> Self {
        self.timestamp_header = Some(header.into());
        self
    }

    /// The signed-content template (default `{body}`). See the [module docs](self).
    pub fn signed_content(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// Accepted distance between the timestamp and now, either side
    /// (default 300 s). Only used with a timestamp header.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Reads "now" from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the verifier for `secrets`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidHeaderName`] for a bad header name;
    /// [`ConfigError::InvalidTemplate`] for a bad template, or one that uses
    /// `{timestamp}` without a timestamp header;
    /// [`ConfigError::UnsignedTimestamp`] for a timestamp header the template
    /// does not sign.
    pub fn build(self, secrets: impl Into<Secrets>) -> Result<HmacVerifier, ConfigError> {
        let header = HeaderName::from_bytes(self.header.as_bytes())
            .map_err(|_| ConfigError::InvalidHeaderName { setting: "header" })?;
        let timestamp_header = self
            .timestamp_header
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    ConfigError::InvalidHeaderName {
                        setting: "timestamp_header",
                    }
                })
            })
            .transpose()?;
        let content = match &self.template {
            Some(template) => SignedContent::parse(template)?,
            None => SignedContent::default(),
        };
        if content.uses_timestamp() && timestamp_header.is_none() {
            return Err(ConfigError::InvalidTemplate {
                reason: "`{timestamp}` needs a timestamp header",
            });
        }
        if let Some(name) = &timestamp_header
            && !content.signs_timestamp(name)
        {
            return Err(ConfigError::UnsignedTimestamp);
        }
        Ok(HmacVerifier {
            keys: HmacKeys::new(&secrets.into()),
            header,
            prefix: self.prefix.into_bytes().into(),
            encoding: self.encoding,
            timestamp_header,
            window: TimeWindow {
                tolerance: self.tolerance,
                clock: self.clock,
            },
            content,
        })
    }
}

/// Verifies a configurable HMAC-SHA256 signature. See the [module docs](self).
#[derive(Clone)]
pub struct HmacVerifier {
    keys: HmacKeys,
    header: HeaderName,
    prefix: Box<[u8]>,
    encoding: SignatureEncoding,
    timestamp_header: Option<HeaderName>,
    window: TimeWindow,
    content: SignedContent,
}

impl HmacVerifier {
    /// Starts a configuration that reads the signature from `header`.
    pub fn builder(header: impl Into<String>) -> HmacVerifierBuilder {
        HmacVerifierBuilder {
            header: header.into(),
            prefix: String::new(),
            encoding: SignatureEncoding::Hex,
            timestamp_header: None,
            template: None,
            tolerance: super::common::DEFAULT_TOLERANCE,
            clock: Arc::new(SystemClock),
        }
    }

    /// The signature header value a sender computes with `secret` for `body`
    /// and the other `headers` of its request (which must hold the timestamp
    /// and every `{header:…}` the template names). Lowercase hex or padded
    /// base64, after the prefix.
    ///
    /// # Errors
    /// [`VerifyError::MissingHeader`] / [`VerifyError::DuplicateHeader`] when
    /// `headers` lack a signed header.
    pub fn sign(
        &self,
        secret: &[u8],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<String, VerifyError> {
        let timestamp = self.signed_timestamp(headers)?;
        self.check_signed_headers(headers)?;
        let mut mac = prepare_key(secret);
        self.feed(&mut mac, headers, timestamp, body);
        let tag = mac.finalize().into_bytes();
        let mut value = String::from_utf8_lossy(&self.prefix).into_owned();
        value.push_str(&self.encoding.encode(&tag));
        Ok(value)
    }

    fn signed_timestamp<'h>(&self, headers: &'h HeaderMap) -> Result<&'h [u8], VerifyError> {
        let Some(name) = &self.timestamp_header else {
            return Ok(&[]);
        };
        header_once(headers, name, TIMESTAMP_ROLE)
    }

    fn check_signed_headers(&self, headers: &HeaderMap) -> Result<(), VerifyError> {
        for part in &self.content.parts {
            if let Part::Header(name) = part {
                header_once(headers, name, SIGNED_HEADER_ROLE)?;
            }
        }
        Ok(())
    }

    fn feed(&self, mac: &mut HmacSha256, headers: &HeaderMap, timestamp: &[u8], body: &[u8]) {
        for part in &self.content.parts {
            match part {
                Part::Literal(text) => mac.update(text),
                Part::Body => mac.update(body),
                Part::Timestamp => mac.update(timestamp),
                Part::Header(name) => {
                    if let Some(value) = headers.get(name) {
                        mac.update(value.as_bytes());
                    }
                }
            }
        }
    }
}

impl Verifier for HmacVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        const MALFORMED: VerifyError = VerifyError::MalformedHeader {
            header: SIGNATURE_ROLE,
        };
        let value = header_once(headers, &self.header, SIGNATURE_ROLE)?;
        let presented = value
            .strip_prefix(&*self.prefix)
            .and_then(|text| self.encoding.decode(text))
            .ok_or(MALFORMED)?;
        let timestamp = self.signed_timestamp(headers)?;
        if self.timestamp_header.is_some() {
            let seconds = parse_unix_seconds(timestamp).ok_or(VerifyError::MalformedHeader {
                header: TIMESTAMP_ROLE,
            })?;
            self.window.check(seconds)?;
        }
        self.check_signed_headers(headers)?;
        self.keys
            .find(|mac| self.feed(mac, headers, timestamp, body), &presented)
            .map(Verification::new)
            .ok_or(VerifyError::SignatureMismatch)
    }
}

impl fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacVerifier")
            .field("keys", &self.keys)
            .field("header", &self.header)
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("encoding", &self.encoding)
            .field("timestamp_header", &self.timestamp_header)
            .field("window", &self.window)
            .field("content", &self.content)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::verify::secret::test_secrets;

    #[test]
    fn template_parsing() {
        let content = SignedContent::parse("v0:{timestamp}:{{x}}{body}").unwrap();
        assert_eq!(
            content.parts,
            vec![
                Part::Literal((*b"v0:").into()),
                Part::Timestamp,
                Part::Literal((*b":{x}").into()),
                Part::Body
            ]
        );
        for bad in [
            "",
            "{timestamp}",
            "{body}{body}",
            "{body",
            "body}",
            "{nope}{body}",
            "{header:bad name}{body}",
        ] {
            assert!(
                matches!(
                    SignedContent::parse(bad),
                    Err(ConfigError::InvalidTemplate { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn build_rejects_inconsistent_configuration() {
        assert_eq!(
            HmacVerifier::builder("bad header")
                .build(test_secrets("s"))
                .unwrap_err(),
            ConfigError::InvalidHeaderName { setting: "header" }
        );
        assert!(matches!(
            HmacVerifier::builder("X-Sig")
                .signed_content("{timestamp}.{body}")
                .build(test_secrets("s")),
            Err(ConfigError::InvalidTemplate { .. })
        ));
    }

    #[test]
    fn default_is_hex_of_body_and_accepts_either_case() {
        let verifier = HmacVerifier::builder("X-Sig")
            .build(test_secrets(["a", "b"]))
            .unwrap();
        let mut headers = HeaderMap::new();
        let sig = verifier.sign(b"b", &headers, b"body").unwrap();
        assert_eq!(sig.len(), 64);
        headers.insert("X-Sig", sig.to_uppercase().parse().unwrap());
        assert_eq!(verifier.verify(&headers, b"body"), Ok(Verification::new(1)));
        headers.insert("X-Sig", sig[..62].parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, b"body"),
            Err(VerifyError::MalformedHeader {
                header: "signature"
            })
        );
    }

    #[test]
    fn slack_layout_reproduces_slack() {
        let clock = ManualClock::at_unix(1_531_420_618);
        let verifier = HmacVerifier::builder("X-Slack-Signature")
            .prefix("v0=")
            .timestamp_header("X-Slack-Request-Timestamp")
            .signed_content("v0:{timestamp}:{body}")
            .clock(clock)
            .build(test_secrets("secret"))
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("X-Slack-Request-Timestamp", "1531420618".parse().unwrap());
        let expected = crate::verify::slack::sign(b"secret", 1_531_420_618, b"body");
        assert_eq!(
            verifier.sign(b"secret", &headers, b"body").unwrap(),
            expected
        );
        headers.insert("X-Slack-Signature", expected.parse().unwrap());
        assert!(verifier.verify(&headers, b"body").is_ok());
        headers.insert("X-Slack-Request-Timestamp", "1531420000".parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, b"body"),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }

    #[test]
    fn missing_signed_header_is_reported_by_role() {
        let verifier = HmacVerifier::builder("X-Sig")
            .signed_content("{header:X-Id}.{body}")
            .build(test_secrets("s"))
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("X-Sig", "00".repeat(32).parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, b""),
            Err(VerifyError::MissingHeader {
                header: "signed header"
            })
        );
    }
}
