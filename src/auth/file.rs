//! Principals files: TOML or JSON, tokens as SHA-256 digests.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

use super::principals::{Entry, TokenEntry};
use super::{Principal, Principals, PrincipalsBuilder, RateLimit, Role, RoomScope};

/// The longest principal name, in bytes (it is also an agent id).
pub const MAX_PRINCIPAL_NAME: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    principal: Vec<PrincipalForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalForm {
    name: String,
    role: Role,
    #[serde(default)]
    rooms: Option<Vec<String>>,
    #[serde(default)]
    payloads: bool,
    #[serde(default)]
    reports: bool,
    #[serde(default)]
    rate_per_second: Option<NonZeroU32>,
    tokens: Vec<TokenForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenForm {
    sha256: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// Why a principals file was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum PrincipalsFileError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON of the expected shape.
    Parse {
        /// What the parser said (line and column included).
        detail: String,
    },
    /// An entry is not valid.
    Invalid {
        /// The principal's name (or its position, when the name is the
        /// problem).
        principal: String,
        /// What is wrong.
        problem: InvalidPrincipal,
    },
}

/// What is wrong with one entry of a principals file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidPrincipal {
    /// The name is empty, longer than [`MAX_PRINCIPAL_NAME`], or has a
    /// character other than ASCII letters, digits, `.`, `_` and `-`.
    Name,
    /// Two entries have the same name.
    DuplicateName,
    /// The entry has no token.
    NoToken,
    /// A `sha256` is not 64 hex digits.
    Digest,
    /// The same token digest appears twice.
    DuplicateToken,
    /// `rooms` is an empty list (omit it for every room).
    NoRooms,
}

impl std::fmt::Display for PrincipalsFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(
                    f,
                    "cannot read principals file {}: {source}",
                    path.display()
                )
            }
            Self::Parse { detail } => write!(f, "principals file: {detail}"),
            Self::Invalid { principal, problem } => {
                let what = match problem {
                    InvalidPrincipal::Name => {
                        "the name must be 1 to 64 ASCII letters, digits, '.', '_' or '-'"
                    }
                    InvalidPrincipal::DuplicateName => "another principal has the same name",
                    InvalidPrincipal::NoToken => {
                        "it has no token; add one with `hookroom token new`"
                    }
                    InvalidPrincipal::Digest => {
                        "a token's sha256 must be 64 hex digits (the digest, never the token)"
                    }
                    InvalidPrincipal::DuplicateToken => "a token digest appears twice",
                    InvalidPrincipal::NoRooms => {
                        "rooms is an empty list; omit it to reach every room"
                    }
                };
                write!(f, "principals file: principal {principal}: {what}")
            }
        }
    }
}

impl std::error::Error for PrincipalsFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PRINCIPAL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl PrincipalsBuilder {
    /// Adds the principals of a file's text: JSON when it starts with `{`,
    /// TOML otherwise.
    ///
    /// ```
    /// use hookroom::auth::{Principals, Role, token_digest};
    ///
    /// let text = format!(
    ///     r#"
    ///     [[principal]]
    ///     name = "reviewer-1"
    ///     role = "agent"
    ///     rooms = ["pr-review"]
    ///     tokens = [{{ sha256 = "{}" }}]
    ///     "#,
    ///     token_digest("s3cret"),
    /// );
    /// let principals = Principals::builder().parse(&text).unwrap().build();
    /// assert_eq!(principals.list()[0].role(), Role::Agent);
    /// ```
    ///
    /// # Errors
    /// [`PrincipalsFileError::Parse`] or [`PrincipalsFileError::Invalid`].
    pub fn parse(mut self, text: &str) -> Result<Self, PrincipalsFileError> {
        let form: FileForm = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| PrincipalsFileError::Parse {
                detail: e.to_string(),
            })?
        } else {
            toml::from_str(text).map_err(|e| PrincipalsFileError::Parse {
                detail: e.to_string(),
            })?
        };
        let mut names: HashSet<String> = self.entries_names().into_iter().collect();
        let mut digests: HashSet<[u8; 32]> = HashSet::new();
        for (position, entry) in form.principal.into_iter().enumerate() {
            let invalid = |problem| PrincipalsFileError::Invalid {
                principal: if valid_name(&entry.name) {
                    entry.name.clone()
                } else {
                    format!("#{}", position + 1)
                },
                problem,
            };
            if !valid_name(&entry.name) {
                return Err(invalid(InvalidPrincipal::Name));
            }
            if !names.insert(entry.name.clone()) {
                return Err(invalid(InvalidPrincipal::DuplicateName));
            }
            if entry.tokens.is_empty() {
                return Err(invalid(InvalidPrincipal::NoToken));
            }
            let mut tokens = Vec::with_capacity(entry.tokens.len());
            for token in &entry.tokens {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(token.sha256.trim(), &mut digest)
                    .map_err(|_| invalid(InvalidPrincipal::Digest))?;
                if !digests.insert(digest) {
                    return Err(invalid(InvalidPrincipal::DuplicateToken));
                }
                tokens.push(TokenEntry {
                    digest,
                    expires_at: token.expires_at,
                });
            }
            let rooms = match &entry.rooms {
                None => RoomScope::All,
                Some(rooms) if rooms.is_empty() => return Err(invalid(InvalidPrincipal::NoRooms)),
                Some(rooms) => RoomScope::only(rooms.iter().cloned()),
            };
            let rate = match entry.rate_per_second {
                Some(per_second) => RateLimit {
                    per_second,
                    burst: per_second.saturating_mul(NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN)),
                },
                None => self.default_rate(),
            };
            let principal = Principal::new(entry.name.clone(), entry.role)
                .with_rooms(rooms)
                .with_payloads(entry.payloads)
                .with_reports(entry.reports);
            self = self.entry(Entry {
                principal: Arc::new(principal),
                tokens,
                rate,
            });
        }
        Ok(self)
    }

    /// Adds the principals of the file at `path` (see [`parse`](Self::parse)).
    ///
    /// # Errors
    /// [`PrincipalsFileError`]: unreadable, unparsable or invalid.
    pub fn file(self, path: impl AsRef<Path>) -> Result<Self, PrincipalsFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PrincipalsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.parse(&text)
    }
}

impl Principals {
    /// The principals of the file at `path`, with the default rate limit.
    ///
    /// # Errors
    /// [`PrincipalsFileError`]: unreadable, unparsable or invalid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PrincipalsFileError> {
        Ok(Self::builder().file(path)?.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::token_digest;

    fn one(body: &str) -> Result<Principals, PrincipalsFileError> {
        Ok(Principals::builder().parse(body)?.build())
    }

    #[test]
    fn toml_and_json_say_the_same() {
        let digest = token_digest("t");
        let toml = format!(
            "[[principal]]\nname = \"ops\"\nrole = \"operator\"\npayloads = true\ntokens = [{{ sha256 = \"{digest}\", expires_at = \"2099-01-01T00:00:00Z\" }}]\n"
        );
        let json = format!(
            r#"{{"principal":[{{"name":"ops","role":"operator","payloads":true,"tokens":[{{"sha256":"{digest}","expires_at":"2099-01-01T00:00:00Z"}}]}}]}}"#
        );
        let a = one(&toml).unwrap().list();
        let b = one(&json).unwrap().list();
        assert_eq!(a, b);
        assert!(a[0].reads_payloads());
    }

    #[test]
    fn every_problem_is_named() {
        let d = token_digest("t");
        let e = token_digest("u");
        let cases = [
            (format!("[[principal]]\nname = \"a b\"\nrole = \"agent\"\ntokens = [{{ sha256 = \"{d}\" }}]"), InvalidPrincipal::Name),
            (format!("[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = [{{ sha256 = \"{d}\" }}]\n[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = [{{ sha256 = \"{e}\" }}]"), InvalidPrincipal::DuplicateName),
            ("[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = []".to_owned(), InvalidPrincipal::NoToken),
            ("[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = [{ sha256 = \"plain-token\" }]".to_owned(), InvalidPrincipal::Digest),
            (format!("[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = [{{ sha256 = \"{d}\" }}, {{ sha256 = \"{d}\" }}]"), InvalidPrincipal::DuplicateToken),
            (format!("[[principal]]\nname = \"a\"\nrole = \"agent\"\nrooms = []\ntokens = [{{ sha256 = \"{d}\" }}]"), InvalidPrincipal::NoRooms),
        ];
        for (text, expected) in cases {
            match one(&text) {
                Err(PrincipalsFileError::Invalid { problem, .. }) => assert_eq!(problem, expected),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            one("[[principal]]\nname = \"a\"\nrole = \"root\"\ntokens = []"),
            Err(PrincipalsFileError::Parse { .. })
        ));
        assert!(matches!(
            one("[[principal]]\nname = \"a\"\nrole = \"agent\"\ntoken = \"x\"\ntokens = []"),
            Err(PrincipalsFileError::Parse { .. })
        ));
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let d = token_digest("t");
        let principals = one(&format!(
            "[[principal]]\nname = \"a\"\nrole = \"agent\"\ntokens = [{{ sha256 = \"{d}\", expires_at = \"2001-01-01T00:00:00Z\" }}]"
        ))
        .unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        assert_eq!(
            principals.authenticate(&headers),
            Err(crate::auth::AuthError::Expired)
        );
    }
}
