//! Alerts: the four rules of the job-status protocol's operations guide,
//! evaluated on the crate's [`Clock`], with firing and resolved alerts sent
//! to [`AlertSink`]s.
//!
//! | rule | fires when (defaults) |
//! | --- | --- |
//! | [`AlertKind::FailureRate`] | more than 5% of the webhook deliveries of the last 5 minutes failed (at least 20 deliveries seen) |
//! | [`AlertKind::SlowResponses`] | the average response of the last 5 minutes took longer than 10 s |
//! | [`AlertKind::StuckJob`] | a job has been `RUNNING` for more than 1 hour |
//! | [`AlertKind::AuthFailures`] | more than 10 signature checks failed in the last 5 minutes |
//!
//! An [`AlertMonitor`] takes observations: the
//! [`WebhookService`](crate::service::WebhookService) reports each delivery
//! to it ([`WebhookServiceBuilder::alerts`](crate::service::WebhookServiceBuilder::alerts)),
//! and through [`AlertMonitor::status_sink`], a
//! [`StatusSink`](crate::status::StatusSink) in front of yours, it follows
//! jobs. [`AlertMonitor::evaluate`] compares them with the rules and
//! returns what changed; [`AlertMonitor::run`] does that on a timer and
//! hands each change to the sinks: [`LogAlertSink`] logs them, and
//! `WebhookAlertSink` (feature `http-client`) POSTs them to a URL, signed
//! with Standard Webhooks.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hookroom::alert::{AlertKind, AlertMonitor, AlertRules, AlertState};
//! use hookroom::clock::ManualClock;
//!
//! let clock = ManualClock::at_unix(1_700_000_000);
//! let monitor = AlertMonitor::new(AlertRules::default(), Arc::new(clock.clone()));
//! for _ in 0..11 {
//!     monitor.record_auth_failure();
//! }
//! let changes = monitor.evaluate();
//! assert_eq!(changes[0].kind, AlertKind::AuthFailures);
//! assert_eq!(changes[0].state, AlertState::Firing);
//!
//! // Five minutes later the failures are out of the window: resolved.
//! clock.advance(Duration::from_secs(301));
//! assert_eq!(monitor.evaluate()[0].state, AlertState::Resolved);
//! ```

mod monitor;
mod sink;
#[cfg(feature = "http-client")]
mod webhook;

pub use monitor::{AlertMonitor, AlertingStatusSink};
pub use sink::{AlertSink, LogAlertSink};
#[cfg(feature = "http-client")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-client")))]
pub use webhook::{
    DEFAULT_ALERT_QUEUE, WebhookAlertSink, WebhookAlertSinkBuilder, WebhookAlertSinkError,
};

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

#[cfg(doc)]
use crate::clock::Clock;

/// Which rule an alert comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// Too many webhook deliveries failed.
    FailureRate,
    /// Responses took too long on average.
    SlowResponses,
    /// A job has been `RUNNING` too long.
    StuckJob,
    /// Too many signature checks failed.
    AuthFailures,
}

impl AlertKind {
    /// The rule's name, e.g. `"failure_rate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailureRate => "failure_rate",
            Self::SlowResponses => "slow_responses",
            Self::StuckJob => "stuck_job",
            Self::AuthFailures => "auth_failures",
        }
    }
}

/// Whether an alert started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds (it did not at the last evaluation).
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// A change of an alert's state, as sent to [`AlertSink`]s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The rule.
    pub kind: AlertKind,
    /// Firing or resolved.
    pub state: AlertState,
    /// The measured value (a ratio, seconds, or a count).
    pub value: f64,
    /// The rule's threshold.
    pub threshold: f64,
    /// What it means, for a person.
    pub summary: String,
    /// When it was evaluated.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The thresholds and windows of the four rules. The defaults are the
/// job-status protocol's.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Window for the delivery rules and the authentication rule.
    pub window: Duration,
    /// Failed deliveries above this share of the window's fire (0.05).
    pub max_failure_rate: f64,
    /// The failure rate is judged only with at least this many deliveries in
    /// the window (20), so one failure of two is not an outage.
    pub min_deliveries: usize,
    /// An average response above this fires (10 s).
    pub max_average_response: Duration,
    /// A job `RUNNING` longer than this fires (1 h).
    pub max_running: Duration,
    /// More failed signature checks than this in the window fire (10).
    pub max_auth_failures: usize,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            max_failure_rate: 0.05,
            min_deliveries: 20,
            max_average_response: Duration::from_secs(10),
            max_running: Duration::from_secs(3600),
            max_auth_failures: 10,
        }
    }
}
