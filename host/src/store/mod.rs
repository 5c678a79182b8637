//! The durable store: what is accepted, what is to be delivered, and what happened.
//!
//! Owns the store's domain types (events to make durable, deliveries, attempts, queries and
//! their rows), its ids ([`DeliveryId`], the opaque [`LogPosition`]), [`StoreError`], and
//! [`Store`], the cheap handle every other module holds. What a store must do is the
//! [`Backend`] trait ([`backend`]); how a delivery moves between states is [`lifecycle`], the
//! same for every backend; [`conformance`] is the suite every backend passes. Nothing outside
//! this module knows which backend runs, and only `sqlite/` names its database.
//!
//! An answer from [`Backend::ingest`] means the event and all its deliveries are committed, so
//! the caller may acknowledge; the new deliveries reach their endpoint's [`DueQueue`] right
//! after the commit (the store is the queue: nothing is committed without being queued).

pub mod backend;
#[cfg(test)]
mod boundary;
#[cfg(test)]
mod conformance;
pub mod jetstream;
pub mod lifecycle;
pub mod migrate;
pub mod retention;
mod sqlite;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use backend::{Answer, Backend, DueQueue};

use crate::config::{Durability, Server, StoreSettings};
use crate::event::{Event, EventId};
use crate::telemetry::Metrics;

/// A boxed error from a backend's own library, kept for its message.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory `{path}`: {source}")]
    DataDirectory { path: PathBuf, source: std::io::Error },
    #[error("cannot open the store at `{path}`: {source}")]
    Open { path: PathBuf, source: BackendError },
    #[error("cannot migrate the store at `{path}`: {source}")]
    Migrate { path: PathBuf, source: BackendError },
    #[error("the store's write queue is full")]
    Busy,
    #[error("the store is closed")]
    Closed,
    #[error("the store failed to commit: {0}")]
    Write(String),
    #[error("the store failed to read: {0}")]
    Read(BackendError),
    /// The store cannot keep the durability the config asks for.
    #[error("{0}")]
    Durability(String),
}

/// A delivery's id: unique in its store, never reused, shown in the admin API. Ids of later
/// deliveries are larger, so listings newest first page by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(u64);

impl DeliveryId {
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id `text` names: a positive integer that fits in 63 bits.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse::<i64>().ok().filter(|id| *id > 0).map(|id| Self(id as u64))
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// Where an event stands in the log, in commit order: what event listings page by. Opaque:
/// its text form ([`LogPosition::encode`]) is what cursors carry, and only the backend that
/// gave it out knows what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogPosition(u64);

impl LogPosition {
    pub(crate) const fn new(position: u64) -> Self {
        Self(position)
    }

    pub(crate) const fn get(self) -> u64 {
        self.0
    }

    /// The text a cursor carries.
    pub fn encode(self) -> String {
        self.0.to_string()
    }

    /// The position [`LogPosition::encode`] gave out; `None` for text no position has.
    pub fn decode(text: &str) -> Option<Self> {
        // Positions are positive and fit in 63 bits.
        let position = text.parse::<i64>().ok().filter(|position| *position > 0)?;
        Some(Self(position as u64))
    }
}

/// A cheap, cloneable handle on the store; every operation is [`Backend`]'s. It also carries
/// the live tail of accepted events ([`crate::tail`]), which every ingress feeds and the
/// dashboard reads.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    tail: crate::tail::Tail,
}

impl fmt::Debug for Store {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("Store").finish_non_exhaustive()
    }
}

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl Store {
    /// Opens the store of `data_dir` (creating it if needed), checks that it can be written,
    /// and starts its writer. Deliveries pending from an earlier run wait in their endpoint's
    /// [`DueQueue`].
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let backend = sqlite::SqliteStore::open(data_dir, durability, metrics)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// Opens the store `settings` choose: the embedded one in `server.data_dir`, or the
    /// cluster store on the NATS connection `nats` (the config requires one for it), whose
    /// servers must fsync every write when `server.durability = "fsync"`.
    pub async fn open_configured(
        server: &Server,
        settings: &StoreSettings,
        nats: Option<&crate::nats::NatsConnection>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let StoreSettings::JetStream(cluster) = settings else {
            return Self::open(&server.data_dir, server.durability, metrics);
        };
        let Some(nats) = nats else {
            return Err(StoreError::Durability(
                "the `jetstream` store needs a `[nats]` connection".into(),
            ));
        };
        match server.durability {
            Durability::Fsync => {
                jetstream::durability::check_servers_sync_always(&cluster.monitor_urls)
                    .await
                    .map_err(|error| StoreError::Durability(error.to_string()))?;
                tracing::info!("every NATS server fsyncs each write (`sync_interval: always`)");
            }
            Durability::Os => tracing::warn!(
                "`server.durability = \"os\"`: acknowledged events are as durable as the NATS \
                 servers make them (by default a JetStream server fsyncs every two minutes: \
                 losing a quorum of servers at once may lose what they had not written)"
            ),
        }
        let client = nats.client().clone();
        let backend =
            jetstream::JetStreamStore::open(cluster, client, &server.data_dir, metrics).await?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    pub fn from_backend(backend: Arc<dyn Backend>) -> Self {
        Self { backend, tail: crate::tail::Tail::new() }
    }

    /// The live tail of accepted events.
    pub fn tail(&self) -> &crate::tail::Tail {
        &self.tail
    }
}

/// An event to make durable, with how long its dedupe key stays claimed, the events plugins
/// split it into, and its deliveries.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub dedupe_window: Option<Duration>,
    /// Events made from it by splits; stored beside it with their own ids.
    pub derived: Vec<Event>,
    pub deliveries: Vec<NewDelivery>,
}

/// One delivery to create: of `event` (the new event or one of its derived events) to
/// `endpoint`, sending `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub endpoint: String,
    pub event: EventId,
    pub payload: Payload,
    /// Created as a dead letter with this error (a plugin failed under `dead-letter`).
    pub dead_letter: Option<String>,
    /// Its endpoint's `ordered_by` key, computed at ingest; `None`: unordered.
    pub order_key: Option<String>,
}

/// New deliveries for an event already stored (replay by time range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedEvent {
    /// The stored event.
    pub event: EventId,
    pub derived: Vec<Event>,
    pub deliveries: Vec<NewDelivery>,
}

/// What the store did with a [`NewEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestReceipt {
    /// Committed (and fsynced under `durability = "fsync"`), deliveries included.
    Stored(EventId),
    /// Its dedupe key was claimed by this earlier event, within the window; nothing stored.
    Duplicate(EventId),
    /// A verify plugin dropped it: acknowledged under this id, nothing stored.
    Dropped(EventId),
}

impl IngestReceipt {
    pub fn id(self) -> EventId {
        match self {
            Self::Stored(id) | Self::Duplicate(id) | Self::Dropped(id) => id,
        }
    }
}

/// Where a delivery stands; [`lifecycle`] says how it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Dead letter: retries exhausted or a permanent failure; replayable.
    Dead,
    /// Its endpoint is disabled (a 410 Gone, the admin API, or not yet verified); resumed
    /// when the endpoint is enabled.
    Parked,
}

impl DeliveryState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Delivered, Self::Dead, Self::Parked];
}

/// The body to send and its content type; absent on jobs loaded from the store, whose body
/// is read just before the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub body: Bytes,
    pub content_type: Option<String>,
    /// The subject a NATS endpoint publishes to, rendered when the delivery was created.
    pub subject: Option<String>,
}

/// A pending delivery, as its endpoint's due-queue holds it.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub endpoint: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix milliseconds.
    pub due_at: u64,
    pub payload: Option<Payload>,
    /// Its order key: the due-queue starts it only after the key's earlier deliveries.
    pub order_key: Option<String>,
}

/// What an attempt decided for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    /// Try again at this unix millisecond.
    RetryAt(u64),
    DeadLetter,
    /// 410 Gone: disable the endpoint and park its pending deliveries, this one included.
    DisableEndpoint,
}

/// One finished attempt, to be recorded with the delivery's new state in one commit.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: DeliveryId,
    pub endpoint: String,
    pub attempted_at: u64,
    pub duration: Duration,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Bytes,
    pub next: NextStep,
}

/// What retention may delete, as unix-millisecond cutoffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events received before this whose deliveries are all delivered (or that have none).
    pub delivered_before: u64,
    /// Events received before this whose deliveries are delivered or dead letters; never
    /// later than `delivered_before` (dead letters are kept at least as long).
    pub dead_before: u64,
    /// The most events one pass deletes, so a pass never holds the writer for long.
    pub batch: usize,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub events: usize,
    pub dedupe_keys: usize,
}

/// Which deliveries to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaySelection {
    /// Dead letters, optionally of one endpoint only: they become pending again.
    DeadLetters { endpoint: Option<String> },
    /// New deliveries (and split events) for stored events.
    Events(Vec<ReplayedEvent>),
    /// One delivery, sent again: a dead or delivered delivery becomes pending, due now, and is
    /// scheduled. Answers 1, or 0 when it does not exist, is pending or parked, or its
    /// endpoint is deleted. Its attempt count starts over (its recorded attempts stay); should
    /// its endpoint be disabled, it is parked instead, still answering 1, and sent once the
    /// endpoint is enabled.
    Delivery(DeliveryId),
}

/// A dynamic endpoint (created through the admin API) as stored. The admin API owns the
/// meaning of `spec` (a JSON document); the store keeps it as text. `spec` holds signing keys,
/// so `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEndpoint {
    pub id: String,
    /// "endpoint" or "subscription": how it was created.
    pub kind: String,
    pub spec: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds.
    pub updated_at: u64,
}

/// One recorded attempt. `id` orders a delivery's attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: u64,
    pub attempted_at: u64,
    pub duration_micros: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response_excerpt: Vec<u8>,
}

/// One attempt as the dashboard's statistics count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSample {
    pub endpoint: String,
    /// Unix milliseconds.
    pub attempted_at: u64,
    pub duration_micros: u64,
    /// A 2xx answer (or a NATS publish) without error.
    pub succeeded: bool,
}

/// What happened since a moment: for statistics over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Events received in the window (splits included).
    pub events: u64,
    /// Attempts made in the window, newest first, at most the limit asked for.
    pub attempts: Vec<AttemptSample>,
    /// More attempts were made in the window than `attempts` holds.
    pub truncated: bool,
}

/// One endpoint's attempts since a moment, for the endpoints list: counts per time bucket and
/// the 95th-percentile attempt duration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointActivity {
    pub endpoint: String,
    /// Buckets with at least one attempt, oldest first: bucket `index` covers
    /// `[since + index × width, since + (index + 1) × width)`.
    pub buckets: Vec<ActivityBucket>,
    /// Nearest-rank 95th percentile of attempt durations, in microseconds; absent without
    /// attempts.
    pub p95_micros: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityBucket {
    pub index: u64,
    pub attempts: u64,
    /// Attempts without a 2xx answer (errors included).
    pub failed: u64,
}

/// Which events [`Backend::list_events`] answers; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub source: Option<String>,
    /// Matched exactly.
    pub event_type: Option<String>,
    /// Received at or after (unix ms).
    pub since: Option<u64>,
    /// Received before (unix ms).
    pub until: Option<u64>,
    /// Cursor: only events before this position.
    pub before: Option<LogPosition>,
    pub limit: u32,
}

/// An event without its headers, body and metadata, as listed newest first: stable under
/// inserts, because new events only get later positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    pub position: LogPosition,
    pub id: EventId,
    pub source: String,
    pub event_type: String,
    pub subject: Option<String>,
    /// Unix milliseconds.
    pub received_at: u64,
    pub dedupe_key: Option<String>,
    /// The event a split made this one from.
    pub parent: Option<EventId>,
    /// The body's length in bytes.
    pub body_size: u64,
}

/// Which deliveries [`Backend::list_deliveries`] answers; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub endpoint: Option<String>,
    pub state: Option<DeliveryState>,
    pub event: Option<EventId>,
    /// Its event received at or after (unix ms).
    pub since: Option<u64>,
    /// Its event received before (unix ms).
    pub until: Option<u64>,
    /// Cursor: only deliveries with a smaller id.
    pub before: Option<DeliveryId>,
    pub limit: u32,
}

/// A delivery with its event's id and arrival, as listed newest first (id descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySummary {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub endpoint: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// Unix milliseconds.
    pub next_attempt_at: u64,
    pub last_error: Option<String>,
    /// When its event was received (unix ms).
    pub received_at: u64,
}

/// One state-changing admin action, as the audit log keeps it. It never holds a secret: the
/// credential is named (`server.admin_token`), never given, and no request body is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When the action was answered (unix ms).
    pub at: u64,
    /// The credential's role: `admin`, or another role a credential may have.
    pub role: String,
    /// Which credential: the config key of a token, or a session's id; never its value.
    pub credential: String,
    /// The client's address, when the listener knows it.
    pub remote: Option<String>,
    /// What was done, e.g. `endpoint.create` or `delivery.retry`.
    pub action: String,
    /// On what, e.g. `endpoint/ep_01H…` or `dead-letters`.
    pub resource: String,
    /// `success`, or the error code answered (`not_found`, `invalid_field`…).
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
}

/// An audit entry and its place in the log (newest last; a cursor for paging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub position: LogPosition,
    pub entry: AuditEntry,
}

/// Which audit entries [`Backend::list_audit`] answers; every filter set must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Matched exactly.
    pub action: Option<String>,
    /// Matched exactly.
    pub resource: Option<String>,
    /// At or after (unix ms).
    pub since: Option<u64>,
    /// Before (unix ms).
    pub until: Option<u64>,
    /// Cursor: only entries before this position.
    pub before: Option<LogPosition>,
    pub limit: u32,
}

/// Why and since when (unix ms) an endpoint is disabled.
pub type DisabledEndpoints = std::collections::HashMap<String, (u64, String)>;

impl fmt::Debug for StoredEndpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("spec", &format_args!("({} bytes, redacted)", self.spec.len()))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
