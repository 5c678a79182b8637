//! The durable store: an embedded SQLite database in the data directory.
//!
//! Owns everything that names rusqlite. Writes go through ONE writer thread that groups
//! whatever requests are waiting into one transaction, commits (and fsyncs) once, then answers
//! every waiter: this is what makes durable ingest fast. Reads use their own connections.
//! An answer from [`Store::ingest`] means the event is committed, so the caller may acknowledge.

mod reader;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

pub use reader::Reader;

use crate::config::Durability;
use crate::event::{Event, EventId};
use crate::telemetry::Metrics;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "switchyard.db";
/// Requests waiting for the writer beyond this are refused (HTTP 503), not queued.
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

/// An event to make durable, with how long its dedupe key stays claimed.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub dedupe_window: Option<Duration>,
}

/// What the store did with a [`NewEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestReceipt {
    /// Committed (and fsynced under `durability = "fsync"`).
    Stored(EventId),
    /// Its dedupe key was claimed by this earlier event, within the window; nothing stored.
    Duplicate(EventId),
}

impl IngestReceipt {
    pub fn id(self) -> EventId {
        match self {
            Self::Stored(id) | Self::Duplicate(id) => id,
        }
    }
}

enum Command {
    Ingest(Box<NewEvent>, oneshot::Sender<Result<IngestReceipt, StoreError>>),
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
    commands: SyncSender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Ingest(..) => "Ingest",
            Self::Shutdown => "Shutdown",
        })
    }
}

impl Store {
    /// Creates the data directory if needed, opens the database, migrates it, checks that it
    /// can be written, and starts the writer thread.
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        metrics: Arc<Metrics>,
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
        let (commands, receiver) = mpsc::sync_channel(WRITER_QUEUE_CAPACITY);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::run(connection, receiver, metrics))
            .map_err(|source| StoreError::DataDirectory { path: data_dir.to_path_buf(), source })?;
        Ok(Self {
            inner: Arc::new(StoreInner { path, commands, writer: Mutex::new(Some(writer)) }),
        })
    }

    /// Makes `event` durable; resolves once committed. Never blocks the async runtime:
    /// a full writer queue is [`StoreError::Busy`] at once.
    pub async fn ingest(&self, event: NewEvent) -> Result<IngestReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        match self.inner.commands.try_send(Command::Ingest(Box::new(event), reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StoreError::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A new read-only connection.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::open_file(&self.inner.path)
    }

    /// Commits everything already queued, then stops the writer. Blocks until it has.
    pub fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown);
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
