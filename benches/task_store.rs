//! InMemoryTaskStore: insert and claim throughput, and memory per task.
//!
//! `cargo bench --bench task_store -- --warm-up-time 1 --measurement-time 3`
//!
//! The memory figure is printed before the timings: live heap bytes the
//! store holds per task beyond the payload, counted by an instrumented global
//! allocator.

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, Payload, TaskStore};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PAYLOAD_BYTES: usize = 512;
const ROOM: &str = "bench";

fn new_task(n: u64, payload: Payload) -> NewTask {
    NewTask {
        room: ROOM.to_owned(),
        title: format!("[PR] opened #{n}"),
        description: String::new(),
        priority: (n % 3) as u32 + 1,
        source: "github".to_owned(),
        source_event: "pull_request.opened".to_owned(),
        source_url: None,
        delivery_id: format!("delivery-{n}"),
        payload,
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

fn payload() -> Payload {
    Payload::from(vec![b'x'; PAYLOAD_BYTES])
}

fn request(agent: usize) -> ClaimRequest {
    ClaimRequest {
        room: ROOM.to_owned(),
        agent: format!("agent-{agent}"),
        capabilities: Vec::new(),
        lease: Duration::from_secs(300),
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("tokio runtime")
}

async fn fill(store: &InMemoryTaskStore, count: u64) {
    let payload = payload();
    for n in 0..count {
        store
            .insert(new_task(n, payload.clone()))
            .await
            .expect("insert");
    }
}

fn insert(c: &mut Criterion) {
    let rt = runtime(1);
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(1));
    group.bench_function("new", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let store = InMemoryTaskStore::new();
            let payload = payload();
            let tasks: Vec<NewTask> = (0..iters).map(|n| new_task(n, payload.clone())).collect();
            let start = Instant::now();
            for task in tasks {
                store.insert(task).await.expect("insert");
            }
            start.elapsed()
        });
    });
    group.bench_function("duplicate", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let store = InMemoryTaskStore::new();
            fill(&store, 1_000).await;
            let payload = payload();
            let tasks: Vec<NewTask> = (0..iters)
                .map(|n| new_task(n % 1_000, payload.clone()))
                .collect();
            let start = Instant::now();
            for task in tasks {
                let inserted = store.insert(task).await.expect("insert");
                assert!(inserted.duplicate);
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn claim_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("claim_complete");
    group.throughput(Throughput::Elements(1));
    for agents in [1_usize, 8] {
        let rt = runtime(agents.min(4));
        group.bench_with_input(BenchmarkId::new("agents", agents), &agents, |b, &agents| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let store = Arc::new(InMemoryTaskStore::new());
                fill(&store, iters).await;
                let start = Instant::now();
                let workers: Vec<_> = (0..agents)
                    .map(|agent| {
                        let store = store.clone();
                        tokio::spawn(async move {
                            let request = request(agent);
                            while let Some(claimed) = store.claim(&request).await.expect("claim") {
                                store
                                    .complete(&claimed.task.id, &claimed.token, None)
                                    .await
                                    .expect("complete");
                            }
                        })
                    })
                    .collect();
                for worker in workers {
                    worker.await.expect("agent");
                }
                start.elapsed()
            });
        });
    }
    // Tasks spread over 8 capability sets; the agent has every capability,
    // so each claim compares the heads of 8 indexes.
    let rt = runtime(1);
    group.bench_function("capability_sets/8", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let store = InMemoryTaskStore::new();
            let payload = payload();
            for n in 0..iters {
                let mut task = new_task(n, payload.clone());
                task.required_capabilities = vec![format!("cap-{}", n % 8)];
                store.insert(task).await.expect("insert");
            }
            let mut request = request(0);
            request.capabilities = (0..8).map(|c| format!("cap-{c}")).collect();
            let start = Instant::now();
            while let Some(claimed) = store.claim(&request).await.expect("claim") {
                store
                    .complete(&claimed.task.id, &claimed.token, None)
                    .await
                    .expect("complete");
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// Live heap bytes per stored task, beyond its payload: everything the
/// store keeps (task fields, ids, indexes, idempotency entry) divided by the
/// number of tasks.
fn memory_per_task() {
    const TASKS: u64 = 100_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let store = InMemoryTaskStore::new();
        // One warm-up insert creates the room and the shard maps.
        store
            .insert(new_task(u64::MAX, payload()))
            .await
            .expect("insert");
        let region = Region::new(GLOBAL);
        let mut text_bytes = 0_usize;
        for n in 0..TASKS {
            let task = new_task(n, payload());
            text_bytes += task.title.len()
                + task.room.len()
                + task.source.len()
                + task.source_event.len()
                + task.delivery_id.len();
            store.insert(task).await.expect("insert");
        }
        let change = region.change();
        let live = change.bytes_allocated as isize - change.bytes_deallocated as isize
            + change.bytes_reallocated;
        let tasks = TASKS as f64;
        let per_task = live as f64 / tasks - PAYLOAD_BYTES as f64;
        let text = text_bytes as f64 / tasks;
        let live_allocations = change.allocations as f64 - change.deallocations as f64;
        println!("memory per task ({TASKS} tasks, {PAYLOAD_BYTES}-byte payloads):");
        println!("  beyond payload:                 {per_task:8.1} bytes");
        println!("  of which the task's own text:   {text:8.1} bytes");
        println!(
            "  store overhead (rest):          {:8.1} bytes",
            per_task - text
        );
        println!(
            "  live allocations per task:      {:8.1}",
            live_allocations / tasks
        );
        drop(store);
    });
}

fn main() {
    memory_per_task();
    let mut criterion = Criterion::default().configure_from_args();
    insert(&mut criterion);
    claim_complete(&mut criterion);
    criterion.final_summary();
}
