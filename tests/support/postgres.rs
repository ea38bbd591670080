//! A throwaway PostgreSQL server for tests: `initdb` into a temp dir, start
//! it on a free loopback port, stop and delete it on drop. Uses
//! `HOOKROOM_TEST_POSTGRES_URL` instead when that is set.

use std::path::PathBuf;
use std::process::Command;

/// A running test database; stopped when dropped.
pub struct TestPostgres {
    /// Connection string.
    pub url: String,
    cluster: Option<Cluster>,
}

struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    as_postgres_user: bool,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory of `initdb` and `pg_ctl`, if this machine has them.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let path = self.bindir.join(program);
        if self.as_postgres_user {
            // The server refuses to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl TestPostgres {
    /// A plain connection to the server (its driver running on the test's
    /// runtime), to look at or disturb what the stores do.
    #[cfg(feature = "postgres")]
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    }

    /// Starts a fresh server (or uses `HOOKROOM_TEST_POSTGRES_URL`).
    ///
    /// Without PostgreSQL's server binaries this says so loudly on stderr
    /// and returns `None`, so the caller skips; under `CI=true` a missing
    /// server fails the run instead.
    pub fn start() -> Option<Self> {
        if let Ok(url) = std::env::var("HOOKROOM_TEST_POSTGRES_URL") {
            return Some(Self { url, cluster: None });
        }
        Self::start_cluster(None)
    }

    /// Starts a fresh server with `ssl=on`, presenting `cert_pem` (with its
    /// private key `key_pem`); always a server of its own, never
    /// `HOOKROOM_TEST_POSTGRES_URL`. Skips (or fails under `CI=true`) as
    /// [`start`](Self::start) does.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Option<Self> {
        Self::start_cluster(Some((cert_pem, key_pem)))
    }

    fn start_cluster(tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bindir) = bindir() else {
            let message = "PostgreSQL server binaries (initdb, pg_ctl) not found: install \
                           PostgreSQL or set HOOKROOM_TEST_POSTGRES_URL";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{message} (CI=true: a missing server fails the run)");
            }
            eprintln!("\n*** SKIPPED: {message}. The PostgreSQL tests did not run. ***\n");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!("hookroom-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut tls_options = String::new();
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert_file, cert).expect("write the certificate");
            std::fs::write(&key_file, key).expect("write the key");
            // The server refuses a key others can read.
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
                .expect("chmod the key");
            tls_options = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert_file.display(),
                key_file.display()
            );
        }
        let as_postgres_user = is_root();
        if as_postgres_user {
            run(
                Command::new("chown").args(["-R", "postgres:"]).arg(&dir),
                "chown",
            );
        }
        let cluster = Cluster {
            dir: dir.clone(),
            bindir,
            as_postgres_user,
        };
        let data = dir.join("data");
        run(
            cluster
                .command("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        );
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off{tls_options}",
            dir.display()
        );
        run(
            cluster
                .command("pg_ctl")
                .args(["-w", "-l"])
                .arg(dir.join("log"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "start"]),
            "pg_ctl start",
        );
        Some(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(cluster),
        })
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(cluster) = &self.cluster {
            let _ = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(cluster.dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            let _ = std::fs::remove_dir_all(&cluster.dir);
        }
    }
}
