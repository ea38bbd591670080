//! Secret references in the routes file and their resolution.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use zeroize::Zeroizing;

use super::RoutesConfigError;
use crate::verify::{ConfigError, Secret};

/// Where one webhook secret comes from, as written in the routes file.
///
/// | JSON | variant |
/// | --- | --- |
/// | `"${GITHUB_WEBHOOK_SECRET}"` | [`Env`](Self::Env) (the whole string must be one reference) |
/// | `{"file": "/run/secrets/github"}` | [`File`](Self::File) (`${VAR}` references in the path are expanded) |
/// | `"plain text"` | [`Literal`](Self::Literal) (works, but keeps the secret in the file) |
///
/// A string that mixes text and `${…}` is rejected, so a typo such as
/// `"${GITHUB_SECRET"` is never taken as a literal secret.
#[derive(Clone)]
pub enum SecretSource {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file, without its trailing line breaks (see
    /// [`Secret`] for the trimming rule).
    File(PathBuf),
    /// The secret itself.
    Literal(Zeroizing<String>),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Literal(_) => f.write_str("Literal([redacted])"),
        }
    }
}

impl SecretSource {
    /// Parses one string entry of the `secrets` section.
    ///
    /// # Errors
    /// [`RoutesConfigError::SecretReference`] when the string mixes `${` with
    /// other text or names an invalid variable.
    pub fn parse(source: &str, text: &str) -> Result<Self, RoutesConfigError> {
        if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
            if is_var_name(inner) {
                return Ok(Self::Env(inner.to_owned()));
            }
        } else if !text.contains("${") {
            return Ok(Self::Literal(Zeroizing::new(text.to_owned())));
        }
        Err(RoutesConfigError::SecretReference {
            source: source.to_owned(),
        })
    }

    /// Reads the secret through the crate's one loader ([`Secret`]: same
    /// trimming rule, empty and whitespace-only secrets refused), looking
    /// variables up with `env`.
    ///
    /// `source` only labels errors.
    ///
    /// # Errors
    /// [`RoutesConfigError::SecretReference`] for a bad `${…}` in a file path;
    /// otherwise [`RoutesConfigError::SourceSecret`] naming `source` and wrapping
    /// [`ConfigError::EnvVarMissing`], [`ConfigError::FileUnreadable`] or
    /// [`ConfigError::EmptySecret`].
    pub fn resolve_with(
        &self,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secret, RoutesConfigError> {
        let in_source = |error| RoutesConfigError::SourceSecret {
            source: source.to_owned(),
            error,
        };
        match self {
            Self::Env(name) => Secret::from_env_value(name, env(name)).map_err(in_source),
            Self::Literal(text) => Secret::new(text.as_bytes()).map_err(|_| {
                in_source(ConfigError::EmptySecret {
                    origin: "literal".to_owned(),
                })
            }),
            Self::File(template) => {
                let path = expand_path(source, template, env)?;
                Secret::from_file(path).map_err(in_source)
            }
        }
    }

    /// [`resolve_with`](Self::resolve_with) over the process environment (a
    /// variable that is not valid Unicode counts as missing).
    ///
    /// # Errors
    /// As [`resolve_with`](Self::resolve_with).
    pub fn resolve(&self, source: &str) -> Result<Secret, RoutesConfigError> {
        self.resolve_with(source, &|name| std::env::var(name).ok())
    }
}

fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Expands every `${VAR}` in a file path.
fn expand_path(
    source: &str,
    template: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, RoutesConfigError> {
    let Some(text) = template.to_str() else {
        return Ok(template.to_path_buf());
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 2..).unwrap_or("");
        let Some(end) = after.find('}') else {
            return Err(RoutesConfigError::SecretReference {
                source: source.to_owned(),
            });
        };
        let name = after.get(..end).unwrap_or("");
        if !is_var_name(name) {
            return Err(RoutesConfigError::SecretReference {
                source: source.to_owned(),
            });
        }
        let value = env(name).ok_or_else(|| RoutesConfigError::SourceSecret {
            source: source.to_owned(),
            error: ConfigError::EnvVarMissing {
                name: name.to_owned(),
            },
        })?;
        out.push_str(&value);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

/// The secrets of one source: one string, a list (rotation: the first is the
/// newest), or `{"file": path}`.
#[derive(Debug, Clone)]
pub(crate) struct SecretList(pub(crate) Vec<SecretSource>);

/// Errors here never quote the value: it may be a literal secret.
const SECRET_SHAPE: &str = "a secret must be a string, a list of strings or {\"file\": \"path\"}";

impl<'de> de::Deserialize<'de> for SecretList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretListVisitor)
    }
}

struct SecretListVisitor;

impl<'de> Visitor<'de> for SecretListVisitor {
    type Value = SecretList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_SHAPE)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(SecretList(vec![raw(v)]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(one) = seq.next_element::<OneSecret>()? {
            out.push(one.0);
        }
        Ok(SecretList(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        OneSecretVisitor
            .visit_map(map)
            .map(|one| SecretList(vec![one.0]))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
}

/// A string kept raw until [`RoutesConfig`](super::RoutesConfig) validation
/// classifies it with the source name at hand.
fn raw(text: &str) -> SecretSource {
    SecretSource::Literal(Zeroizing::new(text.to_owned()))
}

struct OneSecret(SecretSource);

impl<'de> de::Deserialize<'de> for OneSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneSecretVisitor)
    }
}

struct OneSecretVisitor;

impl<'de> Visitor<'de> for OneSecretVisitor {
    type Value = OneSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SECRET_SHAPE)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(OneSecret(raw(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut file: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "file" || file.is_some() {
                return Err(de::Error::custom(SECRET_SHAPE));
            }
            file = Some(map.next_value::<PathText>()?.0);
        }
        match file {
            Some(path) => Ok(OneSecret(SecretSource::File(PathBuf::from(path)))),
            None => Err(de::Error::custom(SECRET_SHAPE)),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(SECRET_SHAPE))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(SECRET_SHAPE))
    }
}

/// A string whose type errors do not quote the value.
struct PathText(String);

impl<'de> de::Deserialize<'de> for PathText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PathText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file path string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PathText, E> {
                Ok(PathText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<PathText, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<PathText, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<PathText, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<PathText, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PathText, E> {
                Err(E::custom(SECRET_SHAPE))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<PathText, A::Error> {
                Err(de::Error::custom(SECRET_SHAPE))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<PathText, A::Error> {
                Err(de::Error::custom(SECRET_SHAPE))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for SecretSource {
    /// Serializes references as written; a literal as `"[redacted]"`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Env(name) => s.serialize_str(&format!("${{{name}}}")),
            Self::Literal(_) => s.serialize_str("[redacted]"),
            Self::File(path) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("file", path)?;
                m.end()
            }
        }
    }
}

impl serde::Serialize for SecretList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let [one] = self.0.as_slice() {
            return one.serialize(s);
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for one in &self.0 {
            seq.serialize_element(one)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GH" => Some("s3cret".into()),
            "DIR" => Some(std::env::temp_dir().display().to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_and_literals() {
        assert!(matches!(SecretSource::parse("g", "${GH}"), Ok(SecretSource::Env(n)) if n == "GH"));
        assert!(matches!(
            SecretSource::parse("g", "plain"),
            Ok(SecretSource::Literal(_))
        ));
        for bad in ["${GH", "x${GH}", "${GH}x", "${1A}", "${}", "${A-B}"] {
            assert!(
                matches!(
                    SecretSource::parse("g", bad),
                    Err(RoutesConfigError::SecretReference { .. })
                ),
                "{bad}"
            );
        }
    }

    fn root(err: &RoutesConfigError) -> &ConfigError {
        match err {
            RoutesConfigError::SourceSecret { source, error } => {
                assert_eq!(source, "g");
                error
            }
            other => panic!("not a source secret error: {other:?}"),
        }
    }

    #[test]
    fn missing_variable_is_named() {
        let err = SecretSource::Env("NOPE".into())
            .resolve_with("github", &env)
            .unwrap_err();
        assert_eq!(
            err,
            RoutesConfigError::SourceSecret {
                source: "github".into(),
                error: ConfigError::EnvVarMissing {
                    name: "NOPE".into()
                },
            }
        );
        assert!(err.to_string().contains("NOPE"));
        let empty = SecretSource::Env("EMPTY".into()).resolve_with("g", &env);
        assert!(matches!(
            root(&empty.unwrap_err()),
            ConfigError::EmptySecret { .. }
        ));
        let blank = SecretSource::parse("g", "  ")
            .unwrap()
            .resolve_with("g", &env);
        assert!(matches!(
            root(&blank.unwrap_err()),
            ConfigError::EmptySecret { .. }
        ));
        let ok = SecretSource::Env("GH".into())
            .resolve_with("g", &env)
            .unwrap();
        assert_eq!(ok.expose(), b"s3cret");
        assert_eq!(format!("{ok:?}"), "Secret([redacted])");
    }

    /// The routes file and `Secret::from_file` share one trimming rule: every
    /// trailing `\r`/`\n` goes, nothing else.
    #[test]
    fn files_expand_variables_and_drop_trailing_line_breaks() {
        let name = format!("hookroom-secret-test-{}", std::process::id());
        let path = std::env::temp_dir().join(&name);
        std::fs::write(&path, b" from-file\r\n\n").unwrap();
        let src = SecretSource::File(PathBuf::from(format!("${{DIR}}/{name}")));
        let got = src.resolve_with("g", &env).unwrap();
        let direct = Secret::from_file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.expose(), b" from-file");
        assert_eq!(got.expose(), direct.expose());
        let err = SecretSource::File(PathBuf::from("${MISSING}/x"))
            .resolve_with("g", &env)
            .unwrap_err();
        assert!(matches!(root(&err), ConfigError::EnvVarMissing { name } if name == "MISSING"));
        let err = SecretSource::File(PathBuf::from("/nonexistent/hookroom/secret"))
            .resolve_with("g", &env)
            .unwrap_err();
        assert!(matches!(root(&err), ConfigError::FileUnreadable { .. }));
    }

    #[test]
    fn literal_never_shows_in_debug_or_serialization() {
        let s = SecretSource::parse("g", "hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }
}
