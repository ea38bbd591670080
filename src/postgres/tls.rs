//! TLS for PostgreSQL connections, with rustls, as libpq's `sslmode` says.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and never
//! verifies by itself: the connection string's `sslmode` and `sslrootcert`
//! are read here, taken out, and turned into tokio-postgres's mode plus a
//! rustls configuration:
//!
//! | `sslmode` | TLS | verifies |
//! | --- | --- | --- |
//! | `disable` | never | |
//! | `prefer` (default for loopback and Unix sockets) | when the server offers it | nothing |
//! | `require` | always | nothing; the chain (as `verify-ca`) when `sslrootcert` is given |
//! | `verify-ca` | always | the chain, to `sslrootcert` (else the webpki roots) |
//! | `verify-full` (default for any other host) | always | the chain and that the certificate names the host |
//!
//! Without `sslmode`, a connection to any host that is not loopback or a
//! Unix socket verifies the server fully: a plaintext fallback or an
//! unverified certificate would hand the database's traffic to whoever sits
//! on the path. A server on a private network without a certificate needs
//! an explicit `sslmode` (`require`, or `disable`).
//!
//! `sslrootcert=PATH` is a PEM file of one or more CA certificates.
//! Without it, `verify-ca` and `verify-full` trust the Mozilla root
//! certificates (webpki-roots).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `sslmode` of a connection string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The name, as in a connection string.
    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The mode when the connection string names none: `prefer` when every
    /// host is loopback or a Unix socket, `verify-full` otherwise.
    fn default_for(config: &tokio_postgres::Config) -> Self {
        use tokio_postgres::config::Host;
        let local_name = |name: &str| {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let hosts_local = config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => local_name(name),
            #[cfg(unix)]
            Host::Unix(_) => true,
        });
        let addrs_local = config.get_hostaddrs().iter().all(|ip| ip.is_loopback());
        if hosts_local && addrs_local {
            Self::Prefer
        } else {
            Self::VerifyFull
        }
    }

    fn parse(value: &str) -> Result<Self, ConnectionError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => return Err(ConnectionError::SslMode(other.to_owned())),
        })
    }
}

/// Why a connection string cannot be used.
#[derive(Debug)]
pub(crate) enum ConnectionError {
    /// An `sslmode` other than `disable`, `prefer`, `require`, `verify-ca`
    /// and `verify-full`.
    SslMode(String),
    /// The `sslrootcert` file cannot be read as PEM certificates.
    RootCert {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    /// The `sslrootcert` file holds no usable CA certificate.
    NoRootCert { path: PathBuf },
    /// rustls refused the configuration.
    Tls(rustls::Error),
    /// The certificate verifier could not be built.
    Verifier(rustls::client::VerifierBuilderError),
    /// tokio-postgres refused the rest of the connection string.
    Config(tokio_postgres::Error),
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SslMode(mode) => write!(
                f,
                "sslmode `{mode}` is not supported (disable, prefer, require, verify-ca, verify-full)"
            ),
            Self::RootCert { path, source } => {
                write!(f, "sslrootcert {}: {source}", path.display())
            }
            Self::NoRootCert { path } => {
                write!(f, "sslrootcert {}: no CA certificate in it", path.display())
            }
            Self::Tls(e) => write!(f, "TLS configuration: {e}"),
            Self::Verifier(e) => write!(f, "TLS certificate verifier: {e}"),
            Self::Config(e) => write!(f, "connection string: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::RootCert { source, .. } => Some(source),
            Self::Tls(e) => Some(e),
            Self::Verifier(e) => Some(e),
            Self::Config(e) => Some(e),
            Self::SslMode(_) | Self::NoRootCert { .. } => None,
        }
    }
}

/// The tokio-postgres configuration and TLS connector `url` asks for.
///
/// # Errors
/// [`ConnectionError`] for an unknown `sslmode`, an unreadable or empty
/// `sslrootcert`, or a connection string tokio-postgres refuses.
pub(crate) fn connection(
    url: &str,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), ConnectionError> {
    let (rest, options) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    };
    let mut mode = None;
    let mut root_cert = None;
    for (key, value) in options {
        match key {
            Key::SslMode => mode = Some(SslMode::parse(&value)?),
            Key::SslRootCert => root_cert = Some(PathBuf::from(value)),
        }
    }
    let mut config: tokio_postgres::Config = rest.parse().map_err(ConnectionError::Config)?;
    let mode = mode.unwrap_or_else(|| SslMode::default_for(&config));
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    let tls = MakeRustlsConnect::new(client_config(mode, root_cert)?);
    Ok((config, tls))
}

/// The `sslmode` in force for `url`, and whether it is the default, for
/// the log line a server writes when it connects.
pub(crate) fn mode_in_force(url: &str) -> Result<(&'static str, bool), ConnectionError> {
    let (rest, options) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)
    } else {
        split_key_values(url)
    };
    for (key, value) in options {
        if key == Key::SslMode {
            return Ok((SslMode::parse(&value)?.as_str(), false));
        }
    }
    let config: tokio_postgres::Config = rest.parse().map_err(ConnectionError::Config)?;
    Ok((SslMode::default_for(&config).as_str(), true))
}

fn client_config(
    mode: SslMode,
    root_cert: Option<PathBuf>,
) -> Result<ClientConfig, ConnectionError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match (&root_cert, mode) {
        (Some(path), _) if mode != SslMode::Disable && mode != SslMode::Prefer => {
            Some(read_roots(path)?)
        }
        (None, SslMode::VerifyCa | SslMode::VerifyFull) => Some(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        _ => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        None => Arc::new(EncryptOnly(Arc::clone(&provider))),
        Some(roots) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(ConnectionError::Verifier)?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ConnectionError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn read_roots(path: &PathBuf) -> Result<RootCertStore, ConnectionError> {
    let mut roots = RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(path).map_err(|source| ConnectionError::RootCert {
            path: path.clone(),
            source,
        })?;
    for cert in certs {
        let cert = cert.map_err(|source| ConnectionError::RootCert {
            path: path.clone(),
            source,
        })?;
        roots.add(cert).map_err(ConnectionError::Tls)?;
    }
    if roots.is_empty() {
        return Err(ConnectionError::NoRootCert { path: path.clone() });
    }
    Ok(roots)
}

/// The options this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    SslMode,
    SslRootCert,
}

fn key(name: &str) -> Option<Key> {
    match name {
        "sslmode" => Some(Key::SslMode),
        "sslrootcert" => Some(Key::SslRootCert),
        _ => None,
    }
}

/// A `postgres://…?…` URL without `sslmode` and `sslrootcert`, and their
/// (percent-decoded) values.
fn split_url(url: &str) -> (String, Vec<(Key, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut options = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key(name) {
            Some(k) => {
                // Percent-decoding only: a `+` stays a `+`.
                let value = value.replace('+', "%2B");
                let decoded = form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                options.push((k, decoded));
            }
            None => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, options)
}

/// A `key=value …` connection string without `sslmode` and `sslrootcert`,
/// and their values. Values may be single-quoted with `\` escapes.
fn split_key_values(text: &str) -> (String, Vec<(Key, String)>) {
    let mut kept = String::new();
    let mut options = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            // Malformed: tokio-postgres reports it.
            kept.push_str(start);
            break;
        };
        rest = after.trim_start();
        let mut value = String::new();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value.push_str(&rest[..end]);
            rest = &rest[end..];
        }
        let segment = &start[..start.len() - rest.len()];
        match key(name) {
            Some(k) => options.push((k, value)),
            None => {
                kept.push_str(segment);
                kept.push(' ');
            }
        }
        rest = rest.trim_start();
    }
    (kept.trim_end().to_owned(), options)
}

/// `sslmode=prefer`/`require` without a root certificate: encrypts, and
/// checks the handshake's signatures, but trusts any certificate (as libpq
/// does).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `require` with a root certificate): the chain must lead
/// to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_the_tls_options_and_keep_the_rest() {
        let (rest, options) = split_url(
            "postgres://u:p@h:5432/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca+1.pem",
        );
        assert_eq!(rest, "postgres://u:p@h:5432/db?application_name=x");
        assert_eq!(
            options,
            [
                (Key::SslMode, "verify-full".to_owned()),
                (Key::SslRootCert, "/tmp/ca+1.pem".to_owned())
            ]
        );
        let (rest, options) = split_url("postgres://h/db?sslmode=require");
        assert_eq!((rest.as_str(), options.len()), ("postgres://h/db", 1));
        assert_eq!(split_url("postgres://h/db").0, "postgres://h/db");
    }

    #[test]
    fn key_values_lose_the_tls_options_and_keep_the_rest() {
        let (rest, options) = split_key_values(
            "host=h sslmode = verify-ca user='a b' sslrootcert='/tmp/it\\'s.pem' dbname=d",
        );
        assert_eq!(rest, "host=h user='a b' dbname=d");
        assert_eq!(
            options,
            [
                (Key::SslMode, "verify-ca".to_owned()),
                (Key::SslRootCert, "/tmp/it's.pem".to_owned())
            ]
        );
    }

    #[test]
    fn modes_are_checked_and_root_certificates_read() {
        let err = connection("postgres://h/db?sslmode=allow")
            .err()
            .expect("refused");
        assert!(
            matches!(err, ConnectionError::SslMode(ref m) if m == "allow"),
            "{err}"
        );
        let err = connection("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .expect("refused");
        assert!(matches!(err, ConnectionError::RootCert { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let (config, _) = connection("host=h sslmode=verify-full user=u").expect("parses");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        // Without sslmode: a remote host is verified fully, loopback may
        // fall back to plaintext.
        let (config, _) = connection("postgres://h/db").expect("parses");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let (config, _) = connection("postgres://localhost/db").expect("parses");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Prefer
        );
        for (url, mode) in [
            ("postgres://db.example.com/app", ("verify-full", true)),
            ("postgres://10.0.0.5/app", ("verify-full", true)),
            (
                "postgres://localhost,db.example.com/app",
                ("verify-full", true),
            ),
            ("postgres://127.0.0.1:5433/app", ("prefer", true)),
            ("postgres://[::1]/app", ("prefer", true)),
            ("host=/var/run/postgresql user=u", ("prefer", true)),
            (
                "postgres://db.example.com/app?sslmode=disable",
                ("disable", false),
            ),
        ] {
            assert_eq!(mode_in_force(url).unwrap(), mode, "{url}");
        }
        let (config, _) = connection("postgres://h/db?sslmode=disable").expect("parses");
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }
}
