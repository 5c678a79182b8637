//! The audit log in SQLite: its append and prune commands and its listing.
//!
//! Owns every statement on the `audit` table and nothing else; what an entry holds (and that
//! it holds no secret) is decided by the admin API, not here.

use rusqlite::{Connection, Row, params};

use super::batch::{WriteOp, WriterState};
use crate::store::{AuditEntry, AuditQuery, AuditRecord, LogPosition};

/// Entries newest first, with the query's filters (?2 to ?5) after the cursor (?1).
const LIST_AUDIT: &str = "SELECT seq, at, role, credential, remote, action, resource, outcome, \
     status FROM audit WHERE seq < ?1 AND (?2 IS NULL OR action = ?2) \
     AND (?3 IS NULL OR resource = ?3) AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) \
     ORDER BY seq DESC LIMIT ?6";

pub(super) struct AppendAudit(pub AuditEntry);

pub(super) struct PruneAudit {
    pub before: u64,
    pub batch: usize,
}

impl WriteOp for AppendAudit {
    type Output = LogPosition;

    fn apply(
        &self,
        connection: &Connection,
        _state: &mut WriterState,
    ) -> rusqlite::Result<LogPosition> {
        let entry = &self.0;
        connection
            .prepare_cached(
                "INSERT INTO audit (at, role, credential, remote, action, resource, outcome, \
                 status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                entry.at as i64,
                entry.role,
                entry.credential,
                entry.remote,
                entry.action,
                entry.resource,
                entry.outcome,
                entry.status,
            ])?;
        Ok(LogPosition::new(connection.last_insert_rowid() as u64))
    }
}

impl WriteOp for PruneAudit {
    type Output = usize;

    fn apply(&self, connection: &Connection, _state: &mut WriterState) -> rusqlite::Result<usize> {
        connection
            .prepare_cached(PRUNE_AUDIT)?
            .execute(params![self.before as i64, self.batch as i64])
    }
}

/// A pass over the audit log: at most `?2` entries older than `?1`, oldest first. Walked in
/// `audit_by_at`'s order, so a pass reads only the entries past the cutoff (in append order it
/// read every entry); ties keep append order, so every projection deletes the same entries.
pub(super) const PRUNE_AUDIT: &str = "DELETE FROM audit WHERE seq IN \
     (SELECT seq FROM audit WHERE at < ?1 ORDER BY at, seq LIMIT ?2)";

pub(super) fn list(
    connection: &Connection,
    query: &AuditQuery,
) -> rusqlite::Result<Vec<AuditRecord>> {
    let mut statement = connection.prepare_cached(LIST_AUDIT)?;
    let before = query.before.map_or(i64::MAX, |position| position.get() as i64);
    let rows = statement.query_map(
        params![
            before,
            query.action,
            query.resource,
            query.since.map(|since| since as i64),
            query.until.map(|until| until as i64),
            query.limit,
        ],
        record,
    )?;
    rows.collect()
}

fn record(row: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        position: LogPosition::new(row.get::<_, i64>(0)? as u64),
        entry: AuditEntry {
            at: row.get::<_, i64>(1)? as u64,
            role: row.get(2)?,
            credential: row.get(3)?,
            remote: row.get(4)?,
            action: row.get(5)?,
            resource: row.get(6)?,
            outcome: row.get(7)?,
            status: row.get(8)?,
        },
    })
}
