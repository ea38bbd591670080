//! What the SQL stores share: the columns of a task row, how a row becomes a
//! [`StoredTask`] and back, and the `UPDATE` every operation writes.
//!
//! Each driver only reads a row's columns into a [`TaskRow`] and binds a
//! [`TaskRow`]'s values to its statements; the mapping, and every rule (the
//! [state machine](super::state)), is here once.
//!
//! Time is a 64-bit integer column of nanoseconds since the Unix epoch, by
//! the crate's one rule ([`to_unix_nanos`], out-of-range times saturate),
//! taken from the store's clock so every backend obeys the same clock in
//! tests.

use std::error::Error;

use super::state::StoredTask;
use super::{ClaimToken, Payload, StoreError, Task, TaskId};
use crate::clock::{from_unix_nanos, to_unix_nanos};
use crate::lifecycle::JobStatus;

/// Every column of a task row, in the order [`TaskRow`] lists them.
pub(crate) const COLUMNS: &str = "id, room, title, description, priority, status, source, \
     source_event, source_url, delivery_id, payload, required_capabilities, created_at, \
     updated_at, expires_at, not_before, claimed_by, lease_expires_at, attempts, claim_token, \
     input_request, input, result, failure";

/// The `UPDATE` that writes back every column an operation can change, with
/// parameters in the order [`TaskRow::changes`] binds them (`$1..$12`) and
/// the id last (`$13`), so that positional and numbered binding agree.
pub(crate) fn update_statement(table: &str) -> String {
    format!(
        "UPDATE {table} SET status = $1, updated_at = $2, expires_at = $3, not_before = $4, \
         claimed_by = $5, lease_expires_at = $6, attempts = $7, claim_token = $8, \
         input_request = $9, input = $10, result = $11, failure = $12 WHERE id = $13"
    )
}

/// A task row as SQL values: what a driver reads out of a row and binds to a
/// statement. JSON columns are text; times are nanoseconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskRow {
    pub(crate) id: String,
    pub(crate) room: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) priority: i64,
    pub(crate) status: String,
    pub(crate) source: String,
    pub(crate) source_event: String,
    pub(crate) source_url: Option<String>,
    pub(crate) delivery_id: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) required_capabilities: Vec<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) not_before: Option<i64>,
    pub(crate) claimed_by: Option<String>,
    pub(crate) lease_expires_at: Option<i64>,
    pub(crate) attempts: i64,
    pub(crate) claim_token: Option<String>,
    pub(crate) input_request: Option<String>,
    pub(crate) input: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) failure: Option<String>,
}

/// The columns an operation can change, in [`update_statement`]'s order.
pub(crate) struct Changes<'a> {
    pub(crate) status: &'a str,
    pub(crate) updated_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) not_before: Option<i64>,
    pub(crate) claimed_by: Option<&'a str>,
    pub(crate) lease_expires_at: Option<i64>,
    pub(crate) attempts: i64,
    pub(crate) claim_token: Option<&'a str>,
    pub(crate) input_request: Option<&'a str>,
    pub(crate) input: Option<&'a str>,
    pub(crate) result: Option<&'a str>,
    pub(crate) failure: Option<&'a str>,
    pub(crate) id: &'a str,
}

impl TaskRow {
    /// The row that stores `stored`.
    pub(crate) fn of(stored: &StoredTask) -> Self {
        let task = &stored.task;
        Self {
            id: task.id.as_str().to_owned(),
            room: task.room.clone(),
            title: task.title.clone(),
            description: task.description.clone(),
            priority: i64::from(task.priority),
            status: task.status.as_str().to_owned(),
            source: task.source.clone(),
            source_event: task.source_event.clone(),
            source_url: task.source_url.clone(),
            delivery_id: task.delivery_id.clone(),
            payload: task.payload.as_bytes().to_vec(),
            required_capabilities: task.required_capabilities.clone(),
            created_at: to_unix_nanos(task.created_at),
            updated_at: to_unix_nanos(task.updated_at),
            expires_at: task.expires_at.map(to_unix_nanos),
            not_before: task.not_before.map(to_unix_nanos),
            claimed_by: task.claimed_by.clone(),
            lease_expires_at: task.lease_expires_at.map(to_unix_nanos),
            attempts: i64::from(task.attempts),
            claim_token: stored.token.as_ref().map(|t| t.as_str().to_owned()),
            input_request: task.input_request.clone(),
            input: task.input.as_ref().map(|v| v.to_string()),
            result: task.result.as_ref().map(|v| v.to_string()),
            failure: task.failure.clone(),
        }
    }

    /// The changeable columns' values, for [`update_statement`].
    pub(crate) fn changes(&self) -> Changes<'_> {
        Changes {
            status: &self.status,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            not_before: self.not_before,
            claimed_by: self.claimed_by.as_deref(),
            lease_expires_at: self.lease_expires_at,
            attempts: self.attempts,
            claim_token: self.claim_token.as_deref(),
            input_request: self.input_request.as_deref(),
            input: self.input.as_deref(),
            result: self.result.as_deref(),
            failure: self.failure.as_deref(),
            id: &self.id,
        }
    }

    /// The stored task this row holds.
    ///
    /// # Errors
    /// [`StoreError::Backend`] naming the task and the column when a value
    /// cannot be what the store wrote (an unknown status, JSON that does not
    /// parse, a number out of range): a damaged row is reported, never
    /// replaced with a default.
    pub(crate) fn into_stored(self, store: &'static str) -> Result<StoredTask, StoreError> {
        let id = TaskId::from(self.id);
        let bad = |column: &'static str, cause: Box<dyn Error + Send + Sync>| StoreError::Backend {
            store,
            source: Box::new(CorruptColumn {
                id: id.clone(),
                column,
                cause,
            }),
        };
        let json = |column: &'static str, text: Option<String>| {
            text.map(|text| serde_json::from_str(&text).map_err(|e| bad(column, Box::new(e))))
                .transpose()
        };
        let number =
            |column: &'static str, n: i64| u32::try_from(n).map_err(|e| bad(column, Box::new(e)));
        let task = Task {
            status: self
                .status
                .parse::<JobStatus>()
                .map_err(|e| bad("status", Box::new(e)))?,
            priority: number("priority", self.priority)?,
            attempts: number("attempts", self.attempts)?,
            input: json("input", self.input)?,
            result: json("result", self.result)?,
            room: self.room,
            title: self.title,
            description: self.description,
            source: self.source,
            source_event: self.source_event,
            source_url: self.source_url,
            delivery_id: self.delivery_id,
            payload: Payload::from(self.payload),
            required_capabilities: self.required_capabilities,
            created_at: from_unix_nanos(self.created_at),
            updated_at: from_unix_nanos(self.updated_at),
            expires_at: self.expires_at.map(from_unix_nanos),
            not_before: self.not_before.map(from_unix_nanos),
            claimed_by: self.claimed_by,
            lease_expires_at: self.lease_expires_at.map(from_unix_nanos),
            input_request: self.input_request,
            failure: self.failure,
            id: id.clone(),
        };
        Ok(StoredTask {
            task,
            token: self.claim_token.map(ClaimToken::new),
        })
    }
}

/// A column whose stored value cannot be read back.
#[derive(Debug)]
pub(crate) struct CorruptColumn {
    pub(crate) id: TaskId,
    pub(crate) column: &'static str,
    pub(crate) cause: Box<dyn Error + Send + Sync>,
}

impl std::fmt::Display for CorruptColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task `{}` has a corrupt `{}` column: {}",
            self.id, self.column, self.cause
        )
    }
}

impl Error for CorruptColumn {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::NewTask;

    fn stored() -> StoredTask {
        let new = NewTask {
            room: "room".into(),
            title: "title".into(),
            description: "d".into(),
            priority: 3,
            source: "github".into(),
            source_event: "push".into(),
            source_url: Some("https://example.com".into()),
            delivery_id: "d-1".into(),
            payload: r#"{"b":1,"a":2}"#.into(),
            required_capabilities: vec!["gpu".into()],
            ttl: Some(std::time::Duration::from_secs(60)),
        };
        let now = from_unix_nanos(1_700_000_000_123_456_789);
        let mut stored = StoredTask::new(TaskId::random(), new, now);
        stored
            .claim(
                "bot",
                &["gpu".into()],
                std::time::Duration::from_secs(5),
                now,
            )
            .expect("claimable");
        stored
    }

    #[test]
    fn a_row_round_trips() {
        let stored = stored();
        let back = TaskRow::of(&stored).into_stored("test").expect("readable");
        assert_eq!(back, stored);
    }

    #[test]
    fn a_corrupt_json_column_is_an_error_naming_the_task() {
        let stored = stored();
        let mut row = TaskRow::of(&stored);
        row.result = Some("{not json".into());
        let error = row.into_stored("test").expect_err("corrupt");
        let text = error.to_string();
        let cause = std::error::Error::source(&error)
            .expect("a cause")
            .to_string();
        assert!(cause.contains(stored.task.id.as_str()), "{text}: {cause}");
        assert!(cause.contains("`result`"), "{cause}");
    }

    #[test]
    fn an_unknown_status_or_negative_count_is_an_error() {
        let mut row = TaskRow::of(&stored());
        row.status = "SLEEPING".into();
        assert!(row.into_stored("test").is_err());
        let mut row = TaskRow::of(&stored());
        row.attempts = -1;
        assert!(row.into_stored("test").is_err());
    }
}
