//! `hookroom check`: loads the settings file and the routes file as `serve`
//! would, prints the effective routes and, per source, where each secret
//! comes from and whether it is set (by name only: never a value), and
//! fails on any error.
//!
//! With the shipped routes file (no `--config`), an unset variable is not
//! an error: `serve` stands in a development secret for it.

use std::fmt::Write as _;
use std::process::ExitCode;

use hookroom::route::{RoutesConfig, RuleRouter, SecretSource};

use crate::cli::CheckArgs;
use crate::serve::load_routes;
use crate::settings::SettingsFile;

/// Checks, prints the report on stdout, and answers the exit code.
pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode, String> {
    let from_settings = match &args.settings {
        Some(path) => {
            let file = SettingsFile::load(path)?;
            println!("settings: {} (valid)", path.display());
            file.routes_file(path)
        }
        None => None,
    };
    let config_path = args.config.clone().or(from_settings);
    let (config, name) = load_routes(config_path.as_deref())?;
    RuleRouter::from_config(&config).map_err(|e| format!("{name}: {e}"))?;
    let (report, unset) = report(&config, &name, &|var| std::env::var_os(var).is_some());
    print!("{report}");
    if unset > 0 && config_path.is_some() {
        return Err(format!(
            "{name}: {unset} secret variable(s) are not set; `hookroom serve` would refuse to start"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The report for `config`, and how many secret variables are unset
/// (`is_set` tells whether a variable is set).
fn report(config: &RoutesConfig, name: &str, is_set: &dyn Fn(&str) -> bool) -> (String, usize) {
    let mut out = String::new();
    let _ = writeln!(out, "routes file: {name} (valid)");
    let _ = writeln!(
        out,
        "routes ({}), first match wins by priority:",
        config.routes.len()
    );
    for (index, route) in config.routes.iter().enumerate() {
        let filter = if route.filter.is_empty() {
            String::new()
        } else {
            format!(
                " where {}",
                serde_json::to_string(&route.filter).unwrap_or_default()
            )
        };
        let ttl = route
            .ttl_seconds
            .map(|ttl| format!(", unclaimed for {ttl} s: expires"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {index}: {} {}{filter} -> room `{}` (priority {}{ttl})",
            route.source, route.event, route.target_room, route.priority
        );
    }
    match &config.default_room {
        Some(room) => {
            let _ = writeln!(out, "default room: `{room}` (events no route matches)");
        }
        None => {
            let _ = writeln!(
                out,
                "default room: none (events no route matches are ignored)"
            );
        }
    }
    match config.log_retention_days {
        Some(days) => {
            let _ = writeln!(out, "retention: finished tasks and jobs kept {days} day(s)");
        }
        None => {
            let _ = writeln!(out, "retention: finished tasks and jobs are kept");
        }
    }
    let _ = writeln!(out, "secrets:");
    let mut unset = 0;
    for (source, list) in &config.secrets {
        for (position, secret) in list.iter().enumerate() {
            let state = match secret {
                SecretSource::Env(var) if is_set(var) => format!("${{{var}}}: set"),
                SecretSource::Env(var) => {
                    unset += 1;
                    format!("${{{var}}}: NOT SET")
                }
                SecretSource::File(path) if path.is_file() => {
                    format!("file {}: present", path.display())
                }
                SecretSource::File(path) => {
                    unset += 1;
                    format!("file {}: MISSING", path.display())
                }
                SecretSource::Literal(_) => "written in the file (prefer ${VAR})".to_owned(),
            };
            let _ = writeln!(out, "  {source} #{}: {state}", position + 1);
        }
    }
    (out, unset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_variables_and_never_values() {
        let config = RoutesConfig::from_json(
            r#"{"routes": [{"source": "github", "event": "pull_request.*", "target_room": "pr-review", "priority": 2}],
                "secrets": {"github": ["${GH_NEW}", "${GH_OLD}"]}, "default_room": "general"}"#,
        )
        .unwrap();
        let (text, unset) = report(&config, "routes.json", &|var| var == "GH_NEW");
        assert_eq!(unset, 1, "{text}");
        assert!(
            text.contains("0: github pull_request.* -> room `pr-review` (priority 2)"),
            "{text}"
        );
        assert!(text.contains("github #1: ${GH_NEW}: set"), "{text}");
        assert!(text.contains("github #2: ${GH_OLD}: NOT SET"), "{text}");
        assert!(text.contains("default room: `general`"), "{text}");
    }
}
