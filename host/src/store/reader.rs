//! Read-only queries on the store, each on its own connection.
//!
//! Owns the SELECTs that turn rows back into [`Event`]s. Used by the admin surfaces and by
//! tests that check what is on disk; never writes.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::{DATABASE_FILE, DeliveryJob, DeliveryState, Payload, StoreError};
use crate::event::{Event, EventId};

const EVENT_COLUMNS: &str = "e.id, e.source, e.type, e.subject, e.headers, p.body, \
     e.received_at, e.dedupe_key, e.metadata, e.seq";

/// A read-only connection to the store.
#[derive(Debug)]
pub struct Reader {
    connection: Connection,
}

/// An event as stored, with its position in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
}

impl Reader {
    /// Opens the store in `data_dir` read-only (it must exist).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(&data_dir.join(DATABASE_FILE))
    }

    pub(super) fn open_file(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        connection.pragma_update(None, "busy_timeout", 5000)?;
        Ok(Self { connection })
    }

    pub fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN payloads p ON p.id = e.payload_id \
             WHERE e.id = ?1"
        );
        let event =
            self.connection.query_row(&sql, params![id.to_bytes()], stored_event).optional()?;
        Ok(event.map(|stored| stored.event))
    }

    /// Up to `limit` events committed after position `after_seq`, in commit order.
    pub fn events_after(&self, after_seq: i64, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN payloads p ON p.id = e.payload_id \
             WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params![after_seq, limit], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every pending delivery, to rebuild the scheduler's queues at start.
    pub fn pending_deliveries(&self) -> Result<Vec<DeliveryJob>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT d.id, e.id, d.endpoint, d.attempts, d.next_attempt_at FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.state = ?1",
        )?;
        let rows = statement.query_map(params![DeliveryState::Pending as i64], |row| {
            Ok(DeliveryJob {
                delivery_id: row.get(0)?,
                event_id: event_id(row, 1)?,
                endpoint: row.get(2)?,
                attempts: row.get(3)?,
                due_at: row.get::<_, i64>(4)? as u64,
                payload: None,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The body and content type a delivery sends: its own content type (set when a plugin
    /// shaped the payload), else its event's.
    pub fn payload(&self, delivery_id: i64) -> Result<Option<Payload>, StoreError> {
        type Row = (Vec<u8>, String, Option<String>, Option<String>);
        let row: Option<Row> = self
            .connection
            .prepare_cached(
                "SELECT p.body, e.headers, d.content_type, d.subject FROM deliveries d \
                 JOIN payloads p ON p.id = d.payload_id JOIN events e ON e.seq = d.event_seq \
                 WHERE d.id = ?1",
            )?
            .query_row(params![delivery_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        Ok(row.map(|(body, headers, content_type, subject)| {
            let content_type = content_type.or_else(|| {
                let headers: Vec<(String, String)> =
                    serde_json::from_str(&headers).unwrap_or_default();
                crate::event::header_value(&headers, "content-type").map(str::to_owned)
            });
            Payload { body: Bytes::from(body), content_type, subject }
        }))
    }

    /// The deliveries an event produced, oldest first.
    pub fn deliveries_of_event(&self, id: EventId) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT d.id, d.endpoint, d.state, d.attempts, d.next_attempt_at, d.last_error \
             FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.id = ?1 ORDER BY d.id",
        )?;
        let rows = statement.query_map(params![id.to_bytes()], delivery_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deliveries in `state`, optionally of one endpoint, oldest first.
    pub fn deliveries_in_state(
        &self,
        state: DeliveryState,
        endpoint: Option<&str>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT id, endpoint, state, attempts, next_attempt_at, last_error FROM deliveries \
             WHERE state = ?1 AND (?2 IS NULL OR endpoint = ?2) ORDER BY id",
        )?;
        let rows = statement.query_map(params![state as i64, endpoint], delivery_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A delivery's attempts, oldest first.
    pub fn attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT attempted_at, duration_us, status, error, response FROM attempts \
             WHERE delivery_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![delivery_id], |row| {
            Ok(AttemptRow {
                attempted_at: row.get::<_, i64>(0)? as u64,
                duration_micros: row.get::<_, i64>(1)? as u64,
                status: row.get(2)?,
                error: row.get(3)?,
                response_excerpt: row.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Endpoints disabled by a 410, with when (unix ms) and why.
    pub fn disabled_endpoints(&self) -> Result<HashMap<String, (u64, String)>, StoreError> {
        Ok(disabled_endpoints(&self.connection)?)
    }

    /// Events received in `[since, until)` (unix ms), in commit order; events made by splits are not
    /// listed (routing their origin again makes them again).
    pub fn events_received_between(
        &self,
        since: u64,
        until: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN payloads p ON p.id = e.payload_id \
             WHERE e.received_at >= ?1 AND e.received_at < ?2 AND e.parent_seq IS NULL \
             ORDER BY e.seq"
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params![since as i64, until as i64], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn count_events(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        Ok(count as u64)
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub endpoint: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: u64,
    pub last_error: Option<String>,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub attempted_at: u64,
    pub duration_micros: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Vec<u8>,
}

pub(super) fn disabled_endpoints(
    connection: &Connection,
) -> rusqlite::Result<HashMap<String, (u64, String)>> {
    let mut statement = connection.prepare(
        "SELECT endpoint, disabled_at, reason FROM endpoint_state WHERE disabled_at IS NOT NULL",
    )?;
    let rows = statement.query_map([], |row| {
        let reason: Option<String> = row.get(2)?;
        Ok((row.get(0)?, (row.get::<_, i64>(1)? as u64, reason.unwrap_or_default())))
    })?;
    rows.collect()
}

fn conversion_error(index: usize, kind: rusqlite::types::Type, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, kind, message.into())
}

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let state: i64 = row.get(2)?;
    Ok(DeliveryRow {
        id: row.get(0)?,
        endpoint: row.get(1)?,
        state: DeliveryState::from_code(state).ok_or_else(|| {
            conversion_error(2, rusqlite::types::Type::Integer, format!("unknown state {state}"))
        })?,
        attempts: row.get(3)?,
        next_attempt_at: row.get::<_, i64>(4)? as u64,
        last_error: row.get(5)?,
    })
}

fn event_id(row: &Row<'_>, index: usize) -> rusqlite::Result<EventId> {
    let id: Vec<u8> = row.get(index)?;
    let id = <[u8; 16]>::try_from(id.as_slice()).map_err(|_| {
        conversion_error(index, rusqlite::types::Type::Blob, "event id is not 16 bytes".into())
    })?;
    Ok(EventId::from_bytes(id))
}

fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let id = event_id(row, 0)?;
    let headers: String = row.get(4)?;
    let metadata: Option<String> = row.get(8)?;
    let json_error = |index, error: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    };
    Ok(StoredEvent {
        seq: row.get(9)?,
        event: Event {
            id,
            source: row.get(1)?,
            event_type: row.get(2)?,
            subject: row.get(3)?,
            headers: serde_json::from_str(&headers).map_err(|error| json_error(4, error))?,
            body: Bytes::from(row.get::<_, Vec<u8>>(5)?),
            received_at: row.get::<_, i64>(6)? as u64,
            dedupe_key: row.get(7)?,
            metadata: match metadata {
                Some(text) => serde_json::from_str(&text).map_err(|error| json_error(8, error))?,
                None => Vec::new(),
            },
        },
    })
}
