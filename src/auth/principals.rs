//! The set of principals a gateway knows, by token, and how a request's
//! bearer token becomes one of them.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::Principal;
use crate::service::auth::Access;
use crate::service::{ApiTokens, BearerTokens};

/// How many requests a principal may make: a sustained rate and a burst.
///
/// The default, 1,000 requests a second with bursts of 5,000, leaves room
/// for a fleet of agents sharing one principal and still stops a runaway
/// loop or a stolen token from taking the whole server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a second, sustained.
    pub per_second: NonZeroU32,
    /// Requests allowed at once above the sustained rate.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: NonZeroU32::new(1_000).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(5_000).unwrap_or(NonZeroU32::MIN),
        }
    }
}

impl RateLimit {
    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// Why a request's bearer token names no principal, or not now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header (`401 unauthorized`).
    Missing,
    /// A header that is not a known bearer token (`401 unauthorized`).
    Invalid,
    /// A known token past its `expires_at` (`401 token_expired`).
    Expired,
    /// The principal made too many requests (`429 rate_limited` with
    /// `Retry-After`).
    RateLimited {
        /// How long until a request would be allowed.
        retry_after: Duration,
    },
}

impl AuthError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing | Self::Invalid => "unauthorized",
            Self::Expired => "token_expired",
            Self::RateLimited { .. } => "rate_limited",
        }
    }

    /// The HTTP status: `401`, or `429` for a rate limit.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::RateLimited { .. } => http::StatusCode::TOO_MANY_REQUESTS,
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// Seconds to put in `Retry-After`, for a rate limit (at least 1).
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("an `Authorization: Bearer <token>` header is required"),
            Self::Invalid => f.write_str("the bearer token is not one this server knows"),
            Self::Expired => f.write_str("the bearer token has expired; ask for a fresh one"),
            Self::RateLimited { retry_after } => write!(
                f,
                "too many requests for this principal; retry after {} s",
                retry_after.as_secs_f64().ceil().max(1.0)
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// One token of a principal.
#[derive(Debug, Clone)]
pub(crate) struct TokenEntry {
    pub(crate) digest: [u8; 32],
    pub(crate) expires_at: Option<OffsetDateTime>,
}

/// A principal with its tokens and its own rate limit.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) principal: Arc<Principal>,
    pub(crate) tokens: Vec<TokenEntry>,
    pub(crate) rate: RateLimit,
}

#[derive(Debug)]
struct Known {
    principal: Arc<Principal>,
    tokens: Vec<TokenEntry>,
    limiter: DefaultDirectRateLimiter,
}

#[derive(Debug, Default)]
struct Table {
    known: Vec<Known>,
}

/// The principals a server knows, each with its tokens; what every API asks
/// who a request comes from.
///
/// Tokens are kept only as SHA-256 digests and compared in constant time
/// against every token known, so neither a token's bytes nor which
/// principal holds it leak through timing; `Debug` shows names and roles,
/// never a digest. Clones share one table: [`replace`](Self::replace)
/// (on `SIGHUP` in the gateway) changes it for every service at once.
///
/// ```
/// use hookroom::auth::{Principal, Principals, Role};
///
/// let principals = Principals::builder()
///     .principal(Principal::new("reviewer-1", Role::Agent), ["s3cret"])
///     .build();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer s3cret".parse().unwrap());
/// let who = principals.authenticate(&headers).unwrap();
/// assert_eq!(who.name(), "reviewer-1");
/// headers.insert("authorization", "Bearer guess".parse().unwrap());
/// assert!(principals.authenticate(&headers).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Principals {
    table: Arc<ArcSwap<Table>>,
}

/// Builds [`Principals`].
#[derive(Debug, Default)]
pub struct PrincipalsBuilder {
    entries: Vec<Entry>,
    rate: RateLimit,
}

impl PrincipalsBuilder {
    /// Adds a principal with these tokens (several, for rotation).
    #[must_use]
    pub fn principal<I, T>(mut self, principal: Principal, tokens: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let tokens = tokens
            .into_iter()
            .map(|token| TokenEntry {
                digest: Sha256::digest(token.as_ref().trim().as_bytes()).into(),
                expires_at: None,
            })
            .collect();
        self.entries.push(Entry {
            principal: Arc::new(principal),
            tokens,
            rate: self.rate,
        });
        self
    }

    /// The rate limit of every principal added after this call, and of
    /// those a file leaves without `rate_per_second`.
    #[must_use]
    pub fn rate_limit(mut self, rate: RateLimit) -> Self {
        self.rate = rate;
        self
    }

    /// Adds the environment quick start's principals: the agent tokens as
    /// [`Principal::environment_agent`], the admin tokens as
    /// [`Principal::environment_admin`] (none for an empty set).
    #[must_use]
    pub fn environment(mut self, tokens: &ApiTokens) -> Self {
        for (principal, set) in [
            (Principal::environment_admin(), tokens.admin()),
            (Principal::environment_agent(), tokens.agent()),
        ] {
            if !set.is_empty() {
                let rate = self.rate;
                self = self.entry(Entry {
                    principal: Arc::new(principal),
                    tokens: digests(set),
                    rate,
                });
            }
        }
        self
    }

    pub(crate) fn entry(mut self, entry: Entry) -> Self {
        self.entries.push(entry);
        self
    }

    pub(crate) fn default_rate(&self) -> RateLimit {
        self.rate
    }

    pub(crate) fn entries_names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.principal.name().to_owned())
            .collect()
    }

    /// The principals.
    pub fn build(self) -> Principals {
        Principals {
            table: Arc::new(ArcSwap::from_pointee(Table::new(self.entries))),
        }
    }
}

impl Table {
    fn new(entries: Vec<Entry>) -> Self {
        Self {
            known: entries
                .into_iter()
                .map(|entry| Known {
                    limiter: RateLimiter::direct(entry.rate.quota()),
                    principal: entry.principal,
                    tokens: entry.tokens,
                })
                .collect(),
        }
    }
}

impl Principals {
    /// A builder.
    pub fn builder() -> PrincipalsBuilder {
        PrincipalsBuilder::default()
    }

    /// No principal: every request that needs one is refused.
    pub fn none() -> Self {
        Self::default()
    }

    /// The environment quick start: the agent tokens as
    /// [`Principal::environment_agent`], the admin tokens as
    /// [`Principal::environment_admin`].
    pub fn from_tokens(tokens: &ApiTokens) -> Self {
        Self::builder().environment(tokens).build()
    }

    /// Whether no principal is known (the APIs that need one are off).
    pub fn is_empty(&self) -> bool {
        self.table.load().known.is_empty()
    }

    /// The principals known, in the order given.
    pub fn list(&self) -> Vec<Arc<Principal>> {
        self.table
            .load()
            .known
            .iter()
            .map(|k| Arc::clone(&k.principal))
            .collect()
    }

    /// Takes `other`'s principals, for every clone of `self` at once (a
    /// reload). Rate limits start afresh.
    pub fn replace(&self, other: &Principals) {
        self.table.store(other.table.load_full());
    }

    /// The principal whose token the request's `Authorization: Bearer …`
    /// header carries, counted against its rate limit.
    ///
    /// # Errors
    /// [`AuthError`]: no header, an unknown or expired token, or too many
    /// requests.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthError> {
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let presented = crate::service::auth::bearer_token(value);
        if presented.is_empty() {
            return Err(AuthError::Invalid);
        }
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let table = self.table.load();
        // Every token is compared, whichever matches, so the time taken
        // does not tell which principal (or none) holds it.
        let mut found: Option<(&Known, &TokenEntry)> = None;
        for known in &table.known {
            for token in &known.tokens {
                if bool::from(token.digest.ct_eq(&digest)) {
                    found = Some((known, token));
                }
            }
        }
        let (known, token) = found.ok_or(AuthError::Invalid)?;
        if token
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            return Err(AuthError::Expired);
        }
        if let Err(not_until) = known.limiter.check() {
            return Err(AuthError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        Ok(Arc::clone(&known.principal))
    }
}

impl Principals {
    /// What the request's token is worth for an admin-only `operation`
    /// (`/operations`, `/health`'s detail, `/metrics`).
    pub(crate) fn admin_access(
        &self,
        headers: &HeaderMap,
        operation: &super::Operation<'_>,
    ) -> Access {
        if !headers.contains_key(header::AUTHORIZATION) {
            return Access::Anonymous;
        }
        if self.is_empty() {
            return Access::NotConfigured;
        }
        match self.authenticate(headers) {
            Ok(who) if who.authorize(operation).is_ok() => Access::Granted,
            _ => Access::Denied,
        }
    }
}

/// Every token of the set as the environment's admin
/// ([`Principal::environment_admin`], as `HOOKROOM_ADMIN_TOKEN` is).
impl From<BearerTokens> for Principals {
    fn from(tokens: BearerTokens) -> Self {
        Self::from_tokens(&ApiTokens::new(BearerTokens::none(), tokens))
    }
}

impl From<ApiTokens> for Principals {
    fn from(tokens: ApiTokens) -> Self {
        Self::from_tokens(&tokens)
    }
}

impl From<&ApiTokens> for Principals {
    fn from(tokens: &ApiTokens) -> Self {
        Self::from_tokens(tokens)
    }
}

fn digests(set: &BearerTokens) -> Vec<TokenEntry> {
    set.digests()
        .iter()
        .map(|digest| TokenEntry {
            digest: *digest,
            expires_at: None,
        })
        .collect()
}

/// The hex SHA-256 digest of a token, as a principals file stores it.
///
/// ```
/// assert_eq!(
///     hookroom::auth::token_digest("abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn each_token_names_its_principal() {
        let principals = Principals::builder()
            .principal(Principal::new("a", Role::Agent), ["t1", "t1-old"])
            .principal(Principal::new("v", Role::Viewer), ["t2"])
            .build();
        assert_eq!(principals.authenticate(&bearer("t1")).unwrap().name(), "a");
        assert_eq!(
            principals.authenticate(&bearer("t1-old")).unwrap().name(),
            "a"
        );
        assert_eq!(principals.authenticate(&bearer("t2")).unwrap().name(), "v");
        assert_eq!(
            principals.authenticate(&bearer("t3")),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            principals.authenticate(&HeaderMap::new()),
            Err(AuthError::Missing)
        );
        assert_eq!(
            principals.authenticate(&bearer("")),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn a_principal_past_its_rate_is_refused_with_a_wait() {
        let one = NonZeroU32::new(1).unwrap();
        let principals = Principals::builder()
            .rate_limit(RateLimit {
                per_second: one,
                burst: one,
            })
            .principal(Principal::new("a", Role::Agent), ["t"])
            .principal(Principal::new("b", Role::Agent), ["u"])
            .build();
        assert!(principals.authenticate(&bearer("t")).is_ok());
        let refused = principals.authenticate(&bearer("t")).unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(refused.retry_after_seconds(), Some(1));
        // Another principal has its own budget.
        assert!(principals.authenticate(&bearer("u")).is_ok());
    }

    #[test]
    fn a_replacement_reaches_every_clone() {
        let principals = Principals::none();
        let clone = principals.clone();
        assert!(clone.is_empty());
        principals.replace(
            &Principals::builder()
                .principal(Principal::new("a", Role::Admin), ["t"])
                .build(),
        );
        assert_eq!(
            clone.authenticate(&bearer("t")).unwrap().role(),
            Role::Admin
        );
    }
}
