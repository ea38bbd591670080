//! Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`.
//!
//! Each `v1` is the lowercase hex HMAC-SHA256 of `{t}.{body}` under the
//! endpoint's signing secret (`whsec_…`, used as given, not decoded). During
//! a secret roll Stripe sends one `v1` per active secret; any of them may
//! match. Other schemes (`v0`, test-mode extras) are ignored. The timestamp
//! must lie within 300 s (configurable) of now, in either direction.
//!
//! ```
//! use hookroom::clock::ManualClock;
//! use hookroom::verify::{stripe, Secret, StripeVerifier, Verifier, VerifyError};
//! use http::HeaderMap;
//!
//! let secret = b"whsec_test_secret";
//! let body = br#"{"id":"evt_1","object":"event"}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("Stripe-Signature", stripe::sign(secret, 1_680_802_259, body).parse()?);
//!
//! let verifier = StripeVerifier::new(Secret::new("whsec_test_secret")?)
//!     .with_clock(ManualClock::at_unix(1_680_802_300));
//! assert!(verifier.verify(&headers, body).is_ok());
//! assert_eq!(verifier.verify(&headers, b"{}"), Err(VerifyError::SignatureMismatch));
//!
//! let parsed = stripe::parse_header(headers["Stripe-Signature"].as_bytes())?;
//! assert_eq!(parsed.timestamp(), 1_680_802_259);
//! assert_eq!(parsed.v1_signatures().count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use hmac::Mac;
use http::{HeaderMap, HeaderName};

use super::common::{
    HmacKeys, TAG_LEN, TimeWindow, decode_hex_lower, encode_hex, header_once, hmac_tag,
    parse_unix_seconds, tags_equal, time_window_options,
};
use super::{Secrets, Verification, Verifier, VerifyError};

/// The header Stripe sends the signature in.
pub const HEADER: &str = "Stripe-Signature";
const HEADER_NAME: HeaderName = HeaderName::from_static("stripe-signature");
const MALFORMED: VerifyError = VerifyError::MalformedHeader { header: HEADER };

/// Verifies Stripe's `Stripe-Signature` header. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct StripeVerifier {
    keys: HmacKeys,
    window: TimeWindow,
}

impl StripeVerifier {
    /// A verifier for the endpoint signing secrets `secrets`, with a 300 s
    /// tolerance and the system clock.
    pub fn new(secrets: impl Into<Secrets>) -> Self {
        Self {
            keys: HmacKeys::new(&secrets.into()),
            window: TimeWindow::new(),
        }
    }

    time_window_options!();
}

impl Verifier for StripeVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        let header = parse_header(header_once(headers, &HEADER_NAME, HEADER)?)?;
        self.window.check(header.timestamp)?;
        let feed = |mac: &mut crate::verify::common::HmacSha256| {
            mac.update(header.timestamp_text);
            mac.update(b".");
            mac.update(body);
        };
        for (index, tag) in self.keys.tags(feed) {
            for presented in header.v1_signatures().flatten() {
                if tags_equal(&tag, &presented) {
                    return Ok(Verification::new(index));
                }
            }
        }
        Err(VerifyError::SignatureMismatch)
    }
}

/// How many `v1` entries [`parse_header`] decodes while validating; Stripe
/// sends one, or two while a secret rolls. Further entries are decoded when
/// iterated.
const INLINE_V1: usize = 2;

/// A parsed `Stripe-Signature` value, borrowing from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeSignatureHeader<'a> {
    timestamp: i64,
    timestamp_text: &'a [u8],
    raw: &'a [u8],
    /// The first `v1` entries, decoded (`None`: not 64 lowercase hex digits).
    inline: [Option<[u8; TAG_LEN]>; INLINE_V1],
    v1_count: usize,
}

impl<'a> StripeSignatureHeader<'a> {
    /// The signed timestamp, Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The `v1` entries in order: `Some(tag)` when the entry is exactly 64
    /// lowercase hex digits, `None` otherwise (such an entry never matches).
    pub fn v1_signatures(&self) -> impl Iterator<Item = Option<[u8; TAG_LEN]>> + 'a {
        let inline = self.inline.into_iter().take(self.v1_count.min(INLINE_V1));
        let rest = if self.v1_count > INLINE_V1 {
            self.raw
        } else {
            &[]
        };
        inline.chain(
            elements(rest)
                .filter(|(key, _)| *key == b"v1")
                .skip(INLINE_V1)
                .map(|(_, value)| decode_hex_lower(value)),
        )
    }
}

/// `key=value` elements of the header, split on `,` and the first `=`.
fn elements(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|&b| b == b',')
        .filter(|_| !raw.is_empty())
        .map(|element| {
            let element = element.trim_ascii();
            match element.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    element.get(..eq).unwrap_or_default(),
                    element.get(eq + 1..).unwrap_or_default(),
                ),
                None => (element, &[][..]),
            }
        })
}

/// Parses a `Stripe-Signature` value in one pass, without allocating.
///
/// Requires exactly one `t=` with plain decimal seconds, at least one `v1=`,
/// and `key=value` form for every element; unknown keys are ignored.
///
/// # Errors
/// [`VerifyError::MalformedHeader`].
pub fn parse_header(value: &[u8]) -> Result<StripeSignatureHeader<'_>, VerifyError> {
    let mut timestamp_text = None;
    let mut inline = [None; INLINE_V1];
    let mut v1_count = 0;
    if value.is_empty() {
        return Err(MALFORMED);
    }
    for (key, value) in elements(value) {
        if key.is_empty() || value.is_empty() {
            return Err(MALFORMED);
        }
        match key {
            b"t" if timestamp_text.is_some() => return Err(MALFORMED),
            b"t" => timestamp_text = Some(value),
            b"v1" => {
                if let Some(slot) = inline.get_mut(v1_count) {
                    *slot = decode_hex_lower(value);
                }
                v1_count += 1;
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp_text.ok_or(MALFORMED)?;
    let timestamp = parse_unix_seconds(timestamp_text).ok_or(MALFORMED)?;
    if v1_count == 0 {
        return Err(MALFORMED);
    }
    Ok(StripeSignatureHeader {
        timestamp,
        timestamp_text,
        raw: value,
        inline,
        v1_count,
    })
}

/// The `Stripe-Signature` value Stripe computes for `body` sent at
/// `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let tag = hmac_tag(secret, &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", encode_hex(&tag))
}

#[cfg(test)]
mod tests {
    use crate::verify::secret::test_secrets;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    const NOW: i64 = 1_680_802_259;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn roll_sends_two_v1_and_either_matches() {
        let body = b"{}";
        let old = sign(b"old", NOW, body);
        let new = sign(b"new", NOW, body);
        let both = format!("{new},v1={},v0=deadbeef", &old[old.len() - 64..]);
        let verifier =
            StripeVerifier::new(test_secrets(["old"])).with_clock(ManualClock::at_unix(NOW));
        assert_eq!(
            verifier.verify(&headers(&both), body),
            Ok(Verification::new(0))
        );
        let verifier = StripeVerifier::new(test_secrets(["other", "new"]))
            .with_clock(ManualClock::at_unix(NOW));
        assert_eq!(
            verifier.verify(&headers(&both), body),
            Ok(Verification::new(1))
        );
    }

    #[test]
    fn parse_header_rejects_malformed_values() {
        let tag = "a".repeat(64);
        for bad in [
            String::new(),
            format!("v1={tag}"),
            format!("t={NOW}"),
            format!("t={NOW},t={NOW},v1={tag}"),
            format!("t=-1,v1={tag}"),
            format!("t=,v1={tag}"),
            format!("t={NOW},v1="),
            format!("t={NOW},,v1={tag}"),
            format!("t={NOW},v1{tag}"),
            format!("=1,t={NOW},v1={tag}"),
        ] {
            assert_eq!(parse_header(bad.as_bytes()), Err(MALFORMED), "{bad}");
        }
        let value = format!("t={NOW}, v1={tag} ,v1=ABC,v0=x");
        let ok = parse_header(value.as_bytes()).unwrap();
        assert_eq!(ok.timestamp(), NOW);
        let sigs: Vec<_> = ok.v1_signatures().collect();
        assert_eq!(sigs, vec![Some([0xaa; 32]), None]);

        // Entries past the inline ones are still seen, in order.
        let b = "b".repeat(64);
        let value = format!("v1=x,t={NOW},v1={tag},v0={b},v1={b},v1=nope,v1={tag}");
        let many = parse_header(value.as_bytes()).unwrap();
        let sigs: Vec<_> = many.v1_signatures().collect();
        assert_eq!(
            sigs,
            vec![
                None,
                Some([0xaa; 32]),
                Some([0xbb; 32]),
                None,
                Some([0xaa; 32])
            ]
        );
    }

    #[test]
    fn truncated_doubled_or_uppercase_v1_never_matches() {
        let body = b"x";
        let good = sign(b"s", NOW, body);
        let hex = &good[good.len() - 64..];
        let verifier = StripeVerifier::new(test_secrets("s")).with_clock(ManualClock::at_unix(NOW));
        for v1 in [
            &hex[..63],
            &format!("{hex}{hex}"),
            &hex.to_uppercase(),
            &format!("{hex}0"),
        ] {
            let value = format!("t={NOW},v1={v1}");
            assert_eq!(
                verifier.verify(&headers(&value), body),
                Err(VerifyError::SignatureMismatch),
                "{v1}"
            );
        }
    }

    #[test]
    fn tolerance_is_checked_both_ways() {
        let body = b"x";
        let clock = ManualClock::at_unix(NOW + 301);
        let verifier = StripeVerifier::new(test_secrets("s")).with_clock(clock.clone());
        let value = sign(b"s", NOW, body);
        assert_eq!(
            verifier.verify(&headers(&value), body),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        clock.set_unix(NOW - 301);
        assert_eq!(
            verifier.verify(&headers(&value), body),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        let verifier = verifier.with_tolerance(Duration::from_secs(301));
        assert!(verifier.verify(&headers(&value), body).is_ok());
    }
}
