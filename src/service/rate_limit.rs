//! A per-source token bucket, lock-free (GCRA: one atomic per source).
//!
//! Intervals are measured on the monotonic clock ([`tokio::time::Instant`]):
//! a wall clock stepped back (NTP, a VM resumed, an operator) must not turn
//! a sender away for as long as it was stepped.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

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
/// of `burst` tokens refilled at `per_second`. Times are nanoseconds since
/// `origin`, the bucket's creation.
#[derive(Debug)]
pub(crate) struct Bucket {
    origin: Instant,
    interval_nanos: i64,
    tolerance_nanos: i64,
    tat: AtomicI64,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let interval = 1_000_000_000 / i64::from(limit.per_second);
        Self {
            origin: Instant::now(),
            interval_nanos: interval,
            tolerance_nanos: interval.saturating_mul(i64::from(limit.burst) - 1),
            tat: AtomicI64::new(i64::MIN),
        }
    }

    /// Takes one token, or says how long until one is available.
    pub(crate) fn acquire(&self, now: Instant) -> Result<(), Duration> {
        let since = now.saturating_duration_since(self.origin);
        let now = i64::try_from(since.as_nanos()).unwrap_or(i64::MAX);
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

    #[test]
    fn burst_then_refill_at_rate() {
        let bucket = Bucket::new(RateLimit::new(2, 3));
        let start = bucket.origin;
        for _ in 0..3 {
            assert!(bucket.acquire(start).is_ok());
        }
        let wait = bucket.acquire(start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(bucket.acquire(start + Duration::from_millis(499)).is_err());
        let later = start + Duration::from_millis(500);
        assert!(bucket.acquire(later).is_ok());
        assert!(bucket.acquire(later).is_err());
    }

    #[test]
    fn idle_time_does_not_bank_more_than_the_burst() {
        let bucket = Bucket::new(RateLimit::new(10, 2));
        let later = bucket.origin + Duration::from_secs(3600);
        assert!(bucket.acquire(later).is_ok());
        assert!(bucket.acquire(later).is_ok());
        assert!(bucket.acquire(later).is_err());
    }

    #[test]
    fn an_instant_before_the_bucket_counts_as_its_start() {
        let bucket = Bucket::new(RateLimit::new(1, 1));
        let before = bucket.origin.checked_sub(Duration::from_secs(10));
        if let Some(before) = before {
            assert!(bucket.acquire(before).is_ok());
            assert!(bucket.acquire(before).is_err());
        }
    }

    #[test]
    fn zero_limits_are_raised_to_one() {
        let limit = RateLimit::new(0, 0);
        assert_eq!((limit.per_second(), limit.burst()), (1, 1));
    }
}
