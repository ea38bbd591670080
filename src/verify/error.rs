//! Why a request failed verification, and why a verifier could not be built.

use std::path::PathBuf;

use crate::error_code::ErrorCode;
use crate::route::RouteError;

/// Why a request failed verification. Carries header names only, never
/// values, secrets or computed signatures.
///
/// The header names are the scheme's canonical spelling (for example
/// `X-Hub-Signature-256`). Verifiers whose header names are chosen at run time
/// ([`HmacVerifier`](super::HmacVerifier)) report the header's role instead
/// (`signature`, `timestamp`, `signed header`), so the error stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A header is present but not in the scheme's format (including a
    /// signature of the wrong length, which is never compared).
    MalformedHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A header that must appear once appears several times.
    DuplicateHeader {
        /// The header's name.
        header: &'static str,
    },
    /// No configured secret produces the presented signature.
    SignatureMismatch,
    /// The signed timestamp is further from now than the tolerance allows.
    TimestampOutOfTolerance,
}

impl ErrorCode for VerifyError {
    fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader { .. } => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::DuplicateHeader { .. } => "duplicate_header",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
        }
    }
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingHeader { header } => write!(f, "missing header `{header}`"),
            Self::MalformedHeader { header } => write!(f, "malformed header `{header}`"),
            Self::DuplicateHeader { header } => {
                write!(f, "header `{header}` must appear exactly once")
            }
            Self::SignatureMismatch => f.write_str("signature does not match"),
            Self::TimestampOutOfTolerance => f.write_str("timestamp outside the allowed tolerance"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Why a secret, a verifier or a routes file cannot be used: the one
/// configuration error of the crate, shared by [`verify`](crate::verify) and
/// [`route`](crate::route) (re-exported there as `route::ConfigError`).
///
/// Names the environment variable, file, setting or route at fault; never a
/// secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The environment variable is not set.
    EnvVarMissing {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is set but is not valid Unicode.
    EnvVarNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// A file could not be read (a secret file, or the routes file itself).
    FileUnreadable {
        /// The file's path.
        path: PathBuf,
        /// What the operating system reported.
        kind: std::io::ErrorKind,
    },
    /// A secret is empty or only whitespace (after the trimming described on
    /// [`Secret`](super::Secret)): an HMAC with an empty key is one anyone
    /// can compute.
    EmptySecret {
        /// Where the secret came from: a variable name, a file path, or
        /// `"value"` for bytes handed to [`Secret::new`](super::Secret::new).
        origin: String,
    },
    /// A key is not in the format its scheme requires (for example a
    /// Standard Webhooks secret that is not `whsec_` + base64).
    InvalidKey {
        /// The format the scheme expects.
        expected: &'static str,
    },
    /// A header name in the configuration is not a valid HTTP header name.
    InvalidHeaderName {
        /// Which setting holds it.
        setting: &'static str,
    },
    /// The signed-content template cannot be used.
    InvalidTemplate {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timestamp header is configured but its value is not signed (the
    /// template has no `{timestamp}` and does not name the header): checking
    /// the freshness of a header anyone can change proves nothing.
    UnsignedTimestamp,
    /// The routes file is not JSON.
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The JSON does not have the routes file's shape (unknown field, wrong
    /// type). Secret values are never quoted.
    Shape {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
    /// A route is invalid.
    Route {
        /// Its 0-based index in `routes`.
        index: usize,
        /// What is wrong.
        error: RouteError,
    },
    /// `default_room` is the empty string.
    EmptyDefaultRoom,
    /// A secret string in the routes file mixes `${…}` with text, or names an
    /// invalid variable.
    SecretReference {
        /// The source the secret belongs to.
        source: String,
    },
    /// A source in the routes file has an empty list of secrets.
    NoSecrets {
        /// The source.
        source: String,
    },
    /// One of a source's secrets in the routes file could not be loaded.
    SourceSecret {
        /// The source the secret belongs to.
        source: String,
        /// Why: [`EnvVarMissing`](Self::EnvVarMissing),
        /// [`FileUnreadable`](Self::FileUnreadable),
        /// [`EmptySecret`](Self::EmptySecret), …
        error: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The error behind a [`SourceSecret`](Self::SourceSecret) (itself for
    /// any other variant): what to match on to tell a missing variable from
    /// an unreadable file, whoever loaded the secret.
    pub fn root(&self) -> &ConfigError {
        match self {
            Self::SourceSecret { error, .. } => error.root(),
            other => other,
        }
    }
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        match self {
            Self::EnvVarMissing { .. } => "env_var_missing",
            Self::EnvVarNotUnicode { .. } => "env_var_not_unicode",
            Self::FileUnreadable { .. } => "file_unreadable",
            Self::EmptySecret { .. } => "empty_secret",
            Self::InvalidKey { .. } => "invalid_key",
            Self::InvalidHeaderName { .. } => "invalid_header_name",
            Self::InvalidTemplate { .. } => "invalid_template",
            Self::UnsignedTimestamp => "unsigned_timestamp",
            Self::Json { .. } => "config_invalid_json",
            Self::Shape { .. } => "config_invalid_shape",
            Self::Route { error, .. } => error.code(),
            Self::EmptyDefaultRoom => "config_empty_default_room",
            Self::SecretReference { .. } => "secret_invalid_reference",
            Self::NoSecrets { .. } => "no_secrets",
            Self::SourceSecret { error, .. } => error.code(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EnvVarMissing { name } => write!(f, "environment variable `{name}` is not set"),
            Self::EnvVarNotUnicode { name } => {
                write!(f, "environment variable `{name}` is not valid Unicode")
            }
            Self::FileUnreadable { path, kind } => {
                write!(f, "file `{}` cannot be read: {kind}", path.display())
            }
            Self::EmptySecret { origin } => {
                write!(f, "secret from `{origin}` is empty or only whitespace")
            }
            Self::InvalidKey { expected } => write!(f, "key is not {expected}"),
            Self::InvalidHeaderName { setting } => {
                write!(f, "`{setting}` is not a valid HTTP header name")
            }
            Self::InvalidTemplate { reason } => {
                write!(f, "invalid signed-content template: {reason}")
            }
            Self::UnsignedTimestamp => f.write_str(
                "the timestamp header is not signed: put `{timestamp}` in the signed-content template",
            ),
            Self::Json {
                line,
                column,
                message,
            } => write!(
                f,
                "routes file is not valid JSON at line {line} column {column}: {message}"
            ),
            Self::Shape {
                line,
                column,
                message,
            } => write!(f, "routes file at line {line} column {column}: {message}"),
            Self::Route { index, error } => write!(f, "route {index}: {error}"),
            Self::EmptyDefaultRoom => {
                f.write_str("`default_room` is empty (omit it to ignore unrouted events)")
            }
            Self::SecretReference { source } => write!(
                f,
                "secret of source `{source}`: write a variable as the whole string `${{NAME}}` (NAME: letters, digits, `_`)"
            ),
            Self::NoSecrets { source } => write!(f, "source `{source}` has an empty secret list"),
            Self::SourceSecret { source, error } => {
                write!(f, "secret of source `{source}`: {error}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Route { error, .. } => Some(error),
            Self::SourceSecret { error, .. } => Some(&**error),
            _ => None,
        }
    }
}
