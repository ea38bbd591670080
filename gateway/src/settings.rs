//! The gateway's settings: defaults, then the settings file, then the
//! `HOOKROOM_*` variables and flags (clap reads those two).
//!
//! The settings file is TOML; `hookroom.default.toml` lists every key at its
//! default. An unknown key is an error, so a typo never passes silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{LogFormat, ServeArgs};
use crate::conn::Limits;

/// The settings file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsFile {
    listen: Option<SocketAddr>,
    store: Option<String>,
    config: Option<PathBuf>,
    strict: Option<bool>,
    log_format: Option<LogFormat>,
    metrics: Option<bool>,
    status_urls: Option<Vec<String>>,
    status_token_env: Option<String>,
    alert_url: Option<String>,
    alert_secret_env: Option<String>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    principals: Option<PathBuf>,
    allowed_origins: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
}

impl SettingsFile {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses settings from TOML text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let file: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        for (key, value) in [
            ("header_timeout_secs", file.header_timeout_secs),
            ("request_timeout_secs", file.request_timeout_secs),
            ("idle_timeout_secs", file.idle_timeout_secs),
            ("max_connections", file.max_connections.map(|n| n as u64)),
        ] {
            if value == Some(0) {
                return Err(format!("{key}: must be above 0"));
            }
        }
        Ok(file)
    }

    /// The routes file it names, resolved against the settings file's
    /// folder when relative.
    pub(crate) fn routes_file(&self, settings_path: &Path) -> Option<PathBuf> {
        self.config
            .as_ref()
            .map(|path| relative_to(settings_path, path))
    }
}

/// `path` as written in the settings file at `settings_path`: relative paths
/// are relative to that file's folder, so a settings file works from any
/// working directory.
fn relative_to(settings_path: &Path, path: &Path) -> PathBuf {
    match settings_path.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// What `hookroom serve` runs with, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: Option<PathBuf>,
    pub(crate) listen: SocketAddr,
    pub(crate) store: String,
    pub(crate) strict: bool,
    pub(crate) print_test_curl: bool,
    pub(crate) log_format: LogFormat,
    pub(crate) metrics: bool,
    pub(crate) status_urls: Vec<String>,
    pub(crate) status_token_env: Option<String>,
    pub(crate) alert_url: Option<String>,
    pub(crate) alert_secret_env: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) principals: Option<PathBuf>,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_hosts: Vec<String>,
}

/// The default listen address.
pub(crate) const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8935,
));

/// The default store: the embedded durable store, so an acknowledged
/// delivery survives a restart.
pub(crate) const DEFAULT_STORE: &str = "sqlite:hookroom.db";

impl Settings {
    /// Resolves `args` (flags and variables) over the settings file it
    /// names, over the defaults.
    pub(crate) fn resolve(args: ServeArgs) -> Result<Self, String> {
        let (file, config_from_file, principals_from_file) = match &args.settings {
            Some(path) => {
                let file = SettingsFile::load(path)?;
                let config = file.routes_file(path);
                let principals = file.principals.as_ref().map(|p| relative_to(path, p));
                (file, config, principals)
            }
            None => (SettingsFile::default(), None, None),
        };
        let defaults = Limits::default();
        let secs = |flag: Option<u64>, key: Option<u64>, default: Duration| {
            flag.or(key).map_or(default, Duration::from_secs)
        };
        let limits = Limits {
            header_read_timeout: secs(
                args.header_timeout,
                file.header_timeout_secs,
                defaults.header_read_timeout,
            ),
            request_timeout: secs(
                args.request_timeout,
                file.request_timeout_secs,
                defaults.request_timeout,
            ),
            idle_timeout: secs(
                args.idle_timeout,
                file.idle_timeout_secs,
                defaults.idle_timeout,
            ),
            max_connections: args
                .max_connections
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .or(file.max_connections)
                .unwrap_or(defaults.max_connections),
        };
        Ok(Self {
            config: args.config.or(config_from_file),
            listen: args.listen.or(file.listen).unwrap_or(DEFAULT_LISTEN),
            store: args
                .store
                .or(file.store)
                .unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            strict: args.strict || file.strict.unwrap_or(false),
            print_test_curl: args.print_test_curl,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            metrics: !args.no_metrics && file.metrics.unwrap_or(true),
            status_urls: if args.status_url.is_empty() {
                file.status_urls.unwrap_or_default()
            } else {
                args.status_url
            },
            status_token_env: args.status_token_env.or(file.status_token_env),
            alert_url: args.alert_url.or(file.alert_url),
            alert_secret_env: args.alert_secret_env.or(file.alert_secret_env),
            limits,
            principals: args.principals.or(principals_from_file),
            allowed_origins: if args.allowed_origins.is_empty() {
                file.allowed_origins.unwrap_or_default()
            } else {
                args.allowed_origins
            },
            allowed_hosts: if args.allowed_hosts.is_empty() {
                file.allowed_hosts.unwrap_or_default()
            } else {
                args.allowed_hosts
            },
        })
    }

    /// Development mode: no routes file and not strict.
    pub(crate) fn dev_mode(&self) -> bool {
        self.config.is_none() && !self.strict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped file lists every key at its default: parsing it and
    /// resolving with no flags gives the same settings as no file at all.
    #[test]
    fn the_shipped_defaults_file_parses_and_matches_the_defaults() {
        let text = include_str!("../hookroom.default.toml");
        let file = SettingsFile::parse(text).expect("hookroom.default.toml parses");
        assert_eq!(file.listen, Some(DEFAULT_LISTEN));
        assert_eq!(file.store.as_deref(), Some(DEFAULT_STORE));
        let limits = Limits::default();
        assert_eq!(
            file.header_timeout_secs,
            Some(limits.header_read_timeout.as_secs())
        );
        assert_eq!(
            file.request_timeout_secs,
            Some(limits.request_timeout.as_secs())
        );
        assert_eq!(file.idle_timeout_secs, Some(limits.idle_timeout.as_secs()));
        assert_eq!(file.max_connections, Some(limits.max_connections));
        assert_eq!(file.metrics, Some(true));
        assert_eq!(file.strict, Some(false));
        assert_eq!(file.log_format, Some(LogFormat::Text));
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let error = SettingsFile::parse("lissten = \"0.0.0.0:1\"").unwrap_err();
        assert!(error.contains("lissten"), "{error}");
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let error = SettingsFile::parse("idle_timeout_secs = 0").unwrap_err();
        assert!(error.contains("idle_timeout_secs"), "{error}");
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("hookroom-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookroom.toml");
        std::fs::write(
            &path,
            "store = \"memory\"\nlisten = \"127.0.0.1:9000\"\nconfig = \"routes.json\"\nidle_timeout_secs = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            settings: Some(path.clone()),
            listen: Some("127.0.0.1:9001".parse().unwrap()),
            ..ServeArgs::default()
        };
        let settings = Settings::resolve(args).unwrap();
        assert_eq!(settings.store, "memory");
        assert_eq!(settings.listen, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(settings.config, Some(dir.join("routes.json")));
        assert_eq!(settings.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.limits.request_timeout,
            Limits::default().request_timeout
        );
        assert!(!settings.dev_mode());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
