//! Stable machine codes for errors that cross a wire.

/// An error with a stable, machine-readable code.
///
/// Codes are `snake_case` ASCII, never change once published, and never carry
/// request data: they are safe to put in JSON error bodies and metrics labels.
pub trait ErrorCode {
    /// The stable code, e.g. `"signature_mismatch"`.
    fn code(&self) -> &'static str;
}
