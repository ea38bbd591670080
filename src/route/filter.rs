//! Payload filters: `{"label": "AI-WIP"}`, `{"pull_request.draft": false}`.

use std::fmt;

use serde::de;
use serde_json::Value;

use crate::source::json::{Key, Probe, walk};

/// One `field: value` condition of a route's `filter`.
///
/// `field` is a dotted path into the JSON payload (`pull_request.user.login`).
/// Matching rules, chosen so that `{"label": "AI-WIP"}` reads the
/// way GitHub payloads are shaped:
///
/// 1. An **array** met anywhere on the path matches if **any element**
///    matches the rest of the path (`issue.labels` over GitHub's label list,
///    `issue.labels.name` too).
/// 2. An **object** at the end of the path is compared through its `name`
///    field (GitHub's `label`, `labels[]`, `milestone`, … are objects with a
///    `name`): `{"label": "AI-WIP"}` matches `"label": {"name": "AI-WIP", …}`.
/// 3. Otherwise the value must equal the expected one with the same JSON
///    type: strings to strings, booleans to booleans, numbers by value
///    (`1` equals `1.0`). `"42"` does not match `42`.
///
/// Filters only see JSON payloads; a form-encoded body never matches one.
#[derive(Clone, PartialEq)]
pub struct FieldFilter {
    field: Box<str>,
    path: Box<[Box<str>]>,
    expected: Expected,
}

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Str(Box<str>),
    Num(f64),
    Bool(bool),
}

/// Why a filter entry is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// The field path is empty or has an empty segment (`a..b`).
    EmptyPathSegment,
    /// The expected value is `null`, an array or an object.
    UnsupportedValue,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EmptyPathSegment => "the field path is empty or has an empty segment",
            Self::UnsupportedValue => "the expected value must be a string, a number or a boolean",
        })
    }
}

impl std::error::Error for FilterError {}

impl FieldFilter {
    /// Compiles one `field: expected` condition.
    ///
    /// # Errors
    /// See [`FilterError`].
    pub fn new(field: &str, expected: &Value) -> Result<Self, FilterError> {
        let path: Box<[Box<str>]> = field.split('.').map(Box::from).collect();
        if path.iter().any(|s| s.is_empty()) {
            return Err(FilterError::EmptyPathSegment);
        }
        let expected = match expected {
            Value::String(s) => Expected::Str(s.as_str().into()),
            Value::Bool(b) => Expected::Bool(*b),
            Value::Number(n) => Expected::Num(n.as_f64().ok_or(FilterError::UnsupportedValue)?),
            Value::Null | Value::Array(_) | Value::Object(_) => {
                return Err(FilterError::UnsupportedValue);
            }
        };
        Ok(Self {
            field: field.into(),
            path,
            expected,
        })
    }

    /// The dotted field path as written.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The expected value as JSON (`"AI-WIP"`, `false`, `42`).
    pub fn expected(&self) -> Value {
        match &self.expected {
            Expected::Str(s) => Value::from(&**s),
            Expected::Bool(b) => Value::Bool(*b),
            Expected::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        }
    }

    /// The values this condition compares in `payload`, by the same path
    /// rules as [`matches`](Self::matches): every array met fans out, and
    /// an object at the end of the path gives its `name` (or the object
    /// itself when it has none). At most `max` values are returned; none
    /// means the path is absent.
    pub(crate) fn found(&self, payload: &Value, max: usize) -> Vec<Value> {
        let mut out = Vec::new();
        collect_at(payload, &self.path, &mut out, max);
        out
    }

    /// Whether `payload` satisfies this condition.
    pub fn matches(&self, payload: &Value) -> bool {
        matches_at(payload, &self.path, &self.expected)
    }

    /// Whether the raw JSON `payload` satisfies this condition, in one
    /// streaming pass that skips everything off the path and builds no tree
    /// (the crate's one streaming JSON reader, shared with the generic
    /// source's JSON pointers). A body that is not valid JSON never matches.
    ///
    /// Gives the same answer as [`matches`](Self::matches) on the parsed
    /// payload (including the last of duplicate keys deciding).
    pub fn matches_json(&self, payload: &[u8]) -> bool {
        // serde_json does not check the UTF-8 of strings it skips; the tree
        // form rejects such a body, so this one must too.
        let Ok(text) = std::str::from_utf8(payload) else {
            return false;
        };
        matches!(
            walk(text, &self.path, FilterProbe(&self.expected)),
            Ok(true)
        )
    }
}

/// The filter rules over the crate's streaming path reader: arrays fan out,
/// an object at the end of the path is compared through its `name`.
#[derive(Clone, Copy)]
struct FilterProbe<'p>(&'p Expected);

impl<'de, 'p> Probe<'de> for FilterProbe<'p> {
    type Out = bool;
    type Leaf = AtEnd<'p>;
    const FAN_OUT: bool = true;
    fn absent(self) -> bool {
        false
    }
    fn is_hit(out: &bool) -> bool {
        *out
    }
    fn leaf(self) -> AtEnd<'p> {
        AtEnd {
            expected: self.0,
            is_name: false,
        }
    }
}

/// The value at the end of the path (`is_name: false`), or the `name` of an
/// object there (`is_name: true`, compared without fan-out).
struct AtEnd<'p> {
    expected: &'p Expected,
    is_name: bool,
}

impl<'de> de::DeserializeSeed<'de> for AtEnd<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for AtEnd<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        // Reached only for a `name` (the reader fans out other arrays).
        de::IgnoredAny.visit_seq(seq).map(|_| false)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        if self.is_name {
            return de::IgnoredAny.visit_map(map).map(|_| false);
        }
        // Like `serde_json::Value`, the last of duplicate keys decides.
        let mut hit = false;
        while let Some(k) = map.next_key::<Key<'de>>()? {
            if k.0 == "name" {
                hit = map.next_value_seed(AtEnd {
                    expected: self.expected,
                    is_name: true,
                })?;
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(hit)
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(matches!(self.expected, Expected::Str(e) if &**e == v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
        Ok(*self.expected == Expected::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<bool, E> {
        Ok(num_equals(v as f64, self.expected))
    }
    fn visit_i64<E>(self, v: i64) -> Result<bool, E> {
        Ok(num_equals(v as f64, self.expected))
    }
    fn visit_f64<E>(self, v: f64) -> Result<bool, E> {
        Ok(num_equals(v, self.expected))
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

fn num_equals(v: f64, expected: &Expected) -> bool {
    matches!(expected, Expected::Num(e) if *e == v)
}

impl fmt::Debug for FieldFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldFilter")
            .field("field", &self.field)
            .field("expected", &self.expected)
            .finish()
    }
}

// Recursion depth is bounded by the payload's nesting, which serde_json caps
// at 128 levels when parsing.
fn matches_at(v: &Value, path: &[Box<str>], expected: &Expected) -> bool {
    if let Value::Array(items) = v {
        return items.iter().any(|item| matches_at(item, path, expected));
    }
    match path.split_first() {
        Some((head, rest)) => match v {
            Value::Object(map) => map
                .get(&**head)
                .is_some_and(|child| matches_at(child, rest, expected)),
            _ => false,
        },
        None => match v {
            Value::Object(map) => map
                .get("name")
                .is_some_and(|name| leaf_equals(name, expected)),
            leaf => leaf_equals(leaf, expected),
        },
    }
}

/// What [`matches_at`] compares along `path`, for explanations.
fn collect_at(v: &Value, path: &[Box<str>], out: &mut Vec<Value>, max: usize) {
    if out.len() >= max {
        return;
    }
    if let Value::Array(items) = v {
        for item in items {
            collect_at(item, path, out, max);
        }
        return;
    }
    match path.split_first() {
        Some((head, rest)) => {
            if let Some(child) = v.as_object().and_then(|map| map.get(&**head)) {
                collect_at(child, rest, out, max);
            }
        }
        None => out.push(match v {
            Value::Object(map) => map.get("name").unwrap_or(v).clone(),
            leaf => leaf.clone(),
        }),
    }
}

fn leaf_equals(v: &Value, expected: &Expected) -> bool {
    match (v, expected) {
        (Value::String(s), Expected::Str(e)) => s.as_str() == &**e,
        (Value::Bool(b), Expected::Bool(e)) => b == e,
        (Value::Number(n), Expected::Num(e)) => n.as_f64().is_some_and(|n| n == *e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A filter whose `matches` checks the tree and streaming forms agree.
    struct Both(FieldFilter);

    impl Both {
        fn matches(&self, v: &Value) -> bool {
            let tree = self.0.matches(v);
            let stream = self.0.matches_json(v.to_string().as_bytes());
            assert_eq!(tree, stream, "{:?} on {v}", self.0);
            tree
        }
    }

    fn f(field: &str, v: Value) -> Both {
        Both(FieldFilter::new(field, &v).unwrap())
    }

    #[test]
    fn object_at_the_end_compares_its_name() {
        let p = json!({"label": {"name": "AI-WIP", "color": "5319e7"}});
        assert!(f("label", json!("AI-WIP")).matches(&p));
        assert!(f("label.name", json!("AI-WIP")).matches(&p));
        assert!(!f("label", json!("bug")).matches(&p));
        assert!(!f("label.color", json!("AI-WIP")).matches(&p));
    }

    #[test]
    fn arrays_match_if_any_element_matches() {
        let p =
            json!({"issue": {"labels": [{"name": "bug"}, {"name": "AI-WIP"}], "tags": ["a", "b"]}});
        assert!(f("issue.labels", json!("AI-WIP")).matches(&p));
        assert!(f("issue.labels.name", json!("bug")).matches(&p));
        assert!(!f("issue.labels", json!("none")).matches(&p));
        assert!(f("issue.tags", json!("b")).matches(&p));
    }

    #[test]
    fn scalars_compare_with_their_type() {
        let p = json!({"n": 42, "draft": false, "s": "42", "x": null});
        assert!(f("n", json!(42)).matches(&p));
        assert!(f("n", json!(42.0)).matches(&p));
        assert!(!f("n", json!("42")).matches(&p));
        assert!(f("s", json!("42")).matches(&p));
        assert!(f("draft", json!(false)).matches(&p));
        assert!(!f("x", json!("null")).matches(&p));
        assert!(!f("missing.deeper", json!(1)).matches(&p));
        assert!(!f("n.deeper", json!(1)).matches(&p));
    }

    #[test]
    fn name_is_a_leaf_and_invalid_json_never_matches() {
        let p = json!({"label": {"name": ["AI-WIP"]}, "l2": {"name": {"name": "x"}}});
        assert!(!f("label", json!("AI-WIP")).matches(&p));
        assert!(!f("l2", json!("x")).matches(&p));
        let filter = FieldFilter::new("a", &json!(1)).unwrap();
        assert!(!filter.matches_json(br#"{"a":1"#));
        assert!(!filter.matches_json(br#"{"a":1} x"#));
        assert!(filter.matches_json(br#"{"a":1.0} "#));
        assert!(filter.matches_json(br#"[{"b":2},{"a":1}]"#));
        assert!(!filter.matches_json(br#"{"a":1,"a":2}"#));
        assert!(filter.matches_json(br#"{"a":2,"a":1}"#));
        assert!(!filter.matches_json(b"{\"a\":1,\"b\":\"\xfb\"}"));
    }

    #[test]
    fn bad_filters_are_rejected() {
        assert_eq!(
            FieldFilter::new("a..b", &json!(1)),
            Err(FilterError::EmptyPathSegment)
        );
        assert_eq!(
            FieldFilter::new("", &json!(1)),
            Err(FilterError::EmptyPathSegment)
        );
        assert_eq!(
            FieldFilter::new("a", &json!(null)),
            Err(FilterError::UnsupportedValue)
        );
        assert_eq!(
            FieldFilter::new("a", &json!([1])),
            Err(FilterError::UnsupportedValue)
        );
    }

    /// The streaming reader and the tree agree on arbitrary payloads, and
    /// on text with duplicate keys, which a `Value` cannot hold.
    mod agree {
        use proptest::prelude::*;
        use serde_json::{Value, json};

        use super::super::FieldFilter;

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("a".to_owned()),
                Just("b".to_owned()),
                Just("name".to_owned())
            ]
        }

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                (-2i64..3).prop_map(Value::from),
                prop_oneof![Just("x"), Just("y")].prop_map(Value::from),
            ]
        }

        /// JSON text (objects may repeat keys) for a small tree.
        fn text() -> impl Strategy<Value = String> {
            leaf()
                .prop_map(|v| v.to_string())
                .prop_recursive(4, 32, 4, |inner| {
                    prop_oneof![
                        prop::collection::vec(inner.clone(), 0..4)
                            .prop_map(|items| format!("[{}]", items.join(","))),
                        prop::collection::vec((key(), inner), 0..4).prop_map(|fields| {
                            let fields: Vec<String> = fields
                                .into_iter()
                                .map(|(k, v)| format!("{}:{v}", json!(k)))
                                .collect();
                            format!("{{{}}}", fields.join(","))
                        }),
                    ]
                })
        }

        proptest! {
            #[test]
            fn streaming_matches_the_tree(
                body in text(),
                path in prop::collection::vec(key(), 1..4),
                expected in prop_oneof![Just(json!("x")), Just(json!(true)), Just(json!(1))],
            ) {
                let filter = FieldFilter::new(&path.join("."), &expected).unwrap();
                let tree: Value = serde_json::from_str(&body).unwrap();
                prop_assert_eq!(filter.matches_json(body.as_bytes()), filter.matches(&tree), "{}", body);
            }
        }
    }
}
