//! The one HTTP(S) client construction shared by `HttpStatusSink`,
//! `HttpTaskStore` and `HttpAgent`: hyper-util's pooled client over a
//! hyper-rustls connector that speaks `https://` (rustls with ring) and
//! plain `http://`, HTTP/1.1 only.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled client for `http://` and `https://` URLs.
pub(crate) type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Whom a client trusts for `https://` URLs.
#[derive(Debug, Clone, Default)]
pub(crate) enum Tls {
    /// The Mozilla root certificates of `webpki-roots`, compiled in.
    #[default]
    WebpkiRoots,
    /// Exactly these roots, with ring and rustls' safe default protocol
    /// versions.
    Roots(rustls::RootCertStore),
    /// A caller's own configuration (private roots, client certificates).
    Config(Box<rustls::ClientConfig>),
}

/// The connection settings of a client.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientOptions {
    /// Whom to trust for `https://`.
    pub(crate) tls: Tls,
    /// How long a TCP connect may take (`None`: no limit of its own).
    pub(crate) connect_timeout: Option<Duration>,
}

/// A client for `http://` and `https://` URLs.
///
/// # Errors
/// The [`rustls::Error`] of a crypto provider that offers no usable
/// protocol version (never with ring).
pub(crate) fn client<B>(options: ClientOptions) -> Result<HttpsClient<B>, rustls::Error>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    // `https://` URLs pass through the TLS layer to this connector.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(options.connect_timeout);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match options.tls {
        Tls::WebpkiRoots => builder
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))?,
        Tls::Roots(roots) => builder.with_tls_config(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
        ),
        Tls::Config(config) => {
            let mut config = *config;
            // The connector sets ALPN itself (and refuses a config that
            // names protocols): HTTP/1.1 only, so none are offered.
            config.alpn_protocols.clear();
            builder.with_tls_config(config)
        }
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Whether `error` or one of its sources is a TLS failure (a handshake
/// refused, a certificate not trusted). The connector reports those as a
/// `rustls::Error` inside `io::Error`s, whose `source()` skips the error
/// they wrap, so those are unwrapped with `get_ref`.
pub(crate) fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}
