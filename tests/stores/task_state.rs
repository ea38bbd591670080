//! The public task state machine (`hookroom::task::state`), exercised as a
//! custom store would use it: boundaries, error order, fields set and cleared.
//! Every store also runs the conformance suite, which checks the same rules
//! through the `TaskStore` trait.
use std::time::Duration;

use hookroom::JobStatus;
use hookroom::task::state::{ClaimRefusal, EXPIRED_REASON, StoredTask, TaskOperation};
use hookroom::task::{ClaimToken, FailAction, NewTask, StoreError, TaskId};
use time::OffsetDateTime;

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds)
}

fn stored(ttl: Option<u64>, capabilities: &[&str]) -> StoredTask {
    let new = NewTask {
        room: "room".into(),
        title: "title".into(),
        description: String::new(),
        priority: 1,
        source: "github".into(),
        source_event: "push".into(),
        source_url: None,
        delivery_id: "d-1".into(),
        payload: "{}".into(),
        required_capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        ttl: ttl.map(Duration::from_secs),
    };
    StoredTask::new(TaskId::from("t-1"), new, at(0))
}

const LEASE: Duration = Duration::from_secs(10);

#[test]
fn a_lease_has_ended_at_its_last_instant() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    assert!(task.heartbeat(&token, LEASE, at(9)).is_ok());
    // Lease now ends at 19.
    assert!(matches!(
        task.heartbeat(&token, LEASE, at(19)),
        Err(StoreError::NotHeld { .. })
    ));
    assert_eq!(task.claim_refusal(&[], at(18)), Some(ClaimRefusal::Held));
    assert_eq!(task.claim_refusal(&[], at(19)), None);
    // Taken over: the old token is fenced out, the attempt counted.
    let second = task.claim("b", &[], LEASE, at(19)).unwrap();
    assert_ne!(second, token);
    assert_eq!(task.task.attempts, 2);
    assert!(matches!(
        task.complete(&token, None, at(20)),
        Err(StoreError::NotHeld { .. })
    ));
}

#[test]
fn a_ttl_and_a_retry_delay_end_at_their_instant() {
    let task = stored(Some(5), &[]);
    assert!(task.is_claimable(&[], at(4)));
    assert_eq!(task.claim_refusal(&[], at(5)), Some(ClaimRefusal::Expired));
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    task.fail(
        &token,
        "boom",
        FailAction::Retry {
            after: Duration::from_secs(3),
        },
        at(1),
    )
    .unwrap();
    assert_eq!(
        task.claim_refusal(&[], at(3)),
        Some(ClaimRefusal::NotYetDue)
    );
    assert!(task.is_claimable(&[], at(4)));
}

#[test]
fn a_finished_task_answers_its_last_holder_invalid_and_others_not_held() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    task.complete(&token, None, at(1)).unwrap();
    let before = task.clone();
    assert!(matches!(
        task.heartbeat(&token, LEASE, at(2)),
        Err(StoreError::InvalidTransition {
            operation: TaskOperation::Heartbeat,
            from: JobStatus::Done,
            ..
        })
    ));
    assert!(matches!(
        task.heartbeat(&ClaimToken::new("other"), LEASE, at(2)),
        Err(StoreError::NotHeld { .. })
    ));
    assert!(matches!(
        task.provide_input(serde_json::json!(1), at(2)),
        Err(StoreError::InvalidTransition {
            operation: TaskOperation::ProvideInput,
            ..
        })
    ));
    assert_eq!(task.claim_refusal(&[], at(2)), Some(ClaimRefusal::Finished));
    assert_eq!(task, before, "a refused call changes nothing");
}

#[test]
fn not_held_wins_over_a_state_the_operation_is_not_allowed_in() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    task.request_input(&token, "which label?", at(1)).unwrap();
    // complete is not allowed in NEEDS_INPUT, but a stranger is told NotHeld.
    assert!(matches!(
        task.complete(&ClaimToken::new("x"), None, at(2)),
        Err(StoreError::NotHeld { .. })
    ));
    assert!(matches!(
        task.complete(&token, None, at(2)),
        Err(StoreError::InvalidTransition {
            from: JobStatus::NeedsInput,
            ..
        })
    ));
}

#[test]
fn the_input_round_trip_sets_and_clears_its_fields() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    task.request_input(&token, "which label?", at(1)).unwrap();
    assert_eq!(task.take_input(&token, at(2)).unwrap(), None);
    assert_eq!(
        task.task.updated_at,
        at(1),
        "nothing taken, nothing changed"
    );
    task.provide_input(serde_json::json!("bug"), at(3)).unwrap();
    assert_eq!(
        task.take_input(&token, at(4)).unwrap(),
        Some(serde_json::json!("bug"))
    );
    assert_eq!(task.task.status, JobStatus::Running);
    assert_eq!(task.task.input_request, None);
    assert_eq!(task.task.input, None);
    assert_eq!(task.task.updated_at, at(4));
}

#[test]
fn release_gives_the_attempt_back_and_retry_keeps_it() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    task.release(&token, at(1)).unwrap();
    assert_eq!(task.task.attempts, 0);
    assert_eq!(task.task.claimed_by, None);
    assert_eq!(task.task.status, JobStatus::Pending);
    let token = task.claim("a", &[], LEASE, at(2)).unwrap();
    task.fail(
        &token,
        "flaky",
        FailAction::Retry {
            after: Duration::ZERO,
        },
        at(3),
    )
    .unwrap();
    assert_eq!(task.task.attempts, 1);
    assert_eq!(task.task.failure.as_deref(), Some("flaky"));
    assert_eq!(task.task.not_before, Some(at(3)));
}

#[test]
fn capabilities_must_all_be_present() {
    let task = stored(None, &["gpu", "net"]);
    let caps = |c: &[&str]| c.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        task.claim_refusal(&caps(&["gpu"]), at(0)),
        Some(ClaimRefusal::MissingCapabilities)
    );
    assert!(task.is_claimable(&caps(&["net", "gpu", "x"]), at(0)));
}

#[test]
fn expire_fails_only_an_overdue_pending_task() {
    let mut task = stored(Some(5), &[]);
    assert!(!task.expire(at(4)));
    assert!(task.expire(at(5)));
    assert_eq!(task.task.status, JobStatus::Failed);
    assert_eq!(task.task.failure.as_deref(), Some(EXPIRED_REASON));
    assert!(!task.expire(at(6)), "expires once");
}

#[test]
fn debug_hides_the_token() {
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    assert!(!format!("{task:?}").contains(token.as_str()));
}

#[test]
fn a_claim_token_is_redacted_in_debug_wherever_it_sits() {
    let token = ClaimToken::new("bearer-secret-123");
    assert_eq!(format!("{token:?}"), "ClaimToken(<redacted>)");
    let mut task = stored(None, &[]);
    let token = task.claim("a", &[], LEASE, at(0)).unwrap();
    let claimed = hookroom::task::Claimed {
        task: task.task.clone(),
        token: token.clone(),
    };
    let debug = format!("{claimed:?}");
    assert!(!debug.contains(token.as_str()), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}
