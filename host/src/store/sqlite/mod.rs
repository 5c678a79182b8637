//! The SQLite backend: an embedded database in the data directory.
//!
//! Owns everything that names rusqlite, and its layout: [`schema`] (tables and migrations),
//! `batch` (group commit on one writer thread), `ops` (one write command each), `sharing`
//! (which body row each delivery of a fan-out sends, and the rows' use counts), [`reader`]
//! (queries on pooled read connections), `bodies` (delivery bodies read back on one thread,
//! in batches), `audit` (the audit log's table), `snapshot_file` (a copy of the database for
//! the cluster's snapshots) and `due` (each endpoint's due-queue in memory, filled from the
//! pending rows at open and by every commit). `logged` applies commands that arrive from a
//! replicated log (the JetStream backend's projection). Which state a delivery takes comes
//! from [`crate::store::lifecycle`].

mod audit;
mod batch;
mod bodies;
mod due;
mod logged;
mod ops;
mod reader;
mod schema;
mod sharing;
pub(in crate::store) mod snapshot_file;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

pub(super) use self::due::SqliteDueQueue;
pub(super) use self::logged::{Command, Outcome};

use self::batch::{Message, Request, WriteOp};
use self::bodies::BodyReads;
use self::reader::{Reader, Readers};
use super::{
    Activity, Answer, AttemptRecord, AttemptRow, AuditEntry, AuditQuery, AuditRecord, Backend,
    DeliveryId, DeliveryQuery, DeliveryState, DeliverySummary, DisabledEndpoints, DueQueue,
    EndpointActivity, EventQuery, EventSummary, IngestReceipt, LogPosition, NewEvent, Payload,
    PruneReport, ReplaySelection, Retention, StoreError, StoredEndpoint,
};
use crate::config::Durability;
use crate::event::{Event, EventId};
use crate::telemetry::Metrics;

/// The database file inside the data directory.
pub(in crate::store) const DATABASE_FILE: &str = "switchyard.db";
/// Ingest requests waiting for the writer beyond this are refused (HTTP 503), not queued. It
/// also bounds, in practice, the jobs a commit hands the due-queues (their feeds are unbounded).
const WRITER_QUEUE_CAPACITY: usize = 4096;
/// The page size of a new database. SQLite's default, 4 KiB, holds three 1 KiB bodies and
/// leaves ~300 bytes of each body's share unused; 16 KiB holds fifteen (~60 bytes unused
/// each), which takes a 1 KiB event with one delivery and its attempt from ~1.70 to ~1.43 KB.
/// The price: every commit writes whole pages, so the tails of the small b-trees (events,
/// deliveries, attempts and their indexes) make ~2× the WAL bytes per event; CPU per event
/// stays the same. An existing database keeps the page size it was made with: converting one
/// takes the router stopped and `PRAGMA journal_mode = DELETE; PRAGMA page_size = 16384;
/// VACUUM; PRAGMA journal_mode = WAL` (a database in WAL mode cannot change its page size, not
/// even by the `VACUUM` of a scrub).
const PAGE_SIZE: i64 = 16_384;
/// The WAL is copied back into the database once it holds this many bytes: SQLite's default
/// (1,000 pages) with 4 KiB pages, kept in bytes whatever the page size, so that the WAL file
/// does not grow with it.
const WAL_CHECKPOINT_BYTES: i64 = 4_096_000;
/// The write connection's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = 2_000;

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Read(Box::new(error))
    }
}

/// A delivery state as stored: its integer code.
fn code(state: DeliveryState) -> i64 {
    match state {
        DeliveryState::Pending => 0,
        DeliveryState::Delivered => 1,
        DeliveryState::Dead => 2,
        DeliveryState::Parked => 3,
    }
}

fn state_of(code: i64) -> Option<DeliveryState> {
    DeliveryState::ALL.into_iter().find(|state| self::code(*state) == code)
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

#[derive(Debug)]
pub(super) struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Message>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: Readers,
    bodies: BodyReads,
    dispatch: Arc<due::Dispatch>,
}

impl SqliteStore {
    /// Creates the data directory if needed, opens the database, migrates it, checks that it
    /// can be written, loads the pending deliveries and starts the writer thread. Each
    /// endpoint's due-queue keeps at most [`due::KEPT_JOBS`] jobs in memory.
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        Self::open_keeping(data_dir, durability, metrics, Some(due::KEPT_JOBS))
    }

    /// [`SqliteStore::open`], each due-queue keeping at most `kept_jobs` jobs in memory (the
    /// rest read back from the database as it drains), or every job with `None`: a cluster
    /// node's projection, whose queues are claimed with every pending delivery of their
    /// endpoint when its partition becomes the node's.
    pub(super) fn open_keeping(
        data_dir: &Path,
        durability: Durability,
        metrics: Arc<Metrics>,
        kept_jobs: Option<usize>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDirectory { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(DATABASE_FILE);
        let open_error = |source: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            source: source.into(),
        };
        let mut connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        configure(&connection, durability).map_err(open_error)?;
        schema::migrate(&mut connection)
            .map_err(|source| StoreError::Migrate { path: path.clone(), source: source.into() })?;
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
        let readers = Readers::new(path.clone());
        let bound = kept_jobs.map(|kept_jobs| due::Bound { kept_jobs, readers: readers.clone() });
        let dispatch = Arc::new(due::Dispatch::new(bound));
        // Loaded before the writer starts: every later job reaches the queues from a commit,
        // so none is queued twice.
        let mut pending = 0_usize;
        Reader::open(&path)?.pending_deliveries(|job| {
            pending += 1;
            dispatch.load(job);
        })?;
        tracing::info!(pending, "loaded pending deliveries");
        let (writer, messages) = mpsc::channel(WRITER_QUEUE_CAPACITY);
        let state = batch::WriterState {
            metrics,
            dispatch: dispatch.clone(),
            disabled,
            deleted,
            now: 0,
            jobs: Vec::new(),
            stored_events: 0,
            write_error: None,
        };
        let thread_error =
            |source| StoreError::DataDirectory { path: data_dir.to_path_buf(), source };
        let bodies = BodyReads::start(path.clone()).map_err(thread_error)?;
        let writer_thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || batch::run(connection, messages, state))
            .map_err(thread_error)?;
        let writer_thread = Mutex::new(Some(writer_thread));
        Ok(Self { path, writer, writer_thread, readers, bodies, dispatch })
    }

    /// Events whose dedupe key is still claimed at `now` (unix ms), with when it expires
    /// (what `store migrate` copies besides open deliveries).
    pub fn live_dedupe_keys(&self, now: u64) -> Answer<'_, Vec<(EventId, u64)>> {
        self.read(move |reader| reader.live_dedupe_keys(now))
    }

    /// The order key a delivery was stored with (issue 17's per-key ordering); `None` for an
    /// unordered or unknown delivery (what `store migrate` carries over with each delivery).
    pub fn order_key(&self, delivery_id: DeliveryId) -> Answer<'_, Option<String>> {
        self.read(move |reader| reader.order_key(delivery_id))
    }

    /// Queues `op` for the writer, waiting for queue space, and answers once committed.
    fn write<W: WriteOp>(&self, op: W) -> Answer<'_, W::Output> {
        Box::pin(async move {
            let (message, answer) = Request::message(op);
            self.writer.send(message).await.map_err(|_| StoreError::Closed)?;
            answered(answer).await
        })
    }

    /// Runs `query` on a pooled read connection, off the async threads.
    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Answer<'_, T> {
        let readers = self.readers.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || readers.with(query))
                .await
                .map_err(|error| StoreError::Read(Box::new(error)))?
        })
    }

    /// Applies `command`, the log's entry at `sequence` stamped `now`, after every command
    /// submitted before it; waits for queue space, not for the commit: the answer arrives on
    /// the returned future (`Skipped` when that sequence was applied already).
    pub(super) async fn submit_logged(
        &self,
        sequence: u64,
        now: u64,
        command: Command,
    ) -> Result<impl Future<Output = Result<Outcome, StoreError>> + Send + 'static, StoreError>
    {
        let (message, answer) = Request::message(logged::Logged::new(sequence, now, command));
        self.writer.send(message).await.map_err(|_| StoreError::Closed)?;
        Ok(answered(answer))
    }

    /// Commits will make jobs for endpoints whose queue another process holds (a cluster
    /// node's projection): they are not worth a warning.
    pub(super) fn expect_unclaimed_jobs(&self) {
        self.dispatch.expect_unclaimed();
    }

    /// The last log entry this database applied (0: none).
    pub(super) fn log_sequence(&self) -> Result<u64, StoreError> {
        Reader::open(&self.path)?.log_sequence()
    }

    /// The queue of `endpoint` (replacing an earlier one), holding every pending delivery of
    /// it that the database has now. Reads the database: call it off the hot path.
    pub(super) fn due_queue_with_pending(
        &self,
        endpoint: &str,
    ) -> Result<SqliteDueQueue, StoreError> {
        // Claimed first, then read: a commit in between reaches the queue, and a job met
        // twice is queued once.
        let mut queue = self.dispatch.claim(endpoint);
        queue.add(Reader::open(&self.path)?.pending_deliveries_of(endpoint)?);
        Ok(queue)
    }

    #[cfg(test)]
    fn idle_readers(&self) -> usize {
        self.readers.idle()
    }
}

async fn answered<T>(answer: batch::Waiter<T>) -> Result<T, StoreError> {
    answer.await.map_err(|_| StoreError::Closed)?
}

impl Backend for SqliteStore {
    fn ingest(&self, event: NewEvent) -> Answer<'_, IngestReceipt> {
        // Never waits for queue space: a full queue is `Busy` at once (backpressure).
        let (message, answer) = Request::message(ops::Ingest(event));
        let queued = self.writer.try_send(message).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        });
        Box::pin(async move {
            queued?;
            answered(answer).await
        })
    }

    fn record_attempt(&self, record: AttemptRecord) -> Answer<'_, ()> {
        self.write(ops::RecordAttempt(record))
    }

    fn replay(&self, selection: ReplaySelection) -> Answer<'_, usize> {
        self.write(ops::Replay(selection))
    }

    fn prune(&self, retention: Retention) -> Answer<'_, PruneReport> {
        self.write(ops::Prune(retention))
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> Answer<'_, ()> {
        self.write(ops::PutEndpoint(endpoint))
    }

    /// Rebuilds the database file (no free page keeps old rows), then checkpoints the WAL and
    /// truncates it to nothing (no old frame keeps them either).
    fn scrub(&self) -> Answer<'_, ()> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let connection = Connection::open(&path).map_err(|source| StoreError::Open {
                    path: path.clone(),
                    source: source.into(),
                })?;
                connection.pragma_update(None, "busy_timeout", 5000)?;
                connection.execute_batch("VACUUM")?;
                connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(())
            })
            .await
            .map_err(|error| StoreError::Read(Box::new(error)))?
        })
    }

    fn delete_endpoint(&self, id: String, reason: String) -> Answer<'_, usize> {
        self.write(ops::DeleteEndpoint { id, reason })
    }

    fn set_endpoint_enabled(
        &self,
        endpoint: String,
        enabled: bool,
        reason: String,
    ) -> Answer<'_, usize> {
        self.write(ops::SetEndpointEnabled { endpoint, enabled, reason })
    }

    fn append_audit(&self, entry: AuditEntry) -> Answer<'_, LogPosition> {
        self.write(audit::AppendAudit(entry))
    }

    fn prune_audit(&self, before: u64, batch: usize) -> Answer<'_, usize> {
        self.write(audit::PruneAudit { before, batch })
    }

    fn list_audit(&self, query: AuditQuery) -> Answer<'_, Vec<AuditRecord>> {
        self.read(move |reader| reader.list_audit(&query))
    }

    fn event(&self, id: EventId) -> Answer<'_, Option<Event>> {
        self.read(move |reader| reader.event(id))
    }

    fn list_events(&self, query: EventQuery) -> Answer<'_, Vec<EventSummary>> {
        self.read(move |reader| reader.list_events(&query))
    }

    fn events_received_between(
        &self,
        since: u64,
        until: u64,
        limit: u32,
    ) -> Answer<'_, Vec<Event>> {
        self.read(move |reader| reader.events_received_between(since, until, limit))
    }

    fn count_events(&self) -> Answer<'_, u64> {
        self.read(|reader| reader.count_events())
    }

    fn activity_since(&self, since: u64, limit: u32) -> Answer<'_, Activity> {
        self.read(move |reader| reader.activity_since(since, limit))
    }

    fn endpoint_activity(
        &self,
        endpoints: Vec<String>,
        since: u64,
        bucket_millis: u64,
    ) -> Answer<'_, Vec<EndpointActivity>> {
        self.read(move |reader| reader.endpoint_activity(&endpoints, since, bucket_millis))
    }

    fn list_deliveries(&self, query: DeliveryQuery) -> Answer<'_, Vec<DeliverySummary>> {
        self.read(move |reader| reader.list_deliveries(&query))
    }

    fn delivery(&self, id: DeliveryId) -> Answer<'_, Option<DeliverySummary>> {
        self.read(move |reader| reader.delivery(id))
    }

    fn count_deliveries(&self, state: DeliveryState, endpoint: Option<String>) -> Answer<'_, u64> {
        self.read(move |reader| reader.count_deliveries(state, endpoint.as_deref()))
    }

    fn attempts(&self, id: DeliveryId) -> Answer<'_, Vec<AttemptRow>> {
        self.read(move |reader| reader.attempts(id))
    }

    fn payload(&self, id: DeliveryId) -> Answer<'_, Option<Payload>> {
        Box::pin(self.bodies.read(id))
    }

    fn endpoints(&self) -> Answer<'_, Vec<StoredEndpoint>> {
        self.read(|reader| reader.endpoints())
    }

    fn endpoint(&self, id: String) -> Answer<'_, Option<StoredEndpoint>> {
        self.read(move |reader| reader.endpoint(&id))
    }

    fn disabled_endpoints(&self) -> Answer<'_, DisabledEndpoints> {
        self.read(|reader| reader.disabled_endpoints())
    }

    fn due_queue(&self, endpoint: &str) -> Box<dyn DueQueue> {
        Box::new(self.dispatch.claim(endpoint))
    }

    fn shutdown(&self) {
        let _ = self.writer.blocking_send(Message::Shutdown);
        let writer = self.writer_thread.lock().map(|mut guard| guard.take());
        if let Ok(Some(writer)) = writer {
            let _ = writer.join();
        }
    }
}

fn configure(connection: &Connection, durability: Durability) -> rusqlite::Result<()> {
    // Only a new database takes it: it must come before the first table, and before the WAL
    // (which fixes the page size too). A no-op on an existing database.
    connection.pragma_update(None, "page_size", PAGE_SIZE)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
    // The checkpoint stays inside the commit that crosses the threshold: run on a thread of its
    // own, it made the median commit slower (two syncs contending for the disk) and could not
    // bound the WAL under a steady load without stopping the writer anyway (the WAL starts over
    // only when the writer begins a transaction after a complete checkpoint).
    connection.pragma_update(
        None,
        "wal_autocheckpoint",
        (WAL_CHECKPOINT_BYTES / page_size).max(1),
    )?;
    // In WAL mode FULL fsyncs the log on every commit; NORMAL leaves it to the OS (a process
    // crash loses nothing, a power loss may lose the last commits).
    let synchronous = match durability {
        Durability::Fsync => "FULL",
        Durability::Os => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "busy_timeout", 5000)?;
    // The writer's page cache: SQLite walks all of its hash table at the end of every commit
    // (6.6 % of the router's CPU in S1 at 16 MB, 0.5 % at 2 MB), more than re-reading from the
    // OS's cache what a smaller one drops costs (1.9 %); a larger one also costs memory.
    connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // What a write replaces or deletes is zeroed inside its page, so a record in clear that was
    // sealed later (or deleted) does not linger in the file. `FAST` skips zeroing whole free
    // pages, which pruning makes by the thousand.
    connection.pragma_update(None, "secure_delete", "FAST")?;
    Ok(())
}
