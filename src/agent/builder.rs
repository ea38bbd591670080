//! [`WorkerBuilder`]: a worker's settings, checked before it starts.

use std::sync::Arc;
use std::time::Duration;

use super::report::Reporter;
use super::worker::{Config, Shared};
use super::{Agent, AttemptPolicy, Worker};
use crate::clock::{Clock, SystemClock};
use crate::error_code::ErrorCode;
use crate::status::{NoopStatusSink, StatusSink};
use crate::task::TaskStore;

/// Settings of a [`Worker`]; every one has a default but the rooms.
///
/// | setting | default |
/// | --- | --- |
/// | [`status_sink`](Self::status_sink) | [`NoopStatusSink`] |
/// | [`clock`](Self::clock) (event timestamps, local lease deadline) | [`SystemClock`] |
/// | [`name`](Self::name) (`claimed_by`) | the agent's name |
/// | [`concurrency`](Self::concurrency) | 1 task in flight |
/// | [`timeout`](Self::timeout) | 30 s |
/// | [`lease`](Self::lease) | 60 s |
/// | [`heartbeat_interval`](Self::heartbeat_interval) | a third of the lease |
/// | [`lease_margin`](Self::lease_margin) | a tenth of the lease, at most half the time between a heartbeat and the lease's end |
/// | [`poll_interval`](Self::poll_interval) | 1 s (also the fallback when the store notifies) |
/// | [`input_poll_interval`](Self::input_poll_interval) | 1 s |
/// | [`retry`](Self::retry) | [`AttemptPolicy::default`]: 3 tries, 1 s then 2 s |
/// | [`grace_period`](Self::grace_period) | 30 s |
/// | [`reaper_interval`](Self::reaper_interval) | every 30 s |
#[derive(Debug)]
pub struct WorkerBuilder {
    agent: Arc<dyn Agent>,
    store: Arc<dyn TaskStore>,
    sink: Arc<dyn StatusSink>,
    clock: Arc<dyn Clock>,
    rooms: Vec<String>,
    name: Option<String>,
    concurrency: usize,
    timeout: Duration,
    lease: Duration,
    heartbeat: Option<Duration>,
    lease_margin: Option<Duration>,
    poll_interval: Duration,
    input_poll: Duration,
    retry: AttemptPolicy,
    grace: Duration,
    reaper: Option<Duration>,
}

/// Why a [`WorkerBuilder`] refused its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerBuildError {
    /// No room to claim from.
    NoRooms,
    /// Concurrency 0 would never run anything.
    ZeroConcurrency,
    /// A duration setting is zero.
    ZeroDuration {
        /// Which setting.
        setting: &'static str,
    },
    /// Heartbeats must come more often than the lease runs out.
    HeartbeatNotBelowLease {
        /// The heartbeat interval.
        heartbeat: Duration,
        /// The lease.
        lease: Duration,
    },
    /// The lease margin leaves no time for a heartbeat to renew the lease:
    /// it must be shorter than the lease minus the heartbeat interval.
    LeaseMarginTooLarge {
        /// The lease margin.
        margin: Duration,
        /// The lease.
        lease: Duration,
        /// The heartbeat interval.
        heartbeat: Duration,
    },
}

impl ErrorCode for WorkerBuildError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoRooms => "worker_no_rooms",
            Self::ZeroConcurrency => "worker_zero_concurrency",
            Self::ZeroDuration { .. } => "worker_zero_duration",
            Self::HeartbeatNotBelowLease { .. } => "worker_heartbeat_not_below_lease",
            Self::LeaseMarginTooLarge { .. } => "worker_lease_margin_too_large",
        }
    }
}

impl std::fmt::Display for WorkerBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRooms => f.write_str("a worker needs at least one room"),
            Self::ZeroConcurrency => f.write_str("worker concurrency must be at least 1"),
            Self::ZeroDuration { setting } => write!(f, "worker {setting} must not be zero"),
            Self::HeartbeatNotBelowLease { heartbeat, lease } => write!(
                f,
                "heartbeat interval {heartbeat:?} must be shorter than the lease {lease:?}"
            ),
            Self::LeaseMarginTooLarge {
                margin,
                lease,
                heartbeat,
            } => write!(
                f,
                "lease margin {margin:?} must be shorter than the lease {lease:?} minus the heartbeat interval {heartbeat:?}"
            ),
        }
    }
}

impl std::error::Error for WorkerBuildError {}

impl WorkerBuilder {
    /// Sends job status to `sink` (usually the one the
    /// [`WebhookService`](crate::service::WebhookService) reports to).
    pub fn status_sink(mut self, sink: Arc<dyn StatusSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Reads the time from `clock` (use the store's clock): job event
    /// timestamps and the local lease deadline.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a room to claim from.
    pub fn room(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }

    /// Adds several rooms; they are served in turn.
    pub fn rooms<I, S>(mut self, rooms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rooms.extend(rooms.into_iter().map(Into::into));
        self
    }

    /// Name recorded as `claimed_by` (default: the agent's name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Tasks in flight at once.
    pub fn concurrency(mut self, tasks: usize) -> Self {
        self.concurrency = tasks;
        self
    }

    /// Longest run of the agent on one task; time spent waiting for input
    /// does not count.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lease asked for on each claim and heartbeat.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often a running task's lease is extended (must be below the lease).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat = Some(every);
        self
    }

    /// How long before the end of the last lease the store granted the
    /// worker gives a claim up when heartbeats cannot renew it (the store is
    /// unreachable): it stops the agent and reports nothing more for the
    /// task, which another worker may claim once the lease is out.
    ///
    /// The lease counts from when the claim or heartbeat was sent, on the
    /// worker's [`clock`](Self::clock) and on the monotonic clock (whichever
    /// passes first), so the margin only has to cover the difference in rate
    /// between the worker's clock and the store's and the time the store
    /// takes to act on a call. Default: a tenth of the lease, and at most half
    /// the time from a heartbeat to the lease's end (6 s of the default 60 s
    /// lease). Must be shorter than the lease minus the heartbeat interval.
    pub fn lease_margin(mut self, margin: Duration) -> Self {
        self.lease_margin = Some(margin);
        self
    }

    /// How long to wait before claiming again when the rooms were empty.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How often [`JobHandle::ask_input`](super::JobHandle::ask_input) checks for an answer.
    pub fn input_poll_interval(mut self, every: Duration) -> Self {
        self.input_poll = every;
        self
    }

    /// Tries and backoff of failed runs.
    pub fn retry(mut self, policy: AttemptPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long in-flight tasks may run on after shutdown is asked for
    /// before they are released.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How often to expire pending tasks past their TTL (`None`: never; let
    /// another worker or process do it).
    pub fn reaper_interval(mut self, every: Option<Duration>) -> Self {
        self.reaper = every;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// A [`WorkerBuildError`] naming the first bad setting.
    pub fn build(self) -> Result<Worker, WorkerBuildError> {
        if self.rooms.is_empty() {
            return Err(WorkerBuildError::NoRooms);
        }
        if self.concurrency == 0 {
            return Err(WorkerBuildError::ZeroConcurrency);
        }
        let heartbeat = self.heartbeat.unwrap_or(self.lease / 3);
        for (setting, value) in [
            ("timeout", self.timeout),
            ("lease", self.lease),
            ("heartbeat interval", heartbeat),
            ("poll interval", self.poll_interval),
            ("input poll interval", self.input_poll),
            ("reaper interval", self.reaper.unwrap_or(Duration::MAX)),
        ] {
            if value.is_zero() {
                return Err(WorkerBuildError::ZeroDuration { setting });
            }
        }
        if heartbeat >= self.lease {
            return Err(WorkerBuildError::HeartbeatNotBelowLease {
                heartbeat,
                lease: self.lease,
            });
        }
        let renewal_window = self.lease - heartbeat;
        let lease_margin = self
            .lease_margin
            .unwrap_or_else(|| (self.lease / 10).min(renewal_window / 2));
        if lease_margin >= renewal_window {
            return Err(WorkerBuildError::LeaseMarginTooLarge {
                margin: lease_margin,
                lease: self.lease,
                heartbeat,
            });
        }
        let config = Config {
            rooms: self.rooms,
            name: self.name.unwrap_or_else(|| self.agent.name().to_owned()),
            capabilities: self.agent.capabilities(),
            concurrency: self.concurrency,
            timeout: self.timeout,
            lease: self.lease,
            lease_margin,
            heartbeat,
            poll_interval: self.poll_interval,
            input_poll: self.input_poll,
            retry: self.retry,
            grace: self.grace,
            reaper: self.reaper,
        };
        Ok(Worker {
            shared: Arc::new(Shared {
                agent: self.agent,
                store: self.store,
                reporter: Reporter {
                    sink: self.sink,
                    clock: self.clock,
                    counters: Arc::default(),
                },
                config,
            }),
        })
    }
}

impl Worker {
    /// A builder for a worker running `agent` on tasks of `store`.
    ///
    /// Both are shared: pass an `Arc` of your agent (an `Arc<MyAgent>`
    /// coerces) and the store the ingest service writes to.
    pub fn builder(agent: Arc<dyn Agent>, store: Arc<dyn TaskStore>) -> WorkerBuilder {
        WorkerBuilder {
            agent,
            store,
            sink: Arc::new(NoopStatusSink),
            clock: Arc::new(SystemClock),
            rooms: Vec::new(),
            name: None,
            concurrency: 1,
            timeout: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            heartbeat: None,
            lease_margin: None,
            poll_interval: Duration::from_secs(1),
            input_poll: Duration::from_secs(1),
            retry: AttemptPolicy::default(),
            grace: Duration::from_secs(30),
            reaper: Some(Duration::from_secs(30)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::WorkerStats;
    use crate::agent::test_helpers::noop_builder as builder;

    #[test]
    fn builder_rejects_bad_settings() {
        assert_eq!(builder().build().unwrap_err(), WorkerBuildError::NoRooms);
        let err = builder().room("r").concurrency(0).build().unwrap_err();
        assert_eq!(err, WorkerBuildError::ZeroConcurrency);
        let err = builder()
            .room("r")
            .lease(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(10))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            WorkerBuildError::HeartbeatNotBelowLease { .. }
        ));
        assert_eq!(err.code(), "worker_heartbeat_not_below_lease");
        let err = builder()
            .room("r")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err, WorkerBuildError::ZeroDuration { setting: "timeout" });
        assert_eq!(err.to_string(), "worker timeout must not be zero");
    }

    #[test]
    fn the_lease_margin_leaves_room_for_a_heartbeat() {
        let worker = builder()
            .room("r")
            .lease(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(9))
            .build()
            .unwrap();
        // A tenth of the lease would be 1 s; half the renewal window is less.
        assert_eq!(
            worker.shared.config.lease_margin,
            Duration::from_millis(500)
        );
        let err = builder()
            .room("r")
            .lease(Duration::from_secs(10))
            .heartbeat_interval(Duration::from_secs(9))
            .lease_margin(Duration::from_secs(1))
            .build()
            .unwrap_err();
        assert!(matches!(err, WorkerBuildError::LeaseMarginTooLarge { .. }));
        assert_eq!(err.code(), "worker_lease_margin_too_large");
        let worker = builder()
            .room("r")
            .lease_margin(Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(worker.shared.config.lease_margin, Duration::ZERO);
    }

    #[test]
    fn every_build_error_has_a_code_and_message() {
        let errors = [
            WorkerBuildError::NoRooms,
            WorkerBuildError::ZeroConcurrency,
            WorkerBuildError::ZeroDuration { setting: "lease" },
            WorkerBuildError::HeartbeatNotBelowLease {
                heartbeat: Duration::from_secs(2),
                lease: Duration::from_secs(1),
            },
            WorkerBuildError::LeaseMarginTooLarge {
                margin: Duration::from_secs(1),
                lease: Duration::from_secs(3),
                heartbeat: Duration::from_secs(2),
            },
        ];
        for err in errors {
            assert!(err.code().starts_with("worker_"));
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn defaults() {
        let worker = builder().room("r").build().unwrap();
        let config = &worker.shared.config;
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.retry.max_attempts(), 3);
        assert_eq!(config.heartbeat, Duration::from_secs(20));
        assert_eq!(config.lease_margin, Duration::from_secs(6));
        assert_eq!(config.name, "noop");
        assert_eq!(worker.stats(), WorkerStats::default());
    }
}
