//! The Routes API: list, add and remove routes, explain a routing decision,
//! and read the webhook delivery history, for admins.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::body::read_limited;
use super::error::{IngestError, json_response};
use super::json_error::JsonError;
use super::{ResponseFuture, ServiceBody};
use crate::auth::{AuthError, Forbidden, Operation, Principal, Principals};
use crate::clock::Clock;
use crate::error_code::ErrorCode;
use crate::event::{Event, Verified};
use crate::lifecycle::JobStatus;
use crate::ops::{Delivered, Deliverer, RouteChangeError, RouteChanges};
use crate::route::{RouteEntry, RouteError, RouteId, RouteSpec, RoutesFile, RuleRouter, SaveError};
use crate::status::StatusSink;
use crate::task::{Payload, StoreError, Task, TaskId, TaskQuery, TaskStore};
use crate::verify::Verification;

/// How many deliveries `GET /api/deliveries` returns without a `limit`.
pub const DEFAULT_DELIVERIES_LIMIT: usize = 50;

/// The most deliveries one `GET /api/deliveries` page may return.
pub const MAX_DELIVERIES_LIMIT: usize = 500;

/// The largest request body the Routes API reads (a route, or an
/// explain request with its payload): 1 MiB.
pub const DEFAULT_ROUTES_API_BODY_LIMIT: usize = 1024 * 1024;

/// The Routes API over a [`RuleRouter`] and a [`TaskStore`]. Paths (under a [`prefix`](RoutesApiBuilder::prefix), `/api` by
/// default):
///
/// | method and path | answer |
/// | --- | --- |
/// | `GET /api/routes` | `200 {"routes":[{"id",…route…}],"default_room","persistent"}` in evaluation order |
/// | `POST /api/routes` with a route (`{"source","event","filter"?,"target_room","priority"?,"ttl_seconds"?}`) | `201 {"route":{"id",…},"persistent"}`; `400` with the reason |
/// | `DELETE /api/routes/{id}` | `200 {"removed":{"id",…},"persistent"}`; `404 route_not_found` |
/// | `DELETE /api/routes?source=&event=` | every route whose `source` and `event` patterns are exactly these: `200 {"removed":[…],"persistent"}`; `404 route_not_found` when none is |
/// | `POST /api/routes/explain` with `{"source","event","payload"}` | `200` [`Explanation`](crate::route::Explanation) |
/// | `GET /api/deliveries?room=&source=&status=&limit=&cursor=&payload=true` | `200 {"deliveries":[…],"next_cursor"}`, newest first |
/// | `POST /api/deliveries/{task_id}/replay` | routes the stored delivery again (after a route was fixed, say) and delivers it as a webhook is delivered ([`Deliverer`]: a new task, and its job in the [`status_sink`](RoutesApiBuilder::status_sink)): `202 {"status":"accepted","task_id","room","replay_of"}`, or `200 {"status":"ignored","reason"}`; `404 task_not_found` |
///
/// Every answer needs a principal's bearer token ([`Principals`]): `401
/// unauthorized` without a valid one. Viewers and operators read routes,
/// explanations and deliveries (payloads only when granted, and only the
/// deliveries of the rooms they reach); operators also replay; only admins
/// add and remove routes. Anything else is `403 forbidden`.
/// Errors are `{"error":{"code","message"}}` ([`RoutesApiError`]).
///
/// In an explain request, `payload` is the webhook body: a JSON value is
/// taken as its exact text, a JSON string as the text it holds (for
/// form-encoded bodies).
///
/// # Persistence
/// Changes go through [`RouteChanges`], as the MCP route tools' do. With a
/// [`routes_file`](RoutesApiBuilder::routes_file), every change is first written
/// to that file ([`RoutesFile::save_routes`]: only its `routes` change,
/// atomically) and applied to the router only once the file is on disk; if
/// the write fails the answer is `500 routes_not_saved` and nothing
/// changes. The file's routes become the router's: edits made to them by
/// hand while the service runs are overwritten by the next change. Without
/// a file, changes last until the process ends. Route ids are
/// assigned per process: after a restart the routes keep their order but
/// may have new ids.
///
/// # Delivery history
/// `/deliveries` lists the tasks deliveries became, from the task store
/// ([`TaskStore::list`]), so it survives restarts with a durable store.
/// Each entry has the task id, source, event, delivery id, room, status and
/// `created_at`; the payload only with `payload=true`. `next_cursor` is set
/// when the page is full: pass it as `cursor` for the next (older) page.
#[derive(Clone)]
pub struct RoutesApi {
    router: Arc<RuleRouter>,
    store: Arc<dyn TaskStore>,
    principals: Principals,
    changes: RouteChanges,
    /// Replays deliver as ingest does: a new task, and its job.
    deliverer: Deliverer,
    prefix: Arc<str>,
    body_limit: usize,
}

impl fmt::Debug for RoutesApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutesApi")
            .field("router", &self.router)
            .field("principals", &self.principals)
            .field("file", &self.changes.file().map(RoutesFile::path))
            .field("prefix", &self.prefix)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl RoutesApi {
    /// A builder of the API over `router` (a [`RuleRouter`], which it
    /// changes and explains) and `store`, under `/api`, refusing everyone
    /// until [`principals`](RoutesApiBuilder::principals) are set, with changes kept
    /// in memory until a [`routes_file`](RoutesApiBuilder::routes_file) is
    /// set.
    pub fn builder(router: Arc<RuleRouter>, store: Arc<dyn TaskStore>) -> RoutesApiBuilder {
        RoutesApiBuilder {
            api: Self {
                changes: RouteChanges::new(Arc::clone(&router)),
                deliverer: Deliverer::new(router.clone(), Arc::clone(&store)),
                router,
                store,
                principals: Principals::none(),
                prefix: "/api".into(),
                body_limit: DEFAULT_ROUTES_API_BODY_LIMIT,
            },
        }
    }
}

/// Builds a [`RoutesApi`]; from [`RoutesApi::builder`].
#[derive(Debug)]
pub struct RoutesApiBuilder {
    api: RoutesApi,
}

impl RoutesApiBuilder {
    /// Who may use the API, each as its role allows
    /// ([`Principal::authorize`]). An [`ApiTokens`](crate::service::ApiTokens)
    /// pair converts into the environment quick start's principals.
    pub fn principals(mut self, principals: impl Into<Principals>) -> Self {
        self.api.principals = principals.into();
        self
    }

    /// Writes every change back to this routes file (the one the router was
    /// loaded from), so changes survive a restart.
    pub fn routes_file(mut self, file: RoutesFile) -> Self {
        self.api.changes = self.api.changes.routes_file(file);
        self
    }

    /// Where a replayed delivery's job is created, as the
    /// [`WebhookService`](super::WebhookService)'s status sink creates a
    /// webhook's (default: none).
    pub fn status_sink(mut self, sink: Arc<dyn StatusSink>) -> Self {
        self.api.deliverer = self.api.deliverer.status_sink(sink);
        self
    }

    /// The clock of the job events replays publish (default
    /// [`SystemClock`](crate::clock::SystemClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.api.deliverer = self.api.deliverer.clock(clock);
        self
    }

    /// The path prefix (`/api` by default; `""` for the root). A trailing
    /// `/` is ignored.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.api.prefix = prefix.trim_end_matches('/').into();
        self
    }

    /// The largest request body read (default
    /// [`DEFAULT_ROUTES_API_BODY_LIMIT`]).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.api.body_limit = limit;
        self
    }

    /// The API.
    pub fn build(self) -> RoutesApi {
        self.api
    }
}

impl RoutesApi {
    /// Whether `path` is one of this API's (`{prefix}/routes`,
    /// `{prefix}/routes/…`, `{prefix}/deliveries`), for a server that
    /// mounts it next to other services.
    pub fn handles(&self, path: &str) -> bool {
        path.strip_prefix(&*self.prefix).is_some_and(|rest| {
            rest == "/routes"
                || rest.starts_with("/routes/")
                || rest == "/deliveries"
                || rest.starts_with("/deliveries/")
        })
    }

    async fn answer<B>(self, request: Request<B>) -> Result<Response<ServiceBody>, RoutesApiError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let rest = parts
            .uri
            .path()
            .strip_prefix(&*self.prefix)
            .ok_or(RoutesApiError::NotFound)?
            .to_owned();
        if !self.handles(parts.uri.path()) {
            return Err(RoutesApiError::NotFound);
        }
        let who = self.principals.authenticate(&parts.headers)?;
        let who = &*who;
        let method = &parts.method;
        let get = method == Method::GET || method == Method::HEAD;
        match rest.as_str() {
            "/routes" if get => {
                who.authorize(&Operation::ReadRoutes)?;
                Ok(self.list())
            }
            "/routes" if method == Method::POST => {
                who.authorize(&Operation::ChangeRoutes)?;
                let body = self.read(&parts.headers, body).await?;
                self.add(&body).await
            }
            "/routes" if method == Method::DELETE => {
                who.authorize(&Operation::ChangeRoutes)?;
                self.remove_matching(parts.uri.query()).await
            }
            "/routes" => Err(RoutesApiError::MethodNotAllowed {
                allow: "GET, POST, DELETE",
            }),
            "/routes/explain" if method == Method::POST => {
                who.authorize(&Operation::ReadRoutes)?;
                let body = self.read(&parts.headers, body).await?;
                self.explain(&body)
            }
            "/routes/explain" => Err(RoutesApiError::MethodNotAllowed { allow: "POST" }),
            "/deliveries" if get => {
                who.authorize(&Operation::ReadDeliveries)?;
                self.deliveries(who, parts.uri.query()).await
            }
            "/deliveries" => Err(RoutesApiError::MethodNotAllowed { allow: "GET" }),
            other if other.starts_with("/deliveries/") => {
                let id = other
                    .strip_prefix("/deliveries/")
                    .and_then(|rest| rest.strip_suffix("/replay"))
                    .filter(|id| !id.is_empty() && !id.contains('/'))
                    .ok_or(RoutesApiError::NotFound)?;
                if method != Method::POST {
                    return Err(RoutesApiError::MethodNotAllowed { allow: "POST" });
                }
                who.authorize(&Operation::ReplayDelivery)?;
                self.replay(&TaskId::from(id)).await
            }
            other => {
                let id = other
                    .strip_prefix("/routes/")
                    .and_then(|id| id.parse::<u64>().ok())
                    .map(RouteId::from_u64)
                    .ok_or(RoutesApiError::RouteNotFound)?;
                if method != Method::DELETE {
                    return Err(RoutesApiError::MethodNotAllowed { allow: "DELETE" });
                }
                who.authorize(&Operation::ChangeRoutes)?;
                self.remove(id).await
            }
        }
    }

    async fn read<B>(&self, headers: &HeaderMap, body: B) -> Result<bytes::Bytes, RoutesApiError>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        read_limited(headers, body, self.body_limit)
            .await
            .map_err(|e| match e {
                IngestError::PayloadTooLarge { limit } => RoutesApiError::PayloadTooLarge { limit },
                _ => RoutesApiError::BodyRead,
            })
    }

    fn persistent(&self) -> bool {
        self.changes.is_persistent()
    }

    fn list(&self) -> Response<ServiceBody> {
        #[derive(Serialize)]
        struct Body {
            routes: Vec<RouteEntry>,
            default_room: Option<Arc<str>>,
            persistent: bool,
        }
        json_response(
            StatusCode::OK,
            &Body {
                routes: self.router.routes(),
                default_room: self.router.default_room(),
                persistent: self.persistent(),
            },
        )
    }

    async fn add(&self, body: &[u8]) -> Result<Response<ServiceBody>, RoutesApiError> {
        let spec: RouteSpec = serde_json::from_slice(body).map_err(RoutesApiError::json)?;
        let route = self.changes.add(spec).await?;
        let id = route.id;
        #[derive(Serialize)]
        struct Body {
            route: RouteEntry,
            persistent: bool,
        }
        let mut response = json_response(
            StatusCode::CREATED,
            &Body {
                route,
                persistent: self.persistent(),
            },
        );
        if let Ok(location) = format!("{}/routes/{id}", self.prefix).parse() {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn remove(&self, id: RouteId) -> Result<Response<ServiceBody>, RoutesApiError> {
        let removed = self.changes.remove(id).await?;
        #[derive(Serialize)]
        struct Body {
            removed: RouteEntry,
            persistent: bool,
        }
        Ok(json_response(
            StatusCode::OK,
            &Body {
                removed,
                persistent: self.persistent(),
            },
        ))
    }

    /// `DELETE /routes?source=&event=`: every route with exactly these
    /// patterns.
    async fn remove_matching(
        &self,
        query: Option<&str>,
    ) -> Result<Response<ServiceBody>, RoutesApiError> {
        let (mut source, mut event) = (None, None);
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "source" => source = Some(value.into_owned()),
                "event" => event = Some(value.into_owned()),
                _ => return Err(RoutesApiError::UnknownQueryParameter),
            }
        }
        let source = source.ok_or(RoutesApiError::InvalidQuery {
            parameter: "source",
        })?;
        let event = event.ok_or(RoutesApiError::InvalidQuery { parameter: "event" })?;
        let removed = self.changes.remove_matching(&source, &event).await?;
        #[derive(Serialize)]
        struct Body {
            removed: Vec<RouteEntry>,
            persistent: bool,
        }
        Ok(json_response(
            StatusCode::OK,
            &Body {
                removed,
                persistent: self.persistent(),
            },
        ))
    }

    fn explain(&self, body: &[u8]) -> Result<Response<ServiceBody>, RoutesApiError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ExplainRequest {
            source: String,
            event: String,
            #[serde(default)]
            payload: Payload,
        }
        let request: ExplainRequest = serde_json::from_slice(body).map_err(RoutesApiError::json)?;
        let explanation =
            self.router
                .explain(&request.source, &request.event, request.payload.as_bytes());
        Ok(json_response(StatusCode::OK, &explanation))
    }

    /// Routes a stored delivery again and stores what the routes decide now
    /// as a new task, whose delivery id and description say which task it
    /// replays (so the idempotency index takes it as new).
    async fn replay(&self, id: &TaskId) -> Result<Response<ServiceBody>, RoutesApiError> {
        let original = self
            .store
            .get(id)
            .await
            .map_err(RoutesApiError::Store)?
            .ok_or(RoutesApiError::TaskNotFound)?;
        let delivery_id = format!("replay:{}:{}", original.id, uuid::Uuid::new_v4());
        let description = if original.description.is_empty() {
            format!("Replay of task {}.", original.id)
        } else {
            format!(
                "{}\n\nReplay of task {}.",
                original.description, original.id
            )
        };
        let event = Event {
            source: original.source.clone(),
            name: original.source_event.clone(),
            delivery_id,
            title: original.title.clone(),
            description,
            url: original.source_url.clone(),
            payload: original.payload.bytes(),
        };
        // The delivery's signature was checked when it arrived; an admin
        // replays what the store kept.
        let event = Verified::new(event, Verification::new(0));
        #[derive(Serialize)]
        #[serde(tag = "status", rename_all = "lowercase")]
        enum Replayed<'a> {
            Accepted {
                task_id: &'a TaskId,
                room: &'a str,
                replay_of: &'a TaskId,
            },
            Ignored {
                reason: &'a str,
            },
        }
        let delivered = self
            .deliverer
            .deliver_requiring(event, original.required_capabilities.clone())
            .await
            .map_err(RoutesApiError::Store)?;
        match delivered {
            Delivered::Ignored { reason } => Ok(json_response(
                StatusCode::OK,
                &Replayed::Ignored { reason: &reason },
            )),
            // The delivery id holds a fresh UUID, so no task can have it
            // yet; should the store say otherwise, its task is the answer.
            Delivered::Accepted { task_id, room } | Delivered::Duplicate { task_id, room } => {
                Ok(json_response(
                    StatusCode::ACCEPTED,
                    &Replayed::Accepted {
                        task_id: &task_id,
                        room: &room,
                        replay_of: &original.id,
                    },
                ))
            }
        }
    }

    async fn deliveries(
        &self,
        who: &Principal,
        query: Option<&str>,
    ) -> Result<Response<ServiceBody>, RoutesApiError> {
        let mut filter = TaskQuery::default();
        let mut limit = DEFAULT_DELIVERIES_LIMIT;
        let mut with_payload = false;
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let invalid = |parameter: &'static str| RoutesApiError::InvalidQuery { parameter };
            match &*key {
                "room" => filter.room = Some(value.into_owned()),
                "source" => filter.source = Some(value.into_owned()),
                "status" => filter.status = Some(value.parse().map_err(|_| invalid("status"))?),
                "limit" => {
                    limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_DELIVERIES_LIMIT).contains(n))
                        .ok_or(invalid("limit"))?;
                }
                "cursor" => {
                    if value.is_empty() {
                        return Err(invalid("cursor"));
                    }
                    filter.before = Some(TaskId::from(value.into_owned()));
                }
                "payload" => {
                    with_payload = match &*value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid("payload")),
                    }
                }
                _ => return Err(RoutesApiError::UnknownQueryParameter),
            }
        }
        if with_payload {
            who.authorize(&Operation::ReadDeliveryPayloads)?;
        }
        filter.limit = Some(limit);
        let mut tasks = self.store.list(&filter).await.map_err(|e| match e {
            StoreError::NotFound { .. } => RoutesApiError::InvalidQuery {
                parameter: "cursor",
            },
            other => RoutesApiError::Store(other),
        })?;
        let next_cursor = (tasks.len() >= limit)
            .then(|| tasks.last().map(|t| t.id.clone()))
            .flatten();
        // Only the rooms the principal reaches; the cursor still moves past
        // the others, so a page may be short.
        tasks.retain(|task| who.reaches(&task.room));
        #[derive(Serialize)]
        struct Body<'a> {
            deliveries: Vec<Delivery<'a>>,
            next_cursor: Option<TaskId>,
        }
        Ok(json_response(
            StatusCode::OK,
            &Body {
                deliveries: tasks
                    .iter()
                    .map(|task| Delivery::of(task, with_payload))
                    .collect(),
                next_cursor,
            },
        ))
    }
}

/// One entry of `/deliveries`.
#[derive(Serialize)]
struct Delivery<'a> {
    task_id: &'a TaskId,
    source: &'a str,
    event: &'a str,
    delivery_id: &'a str,
    room: &'a str,
    status: JobStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Payload>,
}

impl<'a> Delivery<'a> {
    fn of(task: &'a Task, with_payload: bool) -> Self {
        Self {
            task_id: &task.id,
            source: &task.source,
            event: &task.source_event,
            delivery_id: &task.delivery_id,
            room: &task.room,
            status: task.status,
            created_at: task.created_at,
            payload: with_payload.then_some(&task.payload),
        }
    }
}

impl<B> tower_service::Service<Request<B>> for RoutesApi
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ServiceBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let api = self.clone();
        Box::pin(async move {
            Ok(api
                .answer(request)
                .await
                .unwrap_or_else(|e| e.to_response()))
        })
    }
}

/// Why the Routes API refused a request. Each variant has a stable
/// [`code`](ErrorCode::code) and one status ([`status`](Self::status)).
#[derive(Debug)]
#[non_exhaustive]
pub enum RoutesApiError {
    /// No principal: no valid bearer token (`401 unauthorized` or
    /// `401 token_expired`), or too many requests (`429 rate_limited`).
    Auth(AuthError),
    /// The principal's role does not allow it (`403 forbidden`).
    Forbidden(Forbidden),
    /// Not a Routes API path (`404 not_found`).
    NotFound,
    /// No route has this id (`404 route_not_found`).
    RouteNotFound,
    /// No task has this id (`404 task_not_found`).
    TaskNotFound,
    /// The path does not take this method (`405 method_not_allowed`).
    MethodNotAllowed {
        /// The methods it takes, for the `Allow` header.
        allow: &'static str,
    },
    /// The body is not the expected JSON (`400 invalid_json`).
    InvalidJson {
        /// The parser's reason (naming a missing or unknown field).
        reason: String,
    },
    /// The route is invalid (`400`, the [`RouteError`]'s code).
    InvalidRoute(RouteError),
    /// A query parameter has an invalid value, or the cursor names no
    /// task (`400 invalid_query`).
    InvalidQuery {
        /// The parameter.
        parameter: &'static str,
    },
    /// A query parameter this API does not take (`400 unknown_parameter`).
    UnknownQueryParameter,
    /// The body is larger than the limit (`413 payload_too_large`).
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read (`400 body_read_failed`).
    BodyRead,
    /// The routes file could not be written; nothing changed
    /// (`500 routes_not_saved`).
    NotSaved(Option<SaveError>),
    /// The task store failed (`503 store_unavailable`).
    Store(StoreError),
}

impl From<AuthError> for RoutesApiError {
    fn from(error: AuthError) -> Self {
        Self::Auth(error)
    }
}

impl From<Forbidden> for RoutesApiError {
    fn from(error: Forbidden) -> Self {
        Self::Forbidden(error)
    }
}

impl From<RouteChangeError> for RoutesApiError {
    fn from(error: RouteChangeError) -> Self {
        match error {
            RouteChangeError::InvalidRoute(e) => Self::InvalidRoute(e),
            RouteChangeError::RouteNotFound => Self::RouteNotFound,
            RouteChangeError::NotSaved(e) => Self::NotSaved(e),
        }
    }
}

impl RoutesApiError {
    fn json(error: serde_json::Error) -> Self {
        let text = error.to_string();
        let reason = match text.rfind(" at line ") {
            Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
            None => text,
        };
        Self::InvalidJson { reason }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(e) => e.status(),
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::RouteNotFound | Self::TaskNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidJson { .. }
            | Self::InvalidRoute(_)
            | Self::InvalidQuery { .. }
            | Self::UnknownQueryParameter
            | Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotSaved(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON error response, with `Allow` on 405 and
    /// `WWW-Authenticate` on 401.
    pub fn to_response(&self) -> Response<ServiceBody> {
        let message = self.to_string();
        let error = JsonError::new(self.status(), self.code(), &message);
        match self {
            Self::MethodNotAllowed { allow } => error.allow(allow),
            Self::Auth(AuthError::RateLimited { retry_after }) => error.retry_after(*retry_after),
            Self::Auth(_) => error.bearer_challenge(),
            _ => error,
        }
        .into_response()
    }
}

impl ErrorCode for RoutesApiError {
    fn code(&self) -> &'static str {
        match self {
            Self::Auth(e) => e.code(),
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::TaskNotFound => "task_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidRoute(e) => e.code(),
            Self::InvalidQuery { .. } => "invalid_query",
            Self::UnknownQueryParameter => "unknown_parameter",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyRead => "body_read_failed",
            Self::NotSaved(_) => "routes_not_saved",
            Self::Store(_) => "store_unavailable",
        }
    }
}

impl fmt::Display for RoutesApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth(e) => e.fmt(f),
            Self::Forbidden(e) => e.fmt(f),
            Self::NotFound => f.write_str("no such endpoint"),
            Self::RouteNotFound => f.write_str("no route has this id"),
            Self::TaskNotFound => f.write_str("no task has this id"),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed; use {allow}"),
            Self::InvalidJson { reason } => write!(f, "invalid request body: {reason}"),
            Self::InvalidRoute(e) => write!(f, "invalid route: {e}"),
            Self::InvalidQuery { parameter } => {
                write!(f, "invalid value for query parameter `{parameter}`")
            }
            Self::UnknownQueryParameter => f.write_str(
                "unknown query parameter; use room, source, status, limit, cursor or payload",
            ),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body exceeds the limit of {limit} bytes")
            }
            Self::BodyRead => f.write_str("the request body could not be read"),
            Self::NotSaved(_) => f.write_str(
                "the routes file could not be written; nothing changed (see the gateway's log)",
            ),
            Self::Store(_) => f.write_str("the task store is unavailable"),
        }
    }
}

impl std::error::Error for RoutesApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidRoute(e) => Some(e),
            Self::NotSaved(Some(e)) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}
