//! How a task row is read and written: the driver's half of the shared
//! row mapping (`task/sql.rs`).

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{STORE, TABLE, backend};
use crate::clock::to_unix_nanos;
use crate::task::sql::{COLUMNS, CorruptColumn, TaskRow, update_statement};
use crate::task::state::StoredTask;
use crate::task::{Inserted, NewTask, StoreError, TaskId};

/// How many columns [`COLUMNS`] names: a column selected after them is at
/// this index.
pub(crate) const COLUMN_COUNT: usize = 24;

/// The best of the claim candidates a SQL store's claim queries found (one
/// per query: the room's first claimable pending task, its first task whose
/// lease ran out), in claim order: lowest priority number, then oldest, then
/// the earlier insert (`seq`).
#[derive(Default)]
pub(crate) struct BestCandidate(Option<((u32, i64, i64), StoredTask)>);

impl BestCandidate {
    /// Keeps `stored` (its row's `seq` beside it) if it comes before the
    /// best so far.
    pub(crate) fn offer(&mut self, stored: StoredTask, seq: i64) {
        let task = &stored.task;
        let key = (task.priority, to_unix_nanos(task.created_at), seq);
        if self.0.as_ref().is_none_or(|(best, _)| key < *best) {
            self.0 = Some((key, stored));
        }
    }

    /// The best candidate, if any was offered.
    pub(crate) fn into_best(self) -> Option<StoredTask> {
        self.0.map(|(_, stored)| stored)
    }
}

/// `INSERT` of a whole row: 24 parameters, `$1..$24` in [`COLUMNS`] order.
pub(crate) fn insert_statement(table: &str) -> String {
    let params: Vec<String> = (1..=24).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO {table} ({COLUMNS}) VALUES ({})",
        params.join(", ")
    )
}

/// Reads a row selected as [`COLUMNS`]. Capabilities are a JSON array in
/// text, as SQLite has no array type.
pub(super) fn read_row(row: &Row<'_>) -> Result<StoredTask, StoreError> {
    let id: String = row.get(0).map_err(backend)?;
    let capabilities: String = row.get(11).map_err(backend)?;
    let required_capabilities = serde_json::from_str(&capabilities).map_err(|e| {
        backend(CorruptColumn {
            id: TaskId::from(id.as_str()),
            column: "required_capabilities",
            cause: Box::new(e),
        })
    })?;
    let columns = || -> rusqlite::Result<TaskRow> {
        Ok(TaskRow {
            id,
            room: row.get(1)?,
            title: row.get(2)?,
            description: row.get(3)?,
            priority: row.get(4)?,
            status: row.get(5)?,
            source: row.get(6)?,
            source_event: row.get(7)?,
            source_url: row.get(8)?,
            delivery_id: row.get(9)?,
            payload: row.get(10)?,
            required_capabilities,
            created_at: row.get(12)?,
            updated_at: row.get(13)?,
            expires_at: row.get(14)?,
            not_before: row.get(15)?,
            claimed_by: row.get(16)?,
            lease_expires_at: row.get(17)?,
            attempts: row.get(18)?,
            claim_token: row.get(19)?,
            input_request: row.get(20)?,
            input: row.get(21)?,
            result: row.get(22)?,
            failure: row.get(23)?,
        })
    };
    columns().map_err(backend)?.into_stored(STORE)
}

/// Every row `sql` selects (as [`COLUMNS`]) with `params`.
pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredTask>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        found.push(read_row(row)?);
    }
    Ok(found)
}

pub(super) fn fetch(conn: &Connection, id: &TaskId) -> Result<Option<StoredTask>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM {TABLE} WHERE id = ?1");
    Ok(query(conn, &sql, params![id.as_str()])?.pop())
}

/// Inserts `task` in `tx`, or finds the task its `(source, delivery_id)`
/// already made.
pub(super) fn insert_in(
    tx: &Connection,
    task: NewTask,
    now: OffsetDateTime,
) -> Result<Inserted, StoreError> {
    let existing: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT id FROM {TABLE} WHERE source = ?1 AND delivery_id = ?2"
        ))
        .map_err(backend)?
        .query_row(params![task.source, task.delivery_id], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    if let Some(id) = existing {
        return Ok(Inserted {
            id: TaskId::from(id),
            duplicate: true,
        });
    }
    let stored = StoredTask::new(TaskId::time_ordered(), task, now);
    let r = TaskRow::of(&stored);
    let capabilities = serde_json::to_string(&r.required_capabilities).map_err(backend)?;
    tx.prepare_cached(&insert_statement(TABLE))
        .map_err(backend)?
        .execute(params![
            r.id,
            r.room,
            r.title,
            r.description,
            r.priority,
            r.status,
            r.source,
            r.source_event,
            r.source_url,
            r.delivery_id,
            r.payload,
            capabilities,
            r.created_at,
            r.updated_at,
            r.expires_at,
            r.not_before,
            r.claimed_by,
            r.lease_expires_at,
            r.attempts,
            r.claim_token,
            r.input_request,
            r.input,
            r.result,
            r.failure,
        ])
        .map_err(backend)?;
    Ok(Inserted {
        id: stored.task.id,
        duplicate: false,
    })
}

/// Writes back the columns a state machine operation can change.
pub(super) fn write(tx: &Connection, stored: &StoredTask) -> Result<(), StoreError> {
    let row = TaskRow::of(stored);
    let c = row.changes();
    let mut stmt = tx
        .prepare_cached(&update_statement(TABLE))
        .map_err(backend)?;
    stmt.execute(params![
        c.status,
        c.updated_at,
        c.expires_at,
        c.not_before,
        c.claimed_by,
        c.lease_expires_at,
        c.attempts,
        c.claim_token,
        c.input_request,
        c.input,
        c.result,
        c.failure,
        c.id,
    ])
    .map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_appear_in_order() {
        // SQLite numbers `$n` parameters by first appearance: the statements
        // must list them in order for positional binding to match.
        for sql in [insert_statement("t"), update_statement("t")] {
            let numbers: Vec<u32> = sql
                .split('$')
                .skip(1)
                .map(|s| {
                    s.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                        .parse()
                        .expect("a number")
                })
                .collect();
            let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
            assert_eq!(numbers, expected, "{sql}");
        }
    }

    #[test]
    fn column_count_is_the_number_of_columns_named() {
        assert_eq!(super::COLUMNS.split(',').count(), super::COLUMN_COUNT);
    }
}
