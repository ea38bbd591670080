//! [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`. The
//! signature header is a space-separated list of `version,base64` entries, so
//! a sender can sign with several keys at once; any entry matching any
//! configured key is enough. Timestamps must lie within 300 s (configurable)
//! of now, in either direction.
//!
//! - `v1`: HMAC-SHA256 with a `whsec_<base64>` secret: [`StandardWebhooksVerifier`].
//! - `v1a`: ed25519 with a `whpk_<base64>` public key (the sender signs with a
//!   `whsk_<base64>` secret key): [`StandardWebhooksAsymmetricVerifier`].
//!
//! ```
//! use hookroom::clock::ManualClock;
//! use hookroom::verify::{standard_webhooks, Secret, StandardWebhooksVerifier, Verifier};
//! use http::HeaderMap;
//!
//! // The specification's test vector.
//! let verifier = StandardWebhooksVerifier::new(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)?
//!     .with_clock(ManualClock::at_unix(1_614_265_330));
//! let mut headers = HeaderMap::new();
//! headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
//! headers.insert("webhook-timestamp", "1614265330".parse()?);
//! headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse()?);
//! assert!(verifier.verify(&headers, br#"{"test": 2432232314}"#).is_ok());
//!
//! // Sending: decode the secret once, sign each message.
//! let key = standard_webhooks::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let signature = standard_webhooks::sign(
//!     key.expose(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#,
//! );
//! assert_eq!(signature, headers["webhook-signature"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Asymmetric signatures:
//!
//! ```
//! use hookroom::clock::ManualClock;
//! use hookroom::verify::standard_webhooks::{StandardWebhooksAsymmetricVerifier, V1aSigningKey};
//! use hookroom::verify::Verifier;
//! use http::HeaderMap;
//!
//! let signing_key = V1aSigningKey::from_seed([7; 32]);
//! let public_key = signing_key.public_key_whpk(); // "whpk_…", give it to receivers
//!
//! let body = br#"{"type":"user.created"}"#;
//! let mut headers = HeaderMap::new();
//! headers.insert("webhook-id", "msg_1".parse()?);
//! headers.insert("webhook-timestamp", "1700000000".parse()?);
//! headers.insert("webhook-signature", signing_key.sign("msg_1", 1_700_000_000, body).parse()?);
//!
//! let verifier = StandardWebhooksAsymmetricVerifier::new([public_key.as_str()])?
//!     .with_clock(ManualClock::at_unix(1_700_000_000));
//! assert_eq!(verifier.verify(&headers, body)?.key_index(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hmac::Mac;
use http::{HeaderMap, HeaderName};
use zeroize::Zeroizing;

use super::common::{
    HmacKeys, HmacSha256, TAG_LEN, TimeWindow, decode_base64, encode_base64, header_once, hmac_tag,
    parse_unix_seconds, tags_equal, time_window_options,
};
use super::{ConfigError, Secret, Secrets, Verification, Verifier, VerifyError};

/// The header carrying the message id.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the signed Unix timestamp.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying the signature list.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The most entries a `webhook-signature` list may hold; a longer list is
/// [`VerifyError::MalformedHeader`] before any signature is checked.
///
/// Senders sign with one key, or a handful during a rotation. Without a cap,
/// one unauthenticated request could carry thousands of `v1a` entries, each
/// costing an ed25519 check (a SHA-512 over the whole body) per configured
/// key. Applies to both [`StandardWebhooksVerifier`] and
/// [`StandardWebhooksAsymmetricVerifier`].
pub const MAX_SIGNATURES: usize = 16;
const ID_NAME: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP_NAME: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE_NAME: HeaderName = HeaderName::from_static("webhook-signature");

const SECRET_PREFIX: &str = "whsec_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";
const SECRET_KEY_PREFIX: &str = "whsk_";

/// Key encodings in the wild are padded or not; accept both.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Verifies symmetric (`v1`, HMAC-SHA256) Standard Webhooks signatures. See
/// the [module docs](self).
#[derive(Debug, Clone)]
pub struct StandardWebhooksVerifier {
    keys: HmacKeys,
    window: TimeWindow,
}

impl StandardWebhooksVerifier {
    /// A verifier for `whsec_<base64>` secrets (the prefix is optional), with
    /// a 300 s tolerance and the system clock.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when a secret is not base64.
    pub fn new(secrets: impl Into<Secrets>) -> Result<Self, ConfigError> {
        let decoded: Secrets = secrets
            .into()
            .iter()
            .map(|s| decode_secret_bytes(s.expose()))
            .collect::<Result<_, _>>()?;
        Ok(Self::from_raw_keys(decoded))
    }

    /// A verifier for keys given as raw bytes (already decoded).
    pub fn from_raw_keys(keys: impl Into<Secrets>) -> Self {
        Self {
            keys: HmacKeys::new(&keys.into()),
            window: TimeWindow::new(),
        }
    }

    time_window_options!();
}

impl Verifier for StandardWebhooksVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        let request = SignedRequest::from_headers(headers, &self.window)?;
        // At most MAX_SIGNATURES entries (checked above): decode them once,
        // on the stack.
        let presented = Presented::collect(request.signatures, |entry| match entry {
            SignatureEntry::V1(tag) => Some(tag),
            _ => None,
        });
        let feed = |mac: &mut HmacSha256| {
            mac.update(request.id);
            mac.update(b".");
            mac.update(request.timestamp);
            mac.update(b".");
            mac.update(body);
        };
        for (index, tag) in self.keys.tags(feed) {
            if presented.iter().any(|p| tags_equal(&tag, p)) {
                return Ok(Verification::new(index));
            }
        }
        Err(VerifyError::SignatureMismatch)
    }
}

/// Verifies asymmetric (`v1a`, ed25519) Standard Webhooks signatures. See the
/// [module docs](self).
///
/// The ed25519 check needs the signed content in one piece, so unlike the
/// HMAC schemes this verifier copies `id.timestamp.body` into one buffer per
/// request. Signatures are checked with `verify_strict` (no small-order keys,
/// no malleable signatures). A request costs at most [`MAX_SIGNATURES`] ×
/// keys ed25519 checks, each hashing the whole signed content.
#[derive(Clone)]
pub struct StandardWebhooksAsymmetricVerifier {
    keys: Vec<VerifyingKey>,
    window: TimeWindow,
}

impl StandardWebhooksAsymmetricVerifier {
    /// A verifier for `whpk_<base64>` public keys (the prefix is optional).
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] when a key is not base64 of a valid
    /// 32-byte ed25519 public key.
    pub fn new<I, S>(public_keys: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = public_keys
            .into_iter()
            .map(|key| parse_public_key(key.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self::from_verifying_keys(keys))
    }

    /// A verifier for already-parsed public keys.
    pub fn from_verifying_keys(keys: Vec<VerifyingKey>) -> Self {
        Self {
            keys,
            window: TimeWindow::new(),
        }
    }

    time_window_options!();
}

impl fmt::Debug for StandardWebhooksAsymmetricVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardWebhooksAsymmetricVerifier")
            .field("public_keys", &self.keys.len())
            .field("window", &self.window)
            .finish()
    }
}

impl Verifier for StandardWebhooksAsymmetricVerifier {
    fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Verification, VerifyError> {
        let request = SignedRequest::from_headers(headers, &self.window)?;
        // The list holds at most MAX_SIGNATURES entries (checked above).
        let presented = Presented::collect(request.signatures, |entry| match entry {
            SignatureEntry::V1a(bytes) => Some(bytes),
            _ => None,
        });
        if presented.iter().next().is_none() {
            return Err(VerifyError::SignatureMismatch);
        }
        // Ed25519 hashes R ‖ A ‖ message, where R comes from the signature
        // and A is the key: the message cannot be hashed once and reused
        // across checks (that would be Ed25519ph, a different scheme). So
        // the message is built once, and each presented signature is checked
        // once against each key; the entry cap bounds the product.
        let message = signed_content(request.id, request.timestamp, body);
        for (index, key) in self.keys.iter().enumerate() {
            for signature in presented.iter() {
                let signature = Signature::from_bytes(signature);
                if key.verify_strict(&message, &signature).is_ok() {
                    return Ok(Verification::new(index));
                }
            }
        }
        Err(VerifyError::SignatureMismatch)
    }
}

/// The decoded signatures of one version, at most [`MAX_SIGNATURES`], kept
/// on the stack.
struct Presented<const N: usize> {
    items: [[u8; N]; MAX_SIGNATURES],
    len: usize,
}

impl<const N: usize> Presented<N> {
    fn collect(
        signatures: &[u8],
        mut pick: impl FnMut(SignatureEntry<'_>) -> Option<[u8; N]>,
    ) -> Self {
        let mut out = Self {
            items: [[0; N]; MAX_SIGNATURES],
            len: 0,
        };
        for entry in parse_signatures(signatures) {
            let Some(bytes) = pick(entry) else { continue };
            let Some(slot) = out.items.get_mut(out.len) else {
                break;
            };
            *slot = bytes;
            out.len += 1;
        }
        out
    }

    fn iter(&self) -> impl Iterator<Item = &[u8; N]> {
        self.items.iter().take(self.len)
    }
}

/// The three headers, checked for presence, format and freshness.
struct SignedRequest<'h> {
    id: &'h [u8],
    timestamp: &'h [u8],
    signatures: &'h [u8],
}

impl<'h> SignedRequest<'h> {
    fn from_headers(headers: &'h HeaderMap, window: &TimeWindow) -> Result<Self, VerifyError> {
        let id = header_once(headers, &ID_NAME, ID_HEADER)?;
        if id.is_empty() {
            return Err(VerifyError::MalformedHeader { header: ID_HEADER });
        }
        let timestamp = header_once(headers, &TIMESTAMP_NAME, TIMESTAMP_HEADER)?;
        let seconds = parse_unix_seconds(timestamp).ok_or(VerifyError::MalformedHeader {
            header: TIMESTAMP_HEADER,
        })?;
        let signatures = header_once(headers, &SIGNATURE_NAME, SIGNATURE_HEADER)?;
        let entries = signatures
            .split(|&b| b == b' ')
            .filter(|entry| !entry.is_empty());
        if signatures.trim_ascii().is_empty()
            || entries.take(MAX_SIGNATURES + 1).count() > MAX_SIGNATURES
        {
            return Err(VerifyError::MalformedHeader {
                header: SIGNATURE_HEADER,
            });
        }
        window.check(seconds)?;
        Ok(Self {
            id,
            timestamp,
            signatures,
        })
    }
}

/// One entry of a `webhook-signature` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEntry<'a> {
    /// `v1,<base64>`: a 32-byte HMAC-SHA256 tag.
    V1([u8; TAG_LEN]),
    /// `v1a,<base64>`: a 64-byte ed25519 signature.
    V1a([u8; 64]),
    /// A known version whose signature is not the exact base64 length and
    /// alphabet the version requires (never compared).
    Malformed {
        /// The entry's version.
        version: &'a [u8],
    },
    /// A version this crate does not know, or an entry without a comma.
    Unknown {
        /// The entry's version (the whole entry when it has no comma).
        version: &'a [u8],
    },
}

/// Iterator over the entries of a `webhook-signature` value; see
/// [`parse_signatures`].
#[derive(Debug, Clone)]
pub struct Signatures<'a> {
    rest: &'a [u8],
}

impl<'a> Signatures<'a> {
    /// Takes the next `len`-byte signature when it ends the entry, without
    /// scanning it for the following space (the common, well-formed case).
    fn take_exact(&mut self, after_comma: &'a [u8], len: usize) -> Option<&'a [u8]> {
        let (signature, after) = after_comma.split_at_checked(len)?;
        if !matches!(after.first(), None | Some(b' ')) {
            return None;
        }
        self.rest = after;
        Some(signature)
    }

    /// Takes the rest of the entry, up to the next space.
    fn take_entry(&mut self, from: &'a [u8]) -> &'a [u8] {
        let end = from.iter().position(|&b| b == b' ').unwrap_or(from.len());
        let (entry, after) = from.split_at(end);
        self.rest = after;
        entry
    }
}

impl<'a> Iterator for Signatures<'a> {
    type Item = SignatureEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.iter().position(|&b| b != b' ')?;
        let entry = self.rest.get(start..).unwrap_or_default();
        // Versions are short: find the comma (or the entry's end) first.
        let comma = entry.iter().position(|&b| b == b',' || b == b' ');
        let Some(comma) = comma.filter(|&i| entry.get(i) == Some(&b',')) else {
            let version = self.take_entry(entry);
            return Some(SignatureEntry::Unknown { version });
        };
        let (version, after_version) = entry.split_at(comma);
        let after_comma = after_version.get(1..).unwrap_or_default();
        let expected = match version {
            b"v1" => TAG_LEN.div_ceil(3) * 4,
            b"v1a" => 64usize.div_ceil(3) * 4,
            _ => {
                self.take_entry(after_comma);
                return Some(SignatureEntry::Unknown { version });
            }
        };
        if let Some(signature) = self.take_exact(after_comma, expected) {
            let decoded = match version {
                b"v1" => decode_base64::<TAG_LEN>(signature).map(SignatureEntry::V1),
                _ => decode_base64::<64>(signature).map(SignatureEntry::V1a),
            };
            if decoded.is_some() {
                return decoded;
            }
        }
        // Not a well-formed signature: the entry ends at the next space,
        // wherever that is (it may lie inside the `expected` bytes taken above).
        self.take_entry(after_comma);
        Some(SignatureEntry::Malformed { version })
    }
}

/// Splits a `webhook-signature` value into its space-separated entries,
/// decoding each known version into a stack array. Never allocates.
///
/// ```
/// use hookroom::verify::standard_webhooks::{parse_signatures, SignatureEntry};
///
/// let entries: Vec<_> = parse_signatures(b"v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v2,xyz v1,short").collect();
/// assert_eq!(entries[0], SignatureEntry::V1([0; 32]));
/// assert_eq!(entries[1], SignatureEntry::Unknown { version: b"v2" });
/// assert_eq!(entries[2], SignatureEntry::Malformed { version: b"v1" });
/// ```
pub fn parse_signatures(value: &[u8]) -> Signatures<'_> {
    Signatures { rest: value }
}

/// Decodes a `whsec_<base64>` secret (the prefix is optional) into the raw
/// HMAC key.
///
/// # Errors
/// [`ConfigError::InvalidKey`] when the rest is not base64 or is empty;
/// [`ConfigError::EmptySecret`] when the key is only whitespace bytes.
pub fn decode_secret(secret: &str) -> Result<Secret, ConfigError> {
    decode_secret_bytes(secret.as_bytes())
}

fn decode_secret_bytes(secret: &[u8]) -> Result<Secret, ConfigError> {
    const INVALID: ConfigError = ConfigError::InvalidKey {
        expected: "`whsec_` followed by base64",
    };
    let encoded = secret
        .strip_prefix(SECRET_PREFIX.as_bytes())
        .unwrap_or(secret);
    let key = Zeroizing::new(KEY_BASE64.decode(encoded).map_err(|_| INVALID)?);
    if key.is_empty() {
        return Err(INVALID);
    }
    Secret::new(key.as_slice())
}

fn parse_public_key(key: &str) -> Result<VerifyingKey, ConfigError> {
    const INVALID: ConfigError = ConfigError::InvalidKey {
        expected: "`whpk_` followed by base64 of a 32-byte ed25519 public key",
    };
    let encoded = key.strip_prefix(PUBLIC_KEY_PREFIX).unwrap_or(key);
    let bytes = KEY_BASE64.decode(encoded).map_err(|_| INVALID)?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| INVALID)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| INVALID)
}

fn signed_content(id: &[u8], timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    message.extend_from_slice(id);
    message.push(b'.');
    message.extend_from_slice(timestamp);
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

/// The `webhook-signature` entry (`v1,<base64>`) a sender computes with the
/// raw HMAC `key` (see [`decode_secret`]).
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let tag = hmac_tag(
        key,
        &[msg_id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", encode_base64(&tag))
}

/// An ed25519 secret key for sending `v1a` signatures. Redacted in `Debug`,
/// wiped on drop.
#[derive(Clone)]
pub struct V1aSigningKey {
    key: SigningKey,
}

impl V1aSigningKey {
    /// Parses `whsk_<base64>` (prefix optional) of either the 32-byte seed or
    /// the 64-byte seed-and-public-key form.
    ///
    /// # Errors
    /// [`ConfigError::InvalidKey`] for anything else, or when the public half
    /// of a 64-byte key does not belong to its seed.
    pub fn from_whsk(secret_key: &str) -> Result<Self, ConfigError> {
        const INVALID: ConfigError = ConfigError::InvalidKey {
            expected: "`whsk_` followed by base64 of a 32- or 64-byte ed25519 secret key",
        };
        let encoded = secret_key
            .strip_prefix(SECRET_KEY_PREFIX)
            .unwrap_or(secret_key);
        let bytes = Zeroizing::new(KEY_BASE64.decode(encoded).map_err(|_| INVALID)?);
        let key = if let Ok(seed) = <&[u8; 32]>::try_from(bytes.as_slice()) {
            SigningKey::from_bytes(seed)
        } else if let Ok(pair) = <&[u8; 64]>::try_from(bytes.as_slice()) {
            SigningKey::from_keypair_bytes(pair).map_err(|_| INVALID)?
        } else {
            return Err(INVALID);
        };
        Ok(Self { key })
    }

    /// A signing key from a 32-byte seed (use a CSPRNG to make one).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut seed = Zeroizing::new(seed);
        let key = SigningKey::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut *seed);
        Self { key }
    }

    /// The secret key as `whsk_<base64 of the 32-byte seed>`. Handle with care.
    pub fn to_whsk(&self) -> Secret {
        let seed = Zeroizing::new(self.key.to_bytes());
        let encoded = Zeroizing::new(encode_base64(seed.as_slice()));
        Secret::non_empty(format!("{SECRET_KEY_PREFIX}{}", encoded.as_str()).into_bytes())
    }

    /// The matching public key as `whpk_<base64>`, for receivers.
    pub fn public_key_whpk(&self) -> String {
        format!(
            "{PUBLIC_KEY_PREFIX}{}",
            encode_base64(self.key.verifying_key().as_bytes())
        )
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The `webhook-signature` entry (`v1a,<base64>`) for this message.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let message = signed_content(msg_id.as_bytes(), timestamp.as_bytes(), body);
        let signature = self.key.sign(&message);
        format!("v1a,{}", encode_base64(&signature.to_bytes()))
    }
}

impl fmt::Debug for V1aSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V1aSigningKey")
            .field("public_key", &self.public_key_whpk())
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::verify::secret::test_secrets;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ID_HEADER, ID.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, TS.to_string().parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    fn verifier() -> StandardWebhooksVerifier {
        StandardWebhooksVerifier::new(test_secrets(SECRET))
            .unwrap()
            .with_clock(ManualClock::at_unix(TS))
    }

    #[test]
    fn any_entry_of_the_list_may_match() {
        let list = format!("v1a,{} v2,abc {SIG}  v1,{}", "A".repeat(88), "B".repeat(44));
        assert_eq!(
            verifier().verify(&headers(&list), BODY),
            Ok(Verification::new(0))
        );
    }

    #[test]
    fn lists_without_a_matching_v1_entry_are_mismatches() {
        for list in [
            "v1,",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,G0HM9SSE+OTPJTGT/TMIKTSYZLE3UFJELVLNIOLJ1OE=",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                verifier().verify(&headers(list), BODY),
                Err(VerifyError::SignatureMismatch),
                "{list}"
            );
        }
        assert_eq!(
            verifier().verify(&headers("  "), BODY),
            Err(VerifyError::MalformedHeader {
                header: SIGNATURE_HEADER
            })
        );
    }

    proptest::proptest! {
        /// The fast path (taking a signature by its known length) splits
        /// exactly like splitting on spaces.
        #[test]
        fn entries_are_the_space_separated_pieces(
            pieces in proptest::collection::vec("(v1|v1a|v2|)(,|)[A-Za-z0-9+/= ]{0,90}", 0..4),
        ) {
            let value = pieces.join(" ");
            let expected: Vec<&[u8]> = value
                .as_bytes()
                .split(|&b| b == b' ')
                .filter(|p| !p.is_empty())
                .collect();
            let parsed: Vec<SignatureEntry<'_>> = parse_signatures(value.as_bytes()).collect();
            proptest::prop_assert_eq!(parsed.len(), expected.len());
            for (entry, piece) in parsed.iter().zip(&expected) {
                let (version, signature) = match piece.iter().position(|&b| b == b',') {
                    Some(i) => (&piece[..i], &piece[i + 1..]),
                    None => (*piece, &b""[..]),
                };
                let reference = match (version, piece.contains(&b',')) {
                    (b"v1", true) => decode_base64::<TAG_LEN>(signature)
                        .map_or(SignatureEntry::Malformed { version }, SignatureEntry::V1),
                    (b"v1a", true) => decode_base64::<64>(signature)
                        .map_or(SignatureEntry::Malformed { version }, SignatureEntry::V1a),
                    _ => SignatureEntry::Unknown { version },
                };
                proptest::prop_assert_eq!(entry, &reference);
            }
        }
    }

    #[test]
    fn a_space_inside_the_expected_length_ends_the_entry() {
        let value = format!(
            "v1,AAAA v2,{} v1,{}",
            "B".repeat(29),
            SIG.strip_prefix("v1,").unwrap()
        );
        let entries: Vec<_> = parse_signatures(value.as_bytes()).collect();
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert_eq!(entries[0], SignatureEntry::Malformed { version: b"v1" });
        assert_eq!(entries[1], SignatureEntry::Unknown { version: b"v2" });
        assert!(matches!(entries[2], SignatureEntry::V1(_)));
    }

    #[test]
    fn secrets_without_prefix_and_rotation() {
        let verifier = StandardWebhooksVerifier::new(test_secrets([
            "whsec_AAAA",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ]))
        .unwrap()
        .with_clock(ManualClock::at_unix(TS));
        assert_eq!(
            verifier.verify(&headers(SIG), BODY),
            Ok(Verification::new(1))
        );
        assert!(matches!(
            StandardWebhooksVerifier::new(test_secrets("whsec_not base64!")),
            Err(ConfigError::InvalidKey { .. })
        ));
        assert!(StandardWebhooksVerifier::new(test_secrets("whsec_")).is_err());
    }

    #[test]
    fn tolerance_both_ways() {
        let clock = ManualClock::at_unix(TS + 301);
        let verifier = StandardWebhooksVerifier::new(test_secrets(SECRET))
            .unwrap()
            .with_clock(clock.clone());
        assert_eq!(
            verifier.verify(&headers(SIG), BODY),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        clock.set_unix(TS - 301);
        assert_eq!(
            verifier.verify(&headers(SIG), BODY),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        clock.set_unix(TS - 300);
        assert!(verifier.verify(&headers(SIG), BODY).is_ok());
    }

    #[test]
    fn v1a_round_trip_rotation_and_tampering() {
        let old = V1aSigningKey::from_seed([1; 32]);
        let new = V1aSigningKey::from_seed([2; 32]);
        let verifier =
            StandardWebhooksAsymmetricVerifier::new([new.public_key_whpk(), old.public_key_whpk()])
                .unwrap()
                .with_clock(ManualClock::at_unix(TS));
        let signature = old.sign(ID, TS, BODY);
        assert_eq!(
            verifier.verify(&headers(&signature), BODY),
            Ok(Verification::new(1))
        );
        assert_eq!(
            verifier.verify(&headers(&signature), b"{}"),
            Err(VerifyError::SignatureMismatch)
        );
        // A v1 (HMAC) entry never satisfies the asymmetric verifier.
        assert_eq!(
            verifier.verify(&headers(SIG), BODY),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn whsk_forms_round_trip() {
        let key = V1aSigningKey::from_seed([9; 32]);
        let whsk = key.to_whsk();
        let text = std::str::from_utf8(whsk.expose()).unwrap();
        assert!(text.starts_with("whsk_"));
        let again = V1aSigningKey::from_whsk(text).unwrap();
        assert_eq!(again.public_key_whpk(), key.public_key_whpk());
        let mut pair = [9u8; 64];
        pair[32..].copy_from_slice(key.verifying_key().as_bytes());
        let long = format!("whsk_{}", encode_base64(&pair));
        assert_eq!(
            V1aSigningKey::from_whsk(&long).unwrap().public_key_whpk(),
            key.public_key_whpk()
        );
        pair[63] ^= 1;
        assert!(V1aSigningKey::from_whsk(&format!("whsk_{}", encode_base64(&pair))).is_err());
        assert!(!format!("{key:?}").contains(text));
    }

    #[test]
    fn bad_public_keys_are_config_errors() {
        for key in ["whpk_", "whpk_AAAA", "whpk_!!!"] {
            assert!(
                StandardWebhooksAsymmetricVerifier::new([key]).is_err(),
                "{key}"
            );
        }
    }
}
