//! The worker's own view of the lease it holds, so it stops an agent whose
//! lease ran out while the store could not be reached.
//!
//! Each grant (a claim or a successful heartbeat) gives a local deadline:
//! the moment the request was sent, plus the lease the store granted
//! (`lease_expires_at - updated_at` of the returned task, at most the lease
//! asked for), minus the worker's lease margin. Starting from the send time
//! means neither the worker's and the store's clocks nor the request's
//! latency can stretch the deadline past the store's own. The deadline is
//! kept twice, on the worker's [`Clock`] and on the monotonic clock, and is
//! passed when either says so: a wall clock stepped back cannot keep an
//! agent running on a lapsed lease.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::task::Task;

/// When a request that may grant a lease left the worker.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    at: OffsetDateTime,
    instant: Instant,
}

impl Sent {
    /// Now, on both clocks.
    pub(super) fn now(clock: &dyn Clock) -> Self {
        Self {
            at: clock.now(),
            instant: Instant::now(),
        }
    }
}

/// The last moment the worker trusts its claim.
#[derive(Debug, Clone, Copy)]
pub(super) struct LocalLease {
    at: OffsetDateTime,
    instant: Instant,
}

impl LocalLease {
    /// The deadline of the lease granted by a request sent at `sent` asking
    /// for `requested`, whose answer is `task`.
    pub(super) fn granted(sent: Sent, task: &Task, requested: Duration, margin: Duration) -> Self {
        let granted = task
            .lease_expires_at
            .map_or(requested, |until| {
                Duration::try_from(until - task.updated_at).unwrap_or(Duration::ZERO)
            })
            .min(requested);
        let trusted = granted.saturating_sub(margin);
        Self {
            at: sent
                .at
                .saturating_add(trusted.try_into().unwrap_or(time::Duration::MAX)),
            instant: sent.instant + trusted,
        }
    }

    /// When the monotonic clock reaches the deadline.
    pub(super) fn instant(&self) -> Instant {
        self.instant
    }

    /// Whether the deadline has passed on either clock.
    pub(super) fn passed(&self, clock: &dyn Clock) -> bool {
        Instant::now() >= self.instant || clock.now() >= self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn task(updated: i64, lease_until: Option<i64>) -> Task {
        let at = |unix| OffsetDateTime::from_unix_timestamp(unix).unwrap();
        let mut task = crate::agent::testing::task("r", "t", "{}");
        task.updated_at = at(updated);
        task.lease_expires_at = lease_until.map(at);
        task
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_counts_from_the_send_time_on_the_workers_clock() {
        let clock = ManualClock::at_unix(1_000);
        let sent = Sent::now(&clock);
        // The store's clock is an hour ahead; it granted 60 s.
        let granted = task(4_600, Some(4_660));
        let lease = LocalLease::granted(
            sent,
            &granted,
            Duration::from_secs(60),
            Duration::from_secs(6),
        );
        clock.advance(Duration::from_secs(53));
        assert!(!lease.passed(&clock));
        clock.advance(Duration::from_secs(1));
        assert!(lease.passed(&clock), "54 s on the worker's clock");
    }

    #[tokio::test(start_paused = true)]
    async fn the_monotonic_clock_also_ends_the_lease() {
        let clock = ManualClock::at_unix(1_000);
        let lease = LocalLease::granted(
            Sent::now(&clock),
            &task(1_000, Some(1_030)),
            Duration::from_secs(30),
            Duration::from_secs(3),
        );
        assert_eq!(lease.instant(), Instant::now() + Duration::from_secs(27));
        tokio::time::advance(Duration::from_secs(27)).await;
        assert!(
            lease.passed(&clock),
            "the stopped wall clock does not keep it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_grant_or_none_is_honoured() {
        let clock = ManualClock::at_unix(1_000);
        let sent = Sent::now(&clock);
        let short = LocalLease::granted(
            sent,
            &task(1_000, Some(1_010)),
            Duration::from_secs(60),
            Duration::ZERO,
        );
        assert_eq!(short.instant(), Instant::now() + Duration::from_secs(10));
        let lapsed = LocalLease::granted(
            sent,
            &task(1_000, Some(990)),
            Duration::from_secs(60),
            Duration::ZERO,
        );
        assert!(lapsed.passed(&clock));
        let unknown = LocalLease::granted(
            sent,
            &task(1_000, None),
            Duration::from_secs(60),
            Duration::from_secs(6),
        );
        assert_eq!(unknown.instant(), Instant::now() + Duration::from_secs(54));
    }
}
