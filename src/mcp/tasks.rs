//! The MCP Tasks utility (protocol version 2025-11-25): a `tools/call`
//! whose request asks for task execution (`params.task`) answers at once
//! with a task, runs in the background, and is followed with `tasks/get`,
//! `tasks/result`, `tasks/list` and `tasks/cancel`; each change of status is
//! sent as `notifications/tasks/status`. A call that does not ask is a
//! plain call. Tasks belong to the session that created them and live until
//! their `ttl` runs out (counted from creation).
//!
//! rmcp's types lag the specification here (see [`super::wire`]), so the
//! requests arrive as custom requests and the answers are written as JSON.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomNotification, CustomRequest, CustomResult,
    ServerNotification,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::server::McpSession;
use super::tools::rfc3339;
use super::wire::{CALL, TASKS_PREFIX};

/// Most tasks one session keeps at once; past it a task-augmented call is
/// refused until older tasks expire.
pub(crate) const MAX_TASKS_PER_SESSION: usize = 64;
/// `ttl` of a task whose request did not ask for one.
const DEFAULT_TTL: Duration = Duration::from_secs(10 * 60);
/// Longest `ttl` granted; a longer request is cut to it.
const MAX_TTL: Duration = Duration::from_secs(60 * 60);
/// Suggested `tasks/get` polling interval.
const POLL_INTERVAL_MS: u64 = 500;
/// The `_meta` key relating a message to its task.
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// A task's status, as the specification spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Working,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Working => "working",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn is_terminal(self) -> bool {
        self != Self::Working
    }
}

/// What the task's request produced.
#[derive(Debug, Clone)]
enum Outcome {
    /// The tool result, as JSON.
    Result(Value),
    /// The protocol error the request answered.
    Error(ErrorData),
}

#[derive(Debug)]
struct Entry {
    status: Status,
    message: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    ttl: Duration,
    outcome: Option<Outcome>,
    run: Option<AbortHandle>,
    /// `true` once the task is terminal, for `tasks/result` to wait on.
    done: watch::Sender<bool>,
}

impl Entry {
    fn wire(&self, id: &str) -> Value {
        let mut task = json!({
            "taskId": id,
            "status": self.status.as_str(),
            "createdAt": rfc3339(self.created_at),
            "lastUpdatedAt": rfc3339(self.updated_at),
            "ttl": u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            "pollInterval": POLL_INTERVAL_MS,
        });
        if let Some(message) = &self.message {
            task["statusMessage"] = Value::String(message.clone());
        }
        task
    }
}

/// One session's tasks, by id.
#[derive(Debug, Default)]
pub(crate) struct McpTasks {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Drop for McpTasks {
    fn drop(&mut self) {
        let entries = self
            .entries
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for entry in entries.values_mut() {
            if let Some(run) = entry.run.take() {
                run.abort();
            }
        }
    }
}

impl McpTasks {
    /// The entries, without those whose `ttl` ran out.
    fn live(&self, now: OffsetDateTime) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, entry| {
            let alive = now < entry.created_at + entry.ttl;
            if !alive && let Some(run) = entry.run.take() {
                run.abort();
            }
            alive
        });
        entries
    }
}

fn unknown_task(id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "no task `{id}` in this session (tasks expire after their ttl); tasks/list shows them"
        ),
        None,
    )
}

fn task_id(params: &Option<Value>) -> Result<String, ErrorData> {
    params
        .as_ref()
        .and_then(|p| p.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ErrorData::invalid_params("params.taskId (a string) is required", None))
}

fn related(id: &str) -> Value {
    json!({ RELATED_TASK: { "taskId": id } })
}

impl McpSession {
    /// Serves the 2025-11-25 tasks requests ([`super::wire`] renamed them).
    pub(crate) async fn tasks_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = request.method.as_str();
        let answer = match method {
            CALL => self.create_task(request.params, context).await?,
            _ => match method.strip_prefix(TASKS_PREFIX) {
                Some("tasks/get") => self.task_get(&task_id(&request.params)?)?,
                Some("tasks/result") => self.task_result(&task_id(&request.params)?).await?,
                Some("tasks/list") => self.task_list(),
                Some("tasks/cancel") => self.task_cancel(&task_id(&request.params)?).await?,
                _ => {
                    return Err(ErrorData::new(
                        rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                        method.to_owned(),
                        None,
                    ));
                }
            },
        };
        Ok(CustomResult::new(answer))
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// A `tools/call` that asked for a task: the task, its call running in
    /// the background.
    async fn create_task(
        &self,
        params: Option<Value>,
        context: RequestContext<RoleServer>,
    ) -> Result<Value, ErrorData> {
        let Some(Value::Object(mut params)) = params else {
            return Err(ErrorData::invalid_params("tools/call needs params", None));
        };
        let asked = params.remove("task").unwrap_or(Value::Null);
        let ttl = match asked.get("ttl").and_then(Value::as_u64) {
            Some(ms) => Duration::from_millis(ms).min(MAX_TTL),
            None => DEFAULT_TTL,
        };
        let call: CallToolRequestParams = serde_json::from_value(Value::Object(params))
            .map_err(|e| ErrorData::invalid_params(format!("tools/call params: {e}"), None))?;
        if self.get_tool(&call.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!("no tool `{}`; tools/list shows them", call.name),
                None,
            ));
        }
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let entry = Entry {
            status: Status::Working,
            message: None,
            created_at: now,
            updated_at: now,
            ttl,
            outcome: None,
            run: None,
            done: watch::channel(false).0,
        };
        let created = entry.wire(&id);
        {
            let mut entries = self.session.mcp_tasks.live(now);
            if entries.len() >= MAX_TASKS_PER_SESSION {
                return Err(ErrorData::invalid_request(
                    format!(
                        "this session has {MAX_TASKS_PER_SESSION} tasks, the most it may keep; \
                         they are forgotten when their ttl runs out, so ask for shorter ttls"
                    ),
                    None,
                ));
            }
            entries.insert(id.clone(), entry);
        }
        self.session.set_peer(&context.peer);
        let session = self.clone();
        let task = id.clone();
        let run = tokio::spawn(async move {
            let outcome = match session.call_tool(call, context).await {
                Ok(CallToolResponse::Complete(result)) => {
                    let failed = result.is_error == Some(true);
                    let mut value = serde_json::to_value(&result).unwrap_or(Value::Null);
                    if let Some(object) = value.as_object_mut() {
                        object.insert("_meta".into(), related(&task));
                    }
                    (failed, Outcome::Result(value))
                }
                Ok(other) => (
                    true,
                    Outcome::Error(ErrorData::internal_error(
                        format!("the tool answered an unexpected result: {other:?}"),
                        None,
                    )),
                ),
                Err(error) => (true, Outcome::Error(error)),
            };
            let status = if outcome.0 {
                Status::Failed
            } else {
                Status::Completed
            };
            session
                .finish_task(&task, status, None, Some(outcome.1))
                .await;
        });
        if let Some(entry) = self
            .session
            .mcp_tasks
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&id)
            && entry.status == Status::Working
        {
            entry.run = Some(run.abort_handle());
        }
        Ok(json!({ "task": created }))
    }

    /// Moves a working task to a terminal status and tells the client.
    async fn finish_task(
        &self,
        id: &str,
        status: Status,
        message: Option<String>,
        outcome: Option<Outcome>,
    ) -> Option<Value> {
        let now = self.now();
        let wire = {
            let mut entries = self.session.mcp_tasks.live(now);
            let entry = entries.get_mut(id)?;
            if entry.status.is_terminal() {
                return None;
            }
            entry.status = status;
            entry.message = message;
            entry.updated_at = now.max(entry.created_at);
            entry.outcome = outcome;
            if let Some(run) = entry.run.take()
                && status == Status::Cancelled
            {
                run.abort();
            }
            entry.done.send_replace(true);
            entry.wire(id)
        };
        if let Some(peer) = self.session.peer() {
            let notification =
                CustomNotification::new("notifications/tasks/status", Some(wire.clone()));
            let _ = peer
                .send_notification(ServerNotification::CustomNotification(notification))
                .await;
        }
        Some(wire)
    }

    fn task_get(&self, id: &str) -> Result<Value, ErrorData> {
        self.session
            .mcp_tasks
            .live(self.now())
            .get(id)
            .map(|entry| entry.wire(id))
            .ok_or_else(|| unknown_task(id))
    }

    /// Waits until the task is terminal, then answers what its request
    /// produced.
    async fn task_result(&self, id: &str) -> Result<Value, ErrorData> {
        let mut done = self
            .session
            .mcp_tasks
            .live(self.now())
            .get(id)
            .map(|entry| entry.done.subscribe())
            .ok_or_else(|| unknown_task(id))?;
        // The sender lives in the entry; an entry that expires while
        // waited on ends the wait.
        let _ = done.wait_for(|finished| *finished).await;
        let entries = self.session.mcp_tasks.live(self.now());
        let entry = entries.get(id).ok_or_else(|| unknown_task(id))?;
        match (&entry.status, &entry.outcome) {
            (_, Some(Outcome::Result(result))) => Ok(result.clone()),
            (_, Some(Outcome::Error(error))) => Err(error.clone()),
            (Status::Cancelled, None) => Err(ErrorData::invalid_params(
                format!("task `{id}` was cancelled before it produced a result"),
                Some(related(id)),
            )),
            _ => Err(unknown_task(id)),
        }
    }

    fn task_list(&self) -> Value {
        let entries = self.session.mcp_tasks.live(self.now());
        let tasks: Vec<Value> = entries.iter().map(|(id, entry)| entry.wire(id)).collect();
        json!({ "tasks": tasks })
    }

    async fn task_cancel(&self, id: &str) -> Result<Value, ErrorData> {
        let status = self
            .session
            .mcp_tasks
            .live(self.now())
            .get(id)
            .map(|entry| entry.status)
            .ok_or_else(|| unknown_task(id))?;
        if status.is_terminal() {
            return Err(ErrorData::invalid_params(
                format!(
                    "task `{id}` is already {}; a terminal task cannot be cancelled",
                    status.as_str()
                ),
                None,
            ));
        }
        match self
            .finish_task(
                id,
                Status::Cancelled,
                Some("cancelled by the client".into()),
                None,
            )
            .await
        {
            Some(wire) => Ok(wire),
            // It finished between the two looks.
            None => self.task_get(id),
        }
    }
}
