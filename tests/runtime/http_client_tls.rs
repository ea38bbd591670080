//! The HTTP clients over HTTPS: the Task API served over TLS with a
//! self-signed certificate, an `HttpTaskStore` that trusts it through its
//! own roots (insert, claim, complete), one that does not (a TLS error that
//! says so, retry-safe), and an `HttpAgent` delivering to an `https://`
//! endpoint.
#![cfg(all(feature = "http-client", feature = "memory"))]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hookroom::agent::testing::task;
use hookroom::agent::{Agent, AgentError, JobHandle};
use hookroom::http::HttpAgent;
use hookroom::http::{HttpStoreError, HttpTaskStore};
use hookroom::lifecycle::JobStatus;
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, Payload, StoreError, TaskStore};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const AGENT: &str = "agent-token";
const ADMIN: &str = "admin-token";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A self-signed certificate for 127.0.0.1, and the TLS acceptor serving it.
fn self_signed() -> (CertificateDer<'static>, tokio_rustls::TlsAcceptor) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    (cert, tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn roots(cert: CertificateDer<'static>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    roots
}

/// Serves `service` over TLS on a loopback port until the test ends; a
/// failed handshake drops that connection.
async fn serve_tls<S, B>(acceptor: tokio_rustls::TlsAcceptor, service: S) -> SocketAddr
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, service) = (acceptor.clone(), service.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// The Task API over an in-memory store, over TLS; its address and the
/// certificate.
async fn task_api_over_tls() -> (SocketAddr, CertificateDer<'static>) {
    let (cert, acceptor) = self_signed();
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(AGENT).unwrap(),
        BearerTokens::parse_list(ADMIN).unwrap(),
    );
    let api = TaskApi::builder(Arc::new(InMemoryTaskStore::new()), tokens).build();
    let addr = serve_tls(acceptor, TowerToHyperService::new(api)).await;
    (addr, cert)
}

fn new_task() -> NewTask {
    NewTask {
        room: "tls".into(),
        title: "over https".into(),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "push".into(),
        source_url: None,
        delivery_id: "d-1".into(),
        payload: Payload::from(br#"{"n":1}"#.to_vec()),
        required_capabilities: vec![],
        ttl: None,
    }
}

#[tokio::test]
async fn insert_claim_complete_over_https_with_own_roots() {
    let (addr, cert) = task_api_over_tls().await;
    let url = format!("https://{addr}");
    let admin = HttpTaskStore::builder(&url, ADMIN)
        .root_certificates(roots(cert.clone()))
        .build()
        .unwrap();
    let agent = HttpTaskStore::builder(&url, AGENT)
        .root_certificates(roots(cert))
        .build()
        .unwrap();

    let inserted = admin.insert(new_task()).await.unwrap();
    let claimed = agent
        .claim(&ClaimRequest {
            room: "tls".into(),
            agent: "a1".into(),
            capabilities: vec![],
            lease: Duration::from_secs(30),
        })
        .await
        .unwrap()
        .expect("the task is claimable");
    assert_eq!(claimed.task.id, inserted.id);
    assert_eq!(claimed.task.status, JobStatus::Running);
    let done = agent
        .complete(
            &claimed.task.id,
            &claimed.token,
            Some(serde_json::json!({"over": "https"})),
        )
        .await
        .unwrap();
    assert_eq!(done.status, JobStatus::Done);
    let read = admin.get(&inserted.id).await.unwrap().expect("stored");
    assert_eq!(read.status, JobStatus::Done);
    assert_eq!(read.result, Some(serde_json::json!({"over": "https"})));
}

#[tokio::test]
async fn a_certificate_the_store_does_not_trust_is_a_tls_error_safe_to_retry() {
    let (addr, _cert) = task_api_over_tls().await;
    // The default roots (webpki) do not hold the self-signed certificate.
    let store = HttpTaskStore::builder(format!("https://{addr}"), AGENT)
        .build()
        .unwrap();
    let error = store
        .claim_task(
            &"any".into(),
            &ClaimRequest {
                room: "tls".into(),
                agent: "a1".into(),
                capabilities: vec![],
                lease: Duration::from_secs(30),
            },
        )
        .await
        .unwrap_err();
    let StoreError::Backend {
        store: "http",
        source,
    } = &error
    else {
        panic!("expected an http backend error, got {error:?}");
    };
    let http = source
        .downcast_ref::<HttpStoreError>()
        .expect("an HttpStoreError");
    assert!(
        matches!(http, HttpStoreError::Tls { .. }),
        "a TLS error, got {http:?}"
    );
    assert!(http.retry_safe(), "nothing was sent");
    let message = error.to_string();
    assert!(message.contains("TLS"), "{message}");
    assert!(
        message.contains("fails the same way until the TLS trust settings change"),
        "{message}"
    );
    assert!(!message.contains(AGENT), "no token in {message}");
}

#[tokio::test]
async fn http_and_https_urls_are_accepted_other_schemes_refused() {
    // `https://` and `http://` are both accepted; a URL without a host or
    // with another scheme is not.
    for url in ["http://127.0.0.1:1", "https://127.0.0.1:1"] {
        HttpTaskStore::builder(url, AGENT).build().unwrap();
    }
    for url in ["ftp://127.0.0.1:1", "/api"] {
        assert!(matches!(
            HttpTaskStore::builder(url, AGENT).build(),
            Err(HttpStoreError::InvalidUrl { .. })
        ));
    }
}

#[tokio::test]
async fn http_agent_delivers_to_an_https_endpoint_with_own_roots() {
    let (cert, acceptor) = self_signed();
    let endpoint = service_fn(|_request: http::Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
            br#"{"labels":["tls"]}"#,
        ))))
    });
    let addr = serve_tls(acceptor, endpoint).await;
    let url = format!("https://{addr}/hook");

    let task = task("room", "t", r#"{"n":1}"#);
    let (job, _recorder) = JobHandle::recording(task.clone());
    let trusting = HttpAgent::new("tls-agent", &url, SECRET)
        .unwrap()
        .with_root_certificates(roots(cert))
        .unwrap();
    let output = trusting.handle(task.clone(), &job).await.unwrap();
    assert_eq!(output.result, Some(serde_json::json!({"labels": ["tls"]})));

    // Without the root the handshake fails: a connection error, retried.
    let untrusting = HttpAgent::new("tls-agent", &url, SECRET).unwrap();
    let error = untrusting.handle(task, &job).await.unwrap_err();
    assert!(
        matches!(error, AgentError::Retryable(_)),
        "a retry, got {error:?}"
    );
}

#[tokio::test]
async fn a_whole_rustls_config_is_used_even_with_alpn_set() {
    let (addr, cert) = task_api_over_tls().await;
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots(cert))
    .with_no_client_auth();
    // The connector would refuse (panic on) a config naming protocols.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let store = HttpTaskStore::builder(format!("https://{addr}"), AGENT)
        .tls_config(config)
        .build()
        .unwrap();
    assert!(store.get(&"unknown".into()).await.unwrap().is_none());
}
