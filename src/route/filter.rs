//! Payload filters: `{"label": "AI-WIP"}`, `{"pull_request.draft": false}`.

use std::fmt;

use serde_json::Value;

/// One `field: value` condition of a route's `filter`.
///
/// `field` is a dotted path into the JSON payload (`pull_request.user.login`).
/// Matching rules, chosen so that the seed's `{"label": "AI-WIP"}` reads the
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

    /// Whether `payload` satisfies this condition.
    pub fn matches(&self, payload: &Value) -> bool {
        matches_at(payload, &self.path, &self.expected)
    }
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

fn leaf_equals(v: &Value, expected: &Expected) -> bool {
    match (v, expected) {
        (Value::String(s), Expected::Str(e)) => s.as_str() == &**e,
        (Value::Bool(b), Expected::Bool(e)) => b == e,
        (Value::Number(n), Expected::Num(e)) => n.as_f64() == Some(*e),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn f(field: &str, v: Value) -> FieldFilter {
        FieldFilter::new(field, &v).unwrap()
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
}
