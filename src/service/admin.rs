//! [`AdminTokens`]: the bearer tokens that may read `/operations` and the
//! component detail of `/health`.

use std::sync::Arc;

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The admin bearer tokens (several at once, for rotation).
///
/// Tokens are kept only as SHA-256 digests and compared in constant time
/// against every configured token, so neither a token's bytes nor its length
/// leak through timing; `Debug` shows only how many there are. With no token
/// configured (the default), admin answers are refused: `/operations` and
/// `/health`'s detail answer `403 admin_not_configured`.
///
/// ```
/// use hookroom::service::AdminTokens;
///
/// let tokens = AdminTokens::parse_list("new-token, old-token").unwrap();
/// assert_eq!(tokens.len(), 2);
/// assert!(AdminTokens::parse_list("a,,b").is_err());
/// assert_eq!(format!("{tokens:?}"), "AdminTokens { count: 2 }");
/// ```
#[derive(Clone, Default)]
pub struct AdminTokens {
    digests: Arc<[[u8; 32]]>,
}

/// Why a list of admin tokens was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// The entry at this position (0-based) is empty or only whitespace.
    EmptyToken {
        /// The entry's position in the list.
        position: usize,
    },
    /// The environment variable is set but not valid Unicode.
    NotUnicode {
        /// The variable's name.
        var: String,
    },
}

impl std::fmt::Display for AdminTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyToken { position } => write!(
                f,
                "admin token {} of the list is empty; remove the extra comma or set a token",
                position + 1
            ),
            Self::NotUnicode { var } => write!(f, "{var} is not valid Unicode"),
        }
    }
}

impl std::error::Error for AdminTokenError {}

/// What a request's `Authorization` header is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// A configured token.
    Granted,
    /// No `Authorization` header.
    Anonymous,
    /// A header that is not a configured token.
    Denied,
    /// A header, but no token is configured.
    NotConfigured,
}

impl AdminTokens {
    /// No tokens: every admin request is refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// These tokens (surrounding whitespace removed).
    ///
    /// # Errors
    /// [`AdminTokenError::EmptyToken`] for an empty or all-whitespace token.
    pub fn new<I, T>(tokens: I) -> Result<Self, AdminTokenError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let digests = tokens
            .into_iter()
            .enumerate()
            .map(|(position, token)| {
                let token = token.as_ref().trim();
                if token.is_empty() {
                    Err(AdminTokenError::EmptyToken { position })
                } else {
                    Ok(Sha256::digest(token.as_bytes()).into())
                }
            })
            .collect::<Result<Vec<[u8; 32]>, _>>()?;
        Ok(Self {
            digests: Arc::from(digests),
        })
    }

    /// A comma-separated list, as in `HOOKROOM_ADMIN_TOKEN=new,old`.
    ///
    /// # Errors
    /// [`AdminTokenError::EmptyToken`] for an empty entry (`a,,b`, a
    /// trailing comma, or an empty list).
    pub fn parse_list(list: &str) -> Result<Self, AdminTokenError> {
        Self::new(list.split(','))
    }

    /// The comma-separated list in the environment variable `var`; no
    /// tokens when it is unset.
    ///
    /// # Errors
    /// A variable that is set but empty, has an empty entry, or is not
    /// Unicode.
    pub fn from_env(var: &str) -> Result<Self, AdminTokenError> {
        match std::env::var(var) {
            Ok(list) => Self::parse_list(&list),
            Err(std::env::VarError::NotPresent) => Ok(Self::none()),
            Err(std::env::VarError::NotUnicode(_)) => Err(AdminTokenError::NotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks the request's `Authorization: Bearer …` header.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Access {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Access::Anonymous;
        };
        if self.is_empty() {
            return Access::NotConfigured;
        }
        let presented = value
            .as_bytes()
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| value.as_bytes().get(7..))
            .unwrap_or_default()
            .trim_ascii();
        let digest: [u8; 32] = Sha256::digest(presented).into();
        // Every token is compared, whichever matches.
        let matched = self
            .digests
            .iter()
            .fold(subtle::Choice::from(0), |any, d| any | d.ct_eq(&digest));
        if bool::from(matched) && !presented.is_empty() {
            Access::Granted
        } else {
            Access::Denied
        }
    }
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTokens")
            .field("count", &self.digests.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn every_configured_token_is_accepted_and_nothing_else() {
        let tokens = AdminTokens::parse_list(" new ,old").unwrap();
        assert_eq!(tokens.check(&bearer("Bearer new")), Access::Granted);
        assert_eq!(tokens.check(&bearer("bearer old")), Access::Granted);
        for wrong in ["Bearer ne", "Bearer new2", "Basic new", "new", "Bearer "] {
            assert_eq!(tokens.check(&bearer(wrong)), Access::Denied, "{wrong}");
        }
        assert_eq!(tokens.check(&HeaderMap::new()), Access::Anonymous);
        assert_eq!(
            AdminTokens::none().check(&bearer("Bearer new")),
            Access::NotConfigured
        );
    }

    #[test]
    fn an_empty_entry_is_an_error() {
        for list in ["", " ", "a,,b", "a,", ",a"] {
            assert!(
                matches!(
                    AdminTokens::parse_list(list),
                    Err(AdminTokenError::EmptyToken { .. })
                ),
                "{list:?}"
            );
        }
        let error = AdminTokens::parse_list("a,,b").unwrap_err();
        assert_eq!(error, AdminTokenError::EmptyToken { position: 1 });
        assert!(error.to_string().contains("token 2"));
    }

    #[test]
    fn debug_shows_no_token() {
        let tokens = AdminTokens::new(["s3cret-admin"]).unwrap();
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
