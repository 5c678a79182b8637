//! `switchyard store migrate`: copies what a SQLite store still has to do into another store.
//!
//! Owns [`copy`] and its [`MigrationReport`]. What is copied: dynamic endpoints (their stored
//! records as they are: a sealed record stays sealed, so the target's nodes need the same
//! `server.store_key`), which endpoints are disabled, every event with a pending, parked or
//! dead delivery (with those deliveries, their payloads and their order keys, in their order),
//! and every event whose dedupe key is still claimed (so that a sender's retry after the
//! switch is still answered duplicate).
//! Delivered deliveries, attempt histories and the audit log stay in the SQLite store; a
//! copied delivery starts with no attempts, due now (a dead letter stays dead, with its last
//! error).
//!
//! Idempotent without a marker: events keep their ids, and an event already in the target is
//! skipped; an endpoint whose stored record is already there unchanged is not written again;
//! an endpoint already disabled there is not disabled again. A run that stopped halfway
//! finishes on the next one. Two runs at the same time are not supported (both could copy
//! the same event before either sees it).

use std::collections::HashMap;

use anyhow::Context;
use std::time::Duration;

use super::sqlite::SqliteStore;
use super::{
    Backend, DeliveryQuery, DeliveryState, DeliverySummary, IngestReceipt, NewDelivery, NewEvent,
    StoreError,
};
use crate::event::{EventId, now_millis};

/// Deliveries read per page from the source.
const PAGE: u32 = 500;
/// The last error of a copied dead letter that had none.
const DEAD_LETTER_REASON: &str = "dead letter copied by `store migrate`";

/// What one run copied; a second run over the same stores copies nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Dynamic endpoints written.
    pub endpoints: usize,
    /// Endpoints disabled in the target.
    pub disabled: usize,
    /// Events written.
    pub events: usize,
    /// Deliveries written, by their state in the source.
    pub pending: usize,
    pub parked: usize,
    pub dead: usize,
    /// Events written with a dedupe key still claimed.
    pub dedupe_keys: usize,
    /// Events skipped: already in the target (an earlier run), or their dedupe key claimed
    /// there by another event.
    pub already: usize,
}

/// Copies what `source` still has to do into `target` (see the module docs).
pub(in crate::store) async fn copy(
    source: &SqliteStore,
    target: &dyn Backend,
) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport::default();
    for endpoint in source.endpoints().await? {
        if target.endpoint(endpoint.id.clone()).await?.as_ref() == Some(&endpoint) {
            continue;
        }
        target.put_endpoint(endpoint).await?;
        report.endpoints += 1;
    }
    let disabled_in_target = target.disabled_endpoints().await?;
    let mut disabled: Vec<_> = source.disabled_endpoints().await?.into_iter().collect();
    disabled.sort();
    for (endpoint, (_, reason)) in disabled {
        if disabled_in_target.contains_key(&endpoint) {
            continue;
        }
        target.set_endpoint_enabled(endpoint, false, reason).await?;
        report.disabled += 1;
    }

    // Open deliveries grouped by event, events in the order of their first delivery, so that
    // each endpoint receives them in the order it would have.
    let mut open = Vec::new();
    for state in [DeliveryState::Pending, DeliveryState::Parked, DeliveryState::Dead] {
        open.extend(deliveries_in(source, state).await?);
    }
    open.sort_by_key(|delivery| delivery.id);
    let mut events: Vec<(EventId, Vec<DeliverySummary>)> = Vec::new();
    let mut index: HashMap<EventId, usize> = HashMap::new();
    for delivery in open {
        let position = *index.entry(delivery.event_id).or_insert_with(|| {
            events.push((delivery.event_id, Vec::new()));
            events.len() - 1
        });
        events[position].1.push(delivery);
    }
    let live_keys: HashMap<EventId, u64> =
        source.live_dedupe_keys(now_millis()).await?.into_iter().collect();
    let mut claimed: Vec<(EventId, u64)> =
        live_keys.iter().map(|(id, expires_at)| (*id, *expires_at)).collect();
    claimed.sort_by_key(|(id, expires_at)| (*expires_at, *id));
    for (id, _) in claimed {
        if let std::collections::hash_map::Entry::Vacant(entry) = index.entry(id) {
            entry.insert(events.len());
            events.push((id, Vec::new()));
        }
    }

    for (id, deliveries) in events {
        if target.event(id).await?.is_some() {
            report.already += 1;
            continue;
        }
        let Some(event) = source.event(id).await? else {
            return Err(StoreError::Read(
                format!("event `{id}` has deliveries but is missing").into(),
            ));
        };
        let mut new_deliveries = Vec::with_capacity(deliveries.len());
        for delivery in &deliveries {
            let Some(payload) = source.payload(delivery.id).await? else {
                return Err(StoreError::Read(
                    format!("delivery `{}` has no payload", delivery.id.get()).into(),
                ));
            };
            let dead_letter = (delivery.state == DeliveryState::Dead).then(|| {
                delivery.last_error.clone().unwrap_or_else(|| DEAD_LETTER_REASON.to_owned())
            });
            new_deliveries.push(NewDelivery {
                endpoint: delivery.endpoint.clone(),
                event: id,
                payload,
                dead_letter,
                // Its place in its key's order: the copies of one key are ingested in the
                // order of their ids in the source, so the target keeps that order.
                order_key: source.order_key(delivery.id).await?,
            });
        }
        // The key stays claimed in the target for what is left of its window.
        let dedupe_window = live_keys
            .get(&id)
            .map(|expires_at| Duration::from_millis(expires_at.saturating_sub(now_millis())))
            .filter(|window| !window.is_zero());
        let new =
            NewEvent { event, dedupe_window, derived: Vec::new(), deliveries: new_deliveries };
        match target.ingest(new).await? {
            IngestReceipt::Stored(_) => {
                report.events += 1;
                report.dedupe_keys += usize::from(dedupe_window.is_some());
                for delivery in &deliveries {
                    match delivery.state {
                        DeliveryState::Pending => report.pending += 1,
                        DeliveryState::Parked => report.parked += 1,
                        DeliveryState::Dead => report.dead += 1,
                        DeliveryState::Delivered => {}
                    }
                }
            }
            IngestReceipt::Duplicate(_) | IngestReceipt::Dropped(_) => report.already += 1,
        }
    }
    Ok(report)
}

/// `switchyard store migrate --from sqlite --to jetstream`: opens the cluster store `topology`
/// configures and copies into it what the SQLite store in `sqlite_dir` still has to do
/// ([`from_sqlite`]). Idempotent: a second run copies nothing.
pub async fn run(
    topology: &crate::config::Topology,
    sqlite_dir: &std::path::Path,
) -> anyhow::Result<MigrationReport> {
    if !matches!(topology.store, crate::config::StoreSettings::JetStream(_)) {
        anyhow::bail!(
            "`store migrate --to jetstream` needs a config with `[store] backend = \"jetstream\"`"
        );
    }
    let metrics = crate::telemetry::Metrics::new();
    let nats = match &topology.nats {
        Some(config) => Some(crate::nats::NatsConnection::connect(config, &metrics).await?),
        None => None,
    };
    let server = &topology.server;
    let target =
        super::Store::open_configured(server, &topology.store, nats.as_ref(), metrics).await?;
    let report = from_sqlite(sqlite_dir, &*target).await;
    let closing = target.clone();
    tokio::task::spawn_blocking(move || closing.shutdown()).await.context("store shutdown")?;
    if let Some(connection) = &nats {
        connection.flush().await;
    }
    report.with_context(|| format!("copying the SQLite store in `{}`", sqlite_dir.display()))
}

/// Opens the SQLite store in `directory` (which must hold one: an empty directory is refused,
/// not created) and copies it into `target`.
pub async fn from_sqlite(
    directory: &std::path::Path,
    target: &dyn Backend,
) -> Result<MigrationReport, StoreError> {
    let database = directory.join(super::sqlite::DATABASE_FILE);
    if !database.is_file() {
        return Err(StoreError::DataDirectory {
            path: directory.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no SQLite store (`{}`) in it", super::sqlite::DATABASE_FILE),
            ),
        });
    }
    let metrics = crate::telemetry::Metrics::new();
    let source = std::sync::Arc::new(SqliteStore::open(
        directory,
        crate::config::Durability::Fsync,
        metrics,
    )?);
    let report = copy(&source, target).await;
    let closing = source.clone();
    tokio::task::spawn_blocking(move || closing.shutdown())
        .await
        .map_err(|error| StoreError::Write(format!("closing the SQLite store: {error}")))?;
    report
}

/// Every delivery of `source` in `state`.
async fn deliveries_in(
    source: &SqliteStore,
    state: DeliveryState,
) -> Result<Vec<DeliverySummary>, StoreError> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let query = DeliveryQuery { state: Some(state), before, limit: PAGE, ..Default::default() };
        let page = source.list_deliveries(query).await?;
        let full = page.len() == PAGE as usize;
        before = page.last().map(|delivery| delivery.id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests;
