//! Where alerts go.

use async_trait::async_trait;

use super::{Alert, AlertState};

/// Receives every alert that starts firing or resolves.
#[async_trait]
pub trait AlertSink: std::fmt::Debug + Send + Sync + 'static {
    /// Delivers one alert change. Errors are the sink's to log; the monitor
    /// goes on.
    async fn send(&self, alert: &Alert);
}

/// Logs alerts through `tracing`: firing ones at `warn`, resolved ones at
/// `info`, with the rule, value and threshold as fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogAlertSink;

#[async_trait]
impl AlertSink for LogAlertSink {
    async fn send(&self, alert: &Alert) {
        let rule = alert.kind.as_str();
        match alert.state {
            AlertState::Firing => tracing::warn!(
                alert = rule,
                value = alert.value,
                threshold = alert.threshold,
                "alert firing: {}",
                alert.summary
            ),
            AlertState::Resolved => tracing::info!(
                alert = rule,
                value = alert.value,
                threshold = alert.threshold,
                "alert resolved: {}",
                alert.summary
            ),
        }
    }
}
