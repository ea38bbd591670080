//! Drives the gateway over loopback HTTP next to a bare hyper handler, in the
//! same run, and prints requests/s, p50/p99 latency, the ratio, and RSS.
//!
//! ```text
//! cargo run --release --example load -- --duration 10 --connections 64
//! cargo run --release --example load -- --duration 60   # sustained: RSS flat?
//! cargo run --release --example load -- --sink none      # no job registry
//! ```
//!
//! The process runs on jemalloc (see [`ALLOCATOR`]).
//!
//! Every request is a signed 1 KiB GitHub `pull_request.opened` delivery with
//! a unique `X-GitHub-Delivery`, so each one becomes a new task in the
//! in-memory store (that is the only memory that should grow).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

use hookroom::service::{Gateway, WebhookService};
use hookroom::status::{InMemoryStatusSink, StatusSink};
use hookroom::task::InMemoryTaskStore;

/// The GitHub ingest pipeline: a 1 KiB signed `pull_request.opened`
/// delivery and the verifier, parser and router that handle it.
mod pipeline {
    use std::sync::Arc;

    use bytes::Bytes;

    use hookroom::route::{Route, RouteDecision, Router};
    use hookroom::source::{GithubSource, Source};
    use hookroom::verify::{self, GithubVerifier, Verifier};
    use hookroom::{Event, Verified};

    /// The secret the pipeline's GitHub verifier holds.
    pub(super) const SECRET: &str = "load-test-secret";

    /// A 1 KiB GitHub `pull_request.opened` body and its `X-Hub-Signature-256`.
    pub(super) fn signed_pull_request() -> (Bytes, String) {
        let body = Bytes::from_static(include_bytes!(
            "../tests/fixtures/pull_request.opened.1k.json"
        ));
        let signature = verify::github::sign(SECRET.as_bytes(), &body);
        (body, signature)
    }

    #[derive(Debug)]
    struct ByEvent {
        room: Arc<str>,
    }

    impl Router for ByEvent {
        fn route(&self, event: &Verified<Event>) -> RouteDecision {
            if event.name.starts_with("pull_request.") {
                RouteDecision::Deliver(Route {
                    room: Arc::clone(&self.room),
                    priority: 2,
                    ttl: None,
                })
            } else {
                RouteDecision::Ignore {
                    reason: "no route".into(),
                }
            }
        }
    }

    /// The GitHub verifier.
    pub(super) fn github_verifier() -> Arc<dyn Verifier> {
        Arc::new(GithubVerifier::new(
            hookroom::verify::Secrets::try_from(SECRET).unwrap(),
        ))
    }

    /// The GitHub parser.
    pub(super) fn github_source() -> Arc<dyn Source> {
        Arc::new(GithubSource::new())
    }

    /// The router.
    pub(super) fn router() -> Arc<dyn Router> {
        Arc::new(ByEvent {
            room: Arc::from("pr-review"),
        })
    }
}

/// jemalloc, as servers commonly run: the gateway and the bare handler share
/// it, so the ratio compares the pipeline, not two allocators. With glibc's
/// malloc, frees of blocks that another worker thread allocated contend on
/// its arena lock and park threads; see the README for both figures.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How many turns the bare handler and the gateway take.
const ROUNDS: u32 = 5;

struct Args {
    duration: Duration,
    connections: usize,
    /// Whether the gateway keeps a job registry (`InMemoryStatusSink`).
    jobs: bool,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(10),
        connections: 64,
        jobs: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => {
                parsed.duration = Duration::from_secs(
                    value
                        .parse()
                        .map_err(|_| "--duration takes whole seconds")?,
                )
            }
            "--connections" => {
                parsed.connections = value.parse().map_err(|_| "--connections takes a number")?
            }
            "--sink" => {
                parsed.jobs = match value.as_str() {
                    "memory" => true,
                    "none" => false,
                    _ => return Err("--sink takes memory or none".into()),
                }
            }
            other => {
                return Err(format!(
                    "unknown flag {other} (flags: --duration SECS, --connections N, --sink memory|none)"
                ));
            }
        }
    }
    Ok(parsed)
}

/// Resident set size of this process in KiB, from `/proc/self/status`.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn serve<S>(service: S) -> SocketAddr
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Latencies in microseconds, counted in log-linear buckets: exact below
/// 128 µs, then 64 buckets per power of two (within 1.6%). Its size is
/// fixed, so recording never allocates and the client's own memory does not
/// grow with the number of requests (the RSS figures are the gateway's).
#[derive(Clone)]
struct Histogram {
    counts: Box<[u64]>,
}

impl Histogram {
    /// 128 exact buckets plus 64 for each power of two from 2^7 to 2^31.
    const BUCKETS: usize = 128 + 25 * 64;

    fn new() -> Self {
        Histogram {
            counts: vec![0; Self::BUCKETS].into_boxed_slice(),
        }
    }

    fn index(us: u32) -> usize {
        if us < 128 {
            return us as usize;
        }
        let exponent = 31 - us.leading_zeros(); // 7..=31
        let sub = (us >> (exponent - 6)) - 64; // 0..64
        128 + (exponent as usize - 7) * 64 + sub as usize
    }

    /// The smallest latency that falls in bucket `index`.
    fn lower_bound(index: usize) -> u64 {
        if index < 128 {
            return index as u64;
        }
        let exponent = (index - 128) / 64 + 7;
        let sub = ((index - 128) % 64) as u64;
        (64 + sub) << (exponent - 6)
    }

    fn record(&mut self, us: u32) {
        self.counts[Self::index(us)] += 1;
    }

    fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `p` quantile in milliseconds (a bucket's lower bound).
    fn quantile_ms(&self, p: f64) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64 * p).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Self::lower_bound(index) as f64 / 1000.0;
            }
        }
        0.0
    }
}

struct Run {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    latencies: Histogram,
    accepted: u64,
}

impl Run {
    fn empty() -> Self {
        Run {
            requests: 0,
            failures: 0,
            elapsed: Duration::ZERO,
            latencies: Histogram::new(),
            accepted: 0,
        }
    }

    /// Adds another run's requests and time to this one.
    fn absorb(&mut self, other: Run) {
        self.requests += other.requests;
        self.failures += other.failures;
        self.accepted += other.accepted;
        self.elapsed += other.elapsed;
        self.latencies.add(&other.latencies);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        self.latencies.quantile_ms(p)
    }
}

/// A unique delivery id, except for the `dup` tag: there every connection
/// cycles through 100 ids, so after the first round every delivery is a
/// duplicate and the store stops growing.
fn delivery_id(tag: &str, round: usize, conn: usize, n: u64) -> String {
    if tag == "dup" {
        format!("dup-{conn}-{}", n % 100)
    } else {
        format!("{tag}-{round}-{conn}-{n}")
    }
}

/// `connections` keep-alive connections, each sending one request at a time
/// until `duration` has passed.
async fn drive(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    tag: &'static str,
    round: usize,
) -> Run {
    let (body, signature) = pipeline::signed_pull_request();
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for conn in 0..connections {
        let (body, signature) = (body.clone(), signature.clone());
        workers.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.expect("connect");
            let _ = stream.set_nodelay(true);
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let mut latencies = Histogram::new();
            let mut failures = 0u64;
            let mut accepted = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let request = Request::post("/webhook/github")
                    .header("content-type", "application/json")
                    .header("x-github-event", "pull_request")
                    .header("x-github-delivery", delivery_id(tag, round, conn, n))
                    .header("x-hub-signature-256", signature.as_str())
                    .body(Full::new(body.clone()))
                    .expect("request");
                let sent = Instant::now();
                if sender.ready().await.is_err() {
                    failures += 1;
                    break;
                }
                match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let ok = status == StatusCode::ACCEPTED || status == StatusCode::OK;
                        let _ = response.into_body().collect().await;
                        latencies
                            .record(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                        failures += u64::from(!ok);
                        accepted += u64::from(status == StatusCode::ACCEPTED);
                    }
                    Err(_) => {
                        failures += 1;
                        break;
                    }
                }
            }
            (latencies, failures, accepted)
        }));
    }
    let mut run = Run::empty();
    for worker in workers {
        let (latencies, failures, accepted) = worker.await.expect("worker");
        run.failures += failures;
        run.accepted += accepted;
        run.latencies.add(&latencies);
    }
    run.elapsed = started.elapsed();
    run.requests = run.latencies.total();
    run
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let rss_start = rss_kib();
        let bare = serve(hyper::service::service_fn(|request: Request<Incoming>| async move {
            let _ = request.into_body().collect().await;
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        }))
        .await;

        let store = Arc::new(InMemoryTaskStore::new());
        let mut ingest = WebhookService::builder(pipeline::router(), store.clone())
            .source("github", pipeline::github_verifier(), pipeline::github_source());
        if args.jobs {
            let sink: Arc<dyn StatusSink> = Arc::new(InMemoryStatusSink::new().with_max_jobs(10_000));
            ingest = ingest.status_sink(sink);
        }
        let ingest = ingest.build();
        let gateway = serve(TowerToHyperService::new(Gateway::builder(ingest).build())).await;

        // Warm both paths (connection setup, allocator, branch predictors).
        drive(bare, args.connections, Duration::from_secs(1), "warm-bare", 0).await;
        let warm = drive(gateway, args.connections, Duration::from_secs(1), "warm-gw", 0).await;

        // The two targets take turns in short rounds, so that a change in
        // the machine's speed during the run (other tenants, frequency)
        // weighs on both alike rather than on whichever ran at the time.
        let slice = args.duration / ROUNDS;
        let mut bare_run = Run::empty();
        let mut gateway_run = Run::empty();
        let mut rss_growth_kib = 0u64;
        for round in 0..ROUNDS as usize {
            bare_run.absorb(drive(bare, args.connections, slice, "bare", round).await);
            let before = rss_kib();
            gateway_run.absorb(drive(gateway, args.connections, slice, "gw", round).await);
            if let (Some(before), Some(after)) = (before, rss_kib()) {
                rss_growth_kib += after.saturating_sub(before);
            }
        }
        let rss_after = rss_kib();
        // Same load, but redeliveries only: nothing new to store, so memory
        // must stay flat (operations log and job registry are bounded).
        let dup_run = drive(gateway, args.connections, args.duration, "dup", 0).await;
        let rss_dup = rss_kib();
        // Every 202 is one stored task (listing them all would itself allocate).
        let stored = warm.accepted + gateway_run.accepted;

        println!(
            "{} connections, {:?} per target, {}-byte signed GitHub pull_request.opened, jemalloc, job registry {}",
            args.connections,
            args.duration,
            pipeline::signed_pull_request().0.len(),
            if args.jobs { "on (InMemoryStatusSink, 10,000 jobs)" } else { "off (no status sink)" },
        );
        println!("{:<10} {:>12} {:>10} {:>10} {:>9}", "target", "requests/s", "p50 ms", "p99 ms", "failures");
        for (name, run) in [("bare", &bare_run), ("gateway", &gateway_run), ("duplicates", &dup_run)] {
            println!(
                "{:<10} {:>12.0} {:>10.3} {:>10.3} {:>9}",
                name,
                run.rps(),
                run.percentile(0.50),
                run.percentile(0.99),
                run.failures
            );
        }
        println!(
            "ratio gateway/bare: {:.2}x ({ROUNDS} alternating rounds each)",
            gateway_run.rps() / bare_run.rps()
        );
        if let (Some(after), Some(dup)) = (rss_after, rss_dup) {
            println!(
                "RSS over the duplicates-only run: {after} KiB -> {dup} KiB ({:+} KiB)",
                i64::try_from(dup).unwrap_or(i64::MAX) - i64::try_from(after).unwrap_or(i64::MAX)
            );
        }
        if let (Some(start), Some(after)) = (rss_start, rss_after) {
            println!(
                "RSS: {start} KiB at start, {after} KiB after the gateway rounds \
                 ({stored} tasks stored in all; {:.0} bytes of growth per task stored during the rounds)",
                (rss_growth_kib * 1024) as f64 / gateway_run.accepted.max(1) as f64
            );
        }
    });
}
