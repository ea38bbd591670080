//! The gateway's logs, metrics and alerts: `tracing-subscriber` configured
//! by `RUST_LOG` and `--log-format`, a Prometheus recorder served at
//! `/metrics`, and the built-in alert rules evaluated every few seconds.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::cli::LogFormat;

use hookroom::alert::{AlertMonitor, AlertRules, AlertSink, LogAlertSink};
use hookroom::clock::{Clock, SystemClock};

/// The variable that lets the MCP library log whole messages.
pub(crate) const LOG_MCP_MESSAGES_VAR: &str = "HOOKROOM_LOG_MCP_MESSAGES";

/// Installs the log subscriber: `RUST_LOG` filters (default `info`). The
/// MCP library (rmcp) logs whole messages at debug level (tool arguments
/// and results, webhook payloads among them) and each session's client
/// at info level, so it is held at `warn` unless `HOOKROOM_LOG_MCP_MESSAGES=1`.
pub(crate) fn init_tracing(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if std::env::var_os(LOG_MCP_MESSAGES_VAR).is_none_or(|v| v != "1")
        && let Ok(quiet) = "rmcp=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the Prometheus recorder and describes the crate's metrics.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| format!("metrics recorder: {e}"))?;
    hookroom::telemetry::describe();
    Ok(handle)
}

/// The variable `--alert-secret-env` names unless told otherwise.
pub(crate) const ALERT_SECRET_VAR: &str = "HOOKROOM_ALERT_SECRET";

/// Where alerts go besides the log: `--alert-url URL` and
/// `--alert-secret-env VAR`.
#[derive(Debug, Default)]
pub(crate) struct AlertArgs {
    /// POST every firing and resolved alert here, signed with Standard
    /// Webhooks.
    pub(crate) url: Option<String>,
    /// The variable holding the `whsec_…` signing secret (default
    /// [`ALERT_SECRET_VAR`]).
    pub(crate) secret_env: Option<String>,
}

/// The alert monitor on the system clock, evaluated every 10 s, alerts
/// logged and, with `--alert-url`, POSTed there signed with Standard
/// Webhooks (the secret from `--alert-secret-env`, default
/// `HOOKROOM_ALERT_SECRET`). The caller reports deliveries and jobs to it.
pub(crate) fn start_alerts(args: &AlertArgs) -> Result<Arc<AlertMonitor>, String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let monitor = Arc::new(AlertMonitor::new(AlertRules::default(), clock));
    let mut sinks: Vec<Arc<dyn AlertSink>> = vec![Arc::new(LogAlertSink)];
    if let Some(sink) = alert_webhook(args, |var| std::env::var(var).ok())? {
        sinks.push(sink);
    }
    tokio::spawn(Arc::clone(&monitor).run(sinks, Duration::from_secs(10)));
    Ok(monitor)
}

/// The signed alert webhook `args` ask for, if any; `env` reads a variable.
pub(crate) fn alert_webhook(
    args: &AlertArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn AlertSink>>, String> {
    let var = args.secret_env.as_deref().unwrap_or(ALERT_SECRET_VAR);
    let Some(url) = &args.url else {
        if args.secret_env.is_some() {
            return Err("--alert-secret-env needs --alert-url".into());
        }
        return Ok(None);
    };
    {
        let secret = env(var).ok_or_else(|| {
            format!("--alert-url: set {var} to the webhook's signing secret (whsec_<base64>)")
        })?;
        let sink = hookroom::alert::WebhookAlertSink::builder(url.clone(), secret)
            .build()
            .map_err(|e| format!("--alert-url: {e}"))?;
        // The URL may hold credentials: only its host is shown.
        let host = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "alerts: also POSTed to {host}, signed with Standard Webhooks (secret from {var})"
        );
        Ok(Some(Arc::new(sink)))
    }
}

/// Refreshes the per-room task gauges every 15 s (a scan of the store).
pub(crate) fn start_task_gauges(store: Arc<dyn hookroom::task::TaskStore>) {
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(Duration::from_secs(15));
        loop {
            timer.tick().await;
            let now = SystemClock.now();
            if let Err(error) = hookroom::telemetry::record_task_gauges(&*store, now).await {
                tracing::warn!(%error, "task gauges not refreshed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    //! `--alert-url` / `--alert-secret-env`: the signed alert webhook is
    //! added only with a URL and its secret, and a missing piece is a
    //! start-up error.

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_alert_webhook_needs_a_url_and_its_secret() {
        let none = alert_webhook(&AlertArgs::default(), |_| None).expect("no flags");
        assert!(none.is_none());

        let url = AlertArgs {
            url: Some("https://ops.example.com/alerts".into()),
            secret_env: None,
        };
        let missing = alert_webhook(&url, |_| None).expect_err("no secret");
        assert!(missing.contains(ALERT_SECRET_VAR), "{missing}");
        let read = alert_webhook(&url, |var| {
            (var == ALERT_SECRET_VAR).then(|| SECRET.to_owned())
        });
        assert!(read.expect("secret set").is_some());

        let named = AlertArgs {
            url: Some("https://ops.example.com/alerts".into()),
            secret_env: Some("OPS_ALERT_SECRET".into()),
        };
        let read = alert_webhook(&named, |var| {
            (var == "OPS_ALERT_SECRET").then(|| SECRET.to_owned())
        });
        assert!(read.expect("named variable").is_some());
        let bad = alert_webhook(&named, |_| Some("not a secret!".into())).expect_err("bad secret");
        assert!(
            !bad.contains("not a secret"),
            "the secret is never echoed: {bad}"
        );

        let orphan = AlertArgs {
            url: None,
            secret_env: Some("OPS_ALERT_SECRET".into()),
        };
        assert!(alert_webhook(&orphan, |_| None).is_err());
    }
}
