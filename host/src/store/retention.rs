//! The retention task: deletes, in small batches, what `server.retention` lets go.
//!
//! The audit log's entries go after `server.audit_retention` (90 days by default).
//!
//! Delivered events (and their deliveries, attempts and unused bodies) go after
//! `server.retention` (7 days by default); events with dead letters after 30 days, or after the
//! retention if that is longer; events with pending or parked deliveries never. Expired dedupe
//! keys go too. Each pass goes through the writer like any write and deletes at most
//! [`BATCH`] events, so ingest never waits long behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Retention, Store};
use crate::event::now_millis;
use crate::telemetry::Metrics;

/// Dead letters are kept at least this long, for replay.
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most events one pass deletes.
const BATCH: usize = 500;

/// Runs passes until `stop` turns true: a full batch is followed at once by another, else the
/// task waits a quarter of the shorter of the two retentions (between 100 ms and a minute).
pub async fn run(
    store: Store,
    retention: Duration,
    audit_retention: Duration,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let pause = (retention.min(audit_retention) / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(60));
    let dead_retention = retention.max(DEAD_LETTER_RETENTION);
    loop {
        let now = now_millis();
        let cutoffs = Retention {
            delivered_before: now.saturating_sub(millis(retention)),
            dead_before: now.saturating_sub(millis(dead_retention)),
            batch: BATCH,
        };
        let full = match store.prune(cutoffs).await {
            Ok(report) => {
                metrics.store_pruned_events.inc_by(report.events as u64);
                if report.events > 0 {
                    tracing::debug!(
                        events = report.events,
                        dedupe_keys = report.dedupe_keys,
                        "retention pass"
                    );
                }
                report.events == BATCH
            }
            Err(error) => {
                tracing::warn!(%error, "retention pass failed; trying again later");
                false
            }
        };
        let audit_before = now.saturating_sub(millis(audit_retention));
        let audit_full = match store.prune_audit(audit_before, BATCH).await {
            Ok(pruned) => {
                if pruned > 0 {
                    tracing::debug!(audit_entries = pruned, "audit retention pass");
                }
                pruned == BATCH
            }
            Err(error) => {
                tracing::warn!(%error, "audit retention pass failed; trying again later");
                false
            }
        };
        if full || audit_full {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
