//! The durable store: an embedded SQLite database in the data directory.
//!
//! Owns everything that names rusqlite. Writes go through ONE writer thread that groups
//! whatever requests are waiting into one transaction, commits (and fsyncs) once, then answers
//! every waiter: this is what makes durable ingest fast. Reads use their own connections.
//! An answer from [`Store::ingest`] means the event and all its deliveries are committed, so
//! the caller may acknowledge; the new deliveries are handed to the scheduler right after the
//! commit (the store is the queue: nothing is committed without being scheduled).

mod reader;
pub mod retention;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

pub use reader::{
    AttemptRow, DeliveryQuery, DeliveryRow, DeliverySummary, EventQuery, EventSummary, Reader,
    StoredEvent,
};

use crate::config::Durability;
use crate::event::{Event, EventId};
use crate::telemetry::Metrics;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "switchyard.db";
/// Ingest requests waiting for the writer beyond this are refused (HTTP 503), not queued.
const WRITER_QUEUE_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory `{path}`: {source}")]
    DataDirectory { path: PathBuf, source: std::io::Error },
    #[error("cannot open the store at `{path}`: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("cannot migrate the store at `{path}`: {source}")]
    Migrate { path: PathBuf, source: schema::MigrationError },
    #[error("the store's write queue is full")]
    Busy,
    #[error("the store is closed")]
    Closed,
    #[error("the store failed to commit: {0}")]
    Write(String),
    #[error("the store failed to read: {0}")]
    Read(#[from] rusqlite::Error),
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
}

/// New deliveries for an event already stored (replay by time range).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedEvent {
    /// The stored event's position.
    pub seq: i64,
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

/// Where a delivery stands. Stored as its integer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending = 0,
    Delivered = 1,
    /// Dead letter: retries exhausted or a permanent failure; replayable.
    Dead = 2,
    /// Its endpoint is disabled (410 Gone); resumed when the endpoint is re-enabled.
    Parked = 3,
}

impl DeliveryState {
    fn from_code(code: i64) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead, Self::Parked]
            .into_iter()
            .find(|s| *s as i64 == code)
    }
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

/// A pending delivery, as the scheduler holds it.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_id: i64,
    pub event_id: EventId,
    pub endpoint: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Unix milliseconds.
    pub due_at: u64,
    pub payload: Option<Payload>,
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
    pub delivery_id: i64,
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
    /// scheduled. Answers 1, or 0 when it does not exist or is pending or parked. Its attempt
    /// count starts over (its recorded attempts stay); should its endpoint be disabled, it is
    /// parked instead, still answering 1, and sent once the endpoint is enabled.
    Delivery(i64),
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Ingest(Box<NewEvent>, Reply<IngestReceipt>),
    RecordAttempt(Box<AttemptRecord>, Reply<()>),
    Replay(ReplaySelection, Reply<usize>),
    Prune(Retention, Reply<PruneReport>),
    PutEndpoint(Box<StoredEndpoint>, Reply<()>),
    DeleteEndpoint { id: String, reason: String, reply: Reply<usize> },
    SetEndpointEnabled { endpoint: String, enabled: bool, reason: String, reply: Reply<usize> },
    Shutdown,
}

/// A cheap, cloneable handle on the store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Idle read connections, reused: opening one costs a file open, a schema read and, for
    /// every statement, a fresh parse (reused connections keep their prepared statements).
    readers: Arc<Mutex<Vec<Reader>>>,
}

impl std::fmt::Debug for StoredEndpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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

/// Idle read connections kept for reuse; more may be open at once, the rest are closed.
const IDLE_READERS: usize = 8;

/// A read connection from the store's pool; back in the pool when dropped.
#[derive(Debug)]
pub struct PooledReader {
    reader: Option<Reader>,
    pool: Arc<Mutex<Vec<Reader>>>,
}

impl std::ops::Deref for PooledReader {
    type Target = Reader;

    fn deref(&self) -> &Reader {
        self.reader.as_ref().expect("present until dropped")
    }
}

impl Drop for PooledReader {
    fn drop(&mut self) {
        let Some(reader) = self.reader.take() else { return };
        if let Ok(mut idle) = self.pool.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(reader);
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Ingest(..) => "Ingest",
            Self::RecordAttempt(..) => "RecordAttempt",
            Self::Replay(..) => "Replay",
            Self::Prune(..) => "Prune",
            Self::PutEndpoint(..) => "PutEndpoint",
            Self::DeleteEndpoint { .. } => "DeleteEndpoint",
            Self::SetEndpointEnabled { .. } => "SetEndpointEnabled",
            Self::Shutdown => "Shutdown",
        })
    }
}

impl Store {
    /// Creates the data directory if needed, opens the database, migrates it, checks that it
    /// can be written, and starts the writer thread. Deliveries created by later commits are
    /// sent to `scheduler`.
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        metrics: Arc<Metrics>,
        scheduler: mpsc::UnboundedSender<DeliveryJob>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDirectory { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source| StoreError::Open { path: path.clone(), source };
        let mut connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        configure(&connection, durability).map_err(open_error)?;
        schema::migrate(&mut connection)
            .map_err(|source| StoreError::Migrate { path: path.clone(), source })?;
        // Proves the database and its directory are writable before anything is accepted.
        connection
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_started_at', ?1)",
                [crate::event::now_millis().to_string()],
            )
            .map_err(open_error)?;
        let disabled: HashSet<String> =
            reader::disabled_endpoints(&connection).map_err(open_error)?.into_keys().collect();
        let deleted = reader::deleted_endpoints(&connection).map_err(open_error)?;
        let (commands, receiver) = mpsc::channel(WRITER_QUEUE_CAPACITY);
        let context = writer::WriterContext { metrics, scheduler, disabled, deleted };
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(connection, receiver, context))
            .map_err(|source| StoreError::DataDirectory { path: data_dir.to_path_buf(), source })?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                path,
                commands,
                writer: Mutex::new(Some(writer)),
                readers: Arc::default(),
            }),
        })
    }

    /// Makes `event` and its deliveries durable; resolves once committed. Never waits for
    /// queue space: a full writer queue is [`StoreError::Busy`] at once (backpressure).
    pub async fn ingest(&self, event: NewEvent) -> Result<IngestReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.commands.try_send(Command::Ingest(Box::new(event), reply)).map_err(|error| {
            match error {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            }
        })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Records an attempt and its delivery's next step; waits for queue space (an outcome is
    /// never dropped) and for the commit.
    pub async fn record_attempt(&self, record: AttemptRecord) -> Result<(), StoreError> {
        self.request(|reply| Command::RecordAttempt(Box::new(record), reply)).await
    }

    /// Makes the selected deliveries pending again (or creates them); they reach the
    /// scheduler after the commit. Answers how many.
    pub async fn replay(&self, selection: ReplaySelection) -> Result<usize, StoreError> {
        self.request(|reply| Command::Replay(selection, reply)).await
    }

    async fn request<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner.commands.send(command(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Deletes one batch of what `retention` allows; events with deliveries still pending or
    /// parked are never deleted.
    pub async fn prune(&self, retention: Retention) -> Result<PruneReport, StoreError> {
        self.request(|reply| Command::Prune(retention, reply)).await
    }

    /// Inserts or replaces a dynamic endpoint; resolves once committed. The row is stored as
    /// given: a replacement keeps the caller's `created_at`, not the old row's.
    pub async fn put_endpoint(&self, endpoint: StoredEndpoint) -> Result<(), StoreError> {
        self.request(|reply| Command::PutEndpoint(Box::new(endpoint), reply)).await
    }

    /// Deletes a dynamic endpoint (a missing one is not an error) and its `endpoint_state`
    /// row; its pending and parked deliveries become dead letters with `last_error = reason`.
    /// Answers how many deliveries were dead-lettered.
    ///
    /// Jobs already handed to the scheduler stay queued there: the delivery runtime is to drop
    /// those of a deleted endpoint. An attempt in flight still records its outcome, but its
    /// [`NextStep::RetryAt`] never brings the dead letter back to pending.
    pub async fn delete_endpoint(&self, id: String, reason: String) -> Result<usize, StoreError> {
        self.request(|reply| Command::DeleteEndpoint { id, reason, reply }).await
    }

    /// Disable (`enabled = false`): records the endpoint disabled (`endpoint_state`,
    /// `disabled_at` = now, `reason`), parks its pending deliveries, and adds it to the
    /// writer's disabled set (so new deliveries are created parked and attempts recorded with
    /// [`NextStep::RetryAt`] park). Answers how many were parked.
    ///
    /// Enable (`enabled = true`): clears the disabled mark, removes it from the disabled set,
    /// makes its parked deliveries pending, due now, and hands them to the scheduler after the
    /// commit (like replay does; the jobs carry no payload). Their attempt counts are kept: a
    /// resumed delivery continues its retry schedule. Answers how many were resumed.
    pub async fn set_endpoint_enabled(
        &self,
        endpoint: String,
        enabled: bool,
        reason: String,
    ) -> Result<usize, StoreError> {
        self.request(|reply| Command::SetEndpointEnabled { endpoint, enabled, reason, reply }).await
    }

    /// A new read-only connection.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::open_file(&self.inner.path)
    }

    /// A read-only connection from the pool (a new one when none is idle), for the many short
    /// reads of the running router: bodies of retried deliveries, admin queries.
    pub fn pooled_reader(&self) -> Result<PooledReader, StoreError> {
        let pool = &self.inner.readers;
        let idle = pool.lock().ok().and_then(|mut idle| idle.pop());
        let reader = match idle {
            Some(reader) => reader,
            None => self.reader()?,
        };
        Ok(PooledReader { reader: Some(reader), pool: pool.clone() })
    }

    /// Commits everything already queued, then stops the writer. Blocks until it has.
    pub fn shutdown(&self) {
        let _ = self.inner.commands.blocking_send(Command::Shutdown);
        let writer = self.inner.writer.lock().map(|mut guard| guard.take());
        if let Ok(Some(writer)) = writer {
            let _ = writer.join();
        }
    }
}

fn configure(connection: &Connection, durability: Durability) -> rusqlite::Result<()> {
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // In WAL mode FULL fsyncs the log on every commit; NORMAL leaves it to the OS (a process
    // crash loses nothing, a power loss may lose the last commits).
    let synchronous = match durability {
        Durability::Fsync => "FULL",
        Durability::Os => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    connection.pragma_update(None, "cache_size", -16_000)?;
    Ok(())
}
