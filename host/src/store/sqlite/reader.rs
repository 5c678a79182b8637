//! Read-only queries on the SQLite store, each on its own connection.
//!
//! Owns the SELECTs that turn rows back into [`Event`]s, summaries and stored endpoints; never
//! writes. The backend runs them off the async threads, on pooled connections. Admin listings
//! walk a table's primary key downwards, filtering as they go, and stop at their limit: they
//! add no index, so ingest does no more work for them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql, params};

use super::{code, state_of};
use crate::event::{Event, EventId};
use crate::store::{
    Activity, ActivityBucket, AttemptRow, AttemptSample, DeliveryId, DeliveryJob, DeliveryQuery,
    DeliveryState, DeliverySummary, DisabledEndpoints, EndpointActivity, EventQuery, EventSummary,
    LogPosition, Payload, StoreError, StoredEndpoint,
};

/// Each read connection's page cache, in KiB (SQLite's default is 2,000).
const READER_CACHE_KIB: i64 = 1_000;
/// Idle read connections kept for reuse; more may be open at once, the rest are closed.
const IDLE_READERS: usize = 8;

const EVENT_COLUMNS: &str = "e.id, e.source, e.type, e.subject, e.headers, p.body, \
     e.received_at, e.dedupe_key, e.metadata";

const ENDPOINT_COLUMNS: &str = "id, kind, spec, created_at, updated_at";

/// Events newest first; `length()` reads a body's size without reading the body.
const LIST_EVENTS: &str = "SELECT e.seq, e.id, e.source, e.type, e.subject, e.received_at, \
     e.dedupe_key, parent.id, length(p.body) FROM events e \
     JOIN payloads p ON p.id = e.payload_id LEFT JOIN events parent ON parent.seq = e.parent_seq \
     WHERE e.seq < ?1 AND (?2 IS NULL OR e.source = ?2) AND (?3 IS NULL OR e.type = ?3) \
     AND (?4 IS NULL OR e.received_at >= ?4) AND (?5 IS NULL OR e.received_at < ?5) \
     ORDER BY e.seq DESC LIMIT ?6";

const DELIVERY_SUMMARY_COLUMNS: &str = "d.id, e.id, d.endpoint, d.state, d.attempts, \
     d.next_attempt_at, d.last_error, e.received_at";

/// The filters of [`Reader::list_deliveries`], after `WHERE`, for parameters ?1 to ?5.
const DELIVERY_FILTERS: &str = "d.id < ?1 AND (?2 IS NULL OR d.endpoint = ?2) \
     AND (?3 IS NULL OR d.state = ?3) AND (?4 IS NULL OR e.received_at >= ?4) \
     AND (?5 IS NULL OR e.received_at < ?5)";

/// A read-only connection to the store.
#[derive(Debug)]
pub(super) struct Reader {
    connection: Connection,
}

/// The read connections to one database file, shared by the store's queries and its
/// due-queues: reused, since opening one costs a file open, a schema read and, for every
/// statement, a fresh parse (a reused connection keeps its prepared statements).
#[derive(Debug, Clone)]
pub(super) struct Readers {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Reader>>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Self {
        Self { path: Arc::new(path), idle: Arc::default() }
    }

    /// Runs `query` on an idle connection, or a new one, and keeps it for reuse. Blocks: call
    /// it off the async threads.
    pub fn with<T>(
        &self,
        query: impl FnOnce(&Reader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let reader = match idle {
            Some(reader) => reader,
            None => Reader::open(&self.path)?,
        };
        let result = query(&reader);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(reader);
        }
        result
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or_default()
    }
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source: source.into() })?;
        connection.pragma_update(None, "busy_timeout", 5000)?;
        // Up to eight are kept open, each with its own cache: a query reads few pages, and the
        // OS caches the file.
        connection.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
        Ok(Self { connection })
    }

    /// A read transaction: the queries run before it ends see one state of the database, and
    /// take the WAL's read lock once between them.
    pub fn snapshot(&self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.connection.unchecked_transaction()
    }

    pub fn event(&self, id: EventId) -> Result<Option<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN payloads p ON p.id = e.payload_id \
             WHERE e.id = ?1"
        );
        Ok(self.connection.query_row(&sql, params![id.to_bytes()], stored_event).optional()?)
    }

    /// Every pending delivery, to fill the due-queues at open, handed to `each` as it is read
    /// (a backlog of millions is never held as one list); by id, so that each order key's
    /// line starts with its earliest delivery.
    pub fn pending_deliveries(&self, mut each: impl FnMut(DeliveryJob)) -> Result<(), StoreError> {
        let mut statement = self.connection.prepare(
            "SELECT d.id, e.id, d.endpoint, d.attempts, d.next_attempt_at, d.order_key \
             FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.state = ?1 ORDER BY d.id",
        )?;
        let mut rows = statement.query(params![code(DeliveryState::Pending)])?;
        while let Some(row) = rows.next()? {
            each(pending_job(row)?);
        }
        Ok(())
    }

    /// Up to `limit` unordered pending deliveries of `endpoint` from `from` on, by due time
    /// then id: a due-queue reading back what it did not keep in memory. A range of
    /// `deliveries_open`, already in that order (`state <> 1` lets the planner use the partial
    /// index). Ordered deliveries are always kept, never read back.
    pub fn pending_deliveries_from(
        &self,
        endpoint: &str,
        from: (u64, DeliveryId),
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT d.id, e.id, d.endpoint, d.attempts, d.next_attempt_at, d.order_key \
             FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.state = ?1 AND d.state <> 1 AND d.endpoint = ?2 \
             AND (d.next_attempt_at, d.id) >= (?3, ?4) AND d.order_key IS NULL \
             ORDER BY d.next_attempt_at, d.id LIMIT ?5",
        )?;
        let (due_at, id) = from;
        let rows = statement.query_map(
            params![
                code(DeliveryState::Pending),
                endpoint,
                due_at as i64,
                id.get() as i64,
                limit as i64
            ],
            pending_job,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The pending deliveries of `endpoint`, as jobs without their body.
    pub fn pending_deliveries_of(&self, endpoint: &str) -> Result<Vec<DeliveryJob>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT d.id, e.id, d.endpoint, d.attempts, d.next_attempt_at, d.order_key \
             FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.state = ?1 AND d.endpoint = ?2 \
             ORDER BY d.id",
        )?;
        let rows =
            statement.query_map(params![code(DeliveryState::Pending), endpoint], pending_job)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The last log entry applied to this database (a projection of a replicated log); 0
    /// when none was.
    pub fn log_sequence(&self) -> Result<u64, StoreError> {
        let value: Option<String> = self
            .connection
            .query_row("SELECT value FROM meta WHERE key = 'log_sequence'", [], |row| row.get(0))
            .optional()?;
        Ok(value.and_then(|value| value.parse().ok()).unwrap_or(0))
    }

    /// The order key `delivery_id` was stored with; `None` when it has none or is unknown.
    pub fn order_key(&self, delivery_id: DeliveryId) -> Result<Option<String>, StoreError> {
        let key: Option<Option<String>> = self
            .connection
            .prepare_cached("SELECT order_key FROM deliveries WHERE id = ?1")?
            .query_row(params![delivery_id.get() as i64], |row| row.get(0))
            .optional()?;
        Ok(key.flatten())
    }

    /// The body, content type and subject a delivery sends: its own content type (set when a
    /// plugin shaped the payload), else its event's.
    pub fn payload(&self, delivery_id: DeliveryId) -> Result<Option<Payload>, StoreError> {
        type Row = (Vec<u8>, String, Option<String>, Option<String>);
        let row: Option<Row> = self
            .connection
            .prepare_cached(
                "SELECT p.body, e.headers, d.content_type, d.subject FROM deliveries d \
                 JOIN payloads p ON p.id = d.payload_id JOIN events e ON e.seq = d.event_seq \
                 WHERE d.id = ?1",
            )?
            .query_row(params![delivery_id.get() as i64], |row| {
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

    /// How many deliveries are in `state`, optionally of one endpoint.
    pub fn count_deliveries(
        &self,
        state: DeliveryState,
        endpoint: Option<&str>,
    ) -> Result<u64, StoreError> {
        // `state <> 1` lets the planner use the partial index `deliveries_open` (see `ops.rs`).
        let sql = if state == DeliveryState::Delivered {
            "SELECT count(*) FROM deliveries WHERE state = ?1 AND (?2 IS NULL OR endpoint = ?2)"
        } else {
            "SELECT count(*) FROM deliveries WHERE state = ?1 AND state <> 1 \
             AND (?2 IS NULL OR endpoint = ?2)"
        };
        let count: i64 = self
            .connection
            .prepare_cached(sql)?
            .query_row(params![code(state), endpoint], |row| row.get(0))?;
        Ok(count as u64)
    }

    /// A delivery's attempts, oldest first.
    pub fn attempts(&self, delivery_id: DeliveryId) -> Result<Vec<AttemptRow>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT attempted_at, duration_us, status, error, response, id FROM attempts \
             WHERE delivery_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map(params![delivery_id.get() as i64], |row| {
            Ok(AttemptRow {
                id: row.get::<_, i64>(5)? as u64,
                attempted_at: row.get::<_, i64>(0)? as u64,
                duration_micros: row.get::<_, i64>(1)? as u64,
                status: row.get(2)?,
                error: row.get(3)?,
                response_excerpt: row.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events whose dedupe key is still claimed at `now` (unix ms), with when it expires,
    /// oldest claim first.
    pub fn live_dedupe_keys(&self, now: u64) -> Result<Vec<(EventId, u64)>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT event_id, expires_at FROM dedupe WHERE expires_at > ?1 ORDER BY expires_at",
        )?;
        let rows = statement.query_map(params![now as i64], |row| {
            let id: Vec<u8> = row.get(0)?;
            Ok((super::stored_event_id(&id)?, row.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn disabled_endpoints(&self) -> Result<DisabledEndpoints, StoreError> {
        Ok(disabled_endpoints(&self.connection)?)
    }

    /// Dynamic endpoints, oldest first.
    pub fn endpoints(&self) -> Result<Vec<StoredEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE deleted_at IS NULL ORDER BY created_at, id"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let rows = statement.query_map([], stored_endpoint)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn endpoint(&self, id: &str) -> Result<Option<StoredEndpoint>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?1 AND deleted_at IS NULL"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        Ok(statement.query_row(params![id], stored_endpoint).optional()?)
    }

    pub fn list_events(&self, query: &EventQuery) -> Result<Vec<EventSummary>, StoreError> {
        let mut statement = self.connection.prepare_cached(LIST_EVENTS)?;
        let before = query.before.map_or(i64::MAX, |position| position.get() as i64);
        let rows = statement.query_map(
            params![
                before,
                query.source,
                query.event_type,
                query.since.map(|since| since as i64),
                query.until.map(|until| until as i64),
                query.limit,
            ],
            |row| {
                Ok(EventSummary {
                    position: LogPosition::new(row.get::<_, i64>(0)? as u64),
                    id: event_id(row, 1)?,
                    source: row.get(2)?,
                    event_type: row.get(3)?,
                    subject: row.get(4)?,
                    received_at: row.get::<_, i64>(5)? as u64,
                    dedupe_key: row.get(6)?,
                    parent: match row.get_ref(7)? {
                        rusqlite::types::ValueRef::Null => None,
                        _ => Some(event_id(row, 7)?),
                    },
                    body_size: row.get::<_, i64>(8)? as u64,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn list_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        let sql = list_deliveries_sql(query.event.is_some());
        let mut statement = self.connection.prepare_cached(&sql)?;
        let before = query.before.map_or(i64::MAX, |id| id.get() as i64);
        let state = query.state.map(code);
        let since = query.since.map(|since| since as i64);
        let until = query.until.map(|until| until as i64);
        let event = query.event.map(EventId::to_bytes);
        let mut parameters: Vec<&dyn ToSql> =
            vec![&before, &query.endpoint, &state, &since, &until, &query.limit];
        if let Some(event) = &event {
            parameters.push(event);
        }
        let rows = statement.query_map(parameters.as_slice(), delivery_summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn delivery(&self, id: DeliveryId) -> Result<Option<DeliverySummary>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_SUMMARY_COLUMNS} FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        Ok(statement.query_row(params![id.get() as i64], delivery_summary).optional()?)
    }

    pub fn events_received_between(
        &self,
        since: u64,
        until: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN payloads p ON p.id = e.payload_id \
             WHERE e.received_at >= ?1 AND e.received_at < ?2 AND e.parent_seq IS NULL \
             ORDER BY e.seq LIMIT ?3"
        );
        let mut statement = self.connection.prepare(&sql)?;
        let rows = statement.query_map(params![since as i64, until as i64, limit], stored_event)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events received at or after `since`, and up to `limit` attempts made since then, newest
    /// first. Attempts are walked down their primary key, which follows the time they were
    /// recorded, until one is older than `since` (the rows come in order without a lookup
    /// each through `attempts_by_time`; attempts are recorded as they finish, so a slow one
    /// may come a little out of order: the bound is approximate by the longest attempt's
    /// duration).
    pub fn activity_since(&self, since: u64, limit: u32) -> Result<Activity, StoreError> {
        let events: i64 = self
            .connection
            .prepare_cached("SELECT COUNT(*) FROM events WHERE received_at >= ?1")?
            .query_row(params![since as i64], |row| row.get(0))?;
        let mut statement = self.connection.prepare_cached(
            "SELECT a.attempted_at, a.duration_us, a.status, a.error IS NULL, d.endpoint \
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id ORDER BY a.id DESC",
        )?;
        let mut rows = statement.query([])?;
        let mut attempts = Vec::new();
        let mut truncated = false;
        while let Some(row) = rows.next()? {
            let attempted_at = row.get::<_, i64>(0)? as u64;
            if attempted_at < since {
                break;
            }
            if attempts.len() == limit as usize {
                truncated = true;
                break;
            }
            let status: Option<u16> = row.get(2)?;
            let no_error: bool = row.get(3)?;
            attempts.push(AttemptSample {
                endpoint: row.get(4)?,
                attempted_at,
                duration_micros: row.get::<_, i64>(1)? as u64,
                succeeded: no_error && status.is_none_or(|status| (200..300).contains(&status)),
            });
        }
        Ok(Activity { events: events as u64, attempts, truncated })
    }

    /// Per endpoint of `endpoints`: attempts at or after `since` in buckets `bucket_millis`
    /// wide, and the nearest-rank 95th-percentile duration. One statement ranges over the
    /// index `attempts_by_time` (migration 7) and reaches each attempt's endpoint by the
    /// deliveries' primary key: the cost follows the attempts in the window (of every
    /// endpoint), not the history; only the asked endpoints' rows come back.
    pub fn endpoint_activity(
        &self,
        endpoints: &[String],
        since: u64,
        bucket_millis: u64,
    ) -> Result<Vec<EndpointActivity>, StoreError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; endpoints.len()].join(", ");
        let sql = format!(
            "SELECT d.endpoint, a.attempted_at, a.duration_us, \
             a.error IS NULL AND (a.status IS NULL OR a.status BETWEEN 200 AND 299) \
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE a.attempted_at >= ? AND d.endpoint IN ({placeholders})"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let since_parameter = since as i64;
        let mut parameters: Vec<&dyn ToSql> = vec![&since_parameter];
        parameters.extend(endpoints.iter().map(|endpoint| endpoint as &dyn ToSql));
        let mut rows = statement.query(parameters.as_slice())?;
        let bucket_millis = bucket_millis.max(1);
        // Per endpoint: bucket index → (attempts, failed), and every duration.
        type Tally = (std::collections::BTreeMap<u64, (u64, u64)>, Vec<u64>);
        let mut by_endpoint: std::collections::BTreeMap<String, Tally> =
            std::collections::BTreeMap::new();
        while let Some(row) = rows.next()? {
            let endpoint: String = row.get(0)?;
            let attempted_at = row.get::<_, i64>(1)?.max(0) as u64;
            let duration = row.get::<_, i64>(2)?.max(0) as u64;
            let succeeded: bool = row.get(3)?;
            let (buckets, durations) = by_endpoint.entry(endpoint).or_default();
            let bucket =
                buckets.entry(attempted_at.saturating_sub(since) / bucket_millis).or_default();
            bucket.0 += 1;
            bucket.1 += u64::from(!succeeded);
            durations.push(duration);
        }
        Ok(by_endpoint
            .into_iter()
            .map(|(endpoint, (buckets, mut durations))| {
                durations.sort_unstable();
                let rank = (durations.len() * 95).div_ceil(100).max(1);
                EndpointActivity {
                    endpoint,
                    buckets: buckets
                        .into_iter()
                        .map(|(index, (attempts, failed))| ActivityBucket {
                            index,
                            attempts,
                            failed,
                        })
                        .collect(),
                    p95_micros: durations.get(rank - 1).copied(),
                }
            })
            .collect())
    }

    pub fn list_audit(
        &self,
        query: &crate::store::AuditQuery,
    ) -> Result<Vec<crate::store::AuditRecord>, StoreError> {
        Ok(super::audit::list(&self.connection, query)?)
    }

    pub fn count_events(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection.query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))?;
        Ok(count as u64)
    }
}

/// Ids of deleted dynamic endpoints (tombstones).
pub(super) fn deleted_endpoints(connection: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut statement =
        connection.prepare("SELECT id FROM endpoints WHERE deleted_at IS NOT NULL")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    rows.collect()
}

pub(super) fn disabled_endpoints(connection: &Connection) -> rusqlite::Result<DisabledEndpoints> {
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

fn delivery_state(row: &Row<'_>, index: usize) -> rusqlite::Result<DeliveryState> {
    let state: i64 = row.get(index)?;
    state_of(state).ok_or_else(|| {
        conversion_error(index, rusqlite::types::Type::Integer, format!("unknown state {state}"))
    })
}

/// A pending delivery's row (id, event id, endpoint, attempts, next attempt, order key) as a
/// job without its body.
fn pending_job(row: &Row<'_>) -> rusqlite::Result<DeliveryJob> {
    Ok(DeliveryJob {
        delivery_id: delivery_id(row, 0)?,
        event_id: event_id(row, 1)?,
        endpoint: row.get(2)?,
        attempts: row.get(3)?,
        due_at: row.get::<_, i64>(4)? as u64,
        payload: None,
        order_key: row.get(5)?,
    })
}

fn delivery_id(row: &Row<'_>, index: usize) -> rusqlite::Result<DeliveryId> {
    Ok(DeliveryId::new(row.get::<_, i64>(index)? as u64))
}

/// The statement of [`Reader::list_deliveries`]: ?1 to ?5 filter, ?6 limits, and ?7 is the
/// event's id when `by_event`. An event has few deliveries: they are found through
/// `deliveries_by_event`, not by a walk over every delivery.
fn list_deliveries_sql(by_event: bool) -> String {
    let by_event =
        if by_event { "d.event_seq = (SELECT seq FROM events WHERE id = ?7) AND" } else { "" };
    format!(
        "SELECT {DELIVERY_SUMMARY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq \
         WHERE {by_event} {DELIVERY_FILTERS} ORDER BY d.id DESC LIMIT ?6"
    )
}

fn delivery_summary(row: &Row<'_>) -> rusqlite::Result<DeliverySummary> {
    Ok(DeliverySummary {
        id: delivery_id(row, 0)?,
        event_id: event_id(row, 1)?,
        endpoint: row.get(2)?,
        state: delivery_state(row, 3)?,
        attempts: row.get(4)?,
        next_attempt_at: row.get::<_, i64>(5)? as u64,
        last_error: row.get(6)?,
        received_at: row.get::<_, i64>(7)? as u64,
    })
}

fn stored_endpoint(row: &Row<'_>) -> rusqlite::Result<StoredEndpoint> {
    Ok(StoredEndpoint {
        id: row.get(0)?,
        kind: row.get(1)?,
        spec: row.get(2)?,
        created_at: row.get::<_, i64>(3)? as u64,
        updated_at: row.get::<_, i64>(4)? as u64,
    })
}

fn event_id(row: &Row<'_>, index: usize) -> rusqlite::Result<EventId> {
    let id: Vec<u8> = row.get(index)?;
    super::stored_event_id(&id).map_err(|_| {
        conversion_error(index, rusqlite::types::Type::Blob, "event id is not 16 bytes".into())
    })
}

fn stored_event(row: &Row<'_>) -> rusqlite::Result<Event> {
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
    Ok(Event {
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
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    /// How SQLite runs `sql`, one step a line.
    pub(in crate::store::sqlite) fn plan(connection: &Connection, sql: &str) -> String {
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let unset = std::iter::repeat_n(rusqlite::types::Null, statement.parameter_count());
        let parameters = rusqlite::params_from_iter(unset);
        let steps = statement.query_map(parameters, |row| row.get::<_, String>(3)).unwrap();
        steps.collect::<Result<Vec<_>, _>>().unwrap().join("\n")
    }

    #[test]
    fn listings_walk_a_primary_key_down_and_stop_at_their_limit() {
        let mut connection = Connection::open_in_memory().unwrap();
        schema::migrate(&mut connection).unwrap();
        for (sql, walk) in [
            (LIST_EVENTS.to_owned(), "SEARCH e USING INTEGER PRIMARY KEY (rowid<?)"),
            (list_deliveries_sql(false), "SEARCH d USING INTEGER PRIMARY KEY (rowid<?)"),
            (
                list_deliveries_sql(true),
                "SEARCH d USING INDEX deliveries_by_event (event_seq=? AND rowid<?)",
            ),
        ] {
            let plan = plan(&connection, &sql);
            // No sort: rows come out in order, so LIMIT ends the walk early.
            assert!(plan.contains(walk), "{plan}");
            assert!(!plan.contains("TEMP B-TREE") && !plan.contains("SCAN"), "{plan}");
        }
    }
}
