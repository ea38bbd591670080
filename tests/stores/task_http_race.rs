//! Two `HttpTaskStore` clients, each with its own connection pool and
//! several agents, racing through one Task API (over an
//! `InMemoryTaskStore` on 127.0.0.1) for 2,000 tasks: every task is claimed
//! once, completed once, by the agent that claimed it, and none is lost.
#![cfg(all(feature = "http-client", feature = "memory"))]

use crate::support;
use support::serve::serve;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookroom::http::HttpTaskStore;
use hookroom::lifecycle::JobStatus;
use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
use hookroom::task::{
    ClaimRequest, InMemoryTaskStore, NewTask, Payload, StoreError, TaskId, TaskQuery, TaskStore,
};

const AGENT_TOKEN: &str = "agent-token";
const ROOM: &str = "race";
const TASKS: usize = 2_000;
/// Agents per client: half claim the room's next task, half claim tasks by
/// id from the list (the flow where two agents pick the same task).
const AGENTS_PER_CLIENT: usize = 4;
/// Long enough that no lease runs out during the test.
const LEASE: Duration = Duration::from_secs(300);

fn new_task(n: usize) -> NewTask {
    NewTask {
        room: ROOM.into(),
        title: format!("task {n}"),
        description: String::new(),
        priority: (n % 3) as u32 + 1,
        source: "github".into(),
        source_event: "push".into(),
        source_url: None,
        delivery_id: format!("delivery-{n}"),
        payload: Payload::from(format!(r#"{{"n":{n}}}"#).into_bytes()),
        required_capabilities: vec![],
        ttl: None,
    }
}

/// What the agents saw, across both clients.
#[derive(Default)]
struct Tally {
    /// Successful claims per task id, with the claiming agent.
    claims: HashMap<TaskId, Vec<String>>,
    /// Successful completions per task id, with the completing agent.
    completions: HashMap<TaskId, Vec<String>>,
    /// `claim_task` refusals (the task was taken by another agent first).
    refused: usize,
}

/// Completes `claimed` as `agent`, recording the claim and the completion.
async fn finish(
    store: &HttpTaskStore,
    agent: &str,
    claimed: hookroom::task::Claimed,
    tally: &Mutex<Tally>,
) {
    let id = claimed.task.id.clone();
    tally
        .lock()
        .unwrap()
        .claims
        .entry(id.clone())
        .or_default()
        .push(agent.to_owned());
    let done = store
        .complete(
            &id,
            &claimed.token,
            Some(serde_json::json!({ "agent": agent })),
        )
        .await
        .unwrap_or_else(|e| panic!("{agent} could not complete {id}: {e}"));
    assert_eq!(done.status, JobStatus::Done);
    tally
        .lock()
        .unwrap()
        .completions
        .entry(id)
        .or_default()
        .push(agent.to_owned());
}

/// Claims the room's next task until there is none, completing each.
async fn room_agent(store: HttpTaskStore, agent: String, tally: Arc<Mutex<Tally>>) {
    let request = ClaimRequest {
        room: ROOM.into(),
        agent: agent.clone(),
        capabilities: vec![],
        lease: LEASE,
    };
    while let Some(claimed) = store.claim(&request).await.unwrap() {
        finish(&store, &agent, claimed, &tally).await;
    }
}

/// Claims every task by id, in its own order, completing the ones it wins.
async fn id_agent(
    store: HttpTaskStore,
    agent: String,
    mut ids: Vec<TaskId>,
    seed: u64,
    tally: Arc<Mutex<Tally>>,
) {
    // A different order per agent, so that agents meet on the same tasks.
    let mut state = seed;
    for i in (1..ids.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ids.swap(i, (state >> 33) as usize % (i + 1));
    }
    let request = ClaimRequest {
        room: ROOM.into(),
        agent: agent.clone(),
        capabilities: vec![],
        lease: LEASE,
    };
    for id in ids {
        match store.claim_task(&id, &request).await {
            Ok(claimed) => finish(&store, &agent, claimed, &tally).await,
            Err(StoreError::NotClaimable { .. }) => tally.lock().unwrap().refused += 1,
            Err(e) => panic!("{agent}: claim of {id} failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_clients_finish_each_of_2000_tasks_exactly_once() {
    let backing = Arc::new(InMemoryTaskStore::new());
    let tokens = ApiTokens::new(
        BearerTokens::parse_list(AGENT_TOKEN).unwrap(),
        BearerTokens::none(),
    );
    let addr = serve(TaskApi::builder(backing.clone(), tokens).build()).await;

    let mut ids = Vec::with_capacity(TASKS);
    for n in 0..TASKS {
        let inserted = backing.insert(new_task(n)).await.unwrap();
        assert!(!inserted.duplicate);
        ids.push(inserted.id);
    }

    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut agents = tokio::task::JoinSet::new();
    for client in ["a", "b"] {
        // Each client has its own connection pool.
        let store = HttpTaskStore::builder(format!("http://{addr}"), AGENT_TOKEN)
            .build()
            .unwrap();
        for n in 0..AGENTS_PER_CLIENT {
            let agent = format!("{client}-{n}");
            if n % 2 == 0 {
                agents.spawn(room_agent(store.clone(), agent, Arc::clone(&tally)));
            } else {
                let seed = u64::from(client.as_bytes()[0]) * 100 + n as u64;
                agents.spawn(id_agent(
                    store.clone(),
                    agent,
                    ids.clone(),
                    seed,
                    Arc::clone(&tally),
                ));
            }
        }
    }
    while let Some(joined) = agents.join_next().await {
        joined.expect("an agent panicked");
    }

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert_eq!(tally.claims.len(), TASKS, "every task claimed");
    assert_eq!(tally.completions.len(), TASKS, "every task completed");
    for id in &ids {
        let claims = &tally.claims[id];
        let completions = &tally.completions[id];
        assert_eq!(claims.len(), 1, "{id} claimed by {claims:?}");
        assert_eq!(completions.len(), 1, "{id} completed by {completions:?}");
        assert_eq!(claims, completions, "{id} completed by its claimant");
    }

    // The server's view agrees: every task DONE once, with the result of
    // the agent that completed it.
    let mut stored = Vec::with_capacity(TASKS);
    for id in &ids {
        stored.push(backing.get(id).await.unwrap().expect("not lost"));
    }
    let mut pending_or_running = backing
        .list(&TaskQuery {
            room: Some(ROOM.into()),
            status: Some(JobStatus::Pending),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    pending_or_running.extend(
        backing
            .list(&TaskQuery {
                room: Some(ROOM.into()),
                status: Some(JobStatus::Running),
                ..TaskQuery::default()
            })
            .await
            .unwrap(),
    );
    assert!(pending_or_running.is_empty(), "{pending_or_running:?}");
    for task in stored {
        assert_eq!(task.status, JobStatus::Done, "{}", task.id);
        assert_eq!(task.attempts, 1, "{} claimed more than once", task.id);
        let agent = &tally.completions[&task.id][0];
        assert_eq!(
            task.result,
            Some(serde_json::json!({ "agent": agent })),
            "{}",
            task.id
        );
    }
    // Agents that went by id met tasks already taken.
    println!("claim_task refusals: {}", tally.refused);
}
