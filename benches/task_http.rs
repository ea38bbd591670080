//! Claim + done round trips per second: agents working a room of the Task
//! API over loopback HTTP/1 through `HttpTaskStore`, next to the same
//! agents on the in-process `InMemoryTaskStore`, in one run.
//!
//! `cargo bench --features http-client --bench task_http -- --warm-up-time 1 --measurement-time 2`
//!
//! `claim_done/{in_process,http}/{1,8}`: one agent, or eight concurrent
//! agents, each claiming the room's next task and completing it. The
//! throughput is in round trips (one claim and one done each). The tasks
//! are stored in-process before the timer starts; the Task API runs in the
//! same process, on the same runtime as the agents.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

use hookroom::http::HttpTaskStore;
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, Payload, TaskStore};

const ROOM: &str = "bench";
const TOKEN: &str = "bench";

fn new_task(n: u64) -> NewTask {
    NewTask {
        room: ROOM.into(),
        title: format!("task {n}"),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "pull_request.opened".into(),
        source_url: None,
        delivery_id: format!("delivery-{n}"),
        payload: Payload::from(br#"{"action":"opened","number":42}"#.to_vec()),
        required_capabilities: vec![],
        ttl: None,
    }
}

/// A Task API on 127.0.0.1 over `backing`, and a client of it.
async fn http_store(backing: Arc<InMemoryTaskStore>) -> HttpTaskStore {
    let api = TaskApi::builder(
        backing,
        ApiTokens::new(
            BearerTokens::parse_list(TOKEN).unwrap(),
            BearerTokens::none(),
        ),
    )
    .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(api.clone());
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    HttpTaskStore::builder(format!("http://{addr}"), TOKEN)
        .build()
        .unwrap()
}

/// `agents` agents on `store`, each claiming and completing `each` tasks;
/// how long that took.
async fn work(store: Arc<dyn TaskStore>, agents: usize, each: u64) -> Duration {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for a in 0..agents {
        let store = Arc::clone(&store);
        set.spawn(async move {
            let request = ClaimRequest {
                room: ROOM.into(),
                agent: format!("agent-{a}"),
                capabilities: vec![],
                lease: Duration::from_secs(300),
            };
            for _ in 0..each {
                let claimed = store
                    .claim(&request)
                    .await
                    .unwrap()
                    .expect("a task per round trip");
                store
                    .complete(&claimed.task.id, &claimed.token, None)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The server's store lives for the whole run; the in-process one is
    // made anew for each sample, so finished tasks do not pile up.
    let served = Arc::new(InMemoryTaskStore::new());
    let http: Arc<dyn TaskStore> = Arc::new(runtime.block_on(http_store(Arc::clone(&served))));
    let mut next = 0_u64;

    let mut group = c.benchmark_group("claim_done");
    for agents in [1_usize, 8] {
        group.throughput(Throughput::Elements(agents as u64));
        group.bench_function(BenchmarkId::new("in_process", agents), |b| {
            b.to_async(&runtime).iter_custom(|iters| async move {
                let store = Arc::new(InMemoryTaskStore::new());
                for n in 0..iters * agents as u64 {
                    store.insert(new_task(n)).await.unwrap();
                }
                work(store, agents, iters).await
            });
        });
        group.bench_function(BenchmarkId::new("http", agents), |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (served, http) = (Arc::clone(&served), Arc::clone(&http));
                let first = next;
                next += iters * agents as u64;
                async move {
                    for n in first..first + iters * agents as u64 {
                        served.insert(new_task(n)).await.unwrap();
                    }
                    work(http, agents, iters).await
                }
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
