//! [`AlertMonitor`]: observations in, alert changes out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Alert, AlertKind, AlertRules, AlertSink, AlertState};
use crate::clock::Clock;
use crate::lifecycle::JobStatus;
use crate::status::{JobEvent, SinkError, StatusSink};

/// Collects what the rules look at and evaluates them.
///
/// Deliveries and authentication failures are counted in one-second buckets
/// over the rules' window, so memory stays bounded whatever the traffic;
/// running jobs are kept by id until they leave `RUNNING`.
#[derive(Debug)]
pub struct AlertMonitor {
    rules: AlertRules,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// One bucket per second that saw something, oldest first.
    buckets: VecDeque<Bucket>,
    /// Job id → when it went `RUNNING`.
    running: HashMap<String, OffsetDateTime>,
    /// The alerts firing now.
    firing: BTreeMap<AlertKind, Alert>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    second: i64,
    deliveries: u64,
    failed: u64,
    response_seconds: f64,
    auth_failures: u64,
}

impl AlertMonitor {
    /// A monitor for `rules`, on `clock`.
    pub fn new(rules: AlertRules, clock: Arc<dyn Clock>) -> Self {
        Self {
            rules,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bucket of the current second, after dropping those that left the
    /// window.
    fn with_bucket(&self, update: impl FnOnce(&mut Bucket)) {
        let second = self.clock.now().unix_timestamp();
        let mut state = self.state();
        state.prune(second, &self.rules);
        if state.buckets.back().is_none_or(|b| b.second != second) {
            state.buckets.push_back(Bucket {
                second,
                deliveries: 0,
                failed: 0,
                response_seconds: 0.0,
                auth_failures: 0,
            });
        }
        if let Some(bucket) = state.buckets.back_mut() {
            update(bucket);
        }
    }

    /// Records one answered delivery: whether it failed on the server's side
    /// (a `5xx` answer: the gateway could not take it) and how long the
    /// answer took.
    pub fn record_delivery(&self, failed: bool, took: Duration) {
        self.with_bucket(|bucket| {
            bucket.deliveries += 1;
            bucket.failed += u64::from(failed);
            bucket.response_seconds += took.as_secs_f64();
        });
    }

    /// Records one failed signature check.
    pub fn record_auth_failure(&self) {
        self.with_bucket(|bucket| bucket.auth_failures += 1);
    }

    /// Records a job's status change (what the [`StatusSink`] impl does).
    fn record_job(&self, event: &JobEvent) {
        let mut state = self.state();
        match event {
            JobEvent::Status {
                job_id,
                at,
                status: JobStatus::Running,
                ..
            } => {
                state.running.entry(job_id.clone()).or_insert(*at);
            }
            JobEvent::Status { job_id, .. } | JobEvent::Completed { job_id, .. } => {
                state.running.remove(job_id);
            }
            JobEvent::Created { .. } | JobEvent::Artifact { .. } => {}
        }
    }

    /// The alerts firing now.
    pub fn firing(&self) -> Vec<Alert> {
        self.state().firing.values().cloned().collect()
    }

    /// Evaluates every rule now and returns the alerts whose state changed
    /// since the last evaluation: newly firing, or resolved.
    pub fn evaluate(&self) -> Vec<Alert> {
        let now = self.clock.now();
        let rules = &self.rules;
        let mut state = self.state();
        state.prune(now.unix_timestamp(), rules);
        let (mut deliveries, mut failed, mut seconds, mut auth) = (0_u64, 0_u64, 0.0_f64, 0_u64);
        for bucket in &state.buckets {
            deliveries += bucket.deliveries;
            failed += bucket.failed;
            seconds += bucket.response_seconds;
            auth += bucket.auth_failures;
        }
        let failure_rate = if deliveries == 0 {
            0.0
        } else {
            failed as f64 / deliveries as f64
        };
        let average = if deliveries == 0 {
            0.0
        } else {
            seconds / deliveries as f64
        };
        let longest_running = state
            .running
            .values()
            .map(|since| (now - *since).as_seconds_f64())
            .fold(0.0_f64, f64::max);
        let window = rules.window.as_secs();
        let checks = [
            (
                AlertKind::FailureRate,
                deliveries as usize >= rules.min_deliveries.max(1)
                    && failure_rate > rules.max_failure_rate,
                failure_rate,
                rules.max_failure_rate,
                format!(
                    "{failed} of {deliveries} webhook deliveries failed in the last {window} s"
                ),
            ),
            (
                AlertKind::SlowResponses,
                deliveries > 0 && average > rules.max_average_response.as_secs_f64(),
                average,
                rules.max_average_response.as_secs_f64(),
                format!("webhook responses took {average:.3} s on average over {window} s"),
            ),
            (
                AlertKind::StuckJob,
                longest_running > rules.max_running.as_secs_f64(),
                longest_running,
                rules.max_running.as_secs_f64(),
                format!("a job has been RUNNING for {longest_running:.0} s"),
            ),
            (
                AlertKind::AuthFailures,
                auth > rules.max_auth_failures as u64,
                auth as f64,
                rules.max_auth_failures as f64,
                format!("{auth} webhook signature checks failed in the last {window} s"),
            ),
        ];
        let mut changes = Vec::new();
        for (kind, holds, value, threshold, summary) in checks {
            let was_firing = state.firing.contains_key(&kind);
            let state_now = match (holds, was_firing) {
                (true, false) => AlertState::Firing,
                (false, true) => AlertState::Resolved,
                _ => continue,
            };
            let alert = Alert {
                kind,
                state: state_now,
                value,
                threshold,
                summary,
                at: now,
            };
            match state_now {
                AlertState::Firing => {
                    state.firing.insert(kind, alert.clone());
                }
                AlertState::Resolved => {
                    state.firing.remove(&kind);
                }
            }
            changes.push(alert);
        }
        changes
    }

    /// Evaluates the rules every `every` and sends each change to every
    /// sink, until the returned future is dropped (spawn it).
    pub async fn run(self: Arc<Self>, sinks: Vec<Arc<dyn AlertSink>>, every: Duration) {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            for alert in self.evaluate() {
                for sink in &sinks {
                    sink.send(&alert).await;
                }
            }
        }
    }

    /// A [`StatusSink`] that shows every job event to this monitor, then
    /// passes it to `inner`.
    pub fn status_sink(self: &Arc<Self>, inner: Arc<dyn StatusSink>) -> AlertingStatusSink {
        AlertingStatusSink {
            monitor: Arc::clone(self),
            inner,
        }
    }
}

impl State {
    /// Drops buckets older than the window ending at `second`.
    fn prune(&mut self, second: i64, rules: &AlertRules) {
        let window = i64::try_from(rules.window.as_secs()).unwrap_or(i64::MAX);
        while self
            .buckets
            .front()
            .is_some_and(|b| b.second <= second.saturating_sub(window))
        {
            self.buckets.pop_front();
        }
    }
}

/// A [`StatusSink`] that lets an [`AlertMonitor`] follow jobs, made by
/// [`AlertMonitor::status_sink`].
#[derive(Debug)]
pub struct AlertingStatusSink {
    monitor: Arc<AlertMonitor>,
    inner: Arc<dyn StatusSink>,
}

#[async_trait]
impl StatusSink for AlertingStatusSink {
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        self.monitor.record_job(&event);
        self.inner.publish(event).await
    }

    async fn publish_once(&self, event: JobEvent, key: &str) -> Result<(), SinkError> {
        self.monitor.record_job(&event);
        self.inner.publish_once(event, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::status::NoopStatusSink;

    fn monitor() -> (Arc<AlertMonitor>, ManualClock) {
        let clock = ManualClock::at_unix(1_700_000_000);
        let monitor = Arc::new(AlertMonitor::new(
            AlertRules::default(),
            Arc::new(clock.clone()),
        ));
        (monitor, clock)
    }

    fn states(changes: &[Alert]) -> Vec<(AlertKind, AlertState)> {
        changes.iter().map(|a| (a.kind, a.state)).collect()
    }

    #[test]
    fn the_failure_rate_fires_above_five_percent_and_resolves_when_it_drops() {
        let (monitor, clock) = monitor();
        for n in 0..100 {
            monitor.record_delivery(n < 5, Duration::from_millis(5));
        }
        assert!(monitor.evaluate().is_empty(), "5% is not above 5%");
        monitor.record_delivery(true, Duration::from_millis(5));
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::FailureRate, AlertState::Firing)]
        );
        assert!(monitor.evaluate().is_empty(), "only changes are reported");
        assert_eq!(monitor.firing().len(), 1);
        clock.advance(Duration::from_secs(301));
        for _ in 0..30 {
            monitor.record_delivery(false, Duration::from_millis(5));
        }
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::FailureRate, AlertState::Resolved)]
        );
        assert!(monitor.firing().is_empty());
    }

    #[test]
    fn a_few_failures_among_few_deliveries_do_not_fire() {
        let (monitor, _) = monitor();
        for _ in 0..3 {
            monitor.record_delivery(true, Duration::from_millis(5));
        }
        assert!(monitor.evaluate().is_empty());
    }

    #[test]
    fn slow_responses_fire_on_the_average() {
        let (monitor, clock) = monitor();
        monitor.record_delivery(false, Duration::from_secs(25));
        monitor.record_delivery(false, Duration::from_secs(1));
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::SlowResponses, AlertState::Firing)]
        );
        clock.advance(Duration::from_secs(301));
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::SlowResponses, AlertState::Resolved)]
        );
    }

    #[tokio::test]
    async fn a_job_running_over_an_hour_fires_until_it_ends() {
        let (monitor, clock) = monitor();
        let sink = monitor.status_sink(Arc::new(NoopStatusSink));
        let running = |id: &str, at| JobEvent::Status {
            job_id: id.to_owned(),
            at,
            status: JobStatus::Running,
            progress: None,
            message: None,
            step: None,
        };
        sink.publish(running("j1", clock.now()))
            .await
            .expect("sink");
        clock.advance(Duration::from_secs(3600));
        assert!(monitor.evaluate().is_empty(), "exactly an hour is not over");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::StuckJob, AlertState::Firing)]
        );
        sink.publish(JobEvent::Completed {
            job_id: "j1".into(),
            at: clock.now(),
            final_status: JobStatus::Done,
            summary: None,
            artifacts: vec![],
            message: None,
        })
        .await
        .expect("sink");
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::StuckJob, AlertState::Resolved)]
        );
    }

    #[test]
    fn auth_failures_fire_above_the_threshold_within_the_window() {
        let (monitor, clock) = monitor();
        for _ in 0..10 {
            monitor.record_auth_failure();
        }
        assert!(monitor.evaluate().is_empty(), "10 is the threshold");
        clock.advance(Duration::from_secs(200));
        monitor.record_auth_failure();
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::AuthFailures, AlertState::Firing)]
        );
        // The first ten leave the window; one remains.
        clock.advance(Duration::from_secs(101));
        assert_eq!(
            states(&monitor.evaluate()),
            [(AlertKind::AuthFailures, AlertState::Resolved)]
        );
    }

    #[test]
    fn buckets_stay_bounded_by_the_window() {
        let (monitor, clock) = monitor();
        for _ in 0..1_000 {
            monitor.record_delivery(false, Duration::ZERO);
            clock.advance(Duration::from_secs(1));
        }
        assert!(monitor.state().buckets.len() <= 300);
    }
}
