//! [`Secret`]: key material that redacts itself and is wiped on drop, and
//! [`Secrets`]: the ordered list a verifier tries (rotation).

use std::fmt;
use std::path::Path;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::ConfigError;

/// Secret key material (an HMAC key, a shared token), never empty.
///
/// `Debug` and `Display` print `[redacted]`; the bytes are overwritten with
/// zeros when the value is dropped. There is deliberately no `PartialEq`: an
/// ordinary `==` would compare in variable time.
///
/// Every way of building one refuses a secret that is empty or only ASCII
/// whitespace ([`ConfigError::EmptySecret`]): an HMAC key anyone can guess
/// is no key. Verifiers take only `Secret`s, so none of them can be built
/// with an empty key. This is the one loader of the crate: the routes file
/// ([`SecretSource`](crate::route::SecretSource)) reads its secrets through
/// it too.
///
/// **Trimming rule.** A value given directly or read from an environment
/// variable is taken as is. A value read from a file loses its trailing line
/// breaks (every `\n` and `\r` at its end), the way files written by editors,
/// `echo`, Docker or Kubernetes secrets end. Nothing else is trimmed: leading
/// or inner spaces are part of the key.
///
/// ```
/// use hookroom::verify::{ConfigError, Secret};
///
/// let secret = Secret::new("It's a Secret to Everybody")?;
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// assert_eq!(secret.to_string(), "[redacted]");
/// assert_eq!(secret.expose(), b"It's a Secret to Everybody");
///
/// // Empty and whitespace-only secrets are refused.
/// assert!(matches!(Secret::new(" \t"), Err(ConfigError::EmptySecret { .. })));
///
/// // Errors name the variable, never a value.
/// let err = Secret::from_env("HOOKROOM_DOC_UNSET_VARIABLE").unwrap_err();
/// assert_eq!(err.to_string(), "environment variable `HOOKROOM_DOC_UNSET_VARIABLE` is not set");
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret {
    bytes: Vec<u8>,
}

/// The origin named by [`ConfigError::EmptySecret`] for a value handed to
/// [`Secret::new`].
const GIVEN_VALUE: &str = "value";

// `len` without `is_empty`: a `Secret` is never empty.
#[allow(clippy::len_without_is_empty)]
impl Secret {
    /// A secret holding `bytes` as given.
    ///
    /// # Errors
    /// [`ConfigError::EmptySecret`] when `bytes` is empty or only ASCII
    /// whitespace (the rejected bytes are zeroed).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        Self::checked(bytes.into(), GIVEN_VALUE)
    }

    /// For values that hold at least one non-whitespace byte by construction
    /// (a prefix and an encoding, say).
    pub(crate) fn non_empty(bytes: Vec<u8>) -> Self {
        debug_assert!(!bytes.iter().all(u8::is_ascii_whitespace));
        Self { bytes }
    }

    fn checked(bytes: Vec<u8>, origin: &str) -> Result<Self, ConfigError> {
        // Built first so that a rejected value is zeroed on drop too.
        let secret = Self { bytes };
        if secret.bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::EmptySecret {
                origin: origin.to_owned(),
            });
        }
        Ok(secret)
    }

    /// Reads the secret from the environment variable `name`, as is.
    ///
    /// # Errors
    /// [`ConfigError::EnvVarMissing`], [`ConfigError::EnvVarNotUnicode`], or
    /// [`ConfigError::EmptySecret`] when the variable is set but empty (or
    /// only whitespace): a variable that is set but empty is a mistake, not
    /// a key.
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        match std::env::var(name) {
            Ok(value) => Self::from_env_value(name, Some(value)),
            Err(std::env::VarError::NotPresent) => Self::from_env_value(name, None),
            Err(std::env::VarError::NotUnicode(raw)) => {
                raw.into_encoded_bytes().zeroize();
                Err(ConfigError::EnvVarNotUnicode {
                    name: name.to_owned(),
                })
            }
        }
    }

    /// As [`from_env`](Self::from_env), with the variable's value already
    /// looked up (`None`: not set). For environments other than the
    /// process's (tests, a configuration map).
    ///
    /// # Errors
    /// [`ConfigError::EnvVarMissing`] or [`ConfigError::EmptySecret`].
    pub fn from_env_value(name: &str, value: Option<String>) -> Result<Self, ConfigError> {
        match value {
            Some(value) => Self::checked(value.into_bytes(), name),
            None => Err(ConfigError::EnvVarMissing {
                name: name.to_owned(),
            }),
        }
    }

    /// Reads the secret from the file at `path`, without its trailing line
    /// breaks (see the trimming rule above).
    ///
    /// # Errors
    /// [`ConfigError::FileUnreadable`] (with the path and the I/O error
    /// kind), or [`ConfigError::EmptySecret`] when nothing but whitespace
    /// remains.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let mut bytes = std::fs::read(path).map_err(|e| ConfigError::FileUnreadable {
            path: path.to_path_buf(),
            kind: e.kind(),
        })?;
        let end = bytes
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |last| last + 1);
        // Zero the trimmed tail before giving its capacity back.
        if let Some(tail) = bytes.get_mut(end..) {
            tail.zeroize();
        }
        bytes.truncate(end);
        Self::checked(bytes, &path.display().to_string())
    }

    /// The secret bytes. Handle with care: never log them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Length of the secret in bytes (never 0).
    pub fn len(&self) -> usize {
        self.bytes.len()
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

impl TryFrom<&str> for Secret {
    type Error = ConfigError;
    fn try_from(value: &str) -> Result<Self, ConfigError> {
        Self::new(value)
    }
}

impl TryFrom<String> for Secret {
    type Error = ConfigError;
    fn try_from(value: String) -> Result<Self, ConfigError> {
        Self::new(value)
    }
}

impl TryFrom<&[u8]> for Secret {
    type Error = ConfigError;
    fn try_from(value: &[u8]) -> Result<Self, ConfigError> {
        Self::new(value)
    }
}

impl TryFrom<Vec<u8>> for Secret {
    type Error = ConfigError;
    fn try_from(value: Vec<u8>) -> Result<Self, ConfigError> {
        Self::new(value)
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
/// let secrets = Secrets::from(Secret::new("new")?).with(Secret::new("old")?);
/// assert_eq!(secrets.len(), 2);
/// assert_eq!(format!("{secrets:?}"), "Secrets([redacted; 2])");
/// # Ok::<(), hookroom::verify::ConfigError>(())
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
    pub fn with(mut self, secret: Secret) -> Self {
        self.list.push(secret);
        self
    }

    /// Appends `secret` in place.
    pub fn push(&mut self, secret: Secret) {
        self.list.push(secret);
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

impl TryFrom<&str> for Secrets {
    type Error = ConfigError;
    /// One secret; see [`Secret::new`].
    fn try_from(secret: &str) -> Result<Self, ConfigError> {
        Secret::new(secret).map(Self::from)
    }
}

impl TryFrom<&[u8]> for Secrets {
    type Error = ConfigError;
    /// One secret; see [`Secret::new`].
    fn try_from(secret: &[u8]) -> Result<Self, ConfigError> {
        Secret::new(secret).map(Self::from)
    }
}

impl<const N: usize> TryFrom<[&str; N]> for Secrets {
    type Error = ConfigError;
    /// Several secrets, newest first; the first empty one is the error.
    fn try_from(list: [&str; N]) -> Result<Self, ConfigError> {
        list.into_iter()
            .map(Secret::new)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from)
    }
}

/// `Secrets` from a literal in unit tests.
#[cfg(test)]
pub(crate) fn test_secrets<T>(value: T) -> Secrets
where
    Secrets: TryFrom<T, Error = ConfigError>,
{
    match Secrets::try_from(value) {
        Ok(secrets) => secrets,
        Err(e) => panic!("test secret: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_code::ErrorCode;

    fn secret(text: &str) -> Secret {
        Secret::new(text).unwrap()
    }

    #[test]
    fn debug_and_display_never_show_the_bytes() {
        let secret = secret("hunter2-very-secret");
        for shown in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{secret:#?}"),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let secrets = Secrets::from([self::secret("hunter2-a"), self::secret("hunter2-b")]);
        assert!(!format!("{secrets:?}").contains("hunter2"));
    }

    #[test]
    fn empty_or_whitespace_secrets_are_refused_everywhere() {
        for bad in ["", " ", "\t\r\n", "   \n"] {
            let err = Secret::new(bad).unwrap_err();
            assert_eq!(err.code(), "empty_secret", "{bad:?}");
            assert!(Secret::try_from(bad).is_err());
            assert!(Secret::try_from(bad.to_owned()).is_err());
            assert!(Secret::try_from(bad.as_bytes()).is_err());
            assert!(Secret::try_from(bad.as_bytes().to_vec()).is_err());
            assert_eq!(
                Secret::from_env_value("HOOKROOM_X", Some(bad.to_owned())).unwrap_err(),
                ConfigError::EmptySecret {
                    origin: "HOOKROOM_X".into()
                }
            );
        }
        // Inner and leading spaces belong to the key.
        assert_eq!(secret(" a b ").expose(), b" a b ");
    }

    #[test]
    fn from_file_trims_trailing_line_breaks_only() {
        let dir = std::env::temp_dir().join(format!("hookroom-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, b" s3cret \r\n\n").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), b" s3cret ");
        std::fs::write(&path, b"s3cret\n\r").unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), b"s3cret");
        for empty in [&b"\n"[..], b"", b"  \r\n"] {
            std::fs::write(&path, empty).unwrap();
            let err = Secret::from_file(&path).unwrap_err();
            assert_eq!(err.code(), "empty_secret");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_file_error_names_the_path() {
        let err = Secret::from_file("/nonexistent/hookroom/secret").unwrap_err();
        assert_eq!(err.code(), "file_unreadable");
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
            .with(secret("a"))
            .with(Secret::new(vec![1, 2]).unwrap());
        let bytes: Vec<&[u8]> = secrets.iter().map(Secret::expose).collect();
        assert_eq!(bytes, vec![b"a".as_slice(), &[1, 2]]);
    }
}
