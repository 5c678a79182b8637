//! Read-only queries on the store, each on its own connection.
//!
//! Owns the SELECTs that turn rows back into [`Event`]s. Used by the admin surfaces and by
//! tests that check what is on disk; never writes.

use std::path::Path;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::{DATABASE_FILE, StoreError};
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

    pub fn count_events(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        Ok(count as u64)
    }
}

fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let id: Vec<u8> = row.get(0)?;
    let id = <[u8; 16]>::try_from(id.as_slice()).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            "event id is not 16 bytes".into(),
        )
    })?;
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
            id: EventId::from_bytes(id),
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
