//! The SQL text of [`PostgresTaskStore`](super::PostgresTaskStore), with the
//! table name filled in once.

use crate::task::sql::{COLUMNS, update_statement};

/// The database's time (`clock_timestamp()`), in nanoseconds since the
/// Unix epoch.
pub(in crate::postgres) const DATABASE_NANOS: &str =
    "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000)::BIGINT";

pub(super) fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

/// SQL text with the table name filled in once.
pub(super) struct Statements {
    /// The table and its indexes. The expiry and lease indexes hold only
    /// the rows that have such a time (no pending task has a lease, a task
    /// without a TTL has no expiry), so an insert writes two index entries
    /// fewer; the queries that read them compare that time, which proves
    /// it is not null to the planner. The `DROP`s replace the full indexes
    /// of earlier versions on databases that still have them.
    pub(super) schema: String,
    pub(super) get: String,
    pub(super) lock: String,
    pub(super) list: String,
    pub(super) cursor: String,
    /// Claims the better of a room's (`$1`) best claimable `PENDING` task
    /// and its best task whose lease ran out, for an agent (`$4`) with
    /// capabilities `$3`, a lease of `$5` nanoseconds and the token `$6`, at
    /// `$2` (or the database's time when `$2` is null); returns the claimed
    /// row.
    pub(super) claim: String,
    pub(super) expire_candidates: String,
    pub(super) update: String,
    /// The database's time, in nanoseconds since the Unix epoch.
    pub(super) now: String,
    pub(super) purge_finished: String,
}

impl Statements {
    pub(super) fn new(t: &str) -> Self {
        // `RETURNING` names the table's columns, which `chosen` does not have
        // but for `seq`.
        let returning = COLUMNS
            .split(", ")
            .map(|column| format!("{t}.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            schema: format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    seq                   BIGSERIAL PRIMARY KEY,
                    id                    TEXT NOT NULL UNIQUE,
                    room                  TEXT NOT NULL,
                    title                 TEXT NOT NULL,
                    description           TEXT NOT NULL,
                    priority              BIGINT NOT NULL,
                    status                TEXT NOT NULL,
                    source                TEXT NOT NULL,
                    source_event          TEXT NOT NULL,
                    source_url            TEXT,
                    delivery_id           TEXT NOT NULL,
                    payload               BYTEA NOT NULL,
                    required_capabilities TEXT[] NOT NULL,
                    created_at            BIGINT NOT NULL,
                    updated_at            BIGINT NOT NULL,
                    expires_at            BIGINT,
                    not_before            BIGINT,
                    claimed_by            TEXT,
                    lease_expires_at      BIGINT,
                    attempts              BIGINT NOT NULL DEFAULT 0,
                    claim_token           TEXT,
                    input_request         TEXT,
                    input                 TEXT,
                    result                TEXT,
                    failure               TEXT,
                    UNIQUE (source, delivery_id)
                );
                CREATE INDEX IF NOT EXISTS {t}_claim ON {t} (room, status, priority, created_at, seq);
                DROP INDEX IF EXISTS {t}_expiry;
                DROP INDEX IF EXISTS {t}_lease;
                CREATE INDEX IF NOT EXISTS {t}_expiring ON {t} (status, expires_at) \
                    WHERE expires_at IS NOT NULL;
                CREATE INDEX IF NOT EXISTS {t}_leased ON {t} (status, lease_expires_at) \
                    WHERE lease_expires_at IS NOT NULL;
                CREATE INDEX IF NOT EXISTS {t}_created ON {t} (created_at DESC, seq DESC);
                CREATE INDEX IF NOT EXISTS {t}_finished ON {t} (updated_at) \
                    WHERE status IN ('DONE', 'FAILED');"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE id = $1"),
            lock: format!("SELECT {COLUMNS} FROM {t} WHERE id = $1 FOR UPDATE"),
            list: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE ($1::TEXT IS NULL OR room = $1) AND ($2::TEXT IS NULL OR status = $2) \
                   AND ($3::TEXT IS NULL OR source = $3) \
                   AND ($5::BIGINT IS NULL OR (created_at, seq) < ($5, $6::BIGINT)) \
                 ORDER BY created_at DESC, seq DESC LIMIT $4"
            ),
            cursor: format!("SELECT created_at, seq FROM {t} WHERE id = $1"),
            // Two locking reads, not one with an OR: each reads its
            // candidates in claim order straight off an index and stops at
            // the first row it can lock, where one query over both states
            // would sort every task of the room first. The time is read in
            // the statement: SKIP LOCKED never waits, so it is the claim's.
            // Lapsed tasks are found through the lease index whatever the
            // table's statistics (the planner cannot know the time when it
            // plans a prepared statement): the lease's lower bound is always
            // true, but with both bounds the range is estimated as narrow
            // (an upper bound alone makes it scan the table once most tasks
            // are running), and `(room = $1) IS TRUE` is the same test in a
            // form no index serves, so the room's index (which would read
            // every running task of the room) is never chosen.
            //
            // The better candidate is claimed in the same statement, which
            // commits on its own: one round trip and one statement, where
            // reading the candidates and writing the claim back in a
            // transaction took two round trips and four statements, and
            // about 20% more CPU per claim with 8 agents. So the `SET`
            // restates `StoredTask::claim` in SQL, field for field
            // (`RUNNING`, the agent, the lease from the claim's time
            // saturating at the largest time, one more attempt up to
            // `u32::MAX`, the token, `not_before`, `expires_at`,
            // `input_request` and `input` cleared); the conformance suite's
            // claim checks read every one of them back.
            claim: format!(
                "WITH now AS MATERIALIZED (SELECT COALESCE($2::BIGINT, {DATABASE_NANOS}) AS at), \
                 pending AS (SELECT seq, priority, created_at FROM {t} \
                   WHERE room = $1 AND status = 'PENDING' \
                     AND (not_before IS NULL OR not_before <= (SELECT at FROM now)) \
                     AND (expires_at IS NULL OR expires_at > (SELECT at FROM now)) \
                     AND required_capabilities <@ $3::TEXT[] \
                   ORDER BY priority ASC, created_at ASC, seq ASC \
                   LIMIT 1 FOR UPDATE SKIP LOCKED), \
                 lapsed AS (SELECT seq, priority, created_at FROM {t} \
                   WHERE status IN ('RUNNING', 'NEEDS_INPUT') \
                     AND lease_expires_at <= (SELECT at FROM now) \
                     AND lease_expires_at >= -9223372036854775808 \
                     AND (room = $1) IS TRUE AND required_capabilities <@ $3::TEXT[] \
                   ORDER BY priority ASC, created_at ASC, seq ASC \
                   LIMIT 1 FOR UPDATE SKIP LOCKED), \
                 chosen AS (SELECT seq FROM (SELECT * FROM pending UNION ALL SELECT * FROM lapsed) c \
                   ORDER BY priority ASC, created_at ASC, seq ASC LIMIT 1) \
                 UPDATE {t} SET status = 'RUNNING', claimed_by = $4, \
                   lease_expires_at = CASE WHEN (SELECT at FROM now) > 9223372036854775807 - $5::BIGINT \
                     THEN 9223372036854775807 ELSE (SELECT at FROM now) + $5::BIGINT END, \
                   attempts = LEAST({t}.attempts + 1, 4294967295), claim_token = $6, \
                   not_before = NULL, expires_at = NULL, input_request = NULL, input = NULL, \
                   updated_at = (SELECT at FROM now) \
                 FROM chosen WHERE {t}.seq = chosen.seq \
                 RETURNING {returning}"
            ),
            expire_candidates: format!(
                "SELECT {COLUMNS} FROM {t} \
                 WHERE status = 'PENDING' AND expires_at IS NOT NULL AND expires_at <= $1 \
                 ORDER BY created_at, seq FOR UPDATE SKIP LOCKED"
            ),
            update: update_statement(t),
            now: format!("SELECT {DATABASE_NANOS}"),
            // Rows another transaction holds are left for the next round.
            purge_finished: format!(
                "DELETE FROM {t} WHERE seq IN (SELECT seq FROM {t} \
                 WHERE status IN ('DONE', 'FAILED') AND updated_at < $1 \
                 ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
        }
    }
}
