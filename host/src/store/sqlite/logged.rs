//! Write commands that arrive from a replicated log, applied in log order.
//!
//! Owns [`Command`] (one write of the [`crate::store::Backend`] trait, as data), its
//! [`Outcome`], and the `Logged` write op that applies a command at a given log sequence and
//! with the time the log gave it, so that every database fed the same log ends up identical:
//! same rows, same delivery ids, same dedupe answers. The sequence is recorded in the same
//! transaction as the command's writes; a command at or below it was applied already and is
//! skipped, so applying a log twice (a restart, two writers racing) changes nothing.

use rusqlite::{Connection, params};

use super::audit;
use super::batch::{WriteOp, WriterState};
use super::ops;
use crate::store::{
    AttemptRecord, AuditEntry, IngestReceipt, LogPosition, NewEvent, PruneReport, ReplaySelection,
    Retention, StoredEndpoint,
};

/// One write command, as a log carries it.
#[derive(Debug, Clone)]
pub enum Command {
    Ingest(NewEvent),
    RecordAttempt(AttemptRecord),
    Replay(ReplaySelection),
    Prune(Retention),
    PutEndpoint(StoredEndpoint),
    DeleteEndpoint {
        id: String,
        reason: String,
    },
    SetEndpointEnabled {
        endpoint: String,
        enabled: bool,
        reason: String,
    },
    AppendAudit(AuditEntry),
    /// Entries older than `before` (unix ms, fixed by the issuer), up to `batch` of them.
    PruneAudit {
        before: u64,
        batch: usize,
    },
}

/// What applying a command answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Receipt(IngestReceipt),
    Done,
    Count(usize),
    Pruned(PruneReport),
    /// An audit entry's place in this projection's audit log.
    Position(LogPosition),
    /// Applied before (its sequence is not above the recorded one).
    Skipped,
}

enum Op {
    Ingest(ops::Ingest),
    RecordAttempt(ops::RecordAttempt),
    Replay(ops::Replay),
    Prune(ops::Prune),
    PutEndpoint(ops::PutEndpoint),
    DeleteEndpoint(ops::DeleteEndpoint),
    SetEndpointEnabled(ops::SetEndpointEnabled),
    AppendAudit(audit::AppendAudit),
    PruneAudit(audit::PruneAudit),
}

/// A command at its log sequence, with the time the log gave it (unix ms).
pub(super) struct Logged {
    sequence: u64,
    now: u64,
    op: Op,
}

impl Logged {
    pub fn new(sequence: u64, now: u64, command: Command) -> Self {
        let op = match command {
            Command::Ingest(event) => Op::Ingest(ops::Ingest(event)),
            Command::RecordAttempt(record) => Op::RecordAttempt(ops::RecordAttempt(record)),
            Command::Replay(selection) => Op::Replay(ops::Replay(selection)),
            Command::Prune(retention) => Op::Prune(ops::Prune(retention)),
            Command::PutEndpoint(endpoint) => Op::PutEndpoint(ops::PutEndpoint(endpoint)),
            Command::DeleteEndpoint { id, reason } => {
                Op::DeleteEndpoint(ops::DeleteEndpoint { id, reason })
            }
            Command::SetEndpointEnabled { endpoint, enabled, reason } => {
                Op::SetEndpointEnabled(ops::SetEndpointEnabled { endpoint, enabled, reason })
            }
            Command::AppendAudit(entry) => Op::AppendAudit(audit::AppendAudit(entry)),
            Command::PruneAudit { before, batch } => {
                Op::PruneAudit(audit::PruneAudit { before, batch })
            }
        };
        Self { sequence, now, op }
    }
}

impl WriteOp for Logged {
    type Output = Outcome;

    fn apply(&self, connection: &Connection, state: &mut WriterState) -> rusqlite::Result<Outcome> {
        let applied: Option<String> = connection
            .prepare_cached("SELECT value FROM meta WHERE key = 'log_sequence'")?
            .query_row([], |row| row.get(0))
            .ok();
        let applied = applied.and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
        if self.sequence <= applied {
            return Ok(Outcome::Skipped);
        }
        let batch_time = state.now;
        state.now = self.now;
        let outcome = match &self.op {
            Op::Ingest(op) => op.apply(connection, state).map(Outcome::Receipt),
            Op::RecordAttempt(op) => op.apply(connection, state).map(|()| Outcome::Done),
            Op::Replay(op) => op.apply(connection, state).map(Outcome::Count),
            Op::Prune(op) => op.apply(connection, state).map(Outcome::Pruned),
            Op::PutEndpoint(op) => op.apply(connection, state).map(|()| Outcome::Done),
            Op::DeleteEndpoint(op) => op.apply(connection, state).map(Outcome::Count),
            Op::SetEndpointEnabled(op) => op.apply(connection, state).map(Outcome::Count),
            Op::AppendAudit(op) => op.apply(connection, state).map(Outcome::Position),
            Op::PruneAudit(op) => op.apply(connection, state).map(Outcome::Count),
        };
        state.now = batch_time;
        let outcome = outcome?;
        connection
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('log_sequence', ?1)")?
            .execute(params![self.sequence.to_string()])?;
        Ok(outcome)
    }
}
