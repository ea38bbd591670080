//! Time as a dependency: every component that compares against "now" takes a
//! [`Clock`], so tests move time by hand instead of sleeping.

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
        let now = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self {
            nanos: Arc::new(AtomicI64::new(i64::try_from(now).unwrap_or(i64::MAX))),
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
        let nanos = self.nanos.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
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
