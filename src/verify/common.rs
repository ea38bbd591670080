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
            tags_equal(&tag, presented).then_some(index)
        })
    }
}

/// Compares two tags in constant time.
///
/// The bytes' differences are OR-ed together without branching (the
/// compiler turns this into a few vector instructions) and only the final
/// accumulator goes through `subtle`, which is much cheaper than a `subtle`
/// comparison per byte and just as independent of where the tags differ.
pub(crate) fn tags_equal<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    bool::from(diff.ct_eq(&0))
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
            .position(|digest| tags_equal(digest, &presented))
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

/// Marks a byte that is not a digit of the alphabet in the decode table.
const INVALID: u8 = 0xff;

/// Decodes exactly 64 lowercase hex digits; anything else is `None`.
pub(crate) fn decode_hex_lower(text: &[u8]) -> Option<[u8; TAG_LEN]> {
    decode_hex(text, false)
}

/// Decodes exactly 64 hex digits of either case.
pub(crate) fn decode_hex_any_case(text: &[u8]) -> Option<[u8; TAG_LEN]> {
    decode_hex(text, true)
}

/// Fixed-size, branch-free hex decoding: every digit is classified with
/// arithmetic and the errors OR-ed together, which the compiler vectorizes.
fn decode_hex(text: &[u8], allow_upper: bool) -> Option<[u8; TAG_LEN]> {
    let text: &[u8; 2 * TAG_LEN] = text.try_into().ok()?;
    // Setting bit 0x20 maps 'A'..='F' onto 'a'..='f' and never makes any
    // other byte a lowercase hex letter; digits are tested before folding.
    let fold = if allow_upper { 0x20 } else { 0 };
    let mut nibbles = [0u8; 2 * TAG_LEN];
    let mut invalid = 0u8;
    for (nibble, &c) in nibbles.iter_mut().zip(text) {
        let digit = c.wrapping_sub(b'0');
        let letter = (c | fold).wrapping_sub(b'a');
        let (is_digit, is_letter) = (digit < 10, letter < 6);
        invalid |= u8::from(!(is_digit | is_letter));
        *nibble = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut out = [0u8; TAG_LEN];
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        if let &[hi, lo] = pair {
            *byte = (hi << 4) | (lo & 0x0f);
        }
    }
    (invalid == 0).then_some(out)
}

/// Standard base64 digit values; everything else is [`INVALID`].
const BASE64: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes canonical, padded standard base64 of exactly `N` bytes.
///
/// The length is checked first, so doubled or truncated values are never
/// decoded; non-canonical trailing bits are rejected, so each `N`-byte value
/// has exactly one accepted spelling.
pub(crate) fn decode_base64<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let mut out = [0u8; N];
    let mut invalid = 0u8;
    let mut noncanonical = 0u8;
    let full = N / 3;
    for (bytes, quad) in out.chunks_exact_mut(3).zip(text.chunks_exact(4)).take(full) {
        let &[a, b, c, d] = quad else { return None };
        let [a, b, c, d] = [a, b, c, d].map(|x| BASE64[usize::from(x)]);
        invalid |= a | b | c | d;
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        bytes.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    let tail = text.get(full * 4..)?;
    let rest = out.get_mut(full * 3..)?;
    match (rest, tail) {
        ([], []) => {}
        ([x], [a, b, b'=', b'=']) => {
            let [a, b] = [*a, *b].map(|x| BASE64[usize::from(x)]);
            invalid |= a | b;
            noncanonical |= b & 0x0f;
            *x = (a << 2) | (b >> 4);
        }
        ([x, y], [a, b, c, b'=']) => {
            let [a, b, c] = [*a, *b, *c].map(|x| BASE64[usize::from(x)]);
            invalid |= a | b | c;
            noncanonical |= c & 0x03;
            *x = (a << 2) | (b >> 4);
            *y = (b << 4) | (c >> 2);
        }
        _ => return None,
    }
    // Digit values are < 64: a top bit set means a byte outside the alphabet.
    (invalid & 0xc0 == 0 && noncanonical == 0).then_some(out)
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

/// The builder methods of every verifier that keeps a `window: TimeWindow`:
/// `with_tolerance` and `with_clock`. Invoked inside the verifier's `impl`.
macro_rules! time_window_options {
    () => {
        /// Accepts timestamps at most `tolerance` away from now (either side).
        #[must_use]
        pub fn with_tolerance(mut self, tolerance: std::time::Duration) -> Self {
            self.window.tolerance = tolerance;
            self
        }

        /// Reads "now" from `clock` instead of the system clock.
        #[must_use]
        pub fn with_clock(mut self, clock: impl crate::clock::Clock) -> Self {
            self.window.clock = std::sync::Arc::new(clock);
            self
        }
    };
}
pub(crate) use time_window_options;

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
        assert!(decode_hex_lower(lower.as_bytes()).is_some());
        assert!(decode_hex_lower(lower.to_uppercase().as_bytes()).is_none());
        assert_eq!(
            decode_hex_any_case(lower.to_uppercase().as_bytes()),
            decode_hex_lower(lower.as_bytes())
        );
        assert!(decode_hex_lower(&lower.as_bytes()[..62]).is_none());
        assert!(decode_hex_lower(format!("{lower}00").as_bytes()).is_none());
        assert!(decode_hex_lower(b"").is_none());
        let mut digits = [b'0'; 64];
        assert_eq!(decode_hex_lower(&digits), Some([0; 32]));
        digits[..2].copy_from_slice(b"fF");
        assert_eq!(decode_hex_lower(&digits), None);
        assert_eq!(decode_hex_any_case(&digits).map(|b| b[0]), Some(0xff));
        // Every byte that is not a hex digit is refused in every position.
        for c in (0..=255u8).filter(|c| !c.is_ascii_hexdigit()) {
            for at in [0, 1, 63] {
                let mut text = [b'a'; 64];
                text[at] = c;
                assert_eq!(decode_hex_any_case(&text), None, "{c:#x} at {at}");
            }
        }
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

    proptest::proptest! {
        #[test]
        fn base64_decoding_agrees_with_the_base64_crate(text in "[A-Za-z0-9+/=]{43,45}") {
            let ours = decode_base64::<32>(text.as_bytes());
            let theirs = base64::engine::general_purpose::STANDARD
                .decode(&text)
                .ok()
                .filter(|bytes| bytes.len() == 32);
            proptest::prop_assert_eq!(ours.map(Vec::from), theirs);
        }

        #[test]
        fn base64_round_trips(bytes: [u8; 32], wide in proptest::collection::vec(proptest::prelude::any::<u8>(), 64)) {
            proptest::prop_assert_eq!(decode_base64::<32>(encode_base64(&bytes).as_bytes()), Some(bytes));
            let decoded = decode_base64::<64>(encode_base64(&wide).as_bytes()).map(Vec::from);
            proptest::prop_assert_eq!(decoded, Some(wide));
        }

        #[test]
        fn hex_decoding_agrees_with_the_hex_crate(text in "[0-9a-fA-Fg ]{63,65}") {
            let theirs = hex::decode(&text).ok().filter(|bytes| bytes.len() == 32);
            proptest::prop_assert_eq!(decode_hex_any_case(text.as_bytes()).map(Vec::from), theirs.clone());
            let lower_only = theirs.filter(|_| !text.bytes().any(|b| b.is_ascii_uppercase()));
            proptest::prop_assert_eq!(decode_hex_lower(text.as_bytes()).map(Vec::from), lower_only);
        }

        #[test]
        fn tags_equal_is_equality(a: [u8; 32], b: [u8; 32], i in 0usize..32, flip in 1u8..) {
            proptest::prop_assert_eq!(tags_equal(&a, &b), a == b);
            let mut c = a;
            c[i] ^= flip;
            proptest::prop_assert!(!tags_equal(&a, &c));
            proptest::prop_assert!(tags_equal(&a, &a));
        }
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
