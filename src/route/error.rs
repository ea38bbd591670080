//! [`RoutesConfigError`]: why a routes file or a list of routes cannot be used.

use std::path::PathBuf;

use super::RouteError;
use crate::error_code::ErrorCode;
use crate::verify::ConfigError;

/// Why a routes file, or a list of routes, cannot be used.
///
/// Names the file, setting, route or source at fault; never a secret's
/// value. A secret that cannot be loaded is
/// [`SourceSecret`](Self::SourceSecret), wrapping the loader's
/// [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutesConfigError {
    /// The routes file could not be read.
    FileUnreadable {
        /// The file's path.
        path: PathBuf,
        /// What the operating system reported.
        kind: std::io::ErrorKind,
    },
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
        /// Why: [`EnvVarMissing`](ConfigError::EnvVarMissing),
        /// [`FileUnreadable`](ConfigError::FileUnreadable),
        /// [`EmptySecret`](ConfigError::EmptySecret), …
        error: ConfigError,
    },
}

impl RoutesConfigError {
    /// The secret loader's error behind a
    /// [`SourceSecret`](Self::SourceSecret) (`None` for any other variant):
    /// what to match on to tell a missing variable from an unreadable file,
    /// whoever loaded the secret.
    pub fn secret_error(&self) -> Option<&ConfigError> {
        match self {
            Self::SourceSecret { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl ErrorCode for RoutesConfigError {
    fn code(&self) -> &'static str {
        match self {
            Self::FileUnreadable { .. } => "file_unreadable",
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

impl std::fmt::Display for RoutesConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FileUnreadable { path, kind } => {
                write!(f, "file `{}` cannot be read: {kind}", path.display())
            }
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

impl std::error::Error for RoutesConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Route { error, .. } => Some(error),
            Self::SourceSecret { error, .. } => Some(error),
            _ => None,
        }
    }
}
