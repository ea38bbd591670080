//! How the SQL backends store time: whole nanoseconds since the Unix epoch in
//! a 64-bit integer column (valid until the year 2262), read back from the
//! store's clock so every backend obeys the same clock in tests.

use std::time::Duration;

use time::OffsetDateTime;

/// `t` as nanoseconds since the epoch, saturating.
pub(crate) fn to_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// The time `n` nanoseconds after the epoch.
pub(crate) fn from_nanos(n: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `d` in nanoseconds, saturating.
pub(crate) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
