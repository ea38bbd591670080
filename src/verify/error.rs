//! Why a request failed verification, and why a verifier could not be built.

use std::path::PathBuf;

use crate::error_code::ErrorCode;

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

/// Why a secret, a verifier o/// Why a secret or a verifier cannot be used.
///
/// Names the environment variable, file or setting at fault; never a
/// secret's value. A routes file wraps these in
/// [`RoutesConfigError::SourceSecret`](crate::route::RoutesConfigError::SourceSecret)
/// for the secrets it names.
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
    /// A secret file could not be read.
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
        }
    }
}

impl std::error::Error for ConfigError {}
