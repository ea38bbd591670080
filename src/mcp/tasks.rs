//! The MCP Tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`):
//! hookroom tasks followed as MCP tasks with the same id. The mapping is
//! documented in the [module docs](super).

use rmcp::model::{
    CallToolResult, DetailedTask, ElicitResult, ElicitationAction, InputRequest, InputRequests,
    JsonObject, Task as McpTask, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::server::McpSession;
use super::tools::{TaskView, rfc3339};
use crate::lifecycle::JobStatus;
use crate::task::{StoreError, Task, TaskId};

/// Suggested `tasks/get` polling interval.
const POLL_INTERVAL_MS: u64 = 1_000;

/// The form field that carries the answer.
const ANSWER_FIELD: &str = "answer";

/// Whether the request declared the tasks extension (per request or at
/// `initialize`).
pub(crate) fn client_declares_tasks(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .is_some_and(|caps| caps.supports_tasks())
}

/// A store error as a protocol error: an unknown id (SEP-2663) or a task
/// in a state that refuses the request is invalid params, a failing backend
/// an internal error.
fn protocol_error(error: StoreError) -> ErrorData {
    match error {
        StoreError::Backend { .. } => ErrorData::internal_error(error.to_string(), None),
        other => ErrorData::invalid_params(other.to_string(), None),
    }
}

/// The key of the task's current input request: it differs between
/// attempts, holders and prompts, and stays the same while the request is
/// outstanding.
fn input_key(task: &Task) -> String {
    // FNV-1a over holder and prompt, so a second question gets a new key.
    let holder = task.claimed_by.as_deref().unwrap_or_default();
    let prompt = task.input_request.as_deref().unwrap_or_default();
    let bytes = holder.bytes().chain([0]).chain(prompt.bytes());
    let hash = bytes.fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("input-{}-{:08x}", task.attempts, hash as u32)
}

/// Whether the task waits for an answer nobody has given yet.
fn awaits_answer(task: &Task) -> bool {
    task.status == JobStatus::NeedsInput && task.input.is_none()
}

/// The MCP status of a hookroom task.
fn status(task: &Task) -> TaskStatus {
    match task.status {
        JobStatus::Pending | JobStatus::Running => TaskStatus::Working,
        JobStatus::NeedsInput if task.input.is_none() => TaskStatus::InputRequired,
        JobStatus::NeedsInput => TaskStatus::Working,
        JobStatus::Done => TaskStatus::Completed,
        JobStatus::Failed => TaskStatus::Failed,
    }
}

fn status_message(task: &Task) -> String {
    match task.status {
        JobStatus::Pending => format!("PENDING: waiting in room `{}` for an agent", task.room),
        JobStatus::Running => match &task.claimed_by {
            Some(agent) => format!("RUNNING: claimed by {agent}"),
            None => "RUNNING".into(),
        },
        JobStatus::NeedsInput if task.input.is_none() => format!(
            "NEEDS_INPUT: {}",
            task.input_request.as_deref().unwrap_or_default()
        ),
        JobStatus::NeedsInput => "NEEDS_INPUT: answered; the holder has not taken it yet".into(),
        JobStatus::Done => "DONE".into(),
        JobStatus::Failed => format!("FAILED: {}", task.failure.as_deref().unwrap_or_default()),
    }
}

/// The MCP task (without payload) for a hookroom task.
pub(crate) fn mcp_task(task: &Task) -> McpTask {
    McpTask::new(
        task.id.as_str(),
        status(task),
        rfc3339(task.created_at),
        rfc3339(task.updated_at),
    )
    .with_status_message(status_message(task))
    .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// The form elicitation that asks for the task's input.
fn input_request(task: &Task) -> Result<InputRequest, ErrorData> {
    let prompt = task.input_request.clone().unwrap_or_default();
    let request = json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": prompt,
            "requestedSchema": {
                "type": "object",
                "properties": {
                    ANSWER_FIELD: {
                        "type": "string",
                        "title": "Answer",
                        "description": format!("Answer for task `{}`: {}", task.id, prompt),
                    }
                },
                "required": [ANSWER_FIELD],
            }
        }
    });
    serde_json::from_value(request).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

fn object(value: Value) -> Result<JsonObject, ErrorData> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ErrorData::internal_error("expected a JSON object", None)),
    }
}

impl McpSession {
    async fn stored(&self, task_id: &str) -> Result<Task, ErrorData> {
        let id = TaskId::from(task_id);
        self.inner
            .store
            .get(&id)
            .await
            .map_err(protocol_error)?
            .ok_or_else(|| protocol_error(StoreError::NotFound { id }))
    }

    /// `tasks/get`: the hookroom task as an MCP task with its payload.
    pub(crate) async fn mcp_get_task(&self, task_id: &str) -> Result<DetailedTask, ErrorData> {
        let task = self.stored(task_id).await?;
        let payload = match status(&task) {
            TaskStatus::InputRequired => {
                let mut input_requests = InputRequests::new();
                input_requests.insert(input_key(&task), input_request(&task)?);
                TaskPayload::InputRequired { input_requests }
            }
            TaskStatus::Completed => {
                let result = CallToolResult::structured(
                    json!({ "task": TaskView::brief(&task, &self.session) }),
                );
                let result = serde_json::to_value(result)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                TaskPayload::Completed {
                    result: object(result)?,
                }
            }
            TaskStatus::Failed => {
                let reason = task.failure.clone().unwrap_or_else(|| "failed".into());
                let error = ErrorData::internal_error(
                    reason,
                    Some(json!({ "taskId": task.id.as_str(), "status": "FAILED" })),
                );
                let error = serde_json::to_value(error)
                    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
                TaskPayload::Failed {
                    error: object(error)?,
                }
            }
            _ => TaskPayload::Working,
        };
        Ok(DetailedTask::new(mcp_task(&task), payload))
    }

    /// `tasks/update`: an accepted answer to the outstanding input request
    /// becomes the task's input. Other keys, a declined or cancelled form,
    /// or a task that no longer waits change nothing.
    pub(crate) async fn mcp_update_task(
        &self,
        task_id: &str,
        responses: &std::collections::BTreeMap<String, Value>,
    ) -> Result<(), ErrorData> {
        let task = self.stored(task_id).await?;
        if !awaits_answer(&task) {
            return Ok(());
        }
        let key = input_key(&task);
        let Some(response) = responses.get(&key) else {
            return Ok(());
        };
        let answer: ElicitResult = serde_json::from_value(response.clone()).map_err(|e| {
            ErrorData::invalid_params(
                format!("the response to `{key}` is not an elicitation result: {e}"),
                None,
            )
        })?;
        if answer.action != ElicitationAction::Accept {
            return Ok(());
        }
        let input = answer
            .content
            .as_ref()
            .and_then(|c| c.get(ANSWER_FIELD))
            .cloned()
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("the response to `{key}` accepts without an `{ANSWER_FIELD}`"),
                    None,
                )
            })?;
        match self.inner.store.provide_input(&task.id, input).await {
            // Answered or moved on meanwhile: the request is no longer outstanding.
            Ok(_) | Err(StoreError::InvalidTransition { .. }) => {}
            Err(error) => return Err(protocol_error(error)),
        }
        self.task_changed(&task.id).await;
        Ok(())
    }

    /// `tasks/cancel`: gives back the claim this session holds; refused for
    /// a task the session does not hold.
    pub(crate) async fn mcp_cancel_task(
        &self,
        task_id: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let task = self.stored(task_id).await?;
        let Some(token) = self.session.token(&task.id) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "task `{}` is not held by this session: tasks/cancel only gives back this session's own claim",
                    task.id
                ),
                None,
            ));
        };
        let agent = self.agent(context);
        let released = self.inner.store.release(&task.id, &token).await;
        self.session.forget(&task.id);
        let released = released.map_err(protocol_error)?;
        // tasks/cancel answers nothing to carry a refusal in; `report`
        // has logged it.
        let _job_report_error = self
            .report(
                &released,
                self.status_event(
                    &released,
                    JobStatus::Pending,
                    format!("released by {agent}"),
                ),
            )
            .await;
        self.task_changed(&released.id).await;
        Ok(())
    }
}
