//! Many agents claiming from one room at once: nothing handed out twice, nothing lost.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

use crate::lifecycle::JobStatus;
use crate::task::{Claimed, FailAction, TaskId, TaskQuery, TaskStore};

use super::fixtures::*;

/// What [`claim_race`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceReport {
    /// Claims made by each agent.
    pub claims_per_agent: Vec<usize>,
    /// Tasks released (and claimed again later).
    pub releases: usize,
    /// Tasks failed with a retry (and claimed again later).
    pub retries: usize,
}

/// `agents` tokio tasks claim from one room holding `tasks` tasks until it is
/// empty. Some claims are released or failed for a retry and claimed again;
/// the rest complete. Proves that no task is handed to two agents while
/// leased (every holder's calls succeed, no task is held twice at once) and
/// that none is lost (every task ends `DONE` exactly once, with the right
/// attempt count). Inserts race too: every delivery is sent twice, from two
/// tasks at once, and both must get the same id.
///
/// Needs a multi-thread tokio runtime to race for real.
pub async fn claim_race(store: Arc<dyn TaskStore>, agents: usize, tasks: usize) -> RaceReport {
    let ns = Namespace::new();
    let room = ns.room("race");
    let source = ns.source("s");
    let agents = agents.max(1);

    // Every delivery is inserted by two inserters, concurrently.
    let inserters = agents.max(2);
    let mut handles = Vec::new();
    for inserter in 0..inserters {
        let store = store.clone();
        let (room, source) = (room.clone(), source.clone());
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for index in 0..tasks {
                let owner = index % inserters;
                if owner != inserter && (owner + 1) % inserters != inserter {
                    continue;
                }
                let mut task = new_task(&room, &source, &format!("race-{index}"));
                task.description = index.to_string();
                let inserted = store.insert(task).await.expect("insert");
                got.push((index, inserted));
                // A store that never waits would let one task run to the end.
                tokio::task::yield_now().await;
            }
            got
        }));
    }
    let mut id_of: HashMap<usize, TaskId> = HashMap::new();
    let mut fresh = 0;
    for handle in handles {
        for (index, inserted) in handle.await.expect("inserter") {
            fresh += usize::from(!inserted.duplicate);
            match id_of.get(&index) {
                Some(known) => assert_eq!(known, &inserted.id, "one id per delivery"),
                None => {
                    id_of.insert(index, inserted.id);
                }
            }
        }
    }
    assert_eq!(id_of.len(), tasks);
    assert_eq!(fresh, tasks, "exactly one insert per delivery is fresh");

    let held = Arc::new(Mutex::new(HashSet::<TaskId>::new()));
    let completed = Arc::new(Mutex::new(vec![0_u32; tasks]));
    let released = Arc::new(Mutex::new(HashSet::<usize>::new()));
    let mut handles = Vec::new();
    for agent in 0..agents {
        let store = store.clone();
        let room = room.clone();
        let held = held.clone();
        let completed = completed.clone();
        let released = released.clone();
        handles.push(tokio::spawn(async move {
            let name = format!("agent-{agent}");
            let (mut claims, mut releases, mut retries) = (0, 0, 0);
            let request = request(&room, &name, &[], 3_600);
            while let Some(Claimed { task, token }) = store.claim(&request).await.expect("claim") {
                claims += 1;
                // Each task is claimed at most twice; more means a loop.
                assert!(claims <= 2 * tasks, "{name} claimed more than there is");
                // Let the other agents in between, even on a store that
                // never waits.
                tokio::task::yield_now().await;
                let fresh_hold = held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(task.id.clone());
                assert!(fresh_hold, "task {} handed out twice at once", task.id);
                assert_eq!(task.status, JobStatus::Running);
                assert_eq!(task.claimed_by.as_deref(), Some(name.as_str()));
                let index: usize = task.description.parse().expect("index in description");
                // Forget the hold before giving the task back, so the next
                // holder's insert cannot see a stale entry.
                let unhold = |id: &TaskId| {
                    held.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(id)
                };
                let release_once = index % 10 == 3
                    && released
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(index);
                if release_once {
                    assert!(unhold(&task.id));
                    let back = store.release(&task.id, &token).await.expect("release");
                    assert_eq!(back.status, JobStatus::Pending);
                    releases += 1;
                } else if index % 10 == 7 && task.attempts == 1 {
                    assert!(unhold(&task.id));
                    let back = store
                        .fail(
                            &task.id,
                            &token,
                            "flaky",
                            FailAction::Retry {
                                after: Duration::ZERO,
                            },
                        )
                        .await
                        .expect("fail with retry");
                    assert_eq!(back.status, JobStatus::Pending);
                    retries += 1;
                } else {
                    assert!(unhold(&task.id));
                    let done = store
                        .complete(&task.id, &token, Some(json!({ "agent": agent })))
                        .await
                        .expect("the holder completes");
                    assert_eq!(done.status, JobStatus::Done);
                    if let Some(count) = completed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_mut(index)
                    {
                        *count += 1;
                    }
                }
            }
            (claims, releases, retries)
        }));
    }
    let mut report = RaceReport {
        claims_per_agent: Vec::new(),
        releases: 0,
        retries: 0,
    };
    for handle in handles {
        let (claims, releases, retries) = handle.await.expect("agent");
        report.claims_per_agent.push(claims);
        report.releases += releases;
        report.retries += retries;
    }

    let wrong: Vec<(usize, u32)> = completed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .enumerate()
        .filter(|(_, count)| **count != 1)
        .map(|(index, count)| (index, *count))
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks not completed exactly once: {wrong:?}"
    );
    let total_claims: usize = report.claims_per_agent.iter().sum();
    assert_eq!(total_claims, tasks + report.releases + report.retries);
    assert_eq!(report.releases, count_with(tasks, 3));
    assert_eq!(report.retries, count_with(tasks, 7));

    let done = store
        .list(&TaskQuery {
            room: Some(room.clone()),
            status: Some(JobStatus::Done),
            source: None,
            limit: Some(tasks + 1),
            before: None,
        })
        .await
        .expect("list done");
    assert_eq!(done.len(), tasks, "every task is DONE");
    for task in &done {
        let index: usize = task.description.parse().expect("index");
        let expected_attempts = if index % 10 == 7 { 2 } else { 1 };
        assert_eq!(task.attempts, expected_attempts, "attempts of task {index}");
    }
    assert!(
        store
            .claim(&request(&room, "late", &[], 60))
            .await
            .expect("claim")
            .is_none()
    );
    report
}

pub(super) fn count_with(tasks: usize, remainder: usize) -> usize {
    (0..tasks).filter(|i| i % 10 == remainder).count()
}
