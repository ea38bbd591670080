//! [`Secret`]: key material that redacts itself and is wiped on drop, and
//! [`Secrets`]: the ordered list a verifier tries (rotation).

use std::fmt;
use std::path::Path;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ConfigError;

/// Secret key material (an HMAC key, a shared token).
///
/// `Debug` and `Display` print `[redacted]`; the bytes are overwritten with
/// zeros when the value is dropped. There is deliberately no `PartialEq`: an
/// ordinary `==` would compare in variable time. Build one directly, from an environment
/// variable, or from a file:
///
/// ```
/// use hookroom::verify::Secret;
///
/// let secret = Secret::from("It's a Secret to Everybody");
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// assert_eq!(secret.to_string(), "[redacted]");
/// assert_eq!(secret.expose(), b"It's a Secret to Everybody");
///
/// // Errors name the variable, never a value.
/// let err = Secret::from_env("HOOKROOM_DOC_UNSET_VARIABLE").unwrap_err();
/// assert_eq!(err.to_string(), "environment variable `HOOKROOM_DOC_UNSET_VARIABLE` is not set");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// A secret holding `bytes` as given.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: bytes.into(),
        }
    }

    /// Reads the secret from the environment variable `name`.
    ///
    /// # Errors
    /// [`ConfigError::EnvVarMissing`], [`ConfigError::EnvVarNotUnicode`], or
    /// [`ConfigError::EmptySecret`] when the variable is set but empty.
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        match std::env::var(name) {
            Ok(value) => {
                let secret = Self::from(value);
                if secret.is_empty() {
                    return Err(ConfigError::EmptySecret {
                        origin: name.to_owned(),
                    });
                }
                Ok(secret)
            }
            Err(std::env::VarError::NotPresent) => Err(ConfigError::EnvVarMissing {
                name: name.to_owned(),
            }),
            Err(std::env::VarError::NotUnicode(raw)) => {
                raw.into_encoded_bytes().zeroize();
                Err(ConfigError::EnvVarNotUnicode {
                    name: name.to_owned(),
                })
            }
        }
    }

    /// Reads the secret from the file at `path`, without its trailing line
    /// break(s) (`\n` or `\r\n`), the way secrets mounted by Docker or
    /// Kubernetes usually end.
    ///
    /// # Errors
    /// [`ConfigError::FileUnreadable`] (with the path and the I/O error
    /// kind), or [`ConfigError::EmptySecret`] when nothing remains.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ConfigError::FileUnreadable {
            path: path.to_path_buf(),
            kind: e.kind(),
        })?;
        let mut secret = Self { bytes };
        while matches!(secret.bytes.last(), Some(b'\n' | b'\r')) {
            secret.bytes.pop();
        }
        if secret.is_empty() {
            return Err(ConfigError::EmptySecret {
                origin: path.display().to_string(),
            });
        }
        Ok(secret)
    }

    /// The secret bytes. Handle with care: never log them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::from_bytes(value.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::from_bytes(value.into_bytes())
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Self::from_bytes(value)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self::from_bytes(value)
    }
}

/// The ordered list of secrets a verifier accepts.
///
/// Any one of them may match; the verifier reports the index of the one that
/// did in [`Verification::key_index`](super::Verification::key_index). Put the
/// newest secret first: once old indexes stop appearing, the old secret can go.
///
/// ```
/// use hookroom::verify::{Secret, Secrets};
///
/// let secrets = Secrets::from(Secret::from("new")).with(Secret::from("old"));
/// assert_eq!(secrets.len(), 2);
/// assert_eq!(format!("{secrets:?}"), "Secrets([redacted; 2])");
/// ```
#[derive(Clone, Default)]
pub struct Secrets {
    list: Vec<Secret>,
}

impl Secrets {
    /// An empty list (a verifier with no secret rejects every request).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `secret` (a lower priority than those already present).
    #[must_use]
    pub fn with(mut self, secret: impl Into<Secret>) -> Self {
        self.list.push(secret.into());
        self
    }

    /// Appends `secret` in place.
    pub fn push(&mut self, secret: impl Into<Secret>) {
        self.list.push(secret.into());
    }

    /// Number of secrets.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is no secret.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The secrets in priority order.
    pub fn iter(&self) -> std::slice::Iter<'_, Secret> {
        self.list.iter()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([redacted; {}])", self.list.len())
    }
}

impl<'a> IntoIterator for &'a Secrets {
    type Item = &'a Secret;
    type IntoIter = std::slice::Iter<'a, Secret>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl FromIterator<Secret> for Secrets {
    fn from_iter<I: IntoIterator<Item = Secret>>(iter: I) -> Self {
        Self {
            list: iter.into_iter().collect(),
        }
    }
}

impl From<Secret> for Secrets {
    fn from(secret: Secret) -> Self {
        Self { list: vec![secret] }
    }
}

impl From<Vec<Secret>> for Secrets {
    fn from(list: Vec<Secret>) -> Self {
        Self { list }
    }
}

impl<const N: usize> From<[Secret; N]> for Secrets {
    fn from(list: [Secret; N]) -> Self {
        Self {
            list: list.into_iter().collect(),
        }
    }
}

impl From<&str> for Secrets {
    fn from(secret: &str) -> Self {
        Secret::from(secret).into()
    }
}

impl From<String> for Secrets {
    fn from(secret: String) -> Self {
        Secret::from(secret).into()
    }
}

impl From<&[u8]> for Secrets {
    fn from(secret: &[u8]) -> Self {
        Secret::from(secret).into()
    }
}

impl<const N: usize> From<[&str; N]> for Secrets {
    fn from(list: [&str; N]) -> Self {
        list.into_iter().map(Secret::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;

    #[test]
    fn debug_and_display_never_show_the_bytes() {
        let secret = Secret::from("hunter2-very-secret");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{secret:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let secrets = Secrets::from(["hunter2-a", "hunter2-b"]);
        assert!(!format!("{secrets:?}").contains("hunter2"));
    }

    #[test]
    fn from_file_trims_trailing_line_breaks_only() {
        let dir = std::env::temp_dir().join(format!("hookroom-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, b" s3cret \r\n\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), b" s3cret ");
        std::fs::write(&path, b"\n").unwrap();
        let err = Secret::from_file(&path).unwrap_err();
        assert_eq!(err.code(), "empty_secret");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_file_error_names_the_path() {
        let err = Secret::from_file("/nonexistent/hookroom/secret").unwrap_err();
        assert_eq!(err.code(), "secret_file_unreadable");
        assert!(err.to_string().contains("/nonexistent/hookroom/secret"));
    }

    #[test]
    fn from_env_reads_and_reports_by_name() {
        // Cargo sets CARGO_PKG_NAME for test processes; setting a variable
        // ourselves would need `unsafe` (edition 2024), which is forbidden.
        assert_eq!(
            Secret::from_env("CARGO_PKG_NAME").unwrap().expose(),
            b"hookroom"
        );
        let name = "HOOKROOM_TEST_SECRET_FROM_ENV_UNSET";
        let err = Secret::from_env(name).unwrap_err();
        assert_eq!(
            err,
            ConfigError::EnvVarMissing {
                name: name.to_owned()
            }
        );
        assert!(err.to_string().contains(name));
    }

    #[test]
    fn secrets_keep_priority_order() {
        let secrets = Secrets::new()
            .with("a")
            .with(Secret::from_bytes(vec![1, 2]));
        let bytes: Vec<&[u8]> = secrets.iter().map(Secret::expose).collect();
        assert_eq!(bytes, vec![b"a".as_slice(), &[1, 2]]);
    }
}
