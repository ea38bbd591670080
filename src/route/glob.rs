//! Event-name globs: `*` matches any run of characters (dots included).

use std::fmt;

/// A compiled event or source pattern such as `pull_request.*` or `*`.
///
/// `*` matches any sequence of characters, including `.` and the empty
/// string, so `pull_request.*` matches `pull_request.opened` and
/// `discussion.*` matches `discussion.comment.create`. Every other character
/// matches itself. Other glob syntaxes (`?`, `[..]`, `{..}`, `**`) are
/// rejected rather than silently taken literally.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
}

/// Why a pattern is not a valid [`Glob`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobError {
    /// The pattern is empty.
    Empty,
    /// The pattern contains whitespace or a control character.
    Whitespace,
    /// The pattern uses `?`, `[`, `]`, `{`, `}` or `**`, which are not supported.
    UnsupportedSyntax,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the pattern is empty",
            Self::Whitespace => "the pattern contains whitespace or a control character",
            Self::UnsupportedSyntax => {
                "only `*` is supported as a wildcard (no `?`, `[..]`, `{..}` or `**`)"
            }
        })
    }
}

impl std::error::Error for GlobError {}

impl Glob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// See [`GlobError`].
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(GlobError::Whitespace);
        }
        if pattern.contains(['?', '[', ']', '{', '}']) || pattern.contains("**") {
            return Err(GlobError::UnsupportedSyntax);
        }
        Ok(Self {
            pattern: pattern.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.pattern.split('*');
        let Some(first) = parts.next() else {
            return false;
        };
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let mut parts = parts.peekable();
        if parts.peek().is_none() {
            // No `*`: exact match.
            return rest.is_empty();
        }
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                // The last literal must end the text.
                return rest.len() >= part.len() && rest.ends_with(part);
            }
            match rest.find(part) {
                // Leftmost match of each middle literal is always safe for
                // `*`-only patterns.
                Some(at) => rest = rest.get(at + part.len()..).unwrap_or(""),
                None => return false,
            }
        }
        true
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Glob").field(&self.pattern).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Glob::new(p).unwrap().matches(t)
    }

    #[test]
    fn star_semantics() {
        assert!(m("*", ""));
        assert!(m("*", "anything.at.all"));
        assert!(m("pull_request.*", "pull_request.opened"));
        assert!(!m("pull_request.*", "pull_request"));
        assert!(!m("pull_request.*", "pull_requests.opened"));
        assert!(m("discussion.*", "discussion.comment.create"));
        assert!(m("*.create", "discussion.comment.create"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("issues.labeled", "issues.labeled"));
        assert!(!m("issues.labeled", "issues.labeled2"));
        assert!(m("*é*", "café.x"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert_eq!(Glob::new(""), Err(GlobError::Empty));
        assert_eq!(Glob::new("a b"), Err(GlobError::Whitespace));
        assert_eq!(Glob::new("a.?"), Err(GlobError::UnsupportedSyntax));
        assert_eq!(Glob::new("a.**"), Err(GlobError::UnsupportedSyntax));
        assert_eq!(Glob::new("{a,b}"), Err(GlobError::UnsupportedSyntax));
    }
}
