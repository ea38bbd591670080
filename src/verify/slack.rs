//! Slack v0: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">`
//! with the timestamp from `X-Slack-Request-Timestamp`.
//!
//! The timestamp must lie within the replay window (300 s by default, in the
//! past and in the future) of the verifier's [`Clock`](crate::clock::Clock). The three parts of the
//! signed string are fed to the MAC one after another; nothing is copied.
//!
//! ```
//! use hookroom::clock::ManualClock;
//! use hookroom::verify::{slack, Secret, SlackVerifier, Verifier, VerifyError};
//! use http::HeaderMap;
//! use std::time::Duration;
//!
//! let clock = ManualClock::at_unix(1_531_420_618);
//! let verifier = SlackVerifier::new(Secret::new("8f742231b10e8888abcd99yyyzzz85a5")?)
//!     .with_clock(clock.clone());
//!
//! let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
//! let mut headers = HeaderMap::new();
//! headers.insert("X-Slack-Request-Timestamp", "1531420618".parse()?);
//! headers.insert(
//!     "X-Slack-Signature",
//!     slack::sign(b"8f742231b10e8888abcd99yyyzzz85a5", 1_531_420_618, body).parse()?,
//! );
//! assert!(verifier.verify(&headers, body).is_ok());
//!
//! // Six minutes later the same request is a replay.
//! clock.advance(Duration::from_secs(360));
//! assert_eq!(verifier.verify(&headers, body), Err(VerifyError::TimestampOutOfTolerance));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use hmac::Mac;
use http::{HeaderMap, HeaderName};

use super::common::{
    HmacKeys, TAG_LEN, TimeWindow, decode_hex_lower, encode_hex, header_once, hmac_tag,
    parse_unix_seconds, time_window_options,
};
use super::{Secrets, Verification, Verifier, VerifyError};

/// The header Slack sends the signature in.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// The header Slack sends the signed timestamp in.
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
const SIGNATURE_NAME: HeaderName = HeaderName::from_static("x-slack-signature");
const TIMESTAMP_NAME: HeaderName = HeaderName::from_static("x-slack-request-timestamp");
const PREFIX: &[u8] = b"v0=";

/// Verifies Slack's v0 request signatures. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct SlackVerifier {
    keys: HmacKeys,
    window: TimeWindow,
}

impl SlackVerifier {
    /// A verifier with Slack signing secrets `secrets`, a 300 s replay window
    /// and the system clock.
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            keys: HmacKeys::new(&secrets.into()),
            window: TimeWindow::new(),
        }
    }

    time_window_options!();
}

impl Verifier for SlackVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        let timestamp_text = header_once(headers, &TIMESTAMP_NAME, TIMESTAMP_HEADER)?;
        let timestamp = parse_timestamp(timestamp_text)?;
        let presented = parse_signature(header_once(headers, &SIGNATURE_NAME, SIGNATURE_HEADER)?)?;
        self.window.check(timestamp)?;
        self.keys
            .find(
                |mac| {
                    mac.update(b"v0:");
                    mac.update(timestamp_text);
                    mac.update(b":");
                    mac.update(body);
                },
                &presented,
            )
            .map(Verification::new)
            .ok_or(VerifyError::SignatureMismatch)
    }
}

/// Parses an `X-Slack-Signature` value: `v0=` and 64 lowercase hex digits.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] for anything else (other versions,
/// truncated or extended digests, upper case).
pub fn parse_signature(value: &[u8]) -> Result<[u8; TAG_LEN], VerifyError> {
    value
        .strip_prefix(PREFIX)
        .and_then(decode_hex_lower)
        .ok_or(VerifyError::MalformedHeader {
            header: SIGNATURE_HEADER,
        })
}

/// Parses an `X-Slack-Request-Timestamp` value: decimal Unix seconds.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] for anything but plain ASCII digits.
pub fn parse_timestamp(value: &[u8]) -> Result<i64, VerifyError> {
    parse_unix_seconds(value).ok_or(VerifyError::MalformedHeader {
        header: TIMESTAMP_HEADER,
    })
}

/// The `X-Slack-Signature` value Slack computes for `body` sent at `timestamp`
/// (Unix seconds, sent as `X-Slack-Request-Timestamp`).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let tag = hmac_tag(secret, &[b"v0:", timestamp.as_bytes(), b":", body]);
    format!("v0={}", encode_hex(&tag))
}

#[cfg(test)]
mod tests {
    use crate::verify::secret::test_secrets;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    const SECRET: &[u8] = b"slack secret";

    fn request(timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn window_is_enforced_both_ways_with_custom_tolerance() {
        let clock = ManualClock::at_unix(10_000);
        let verifier = SlackVerifier::new(test_secrets(SECRET))
            .with_clock(clock.clone())
            .with_tolerance(Duration::from_secs(60));
        let body = b"payload";
        for (ts, ok) in [
            (9_940, true),
            (10_060, true),
            (9_939, false),
            (10_061, false),
        ] {
            let headers = request(&ts.to_string(), &sign(SECRET, ts, body));
            assert_eq!(verifier.verify(&headers, body).is_ok(), ok, "{ts}");
        }
    }

    #[test]
    fn timestamp_is_part_of_the_signature() {
        let clock = ManualClock::at_unix(10_000);
        let verifier = SlackVerifier::new(test_secrets(SECRET)).with_clock(clock);
        let headers = request("10001", &sign(SECRET, 10_000, b"x"));
        assert_eq!(
            verifier.verify(&headers, b"x"),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn malformed_timestamps_and_signatures() {
        let verifier =
            SlackVerifier::new(test_secrets(SECRET)).with_clock(ManualClock::at_unix(10_000));
        let good = sign(SECRET, 10_000, b"x");
        for ts in ["", "-10000", "10000.0", " 10000", "1e4"] {
            let headers = request(ts, &good);
            assert_eq!(
                verifier.verify(&headers, b"x"),
                Err(VerifyError::MalformedHeader {
                    header: TIMESTAMP_HEADER
                }),
                "{ts:?}"
            );
        }
        for sig in [
            &good[..good.len() - 1],
            "v0=",
            "",
            &good.to_uppercase(),
            &format!("{good}{}", &good[3..]),
            &good.replace("v0=", "v1="),
        ] {
            let headers = request("10000", sig);
            assert_eq!(
                verifier.verify(&headers, b"x"),
                Err(VerifyError::MalformedHeader {
                    header: SIGNATURE_HEADER
                }),
                "{sig:?}"
            );
        }
    }
}
