//! TLS to PostgreSQL as libpq's `sslmode` says, against a throwaway server
//! with `ssl=on` and a certificate for `localhost` signed by a test CA.
//! Which connections are encrypted is read from `pg_stat_ssl`, by each
//! connection's `application_name`.
#![cfg(all(feature = "postgres", feature = "integration"))]

use crate::support;

use std::path::Path;
use std::sync::Arc;

use hookroom::postgres::PostgresTaskStore;
use hookroom::task::{StoreError, TaskEvents};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use support::postgres::TestPostgres;

/// A CA certificate (PEM) and a server certificate and key (PEM) it signed
/// for `names`.
fn certificates(names: &[&str]) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let server = CertificateParams::new(names)
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

/// The server's port, from its URL (`postgres://postgres@127.0.0.1:PORT/postgres`).
fn port(pg: &TestPostgres) -> &str {
    let after = pg.url.rsplit_once(':').expect("a port").1;
    after.split('/').next().expect("a port")
}

async fn connect(url: &str) -> Result<PostgresTaskStore, StoreError> {
    PostgresTaskStore::builder(url)
        .with_table("tls_tasks")
        .build()
        .await
}

/// Whether the connections named `application_name` are encrypted: `None`
/// when there is none.
async fn encrypted(pg: &TestPostgres, application_name: &str) -> Option<bool> {
    let (client, connection) = tokio_postgres::connect(
        &format!("{}?sslmode=disable", pg.url),
        tokio_postgres::NoTls,
    )
    .await
    .expect("admin connection");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT DISTINCT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&application_name],
        )
        .await
        .expect("pg_stat_ssl");
    assert!(rows.len() <= 1, "{application_name}: mixed connections");
    rows.first().map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_decides_encryption_and_verification() {
    let (ca, cert, key) = certificates(&["localhost"]);
    let Some(pg) = TestPostgres::start_with_tls(&cert, &key) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("hookroom-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("ca.pem");
    std::fs::write(&root, &ca).unwrap();
    let (other_ca, _, _) = certificates(&["localhost"]);
    let other_root = dir.join("other-ca.pem");
    std::fs::write(&other_root, &other_ca).unwrap();
    let port = port(&pg);
    let url = |host: &str, name: &str, options: &str| {
        format!("postgres://postgres@{host}:{port}/postgres?application_name={name}{options}")
    };
    let rootcert = |path: &Path| format!("&sslrootcert={}", path.display());

    // `require` encrypts without verifying (the CA is unknown here).
    let _require = connect(&url("127.0.0.1", "require", "&sslmode=require"))
        .await
        .expect("require connects without a root certificate");
    assert_eq!(encrypted(&pg, "require").await, Some(true));

    // `disable` never encrypts; `prefer` (the default) does when offered.
    let _disable = connect(&url("127.0.0.1", "disable", "&sslmode=disable"))
        .await
        .expect("disable connects");
    assert_eq!(encrypted(&pg, "disable").await, Some(false));
    let _prefer = connect(&url("127.0.0.1", "prefer", ""))
        .await
        .expect("prefer connects");
    assert_eq!(encrypted(&pg, "prefer").await, Some(true));

    // `verify-full` with the right root and the certificate's host name.
    let _full = connect(&url(
        "localhost",
        "full",
        &format!("&sslmode=verify-full{}", rootcert(&root)),
    ))
    .await
    .expect("verify-full connects with the right root");
    assert_eq!(encrypted(&pg, "full").await, Some(true));

    // `verify-full` without that root: refused, and the error says why.
    let refused = connect(&url("localhost", "full-no-root", "&sslmode=verify-full"))
        .await
        .expect_err("an unknown CA is refused");
    // The message itself says why, not only its sources.
    let message = refused.to_string();
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert_eq!(encrypted(&pg, "full-no-root").await, None);

    // `verify-full` checks the host name; `verify-ca` does not.
    let refused = connect(&url(
        "127.0.0.1",
        "full-wrong-name",
        &format!("&sslmode=verify-full{}", rootcert(&root)),
    ))
    .await
    .expect_err("a certificate for another name is refused");
    let message = refused.to_string();
    assert!(message.contains("not valid for name"), "{message}");
    let _ca = connect(&url(
        "127.0.0.1",
        "ca",
        &format!("&sslmode=verify-ca{}", rootcert(&root)),
    ))
    .await
    .expect("verify-ca ignores the name");
    assert_eq!(encrypted(&pg, "ca").await, Some(true));

    // `require` with a root certificate verifies the chain (as libpq does).
    connect(&url(
        "127.0.0.1",
        "require-other-root",
        &format!("&sslmode=require{}", rootcert(&other_root)),
    ))
    .await
    .expect_err("require with another CA's root is refused");

    // Key-value connection strings, and the listener, use the same TLS.
    let events = Arc::new(TaskEvents::new());
    let _listening = PostgresTaskStore::builder(format!(
        "host=localhost port={port} user=postgres dbname=postgres application_name=kv \
         sslmode=verify-full sslrootcert='{}'",
        root.display()
    ))
    .with_table("tls_tasks")
    .with_events(events)
    .build()
    .await
    .expect("a key-value string with verify-full connects");
    assert_eq!(encrypted(&pg, "kv").await, Some(true));
    assert_eq!(encrypted(&pg, "hookroom-listener").await, Some(true));

    let _ = std::fs::remove_dir_all(&dir);
}
