//! [`Payload`]: the raw webhook body, kept byte-exact and readable as JSON.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A task's payload: the request body exactly as received.
///
/// In JSON (the Task API, stored rows) it is written so that reading it back
/// gives the same bytes:
///
/// - a body that is exactly one JSON object, array, number, boolean or
///   `null` (no surrounding whitespace) is embedded as is, key order and
///   spacing included;
/// - any other body (form-encoded like Slack's, a bare JSON string, JSON with
///   surrounding whitespace) is written as a JSON string holding its text.
///
/// Reading takes the embedded value's exact text, or a string's contents, so
/// a round trip is byte-exact for every UTF-8 body. A body that is not UTF-8
/// is written with U+FFFD in place of invalid bytes, which cannot be undone.
///
/// Reading needs a `serde_json` deserializer (it keeps the embedded text
/// through [`RawValue`]); other formats, binary ones included, cannot read
/// a payload back. A store on another format keeps the payload's
/// [bytes](Self::as_bytes) itself and rebuilds it with [`Payload::new`].
///
/// ```
/// use hookroom::task::Payload;
///
/// for body in [&br#"{"z":1, "a":[true,null]}"#[..], br#""a JSON string""#, b"token=x&team_id=T1"] {
///     let payload = Payload::new(body.to_vec());
///     let json = serde_json::to_string(&payload)?;
///     let back: Payload = serde_json::from_str(&json)?;
///     assert_eq!(back.as_bytes(), body);
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload(Bytes);

impl Payload {
    /// Wraps raw bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, cheaply cloned.
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the payload as JSON into `T`.
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Parses the payload as a JSON value.
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Payload {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

impl From<&'static str> for Payload {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Self(Bytes::from(v))
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_slice::<&RawValue>(&self.0) {
            // Embedded only when nothing would be lost: the raw text is the
            // whole body, and it does not read back as a string's contents.
            Ok(raw) if raw.get().len() == self.0.len() && !raw.get().starts_with('"') => {
                raw.serialize(serializer)
            }
            _ => serializer.serialize_str(&String::from_utf8_lossy(&self.0)),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Keeps the exact text of an embedded value (never re-serialized), or
    /// the contents of a string.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if text.starts_with('"') {
            let contents: String = serde_json::from_str(text).map_err(serde::de::Error::custom)?;
            Ok(Self(Bytes::from(contents)))
        } else {
            Ok(Self(Bytes::copy_from_slice(text.as_bytes())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: &[u8]) -> Vec<u8> {
        let json = serde_json::to_string(&Payload::new(body.to_vec())).unwrap();
        let back: Payload = serde_json::from_str(&json).unwrap();
        back.as_bytes().to_vec()
    }

    /// Deserializing keeps the bytes as sent: going through
    /// `serde_json::Value` would sort keys, drop spacing and take the quotes
    /// off a JSON string.
    #[test]
    fn round_trips_are_byte_exact() {
        for body in [
            &br#"{"zeta":1,"alpha":{"b":2,"a":1}}"#[..],
            br#"{ "spaced" : [ 1 , 2.50 ] }"#,
            br#""a JSON string""#,
            br#""""#,
            b"token=x&team_id=T1&text=%22hi%22",
            b" {\"a\":1}\n",
            b"42",
            b"null",
            b"",
            "\u{e9}t\u{e9}".as_bytes(),
        ] {
            assert_eq!(round_trip(body), body, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn json_objects_are_embedded_and_strings_are_strings() {
        let json = |b: &'static [u8]| serde_json::to_string(&Payload::new(b)).unwrap();
        assert_eq!(json(br#"{"b":1,"a":2}"#), r#"{"b":1,"a":2}"#);
        assert_eq!(json(br#""s""#), r#""\"s\"""#);
        assert_eq!(json(b"a=b"), r#""a=b""#);
        let nested: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"payload":{}}}"#, json(br#"{"b":1,"a":2}"#)))
                .unwrap();
        assert_eq!(nested["payload"]["a"], 2);
    }
}
