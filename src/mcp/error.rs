//! [`ToolError`]: why a tool call failed, as the tool error (`isError`) the
//! model reads.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};

use crate::error_code::ErrorCode;
use crate::ops::RouteChangeError;
use crate::route::{RouteError, SaveError};
use crate::status::SinkError;
use crate::task::StoreError;

/// Why a tool call failed. Every variant reaches the client as a tool result
/// with `isError: true` and the text `{code}: {message}`, never as a
/// protocol error.
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
    /// This session holds no claim on the task.
    NoClaim {
        /// The task.
        task_id: String,
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
    /// A route tool was called without the admin grant.
    AdminRequired,
    /// A job tool was called on a server without a job registry.
    JobsUnavailable,
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
    /// The task store refused or failed.
    Store(StoreError),
    /// The job registry refused the change.
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
            Self::NoClaim { .. } => "not_held",
            Self::HeldByOther { .. } => "task_held",
            Self::AdminRequired => "admin_required",
            Self::JobsUnavailable => "jobs_unavailable",
            Self::TooManyRooms { .. } => "rooms_per_session_exceeded",
            Self::UnknownRoute { .. } => "route_not_found",
            Self::Store(e) => e.code(),
            Self::Job(e) => e.code(),
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
                "this session has not joined room `{room}`; call join_room first"
            ),
            Self::NoClaim { task_id } => write!(
                f,
                "this session holds no claim on task `{task_id}`; claim it with claim_task first"
            ),
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
            Self::AdminRequired => f.write_str(
                "route tools need the admin grant (an admin token, or a server started with admin tools on)",
            ),
            Self::JobsUnavailable => f.write_str("this server has no job registry"),
            Self::TooManyRooms { limit } => write!(
                f,
                "this session has joined {limit} rooms, the most it may; leave_room one first"
            ),
            Self::UnknownRoute { id } => {
                write!(f, "no route has id {id}; webhook_routes lists them")
            }
            Self::Store(e) => e.fmt(f),
            Self::Job(e) => e.fmt(f),
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
            Self::Store(e) => Some(e),
            Self::Job(e) => Some(e),
            Self::Route(e) => Some(e),
            Self::RoutesNotSaved(Some(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<SinkError> for ToolError {
    fn from(e: SinkError) -> Self {
        Self::Job(e)
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
