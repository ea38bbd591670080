//! A per-source token bucket, lock-free (GCRA: one atomic per source).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::clock::Clock;

/// A rate limit: `per_second` requests per second on average, with bursts of
/// up to `burst` requests.
///
/// ```
/// use hookroom::service::RateLimit;
///
/// let limit = RateLimit::new(50, 100);
/// assert_eq!(limit.per_second(), 50);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
}

impl RateLimit {
    /// `per_second` requests per second, bursts of `burst`. Zero values are
    /// raised to 1 (a limit that admits nothing is not a rate limit).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            burst: burst.max(1),
        }
    }

    /// Average admitted requests per second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Largest burst admitted at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// The state of one source's bucket.
///
/// Generic cell rate algorithm: `tat` is the theoretical arrival time of the
/// next request; a request is admitted when `tat - now <= tolerance`, and
/// pushes `tat` one emission interval further. Equivalent to a token bucket
/// of `burst` tokens refilled at `per_second`.
#[derive(Debug)]
pub(crate) struct Bucket {
    interval_nanos: i64,
    tolerance_nanos: i64,
    tat: AtomicI64,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let interval = 1_000_000_000 / i64::from(limit.per_second);
        Self {
            interval_nanos: interval,
            tolerance_nanos: interval.saturating_mul(i64::from(limit.burst) - 1),
            tat: AtomicI64::new(i64::MIN),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub(crate) fn acquire(&self, clock: &dyn Clock) -> Result<(), Duration> {
        let now = i64::try_from(clock.now().unix_timestamp_nanos()).unwrap_or(i64::MAX);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            if base - now > self.tolerance_nanos {
                let wait = base - now - self.tolerance_nanos;
                return Err(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
            }
            let next = base.saturating_add(self.interval_nanos);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn burst_then_refill_at_rate() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let bucket = Bucket::new(RateLimit::new(2, 3));
        for _ in 0..3 {
            assert!(bucket.acquire(&clock).is_ok());
        }
        let wait = bucket.acquire(&clock).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        clock.advance(Duration::from_millis(499));
        assert!(bucket.acquire(&clock).is_err());
        clock.advance(Duration::from_millis(1));
        assert!(bucket.acquire(&clock).is_ok());
        assert!(bucket.acquire(&clock).is_err());
    }

    #[test]
    fn idle_time_does_not_bank_more_than_the_burst() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let bucket = Bucket::new(RateLimit::new(10, 2));
        clock.advance(Duration::from_secs(3600));
        assert!(bucket.acquire(&clock).is_ok());
        assert!(bucket.acquire(&clock).is_ok());
        assert!(bucket.acquire(&clock).is_err());
    }

    #[test]
    fn zero_limits_are_raised_to_one() {
        let limit = RateLimit::new(0, 0);
        assert_eq!((limit.per_second(), limit.burst()), (1, 1));
    }
}
