//! The state machine check: random operation sequences against an
//! independent reference model of the contract.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use time::OffsetDateTime;

use crate::clock::{Clock, ManualClock};
use crate::lifecycle::JobStatus;
use crate::task::{
    ClaimRequest, ClaimToken, FailAction, NewTask, StoreError, Task, TaskId, TaskQuery, TaskStore,
};

use super::fixtures::*;

/// Applies `cases` random operation sequences to `store` and to a simple
/// reference model of the contract, comparing every result and, after each
/// operation, every task. A divergence is shrunk to a minimal sequence and
/// reported.
pub async fn state_machine(store: &dyn TaskStore, clock: &ManualClock, cases: u32) {
    let strategy = proptest::collection::vec(op_strategy(), 1..40);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    for _ in 0..cases {
        let mut tree = strategy
            .new_tree(&mut runner)
            .expect("operation strategy never rejects");
        let Err(failure) = run_ops(store, clock, &tree.current()).await else {
            continue;
        };
        let mut smallest = (tree.current(), failure);
        let mut more = tree.simplify();
        let mut steps = 0;
        while more && steps < 1_000 {
            steps += 1;
            match run_ops(store, clock, &tree.current()).await {
                Err(failure) => {
                    smallest = (tree.current(), failure);
                    more = tree.simplify();
                }
                Ok(()) => more = tree.complicate(),
            }
        }
        let (ops, failure) = smallest;
        let mut listing = String::new();
        for (n, op) in ops.iter().enumerate() {
            let _ = writeln!(listing, "  {n}: {op:?}");
        }
        panic!(
            "TaskStore diverged from the reference model: {failure}\nminimal sequence:\n{listing}"
        );
    }
}

/// One operation of the state machine. Indexes pick among the tasks and
/// tokens seen so far (modulo their count; one past the end means "unknown").
#[derive(Debug, Clone)]
pub(super) enum Op {
    Insert {
        room: usize,
        source: usize,
        delivery: usize,
        priority: u32,
        capabilities: Vec<&'static str>,
        ttl: Option<u64>,
    },
    Claim {
        room: usize,
        agent: usize,
        capabilities: Vec<&'static str>,
        lease: u64,
    },
    Heartbeat {
        task: usize,
        token: usize,
        lease: u64,
    },
    Complete {
        task: usize,
        token: usize,
    },
    Fail {
        task: usize,
        token: usize,
        retry_after: Option<u64>,
    },
    Release {
        task: usize,
        token: usize,
    },
    RequestInput {
        task: usize,
        token: usize,
    },
    ProvideInput {
        task: usize,
        value: u8,
    },
    TakeInput {
        task: usize,
        token: usize,
    },
    Advance {
        seconds: u64,
    },
    ExpirePending,
    List {
        room: Option<usize>,
        status: Option<JobStatus>,
        limit: usize,
    },
}

pub(super) const ROOMS: usize = 2;
pub(super) const CAPABILITIES: [&str; 2] = ["gpu", "net"];

pub(super) fn op_strategy() -> impl Strategy<Value = Op> {
    let index = || 0..64_usize;
    let capabilities = || proptest::sample::subsequence(CAPABILITIES.to_vec(), 0..=2);
    let status = prop_oneof![
        Just(JobStatus::Pending),
        Just(JobStatus::Running),
        Just(JobStatus::NeedsInput),
        Just(JobStatus::Done),
        Just(JobStatus::Failed),
    ];
    prop_oneof![
        6 => (0..ROOMS, 0..2_usize, 0..8_usize, 1..4_u32, capabilities(), proptest::option::of(0..6_u64))
            .prop_map(|(room, source, delivery, priority, capabilities, ttl)| Op::Insert {
                room, source, delivery, priority, capabilities, ttl
            }),
        6 => (0..ROOMS, 0..2_usize, capabilities(), 1..6_u64)
            .prop_map(|(room, agent, capabilities, lease)| Op::Claim { room, agent, capabilities, lease }),
        2 => (index(), index(), 1..6_u64).prop_map(|(task, token, lease)| Op::Heartbeat { task, token, lease }),
        3 => (index(), index()).prop_map(|(task, token)| Op::Complete { task, token }),
        2 => (index(), index(), proptest::option::of(0..4_u64))
            .prop_map(|(task, token, retry_after)| Op::Fail { task, token, retry_after }),
        2 => (index(), index()).prop_map(|(task, token)| Op::Release { task, token }),
        2 => (index(), index()).prop_map(|(task, token)| Op::RequestInput { task, token }),
        2 => (index(), any::<u8>()).prop_map(|(task, value)| Op::ProvideInput { task, value }),
        2 => (index(), index()).prop_map(|(task, token)| Op::TakeInput { task, token }),
        3 => (0..5_u64).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::ExpirePending),
        1 => (proptest::option::of(0..ROOMS), proptest::option::of(status), 0..6_usize)
            .prop_map(|(room, status, limit)| Op::List { room, status, limit }),
    ]
}

/// An error reduced to what the contract fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ErrKind {
    NotFound,
    NotHeld,
    InvalidTransition {
        from: JobStatus,
        operation: &'static str,
    },
    Backend(String),
}

pub(super) fn kind(error: &StoreError) -> ErrKind {
    match error {
        StoreError::NotFound { .. } => ErrKind::NotFound,
        StoreError::NotHeld { .. } => ErrKind::NotHeld,
        StoreError::InvalidTransition {
            from, operation, ..
        } => ErrKind::InvalidTransition {
            from: *from,
            operation: operation.as_str(),
        },
        // Includes `NotClaimable`, which `claim` never returns: it answers
        // `None` when nothing is claimable.
        _ => ErrKind::Backend(error.to_string()),
    }
}

/// The reference model: the contract written as plainly as possible.
#[derive(Debug, Default)]
pub(super) struct Model {
    /// In insert order.
    tasks: Vec<Task>,
    /// The store's token of each task's last claim.
    last_token: Vec<Option<ClaimToken>>,
    /// Every token each task's claims got, to check fencing.
    tokens_of: Vec<Vec<ClaimToken>>,
    dedup: HashMap<(String, String), usize>,
}

pub(super) type ModelResult<T> = Result<T, ErrKind>;

impl Model {
    pub(super) fn insert(
        &mut self,
        new: NewTask,
        id: TaskId,
        now: OffsetDateTime,
    ) -> (usize, bool) {
        let key = (new.source.clone(), new.delivery_id.clone());
        if let Some(&index) = self.dedup.get(&key) {
            return (index, true);
        }
        let index = self.tasks.len();
        self.dedup.insert(key, index);
        self.tasks.push(Task {
            id,
            room: new.room,
            title: new.title,
            description: new.description,
            priority: new.priority,
            status: JobStatus::Pending,
            source: new.source,
            source_event: new.source_event,
            source_url: new.source_url,
            delivery_id: new.delivery_id,
            payload: new.payload,
            required_capabilities: new.required_capabilities,
            created_at: now,
            updated_at: now,
            expires_at: new.ttl.map(|ttl| now + ttl),
            not_before: None,
            claimed_by: None,
            lease_expires_at: None,
            attempts: 0,
            input_request: None,
            input: None,
            result: None,
            failure: None,
        });
        self.last_token.push(None);
        self.tokens_of.push(Vec::new());
        (index, false)
    }

    /// Claims the best claimable task; the caller records the token.
    pub(super) fn claim(&mut self, request: &ClaimRequest, now: OffsetDateTime) -> Option<usize> {
        let index = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                let waiting = t.status == JobStatus::Pending
                    && t.not_before.is_none_or(|due| due <= now)
                    && t.expires_at.is_none_or(|end| end > now);
                let lapsed =
                    HELD.contains(&t.status) && t.lease_expires_at.is_some_and(|end| end <= now);
                t.room == request.room
                    && (waiting || lapsed)
                    && t.required_capabilities
                        .iter()
                        .all(|c| request.capabilities.contains(c))
            })
            .min_by_key(|(index, t)| (t.priority, t.created_at, *index))
            .map(|(index, _)| index)?;
        let task = &mut self.tasks[index];
        task.status = JobStatus::Running;
        task.claimed_by = Some(request.agent.clone());
        task.lease_expires_at = Some(now + request.lease);
        task.attempts += 1;
        task.updated_at = now;
        task.not_before = None;
        task.expires_at = None;
        task.input_request = None;
        task.input = None;
        Some(index)
    }

    /// The held task, or the error the contract names.
    pub(super) fn held(
        &self,
        index: Option<usize>,
        token: &ClaimToken,
        now: OffsetDateTime,
        operation: &'static str,
        allowed: &[JobStatus],
    ) -> ModelResult<usize> {
        let index = index.ok_or(ErrKind::NotFound)?;
        let task = &self.tasks[index];
        let from = task.status;
        let last_claim = self.last_token[index].as_ref() == Some(token);
        if from.is_terminal() {
            return Err(if last_claim {
                ErrKind::InvalidTransition { from, operation }
            } else {
                ErrKind::NotHeld
            });
        }
        let lease_runs = task.lease_expires_at.is_some_and(|end| end > now);
        if !(last_claim && HELD.contains(&from) && lease_runs) {
            return Err(ErrKind::NotHeld);
        }
        if !allowed.contains(&from) {
            return Err(ErrKind::InvalidTransition { from, operation });
        }
        Ok(index)
    }
}

pub(super) fn to_pending(task: &mut Task) {
    task.status = JobStatus::Pending;
    task.claimed_by = None;
    task.lease_expires_at = None;
    task.input_request = None;
    task.input = None;
}

pub(super) const HELD: &[JobStatus] = &[JobStatus::Running, JobStatus::NeedsInput];

/// Runs one sequence on a fresh namespace of the store and on a fresh model.
pub(super) async fn run_ops(
    store: &dyn TaskStore,
    clock: &ManualClock,
    ops: &[Op],
) -> Result<(), String> {
    let ns = Namespace::new();
    let rooms: Vec<String> = (0..ROOMS).map(|r| ns.room(&format!("r{r}"))).collect();
    let sources = [ns.source("s0"), ns.source("s1")];
    let mut model = Model::default();
    let mut tokens: Vec<ClaimToken> = Vec::new();
    let unknown_id = TaskId::random();
    let bogus_token = ClaimToken::new("bogus");

    for (step, op) in ops.iter().enumerate() {
        let now = clock.now();
        let pick_task = |n: usize| -> (Option<usize>, TaskId) {
            let len = model.tasks.len();
            let n = n % (len + 1);
            match model.tasks.get(n) {
                Some(task) => (Some(n), task.id.clone()),
                None => (None, unknown_id.clone()),
            }
        };
        let pick_token = |n: usize| -> ClaimToken {
            let n = n % (tokens.len() + 1);
            tokens.get(n).unwrap_or(&bogus_token).clone()
        };
        let fail = |what: String| Err(format!("step {step} ({op:?}): {what}"));
        match op {
            Op::Insert {
                room,
                source,
                delivery,
                priority,
                capabilities,
                ttl,
            } => {
                let mut new = new_task(
                    &rooms[*room % ROOMS],
                    &sources[*source % 2],
                    &format!("d{delivery}"),
                );
                new.priority = *priority;
                new.required_capabilities = capabilities.iter().map(|c| (*c).to_owned()).collect();
                new.ttl = ttl.map(Duration::from_secs);
                let got = match store.insert(new.clone()).await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("insert failed: {e}")),
                };
                let (index, duplicate) = model.insert(new, got.id.clone(), now);
                if got.duplicate != duplicate || got.id != model.tasks[index].id {
                    return fail(format!(
                        "insert gave {got:?}, model: task {index} duplicate {duplicate}"
                    ));
                }
            }
            Op::Claim {
                room,
                agent,
                capabilities,
                lease,
            } => {
                let request = ClaimRequest {
                    room: rooms[*room % ROOMS].clone(),
                    agent: format!("agent-{agent}"),
                    capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
                    lease: Duration::from_secs(*lease),
                };
                let got = match store.claim(&request).await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("claim failed: {e}")),
                };
                let expected = model.claim(&request, now);
                match (got, expected) {
                    (None, None) => {}
                    (Some(claimed), Some(index)) => {
                        if claimed.task != model.tasks[index] {
                            return fail(format!(
                                "claimed {:?}, model expected {:?}",
                                claimed.task, model.tasks[index]
                            ));
                        }
                        if model.tokens_of[index].contains(&claimed.token) {
                            return fail("a new claim of the task got an old token".into());
                        }
                        model.tokens_of[index].push(claimed.token.clone());
                        model.last_token[index] = Some(claimed.token.clone());
                        tokens.push(claimed.token);
                    }
                    (got, expected) => {
                        return fail(format!(
                            "claim gave {:?}, model expected task {:?}",
                            got.map(|c| c.task.id),
                            expected.map(|index| &model.tasks[index].id)
                        ));
                    }
                }
            }
            Op::Heartbeat { task, token, lease } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store
                    .heartbeat(&id, &token, Duration::from_secs(*lease))
                    .await;
                let expected = model.held(index, &token, now, "heartbeat", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    t.lease_expires_at = Some(now + Duration::from_secs(*lease));
                    t.updated_at = now;
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::Complete { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let result = json!({"step": step});
                let got = store.complete(&id, &token, Some(result.clone())).await;
                let expected = model
                    .held(index, &token, now, "complete", &[JobStatus::Running])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        t.status = JobStatus::Done;
                        t.result = Some(result);
                        t.lease_expires_at = None;
                        t.updated_at = now;
                        t.clone()
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::Fail {
                task,
                token,
                retry_after,
            } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let action = match retry_after {
                    Some(after) => FailAction::Retry {
                        after: Duration::from_secs(*after),
                    },
                    None => FailAction::Fail,
                };
                let reason = format!("reason {step}");
                let got = store.fail(&id, &token, &reason, action).await;
                let expected = model.held(index, &token, now, "fail", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    t.failure = Some(reason);
                    t.updated_at = now;
                    t.lease_expires_at = None;
                    match retry_after {
                        Some(after) => {
                            to_pending(t);
                            t.not_before = Some(now + Duration::from_secs(*after));
                        }
                        None => t.status = JobStatus::Failed,
                    }
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::Release { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store.release(&id, &token).await;
                let expected = model.held(index, &token, now, "release", HELD).map(|i| {
                    let t = &mut model.tasks[i];
                    to_pending(t);
                    t.attempts -= 1;
                    t.updated_at = now;
                    t.clone()
                });
                compare(got, expected).or_else(fail)?;
            }
            Op::RequestInput { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let prompt = format!("question {step}");
                let got = store.request_input(&id, &token, &prompt).await;
                let expected = model
                    .held(index, &token, now, "request_input", &[JobStatus::Running])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        t.status = JobStatus::NeedsInput;
                        t.input_request = Some(prompt);
                        t.input = None;
                        t.updated_at = now;
                        t.clone()
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::ProvideInput { task, value } => {
                let (index, id) = pick_task(*task);
                let got = store.provide_input(&id, json!(value)).await;
                let expected = match index {
                    None => Err(ErrKind::NotFound),
                    Some(i) if model.tasks[i].status != JobStatus::NeedsInput => {
                        Err(ErrKind::InvalidTransition {
                            from: model.tasks[i].status,
                            operation: "provide_input",
                        })
                    }
                    Some(i) => {
                        let t = &mut model.tasks[i];
                        t.input = Some(json!(value));
                        t.updated_at = now;
                        Ok(t.clone())
                    }
                };
                compare(got, expected).or_else(fail)?;
            }
            Op::TakeInput { task, token } => {
                let ((index, id), token) = (pick_task(*task), pick_token(*token));
                let got = store.take_input(&id, &token).await;
                let expected = model
                    .held(index, &token, now, "take_input", &[JobStatus::NeedsInput])
                    .map(|i| {
                        let t = &mut model.tasks[i];
                        let input = t.input.take();
                        if input.is_some() {
                            t.status = JobStatus::Running;
                            t.input_request = None;
                            t.updated_at = now;
                        }
                        input
                    });
                compare(got, expected).or_else(fail)?;
            }
            Op::Advance { seconds } => clock.advance(Duration::from_secs(*seconds)),
            Op::ExpirePending => {
                let mut got = match store.expire_pending().await {
                    Ok(got) => got,
                    Err(e) => return fail(format!("expire_pending failed: {e}")),
                };
                got.retain(|t| rooms.contains(&t.room));
                got.sort_by(|a, b| a.id.cmp(&b.id));
                let mut expected = Vec::new();
                for t in &mut model.tasks {
                    if t.status == JobStatus::Pending && t.expires_at.is_some_and(|end| end <= now)
                    {
                        t.status = JobStatus::Failed;
                        t.failure = Some("expired".into());
                        t.updated_at = now;
                        expected.push(t.clone());
                    }
                }
                expected.sort_by(|a, b| a.id.cmp(&b.id));
                if got != expected {
                    return fail(format!("expired {got:?}, model expected {expected:?}"));
                }
            }
            Op::List {
                room,
                status,
                limit,
            } => {
                // Without a room, scope the query by source (this run's own).
                let query = TaskQuery {
                    room: room.map(|r| rooms[r % ROOMS].clone()),
                    status: *status,
                    source: if room.is_none() {
                        Some(sources[0].clone())
                    } else {
                        None
                    },
                    limit: Some(*limit),
                    before: None,
                };
                let got: Vec<TaskId> = match store.list(&query).await {
                    Ok(tasks) => tasks.into_iter().map(|t| t.id).collect(),
                    Err(e) => return fail(format!("list failed: {e}")),
                };
                let mut expected: Vec<(usize, &Task)> = model
                    .tasks
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| {
                        query.room.as_ref().is_none_or(|r| *r == t.room)
                            && query.status.is_none_or(|s| s == t.status)
                            && query.source.as_ref().is_none_or(|s| *s == t.source)
                    })
                    .collect();
                expected.sort_by_key(|(index, t)| std::cmp::Reverse((t.created_at, *index)));
                let expected: Vec<TaskId> = expected
                    .into_iter()
                    .take(*limit)
                    .map(|(_, t)| t.id.clone())
                    .collect();
                if got != expected {
                    return fail(format!("list gave {got:?}, model expected {expected:?}"));
                }
            }
        }

        // Every task, as `get` sees it now, must equal the model's.
        for expected in &model.tasks {
            match store.get(&expected.id).await {
                Ok(Some(got)) if got == *expected => {}
                Ok(got) => {
                    return fail(format!(
                        "after the step, task is {got:?}, model expected {expected:?}"
                    ));
                }
                Err(e) => return fail(format!("get failed: {e}")),
            }
        }
    }
    Ok(())
}

pub(super) fn compare<T: PartialEq + std::fmt::Debug>(
    got: Result<T, StoreError>,
    expected: ModelResult<T>,
) -> Result<(), String> {
    let got = got.map_err(|e| kind(&e));
    if got == expected {
        Ok(())
    } else {
        Err(format!("store gave {got:?}, model expected {expected:?}"))
    }
}
