//! The write commands, one [`WriteOp`] each: their SQL, and the lifecycle rules they apply.
//!
//! Owns the INSERT, UPDATE and DELETE statements of every write command except the audit
//! log's (`audit.rs`) and the log sequence (`logged.rs`). Which state a delivery takes is
//! asked of [`lifecycle`]; nothing here decides it. Each command runs inside the writer's
//! transaction (`batch.rs`), changes the writer's endpoint sets only once its writes succeeded,
//! and leaves the jobs it made due in [`WriterState::jobs`].

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::batch::{WriteOp, WriterState};
use super::sharing::{self, Sharing};
use super::{code, stored_event_id};
use crate::event::{Event, EventId};
use crate::store::lifecycle::{self, Change, EndpointStatus};
use crate::store::{
    AttemptRecord, DeliveryId, DeliveryJob, DeliveryState, IngestReceipt, NewDelivery, NewEvent,
    NextStep, PruneReport, ReplaySelection, ReplayedEvent, Retention, StoredEndpoint,
};

/// The `last_error` of a delivery created for a deleted endpoint.
const ENDPOINT_DELETED: &str = "its endpoint was deleted";

pub(super) struct Ingest(pub NewEvent);
pub(super) struct RecordAttempt(pub AttemptRecord);
pub(super) struct Replay(pub ReplaySelection);
pub(super) struct Prune(pub Retention);
pub(super) struct PutEndpoint(pub StoredEndpoint);
pub(super) struct DeleteEndpoint {
    pub id: String,
    pub reason: String,
}
pub(super) struct SetEndpointEnabled {
    pub endpoint: String,
    pub enabled: bool,
    pub reason: String,
}

// === impl Ingest ===

impl WriteOp for Ingest {
    type Output = IngestReceipt;

    fn apply(
        &self,
        connection: &Connection,
        state: &mut WriterState,
    ) -> rusqlite::Result<Self::Output> {
        let new = &self.0;
        let event = &new.event;
        let now = state.now;
        if let (Some(key), Some(window)) = (&event.dedupe_key, new.dedupe_window) {
            let earlier: Option<(Vec<u8>, i64)> = connection
                .prepare_cached(
                    "SELECT event_id, expires_at FROM dedupe WHERE source = ?1 AND key = ?2",
                )?
                .query_row(params![event.source, key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let live = earlier.filter(|(_, expires_at)| *expires_at > now as i64);
            if let Some((id, _)) = live {
                return Ok(IngestReceipt::Duplicate(stored_event_id(&id)?));
            }
            let expires_at = now.saturating_add(window.as_millis() as u64);
            connection
                .prepare_cached(
                    "INSERT OR REPLACE INTO dedupe (source, key, event_id, expires_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![event.source, key, event.id.to_bytes(), expires_at as i64])?;
        }
        let (deliveries, sharing) =
            plan_fan_out(event.id, &event.body, &new.derived, &new.deliveries);
        // The event's own body row counts the event too.
        let refs = 1 + sharing.rows[0].1;
        let (event_seq, payload_id) = insert_event(connection, event, None, refs)?;
        let origin = Origin { seq: event_seq, payload_id };
        insert_fan_out(connection, origin, &new.derived, &deliveries, &sharing, state)?;
        state.stored_events += 1;
        Ok(IngestReceipt::Stored(event.id))
    }
}

/// Inserts `event` with its body, which `refs` rows use (the event among them), and answers
/// its position and its body's row.
fn insert_event(
    connection: &Connection,
    event: &Event,
    parent_seq: Option<i64>,
    refs: i64,
) -> rusqlite::Result<(i64, i64)> {
    let payload_id = insert_payload(connection, &event.body, refs)?;
    let headers = serde_json::to_string(&event.headers).expect("strings always serialize");
    let metadata = (!event.metadata.is_empty())
        .then(|| serde_json::to_string(&event.metadata).expect("strings always serialize"));
    connection
        .prepare_cached(
            "INSERT INTO events (id, source, type, subject, headers, payload_id, received_at, \
             dedupe_key, metadata, parent_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            event.id.to_bytes(),
            event.source,
            event.event_type,
            event.subject,
            headers,
            payload_id,
            event.received_at as i64,
            event.dedupe_key,
            metadata,
            parent_seq,
        ])?;
    Ok((connection.last_insert_rowid(), payload_id))
}

/// Stores `body`, which `refs` rows use, and answers its row id. Bodies are not shared across
/// events by content (schema migration 8 says why); a fan-out shares one row among the
/// deliveries that send the same body (see [`sharing`]). No `RETURNING`: SQLite gathers
/// returned rows in a temporary table, whose page cache it builds and tears down on every call.
fn insert_payload(connection: &Connection, body: &[u8], refs: i64) -> rusqlite::Result<i64> {
    connection
        .prepare_cached("INSERT INTO payloads (body, refs) VALUES (?1, ?2)")?
        .execute(params![body, refs])?;
    Ok(connection.last_insert_rowid())
}

/// The stored event a fan-out starts from.
struct Origin {
    seq: i64,
    /// Its body's row.
    payload_id: i64,
}

/// The plan of a fan-out from event `origin` (its body `body`) and the events `derived` from
/// it: its deliveries, each with its event's place (0 for the origin, then each derived
/// event's in order), and the body rows they send ([`sharing::plan`]). A delivery of any other
/// event is logged and left out.
fn plan_fan_out<'a>(
    origin: EventId,
    body: &'a Bytes,
    derived: &'a [Event],
    deliveries: &'a [NewDelivery],
) -> (Vec<(&'a NewDelivery, usize)>, Sharing<'a>) {
    let events = || std::iter::once(origin).chain(derived.iter().map(|event| event.id));
    let deliveries: Vec<(&NewDelivery, usize)> = deliveries
        .iter()
        .filter_map(|delivery| {
            let place = events().position(|id| id == delivery.event);
            if place.is_none() {
                tracing::error!(event = %delivery.event, "delivery of an event that is not stored; skipped");
            }
            Some((delivery, place?))
        })
        .collect();
    let sharing = sharing::plan(
        body,
        derived.iter().map(|event| &event.body),
        deliveries.iter().map(|(delivery, _)| &delivery.payload.body),
    );
    (deliveries, sharing)
}

/// Inserts the events split from `origin`, then its `deliveries`, with the body rows
/// `sharing` planned for them (both from [`plan_fan_out`]); the pending ones become jobs.
fn insert_fan_out(
    connection: &Connection,
    origin: Origin,
    derived: &[Event],
    deliveries: &[(&NewDelivery, usize)],
    sharing: &Sharing<'_>,
    state: &mut WriterState,
) -> rusqlite::Result<()> {
    let mut positions: Vec<i64> = vec![origin.seq];
    // Each planned row's id, once stored: the origin's is, the deliveries' own not yet.
    let mut payload_ids: Vec<Option<i64>> = vec![None; sharing.rows.len()];
    payload_ids[0] = Some(origin.payload_id);
    for (index, event) in derived.iter().enumerate() {
        let refs = 1 + sharing.rows[index + 1].1;
        let (seq, payload_id) = insert_event(connection, event, Some(origin.seq), refs)?;
        positions.push(seq);
        payload_ids[index + 1] = Some(payload_id);
    }
    state.jobs.reserve(deliveries.len());
    for (&(delivery, place), &row) in deliveries.iter().zip(&sharing.deliveries) {
        let event_seq = positions[place];
        let payload_id = match payload_ids[row] {
            Some(id) => id,
            None => {
                let (body, refs) = sharing.rows[row];
                let id = insert_payload(connection, body, refs)?;
                payload_ids[row] = Some(id);
                id
            }
        };
        let status = state.endpoint_status(&delivery.endpoint);
        let row = DeliveryInsert {
            event_seq,
            endpoint: &delivery.endpoint,
            payload_id,
            content_type: delivery.payload.content_type.as_deref(),
            subject: delivery.payload.subject.as_deref(),
            dead_letter: delivery.dead_letter.as_deref(),
            order_key: delivery.order_key.as_deref(),
        };
        if let Some(delivery_id) = insert_delivery(connection, &row, state.now, status)? {
            state.jobs.push(DeliveryJob {
                delivery_id,
                event_id: delivery.event,
                endpoint: delivery.endpoint.clone(),
                attempts: 0,
                due_at: state.now,
                payload: Some(delivery.payload.clone()),
                order_key: delivery.order_key.clone(),
            });
        }
    }
    Ok(())
}

/// A delivery row to insert.
struct DeliveryInsert<'a> {
    event_seq: i64,
    endpoint: &'a str,
    payload_id: i64,
    /// `None` sends the event's own content type.
    content_type: Option<&'a str>,
    subject: Option<&'a str>,
    dead_letter: Option<&'a str>,
    order_key: Option<&'a str>,
}

/// Inserts a delivery due now, in the state the lifecycle gives a new one; answers its id when
/// it is pending (to be queued).
fn insert_delivery(
    connection: &Connection,
    row: &DeliveryInsert<'_>,
    now: u64,
    endpoint: EndpointStatus,
) -> rusqlite::Result<Option<DeliveryId>> {
    let created = Change::Created { dead_letter: row.dead_letter.is_some() };
    let state = lifecycle::next_state(None, created, endpoint).unwrap_or(DeliveryState::Pending);
    let last_error = match state {
        DeliveryState::Dead => row.dead_letter.or(Some(ENDPOINT_DELETED)),
        _ => None,
    };
    connection
        .prepare_cached(
            "INSERT INTO deliveries (event_seq, endpoint, payload_id, state, next_attempt_at, \
             last_error, content_type, subject, order_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            row.event_seq,
            row.endpoint,
            row.payload_id,
            code(state),
            now as i64,
            last_error,
            row.content_type,
            row.subject,
            row.order_key,
        ])?;
    let id = DeliveryId::new(connection.last_insert_rowid() as u64);
    Ok((state == DeliveryState::Pending).then_some(id))
}

// === impl RecordAttempt ===

impl WriteOp for RecordAttempt {
    type Output = ();

    /// Records the attempt and moves its delivery on; a 410 also disables the endpoint.
    fn apply(&self, connection: &Connection, state: &mut WriterState) -> rusqlite::Result<()> {
        let record = &self.0;
        connection
            .prepare_cached(
                "INSERT INTO attempts (delivery_id, attempted_at, duration_us, status, error, \
                 response) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                record.delivery_id.get() as i64,
                record.attempted_at as i64,
                record.duration.as_micros() as i64,
                record.status,
                record.error,
                (!record.response_excerpt.is_empty()).then_some(record.response_excerpt.as_ref()),
            ])?;
        let status = state.endpoint_status(&record.endpoint);
        // The state each current state moves to (NULL: the delivery stays as it is), from the
        // lifecycle, so that one statement moves it without reading it first.
        let [pending, delivered, dead, parked] = DeliveryState::ALL.map(|current| {
            lifecycle::next_state(Some(current), Change::Attempted(record.next), status).map(code)
        });
        let next_attempt_at = match record.next {
            NextStep::RetryAt(at) => at,
            _ => record.attempted_at,
        };
        connection
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, \
                 state = CASE state WHEN 0 THEN ?2 WHEN 1 THEN ?3 WHEN 2 THEN ?4 WHEN 3 THEN ?5 END, \
                 next_attempt_at = ?6, last_error = ?7 WHERE id = ?1 \
                 AND (CASE state WHEN 0 THEN ?2 WHEN 1 THEN ?3 WHEN 2 THEN ?4 WHEN 3 THEN ?5 END) \
                 IS NOT NULL",
            )?
            .execute(params![
                record.delivery_id.get() as i64,
                pending,
                delivered,
                dead,
                parked,
                next_attempt_at as i64,
                record.error,
            ])?;
        if record.next == NextStep::DisableEndpoint {
            disable(connection, &record.endpoint, record.attempted_at, "410 Gone")?;
            state.disabled.insert(record.endpoint.clone());
        }
        Ok(())
    }
}

/// Marks `endpoint` disabled since `at` and parks its pending deliveries; answers how many.
fn disable(
    connection: &Connection,
    endpoint: &str,
    at: u64,
    reason: &str,
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO endpoint_state (endpoint, disabled_at, reason) \
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![endpoint, at as i64, reason])?;
    move_all(connection, endpoint, Change::EndpointDisabled, EndpointStatus::Disabled, None)
}

/// Applies `change` to every delivery of `endpoint` as the lifecycle moves it (setting
/// `last_error` when given); answers how many moved.
fn move_all(
    connection: &Connection,
    endpoint: &str,
    change: Change,
    status: EndpointStatus,
    last_error: Option<&str>,
) -> rusqlite::Result<usize> {
    let mut moved = 0;
    for (from, to) in lifecycle::moves(change, status) {
        // `state <> 1` (not delivered) lets the planner use the partial index `deliveries_open`
        // instead of scanning every delivery: it cannot see that through a bound parameter.
        let sql = if from == DeliveryState::Delivered {
            "UPDATE deliveries SET state = ?3, last_error = coalesce(?4, last_error) \
             WHERE endpoint = ?1 AND state = ?2"
        } else {
            "UPDATE deliveries SET state = ?3, last_error = coalesce(?4, last_error) \
             WHERE endpoint = ?1 AND state = ?2 AND state <> 1"
        };
        moved += connection.prepare_cached(sql)?.execute(params![
            endpoint,
            code(from),
            code(to),
            last_error
        ])?;
    }
    Ok(moved)
}

// === impl PutEndpoint, DeleteEndpoint, SetEndpointEnabled ===

impl WriteOp for PutEndpoint {
    type Output = ();

    fn apply(&self, connection: &Connection, _state: &mut WriterState) -> rusqlite::Result<()> {
        let endpoint = &self.0;
        connection
            .prepare_cached(
                "INSERT OR REPLACE INTO endpoints (id, kind, spec, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                endpoint.id,
                endpoint.kind,
                endpoint.spec,
                endpoint.created_at as i64,
                endpoint.updated_at as i64,
            ])?;
        Ok(())
    }
}

impl WriteOp for DeleteEndpoint {
    type Output = usize;

    /// Leaves a tombstone for the endpoint and drops its state; its pending and parked
    /// deliveries become dead letters with `reason`. Answers how many.
    fn apply(&self, connection: &Connection, state: &mut WriterState) -> rusqlite::Result<usize> {
        let Self { id, reason } = self;
        // The id is known as deleted from now on; its settings (and keys) are gone.
        connection
            .prepare_cached(
                "INSERT INTO endpoints (id, kind, spec, created_at, updated_at, deleted_at) \
                 VALUES (?1, 'endpoint', '', ?2, ?2, ?2) \
                 ON CONFLICT (id) DO UPDATE SET deleted_at = ?2, spec = ''",
            )?
            .execute(params![id, state.now as i64])?;
        connection
            .prepare_cached("DELETE FROM endpoint_state WHERE endpoint = ?1")?
            .execute(params![id])?;
        let moved = move_all(
            connection,
            id,
            Change::EndpointDeleted,
            EndpointStatus::Deleted,
            Some(reason),
        )?;
        state.disabled.remove(id);
        state.deleted.insert(id.clone());
        Ok(moved)
    }
}

impl WriteOp for SetEndpointEnabled {
    type Output = usize;

    fn apply(&self, connection: &Connection, state: &mut WriterState) -> rusqlite::Result<usize> {
        let Self { endpoint, enabled, reason } = self;
        if !enabled {
            let parked = disable(connection, endpoint, state.now, reason)?;
            state.disabled.insert(endpoint.clone());
            return Ok(parked);
        }
        connection
            .prepare_cached(
                "UPDATE endpoint_state SET disabled_at = NULL, reason = NULL WHERE endpoint = ?1",
            )?
            .execute(params![endpoint])?;
        let mut resumed = Vec::new();
        for (from, to) in lifecycle::moves(Change::EndpointEnabled, EndpointStatus::Enabled) {
            resumed.extend(resume(connection, endpoint, from, to, state.now)?);
        }
        state.disabled.remove(endpoint);
        // A delivery made earlier in this batch, then parked by a disable also in it, is
        // queued once, not twice.
        if !resumed.is_empty() {
            let ids: std::collections::HashSet<DeliveryId> =
                resumed.iter().map(|job| job.delivery_id).collect();
            state.jobs.retain(|job| !ids.contains(&job.delivery_id));
        }
        let count = resumed.len();
        state.jobs.extend(resumed);
        Ok(count)
    }
}

/// Moves `endpoint`'s deliveries in `from` to `to`, due now, their attempt counts kept (a
/// resumed delivery continues its retry schedule); answers those now pending as jobs.
fn resume(
    connection: &Connection,
    endpoint: &str,
    from: DeliveryState,
    to: DeliveryState,
    now: u64,
) -> rusqlite::Result<Vec<DeliveryJob>> {
    // `state <> 1`: see `move_all`.
    let found: Vec<(i64, Vec<u8>, u32, Option<String>)> = connection
        .prepare_cached(
            "SELECT d.id, e.id, d.attempts, d.order_key FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq \
             WHERE d.endpoint = ?1 AND d.state = ?2 AND d.state <> 1 ORDER BY d.id",
        )?
        .query_map(params![endpoint, code(from)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update = connection
        .prepare_cached("UPDATE deliveries SET state = ?2, next_attempt_at = ?3 WHERE id = ?1")?;
    let mut jobs = Vec::with_capacity(found.len());
    for (delivery_id, event_id, attempts, order_key) in found {
        update.execute(params![delivery_id, code(to), now as i64])?;
        if to == DeliveryState::Pending {
            jobs.push(DeliveryJob {
                delivery_id: DeliveryId::new(delivery_id as u64),
                event_id: stored_event_id(&event_id)?,
                endpoint: endpoint.to_owned(),
                attempts,
                due_at: now,
                payload: None,
                order_key,
            });
        }
    }
    Ok(jobs)
}

// === impl Replay ===

impl WriteOp for Replay {
    type Output = usize;

    /// Answers how many deliveries the replay counts; those pending become jobs.
    fn apply(&self, connection: &Connection, state: &mut WriterState) -> rusqlite::Result<usize> {
        match &self.0 {
            ReplaySelection::DeadLetters { endpoint } => {
                redrive(connection, endpoint.as_deref(), state)
            }
            ReplaySelection::Events(replayed) => {
                let before = state.jobs.len();
                for event in replayed {
                    replay_event(connection, event, state)?;
                }
                Ok(state.jobs.len() - before)
            }
            ReplaySelection::Delivery(delivery_id) => resend(connection, *delivery_id, state),
        }
    }
}

/// Dead letters (of `endpoint`, or all) sent again as the lifecycle says; answers how many
/// became pending.
fn redrive(
    connection: &Connection,
    endpoint: Option<&str>,
    state: &mut WriterState,
) -> rusqlite::Result<usize> {
    // `state <> 1`: see `move_all`.
    let dead: Vec<(i64, String, Vec<u8>)> = connection
        .prepare_cached(
            "SELECT d.id, d.endpoint, e.id FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.state = ?1 AND d.state <> 1 AND (?2 IS NULL OR d.endpoint = ?2) \
             ORDER BY d.id",
        )?
        .query_map(params![code(DeliveryState::Dead), endpoint], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut queued = 0;
    for (delivery_id, endpoint, event_id) in dead {
        let status = state.endpoint_status(&endpoint);
        let Some(to) = lifecycle::next_state(Some(DeliveryState::Dead), Change::Redriven, status)
        else {
            continue;
        };
        let job = start_over(connection, delivery_id, to, &event_id, endpoint, state.now)?;
        if let Some(job) = job {
            state.jobs.push(job);
            queued += 1;
        }
    }
    Ok(queued)
}

/// Sets a delivery to `to` with its attempt count started over, due now; answers its job when
/// it is pending.
fn start_over(
    connection: &Connection,
    delivery_id: i64,
    to: DeliveryState,
    event_id: &[u8],
    endpoint: String,
    now: u64,
) -> rusqlite::Result<Option<DeliveryJob>> {
    connection
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = 0, next_attempt_at = ?3, \
             last_error = NULL WHERE id = ?1",
        )?
        .execute(params![delivery_id, code(to), now as i64])?;
    if to != DeliveryState::Pending {
        return Ok(None);
    }
    let order_key: Option<String> = connection
        .prepare_cached("SELECT order_key FROM deliveries WHERE id = ?1")?
        .query_row(params![delivery_id], |row| row.get(0))?;
    Ok(Some(DeliveryJob {
        delivery_id: DeliveryId::new(delivery_id as u64),
        event_id: stored_event_id(event_id)?,
        endpoint,
        attempts: 0,
        due_at: now,
        payload: None,
        order_key,
    }))
}

/// New deliveries (and split events) for a stored event; one no longer stored is skipped.
fn replay_event(
    connection: &Connection,
    event: &ReplayedEvent,
    state: &mut WriterState,
) -> rusqlite::Result<()> {
    // With its body, so that a delivery sending it unchanged shares its row.
    let stored: Option<(i64, i64, Vec<u8>)> = connection
        .prepare_cached(
            "SELECT e.seq, e.payload_id, p.body FROM events e \
             JOIN payloads p ON p.id = e.payload_id WHERE e.id = ?1",
        )?
        .query_row(params![event.event.to_bytes()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((seq, payload_id, body)) = stored else { return Ok(()) };
    let body = Bytes::from(body);
    let (deliveries, sharing) = plan_fan_out(event.event, &body, &event.derived, &event.deliveries);
    // The event's body row is stored: it counts the new deliveries that send it.
    let added = sharing.rows[0].1;
    if added > 0 {
        connection
            .prepare_cached("UPDATE payloads SET refs = refs + ?2 WHERE id = ?1")?
            .execute(params![payload_id, added])?;
    }
    let origin = Origin { seq, payload_id };
    insert_fan_out(connection, origin, &event.derived, &deliveries, &sharing, state)
}

/// Sends one delivery again, as the lifecycle allows (dead or delivered, its endpoint not
/// deleted): pending and queued, or parked should its endpoint be disabled. Answers 1, or 0
/// when it does not exist or may not be sent again.
fn resend(
    connection: &Connection,
    delivery_id: DeliveryId,
    state: &mut WriterState,
) -> rusqlite::Result<usize> {
    let id = delivery_id.get() as i64;
    let found: Option<(String, Vec<u8>, i64)> = connection
        .prepare_cached(
            "SELECT d.endpoint, e.id, d.state FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1",
        )?
        .query_row(params![id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let Some((endpoint, event_id, current)) = found else { return Ok(0) };
    let status = state.endpoint_status(&endpoint);
    let current = super::state_of(current);
    let Some(to) = lifecycle::next_state(current, Change::Resent, status) else { return Ok(0) };
    if let Some(job) = start_over(connection, id, to, &event_id, endpoint, state.now)? {
        state.jobs.push(job);
    }
    Ok(1)
}

// === impl Prune ===

/// The events a retention pass deletes: received before the cutoff (`?1`; `?2` for those with
/// dead letters), no delivery pending or parked (`?3`, `?4`; dead is `?5`), no split event
/// still stored, oldest first, at most `?6`. Walked in `events_by_received_at`'s order, so a
/// pass reads only events past the cutoff (those it keeps included): in commit order, a pass
/// with nothing to delete read every event, on the writer, every minute. Ties keep commit
/// order, so every projection of the cluster store deletes the same events.
pub(super) const PRUNE_CANDIDATES: &str = "SELECT e.seq, e.payload_id FROM events e \
     WHERE e.received_at < ?1 \
     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq \
       AND (d.state IN (?3, ?4) OR (d.state = ?5 AND e.received_at >= ?2))) \
     AND NOT EXISTS (SELECT 1 FROM events split WHERE split.parent_seq = e.seq) \
     ORDER BY e.received_at, e.seq LIMIT ?6";

impl WriteOp for Prune {
    type Output = PruneReport;

    /// One retention pass: the oldest events that the retention allows to go, with their
    /// deliveries, attempts and the bodies nothing else uses; then expired dedupe keys. An
    /// event that was split stays while one of its splits does (they refer to it), and goes
    /// in a later pass.
    fn apply(
        &self,
        connection: &Connection,
        state: &mut WriterState,
    ) -> rusqlite::Result<PruneReport> {
        let retention = &self.0;
        let doomed: Vec<(i64, i64)> = connection
            .prepare_cached(PRUNE_CANDIDATES)?
            .query_map(
                params![
                    retention.delivered_before as i64,
                    retention.dead_before as i64,
                    code(DeliveryState::Pending),
                    code(DeliveryState::Parked),
                    code(DeliveryState::Dead),
                    retention.batch as i64,
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        // Each body row that a deleted event or delivery used, once per use.
        let mut payloads = Vec::new();
        let mut events = 0;
        for (seq, payload_id) in doomed {
            let delivery_payloads: Vec<i64> = connection
                .prepare_cached("SELECT payload_id FROM deliveries WHERE event_seq = ?1")?
                .query_map(params![seq], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            connection
                .prepare_cached(
                    "DELETE FROM attempts WHERE delivery_id IN \
                     (SELECT id FROM deliveries WHERE event_seq = ?1)",
                )?
                .execute(params![seq])?;
            connection
                .prepare_cached("DELETE FROM deliveries WHERE event_seq = ?1")?
                .execute(params![seq])?;
            connection
                .prepare_cached("DELETE FROM events WHERE seq = ?1")?
                .execute(params![seq])?;
            payloads.push(payload_id);
            payloads.extend(delivery_payloads);
            events += 1;
        }
        payloads.sort_unstable();
        let mut released =
            connection.prepare_cached("UPDATE payloads SET refs = refs - ?2 WHERE id = ?1")?;
        let mut unused =
            connection.prepare_cached("DELETE FROM payloads WHERE id = ?1 AND refs <= 0")?;
        for uses in payloads.chunk_by(|a, b| a == b) {
            released.execute(params![uses[0], uses.len() as i64])?;
            unused.execute(params![uses[0]])?;
        }
        let dedupe_keys = connection
            .prepare_cached(
                "DELETE FROM dedupe WHERE (source, key) IN \
                 (SELECT source, key FROM dedupe WHERE expires_at <= ?1 LIMIT ?2)",
            )?
            .execute(params![state.now as i64, retention.batch as i64])?;
        Ok(PruneReport { events, dedupe_keys })
    }
}
