//! Stable machine codes for errors that cross a wire.

/// An error with a stable, machine-readable code.
///
/// Codes never change once published and never carry request data: they
/// are safe to put in JSON error bodies and metrics labels. They are
/// `snake_case` ASCII (`signature_mismatch`, `not_held`), with one
/// exception: the Jobs API's errors ([`JobsApiError`](crate::service::JobsApiError),
/// [`SinkError`](crate::status::SinkError)) answer with the job-status
/// protocol's own codes, `E_` and upper case (`E_JOB_NOT_FOUND`,
/// `E_SERIALIZATION_ERROR`), because its clients match on those.
pub trait ErrorCode {
    /// The stable code, e.g. `"signature_mismatch"` or, for the Jobs API,
    /// `"E_JOB_NOT_FOUND"`.
    fn code(&self) -> &'static str;
}
