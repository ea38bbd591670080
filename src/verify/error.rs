//! Why a request failed verification.

use crate::error_code::ErrorCode;

/// Why a request failed verification. Carries header names only, never
/// values, secrets or computed signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    MissingHeader {
        /// The header's name.
        header: &'static str,
    },
    /// A header is present but not in the scheme's format.
    MalformedHeader {
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
            Self::SignatureMismatch => f.write_str("signature does not match"),
            Self::TimestampOutOfTolerance => f.write_str("timestamp outside the allowed tolerance"),
        }
    }
}

impl std::error::Error for VerifyError {}
