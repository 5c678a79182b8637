//! What a store backend must do: the one seam between Switchyard and its durable state.
//!
//! Owns the [`Backend`] trait (writes, queries, and each endpoint's [`DueQueue`]) and nothing
//! else: no backend's types appear here. Writes resolve once durable. Which state a delivery
//! takes is decided by [`super::lifecycle`], never by a backend on its own; every backend
//! passes the same conformance suite.

use std::future::Future;
use std::pin::Pin;

use super::{
    Activity, AttemptRecord, AttemptRow, AuditEntry, AuditQuery, AuditRecord, DeliveryId,
    DeliveryJob, DeliveryQuery, DeliveryState, DeliverySummary, DisabledEndpoints,
    EndpointActivity, EventQuery, EventSummary, IngestReceipt, LogPosition, NewEvent, NextStep,
    Payload, PruneReport, ReplaySelection, Retention, StoreError, StoredEndpoint,
};
use crate::event::{Event, EventId};

/// What a store operation answers, later.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A durable store. Every method may be called from any task; none blocks an async thread.
pub trait Backend: Send + Sync + 'static {
    // --- writes: each resolves once committed ---

    /// Makes `event` and its deliveries durable, all or nothing. Never waits for queue space:
    /// a store that cannot take more answers [`StoreError::Busy`] at once (backpressure).
    fn ingest(&self, event: NewEvent) -> Answer<'_, IngestReceipt>;

    /// Records an attempt and moves its delivery on ([`super::lifecycle`]); waits for queue
    /// space (an outcome is never dropped). [`NextStep::DisableEndpoint`] also disables the
    /// endpoint, as [`Backend::set_endpoint_enabled`] does.
    fn record_attempt(&self, record: AttemptRecord) -> Answer<'_, ()>;

    /// Makes the selected deliveries pending again (or creates them); answers how many. Those
    /// that are due reach their endpoint's [`DueQueue`] after the commit.
    fn replay(&self, selection: ReplaySelection) -> Answer<'_, usize>;

    /// Deletes one batch of what `retention` allows; events with deliveries still pending or
    /// parked are never deleted.
    fn prune(&self, retention: Retention) -> Answer<'_, PruneReport>;

    /// Inserts or replaces a dynamic endpoint, stored as given (a replacement keeps the
    /// caller's `created_at`).
    fn put_endpoint(&self, endpoint: StoredEndpoint) -> Answer<'_, ()>;

    /// Deletes a dynamic endpoint (a missing one is not an error) and leaves a tombstone: its
    /// id never comes back. Its pending and parked deliveries become dead letters with
    /// `last_error = reason`, and deliveries created for it later are created dead. Answers
    /// how many were dead-lettered. An attempt in flight still records its outcome, but a
    /// [`NextStep::RetryAt`] never brings its dead letter back.
    fn delete_endpoint(&self, id: String, reason: String) -> Answer<'_, usize>;

    /// Disable (`enabled = false`): the endpoint is disabled since now for `reason`, its
    /// pending deliveries are parked, and new ones are created parked; answers how many were
    /// parked. Enable: its parked deliveries become pending, due now, keeping their attempt
    /// counts, and reach its [`DueQueue`] after the commit; answers how many.
    fn set_endpoint_enabled(
        &self,
        endpoint: String,
        enabled: bool,
        reason: String,
    ) -> Answer<'_, usize>;

    /// Makes sure that what earlier writes replaced or deleted is gone from the store's files
    /// (logs, free space, history), so that a record written in clear and sealed since cannot
    /// be read back from a copy. Slow (may rewrite the whole store): called only after
    /// endpoints' records were sealed anew. A backend that keeps nothing overwritten needs no
    /// more than the default.
    fn scrub(&self) -> Answer<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Appends one entry to the audit log; answers its position once durable.
    fn append_audit(&self, entry: AuditEntry) -> Answer<'_, LogPosition>;

    /// Deletes up to `batch` audit entries older than `before` (unix ms), oldest first;
    /// answers how many.
    fn prune_audit(&self, before: u64, batch: usize) -> Answer<'_, usize>;

    // --- queries ---

    fn event(&self, id: EventId) -> Answer<'_, Option<Event>>;

    /// Up to `query.limit` events matching `query`, newest first. The next page starts
    /// `before` the last one's position.
    fn list_events(&self, query: EventQuery) -> Answer<'_, Vec<EventSummary>>;

    /// Up to `limit` events received in `[since, until)` (unix ms), in commit order; events
    /// made by splits are not listed (routing their origin again makes them again).
    fn events_received_between(&self, since: u64, until: u64, limit: u32)
    -> Answer<'_, Vec<Event>>;

    fn count_events(&self) -> Answer<'_, u64>;

    /// Events received and attempts made at or after `since` (unix ms); at most `limit`
    /// attempts, newest first (statistics over a window).
    fn activity_since(&self, since: u64, limit: u32) -> Answer<'_, Activity>;

    /// For each of `endpoints` (those without attempts are left out): its attempts made at or
    /// after `since` (unix ms), counted in buckets `bucket_millis` wide from `since`, and their
    /// 95th-percentile duration. Reads only the attempts in the window.
    fn endpoint_activity(
        &self,
        endpoints: Vec<String>,
        since: u64,
        bucket_millis: u64,
    ) -> Answer<'_, Vec<EndpointActivity>>;

    /// Up to `query.limit` deliveries matching `query`, newest first. The next page starts
    /// `before` the last one's id.
    fn list_deliveries(&self, query: DeliveryQuery) -> Answer<'_, Vec<DeliverySummary>>;

    fn delivery(&self, id: DeliveryId) -> Answer<'_, Option<DeliverySummary>>;

    /// How many deliveries are in `state`, optionally of one endpoint.
    fn count_deliveries(&self, state: DeliveryState, endpoint: Option<String>) -> Answer<'_, u64>;

    /// A delivery's attempts, oldest first.
    fn attempts(&self, id: DeliveryId) -> Answer<'_, Vec<AttemptRow>>;

    /// The body, content type and subject a delivery sends: its own content type (set when a
    /// plugin shaped the payload), else its event's.
    fn payload(&self, id: DeliveryId) -> Answer<'_, Option<Payload>>;

    /// Dynamic endpoints, oldest first; tombstones are not listed.
    fn endpoints(&self) -> Answer<'_, Vec<StoredEndpoint>>;

    fn endpoint(&self, id: String) -> Answer<'_, Option<StoredEndpoint>>;

    /// Disabled endpoints, with since when (unix ms) and why.
    fn disabled_endpoints(&self) -> Answer<'_, DisabledEndpoints>;

    /// Up to `query.limit` audit entries matching `query`, newest first. The next page starts
    /// `before` the last one's position.
    fn list_audit(&self, query: AuditQuery) -> Answer<'_, Vec<AuditRecord>>;

    // --- the queue of due deliveries ---

    /// The queue of `endpoint`'s deliveries, pending ones from earlier runs included. One
    /// queue per endpoint at a time: a second call replaces the first, which then yields
    /// nothing more.
    fn due_queue(&self, endpoint: &str) -> Box<dyn DueQueue>;

    /// Commits everything already queued, then stops the writer. Blocks until it has.
    fn shutdown(&self);

    /// A signal that moves whenever another process sharing this store (a cluster node) may
    /// have changed the dynamic endpoints or which endpoints are disabled, so that this
    /// process brings its workers and routes in line. `None` (the default) when no other
    /// process writes the store.
    fn outside_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
}

/// One endpoint's pending deliveries, yielded when due. A job handed out is *under way* until
/// [`DueQueue::finished`] is told its outcome; a job for a delivery under way (resumed or
/// replayed meanwhile) is not handed out a second time: that attempt's outcome decides.
pub trait DueQueue: Send {
    /// The next job that is due, once it is; `None` once the store is gone. Cancel-safe: a
    /// job is never lost when the future is dropped.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<DeliveryJob>> + Send + '_>>;

    /// A job due now, if any, without waiting.
    fn try_next(&mut self) -> Option<DeliveryJob>;

    /// The outcome of an attempt on `job`, already recorded in the store: a
    /// [`NextStep::RetryAt`] queues it again (its body read again when due), unless the queue
    /// is paused (its endpoint disabled meanwhile: the store has parked it).
    fn finished(&mut self, job: DeliveryJob, next: NextStep);

    /// An attempt on `delivery` ended without an outcome (its task failed): it is no longer
    /// under way, and stays as the store has it (pending: queued again at the next start, or
    /// when resumed or replayed).
    fn abandoned(&mut self, delivery: DeliveryId);

    /// Stops handing out jobs and forgets those queued (the endpoint is disabled; the store
    /// parked them). Jobs that arrive while paused wait for [`DueQueue::resume`].
    fn pause(&mut self);

    fn resume(&mut self);

    /// Jobs queued, not counting those under way.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
