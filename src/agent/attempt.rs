//! [`AttemptPolicy`]: how many tries a task gets and how long it waits between
//! them.

use std::time::Duration;

/// Tries and backoff for failed runs. The default: 3 tries, backoff factor 2
/// from a 1 s base (1 s, then 2 s), capped at 5 minutes.
///
/// ```
/// use std::time::Duration;
/// use hookroom::agent::AttemptPolicy;
///
/// let policy = AttemptPolicy::default().with_backoff_base(Duration::from_secs(10));
/// assert_eq!(policy.max_attempts(), 3);
/// assert_eq!(policy.backoff(1), Duration::from_secs(10));
/// assert_eq!(policy.backoff(2), Duration::from_secs(20));
/// assert_eq!(policy.backoff(3), Duration::from_secs(40));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    max_attempts: u32,
    backoff_base: Duration,
    backoff_factor: u32,
    max_backoff: Duration,
}

impl Default for AttemptPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            backoff_factor: 2,
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl AttemptPolicy {
    /// Total tries, the first included (at least 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Wait after the first failure.
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// Multiplier of the wait after each further failure (at least 1).
    pub fn with_backoff_factor(mut self, factor: u32) -> Self {
        self.backoff_factor = factor.max(1);
        self
    }

    /// Longest wait.
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Total tries, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before the next try after `failed_attempts` failures (from
    /// 1): `base * factor^(failed_attempts - 1)`, capped.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1);
        let multiplier = self
            .backoff_factor
            .checked_pow(exponent)
            .unwrap_or(u32::MAX);
        self.backoff_base
            .checked_mul(multiplier)
            .unwrap_or(Duration::MAX)
            .min(self.max_backoff)
    }

    /// Whether another try is allowed after `attempts` tries.
    pub fn allows_retry_after(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_waits_one_then_two_seconds() {
        let policy = AttemptPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_secs(1));
        assert_eq!(policy.backoff(2), Duration::from_secs(2));
        assert!(policy.allows_retry_after(2));
        assert!(!policy.allows_retry_after(3));
    }

    #[test]
    fn backoff_saturates_at_the_cap() {
        let policy = AttemptPolicy::default().with_max_backoff(Duration::from_secs(60));
        assert_eq!(policy.backoff(7), Duration::from_secs(60));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(60));
        assert_eq!(policy.backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn degenerate_settings_are_clamped() {
        let policy = AttemptPolicy::default()
            .with_max_attempts(0)
            .with_backoff_factor(0);
        assert_eq!(policy.max_attempts(), 1);
        assert_eq!(policy.backoff(5), Duration::from_secs(1));
    }
}
