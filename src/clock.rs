//! Time as a dependency: every component that compares against "now" takes a
//! [`Clock`], so tests move time by hand instead of sleeping.
//!
//! # Time as a number
//! Stores and indexes keep a time as whole nanoseconds since the Unix epoch
//! in an `i64` ([`to_unix_nanos`], [`from_unix_nanos`]), which holds the
//! times from 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z.
//! One rule for a time outside that range: it saturates, to `i64::MIN`
//! before it and to `i64::MAX` after it, so it still sorts before or after
//! every time inside. Every `i64` reads back as a time.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// A source of the current time.
///
/// Implementations must be cheap: verifiers call [`Clock::now`] once per
/// request on the hot path.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current time as whole seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// `t` as whole nanoseconds since the Unix epoch, saturating to `i64::MIN`
/// before 1677-09-21 and to `i64::MAX` after 2262-04-11 (see the
/// [module docs](self#time-as-a-number)).
///
/// ```
/// use hookroom::clock::{from_unix_nanos, to_unix_nanos};
/// use time::macros::datetime;
///
/// let t = datetime!(2024-05-01 12:00:00.5 UTC);
/// assert_eq!(from_unix_nanos(to_unix_nanos(t)), t);
/// assert_eq!(to_unix_nanos(datetime!(1600-01-01 0:00 UTC)), i64::MIN);
/// assert_eq!(to_unix_nanos(datetime!(2300-01-01 0:00 UTC)), i64::MAX);
/// ```
pub fn to_unix_nanos(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

/// The time `nanos` nanoseconds after the Unix epoch (before it when
/// negative): the inverse of [`to_unix_nanos`] for every time in its range.
pub fn from_unix_nanos(nanos: i64) -> OffsetDateTime {
    // Every `i64` of nanoseconds (about ±292 years) lies inside the `time`
    // crate's range (±9999 years), so the fallback is never taken.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use hookroom::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.unix_seconds(), 1_700_000_090);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `unix` seconds since the epoch.
    pub fn at_unix(unix: i64) -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(unix.saturating_mul(1_000_000_000))),
        }
    }

    /// A clock stopped at the current wall-clock time.
    pub fn now_utc() -> Self {
        Self {
            nanos: Arc::new(AtomicI64::new(to_unix_nanos(OffsetDateTime::now_utc()))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `unix` seconds since the epoch.
    pub fn set_unix(&self, unix: i64) {
        self.nanos
            .store(unix.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        from_unix_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn unix_seconds(&self) -> i64 {
        self.nanos.load(Ordering::SeqCst).div_euclid(1_000_000_000)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
    fn unix_seconds(&self) -> i64 {
        (**self).unix_seconds()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    const NANO: Duration = Duration::from_nanos(1);

    #[test]
    fn unix_nanos_round_trip_inside_the_range_and_saturate_outside() {
        let earliest = from_unix_nanos(i64::MIN);
        let latest = from_unix_nanos(i64::MAX);
        assert_eq!(earliest, datetime!(1677-09-21 00:12:43.145224192 UTC));
        assert_eq!(latest, datetime!(2262-04-11 23:47:16.854775807 UTC));

        // The edges and a time on either side of the epoch keep their value.
        for nanos in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            assert_eq!(to_unix_nanos(from_unix_nanos(nanos)), nanos);
        }
        assert_eq!(
            to_unix_nanos(datetime!(1969-12-31 23:59:59 UTC)),
            -1_000_000_000
        );

        // One nanosecond outside: the nearer end, on both sides.
        assert_eq!(to_unix_nanos(earliest - NANO), i64::MIN);
        assert_eq!(to_unix_nanos(latest + NANO), i64::MAX);
        assert_eq!(to_unix_nanos(datetime!(-9999-01-01 0:00 UTC)), i64::MIN);
        assert_eq!(to_unix_nanos(datetime!(9999-12-31 0:00 UTC)), i64::MAX);
    }

    #[test]
    fn unix_nanos_keep_the_order_of_times() {
        let times = [
            datetime!(1000-01-01 0:00 UTC),
            datetime!(1677-09-21 00:12:43.145224192 UTC),
            datetime!(1900-01-01 0:00 UTC),
            OffsetDateTime::UNIX_EPOCH,
            datetime!(2024-05-01 12:00 UTC),
            datetime!(2262-04-11 23:47:16.854775807 UTC),
            datetime!(3000-01-01 0:00 UTC),
        ];
        let nanos: Vec<i64> = times.iter().copied().map(to_unix_nanos).collect();
        assert!(nanos.is_sorted(), "{nanos:?}");
    }

    #[test]
    fn a_manual_clock_reads_back_its_time() {
        let clock = ManualClock::at_unix(-5);
        assert_eq!(clock.now(), datetime!(1969-12-31 23:59:55 UTC));
        assert_eq!(clock.unix_seconds(), -5);
    }
}
