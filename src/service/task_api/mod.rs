//! The Task API: agents in other processes join rooms, list, claim and
//! finish tasks, and follow room events, over HTTP.
//!
//! [`TaskApi`] is a tower service over any [`TaskStore`](crate::task::TaskStore).
//! Every route needs `Authorization: Bearer <token>` with an agent or admin
//! token of its [`ApiTokens`](crate::service::ApiTokens) (else
//! `401 unauthorized`; the token is never echoed or logged). Paths:
//!
//! The bodies are the types of [`api::task`](crate::api::task).
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /api/rooms` | | [`RoomsResponse`](crate::api::task::RoomsResponse): per room, task counts per status, age of the oldest `PENDING` task, joined agents |
//! | `POST /api/rooms/{room}/join` | [`JoinRequest`](crate::api::task::JoinRequest) | [`JoinResponse`](crate::api::task::JoinResponse) |
//! | `DELETE /api/rooms/{room}/agents/{agent_id}` | | `204` (also when it was not a member) |
//! | `GET /api/rooms/{room}/tasks?status=&source=&limit=&cursor=` | | [`TaskPage`](crate::api::task::TaskPage), newest first |
//! | `POST /api/rooms/{room}/claim` | [`ClaimBody`](crate::api::task::ClaimBody) | `200` [`ClaimResponse`](crate::api::task::ClaimResponse), or `204` when nothing is claimable (after `wait_seconds`) |
//! | `GET /api/rooms/{room}/events`, `GET /api/events` | | `text/event-stream` |
//! | `GET /api/tasks?status=&source=&limit=&cursor=` | | [`TaskPage`](crate::api::task::TaskPage) over every room, newest first |
//! | `GET /api/tasks/{id}` | | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/claim` | [`ClaimBody`](crate::api::task::ClaimBody) | [`ClaimResponse`](crate::api::task::ClaimResponse); `409 task_not_claimable` when held or not claimable |
//! | `POST /api/tasks/{id}/heartbeat` | [`HeartbeatBody`](crate::api::task::HeartbeatBody) | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/done` | [`DoneBody`](crate::api::task::DoneBody) | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/fail` | [`FailBody`](crate::api::task::FailBody) | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/release` | [`TokenBody`](crate::api::task::TokenBody) | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/ask` | [`AskBody`](crate::api::task::AskBody) | [`TaskResponse`](crate::api::task::TaskResponse) (`NEEDS_INPUT`) |
//! | `POST /api/tasks/{id}/input` | [`InputBody`](crate::api::task::InputBody) | [`TaskResponse`](crate::api::task::TaskResponse) |
//! | `POST /api/tasks/{id}/take_input` | [`TokenBody`](crate::api::task::TokenBody) | [`InputResponse`](crate::api::task::InputResponse) (for the holder of a `NEEDS_INPUT` task) |
//! | `POST /api/rooms/{room}/tasks` (admin) | [`InsertBody`](crate::api::task::InsertBody) | `201` [`InsertResponse`](crate::api::task::InsertResponse), `200` for a duplicate delivery |
//! | `POST /api/tasks/expire` (admin) | | [`ExpiredResponse`](crate::api::task::ExpiredResponse): the `PENDING` tasks past their TTL, now `FAILED` |
//!
//! The two admin routes need an admin token (else `403 admin_required`):
//! they store tasks without a signed webhook, and run the expiry sweep a
//! gateway runs on its own. They make the whole
//! [`TaskStore`](crate::task::TaskStore) reachable over HTTP.
//!
//! A task is the [`Task`](crate::task::Task) JSON: title, source,
//! `source_event`, `source_url`, the payload as JSON (or a string for a body
//! that is not JSON), status, attempts, `claimed_by`, `lease_expires_at`,
//! result or failure, and the pending `input_request`.
//!
//! # Errors
//! `{"error":{"code":"…","message":"…","field":"…"}}` (see [`ApiError`]):
//! a stale claim token is `409 not_held` (the store's code for it);
//! an operation the task's state forbids is `409 invalid_transition`; an
//! unknown task is `404 task_not_found`; a body that is not a JSON object,
//! lacks a field or has one of the wrong type is `400` naming the field.
//! The store's refusals carry their details for clients to rebuild them:
//! `task_id`, and `task_status` and `operation` for `invalid_transition`,
//! `refusal` (`held`, `not_yet_due`, `expired`, `finished`,
//! `missing_capabilities`) for `task_not_claimable`.
//!
//! # Membership
//! A join records the agent and its capabilities in the room; so does a
//! room claim, and a claim by id in the task's room. A heartbeat refreshes
//! the holder's membership. After [`membership_ttl`](TaskApiBuilder::membership_ttl)
//! of silence the membership lapses. Memberships live in the service's
//! memory: a restarted server starts with none.
//!
//! # Job status
//! With a [status sink](TaskApiBuilder::status_sink), each change made
//! through the API is reported to the task's job, as the agent runtime
//! reports its own: a claim `RUNNING`, an ask `NEEDS_INPUT`, input taken
//! `RUNNING`, a release or a retry `PENDING`, done `DONE` with the result,
//! a failure `FAILED` with `{"reason"}`.
//!
//! # Room counts
//! `GET /api/rooms` reads every task through
//! [`TaskStore::list`](crate::task::TaskStore::list), page by page: the
//! counts are exact for any store, and the cost grows with the whole
//! store's size (finished tasks included).
//!
//! # Waiting claims
//! With `wait_seconds` (at most 30), a room claim with nothing to claim
//! waits for the store's [`watch`](crate::task::TaskStore::watch)
//! notifications of the room and tries again on each, and also every
//! [`claim_recheck`](TaskApiBuilder::claim_recheck) (a lease that runs out
//! frees a task without a notification). A server that bounds a request's
//! time sets [`max_wait`](TaskApiBuilder::max_wait) below that bound.
//!
//! # Events
//! With an [event hub](TaskApiBuilder::events), the event routes stream
//! server-sent events `task.created`, `task.claimed`, `task.needs_input`,
//! `task.input_provided`, `task.released`, `task.done`, `task.failed` and
//! `task.expired`, each with `id:` (a sequence number) and
//! `data: {"id","room","title","status"}`; and `job.updated` for every
//! change of a task's job announced to the same hub (by an
//! [`AnnouncingJobRegistry`](crate::status::AnnouncingJobRegistry)), with
//! the job's `progress` too. A client that reconnects with
//! `Last-Event-ID` (or `?last_event_id=`) gets the buffered events after
//! it; when some were no longer buffered it first gets `event: resync` and
//! should re-list the tasks it cares about. An idle stream carries a
//! `: keep-alive` comment every [`keep_alive`](TaskApiBuilder::keep_alive).
//! A client that falls [too far behind](crate::task::TaskEvents::with_capacity)
//! is cut off: its stream ends, and it reconnects with `Last-Event-ID`.
//! See [`AnnouncingTaskStore`](crate::task::AnnouncingTaskStore) for where
//! events come from.
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # async fn demo() {
//! use std::sync::Arc;
//! use hookroom::service::{ApiTokens, BearerTokens, TaskApi};
//! use hookroom::task::{AnnouncingTaskStore, InMemoryTaskStore, TaskEvents};
//! use tower::ServiceExt;
//!
//! let events = Arc::new(TaskEvents::new());
//! let store = Arc::new(AnnouncingTaskStore::new(Arc::new(InMemoryTaskStore::new()), events.clone()));
//! let tokens = ApiTokens::new(BearerTokens::parse_list("t").unwrap(), BearerTokens::none());
//! let api = TaskApi::builder(store, tokens).events(events).build();
//! let request = http::Request::post("/api/rooms/pr-review/claim")
//!     .header("authorization", "Bearer t")
//!     .body(r#"{"agent_id":"a1","lease_seconds":30}"#.to_owned())
//!     .unwrap();
//! // Nothing to claim yet.
//! assert_eq!(api.oneshot(request).await.unwrap().status(), 204);
//! # }
//! ```

mod body;
mod error;
mod members;
mod report;
mod service;

pub use body::ResponseBody;
pub use error::ApiError;
pub use service::{
    DEFAULT_API_BODY_LIMIT, DEFAULT_CLAIM_RECHECK, DEFAULT_KEEP_ALIVE, DEFAULT_MEMBERSHIP_TTL,
    DEFAULT_PAGE_LIMIT, TaskApi, TaskApiBuilder, TaskApiFuture,
};
