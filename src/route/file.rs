//! [`RoutesFile`]: writing run-time route changes back to the routes file,
//! atomically.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::RoutesConfigError;
use super::config::{RouteSpec, RoutesConfig};
use crate::error_code::ErrorCode;

/// The routes file a [`RuleRouter`](super::RuleRouter) was loaded from,
/// so that route changes made while it runs survive a restart.
///
/// [`save_routes`](Self::save_routes) replaces only the file's `routes`
/// array: secrets (references and literals alike), `default_room` and every
/// other setting are kept as written, though keys are rewritten in
/// alphabetical order and the file re-indented. The new file is written
/// next to the old one, flushed to disk, given the old file's permissions
/// and renamed over it, so a crash leaves either the old file or the new
/// one, never a mix. A symbolic link is followed: its target is replaced.
///
/// ```no_run
/// use hookroom::route::{RouteSpec, RoutesFile, RuleRouter};
///
/// let file = RoutesFile::new("routes.json");
/// let router = RuleRouter::from_config(&file.load()?)?;
/// router.add(RouteSpec::new("github", "push", "ci"))?;
/// let routes: Vec<RouteSpec> = router.routes().into_iter().map(|r| r.spec).collect();
/// file.save_routes(&routes)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesFile {
    path: PathBuf,
}

/// Why route changes could not be written back to the routes file. The
/// file is unchanged.
#[derive(Debug)]
#[non_exhaustive]
pub enum SaveError {
    /// The current file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The current file is not a JSON object any more (edited meanwhile).
    NotAnObject {
        /// The file.
        path: PathBuf,
    },
    /// Writing, flushing or renaming the new file failed.
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

impl ErrorCode for SaveError {
    fn code(&self) -> &'static str {
        match self {
            Self::Read { .. } => "routes_file_unreadable",
            Self::NotAnObject { .. } => "routes_file_invalid",
            Self::Write { .. } => "routes_file_not_written",
        }
    }
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(f, "cannot read routes file {}: {source}", path.display())
            }
            Self::NotAnObject { path } => write!(
                f,
                "routes file {} is no longer a JSON object; not overwritten",
                path.display()
            ),
            Self::Write { path, source } => {
                write!(f, "cannot write routes file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } | Self::Write { source, .. } => Some(source),
            Self::NotAnObject { .. } => None,
        }
    }
}

impl RoutesFile {
    /// The routes file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file.
    ///
    /// # Errors
    /// As [`RoutesConfig::from_path`].
    pub fn load(&self) -> Result<RoutesConfig, RoutesConfigError> {
        RoutesConfig::from_path(&self.path)
    }

    /// Replaces the file's `routes` with `routes`, atomically (temporary
    /// file in the same directory, flushed, renamed over the file, and the
    /// directory flushed where the platform allows it).
    ///
    /// # Errors
    /// [`SaveError`]; the file is then unchanged.
    pub fn save_routes(&self, routes: &[RouteSpec]) -> Result<(), SaveError> {
        let path = std::fs::canonicalize(&self.path).map_err(|source| SaveError::Read {
            path: self.path.clone(),
            source,
        })?;
        let read_error = |source| SaveError::Read {
            path: path.clone(),
            source,
        };
        let text = std::fs::read(&path).map_err(read_error)?;
        let permissions = std::fs::metadata(&path).map_err(read_error)?.permissions();
        let mut document: Value = serde_json::from_slice(&text)
            .map_err(|_| SaveError::NotAnObject { path: path.clone() })?;
        let Some(object) = document.as_object_mut() else {
            return Err(SaveError::NotAnObject { path });
        };
        // Serializing plain route specs cannot fail.
        let routes = serde_json::to_value(routes).unwrap_or(Value::Array(Vec::new()));
        object.insert("routes".into(), routes);
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        write_atomically(&path, &bytes, permissions).map_err(|source| SaveError::Write {
            path: path.clone(),
            source,
        })
    }
}

fn write_atomically(
    path: &Path,
    bytes: &[u8],
    permissions: std::fs::Permissions,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "routes".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        // The old file's mode first: it may hold literal secrets.
        file.set_permissions(permissions)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    // The rename is durable once the directory is flushed; not every
    // platform can open a directory for that, and the file is in place
    // either way.
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hookroom-routes-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn only_routes_change_and_no_temporary_file_is_left() {
        let dir = temp_dir();
        let path = dir.join("routes.json");
        std::fs::write(
            &path,
            r#"{"routes": [], "default_room": "general", "secrets": {"github": ["${GH_NEW}", "literal-old"]},
                "log_retention_days": 7}"#,
        )
        .unwrap();
        let file = RoutesFile::new(&path);
        file.save_routes(&[
            RouteSpec::new("github", "push", "ci").with_filter("ref", "refs/heads/main")
        ])
        .unwrap();
        let config = file.load().unwrap();
        assert_eq!(
            config.routes,
            [RouteSpec::new("github", "push", "ci").with_filter("ref", "refs/heads/main")]
        );
        assert_eq!(config.default_room.as_deref(), Some("general"));
        assert_eq!(config.log_retention_days, Some(7));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("${GH_NEW}") && text.contains("literal-old"),
            "{text}"
        );
        let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(entries.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let path = dir.join("routes.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        RoutesFile::new(&path).save_routes(&[]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_is_not_an_object_is_left_alone() {
        let dir = temp_dir();
        let path = dir.join("routes.json");
        std::fs::write(&path, "[1]").unwrap();
        let err = RoutesFile::new(&path).save_routes(&[]).unwrap_err();
        assert!(matches!(err, SaveError::NotAnObject { .. }), "{err}");
        assert_eq!(err.code(), "routes_file_invalid");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]");
        let missing = RoutesFile::new(dir.join("absent.json"))
            .save_routes(&[])
            .unwrap_err();
        assert!(matches!(missing, SaveError::Read { .. }), "{missing}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
