//! Bearer-token access to the gateway's own APIs.
//!
//! [`BearerTokens`] is one set of tokens (several at once, for rotation);
//! [`ApiTokens`] pairs the agent set (the Task and Jobs APIs) with the admin
//! set (`/operations`, `/health`'s detail, the Routes API, `/metrics`). An
//! admin token may do everything an agent token may.

use std::sync::Arc;

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A set of bearer tokens (several at once, for rotation).
///
/// Tokens are kept only as SHA-256 digests and compared in constant time
/// against every configured token, so neither a token's bytes nor its length
/// leak through timing; `Debug` shows only how many there are. With no token
/// configured (the default), what the set guards is refused: for the admin
/// set, `/operations` and `/health`'s detail answer
/// `403 admin_not_configured`.
///
/// ```
/// use hookroom::service::BearerTokens;
///
/// let tokens = BearerTokens::parse_list("new-token, old-token").unwrap();
/// assert_eq!(tokens.len(), 2);
/// assert!(BearerTokens::parse_list("a,,b").is_err());
/// assert_eq!(format!("{tokens:?}"), "BearerTokens { count: 2 }");
/// ```
#[derive(Clone, Default)]
pub struct BearerTokens {
    digests: Arc<[[u8; 32]]>,
}

/// Why a list of bearer tokens was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenListError {
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

impl std::fmt::Display for TokenListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyToken { position } => write!(
                f,
                "token {} of the list is empty; remove the extra comma or set a token",
                position + 1
            ),
            Self::NotUnicode { var } => write!(f, "{var} is not valid Unicode"),
        }
    }
}

impl std::error::Error for TokenListError {}

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

impl BearerTokens {
    /// No tokens: every request that needs one is refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// These tokens (surrounding whitespace removed).
    ///
    /// # Errors
    /// [`TokenListError::EmptyToken`] for an empty or all-whitespace token.
    pub fn new<I, T>(tokens: I) -> Result<Self, TokenListError>
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
                    Err(TokenListError::EmptyToken { position })
                } else {
                    Ok(Sha256::digest(token.as_bytes()).into())
                }
            })
            .collect::<Result<Vec<[u8; 32]>, _>>()?;
        Ok(Self {
            digests: Arc::from(digests),
        })
    }

    /// A comma-separated list, as in `HOOKROOM_API_TOKEN=new,old`.
    ///
    /// # Errors
    /// [`TokenListError::EmptyToken`] for an empty entry (`a,,b`, a
    /// trailing comma, or an empty list).
    pub fn parse_list(list: &str) -> Result<Self, TokenListError> {
        Self::new(list.split(','))
    }

    /// The comma-separated list in the environment variable `var`; no
    /// tokens when it is unset.
    ///
    /// # Errors
    /// A variable that is set but empty, has an empty entry, or is not
    /// Unicode.
    pub fn from_env(var: &str) -> Result<Self, TokenListError> {
        match std::env::var(var) {
            Ok(list) => Self::parse_list(&list),
            Err(std::env::VarError::NotPresent) => Ok(Self::none()),
            Err(std::env::VarError::NotUnicode(_)) => Err(TokenListError::NotUnicode {
                var: var.to_owned(),
            }),
        }
    }

    /// The tokens' SHA-256 digests.
    pub(crate) fn digests(&self) -> &[[u8; 32]] {
        &self.digests
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
        let presented = bearer_token(value);
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

/// The token of an `Authorization: Bearer …` value (the scheme in any
/// case, surrounding whitespace removed); empty for any other value.
pub(crate) fn bearer_token(value: &http::HeaderValue) -> &[u8] {
    value
        .as_bytes()
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .and_then(|_| value.as_bytes().get(7..))
        .unwrap_or_default()
        .trim_ascii()
}

/// The role a request's bearer token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiAccess {
    /// An agent token: the Task and Jobs APIs.
    Agent,
    /// An admin token: everything an agent may, and the admin endpoints.
    Admin,
}

/// Agent and admin tokens together: what the gateway's APIs check.
///
/// In the gateway, `HOOKROOM_API_TOKEN` holds the agent tokens and
/// `HOOKROOM_ADMIN_TOKEN` the admin tokens, each a comma-separated list.
///
/// ```
/// use hookroom::service::{ApiAccess, ApiTokens, BearerTokens};
///
/// let tokens = ApiTokens::new(
///     BearerTokens::parse_list("agent-1,agent-2").unwrap(),
///     BearerTokens::parse_list("root").unwrap(),
/// );
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer root".parse().unwrap());
/// assert_eq!(tokens.role(&headers), Some(ApiAccess::Admin));
/// headers.insert("authorization", "Bearer agent-2".parse().unwrap());
/// assert_eq!(tokens.role(&headers), Some(ApiAccess::Agent));
/// headers.insert("authorization", "Bearer nope".parse().unwrap());
/// assert_eq!(tokens.role(&headers), None);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ApiTokens {
    agent: BearerTokens,
    admin: BearerTokens,
}

impl ApiTokens {
    /// Agent tokens and admin tokens.
    pub fn new(agent: BearerTokens, admin: BearerTokens) -> Self {
        Self { agent, admin }
    }

    /// The agent tokens in `agent_var` and the admin tokens in `admin_var`
    /// (each unset: no tokens of that kind).
    ///
    /// # Errors
    /// As [`BearerTokens::from_env`], for either variable.
    pub fn from_env(agent_var: &str, admin_var: &str) -> Result<Self, TokenListError> {
        Ok(Self::new(
            BearerTokens::from_env(agent_var)?,
            BearerTokens::from_env(admin_var)?,
        ))
    }

    /// The agent tokens.
    pub fn agent(&self) -> &BearerTokens {
        &self.agent
    }

    /// The admin tokens.
    pub fn admin(&self) -> &BearerTokens {
        &self.admin
    }

    /// Whether no token of either kind is configured (the APIs are off).
    pub fn is_empty(&self) -> bool {
        self.agent.is_empty() && self.admin.is_empty()
    }

    /// The role the request's `Authorization: Bearer …` header grants, if
    /// any: `Admin` for an admin token, `Agent` for an agent token.
    pub fn role(&self, headers: &HeaderMap) -> Option<ApiAccess> {
        // Both sets are checked, so the time taken does not tell which
        // kind of token was presented.
        let admin = self.admin.check(headers) == Access::Granted;
        let agent = self.agent.check(headers) == Access::Granted;
        if admin {
            Some(ApiAccess::Admin)
        } else if agent {
            Some(ApiAccess::Agent)
        } else {
            None
        }
    }
}

impl std::fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokens")
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
        let tokens = BearerTokens::parse_list(" new ,old").unwrap();
        assert_eq!(tokens.check(&bearer("Bearer new")), Access::Granted);
        assert_eq!(tokens.check(&bearer("bearer old")), Access::Granted);
        for wrong in ["Bearer ne", "Bearer new2", "Basic new", "new", "Bearer "] {
            assert_eq!(tokens.check(&bearer(wrong)), Access::Denied, "{wrong}");
        }
        assert_eq!(tokens.check(&HeaderMap::new()), Access::Anonymous);
        assert_eq!(
            BearerTokens::none().check(&bearer("Bearer new")),
            Access::NotConfigured
        );
    }

    #[test]
    fn an_empty_entry_is_an_error() {
        for list in ["", " ", "a,,b", "a,", ",a"] {
            assert!(
                matches!(
                    BearerTokens::parse_list(list),
                    Err(TokenListError::EmptyToken { .. })
                ),
                "{list:?}"
            );
        }
        let error = BearerTokens::parse_list("a,,b").unwrap_err();
        assert_eq!(error, TokenListError::EmptyToken { position: 1 });
        assert!(error.to_string().contains("token 2"));
    }

    #[test]
    fn debug_shows_no_token() {
        let tokens = BearerTokens::new(["s3cret-admin"]).unwrap();
        let debug = format!("{tokens:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
