//! Running a suite's checks one by one and saying, by name, which passed.
//!
//! Each suite lists its checks ([`task_store::checks`](super::task_store::checks),
//! [`job_registry::checks`](super::job_registry::checks),
//! [`status_sink::checks`](super::status_sink::checks)) as [`Check`]s: a name
//! and the function that runs it. A check asserts like a test does, so it
//! panics on the first broken rule; the runner catches that panic, records
//! its message against the check's name, and goes on with the next check.
//! The [`Report`] it returns lists every check in the order it ran.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The future a check's function returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One check of a suite: its name and the function that runs it.
///
/// `F` is the suite's function type (for example
/// [`task_store::CheckFn`](super::task_store::CheckFn)). Calling `run`
/// directly panics on the first broken rule, as the check's own `pub async
/// fn` does; the suite's `run` and `run_checks` catch that and report it.
#[derive(Debug, Clone, Copy)]
pub struct Check<F> {
    /// The name the [`Report`] gives it: the name of the check's `pub async
    /// fn` in its suite module.
    pub name: &'static str,
    /// Runs the check.
    pub run: F,
}

/// Why a check failed: the message of the assertion (or `expect`) that
/// stopped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The panic message, as `assert!` or `expect` wrote it.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The check's name ([`Check::name`]).
    pub check: &'static str,
    /// `Ok` when every rule held; otherwise the first that did not.
    pub result: Result<(), Failure>,
    /// Wall time the check took.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// Every check one run went through, in the order they ran, each passed or
/// failed by name.
///
/// `Display` prints one line per check and a count, for example:
///
/// ```text
/// task_store conformance: 15 passed, 1 failed
///   ok    insert_idempotent (2 ms)
///   FAIL  claim_order: the lower priority number first
///   ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    suite: &'static str,
    outcomes: Vec<Outcome>,
}

impl Report {
    pub(crate) fn new(suite: &'static str) -> Self {
        Self {
            suite,
            outcomes: Vec::new(),
        }
    }

    /// The suite the checks come from: `task_store`, `job_registry` or
    /// `status_sink`.
    pub fn suite(&self) -> &'static str {
        self.suite
    }

    /// Every check's outcome, in the order they ran.
    pub fn outcomes(&self) -> &[Outcome] {
        &self.outcomes
    }

    /// The outcome of the check named `check`, if it ran.
    pub fn outcome(&self, check: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.check == check)
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }

    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.outcomes.len() - self.passed()
    }

    /// The checks that failed, in the order they ran.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| !o.passed())
    }

    /// Whether every check that ran passed.
    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }

    /// Panics with the whole report (every check, the failed ones with their
    /// messages) unless every check passed. For a backend's test:
    /// `suite::run(..).await.assert_all_passed()`.
    ///
    /// # Panics
    /// When a check failed.
    #[track_caller]
    pub fn assert_all_passed(&self) {
        assert!(self.all_passed(), "{self}");
    }

    /// Runs `check` (named `name`), catching the panic that reports a broken
    /// rule, and adds its outcome.
    pub(crate) async fn run<F: Future<Output = ()>>(&mut self, name: &'static str, check: F) {
        let started = Instant::now();
        let result = CatchPanic(Box::pin(check))
            .await
            .map_err(|payload| Failure {
                message: panic_message(payload.as_ref()),
            });
        self.outcomes.push(Outcome {
            check: name,
            result,
            elapsed: started.elapsed(),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} conformance: {} passed, {} failed",
            self.suite,
            self.passed(),
            self.failed()
        )?;
        for outcome in &self.outcomes {
            match &outcome.result {
                Ok(()) => write!(
                    f,
                    "\n  ok    {} ({} ms)",
                    outcome.check,
                    outcome.elapsed.as_millis()
                )?,
                // A multi-line message (an `assert_eq!`, a shrunk
                // sequence) stays indented under its check.
                Err(failure) => write!(
                    f,
                    "\n  FAIL  {}: {}",
                    outcome.check,
                    failure.message.replace('\n', "\n        ")
                )?,
            }
        }
        Ok(())
    }
}

/// The text of a panic payload: what `panic!`, `assert!` and `expect` carry.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else {
        "panicked with a payload that is not text".to_owned()
    }
}

/// A future that ends with the panic of the one it wraps instead of
/// unwinding through the caller.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = Result<(), Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        // A check that panicked is never polled again, so whatever it left
        // half-done cannot be observed through it.
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
