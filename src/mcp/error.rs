//! [`ToolError`]: why a tool call failed, as the tool error (`isError`) the
//! model reads.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

use crate::error_code::ErrorCode;
use crate::lifecycle::JobStatus;
use crate::ops::RouteChangeError;
use crate::route::{RouteError, SaveError};
use crate::status::SinkError;
use crate::task::{ClaimRefusal, StoreError, TaskOperation};

/// Why a tool call failed. Every variant reaches the client as a tool result
/// with `isError: true` and the text `{code}: {message}`, never as a
/// protocol error; the message ends with the next step that would work.
///
/// | code | when |
/// | --- | --- |
/// | `invalid_argument` | an argument has the right type but a value the tool cannot use |
/// | `room_not_joined` | `claim_task` or `claim_next` in a room the session has not joined |
/// | `task_not_found` | no task has the id |
/// | `not_held` | the session holds no claim on the task (never claimed, lease lapsed, given back) |
/// | `task_held` | another agent holds the task |
/// | `already_finished` | the task is `DONE` or `FAILED` (or its job ended) |
/// | `task_not_claimable` | a retry not due yet, an expired task, missing capabilities |
/// | `invalid_transition` | the task's status does not allow the change (e.g. `provide_input` on a `RUNNING` task) |
/// | `unauthorized` | the gateway behind this server refused its token |
/// | `payload_too_large` | the gateway behind this server refused a body as too large |
/// | `store_unavailable` | the task store failed; a retry may work |
/// | `job_not_found`, `jobs_unavailable`, `job_refused` | the job tools |
/// | `admin_required`, `route_not_found`, `routes_not_saved`, `rooms_per_session_exceeded` | routes and rooms |
#[derive(Debug)]
#[non_exhaustive]
pub enum ToolError {
    /// An argument has the right type but a value the tool cannot use.
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// The tool needs the session to have joined this room.
    NotJoined {
        /// The room.
        room: String,
    },
    /// No task has this id.
    TaskNotFound {
        /// The id asked for.
        task_id: String,
    },
    /// This session holds no claim on the task.
    NotHeld {
        /// The task.
        task_id: String,
        /// The task's status, when it was read.
        status: Option<JobStatus>,
    },
    /// Another agent holds the task.
    HeldByOther {
        /// The task.
        task_id: String,
        /// The agent holding it, when the store says.
        holder: Option<String>,
        /// When that agent's lease runs out (RFC 3339), when known.
        lease_expires_at: Option<String>,
    },
    /// The task is `DONE` or `FAILED`: nothing can change it any more.
    AlreadyFinished {
        /// The task (or job).
        task_id: String,
        /// Its final status, when known.
        status: Option<JobStatus>,
    },
    /// The task cannot be claimed now for a reason other than another
    /// holder or its end.
    NotClaimable {
        /// The task.
        task_id: String,
        /// Why.
        reason: ClaimRefusal,
    },
    /// The task's status does not allow the operation.
    InvalidTransition {
        /// The task.
        task_id: String,
        /// Its status.
        from: JobStatus,
        /// The refused operation.
        operation: TaskOperation,
    },
    /// The gateway behind this server (`--gateway`) refused its token.
    Unauthorized {
        /// What the gateway said.
        detail: String,
    },
    /// The gateway behind this server refused a request body as too large.
    PayloadTooLarge {
        /// What the gateway said.
        detail: String,
    },
    /// The task store failed; the same call may work later.
    StoreUnavailable(StoreError),
    /// A route tool was called without the admin grant.
    AdminRequired,
    /// The session's principal may not do this (`forbidden`): its role,
    /// its rooms, or a task or job that is not its own.
    Forbidden(crate::auth::Forbidden),
    /// A job tool was called on a server without a job registry.
    JobsUnavailable,
    /// No job has this id.
    JobNotFound {
        /// The id asked for.
        job_id: String,
    },
    /// The session has joined as many rooms as the server allows
    /// ([`McpServerBuilder::max_rooms_per_session`](super::McpServerBuilder::max_rooms_per_session));
    /// code `rooms_per_session_exceeded`. Leaving a room makes space.
    TooManyRooms {
        /// The limit.
        limit: usize,
    },
    /// No route has this id.
    UnknownRoute {
        /// The id asked for.
        id: u64,
    },
    /// The job registry refused the change or failed.
    Job(SinkError),
    /// The route is invalid.
    Route(RouteError),
    /// The routes file could not be written; the routes did not change
    /// (the [`SaveError`], or `None` when the thread writing it did not
    /// finish).
    RoutesNotSaved(Option<SaveError>),
}

impl ErrorCode for ToolError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::NotJoined { .. } => "room_not_joined",
            Self::TaskNotFound { .. } => "task_not_found",
            Self::NotHeld { .. } => "not_held",
            Self::HeldByOther { .. } => "task_held",
            Self::AlreadyFinished { .. } => "already_finished",
            Self::NotClaimable { .. } => "task_not_claimable",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::Unauthorized { .. } => "unauthorized",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::AdminRequired => "admin_required",
            Self::Forbidden(_) => "forbidden",
            Self::JobsUnavailable => "jobs_unavailable",
            Self::JobNotFound { .. } => "job_not_found",
            Self::TooManyRooms { .. } => "rooms_per_session_exceeded",
            Self::UnknownRoute { .. } => "route_not_found",
            Self::Job(e) => match e {
                SinkError::AuthenticationFailed { .. } => "unauthorized",
                SinkError::InvalidStatus { .. } | SinkError::Serialization { .. } => "job_refused",
                _ => "jobs_unavailable",
            },
            Self::Route(e) => e.code(),
            Self::RoutesNotSaved(_) => "routes_not_saved",
        }
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidArgument { argument, reason } => {
                write!(f, "invalid `{argument}`: {reason}")
            }
            Self::NotJoined { room } => write!(
                f,
                "this session has not joined room `{room}`; call join_room with room `{room}` first"
            ),
            Self::TaskNotFound { task_id } => write!(
                f,
                "no task has id `{task_id}`; list_tasks shows a room's tasks and their ids"
            ),
            Self::NotHeld { task_id, status } => {
                write!(f, "this session holds no claim on task `{task_id}`")?;
                match status {
                    Some(JobStatus::Pending) => {
                        f.write_str(" (it is PENDING); claim it with claim_task first")
                    }
                    Some(status) => write!(
                        f,
                        " (it is {status}, held by another claim or its lease lapsed); get_task shows who holds it"
                    ),
                    None => f.write_str("; claim it with claim_task first"),
                }
            }
            Self::HeldByOther {
                task_id,
                holder,
                lease_expires_at,
            } => {
                write!(f, "task `{task_id}` is held by ")?;
                match holder {
                    Some(agent) => write!(f, "agent `{agent}`")?,
                    None => f.write_str("another agent")?,
                }
                if let Some(until) = lease_expires_at {
                    write!(f, " (lease until {until})")?;
                }
                f.write_str("; pick another task or call claim_next")
            }
            Self::AlreadyFinished { task_id, status } => {
                write!(f, "task `{task_id}` is already ")?;
                match status {
                    Some(status) => write!(f, "{status}")?,
                    None => f.write_str("finished")?,
                }
                f.write_str(
                    "; nothing can change it any more (get_task shows its result); pick another task with claim_next",
                )
            }
            Self::NotClaimable { task_id, reason } => {
                write!(f, "task `{task_id}` cannot be claimed: {reason}; ")?;
                f.write_str(match reason {
                    ClaimRefusal::MissingCapabilities => {
                        "join_room again declaring every capability in its required_capabilities, or pick another task"
                    }
                    ClaimRefusal::NotYetDue => {
                        "it waits for its retry time; call claim_next for another task"
                    }
                    _ => "call claim_next for another task",
                })
            }
            Self::InvalidTransition {
                task_id,
                from,
                operation,
            } => {
                write!(f, "cannot {operation} task `{task_id}`: it is {from}; ")?;
                f.write_str(match operation {
                    TaskOperation::ProvideInput => {
                        "provide_input answers only a NEEDS_INPUT task (get_task shows its status)"
                    }
                    TaskOperation::RequestInput => {
                        "ask_input works on a RUNNING task this session holds"
                    }
                    _ => "get_task shows its status",
                })
            }
            Self::Unauthorized { detail } => write!(
                f,
                "the gateway refused this MCP server's token ({detail}); retrying will not help: \
                 whoever runs this MCP server must set a valid token (HOOKROOM_API_TOKEN, or --token-env)"
            ),
            Self::PayloadTooLarge { detail } => write!(
                f,
                "the gateway refused the request as too large ({detail}); send a smaller value \
                 (e.g. a short summary and a link instead of the whole text)"
            ),
            Self::StoreUnavailable(e) => write!(f, "{e}; try again in a few seconds"),
            Self::Forbidden(e) => write!(
                f,
                "{e}; this session acts as that principal: ask whoever runs hookroom if it should"
            ),
            Self::AdminRequired => f.write_str(
                "route tools need the admin grant (an admin token, or a server started with admin tools on); \
                 ask whoever runs hookroom to change the route",
            ),
            Self::JobsUnavailable => f.write_str(
                "this server has no job registry; read jobs from the gateway's Jobs API instead",
            ),
            Self::JobNotFound { job_id } => write!(
                f,
                "no job has id `{job_id}`; a task's job has the task's id (list_tasks shows them)"
            ),
            Self::TooManyRooms { limit } => write!(
                f,
                "this session has joined {limit} rooms, the most it may; leave_room one first"
            ),
            Self::UnknownRoute { id } => {
                write!(f, "no route has id {id}; webhook_routes lists them")
            }
            Self::Job(e) => match e {
                SinkError::AuthenticationFailed { .. } => write!(
                    f,
                    "{e}; retrying will not help: whoever runs this MCP server must set a valid token"
                ),
                SinkError::InvalidStatus { .. } => {
                    write!(f, "{e}; get_job shows the job's status and history")
                }
                SinkError::Serialization { .. } => {
                    write!(f, "{e}; fix the argument and call again")
                }
                _ => write!(f, "{e}; try again in a few seconds"),
            },
            Self::Route(e) => e.fmt(f),
            Self::RoutesNotSaved(_) => f.write_str(
                "the routes file could not be written; the routes did not change (see the server's log)",
            ),
        }
    }
}

impl std::error::Error for ToolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::StoreUnavailable(e) => Some(e),
            Self::Job(e) => Some(e),
            Self::Route(e) => Some(e),
            Self::RoutesNotSaved(Some(e)) => Some(e),
            _ => None,
        }
    }
}

/// Classifies a store error: the refusals by what the model can do next,
/// and a gateway's `401`/`403`/`413` (behind an
/// [`HttpTaskStore`](crate::http::HttpTaskStore)) by their cause rather
/// than as a failing store.
impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { id } => Self::TaskNotFound {
                task_id: id.to_string(),
            },
            StoreError::NotHeld { id } => Self::NotHeld {
                task_id: id.to_string(),
                status: None,
            },
            StoreError::InvalidTransition { id, from, .. } if from.is_terminal() => {
                Self::AlreadyFinished {
                    task_id: id.to_string(),
                    status: Some(from),
                }
            }
            StoreError::InvalidTransition {
                id,
                from,
                operation,
            } => Self::InvalidTransition {
                task_id: id.to_string(),
                from,
                operation,
            },
            StoreError::NotClaimable {
                id,
                reason: ClaimRefusal::Finished,
            } => Self::AlreadyFinished {
                task_id: id.to_string(),
                status: None,
            },
            StoreError::NotClaimable {
                id,
                reason: ClaimRefusal::Held,
            } => Self::HeldByOther {
                task_id: id.to_string(),
                holder: None,
                lease_expires_at: None,
            },
            StoreError::NotClaimable { id, reason } => Self::NotClaimable {
                task_id: id.to_string(),
                reason,
            },
            StoreError::Backend { store, source } => match http_status(source.as_ref()) {
                Some(401 | 403) => Self::Unauthorized {
                    detail: source.to_string(),
                },
                Some(413) => Self::PayloadTooLarge {
                    detail: source.to_string(),
                },
                _ => Self::StoreUnavailable(StoreError::Backend { store, source }),
            },
        }
    }
}

/// The HTTP status a gateway answered, when `source` is an
/// [`HttpStoreError`](crate::http::HttpStoreError).
#[cfg(feature = "http-client")]
fn http_status(source: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<u16> {
    match source.downcast_ref::<crate::http::HttpStoreError>()? {
        crate::http::HttpStoreError::Status { status, .. } => Some(*status),
        _ => None,
    }
}

#[cfg(not(feature = "http-client"))]
fn http_status(_: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<u16> {
    None
}

impl From<SinkError> for ToolError {
    fn from(e: SinkError) -> Self {
        match e {
            SinkError::JobNotFound { job_id } => Self::JobNotFound { job_id },
            other => Self::Job(other),
        }
    }
}

impl From<RouteError> for ToolError {
    fn from(e: RouteError) -> Self {
        Self::Route(e)
    }
}

impl From<RouteChangeError> for ToolError {
    fn from(e: RouteChangeError) -> Self {
        match e {
            RouteChangeError::InvalidRoute(e) => Self::Route(e),
            RouteChangeError::RouteNotFound => Self::InvalidArgument {
                argument: "id",
                reason: "no route has this id; webhook_routes lists them".into(),
            },
            RouteChangeError::NotSaved(e) => Self::RoutesNotSaved(e),
        }
    }
}

impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        let text = format!("{}: {self}", self.code());
        Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
    }
}
