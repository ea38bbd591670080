//! [`TaskApi`]: the service, its builder, routing and handlers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde::Serialize;
use tower_service::Service;

use super::body::{EventStream, ResponseBody};
use super::error::ApiError;
use super::members::Members;
use super::report::{Change, report};
use crate::api::task::{
    AskBody, ClaimBody, ClaimResponse, DoneBody, ExpiredResponse, FailBody, HeartbeatBody,
    InputBody, InputResponse, InsertBody, InsertResponse, JoinRequest, JoinResponse,
    MAX_PAGE_LIMIT, MAX_WAIT_SECONDS, RoomSummary, RoomsResponse, StatusCounts, TaskPage,
    TaskResponse, TokenBody,
};
use crate::auth::{Operation, Principal, Principals, RoomScope};
use crate::clock::{Clock, SystemClock};
use crate::lifecycle::JobStatus;
use crate::service::body::read_limited;
use crate::service::error::IngestError;
use crate::service::error::json_response;
use crate::status::StatusSink;
use crate::task::{
    ClaimRequest, Claimed, FailAction, Payload, StoreError, Task, TaskEvents, TaskId, TaskQuery,
    TaskStore,
};

/// How long a joined agent stays a member without a join, claim or
/// heartbeat, unless told otherwise.
pub const DEFAULT_MEMBERSHIP_TTL: Duration = Duration::from_secs(300);
/// Largest request body, unless told otherwise (1 MiB).
pub const DEFAULT_API_BODY_LIMIT: usize = 1024 * 1024;
/// Interval between keep-alive comments on an idle event stream.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a waiting room claim tries again without a notification.
pub const DEFAULT_CLAIM_RECHECK: Duration = Duration::from_secs(2);
/// Default page size of a task list.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Page size `GET /api/rooms` reads the store with.
const SCAN_PAGE: usize = 500;

/// The future of [`TaskApi`].
pub type TaskApiFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send + 'static>>;

/// The Task API: agents anywhere list, claim and finish the tasks of a
/// [`TaskStore`] over HTTP. See the [module docs](super) for the routes.
///
/// Cloning is cheap (one `Arc`).
#[derive(Debug, Clone)]
pub struct TaskApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn TaskStore>,
    principals: Principals,
    events: Option<Arc<TaskEvents>>,
    sink: Option<Arc<dyn StatusSink>>,
    members: Members,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    keep_alive: Duration,
    recheck: Duration,
    max_wait: Duration,
}

/// Builds a [`TaskApi`]; from [`TaskApi::builder`].
#[derive(Debug)]
pub struct TaskApiBuilder {
    store: Arc<dyn TaskStore>,
    principals: Principals,
    events: Option<Arc<TaskEvents>>,
    sink: Option<Arc<dyn StatusSink>>,
    membership_ttl: Duration,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    keep_alive: Duration,
    recheck: Duration,
    max_wait: Duration,
}

impl TaskApiBuilder {
    /// The hub the event routes stream from: give the same one to the
    /// [`AnnouncingTaskStore`](crate::task::AnnouncingTaskStore) that wraps
    /// the store. Without it, `/api/events` and `/api/rooms/{room}/events`
    /// answer `404 events_not_configured`.
    pub fn events(mut self, events: Arc<TaskEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// Where the jobs of the tasks live: every change made through the API
    /// (claim, ask, input taken, release, retry, done, fail) is reported as
    /// the agent runtime reports its own, creating the job when the sink
    /// does not know it. A sink's refusal is logged and never fails the
    /// call. Without a sink, nothing is reported.
    pub fn status_sink(mut self, sink: Arc<dyn StatusSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// How long a membership lasts without a join, claim or heartbeat
    /// (default [`DEFAULT_MEMBERSHIP_TTL`]).
    pub fn membership_ttl(mut self, ttl: Duration) -> Self {
        self.membership_ttl = ttl;
        self
    }

    /// The clock for membership times and ages (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Largest request body in bytes (default [`DEFAULT_API_BODY_LIMIT`]).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Interval between keep-alive comments on an idle event stream
    /// (default [`DEFAULT_KEEP_ALIVE`]).
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// How often a waiting room claim tries again when no notification came
    /// (default [`DEFAULT_CLAIM_RECHECK`]): a lease that ran out frees a
    /// task without any notification.
    pub fn claim_recheck(mut self, interval: Duration) -> Self {
        self.recheck = interval.max(Duration::from_millis(10));
        self
    }

    /// The longest a room claim waits, whatever its `wait_seconds` asks
    /// (default 30 s, the most a body may ask): below a server's own
    /// request timeout, so a waiting claim answers `204` rather than being
    /// cut off. A claim that waited less than it asked answers `204` all
    /// the same; the agent asks again.
    pub fn max_wait(mut self, max: Duration) -> Self {
        self.max_wait = max;
        self
    }

    /// The service.
    pub fn build(self) -> TaskApi {
        TaskApi {
            inner: Arc::new(Inner {
                store: self.store,
                principals: self.principals,
                events: self.events,
                sink: self.sink,
                members: Members::new(self.membership_ttl),
                clock: self.clock,
                body_limit: self.body_limit,
                keep_alive: self.keep_alive,
                recheck: self.recheck,
                max_wait: self.max_wait,
            }),
        }
    }
}

impl TaskApi {
    /// A builder serving `store` to `principals`, each as its role and rooms
    /// allow ([`Principal::authorize`]); an [`ApiTokens`](crate::service::ApiTokens)
    /// pair converts into the environment quick start's principals.
    pub fn builder(store: Arc<dyn TaskStore>, principals: impl Into<Principals>) -> TaskApiBuilder {
        TaskApiBuilder {
            store,
            principals: principals.into(),
            events: None,
            sink: None,
            membership_ttl: DEFAULT_MEMBERSHIP_TTL,
            clock: Arc::new(SystemClock),
            body_limit: DEFAULT_API_BODY_LIMIT,
            keep_alive: DEFAULT_KEEP_ALIVE,
            recheck: DEFAULT_CLAIM_RECHECK,
            max_wait: Duration::from_secs(MAX_WAIT_SECONDS),
        }
    }

    /// Whether `path` is one of this service's: `/api/rooms`,
    /// `/api/rooms/…`, `/api/tasks`, `/api/tasks/…`, `/api/events` or
    /// `/api/whoami`. For servers that dispatch by path (the Jobs API's
    /// `/api/jobs…` is not).
    pub fn handles(path: &str) -> bool {
        path == "/api/rooms"
            || path == "/api/whoami"
            || path == "/api/events"
            || path == "/api/tasks"
            || path.starts_with("/api/rooms/")
            || path.starts_with("/api/tasks/")
    }
}

impl<B> Service<Request<B>> for TaskApi
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = TaskApiFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> TaskApiFuture {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let started = std::time::Instant::now();
            let response = match inner.answer(request).await {
                Ok(response) => response,
                Err(error) => error.to_response(),
            };
            // Until the answer's head: an event stream counts once, not for
            // as long as it stays open.
            ::metrics::histogram!(crate::telemetry::REQUEST_DURATION, "endpoint" => "task_api")
                .record(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// A route, its path parameters decoded.
enum Route {
    Whoami,
    Rooms,
    Join(String),
    Leave(String, String),
    Tasks(Option<String>),
    ClaimRoom(String),
    RoomEvents(String),
    Events,
    Task(TaskId),
    TaskAction(TaskId, Action),
    Insert(String),
    Expire,
}

#[derive(Clone, Copy)]
enum Action {
    Claim,
    Heartbeat,
    Done,
    Fail,
    Release,
    Ask,
    Input,
    TakeInput,
}

/// Percent-decodes one path segment (`+` stays a plus).
fn decode(segment: &str) -> Result<String, ApiError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ApiError::InvalidPath)?;
            let text = std::str::from_utf8(hex).map_err(|_| ApiError::InvalidPath)?;
            out.push(u8::from_str_radix(text, 16).map_err(|_| ApiError::InvalidPath)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| ApiError::InvalidPath)?;
    if text.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(text)
}

/// The route of `method` on `path`, or why there is none.
fn route(method: &Method, path: &str) -> Result<Route, ApiError> {
    let Some(rest) = path.strip_prefix("/api/") else {
        return Err(ApiError::NotFound);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let allow = |allowed: &'static str, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed { allow: allowed })
        }
    };
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match segments.as_slice() {
        ["whoami"] => allow("GET", get).map(|()| Route::Whoami),
        ["rooms"] => allow("GET", get).map(|()| Route::Rooms),
        ["events"] => allow("GET", get).map(|()| Route::Events),
        ["rooms", room, "join"] => allow("POST", post).and(Ok(Route::Join(decode(room)?))),
        ["rooms", room, "agents", agent] => allow("DELETE", method == Method::DELETE)
            .and(Ok(Route::Leave(decode(room)?, decode(agent)?))),
        ["rooms", room, "tasks"] if post => Ok(Route::Insert(decode(room)?)),
        ["rooms", room, "tasks"] => {
            allow("GET, POST", get).and(Ok(Route::Tasks(Some(decode(room)?))))
        }
        ["tasks"] => allow("GET", get).map(|()| Route::Tasks(None)),
        ["tasks", "expire"] if post => Ok(Route::Expire),
        ["rooms", room, "claim"] => allow("POST", post).and(Ok(Route::ClaimRoom(decode(room)?))),
        ["rooms", room, "events"] => allow("GET", get).and(Ok(Route::RoomEvents(decode(room)?))),
        ["tasks", id] => allow("GET", get).and(Ok(Route::Task(TaskId::from(decode(id)?)))),
        ["tasks", id, action] => {
            let action = match *action {
                "claim" => Action::Claim,
                "heartbeat" => Action::Heartbeat,
                "done" => Action::Done,
                "fail" => Action::Fail,
                "release" => Action::Release,
                "ask" => Action::Ask,
                "input" => Action::Input,
                "take_input" => Action::TakeInput,
                _ => return Err(ApiError::NotFound),
            };
            allow("POST", post).and(Ok(Route::TaskAction(TaskId::from(decode(id)?), action)))
        }
        _ => Err(ApiError::NotFound),
    }
}

/// `GET /api/whoami`: the principal a token names.
#[derive(Serialize)]
struct Whoami<'a> {
    name: &'a str,
    role: &'static str,
    /// `"*"` for every room, else the list.
    rooms: serde_json::Value,
    payloads: bool,
    creates_jobs: bool,
}

impl<'a> Whoami<'a> {
    fn of(who: &'a Principal) -> Self {
        Self {
            name: who.name(),
            role: who.role().as_str(),
            rooms: match who.rooms() {
                RoomScope::All => serde_json::Value::from("*"),
                RoomScope::Only(rooms) => rooms.iter().map(String::as_str).collect(),
            },
            payloads: who.reads_payloads(),
            creates_jobs: who.creates_jobs(),
        }
    }
}

/// Blanks the payload of a task `who` may not read payloads of: it is
/// written as `null`.
fn redact(who: &Principal, task: &mut Task) {
    if who
        .authorize(&Operation::ReadPayloads { room: &task.room })
        .is_err()
    {
        task.payload = Payload::new(&b"null"[..]);
    }
}

fn ok<T: Serialize>(value: &T) -> Response<ResponseBody> {
    json_response(StatusCode::OK, value).map(ResponseBody::from)
}

fn no_content() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(crate::service::ServiceBody::default()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn claimed(claimed: Claimed) -> Response<ResponseBody> {
    ok(&ClaimResponse {
        lease_expires_at: claimed.task.lease_expires_at,
        claim_token: claimed.token,
        task: claimed.task,
    })
}

fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn last_event_id(headers: &HeaderMap, query: &BTreeMap<String, String>) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.get("last_event_id").cloned())
        .and_then(|v| v.trim().parse().ok())
}

impl Inner {
    async fn report(&self, change: Change<'_>) {
        if let Some(sink) = &self.sink {
            report(sink, &self.clock, change).await;
        }
    }

    async fn answer<B>(&self, request: Request<B>) -> Result<Response<ResponseBody>, ApiError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // Authentication comes first: without a token, not even which paths
        // exist is told.
        let principal = self.principals.authenticate(request.headers())?;
        let who = &*principal;
        let route = route(request.method(), request.uri().path())?;
        let (parts, body) = request.into_parts();
        let query = query_params(parts.uri.query());
        let read = async || -> Result<Bytes, ApiError> {
            read_limited(&parts.headers, body, self.body_limit)
                .await
                .map_err(|e| match e {
                    IngestError::PayloadTooLarge { limit } => ApiError::PayloadTooLarge { limit },
                    _ => ApiError::BodyRead,
                })
        };
        match route {
            Route::Whoami => Ok(ok(&Whoami::of(who))),
            Route::Rooms => {
                who.authorize(&Operation::ListRooms)?;
                self.rooms(who).await
            }
            Route::Join(room) => {
                let join = JoinRequest::from_json(&read().await?)?;
                who.authorize(&Operation::JoinRoom {
                    room: &room,
                    agent_id: &join.agent_id,
                })?;
                let agent =
                    self.members
                        .join(&room, &join.agent_id, join.capabilities, self.clock.now());
                Ok(ok(&JoinResponse {
                    room,
                    agent,
                    expires_after_seconds: self.members.ttl().as_secs(),
                }))
            }
            Route::Leave(room, agent) => {
                who.authorize(&Operation::LeaveRoom {
                    room: &room,
                    agent_id: &agent,
                })?;
                self.members.leave(&room, &agent, self.clock.now());
                Ok(no_content())
            }
            Route::Tasks(room) => {
                if let Some(room) = &room {
                    who.authorize(&Operation::ReadTasks { room })?;
                }
                self.tasks(who, room, &query).await
            }
            Route::ClaimRoom(room) => {
                let body = ClaimBody::from_json(&read().await?)?;
                who.authorize(&Operation::ClaimTask {
                    room: &room,
                    agent_id: &body.agent_id,
                })?;
                self.claim_room(room, body).await
            }
            Route::RoomEvents(room) => {
                who.authorize(&Operation::ReadEvents { room: Some(&room) })?;
                self.events(Some(&room), &parts.headers, &query)
            }
            Route::Events => {
                who.authorize(&Operation::ReadEvents { room: None })?;
                self.events(None, &parts.headers, &query)
            }
            Route::Task(id) => {
                let task = self.task_in_reach(who, &id).await?;
                Ok(ok(&TaskResponse { task }))
            }
            Route::TaskAction(id, action) => {
                let body = read().await?;
                self.task_action(who, id, action, &body).await
            }
            Route::Insert(room) => {
                who.authorize(&Operation::InsertTask { room: &room })?;
                let body = InsertBody::from_json(&read().await?)?;
                let inserted = self.store.insert(body.into_new_task(room)).await?;
                let mut response = ok(&InsertResponse {
                    id: inserted.id,
                    duplicate: inserted.duplicate,
                });
                if !inserted.duplicate {
                    *response.status_mut() = StatusCode::CREATED;
                }
                Ok(response)
            }
            Route::Expire => {
                who.authorize(&Operation::ExpireTasks)?;
                let tasks = self.store.expire_pending().await?;
                for task in &tasks {
                    self.report(Change::Completed(task)).await;
                }
                Ok(ok(&ExpiredResponse { tasks }))
            }
        }
    }

    /// The task `id`, if `who` may read it, its payload kept only when
    /// `who` may read payloads.
    async fn task_in_reach(&self, who: &Principal, id: &TaskId) -> Result<Task, ApiError> {
        let mut task = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        who.authorize(&Operation::ReadTasks { room: &task.room })?;
        redact(who, &mut task);
        Ok(task)
    }

    async fn rooms(&self, who: &Principal) -> Result<Response<ResponseBody>, ApiError> {
        // Every task is read, page by page: the counts are exact for any
        // store, at the cost of a scan of the whole store.
        let now = self.clock.now();
        let mut rooms: BTreeMap<String, (StatusCounts, Option<time::OffsetDateTime>)> =
            BTreeMap::new();
        let mut before = None;
        loop {
            let page = self
                .store
                .list(&TaskQuery {
                    limit: Some(SCAN_PAGE),
                    before: before.take(),
                    ..TaskQuery::default()
                })
                .await?;
            for task in &page {
                let (counts, oldest) = rooms.entry(task.room.clone()).or_default();
                match task.status {
                    JobStatus::Pending => {
                        counts.pending += 1;
                        if oldest.is_none_or(|o| task.created_at < o) {
                            *oldest = Some(task.created_at);
                        }
                    }
                    JobStatus::Running => counts.running += 1,
                    JobStatus::NeedsInput => counts.needs_input += 1,
                    JobStatus::Done => counts.done += 1,
                    JobStatus::Failed => counts.failed += 1,
                }
            }
            if page.len() < SCAN_PAGE {
                break;
            }
            before = page.last().map(|t| t.id.clone());
        }
        let mut members = self.members.snapshot(now);
        for room in members.keys() {
            rooms.entry(room.clone()).or_default();
        }
        let rooms = rooms
            .into_iter()
            .filter(|(room, _)| who.reaches(room))
            .map(|(room, (counts, oldest))| RoomSummary {
                agents: members.remove(&room).unwrap_or_default(),
                oldest_pending_age_seconds: oldest
                    .map(|o| u64::try_from((now - o).whole_seconds()).unwrap_or(0)),
                counts,
                room,
            })
            .collect();
        Ok(ok(&RoomsResponse { rooms }))
    }

    async fn tasks(
        &self,
        who: &Principal,
        room: Option<String>,
        query: &BTreeMap<String, String>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let status = match query.get("status").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.to_ascii_uppercase().parse::<JobStatus>().map_err(|_| {
                ApiError::InvalidQuery {
                    parameter: "status",
                    expected: "one of PENDING, RUNNING, NEEDS_INPUT, DONE, FAILED",
                }
            })?),
        };
        let limit = match query.get("limit").filter(|s| !s.is_empty()) {
            None => DEFAULT_PAGE_LIMIT,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
                .ok_or(ApiError::InvalidQuery {
                    parameter: "limit",
                    expected: "a number from 1 to 500",
                })?,
        };
        let before = query
            .get("cursor")
            .filter(|s| !s.is_empty())
            .map(|s| TaskId::from(s.as_str()));
        let mut tasks = self
            .store
            .list(&TaskQuery {
                room,
                status,
                source: query.get("source").filter(|s| !s.is_empty()).cloned(),
                limit: Some(limit),
                before,
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => ApiError::InvalidCursor,
                other => other.into(),
            })?;
        let next_cursor = (tasks.len() == limit)
            .then(|| tasks.last().map(|t| t.id.clone()))
            .flatten();
        // A listing across rooms keeps what the principal reaches; the
        // cursor still moves past what it left out, so a page may be short.
        tasks.retain(|task| who.reaches(&task.room));
        for task in &mut tasks {
            redact(who, task);
        }
        Ok(ok(&TaskPage { tasks, next_cursor }))
    }

    async fn claim_room(
        &self,
        room: String,
        body: ClaimBody,
    ) -> Result<Response<ResponseBody>, ApiError> {
        self.members.join(
            &room,
            &body.agent_id,
            body.capabilities.clone(),
            self.clock.now(),
        );
        let request = ClaimRequest {
            room,
            agent: body.agent_id,
            capabilities: body.capabilities,
            lease: Duration::from_secs(body.lease_seconds),
        };
        let wait = Duration::from_secs(body.wait_seconds.unwrap_or(0)).min(self.max_wait);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Subscribed before trying, so a task stored between the try and
            // the wait still wakes it.
            let mut watch = self.store.watch(&request.room);
            if let Some(claim) = self.store.claim(&request).await? {
                self.report(Change::Status(&claim.task, Some("claimed")))
                    .await;
                return Ok(claimed(claim));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(no_content());
            }
            let recheck = deadline.min(now + self.recheck);
            match &mut watch {
                // A notification is only a hint: whatever it says, try again.
                Some(watch) => {
                    tokio::select! {
                        _ = watch.recv() => {}
                        () = tokio::time::sleep_until(recheck) => {}
                    }
                }
                None => tokio::time::sleep_until(recheck).await,
            }
        }
    }

    fn events(
        &self,
        room: Option<&str>,
        headers: &HeaderMap,
        query: &BTreeMap<String, String>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let events = self.events.as_ref().ok_or(ApiError::EventsNotConfigured)?;
        let subscription = events.subscribe(room, last_event_id(headers, query));
        let mut response = Response::new(ResponseBody::events(EventStream::new(
            subscription,
            self.keep_alive,
        )));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }

    /// Whether `who` may do `action` on task `id`: it depends on the task's
    /// room and, for a holder's step, on who holds it (the store checks the
    /// claim token as well). Called once the body has been read, so a bad
    /// body is answered `400` before anything is looked up.
    async fn may_act(
        &self,
        who: &Principal,
        id: &TaskId,
        action: Action,
        agent_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let task = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound { id: id.clone() })?;
        let room = task.room.as_str();
        let operation = match action {
            Action::Claim => Operation::ClaimTask {
                room,
                agent_id: agent_id.unwrap_or_default(),
            },
            Action::Input => Operation::AnswerInput { room },
            Action::Heartbeat
            | Action::Done
            | Action::Fail
            | Action::Release
            | Action::Ask
            | Action::TakeInput => Operation::WorkOnTask {
                room,
                holder: task.claimed_by.as_deref(),
            },
        };
        who.authorize(&operation)?;
        Ok(())
    }

    async fn task_action(
        &self,
        who: &Principal,
        id: TaskId,
        action: Action,
        body: &[u8],
    ) -> Result<Response<ResponseBody>, ApiError> {
        let store = &self.store;
        let task = match action {
            Action::Claim => {
                let body = ClaimBody::from_json(body)?;
                self.may_act(who, &id, action, Some(&body.agent_id)).await?;
                let claim = store
                    .claim_task(
                        &id,
                        &ClaimRequest {
                            room: String::new(),
                            agent: body.agent_id.clone(),
                            capabilities: body.capabilities.clone(),
                            lease: Duration::from_secs(body.lease_seconds),
                        },
                    )
                    .await?;
                self.members.join(
                    &claim.task.room,
                    &body.agent_id,
                    body.capabilities,
                    self.clock.now(),
                );
                self.report(Change::Status(&claim.task, Some("claimed")))
                    .await;
                return Ok(claimed(claim));
            }
            Action::Heartbeat => {
                let body = HeartbeatBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let task = store
                    .heartbeat(
                        &id,
                        &body.claim_token,
                        Duration::from_secs(body.lease_seconds),
                    )
                    .await?;
                if let Some(agent) = &task.claimed_by {
                    self.members.touch(&task.room, agent, self.clock.now());
                }
                task
            }
            Action::Done => {
                let body = DoneBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let task = store.complete(&id, &body.claim_token, body.result).await?;
                self.report(Change::Completed(&task)).await;
                task
            }
            Action::Fail => {
                let body = FailBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let action = if body.retry {
                    FailAction::Retry {
                        after: Duration::from_secs(body.retry_after_seconds.unwrap_or(0)),
                    }
                } else {
                    FailAction::Fail
                };
                let task = store
                    .fail(&id, &body.claim_token, &body.reason, action)
                    .await?;
                if task.status == JobStatus::Pending {
                    self.report(Change::Pending(&task, Some(&body.reason)))
                        .await;
                } else {
                    self.report(Change::Completed(&task)).await;
                }
                task
            }
            Action::Release => {
                let body = TokenBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let task = store.release(&id, &body.claim_token).await?;
                self.report(Change::Pending(&task, Some("released"))).await;
                task
            }
            Action::Ask => {
                let body = AskBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let task = store
                    .request_input(&id, &body.claim_token, &body.prompt)
                    .await?;
                self.report(Change::Status(&task, Some(&body.prompt))).await;
                task
            }
            Action::Input => {
                let body = InputBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                store.provide_input(&id, body.input).await?
            }
            Action::TakeInput => {
                let body = TokenBody::from_json(body)?;
                self.may_act(who, &id, action, None).await?;
                let input = store.take_input(&id, &body.claim_token).await?;
                if input.is_some()
                    && self.sink.is_some()
                    && let Some(task) = store.get(&id).await?
                {
                    self.report(Change::Status(&task, Some("input received")))
                        .await;
                }
                return Ok(ok(&InputResponse { input }));
            }
        };
        Ok(ok(&TaskResponse { task }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        let r = |m: Method, p: &str| route(&m, p).map(|_| ()).map_err(|e| e.status().as_u16());
        assert_eq!(r(Method::GET, "/api/rooms"), Ok(()));
        assert_eq!(r(Method::POST, "/api/rooms"), Err(405));
        assert_eq!(r(Method::POST, "/api/rooms/pr%2Dreview/claim"), Ok(()));
        assert_eq!(r(Method::POST, "/api/rooms/bad%zz/claim"), Err(400));
        assert_eq!(r(Method::POST, "/api/rooms//claim"), Err(404));
        assert_eq!(r(Method::POST, "/api/tasks/x/explode"), Err(404));
        assert_eq!(r(Method::GET, "/api/tasks/x/done"), Err(405));
        assert_eq!(r(Method::GET, "/api/jobs/x"), Err(404));
        assert!(matches!(
            route(&Method::GET, "/api/rooms/a%20b/tasks"),
            Ok(Route::Tasks(room)) if room.as_deref() == Some("a b")
        ));
        assert!(matches!(
            route(&Method::GET, "/api/tasks"),
            Ok(Route::Tasks(None))
        ));
        assert!(matches!(
            route(&Method::POST, "/api/tasks/expire"),
            Ok(Route::Expire)
        ));
        assert!(matches!(
            route(&Method::POST, "/api/rooms/r/tasks"),
            Ok(Route::Insert(room)) if room == "r"
        ));
        assert!(matches!(
            route(&Method::GET, "/api/tasks/expire"),
            Ok(Route::Task(_))
        ));
        assert!(TaskApi::handles("/api/tasks"));
        assert!(TaskApi::handles("/api/tasks/1"));
        assert!(!TaskApi::handles("/api/jobs"));
        assert!(!TaskApi::handles("/api/roomsx"));
    }
}
