//! Closure sinks: a [`StatusSink`] made from an `FnMut`, for hooks that only
//! log, count or forward events.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{JobEvent, SinkError, StatusSink};

/// A [`StatusSink`] that calls a closure for every event and never fails.
///
/// Made by [`status_fn`]. The closure runs under a lock, one event at a time,
/// so it may keep state; it must not block.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use hookroom::status::{JobEvent, StatusSink, status_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let seen = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&seen);
/// let sink = status_fn(move |event: &JobEvent| {
///     tracing::info!(job = event.job_id(), "job event");
///     counter.fetch_add(1, Ordering::Relaxed);
/// });
/// sink.publish(JobEvent::Created {
///     job_id: "job-1".into(),
///     at: time::OffsetDateTime::now_utc(),
///     input_data: hookroom::status::JobInput::null(),
///     metadata: Default::default(),
/// })
/// .await
/// .unwrap();
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// # }
/// ```
pub struct FnStatusSink<F> {
    hook: Mutex<F>,
}

/// Wraps a closure as a [`StatusSink`]; see [`FnStatusSink`].
pub fn status_fn<F>(hook: F) -> FnStatusSink<F>
where
    F: FnMut(&JobEvent) + Send + 'static,
{
    FnStatusSink {
        hook: Mutex::new(hook),
    }
}

impl<F> std::fmt::Debug for FnStatusSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnStatusSink").finish_non_exhaustive()
    }
}

#[async_trait]
impl<F> StatusSink for FnStatusSink<F>
where
    F: FnMut(&JobEvent) + Send + 'static,
{
    async fn publish(&self, event: JobEvent) -> Result<(), SinkError> {
        let mut hook = self.hook.lock().unwrap_or_else(PoisonError::into_inner);
        (*hook)(&event);
        Ok(())
    }
}

/// The unit sink drops every event, like [`NoopStatusSink`](super::NoopStatusSink).
#[async_trait]
impl StatusSink for () {
    async fn publish(&self, _event: JobEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> JobEvent {
        JobEvent::Created {
            job_id: id.into(),
            at: time::OffsetDateTime::UNIX_EPOCH,
            input_data: crate::status::JobInput::null(),
            metadata: Default::default(),
        }
    }

    #[tokio::test]
    async fn closure_sees_every_event_in_order() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = status_fn(move |event: &JobEvent| {
            let _ = tx.send(event.job_id().to_owned());
        });
        sink.publish(event("a")).await.unwrap();
        sink.publish(event("b")).await.unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(format!("{sink:?}"), "FnStatusSink { .. }");
    }

    #[tokio::test]
    async fn unit_sink_accepts_everything() {
        assert!(().publish(event("a")).await.is_ok());
    }
}
