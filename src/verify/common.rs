//! Building blocks every scheme shares: prepared HMAC keys, single-valued
//! header lookup, stack-only signature decoding and the timestamp window.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Secrets, VerifyError};
use crate::clock::{Clock, SystemClock};

/// HMAC-SHA256 with its key schedule already computed.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// The default timestamp tolerance of every timestamped scheme.
pub(crate) const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// One keyed HMAC state per configured secret, in configuration order.
///
/// Preparing the key (hashing it into the inner and outer pads) costs about
/// as much as hashing a 64 B body, so it is done once here and every request
/// clones the prepared state instead.
#[derive(Clone)]
pub(crate) struct HmacKeys {
    keys: Vec<HmacSha256>,
}

impl HmacKeys {
    pub(crate) fn new(secrets: &Secrets) -> Self {
        Self::from_raw_keys(secrets.iter().map(|s| s.expose()))
    }

    pub(crate) fn from_raw_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self {
            keys: keys.into_iter().map(prepare_key).collect(),
        }
    }

    /// The tag each key produces over what `feed` writes, paired with the
    /// key's index.
    pub(crate) fn tags<'a>(
        &'a self,
        feed: impl Fn(&mut HmacSha256) + 'a,
    ) -> impl Iterator<Item = (usize, [u8; TAG_LEN])> + 'a {
        self.keys.iter().enumerate().map(move |(index, key)| {
            let mut mac = key.clone();
            feed(&mut mac);
            (index, mac.finalize().into_bytes().into())
        })
    }

    /// Index of the first key whose tag over `feed` equals `presented`,
    /// compared in constant time.
    pub(crate) fn find(
        &self,
        feed: impl Fn(&mut HmacSha256),
        presented: &[u8; TAG_LEN],
    ) -> Option<usize> {
        self.keys.iter().enumerate().find_map(|(index, key)| {
            let mut mac = key.clone();
            feed(&mut mac);
            let tag: [u8; TAG_LEN] = mac.finalize().into_bytes().into();
            bool::from(tag.ct_eq(presented)).then_some(index)
        })
    }
}

/// Computes the HMAC key schedule for `key`.
pub(crate) fn prepare_key(key: &[u8]) -> HmacSha256 {
    // HMAC hashes or pads keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// The HMAC-SHA256 tag of the concatenation of `parts` under `key`.
pub(crate) fn hmac_tag(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    let mut mac = prepare_key(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for HmacKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted; {}]", self.keys.len())
    }
}

/// SHA-256 digests of shared tokens, compared digest to digest so the
/// comparison takes the same time whatever the presented token's length.
#[derive(Clone)]
pub(crate) struct TokenDigests {
    digests: Vec<[u8; 32]>,
}

impl TokenDigests {
    pub(crate) fn new(secrets: &Secrets) -> Self {
        let digests = secrets
            .iter()
            .map(|s| Sha256::digest(s.expose()).into())
            .collect();
        Self { digests }
    }

    pub(crate) fn find(&self, presented: &[u8]) -> Option<usize> {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        self.digests
            .iter()
            .position(|digest| bool::from(digest.ct_eq(&presented)))
    }
}

impl fmt::Debug for TokenDigests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted; {}]", self.digests.len())
    }
}

/// The value of a header that must appear exactly once.
pub(crate) fn header_once<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    label: &'static str,
) -> Result<&'h [u8], VerifyError> {
    let mut values = headers.get_all(name).iter();
    let value = values
        .next()
        .ok_or(VerifyError::MissingHeader { header: label })?;
    if values.next().is_some() {
        return Err(VerifyError::DuplicateHeader { header: label });
    }
    Ok(value.as_bytes())
}

/// Decodes exactly `2 * N` lowercase hex digits; anything else is `None`.
pub(crate) fn decode_hex_lower<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    decode_hex::<N>(text, false)
}

/// Decodes exactly `2 * N` hex digits of either case.
pub(crate) fn decode_hex_any_case<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    decode_hex::<N>(text, true)
}

fn decode_hex<const N: usize>(text: &[u8], allow_upper: bool) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

/// Decodes canonical, padded standard base64 into exactly `N` bytes.
pub(crate) fn decode_base64<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    // Padded base64 of N bytes is exactly this long; checking first keeps
    // doubled or truncated values from being decoded at all.
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    // The decoder wants room for its estimate (a multiple of 3).
    let mut buffer = [0u8; 96];
    let buffer = buffer.get_mut(..N.div_ceil(3) * 3)?;
    let written = base64::engine::general_purpose::STANDARD
        .decode_slice(text, buffer)
        .ok()?;
    buffer.get(..written)?.try_into().ok()
}

/// Encodes `bytes` as lowercase hex.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Encodes `bytes` as padded standard base64.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A Unix timestamp in seconds: ASCII digits only (no sign, no spaces), the
/// exact text a sender signs.
pub(crate) fn parse_unix_seconds(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0i64, |acc, d| {
        acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })
}

/// The replay window: a timestamp is accepted when it is at most `tolerance`
/// before or after the clock's now.
#[derive(Clone)]
pub(crate) struct TimeWindow {
    pub(crate) tolerance: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

impl TimeWindow {
    pub(crate) fn new() -> Self {
        Self {
            tolerance: DEFAULT_TOLERANCE,
            clock: Arc::new(SystemClock),
        }
    }

    pub(crate) fn check(&self, timestamp: i64) -> Result<(), VerifyError> {
        let now = self.clock.unix_seconds();
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(VerifyError::TimestampOutOfTolerance);
        }
        Ok(())
    }
}

impl fmt::Debug for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindow")
            .field("tolerance", &self.tolerance)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn hex_decoding_rejects_wrong_length_and_case() {
        let lower = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(decode_hex_lower::<32>(lower.as_bytes()).is_some());
        assert!(decode_hex_lower::<32>(lower.to_uppercase().as_bytes()).is_none());
        assert_eq!(
            decode_hex_any_case::<32>(lower.to_uppercase().as_bytes()),
            decode_hex_lower::<32>(lower.as_bytes())
        );
        assert!(decode_hex_lower::<32>(&lower.as_bytes()[..62]).is_none());
        assert!(decode_hex_lower::<32>(format!("{lower}00").as_bytes()).is_none());
        assert!(decode_hex_lower::<32>(b"").is_none());
        assert!(decode_hex_lower::<1>(b"0g").is_none());
        assert_eq!(decode_hex_lower::<2>(b"00ff"), Some([0, 255]));
    }

    #[test]
    fn base64_decoding_is_exact_length_and_canonical() {
        let b64 = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(decode_base64::<32>(b64.as_bytes()).is_some());
        assert!(decode_base64::<32>(&b64.as_bytes()[..43]).is_none());
        assert!(decode_base64::<32>(format!("{b64}{b64}").as_bytes()).is_none());
        // Non-canonical trailing bits ("F" instead of "E") are rejected.
        assert!(decode_base64::<32>(b64.replace("OE=", "OF=").as_bytes()).is_none());
        let sig64 = encode_base64(&[7u8; 64]);
        assert_eq!(decode_base64::<64>(sig64.as_bytes()), Some([7u8; 64]));
    }

    #[test]
    fn unix_seconds_are_plain_digits() {
        assert_eq!(parse_unix_seconds(b"1531420618"), Some(1_531_420_618));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.5",
            b"9999999999999999999",
        ] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn window_applies_to_past_and_future() {
        let clock = ManualClock::at_unix(1_000);
        let window = TimeWindow {
            tolerance: Duration::from_secs(300),
            clock: Arc::new(clock),
        };
        assert!(window.check(700).is_ok());
        assert!(window.check(1_300).is_ok());
        assert_eq!(window.check(699), Err(VerifyError::TimestampOutOfTolerance));
        assert_eq!(
            window.check(1_301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            window.check(i64::MAX),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
}
