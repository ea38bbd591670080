//! Durable stores next to the in-memory store, in one run: inserts per
//! second with 1 and 64 concurrent senders, claim + complete per second with
//! 1 and 8 agents, and claims alone per second with 8 agents.
//!
//! `cargo bench --features sqlite --bench task_store_durable`
//!
//! SQLite runs on a file in the temp directory with `synchronous = FULL`:
//! every insert counted here was durable when it returned. Set
//! `HOOKROOM_BENCH_POSTGRES_URL` to add two PostgreSQL rows: `postgres` as
//! the gateway runs it (each change announced with `NOTIFY`) and `pg-quiet`
//! built `with_notifications(false)`. `HOOKROOM_BENCH_STORES` (e.g.
//! `memory,postgres`) runs only the stores it names; ratios are to the
//! first row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookroom::sqlite::SqliteTaskStore;
use hookroom::task::{ClaimRequest, InMemoryTaskStore, NewTask, Payload, TaskStore};

const ROOM: &str = "bench";

fn new_task(n: usize) -> NewTask {
    NewTask {
        room: ROOM.to_owned(),
        title: format!("[PR] opened #{n}"),
        description: String::new(),
        priority: 1,
        source: "github".to_owned(),
        source_event: "pull_request.opened".to_owned(),
        source_url: None,
        delivery_id: format!("delivery-{n}-{}", uuid::Uuid::new_v4()),
        payload: Payload::from(vec![b'x'; 1024]),
        required_capabilities: Vec::new(),
        ttl: None,
    }
}

/// Inserts per second with `senders` concurrent senders.
async fn inserts(store: Arc<dyn TaskStore>, senders: usize, total: usize) -> f64 {
    let started = Instant::now();
    let handles: Vec<_> = (0..senders)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in (s..total).step_by(senders) {
                    store.insert(new_task(n)).await.expect("insert");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("sender");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Claim + complete pairs per second with `agents` agents, over `total`
/// tasks inserted beforehand; with `complete` false, claims alone.
async fn claims(store: Arc<dyn TaskStore>, agents: usize, total: usize, complete: bool) -> f64 {
    inserts(store.clone(), 64, total).await;
    let started = Instant::now();
    let handles: Vec<_> = (0..agents)
        .map(|a| {
            let store = store.clone();
            tokio::spawn(async move {
                let request = ClaimRequest {
                    room: ROOM.to_owned(),
                    agent: format!("agent-{a}"),
                    capabilities: Vec::new(),
                    lease: Duration::from_secs(300),
                };
                let mut done = 0_usize;
                while let Some(claimed) = store.claim(&request).await.expect("claim") {
                    if complete {
                        store
                            .complete(&claimed.task.id, &claimed.token, None)
                            .await
                            .expect("complete");
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for handle in handles {
        done += handle.await.expect("agent");
    }
    assert_eq!(done, total, "every task claimed once");
    total as f64 / started.elapsed().as_secs_f64()
}

type Open = Box<dyn Fn() -> Arc<dyn TaskStore>>;

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("hookroom-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite_dir = dir.clone();
    let mut stores: Vec<(&str, Open)> = vec![
        ("memory", Box::new(|| Arc::new(InMemoryTaskStore::new()))),
        (
            "sqlite",
            Box::new(move || {
                let file = sqlite_dir.join(format!("{}.db", uuid::Uuid::new_v4()));
                Arc::new(SqliteTaskStore::open(file).expect("open sqlite"))
            }),
        ),
    ];
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("HOOKROOM_BENCH_POSTGRES_URL") {
        let url: &'static str = Box::leak(url.into_boxed_str());
        // With and without `NOTIFY` (on by default: other gateways' waiting
        // agents hear of each change), which serializes commits.
        for (name, notify) in [("postgres", true), ("pg-quiet", false)] {
            stores.push((
                name,
                Box::new(move || {
                    let table = format!("bench_{}", uuid::Uuid::new_v4().simple());
                    // Opened from inside the bench's runtime: its pool's
                    // connections run on that runtime.
                    let store = tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current().block_on(
                            hookroom::postgres::PostgresTaskStore::builder(url)
                                .with_table(table)
                                .with_notifications(notify)
                                .build(),
                        )
                    })
                    .expect("connect");
                    Arc::new(store)
                }),
            ));
        }
    }
    if let Ok(names) = std::env::var("HOOKROOM_BENCH_STORES") {
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        stores.retain(|(name, _)| names.contains(name));
    }
    println!(
        "{:<10} {:>18} {:>18} {:>20} {:>20} {:>18}",
        "store",
        "inserts/s (1)",
        "inserts/s (64)",
        "claim+done/s (1)",
        "claim+done/s (8)",
        "claims/s (8)"
    );
    let mut baseline: Option<[f64; 5]> = None;
    for (name, open) in &stores {
        let figures = runtime.block_on(async {
            [
                inserts(open(), 1, 2_000).await,
                inserts(open(), 64, 20_000).await,
                claims(open(), 1, 5_000, true).await,
                claims(open(), 8, 5_000, true).await,
                claims(open(), 8, 10_000, false).await,
            ]
        });
        let cell = |i: usize| match baseline {
            Some(base) => format!("{:.0} ({:.2}x)", figures[i], figures[i] / base[i]),
            None => format!("{:.0}", figures[i]),
        };
        println!(
            "{:<10} {:>18} {:>18} {:>20} {:>20} {:>18}",
            name,
            cell(0),
            cell(1),
            cell(2),
            cell(3),
            cell(4)
        );
        baseline.get_or_insert(figures);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
