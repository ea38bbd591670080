//! The routes file: rules, default room, secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RoutesConfigError;
use super::filter::{FieldFilter, FilterError};
use super::glob::{Glob, GlobError};
use super::secret::{SecretList, SecretSource};
use crate::error_code::ErrorCode;
use crate::verify::Secret;

/// Priority of a route that does not set one, and of the default room.
pub const DEFAULT_PRIORITY: u32 = 5;

/// One routing rule, as written in the routes file and as listed, added and
/// removed at run time.
///
/// ```json
/// {"source": "github", "event": "issues.labeled", "filter": {"label": "AI-WIP"},
///  "target_room": "auto-code", "priority": 1, "ttl_seconds": 3600}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Source name glob (`github`, or `*` for every source).
    pub source: String,
    /// Event name glob (`pull_request.opened`, `pull_request.*`, `*`).
    pub event: String,
    /// Payload conditions, all of which must hold; see
    /// [`FieldFilter`](super::FieldFilter) for the matching rules.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, Value>,
    /// Room the task goes to.
    #[serde(default)]
    pub target_room: String,
    /// 1 is claimed before 2; among matching routes the lowest wins, ties go
    /// to the earlier route. Defaults to [`DEFAULT_PRIORITY`].
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// Seconds an unclaimed task lives before it expires (none: forever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

impl RouteSpec {
    /// A route from `source`/`event` globs to `target_room` with the default
    /// priority, no filter and no TTL.
    pub fn new(
        source: impl Into<String>,
        event: impl Into<String>,
        target_room: impl Into<String>,
    ) -> Self {
        Self {
            source: source.into(),
            event: event.into(),
            filter: BTreeMap::new(),
            target_room: target_room.into(),
            priority: DEFAULT_PRIORITY,
            ttl_seconds: None,
        }
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// Adds a `field: value` filter condition.
    pub fn with_filter(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filter.insert(field.into(), value.into());
        self
    }

    /// Sets the TTL of unclaimed tasks.
    pub fn with_ttl_seconds(mut self, ttl: u64) -> Self {
        self.ttl_seconds = Some(ttl);
        self
    }

    /// Compiles the globs and filters, checking every field.
    pub(crate) fn compile(&self) -> Result<(Glob, Glob, Box<[FieldFilter]>), RouteError> {
        if self.target_room.is_empty() {
            return Err(RouteError::MissingTargetRoom);
        }
        if self.ttl_seconds == Some(0) {
            return Err(RouteError::ZeroTtl);
        }
        let source = Glob::new(&self.source).map_err(|reason| RouteError::InvalidGlob {
            field: "source",
            pattern: self.source.clone(),
            reason,
        })?;
        let event = Glob::new(&self.event).map_err(|reason| RouteError::InvalidGlob {
            field: "event",
            pattern: self.event.clone(),
            reason,
        })?;
        let filters = self
            .filter
            .iter()
            .map(|(field, value)| {
                FieldFilter::new(field, value).map_err(|reason| RouteError::InvalidFilter {
                    field: field.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((source, event, filters))
    }
}

/// Why one route is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// `target_room` is absent or empty.
    MissingTargetRoom,
    /// `ttl_seconds` is 0.
    ZeroTtl,
    /// `source` or `event` is not a valid glob.
    InvalidGlob {
        /// `"source"` or `"event"`.
        field: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: GlobError,
    },
    /// A `filter` entry is invalid.
    InvalidFilter {
        /// The filter's field path.
        field: String,
        /// What is wrong with it.
        reason: FilterError,
    },
}

impl ErrorCode for RouteError {
    fn code(&self) -> &'static str {
        match self {
            Self::MissingTargetRoom => "route_missing_target_room",
            Self::ZeroTtl => "route_zero_ttl",
            Self::InvalidGlob { .. } => "route_invalid_glob",
            Self::InvalidFilter { .. } => "route_invalid_filter",
        }
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTargetRoom => f.write_str("missing `target_room`"),
            Self::ZeroTtl => f.write_str("`ttl_seconds` must be at least 1"),
            Self::InvalidGlob {
                field,
                pattern,
                reason,
            } => write!(f, "invalid `{field}` pattern `{pattern}`: {reason}"),
            Self::InvalidFilter { field, reason } => {
                write!(f, "invalid filter on `{field}`: {reason}")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// The whole routes file.
///
/// ```json
/// {
///   "routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review", "priority": 2}],
///   "secrets": {"github": "${GITHUB_WEBHOOK_SECRET}", "slack": ["${SLACK_NEW}", "${SLACK_OLD}"],
///               "jira": {"file": "/run/secrets/jira"}},
///   "default_room": "general"
/// }
/// ```
///
/// Parsing checks everything that does not need the environment (unknown
/// fields, globs, filters, secret reference syntax); secrets are read by
/// [`resolve_secrets`](Self::resolve_secrets) so that a missing variable is
/// a startup error naming it.
///
/// # Example
/// ```
/// use hookroom::route::RoutesConfig;
///
/// let config = RoutesConfig::from_json(r#"{"routes": [{"source": "github", "event": "*", "target_room": "r"}],
///                                          "secrets": {"github": "${GH_SECRET}"}}"#).unwrap();
/// let err = config.resolve_secrets_with(&|_| None).unwrap_err();
/// assert_eq!(err.to_string(), "secret of source `github`: environment variable `GH_SECRET` is not set");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RoutesConfig {
    /// The rules, in file order.
    pub routes: Vec<RouteSpec>,
    /// Room of events no route matches (`None`: such events are ignored).
    pub default_room: Option<String>,
    /// Per source, its secrets (the first is the newest during a rotation).
    pub secrets: BTreeMap<String, Vec<SecretSource>>,
    /// How many days finished tasks (`DONE` or `FAILED`) are kept after they
    /// finish; `None` keeps them.
    ///
    /// Parsing a routes file only reads it: whoever serves the config applies
    /// it by purging each store's finished tasks in the background
    /// (`purge_finished` of `InMemoryTaskStore`, `SqliteTaskStore` and
    /// `PostgresTaskStore`, in bounded batches): [`crate::retention`] runs
    /// that loop, and `hookroom serve` starts it. A redelivery of a purged task's webhook is a new task, so keep
    /// tasks at least as long as senders retry.
    pub log_retention_days: Option<u32>,
}

/// A setting that loads but does not do what it says; see
/// [`RoutesConfig::warnings`]. No setting of the current format warns; the
/// type stays so that a future one is not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarning {}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    routes: Vec<RouteSpec>,
    #[serde(default)]
    default_room: Option<String>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretList>,
    #[serde(default)]
    log_retention_days: Option<u32>,
}

impl RoutesConfig {
    /// Parses and validates a routes file's text.
    ///
    /// # Errors
    /// [`RoutesConfigError::Json`] / [`RoutesConfigError::Shape`] with line and column,
    /// [`RoutesConfigError::Route`] with the route's index, or a secret syntax error.
    pub fn from_json(text: &str) -> Result<Self, RoutesConfigError> {
        Self::from_slice(text.as_bytes())
    }

    /// As [`from_json`](Self::from_json), over bytes.
    ///
    /// # Errors
    /// As [`from_json`](Self::from_json).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, RoutesConfigError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            match e.classify() {
                serde_json::error::Category::Data => RoutesConfigError::Shape {
                    line,
                    column,
                    message: shape_message(&e),
                },
                _ => RoutesConfigError::Json {
                    line,
                    column,
                    message: shape_message(&e),
                },
            }
        })?;
        let mut secrets = BTreeMap::new();
        for (source, list) in raw.secrets {
            if list.0.is_empty() {
                return Err(RoutesConfigError::NoSecrets { source });
            }
            let mut parsed = Vec::with_capacity(list.0.len());
            for one in list.0 {
                parsed.push(match one {
                    SecretSource::Literal(text) => SecretSource::parse(&source, &text)?,
                    other => other,
                });
            }
            secrets.insert(source, parsed);
        }
        let config = Self {
            routes: raw.routes,
            default_room: raw.default_room,
            secrets,
            log_retention_days: raw.log_retention_days,
        };
        config.validate()?;
        for warning in config.warnings() {
            tracing::warn!(%warning, "routes file");
        }
        Ok(config)
    }

    /// Settings in this config that are accepted but have no effect, so that
    /// none of them is silently ignored. Loading a routes file
    /// ([`from_json`](Self::from_json) and friends) also logs each one with
    /// `tracing::warn!`. Every setting of the current format has an effect
    /// (`log_retention_days` through the purge of whoever serves the config).
    ///
    /// ```
    /// use hookroom::route::RoutesConfig;
    ///
    /// let config = RoutesConfig::from_json(r#"{"log_retention_days": 7}"#)?;
    /// assert!(config.warnings().is_empty());
    /// # Ok::<(), hookroom::route::RoutesConfigError>(())
    /// ```
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        Vec::new()
    }

    /// Reads and parses a routes file.
    ///
    /// # Errors
    /// [`RoutesConfigError::FileUnreadable`], or as [`from_json`](Self::from_json).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, RoutesConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| RoutesConfigError::FileUnreadable {
            path: path.to_path_buf(),
            kind: e.kind(),
        })?;
        Self::from_slice(&bytes)
    }

    /// Checks every route and the default room.
    ///
    /// # Errors
    /// [`RoutesConfigError::Route`] for the first invalid route,
    /// [`RoutesConfigError::EmptyDefaultRoom`].
    pub fn validate(&self) -> Result<(), RoutesConfigError> {
        for (index, route) in self.routes.iter().enumerate() {
            route
                .compile()
                .map_err(|error| RoutesConfigError::Route { index, error })?;
        }
        if self.default_room.as_deref() == Some("") {
            return Err(RoutesConfigError::EmptyDefaultRoom);
        }
        Ok(())
    }

    /// Resolves every source's secrets, looking variables up with `env`.
    ///
    /// # Errors
    /// The first failure, as [`SecretSource::resolve_with`] reports it: a
    /// [`RoutesConfigError::SourceSecret`] naming the source and wrapping
    /// [`ConfigError::EnvVarMissing`](crate::verify::ConfigError::EnvVarMissing)
    /// (naming the variable),
    /// [`ConfigError::FileUnreadable`](crate::verify::ConfigError::FileUnreadable) or
    /// [`ConfigError::EmptySecret`](crate::verify::ConfigError::EmptySecret).
    pub fn resolve_secrets_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, Vec<Secret>>, RoutesConfigError> {
        self.secrets
            .iter()
            .map(|(source, list)| {
                let resolved = list
                    .iter()
                    .map(|s| s.resolve_with(source, env))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((source.clone(), resolved))
            })
            .collect()
    }

    /// [`resolve_secrets_with`](Self::resolve_secrets_with) over the process
    /// environment.
    ///
    /// # Errors
    /// As [`resolve_secrets_with`](Self::resolve_secrets_with).
    pub fn resolve_secrets(&self) -> Result<BTreeMap<String, Vec<Secret>>, RoutesConfigError> {
        self.resolve_secrets_with(&|name| std::env::var(name).ok())
    }

    /// The config as JSON, with secret references as written and literal
    /// secrets as `"[redacted]"`.
    pub fn to_json(&self) -> Value {
        let secrets: BTreeMap<&String, SecretList> = self
            .secrets
            .iter()
            .map(|(k, v)| (k, SecretList(v.clone())))
            .collect();
        serde_json::json!({
            "routes": self.routes,
            "default_room": self.default_room,
            "secrets": secrets,
            "log_retention_days": self.log_retention_days,
        })
    }
}

/// serde_json's message without its trailing position (reported separately).
fn shape_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
        None => text,
    }
}
