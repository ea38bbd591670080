//! Who a caller is: a named [`Principal`] with a [`Role`] and the rooms it
//! may reach.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a principal may do, in broad strokes; [`Principal::authorize`] has
/// the detail, operation by operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every room.
    Admin,
    /// A viewer that also answers `NEEDS_INPUT`, retries and cancels tasks
    /// and replays deliveries.
    Operator,
    /// Reads rooms, tasks, jobs, events, routes and deliveries; payloads only
    /// when granted ([`Principal::with_payloads`]).
    Viewer,
    /// Joins rooms and claims tasks in the rooms it is scoped to, under its
    /// own name, and changes the tasks it holds.
    Agent,
    /// The Jobs API's producer: creates jobs and changes the jobs it created.
    Reporter,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Agent,
        Role::Reporter,
    ];

    /// The role's name as written in principals files and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Agent => "agent",
            Self::Reporter => "reporter",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `admin`, `operator`, `viewer`, `agent`,
/// `reporter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown role {:?}: expected admin, operator, viewer, agent or reporter",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// The rooms a principal may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoomScope {
    /// Every room.
    #[default]
    All,
    /// Only these rooms.
    Only(BTreeSet<String>),
}

impl RoomScope {
    /// Only the rooms given.
    pub fn only<I, S>(rooms: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Only(rooms.into_iter().map(Into::into).collect())
    }

    /// Whether `room` is in scope.
    pub fn contains(&self, room: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(rooms) => rooms.contains(room),
        }
    }
}

/// Which agent ids a principal may act as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentIds {
    /// Its name, or `{name}/{worker}` for one of several workers sharing
    /// the principal's token.
    OwnName,
    /// Any id: the single shared token of the environment quick start,
    /// which is one identity for every agent that holds it.
    Any,
}

/// A caller: a name, a role, the rooms it may reach, and what it may read.
///
/// ```
/// use hookroom::auth::{Operation, Principal, Role, RoomScope};
///
/// let reviewer = Principal::new("reviewer-1", Role::Agent)
///     .with_rooms(RoomScope::only(["pr-review"]));
/// assert!(reviewer.authorize(&Operation::ClaimTask { room: "pr-review", agent_id: "reviewer-1" }).is_ok());
/// assert!(reviewer.authorize(&Operation::ClaimTask { room: "pr-review", agent_id: "reviewer-1/w2" }).is_ok());
/// assert!(reviewer.authorize(&Operation::ClaimTask { room: "pr-review", agent_id: "someone-else" }).is_err());
/// assert!(reviewer.authorize(&Operation::ReadTasks { room: "billing" }).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    name: String,
    role: Role,
    rooms: RoomScope,
    payloads: bool,
    reports: bool,
    agent_ids: AgentIds,
}

impl Principal {
    /// A principal in every room, without payload grants.
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            name: name.into(),
            role,
            rooms: RoomScope::All,
            payloads: false,
            reports: false,
            agent_ids: AgentIds::OwnName,
        }
    }

    /// The admin of the environment quick start (`HOOKROOM_ADMIN_TOKEN`).
    pub fn environment_admin() -> Self {
        Self::new("admin", Role::Admin)
    }

    /// The agent of the environment quick start (`HOOKROOM_API_TOKEN`): an
    /// agent in every room that may also report its own jobs, and, being
    /// one token shared by every agent that holds it, may act under any
    /// agent id. A principals file gives each agent a name of its own,
    /// which its claims are then held to.
    pub fn environment_agent() -> Self {
        Self {
            reports: true,
            agent_ids: AgentIds::Any,
            ..Self::new("agent", Role::Agent)
        }
    }

    /// Limits the principal to these rooms.
    #[must_use]
    pub fn with_rooms(mut self, rooms: RoomScope) -> Self {
        self.rooms = rooms;
        self
    }

    /// Grants (or not) reading payloads: for viewers and operators, which
    /// see a task's or delivery's payload only with this grant.
    #[must_use]
    pub fn with_payloads(mut self, payloads: bool) -> Self {
        self.payloads = payloads;
        self
    }

    /// Lets an agent also create jobs of its own through the Jobs API, as a
    /// reporter does.
    #[must_use]
    pub fn with_reports(mut self, reports: bool) -> Self {
        self.reports = reports;
        self
    }

    /// The principal's name (an agent's id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The principal's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The rooms it may reach.
    pub fn rooms(&self) -> &RoomScope {
        &self.rooms
    }

    /// Whether it may read payloads (in its rooms).
    pub fn reads_payloads(&self) -> bool {
        match self.role {
            Role::Admin | Role::Agent => true,
            Role::Operator | Role::Viewer => self.payloads,
            Role::Reporter => false,
        }
    }

    /// Whether it may create jobs through the Jobs API.
    pub fn creates_jobs(&self) -> bool {
        match self.role {
            Role::Admin | Role::Reporter => true,
            Role::Agent => self.reports,
            Role::Operator | Role::Viewer => false,
        }
    }

    /// Whether it may act as the agent `agent_id`: its own name, or
    /// `{name}/{worker}`.
    pub fn acts_as(&self, agent_id: &str) -> bool {
        match self.agent_ids {
            AgentIds::Any => true,
            AgentIds::OwnName => agent_id
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    /// Whether `room` is within its reach: every room for an admin.
    pub fn reaches(&self, room: &str) -> bool {
        self.role == Role::Admin || self.rooms.contains(room)
    }

    /// Whether it may do `operation`. This match is the whole policy: every
    /// HTTP route, MCP tool and runtime step asks it.
    ///
    /// # Errors
    /// [`Forbidden`] naming the operation and who may do it.
    pub fn authorize(&self, operation: &Operation<'_>) -> Result<(), Forbidden> {
        use Operation as Op;
        use Role::*;
        let role = self.role;
        if role == Admin {
            return Ok(());
        }
        let reads = matches!(role, Operator | Viewer | Agent);
        let allowed = match *operation {
            Op::ListRooms => reads,
            Op::ReadTasks { room } => reads && self.reaches(room),
            Op::ReadEvents { room: Some(room) } => reads && self.reaches(room),
            // Every room's events: only for a principal that reaches every room.
            Op::ReadEvents { room: None } => reads && self.rooms == RoomScope::All,
            Op::ReadPayloads { room } => reads && self.reaches(room) && self.reads_payloads(),
            Op::JoinRoom { room, agent_id } | Op::ClaimTask { room, agent_id } => {
                role == Agent && self.reaches(room) && self.acts_as(agent_id)
            }
            Op::LeaveRoom { agent_id, .. } => role == Agent && self.acts_as(agent_id),
            Op::WorkOnTask { room, holder } => {
                role == Agent && self.reaches(room) && holder.is_some_and(|h| self.acts_as(h))
            }
            Op::AnswerInput { room } | Op::RetryTask { room } | Op::CancelTask { room } => {
                role == Operator && self.reaches(room)
            }
            Op::InsertTask { .. } | Op::ExpireTasks => false,
            Op::CreateJob => self.creates_jobs(),
            Op::ReadJob { created_by, room } => {
                matches!(role, Operator | Viewer)
                    || created_by == Some(self.name.as_str())
                    || (role == Agent && room.is_some_and(|r| self.reaches(r)))
            }
            Op::ListJobs => true,
            Op::ChangeJob { created_by } => {
                self.creates_jobs() && created_by == Some(self.name.as_str())
            }
            Op::ReadRoutes | Op::ReadDeliveries => matches!(role, Operator | Viewer),
            Op::ReadDeliveryPayloads => matches!(role, Operator | Viewer) && self.payloads,
            Op::ReplayDelivery => role == Operator,
            Op::ChangeRoutes | Op::ReadOperations | Op::ReadMetrics | Op::ReadHealthDetail => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Forbidden {
                principal: self.name.clone(),
                role,
                operation: operation.name(),
                who_may: operation.who_may(),
            })
        }
    }
}

/// Something a caller asks to do, with what the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation<'a> {
    /// List rooms (each principal sees the rooms it reaches).
    ListRooms,
    /// Read a room's tasks, or one task, without payloads.
    ReadTasks {
        /// The task's room.
        room: &'a str,
    },
    /// Read tasks' payloads.
    ReadPayloads {
        /// The task's room.
        room: &'a str,
    },
    /// Read task events.
    ReadEvents {
        /// The room of the events; `None` for every room's.
        room: Option<&'a str>,
    },
    /// Join a room as an agent.
    JoinRoom {
        /// The room.
        room: &'a str,
        /// The agent id joining.
        agent_id: &'a str,
    },
    /// Leave a room.
    LeaveRoom {
        /// The room.
        room: &'a str,
        /// The agent id leaving.
        agent_id: &'a str,
    },
    /// Claim a task.
    ClaimTask {
        /// The room.
        room: &'a str,
        /// The agent id claiming.
        agent_id: &'a str,
    },
    /// Heartbeat, finish, fail, release, ask for input on, or take the
    /// answer of a task it holds (the claim token is checked as well).
    WorkOnTask {
        /// The task's room.
        room: &'a str,
        /// The task's lease holder, if any.
        holder: Option<&'a str>,
    },
    /// Answer a task's `NEEDS_INPUT` question.
    AnswerInput {
        /// The task's room.
        room: &'a str,
    },
    /// Put a failed task back to `PENDING`.
    RetryTask {
        /// The task's room.
        room: &'a str,
    },
    /// Cancel a pending task.
    CancelTask {
        /// The task's room.
        room: &'a str,
    },
    /// Insert a task directly (not from a webhook).
    InsertTask {
        /// The room.
        room: &'a str,
    },
    /// Expire every pending task past its deadline.
    ExpireTasks,
    /// Create a job through the Jobs API.
    CreateJob,
    /// Read one job.
    ReadJob {
        /// Who created it through the Jobs API; `None` for a task's job.
        created_by: Option<&'a str>,
        /// The room of a task's job.
        room: Option<&'a str>,
    },
    /// List jobs (each principal sees the jobs it may read).
    ListJobs,
    /// Change a job through the Jobs API (status, artifacts, completion).
    ChangeJob {
        /// Who created it; `None` for a task's job, which changes only
        /// through its task.
        created_by: Option<&'a str>,
    },
    /// Read routes and explain a match.
    ReadRoutes,
    /// Add or remove routes.
    ChangeRoutes,
    /// Read the delivery history.
    ReadDeliveries,
    /// Read deliveries' payloads.
    ReadDeliveryPayloads,
    /// Replay a delivery.
    ReplayDelivery,
    /// Read `/operations`.
    ReadOperations,
    /// Read `/metrics`.
    ReadMetrics,
    /// Read `/health`'s component detail.
    ReadHealthDetail,
}

impl Operation<'_> {
    /// Every operation's [`name`](Self::name), so that a table of who may do
    /// what (a test, a document) can check that it covers them all.
    pub const NAMES: [&'static str; 25] = [
        "list_rooms",
        "read_tasks",
        "read_payloads",
        "read_events",
        "join_room",
        "leave_room",
        "claim_task",
        "work_on_task",
        "answer_input",
        "retry_task",
        "cancel_task",
        "insert_task",
        "expire_tasks",
        "create_job",
        "read_job",
        "list_jobs",
        "change_job",
        "read_routes",
        "change_routes",
        "read_deliveries",
        "read_delivery_payloads",
        "replay_delivery",
        "read_operations",
        "read_metrics",
        "read_health_detail",
    ];

    /// A stable name for the operation, as error bodies and logs give it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ListRooms => "list_rooms",
            Self::ReadTasks { .. } => "read_tasks",
            Self::ReadPayloads { .. } => "read_payloads",
            Self::ReadEvents { .. } => "read_events",
            Self::JoinRoom { .. } => "join_room",
            Self::LeaveRoom { .. } => "leave_room",
            Self::ClaimTask { .. } => "claim_task",
            Self::WorkOnTask { .. } => "work_on_task",
            Self::AnswerInput { .. } => "answer_input",
            Self::RetryTask { .. } => "retry_task",
            Self::CancelTask { .. } => "cancel_task",
            Self::InsertTask { .. } => "insert_task",
            Self::ExpireTasks => "expire_tasks",
            Self::CreateJob => "create_job",
            Self::ReadJob { .. } => "read_job",
            Self::ListJobs => "list_jobs",
            Self::ChangeJob { .. } => "change_job",
            Self::ReadRoutes => "read_routes",
            Self::ChangeRoutes => "change_routes",
            Self::ReadDeliveries => "read_deliveries",
            Self::ReadDeliveryPayloads => "read_delivery_payloads",
            Self::ReplayDelivery => "replay_delivery",
            Self::ReadOperations => "read_operations",
            Self::ReadMetrics => "read_metrics",
            Self::ReadHealthDetail => "read_health_detail",
        }
    }

    /// Who may do it, in words, for the error's message.
    fn who_may(&self) -> &'static str {
        match self {
            Self::ListRooms | Self::ListJobs => "any principal but a reporter",
            Self::ReadTasks { .. } | Self::ReadEvents { room: Some(_) } => {
                "an admin, or a viewer, operator or agent whose rooms include the task's"
            }
            Self::ReadEvents { room: None } => {
                "a principal that reaches every room (others subscribe per room)"
            }
            Self::ReadPayloads { .. } => {
                "an admin, an agent in the task's room, or a viewer or operator granted payloads"
            }
            Self::JoinRoom { .. } | Self::ClaimTask { .. } => {
                "an agent scoped to the room, under its own name (or name/worker)"
            }
            Self::LeaveRoom { .. } => "the agent itself, or an admin",
            Self::WorkOnTask { .. } => {
                "the agent holding the task's claim (with its claim token), or an admin"
            }
            Self::AnswerInput { .. } | Self::RetryTask { .. } | Self::CancelTask { .. } => {
                "an operator scoped to the room, or an admin"
            }
            Self::CreateJob => "a reporter, an agent allowed to report, or an admin",
            Self::ReadJob { .. } => {
                "its creator, an agent in the task's room, a viewer, an operator or an admin"
            }
            Self::ChangeJob { created_by: None } => {
                "the agent holding the task's claim, or an admin (a task's job changes through its task)"
            }
            Self::ChangeJob { .. } => "the principal that created the job, or an admin",
            Self::ReadRoutes | Self::ReadDeliveries => "a viewer, an operator or an admin",
            Self::ReadDeliveryPayloads => "an admin, or a viewer or operator granted payloads",
            Self::ReplayDelivery => "an operator or an admin",
            Self::InsertTask { .. }
            | Self::ExpireTasks
            | Self::ChangeRoutes
            | Self::ReadOperations
            | Self::ReadMetrics
            | Self::ReadHealthDetail => "an admin",
        }
    }
}

/// A principal asked for an operation its role or scope does not allow
/// (`403 forbidden`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    principal: String,
    role: Role,
    operation: &'static str,
    who_may: &'static str,
}

impl Forbidden {
    /// The operation refused ([`Operation::name`]).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The role of the principal refused.
    pub fn role(&self) -> Role {
        self.role
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) may not {}: only {} may",
            self.principal,
            self.role,
            self.operation.replace('_', " "),
            self.who_may
        )
    }
}

impl std::error::Error for Forbidden {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_acts_only_as_itself_or_its_workers() {
        let agent = Principal::new("rev", Role::Agent);
        assert!(agent.acts_as("rev"));
        assert!(agent.acts_as("rev/w1"));
        assert!(!agent.acts_as("reviewer"));
        assert!(!agent.acts_as("re"));
        assert!(!agent.acts_as(""));
        assert!(Principal::environment_agent().acts_as("anyone"));
    }

    #[test]
    fn names_lists_every_operation_once() {
        let r = "r";
        let every = [
            Operation::ListRooms,
            Operation::ReadTasks { room: r },
            Operation::ReadPayloads { room: r },
            Operation::ReadEvents { room: None },
            Operation::JoinRoom {
                room: r,
                agent_id: r,
            },
            Operation::LeaveRoom {
                room: r,
                agent_id: r,
            },
            Operation::ClaimTask {
                room: r,
                agent_id: r,
            },
            Operation::WorkOnTask {
                room: r,
                holder: None,
            },
            Operation::AnswerInput { room: r },
            Operation::RetryTask { room: r },
            Operation::CancelTask { room: r },
            Operation::InsertTask { room: r },
            Operation::ExpireTasks,
            Operation::CreateJob,
            Operation::ReadJob {
                created_by: None,
                room: None,
            },
            Operation::ListJobs,
            Operation::ChangeJob { created_by: None },
            Operation::ReadRoutes,
            Operation::ChangeRoutes,
            Operation::ReadDeliveries,
            Operation::ReadDeliveryPayloads,
            Operation::ReplayDelivery,
            Operation::ReadOperations,
            Operation::ReadMetrics,
            Operation::ReadHealthDetail,
        ];
        let names: Vec<&str> = every.iter().map(Operation::name).collect();
        assert_eq!(names, Operation::NAMES);
    }

    #[test]
    fn roles_parse_from_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_refusal_names_who_may() {
        let viewer = Principal::new("v", Role::Viewer);
        let error = viewer
            .authorize(&Operation::AnswerInput { room: "r" })
            .unwrap_err();
        assert_eq!(error.operation(), "answer_input");
        assert!(error.to_string().contains("operator"), "{error}");
    }

    #[test]
    fn a_tasks_job_changes_through_the_jobs_api_only_for_an_admin() {
        for role in Role::ALL {
            let principal = Principal::new("p", role).with_reports(true);
            let allowed = principal
                .authorize(&Operation::ChangeJob { created_by: None })
                .is_ok();
            assert_eq!(allowed, role == Role::Admin, "{role}");
        }
    }
}
