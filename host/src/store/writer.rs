//! The writer thread: group commit.
//!
//! Owns the only write connection. It blocks for one command, takes every other command
//! already waiting (up to a bound), applies them in one transaction (should one fail, the
//! batch is applied again with each in its own savepoint, so one bad request fails alone),
//! commits once, and only then hands new deliveries to the scheduler and answers each waiter.
//! It must never answer before the commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::{
    AttemptRecord, Command, DeliveryJob, DeliveryState, IngestReceipt, NewDelivery, NewEvent,
    NextStep, PruneReport, ReplaySelection, Retention, StoreError, StoredEndpoint,
};
use crate::event::{Event, EventId, now_millis};
use crate::telemetry::Metrics;

/// The most requests one transaction takes; bounds commit latency under a flood.
const MAX_BATCH: usize = 1024;

pub(super) struct WriterContext {
    pub metrics: Arc<Metrics>,
    pub scheduler: mpsc::UnboundedSender<DeliveryJob>,
    /// Endpoints disabled (by a 410 or the admin API): their new deliveries are parked, not
    /// scheduled. Changed only by a command whose writes succeeded, and restored whenever the
    /// batch's writes are undone, so that it always matches `endpoint_state` on disk.
    pub disabled: HashSet<String>,
    /// Deleted dynamic endpoints (tombstones; their ids never come back): a delivery created
    /// for one, by an event routed just before the delete, is created dead, and dead letters
    /// of one are never sent again. Kept like `disabled`.
    pub deleted: HashSet<String>,
}

/// What applying one command produced; answered to its waiter once the batch is committed.
enum Done {
    Ingest(Result<IngestReceipt, StoreError>),
    Attempt(Result<(), StoreError>),
    Replay(Result<usize, StoreError>),
    Prune(Result<PruneReport, StoreError>),
    PutEndpoint(Result<(), StoreError>),
    /// How many deliveries a `DeleteEndpoint` or `SetEndpointEnabled` changed.
    Count(Result<usize, StoreError>),
    /// `Shutdown` is never batched; nothing to apply.
    Nothing,
}

pub(super) fn run(
    mut connection: Connection,
    mut commands: mpsc::Receiver<Command>,
    mut context: WriterContext,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut shutting_down = false;
    while !shutting_down {
        let Some(first) = commands.blocking_recv() else { break };
        let mut next = Some(first);
        while let Some(command) = next.take() {
            if matches!(command, Command::Shutdown) {
                shutting_down = true;
                break;
            }
            batch.push(command);
            if batch.len() < MAX_BATCH {
                next = commands.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut connection, &mut batch, &mut context);
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<Command>,
    context: &mut WriterContext,
) {
    let started = Instant::now();
    let now = now_millis();
    let size = batch.len();
    let disabled = context.disabled.clone();
    let deleted = context.deleted.clone();
    let mut jobs = Vec::new();
    let mut transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => {
            crate::health::log_store_error("store transaction could not start", &error);
            context.metrics.store_health.commit_failed(&error.to_string());
            return fail_all(batch.drain(..), &error.to_string());
        }
    };
    // Optimistic: every request straight in the transaction, no savepoints (each costs a
    // statement pair and a copy of every page it touches). When one fails, the whole batch is
    // rolled back and applied again with each request in its own savepoint, so that request
    // fails alone, as it always has.
    let mut done = Vec::with_capacity(size);
    for command in batch.iter() {
        let outcome = apply(&mut transaction, command, false, now, &mut jobs, context);
        if outcome.is_err() {
            break;
        }
        done.push(outcome);
    }
    if done.len() < size {
        let _ = transaction.rollback();
        context.disabled = disabled.clone();
        context.deleted = deleted.clone();
        jobs.clear();
        transaction = match connection.transaction() {
            Ok(transaction) => transaction,
            Err(error) => {
                crate::health::log_store_error("store transaction could not start", &error);
                context.metrics.store_health.commit_failed(&error.to_string());
                return fail_all(batch.drain(..), &error.to_string());
            }
        };
        done = batch
            .iter()
            .map(|command| apply(&mut transaction, command, true, now, &mut jobs, context))
            .collect();
    }
    let committed = transaction.commit();
    let metrics = &context.metrics;
    metrics.store_commit_seconds.observe(started.elapsed().as_secs_f64());
    if let Err(error) = committed {
        crate::health::log_store_error("store commit failed", &error);
        metrics.store_health.commit_failed(&error.to_string());
        context.disabled = disabled;
        context.deleted = deleted;
        // Nothing of this batch is durable: no job is scheduled, every waiter hears why.
        return fail_all(batch.drain(..), &error.to_string());
    }
    let stored_events = done
        .iter()
        .filter(|outcome| matches!(outcome, Done::Ingest(Ok(IngestReceipt::Stored(_)))))
        .count();
    // A batch none of whose writes could be made tells as much as a failed commit.
    match done.iter().find_map(Done::write_error).filter(|_| done.iter().all(Done::is_err)) {
        Some(error) => metrics.store_health.commit_failed(error),
        None => metrics.store_health.commit_succeeded(),
    }
    metrics.store_commits.inc();
    metrics.store_commit_batch_size.observe(size as f64);
    metrics.store_committed_events.inc_by(stored_events as u64);
    for job in jobs {
        // Disabled (or deleted) by a later request of this batch: not to be sent.
        if !context.disabled.is_empty() && context.disabled.contains(&job.endpoint) {
            continue;
        }
        if !context.deleted.is_empty() && context.deleted.contains(&job.endpoint) {
            continue;
        }
        // The scheduler gone means we are shutting down; the job stays pending on disk.
        let _ = context.scheduler.send(job);
    }
    for (command, outcome) in batch.drain(..).zip(done) {
        answer(command, outcome);
    }
}

/// Applies one command in the open transaction; with `isolated`, inside its own savepoint,
/// so that a failure undoes its own changes only. New deliveries to schedule go to `jobs`.
fn apply(
    transaction: &mut Transaction<'_>,
    command: &Command,
    isolated: bool,
    now: u64,
    jobs: &mut Vec<DeliveryJob>,
    context: &mut WriterContext,
) -> Done {
    match command {
        Command::Ingest(event, _) => {
            let result = guarded(transaction, isolated, |tx| ingest(tx, event, now, context));
            Done::Ingest(result.map(|(receipt, new_jobs)| {
                jobs.extend(new_jobs);
                receipt
            }))
        }
        Command::RecordAttempt(record, _) => {
            let result = guarded(transaction, isolated, |tx| record_attempt(tx, record, context));
            if result.is_ok() && record.next == NextStep::DisableEndpoint {
                context.disabled.insert(record.endpoint.clone());
            }
            Done::Attempt(result)
        }
        Command::Replay(selection, _) => {
            let result = guarded(transaction, isolated, |tx| replay(tx, selection, now, context));
            Done::Replay(result.map(|(count, new_jobs)| {
                jobs.extend(new_jobs);
                count
            }))
        }
        Command::Prune(retention, _) => {
            Done::Prune(guarded(transaction, isolated, |tx| prune(tx, retention, now)))
        }
        Command::PutEndpoint(endpoint, _) => {
            Done::PutEndpoint(guarded(transaction, isolated, |tx| put_endpoint(tx, endpoint)))
        }
        Command::DeleteEndpoint { id, reason, .. } => {
            let result = guarded(transaction, isolated, |tx| delete_endpoint(tx, id, reason, now));
            if result.is_ok() {
                context.disabled.remove(id);
                context.deleted.insert(id.clone());
            }
            Done::Count(result)
        }
        Command::SetEndpointEnabled { endpoint, enabled: false, reason, .. } => {
            let result =
                guarded(transaction, isolated, |tx| disable_endpoint(tx, endpoint, reason, now));
            if result.is_ok() {
                context.disabled.insert(endpoint.clone());
            }
            Done::Count(result)
        }
        Command::SetEndpointEnabled { endpoint, enabled: true, .. } => {
            let result = guarded(transaction, isolated, |tx| enable_endpoint(tx, endpoint, now));
            Done::Count(result.map(|new_jobs| {
                context.disabled.remove(endpoint);
                // A delivery made earlier in this batch, then parked by a disable also in it,
                // is scheduled once, not twice.
                let resumed: HashSet<i64> = new_jobs.iter().map(|job| job.delivery_id).collect();
                jobs.retain(|job| !resumed.contains(&job.delivery_id));
                let count = new_jobs.len();
                jobs.extend(new_jobs);
                count
            }))
        }
        Command::Shutdown => Done::Nothing,
    }
}

/// Runs `apply` in a savepoint when `isolated`, else straight in the transaction (a failure
/// then spoils the whole transaction, and the caller starts over).
fn guarded<T>(
    transaction: &mut Transaction<'_>,
    isolated: bool,
    apply: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    if isolated {
        savepoint(transaction, apply)
    } else {
        apply(transaction).map_err(|error| StoreError::Write(error.to_string()))
    }
}

/// Sends `outcome` to the waiter of `command`; a waiter that went away (client disconnected)
/// needs no answer.
fn answer(command: Command, outcome: Done) {
    match (command, outcome) {
        (Command::Ingest(_, reply), Done::Ingest(result)) => drop(reply.send(result)),
        (Command::RecordAttempt(_, reply), Done::Attempt(result)) => drop(reply.send(result)),
        (Command::Replay(_, reply), Done::Replay(result)) => drop(reply.send(result)),
        (Command::Prune(_, reply), Done::Prune(result)) => drop(reply.send(result)),
        (Command::PutEndpoint(_, reply), Done::PutEndpoint(result)) => drop(reply.send(result)),
        (Command::DeleteEndpoint { reply, .. }, Done::Count(result))
        | (Command::SetEndpointEnabled { reply, .. }, Done::Count(result)) => {
            drop(reply.send(result))
        }
        // Never: `apply` answers each command in its own kind. Dropping the reply would tell
        // the waiter that the store is closed.
        _ => {}
    }
}

fn fail_all(commands: impl Iterator<Item = Command>, message: &str) {
    for command in commands {
        let failed = || StoreError::Write(message.to_owned());
        match command {
            Command::Ingest(_, reply) => drop(reply.send(Err(failed()))),
            Command::RecordAttempt(_, reply) => drop(reply.send(Err(failed()))),
            Command::Replay(_, reply) => drop(reply.send(Err(failed()))),
            Command::Prune(_, reply) => drop(reply.send(Err(failed()))),
            Command::PutEndpoint(_, reply) => drop(reply.send(Err(failed()))),
            Command::DeleteEndpoint { reply, .. } | Command::SetEndpointEnabled { reply, .. } => {
                drop(reply.send(Err(failed())))
            }
            Command::Shutdown => {}
        }
    }
}

// === impl Done ===

impl Done {
    fn is_err(&self) -> bool {
        match self {
            Self::Ingest(result) => result.is_err(),
            Self::Attempt(result) => result.is_err(),
            Self::Replay(result) => result.is_err(),
            Self::Prune(result) => result.is_err(),
            Self::PutEndpoint(result) => result.is_err(),
            Self::Count(result) => result.is_err(),
            Self::Nothing => false,
        }
    }

    /// The words of a failed write (not of a refusal such as a full queue).
    fn write_error(&self) -> Option<&str> {
        let error = match self {
            Self::Ingest(Err(error))
            | Self::Attempt(Err(error))
            | Self::Replay(Err(error))
            | Self::PutEndpoint(Err(error))
            | Self::Count(Err(error)) => error,
            Self::Prune(Err(error)) => error,
            _ => return None,
        };
        match error {
            StoreError::Write(message) => Some(message),
            _ => None,
        }
    }
}

/// Runs `apply` in a savepoint: on error only its own changes are rolled back.
fn savepoint<T>(
    transaction: &mut Transaction<'_>,
    apply: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let result = transaction.savepoint().and_then(|savepoint| {
        let value = apply(&savepoint)?;
        savepoint.commit().map(|()| value)
    });
    result.map_err(|error| {
        crate::health::log_store_error("store rejected a write", &error);
        StoreError::Write(error.to_string())
    })
}

fn ingest(
    connection: &Connection,
    new: &NewEvent,
    now: u64,
    context: &WriterContext,
) -> rusqlite::Result<(IngestReceipt, Vec<DeliveryJob>)> {
    let event = &new.event;
    if let (Some(key), Some(window)) = (&event.dedupe_key, new.dedupe_window) {
        let earlier: Option<(Vec<u8>, i64)> = connection
            .prepare_cached(
                "SELECT event_id, expires_at FROM dedupe WHERE source = ?1 AND key = ?2",
            )?
            .query_row(params![event.source, key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let live = earlier.filter(|(_, expires_at)| *expires_at > now as i64);
        if let Some(bytes) = live.and_then(|(id, _)| <[u8; 16]>::try_from(id.as_slice()).ok()) {
            return Ok((IngestReceipt::Duplicate(EventId::from_bytes(bytes)), Vec::new()));
        }
        let expires_at = now.saturating_add(window.as_millis() as u64);
        connection
            .prepare_cached(
                "INSERT OR REPLACE INTO dedupe (source, key, event_id, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![event.source, key, event.id.to_bytes(), expires_at as i64])?;
    }
    let (event_seq, payload_id) = insert_event(connection, event, None)?;
    let origin = Origin { id: event.id, seq: event_seq, payload: Some((&event.body, payload_id)) };
    let jobs = insert_fan_out(connection, origin, &new.derived, &new.deliveries, now, context)?;
    Ok((IngestReceipt::Stored(event.id), jobs))
}

/// Inserts `event` (its body content-addressed) and answers its position and its body's row.
fn insert_event(
    connection: &Connection,
    event: &Event,
    parent_seq: Option<i64>,
) -> rusqlite::Result<(i64, i64)> {
    let payload_id = insert_payload(connection, &event.body)?;
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

/// Stores `body` once per distinct content and answers its row id. No `RETURNING`: SQLite
/// gathers returned rows in a temporary table, whose page cache it builds and tears down on
/// every call.
fn insert_payload(connection: &Connection, body: &[u8]) -> rusqlite::Result<i64> {
    let hash = Sha256::digest(body);
    let inserted = connection
        .prepare_cached(
            "INSERT INTO payloads (hash, body) VALUES (?1, ?2) ON CONFLICT (hash) DO NOTHING",
        )?
        .execute(params![hash.as_slice(), body])?;
    if inserted == 1 {
        return Ok(connection.last_insert_rowid());
    }
    connection
        .prepare_cached("SELECT id FROM payloads WHERE hash = ?1")?
        .query_row(params![hash.as_slice()], |row| row.get(0))
}

/// The stored event a fan-out starts from.
struct Origin<'a> {
    id: EventId,
    seq: i64,
    /// Its body and that body's row, when known.
    payload: Option<(&'a Bytes, i64)>,
}

/// Inserts the events split from `origin`, then its deliveries; answers the jobs to schedule
/// once committed.
fn insert_fan_out<'a>(
    connection: &Connection,
    origin: Origin<'a>,
    derived: &'a [Event],
    deliveries: &'a [NewDelivery],
    now: u64,
    context: &WriterContext,
) -> rusqlite::Result<Vec<DeliveryJob>> {
    // Fan-out usually sends one body to many endpoints, most often the event's own: hash and
    // store each body once.
    let mut payload_ids: Vec<(&Bytes, i64)> = origin.payload.into_iter().collect();
    let mut positions: Vec<(EventId, i64)> = vec![(origin.id, origin.seq)];
    for event in derived {
        let (seq, payload_id) = insert_event(connection, event, Some(origin.seq))?;
        positions.push((event.id, seq));
        payload_ids.push((&event.body, payload_id));
    }
    let mut jobs = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let Some(&(_, event_seq)) = positions.iter().find(|(id, _)| *id == delivery.event) else {
            tracing::error!(event = %delivery.event, "delivery of an event that is not stored; skipped");
            continue;
        };
        let body = &delivery.payload.body;
        let payload_id = match payload_ids.iter().find(|(known, _)| *known == body) {
            Some(&(_, id)) => id,
            None => {
                let id = insert_payload(connection, body)?;
                payload_ids.push((body, id));
                id
            }
        };
        let row = DeliveryInsert {
            event_seq,
            endpoint: &delivery.endpoint,
            payload_id,
            content_type: delivery.payload.content_type.as_deref(),
            subject: delivery.payload.subject.as_deref(),
            dead_letter: delivery.dead_letter.as_deref(),
        };
        if let Some(delivery_id) = insert_delivery(connection, &row, now, context)? {
            jobs.push(DeliveryJob {
                delivery_id,
                event_id: delivery.event,
                endpoint: delivery.endpoint.clone(),
                attempts: 0,
                due_at: now,
                payload: Some(delivery.payload.clone()),
            });
        }
    }
    Ok(jobs)
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
}

/// Inserts a delivery due now: dead if it carries an error, parked if its endpoint is
/// disabled, else pending. Answers its id when it is to be scheduled.
fn insert_delivery(
    connection: &Connection,
    row: &DeliveryInsert<'_>,
    now: u64,
    context: &WriterContext,
) -> rusqlite::Result<Option<i64>> {
    let deleted = (!context.deleted.is_empty() && context.deleted.contains(row.endpoint))
        .then_some("its endpoint was deleted");
    let last_error = row.dead_letter.or(deleted);
    let state = if last_error.is_some() {
        DeliveryState::Dead
    } else if context.disabled.contains(row.endpoint) {
        DeliveryState::Parked
    } else {
        DeliveryState::Pending
    };
    connection
        .prepare_cached(
            "INSERT INTO deliveries (event_seq, endpoint, payload_id, state, next_attempt_at, \
             last_error, content_type, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            row.event_seq,
            row.endpoint,
            row.payload_id,
            state as i64,
            now as i64,
            last_error,
            row.content_type,
            row.subject,
        ])?;
    Ok((state == DeliveryState::Pending).then(|| connection.last_insert_rowid()))
}

/// Records an attempt and moves its delivery on; a 410 also disables the endpoint on disk
/// (the caller adds it to the disabled set once this succeeded).
fn record_attempt(
    connection: &Connection,
    record: &AttemptRecord,
    context: &WriterContext,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO attempts (delivery_id, attempted_at, duration_us, status, error, \
             response) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            record.delivery_id,
            record.attempted_at as i64,
            record.duration.as_micros() as i64,
            record.status,
            record.error,
            (!record.response_excerpt.is_empty()).then_some(record.response_excerpt.as_ref()),
        ])?;
    let (state, next_attempt_at) = match record.next {
        NextStep::Delivered => (DeliveryState::Delivered, record.attempted_at),
        // An attempt that was in flight when its endpoint got disabled parks like the rest.
        NextStep::RetryAt(at) if context.disabled.contains(&record.endpoint) => {
            (DeliveryState::Parked, at)
        }
        NextStep::RetryAt(at) => (DeliveryState::Pending, at),
        NextStep::DeadLetter => (DeliveryState::Dead, record.attempted_at),
        NextStep::DisableEndpoint => (DeliveryState::Parked, record.attempted_at),
    };
    // A dead letter stays dead should an attempt that was in flight when it died (its endpoint
    // deleted) ask for a retry; a success is still recorded as one.
    let reopens = matches!(state, DeliveryState::Pending | DeliveryState::Parked);
    connection
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, state = ?2, next_attempt_at = ?3, \
             last_error = ?4 WHERE id = ?1 AND NOT (?5 AND state = ?6)",
        )?
        .execute(params![
            record.delivery_id,
            state as i64,
            next_attempt_at as i64,
            record.error,
            reopens,
            DeliveryState::Dead as i64,
        ])?;
    if record.next == NextStep::DisableEndpoint {
        connection
            .prepare_cached(
                "INSERT OR REPLACE INTO endpoint_state (endpoint, disabled_at, reason) \
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![record.endpoint, record.attempted_at as i64, "410 Gone"])?;
        park_pending(connection, &record.endpoint)?;
    }
    Ok(())
}

/// Parks the pending deliveries of `endpoint`; answers how many.
fn park_pending(connection: &Connection, endpoint: &str) -> rusqlite::Result<usize> {
    // `state <> 1` (not delivered) lets the planner use the partial index `deliveries_open`
    // instead of scanning every delivery: it cannot see that through a bound parameter.
    connection
        .prepare_cached(
            "UPDATE deliveries SET state = ?2 WHERE endpoint = ?1 AND state = ?3 AND state <> 1",
        )?
        .execute(params![endpoint, DeliveryState::Parked as i64, DeliveryState::Pending as i64])
}

fn put_endpoint(connection: &Connection, endpoint: &StoredEndpoint) -> rusqlite::Result<()> {
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

/// Deletes endpoint `id` and its state; its pending and parked deliveries become dead letters
/// with `reason`. Answers how many.
fn delete_endpoint(
    connection: &Connection,
    id: &str,
    reason: &str,
    now: u64,
) -> rusqlite::Result<usize> {
    // A tombstone: the id is known as deleted from now on; its settings (and keys) are gone.
    connection
        .prepare_cached(
            "INSERT INTO endpoints (id, kind, spec, created_at, updated_at, deleted_at) \
             VALUES (?1, 'endpoint', '', ?2, ?2, ?2) \
             ON CONFLICT (id) DO UPDATE SET deleted_at = ?2, spec = ''",
        )?
        .execute(params![id, now as i64])?;
    connection
        .prepare_cached("DELETE FROM endpoint_state WHERE endpoint = ?1")?
        .execute(params![id])?;
    // `state <> 1`: see `park_pending`.
    connection
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, last_error = ?3 \
             WHERE endpoint = ?1 AND state IN (?4, ?5) AND state <> 1",
        )?
        .execute(params![
            id,
            DeliveryState::Dead as i64,
            reason,
            DeliveryState::Pending as i64,
            DeliveryState::Parked as i64,
        ])
}

/// Marks `endpoint` disabled since `now` and parks its pending deliveries; answers how many
/// (the caller adds it to the disabled set once this succeeded).
fn disable_endpoint(
    connection: &Connection,
    endpoint: &str,
    reason: &str,
    now: u64,
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO endpoint_state (endpoint, disabled_at, reason) \
             VALUES (?1, ?2, ?3)",
        )?
        .execute(params![endpoint, now as i64, reason])?;
    park_pending(connection, endpoint)
}

/// Clears the disabled mark of `endpoint` and makes its parked deliveries pending, due now;
/// answers them as jobs to schedule once committed (the caller removes it from the disabled
/// set once this succeeded). Attempt counts are kept: a resumed delivery continues its retry
/// schedule.
fn enable_endpoint(
    connection: &Connection,
    endpoint: &str,
    now: u64,
) -> rusqlite::Result<Vec<DeliveryJob>> {
    connection
        .prepare_cached(
            "UPDATE endpoint_state SET disabled_at = NULL, reason = NULL WHERE endpoint = ?1",
        )?
        .execute(params![endpoint])?;
    // `state <> 1`: see `park_pending`.
    let parked: Vec<(i64, Vec<u8>, u32)> = connection
        .prepare_cached(
            "SELECT d.id, e.id, d.attempts FROM deliveries d JOIN events e ON e.seq = d.event_seq \
             WHERE d.endpoint = ?1 AND d.state = ?2 AND d.state <> 1 ORDER BY d.id",
        )?
        .query_map(params![endpoint, DeliveryState::Parked as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut resume = connection
        .prepare_cached("UPDATE deliveries SET state = ?2, next_attempt_at = ?3 WHERE id = ?1")?;
    let mut jobs = Vec::with_capacity(parked.len());
    for (delivery_id, event_id, attempts) in parked {
        resume.execute(params![delivery_id, DeliveryState::Pending as i64, now as i64])?;
        jobs.push(DeliveryJob {
            delivery_id,
            event_id: stored_event_id(&event_id)?,
            endpoint: endpoint.to_owned(),
            attempts,
            due_at: now,
            payload: None,
        });
    }
    Ok(jobs)
}

/// An event id as stored: its 16 ULID bytes.
fn stored_event_id(bytes: &[u8]) -> rusqlite::Result<EventId> {
    let bytes = <[u8; 16]>::try_from(bytes).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Blob,
            "event id is not 16 bytes".into(),
        )
    })?;
    Ok(EventId::from_bytes(bytes))
}

/// Answers how many deliveries the replay counts, and the jobs to schedule once committed.
fn replay(
    connection: &Connection,
    selection: &ReplaySelection,
    now: u64,
    context: &WriterContext,
) -> rusqlite::Result<(usize, Vec<DeliveryJob>)> {
    let mut jobs = Vec::new();
    match selection {
        ReplaySelection::DeadLetters { endpoint } => {
            // `state <> 1`: see `park_pending`.
            let mut select = connection.prepare_cached(
                "SELECT d.id, d.endpoint, e.id FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE d.state = ?1 AND d.state <> 1 AND (?2 IS NULL OR d.endpoint = ?2)",
            )?;
            let dead: Vec<(i64, String, Vec<u8>)> = select
                .query_map(params![DeliveryState::Dead as i64, endpoint], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut update = connection.prepare_cached(
                "UPDATE deliveries SET state = ?2, attempts = 0, next_attempt_at = ?3, \
                 last_error = NULL WHERE id = ?1",
            )?;
            for (delivery_id, endpoint, event_id) in dead {
                if context.deleted.contains(&endpoint) {
                    continue;
                }
                let parked = context.disabled.contains(&endpoint);
                let state = if parked { DeliveryState::Parked } else { DeliveryState::Pending };
                update.execute(params![delivery_id, state as i64, now as i64])?;
                let Ok(event_id) = <[u8; 16]>::try_from(event_id.as_slice()) else { continue };
                if !parked {
                    jobs.push(DeliveryJob {
                        delivery_id,
                        event_id: EventId::from_bytes(event_id),
                        endpoint,
                        attempts: 0,
                        due_at: now,
                        payload: None,
                    });
                }
            }
        }
        ReplaySelection::Events(replayed) => {
            let mut select = connection.prepare_cached("SELECT id FROM events WHERE seq = ?1")?;
            for event in replayed {
                let id: Option<Vec<u8>> =
                    select.query_row(params![event.seq], |row| row.get(0)).optional()?;
                let Some(Ok(id)) = id.map(|id| <[u8; 16]>::try_from(id.as_slice())) else {
                    continue;
                };
                let origin = Origin { id: EventId::from_bytes(id), seq: event.seq, payload: None };
                jobs.extend(insert_fan_out(
                    connection,
                    origin,
                    &event.derived,
                    &event.deliveries,
                    now,
                    context,
                )?);
            }
        }
        ReplaySelection::Delivery(delivery_id) => {
            return retry_delivery(connection, *delivery_id, now, context);
        }
    }
    Ok((jobs.len(), jobs))
}

/// Sends one dead or delivered delivery again, its attempt count started over: pending and
/// scheduled, or parked should its endpoint be disabled. Answers 1, or 0 when it does not
/// exist, is still pending or parked, or its endpoint was deleted.
fn retry_delivery(
    connection: &Connection,
    delivery_id: i64,
    now: u64,
    context: &WriterContext,
) -> rusqlite::Result<(usize, Vec<DeliveryJob>)> {
    let found: Option<(String, Vec<u8>, i64)> = connection
        .prepare_cached(
            "SELECT d.endpoint, e.id, d.state FROM deliveries d \
             JOIN events e ON e.seq = d.event_seq WHERE d.id = ?1",
        )?
        .query_row(params![delivery_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let Some((endpoint, event_id, state)) = found else { return Ok((0, Vec::new())) };
    let done = [DeliveryState::Dead as i64, DeliveryState::Delivered as i64];
    if !done.contains(&state) || context.deleted.contains(&endpoint) {
        return Ok((0, Vec::new()));
    }
    let event_id = stored_event_id(&event_id)?;
    let parked = context.disabled.contains(&endpoint);
    let state = if parked { DeliveryState::Parked } else { DeliveryState::Pending };
    connection
        .prepare_cached(
            "UPDATE deliveries SET state = ?2, attempts = 0, next_attempt_at = ?3, \
             last_error = NULL WHERE id = ?1",
        )?
        .execute(params![delivery_id, state as i64, now as i64])?;
    let jobs = if parked {
        Vec::new()
    } else {
        vec![DeliveryJob {
            delivery_id,
            event_id,
            endpoint,
            attempts: 0,
            due_at: now,
            payload: None,
        }]
    };
    Ok((1, jobs))
}

/// One retention pass: the oldest events that `retention` allows to go, with their
/// deliveries, attempts and the bodies nothing else uses; then expired dedupe keys.
fn prune(
    connection: &Connection,
    retention: &Retention,
    now: u64,
) -> rusqlite::Result<PruneReport> {
    let doomed: Vec<(i64, i64)> = connection
        .prepare_cached(
            "SELECT e.seq, e.payload_id FROM events e WHERE e.received_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq \
               AND (d.state IN (?3, ?4) OR (d.state = ?5 AND e.received_at >= ?2))) \
             ORDER BY e.seq LIMIT ?6",
        )?
        .query_map(
            params![
                retention.delivered_before as i64,
                retention.dead_before as i64,
                DeliveryState::Pending as i64,
                DeliveryState::Parked as i64,
                DeliveryState::Dead as i64,
                retention.batch as i64,
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
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
        connection.prepare_cached("DELETE FROM events WHERE seq = ?1")?.execute(params![seq])?;
        payloads.push(payload_id);
        payloads.extend(delivery_payloads);
        events += 1;
    }
    payloads.sort_unstable();
    payloads.dedup();
    let mut unused = connection.prepare_cached(
        "DELETE FROM payloads WHERE id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM events WHERE payload_id = ?1) \
         AND NOT EXISTS (SELECT 1 FROM deliveries WHERE payload_id = ?1)",
    )?;
    for payload in payloads {
        unused.execute(params![payload])?;
    }
    let dedupe_keys = connection
        .prepare_cached(
            "DELETE FROM dedupe WHERE (source, key) IN \
             (SELECT source, key FROM dedupe WHERE expires_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![now as i64, retention.batch as i64])?;
    Ok(PruneReport { events, dedupe_keys })
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::store::{Payload, schema};

    fn new_event(id: EventId) -> NewEvent {
        let body = Bytes::from_static(br#"{"type":"test"}"#);
        let event = Event {
            id,
            source: "app".into(),
            event_type: "test".into(),
            subject: None,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.clone(),
            received_at: 1,
            dedupe_key: None,
            metadata: Vec::new(),
        };
        let payload = Payload { body, content_type: None, subject: None };
        let delivery =
            NewDelivery { endpoint: "hook".into(), event: id, payload, dead_letter: None };
        NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] }
    }

    /// A migrated in-memory database, a writer context on it, and what it schedules.
    fn writer() -> (Connection, WriterContext, mpsc::UnboundedReceiver<DeliveryJob>) {
        let mut connection = Connection::open_in_memory().unwrap();
        schema::migrate(&mut connection).unwrap();
        let (scheduler, scheduled) = mpsc::unbounded_channel();
        let context = WriterContext {
            metrics: Metrics::new(),
            scheduler,
            disabled: HashSet::new(),
            deleted: HashSet::new(),
        };
        (connection, context, scheduled)
    }

    fn count(connection: &Connection, table: &str) -> i64 {
        connection
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_failing_request_fails_alone_and_the_rest_of_its_batch_commits() {
        let (mut connection, mut context, mut scheduled) = writer();
        let (first, second) = (EventId::generate(), EventId::generate());
        let mut answers = Vec::new();
        let mut batch = Vec::new();
        // The middle request reuses the first one's event id: the store refuses it.
        for id in [first, first, second] {
            let (reply, answer) = oneshot::channel();
            batch.push(Command::Ingest(Box::new(new_event(id)), reply));
            answers.push(answer);
        }
        commit_batch(&mut connection, &mut batch, &mut context);
        let answers: Vec<_> =
            answers.into_iter().map(|mut answer| answer.try_recv().unwrap()).collect();
        assert!(matches!(answers[0], Ok(IngestReceipt::Stored(id)) if id == first));
        assert!(matches!(answers[1], Err(StoreError::Write(_))), "{:?}", answers[1]);
        assert!(matches!(answers[2], Ok(IngestReceipt::Stored(id)) if id == second));
        assert_eq!(count(&connection, "events"), 2);
        assert_eq!(count(&connection, "deliveries"), 2);
        // One body, stored once; every delivery is scheduled once, the refused one's never.
        assert_eq!(count(&connection, "payloads"), 1);
        let jobs: Vec<EventId> =
            std::iter::from_fn(|| scheduled.try_recv().ok()).map(|job| job.event_id).collect();
        assert_eq!(jobs, vec![first, second]);
    }

    fn state_of_event(connection: &Connection, id: EventId) -> i64 {
        connection
            .query_row(
                "SELECT d.state FROM deliveries d JOIN events e ON e.seq = d.event_seq \
                 WHERE e.id = ?1",
                params![id.to_bytes()],
                |row| row.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_disable_in_a_batch_that_starts_over_is_applied_once_and_parks_the_whole_batch() {
        let (mut connection, mut context, mut scheduled) = writer();
        let (first, second) = (EventId::generate(), EventId::generate());
        let (disable, disabled) = oneshot::channel();
        let (mut batch, mut answers) = (Vec::new(), Vec::new());
        let command = |id, reply| Command::Ingest(Box::new(new_event(id)), reply);
        let (reply, answer) = oneshot::channel();
        batch.push(command(first, reply));
        answers.push(answer);
        batch.push(Command::SetEndpointEnabled {
            endpoint: "hook".into(),
            enabled: false,
            reason: "paused".into(),
            reply: disable,
        });
        // Refused (the event id is taken): the batch is applied again, one savepoint each.
        for id in [first, second] {
            let (reply, answer) = oneshot::channel();
            batch.push(command(id, reply));
            answers.push(answer);
        }
        commit_batch(&mut connection, &mut batch, &mut context);
        let mut disabled = disabled;
        assert_eq!(disabled.try_recv().unwrap().unwrap(), 1, "the first delivery was parked");
        let answers: Vec<_> =
            answers.into_iter().map(|mut answer| answer.try_recv().unwrap()).collect();
        assert!(matches!(answers[1], Err(StoreError::Write(_))), "{:?}", answers[1]);
        assert_eq!(context.disabled, HashSet::from(["hook".to_owned()]));
        let parked = DeliveryState::Parked as i64;
        assert_eq!(state_of_event(&connection, first), parked);
        assert_eq!(state_of_event(&connection, second), parked);
        // Nothing of a parked endpoint reaches the scheduler, not even the delivery made
        // before the disable in the same commit.
        assert!(scheduled.try_recv().is_err());
    }

    #[test]
    fn a_delivery_disabled_and_enabled_again_within_one_commit_is_scheduled_once() {
        let (mut connection, mut context, mut scheduled) = writer();
        let id = EventId::generate();
        let (reply, _ingested) = oneshot::channel();
        let mut batch = vec![Command::Ingest(Box::new(new_event(id)), reply)];
        let mut answers = Vec::new();
        for enabled in [false, true] {
            let (reply, answer) = oneshot::channel();
            let (endpoint, reason) = ("hook".to_owned(), String::new());
            batch.push(Command::SetEndpointEnabled { endpoint, enabled, reason, reply });
            answers.push(answer);
        }
        commit_batch(&mut connection, &mut batch, &mut context);
        let moved: Vec<usize> =
            answers.into_iter().map(|mut answer| answer.try_recv().unwrap().unwrap()).collect();
        assert_eq!(moved, [1, 1], "parked, then resumed");
        assert_eq!(state_of_event(&connection, id), DeliveryState::Pending as i64);
        let jobs: Vec<_> = std::iter::from_fn(|| scheduled.try_recv().ok()).collect();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert!(context.disabled.is_empty());
    }
}
