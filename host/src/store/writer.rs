//! The writer thread: group commit.
//!
//! Owns the only write connection. It blocks for one command, takes every other command
//! already waiting (up to a bound), applies them in one transaction (each in its own
//! savepoint, so one bad request fails alone), commits once, and only then answers each
//! waiter. It must never answer before the commit.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::{Command, IngestReceipt, NewEvent, StoreError};
use crate::event::{EventId, now_millis};
use crate::telemetry::Metrics;

/// The most requests one transaction takes; bounds commit latency under a flood.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<IngestReceipt, StoreError>>;

pub(super) fn run(mut connection: Connection, commands: Receiver<Command>, metrics: Arc<Metrics>) {
    let mut batch: Vec<(Box<NewEvent>, Reply)> = Vec::with_capacity(MAX_BATCH);
    let mut shutting_down = false;
    while !shutting_down {
        let Ok(first) = commands.recv() else { break };
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Ingest(event, reply) => batch.push((event, reply)),
                Command::Shutdown => {
                    shutting_down = true;
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = commands.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut connection, &mut batch, &metrics);
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<(Box<NewEvent>, Reply)>,
    metrics: &Metrics,
) {
    let started = Instant::now();
    let now = now_millis();
    let outcome = connection.transaction().and_then(|mut transaction| {
        let results: Vec<_> = batch
            .iter()
            .map(|(event, _)| apply_in_savepoint(&mut transaction, event, now))
            .collect();
        transaction.commit().map(|()| results)
    });
    metrics.store_commit_seconds.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(results) => {
            metrics.store_commits.inc();
            metrics.store_commit_batch_size.observe(batch.len() as f64);
            let stored =
                results.iter().filter(|r| matches!(r, Ok(IngestReceipt::Stored(_)))).count();
            metrics.store_committed_events.inc_by(stored as u64);
            for ((_, reply), result) in batch.drain(..).zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, requests = batch.len(), "store commit failed");
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Write(error.to_string())));
            }
        }
    }
}

fn apply_in_savepoint(
    transaction: &mut Transaction<'_>,
    event: &NewEvent,
    now: u64,
) -> Result<IngestReceipt, StoreError> {
    let result = transaction.savepoint().and_then(|savepoint| {
        let receipt = insert_event(&savepoint, event, now)?;
        savepoint.commit().map(|()| receipt)
    });
    result.map_err(|error| {
        tracing::error!(%error, "store rejected an event");
        StoreError::Write(error.to_string())
    })
}

fn insert_event(
    connection: &Connection,
    new: &NewEvent,
    now: u64,
) -> rusqlite::Result<IngestReceipt> {
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
            return Ok(IngestReceipt::Duplicate(EventId::from_bytes(bytes)));
        }
        let expires_at = now.saturating_add(window.as_millis() as u64);
        connection
            .prepare_cached(
                "INSERT OR REPLACE INTO dedupe (source, key, event_id, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![event.source, key, event.id.to_bytes(), expires_at as i64])?;
    }
    let hash = Sha256::digest(&event.body);
    let payload_id: i64 = connection
        .prepare_cached(
            "INSERT INTO payloads (hash, body) VALUES (?1, ?2) \
             ON CONFLICT (hash) DO UPDATE SET hash = excluded.hash RETURNING id",
        )?
        .query_row(params![hash.as_slice(), event.body.as_ref()], |row| row.get(0))?;
    let headers = serde_json::to_string(&event.headers).expect("strings always serialize");
    let metadata = (!event.metadata.is_empty())
        .then(|| serde_json::to_string(&event.metadata).expect("strings always serialize"));
    connection
        .prepare_cached(
            "INSERT INTO events (id, source, type, subject, headers, payload_id, received_at, \
             dedupe_key, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
        ])?;
    Ok(IngestReceipt::Stored(event.id))
}
