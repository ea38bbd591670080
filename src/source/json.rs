//! Lenient, borrowed JSON extraction shared by the source parsers.
//!
//! Parsers deserialize into small typed structs that name only the fields
//! they need; serde skips everything else without building a tree. The leaf
//! and object types here never fail on a wrongly-typed value: they record the
//! mismatch so the parser can report the exact path of the bad field instead
//! of serde's path-less message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::ParseError;

/// Any JSON value, reduced to what a parser can use: a string or a number is
/// kept (borrowed from the body when it has no escapes), anything else is
/// only recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// A JSON string.
    Str(Cow<'a, str>),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// A number with a fraction or exponent.
    F64(f64),
    /// `true` or `false`.
    Bool(bool),
    /// An object or an array (skipped).
    Composite,
}

impl<'a> Scalar<'a> {
    /// The string, if this is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text for strings, numbers and booleans (used for ids that some senders
    /// type as numbers).
    pub(crate) fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Str(s) => Some(Cow::Borrowed(s)),
            Self::U64(n) => Some(Cow::Owned(n.to_string())),
            Self::I64(n) => Some(Cow::Owned(n.to_string())),
            Self::F64(n) => Some(Cow::Owned(n.to_string())),
            Self::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Self::Composite => None,
        }
    }
}

struct ScalarVisitor<'a>(std::marker::PhantomData<Scalar<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(Scalar::Composite)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Scalar::Composite)
    }
}

impl<'de: 'a, 'a> de::Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

/// An object field parsed as `T` when it is a JSON object, and recorded as
/// [`Obj::WrongType`] (its value skipped) when it is anything else.
#[derive(Debug)]
pub(crate) enum Obj<T> {
    /// The value was an object.
    Ok(T),
    /// The value was a string, number, boolean or array.
    WrongType,
}

struct ObjVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj::Ok)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(Obj::WrongType)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Obj::WrongType)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Obj::WrongType)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Obj::WrongType)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Obj::WrongType)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Obj::WrongType)
    }
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjVisitor(std::marker::PhantomData))
    }
}

/// The length of a JSON array; any other value counts as empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ArrayLen(pub(crate) usize);

struct ArrayLenVisitor;

impl<'de> Visitor<'de> for ArrayLenVisitor {
    type Value = ArrayLen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n = n.saturating_add(1);
        }
        Ok(ArrayLen(n))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(ArrayLen(0))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(ArrayLen(0))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(ArrayLen(0))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(ArrayLen(0))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(ArrayLen(0))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(ArrayLen(0))
    }
}

impl<'de> de::Deserialize<'de> for ArrayLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ArrayLenVisitor)
    }
}

/// An optional object field: `None` when absent or `null`.
pub(crate) type OptObj<T> = Option<Obj<T>>;
/// An optional leaf field: `None` when absent or `null`.
pub(crate) type OptScalar<'a> = Option<Scalar<'a>>;

fn missing(path: &str) -> ParseError {
    ParseError::MissingField {
        field: path.to_owned(),
    }
}

/// The object at `path`, or an error naming `path`.
pub(crate) fn req_obj<'t, T>(v: &'t OptObj<T>, path: &str) -> Result<&'t T, ParseError> {
    match v {
        Some(Obj::Ok(t)) => Ok(t),
        _ => Err(missing(path)),
    }
}

/// The object at `path` if present; an error naming `path` if it is present
/// with another type.
pub(crate) fn opt_obj<'t, T>(v: &'t OptObj<T>, path: &str) -> Result<Option<&'t T>, ParseError> {
    match v {
        None => Ok(None),
        Some(Obj::Ok(t)) => Ok(Some(t)),
        Some(Obj::WrongType) => Err(missing(path)),
    }
}

/// The string at `path`, or an error naming `path`.
pub(crate) fn req_str<'t>(v: &'t OptScalar<'_>, path: &str) -> Result<&'t str, ParseError> {
    v.as_ref()
        .and_then(Scalar::as_str)
        .ok_or_else(|| missing(path))
}

/// The string at `path` if present; an error naming `path` if it is present
/// with another type.
pub(crate) fn opt_str<'t>(v: &'t OptScalar<'_>, path: &str) -> Result<Option<&'t str>, ParseError> {
    match v {
        None => Ok(None),
        Some(s) => s.as_str().map(Some).ok_or_else(|| missing(path)),
    }
}

/// The string at `path` if it is one; any other type reads as absent. For
/// fields that are only decoration (descriptions, URLs).
pub(crate) fn lax_str<'t>(v: &'t OptScalar<'_>) -> Option<&'t str> {
    v.as_ref().and_then(Scalar::as_str)
}

/// The non-negative integer at `path`, or an error naming `path`.
pub(crate) fn req_u64(v: &OptScalar<'_>, path: &str) -> Result<u64, ParseError> {
    match v {
        Some(Scalar::U64(n)) => Ok(*n),
        _ => Err(missing(path)),
    }
}

/// Deserializes a whole body into `T`, which must be a JSON object encoded
/// in UTF-8.
///
/// Syntax errors become [`ParseError::InvalidBody`] with serde's position
/// (never the body's text); a body that is valid JSON but not an object is
/// reported the same way.
pub(crate) fn from_body<'a, T: de::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ParseError> {
    let text = utf8(body)?;
    match serde_json::from_str::<Obj<T>>(text) {
        Ok(Obj::Ok(t)) => Ok(t),
        Ok(Obj::WrongType) => Err(ParseError::InvalidBody {
            reason: "expected a JSON object".to_owned(),
        }),
        Err(e) => Err(invalid_json(&e)),
    }
}

/// The body as text. JSON is UTF-8 (RFC 8259), and serde_json does not
/// check the strings it skips, so the whole body is checked here once: a
/// stored payload is always valid JSON for whoever reads it later.
pub(crate) fn utf8(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| ParseError::InvalidBody {
        reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
    })
}

/// A body error from a serde_json error, keeping only its category and
/// position: serde's message can quote the offending value.
pub(crate) fn invalid_json(e: &serde_json::Error) -> ParseError {
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable JSON",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "unexpected JSON structure",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    ParseError::InvalidBody {
        reason: format!("{what} at line {} column {}", e.line(), e.column()),
    }
}

/// One step of a JSON pointer (RFC 6901), already unescaped.
pub(crate) type PointerToken = Box<str>;

/// Splits an RFC 6901 pointer (`""` or `/a/b~1c`) into unescaped tokens.
/// Returns `None` when `pointer` is neither empty nor starts with `/`.
pub(crate) fn parse_pointer(pointer: &str) -> Option<Box<[PointerToken]>> {
    if pointer.is_empty() {
        return Some(Box::new([]));
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~").into_boxed_str())
            .collect(),
    )
}

// ---- The streaming path reader -------------------------------------------
//
// One reader for every "value at this path" question asked of a raw body:
// the generic source's RFC 6901 pointers (`seek`) and the routes' payload
// filters (`route::FieldFilter::matches_json`). It walks the body once,
// follows the path, skips every other subtree without building it, and
// hands the value at the end of the path to a `Probe`.
//
// Rules shared by every probe:
// - an object key on the path is compared after unescaping; when a key
//   appears twice the last one decides (as when the body is parsed into a
//   `serde_json::Value`);
// - a scalar met before the end of the path means the path does not exist;
// - the whole body is read, so trailing garbage is an error.
// Arrays on the path depend on the probe: an RFC 6901 index, or any element.

/// What to read at the end of a path, and how arrays on it are crossed.
pub(crate) trait Probe<'de>: Copy {
    /// The answer.
    type Out;
    /// The visitor that reads the value at the end of the path.
    type Leaf: Visitor<'de, Value = Self::Out>;
    /// Arrays met on the path (and at its end) fan out: the answer is a hit
    /// if any element is. Otherwise a path token selects one element by its
    /// RFC 6901 index (`0`, or digits without a leading zero).
    const FAN_OUT: bool;
    /// The answer when the path does not exist.
    fn absent(self) -> Self::Out;
    /// Whether a fanned-out answer is final (no later element can change it).
    fn is_hit(out: &Self::Out) -> bool;
    /// The leaf visitor.
    fn leaf(self) -> Self::Leaf;
}

/// Reads `body` once and answers `probe` for the value at `path`.
pub(crate) fn walk<'de, P: Probe<'de>>(
    body: &'de str,
    path: &[PointerToken],
    probe: P,
) -> Result<P::Out, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(body);
    let out = Walk { path, probe }.deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

struct Walk<'p, P> {
    path: &'p [PointerToken],
    probe: P,
}

impl<'de, P: Probe<'de>> DeserializeSeed<'de> for Walk<'_, P> {
    type Value = P::Out;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.path.is_empty() && !P::FAN_OUT {
            d.deserialize_any(self.probe.leaf())
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de, P: Probe<'de>> Visitor<'de> for Walk<'_, P> {
    type Value = P::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some((head, rest)) = self.path.split_first() else {
            return self.probe.leaf().visit_map(map);
        };
        let mut found = self.probe.absent();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if *key.0 == **head {
                found = map.next_value_seed(Walk {
                    path: rest,
                    probe: self.probe,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if P::FAN_OUT {
            // Every element is read (the rest of the body must still be
            // valid); after a hit the rest are only skipped.
            let mut found = self.probe.absent();
            while let Some(out) = seq.next_element_seed(Walk { ..self })? {
                if P::is_hit(&out) {
                    found = out;
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    break;
                }
            }
            return Ok(found);
        }
        let Some((head, rest)) = self.path.split_first() else {
            return self.probe.leaf().visit_seq(seq);
        };
        let index = if head.len() > 1 && head.starts_with('0') {
            None
        } else {
            head.parse::<usize>().ok()
        };
        let mut found = self.probe.absent();
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(Walk {
                    path: rest,
                    probe: self.probe,
                })? {
                    Some(out) => found = out,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i = i.saturating_add(1);
        }
        Ok(found)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_borrowed_str(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_str(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_u64(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_i64(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_f64(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_bool(v),
            _ => Ok(self.probe.absent()),
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        match self.path {
            [] => self.probe.leaf().visit_unit(),
            _ => Ok(self.probe.absent()),
        }
    }
}

/// An object key, borrowed from the body when it has no escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The value at an RFC 6901 pointer, as a [`Scalar`] (`null` reads as
/// absent). `Ok(None)`: the path does not exist.
pub(crate) fn seek<'a>(
    body: &'a str,
    tokens: &[PointerToken],
) -> Result<Option<Scalar<'a>>, serde_json::Error> {
    walk(body, tokens, PointerProbe)
}

#[derive(Clone, Copy)]
struct PointerProbe;

impl<'de> Probe<'de> for PointerProbe {
    type Out = Option<Scalar<'de>>;
    type Leaf = OptScalarVisitor<'de>;
    const FAN_OUT: bool = false;
    fn absent(self) -> Self::Out {
        None
    }
    fn is_hit(out: &Self::Out) -> bool {
        out.is_some()
    }
    fn leaf(self) -> Self::Leaf {
        OptScalarVisitor(ScalarVisitor(std::marker::PhantomData))
    }
}

/// A [`Scalar`], with `null` as `None`.
struct OptScalarVisitor<'a>(ScalarVisitor<'a>);

impl<'de: 'a, 'a> Visitor<'de> for OptScalarVisitor<'a> {
    type Value = Option<Scalar<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.0.visit_borrowed_str(v).map(Some)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(v).map(Some)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.0.visit_string(v).map(Some)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(v).map(Some)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.visit_i64(v).map(Some)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.visit_f64(v).map(Some)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.0.visit_bool(v).map(Some)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(seq).map(Some)
    }
}

/// Lowercase hex SHA-256 of `body`: the delivery id of senders that give none.
pub(crate) fn body_sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// The first `max` characters of `text` (never splits a character).
pub(crate) fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

/// A header's value as text, if present and visible ASCII.
pub(crate) fn header_str<'h>(
    headers: &'h http::HeaderMap,
    name: &http::HeaderName,
) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_finds_nested_values_and_array_elements() {
        let body = r#"{"a":{"b":[10,{"c~/d":"x\"y"}]},"z":1}"#;
        let t = parse_pointer("/a/b/1/c~0~1d").unwrap();
        assert_eq!(seek(body, &t).unwrap(), Some(Scalar::Str("x\"y".into())));
        let t = parse_pointer("/a/b/0").unwrap();
        assert_eq!(seek(body, &t).unwrap(), Some(Scalar::U64(10)));
        let t = parse_pointer("/a/b/01").unwrap();
        assert_eq!(seek(body, &t).unwrap(), None);
        let t = parse_pointer("/z/deeper").unwrap();
        assert_eq!(seek(body, &t).unwrap(), None);
        let t = parse_pointer("/a").unwrap();
        assert_eq!(seek(body, &t).unwrap(), Some(Scalar::Composite));
        assert_eq!(seek(r#"{"a":null}"#, &t).unwrap(), None);
        assert!(parse_pointer("a/b").is_none());
        assert!(seek("{\"a\":1} x", &t).is_err());
    }

    /// The reader's shared rule: the last of duplicate keys decides, as in a
    /// parsed `serde_json::Value`.
    #[test]
    fn seek_takes_the_last_of_duplicate_keys_like_a_parsed_tree() {
        let body = r#"{"a":1,"b":2,"a":{"x":3}}"#;
        let tree: serde_json::Value = serde_json::from_str(body).unwrap();
        let t = parse_pointer("/a/x").unwrap();
        assert_eq!(seek(body, &t).unwrap(), Some(Scalar::U64(3)));
        assert_eq!(tree.pointer("/a/x"), Some(&serde_json::json!(3)));
    }

    #[test]
    fn truncate_chars_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("ab", 5), "ab");
        assert_eq!(truncate_chars("日本語テキスト", 3), "日本語");
    }

    #[test]
    fn from_body_rejects_non_objects_without_echoing_the_body() {
        #[derive(serde::Deserialize)]
        struct T {}
        let err = from_body::<T>(b"[\"secret\"]").err().unwrap();
        assert!(!err.to_string().contains("secret"));
        let err = from_body::<T>(b"{\"x\":").err().unwrap();
        assert!(matches!(err, ParseError::InvalidBody { .. }));
        // Invalid UTF-8 in a string that would only be skipped.
        let err = from_body::<T>(b"{\"skipped\":\"\xfb\"}").err().unwrap();
        assert_eq!(
            err,
            ParseError::InvalidBody {
                reason: "invalid UTF-8 at byte 12".into()
            }
        );
    }

    /// `seek` agrees with `serde_json::Value::pointer` on arbitrary bodies,
    /// duplicate keys included.
    mod agree {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::{Scalar, parse_pointer, seek};

        fn text() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                Just("null".to_owned()),
                Just("true".to_owned()),
                (-2i64..3).prop_map(|n| n.to_string()),
                Just(r#""x""#.to_owned()),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|items| format!("[{}]", items.join(","))),
                    prop::collection::vec((prop_oneof![Just("a"), Just("b")], inner), 0..4)
                        .prop_map(|fields| {
                            let fields: Vec<String> = fields
                                .into_iter()
                                .map(|(k, v)| format!("{}:{v}", json!(k)))
                                .collect();
                            format!("{{{}}}", fields.join(","))
                        }),
                ]
            })
        }

        fn expected(v: Option<&Value>) -> Option<Scalar<'static>> {
            match v? {
                Value::Null => None,
                Value::Bool(b) => Some(Scalar::Bool(*b)),
                Value::Number(n) => Some(
                    n.as_u64()
                        .map_or_else(|| Scalar::I64(n.as_i64().unwrap_or_default()), Scalar::U64),
                ),
                Value::String(s) => Some(Scalar::Str(s.clone().into())),
                Value::Array(_) | Value::Object(_) => Some(Scalar::Composite),
            }
        }

        proptest! {
            #[test]
            fn seek_matches_the_tree(
                body in text(),
                path in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("0"), Just("1")], 0..4),
            ) {
                let pointer: String = path.iter().map(|t| format!("/{t}")).collect();
                let tokens = parse_pointer(&pointer).unwrap();
                let tree: Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(seek(&body, &tokens).unwrap(), expected(tree.pointer(&pointer)), "{}", body);
            }
        }
    }
}
