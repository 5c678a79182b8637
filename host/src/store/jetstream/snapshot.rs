//! Trimming the log: snapshots of the projection, restoring one, and purging the log below them.
//!
//! Owns the snapshot bucket (`<prefix>_snapshots`, a JetStream Object Store with
//! `store.replicas` copies), the pure rules (when a snapshot is due, how far the log may be
//! purged, an object's name from the log sequence it reflects), the snapshot task that the
//! owner of [`SNAPSHOT_PARTITION`] runs, and [`restore`], which a starting node runs before
//! it opens its projection.
//!
//! A snapshot is the projection copied with SQLite's `VACUUM INTO` (one consistent read, so
//! it reflects exactly the log sequence recorded in it), with the only node-local row removed
//! (`meta.last_started_at`; the node's id lives in a file beside the database, not in it): a
//! projection holds only what applying the log made. Once a snapshot is stored on a quorum,
//! snapshots beyond the newest [`KEPT`] are deleted, and the log is purged up to the older
//! kept snapshot's sequence, but never past the entries a live node has not applied yet (each
//! node's heartbeat carries its applied sequence), so a running node never misses a command.
//!
//! A node whose projection is behind the log's first entry (a new node with an empty data
//! directory, or one stopped while the log was trimmed past it) restores the newest snapshot
//! at start, then replays the log from the entry after it. A running node that finds entries
//! missing (it was cut off from the cluster longer than a heartbeat while the log was
//! trimmed) stops applying and answers `/readyz` 503 until it is restarted, which restores;
//! it never applies the log with a hole in it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use futures_util::StreamExt;

use super::log::{Log, retry_read, retry_setup};
use super::ownership::Ownership;
use crate::event::now_millis;
use crate::store::StoreError;
use crate::store::sqlite::{DATABASE_FILE, snapshot_file};

/// The partition whose owner writes the snapshots (the one that appends retention passes).
pub const SNAPSHOT_PARTITION: u16 = 0;
/// Snapshots kept; the log is purged below the oldest of them.
pub const KEPT: usize = 2;
/// How often the snapshot task looks whether one is due, at most.
const CHECK: Duration = Duration::from_secs(5);
/// Object names: this, then the sequence, zero-padded so that names sort by it.
const NAME_PREFIX: &str = "projection-";
/// The metadata key holding when a snapshot was taken (unix ms).
const TAKEN_AT: &str = "taken_at";
/// The file a snapshot is written to or downloaded into, in the projection's directory.
const WORK_FILE: &str = "snapshot.partial";

/// One stored snapshot: the log sequence it reflects and when it was taken (unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub sequence: u64,
    pub taken_at: u64,
}

/// When to write a snapshot: `store.snapshot_every` and `store.snapshot_entries`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub every: Duration,
    pub entries: u64,
}

/// An object's name for a snapshot at `sequence`.
pub fn object_name(sequence: u64) -> String {
    format!("{NAME_PREFIX}{sequence:020}")
}

/// The sequence an object named `name` reflects; `None` for any other object.
pub fn sequence_of(name: &str) -> Option<u64> {
    name.strip_prefix(NAME_PREFIX)?.parse().ok()
}

/// Whether a snapshot is due at `now` (unix ms) for a projection at `applied`, the newest
/// stored one being `newest`: the log has grown since, and either `schedule.every` has passed
/// or `schedule.entries` were appended.
pub fn due(newest: Option<Snapshot>, applied: u64, now: u64, schedule: Schedule) -> bool {
    let Some(newest) = newest else { return applied > 0 };
    if applied <= newest.sequence {
        return false;
    }
    let every = u64::try_from(schedule.every.as_millis()).unwrap_or(u64::MAX);
    now.saturating_sub(newest.taken_at) >= every || applied - newest.sequence >= schedule.entries
}

/// The last log entry that may be purged: none before [`KEPT`] snapshots exist; then the
/// oldest kept one's sequence, lowered to what every live node has applied.
pub fn purge_through(kept: &[Snapshot], live_applied: &[u64]) -> Option<u64> {
    if kept.len() < KEPT {
        return None;
    }
    let oldest = kept.iter().map(|snapshot| snapshot.sequence).min()?;
    let slowest = live_applied.iter().copied().min().unwrap_or(oldest);
    Some(oldest.min(slowest)).filter(|through| *through > 0)
}

/// Opens (creating it if missing) the snapshot bucket.
pub async fn bucket(
    context: &jetstream::Context,
    prefix: &str,
    replicas: usize,
) -> Result<object_store::ObjectStore, StoreError> {
    let config = object_store::Config {
        bucket: format!("{prefix}_snapshots"),
        num_replicas: replicas,
        ..object_store::Config::default()
    };
    retry_setup("create the snapshot bucket", || context.create_object_store(config.clone())).await
}

/// Every snapshot stored, newest first.
pub async fn stored(bucket: &object_store::ObjectStore) -> Result<Vec<Snapshot>, StoreError> {
    retry_read("the snapshot list", || list(bucket)).await
}

async fn list(bucket: &object_store::ObjectStore) -> Result<Vec<Snapshot>, async_nats::Error> {
    let mut list = bucket.list().await?;
    let mut snapshots = Vec::new();
    while let Some(info) = list.next().await {
        let info = info?;
        let Some(sequence) = sequence_of(&info.name) else { continue };
        let taken_at =
            info.metadata.get(TAKEN_AT).and_then(|value| value.parse().ok()).unwrap_or(0);
        snapshots.push(Snapshot { sequence, taken_at });
    }
    snapshots.sort_by_key(|snapshot| std::cmp::Reverse(snapshot.sequence));
    Ok(snapshots)
}

/// The log sequence the database in `directory` has applied; 0 when it has none.
pub fn local_sequence(directory: &Path) -> Result<u64, StoreError> {
    snapshot_file::log_sequence_of(&directory.join(DATABASE_FILE))
}

/// Before the projection in `directory` opens: when it is empty or behind `first` (the log's
/// first entry, the ones before it purged), replaces it with the newest snapshot. Answers the
/// sequence the projection then reflects; refuses when entries it needs are gone and no
/// snapshot covers them.
pub async fn restore(
    bucket: &object_store::ObjectStore,
    directory: &Path,
    first: u64,
) -> Result<u64, StoreError> {
    let local = local_sequence(directory)?;
    let newest = stored(bucket).await?.into_iter().next();
    let missing = local + 1 < first;
    let Some(newest) = newest.filter(|newest| newest.sequence > local && (local == 0 || missing))
    else {
        if missing {
            return Err(StoreError::Write(format!(
                "the store's log starts at entry {first} but this node's projection has applied \
                 only up to {local}, and no snapshot covers the entries in between"
            )));
        }
        return Ok(local);
    };
    if newest.sequence + 1 < first {
        return Err(StoreError::Write(format!(
            "the newest snapshot reflects log entry {} but the log starts at {first}",
            newest.sequence
        )));
    }
    let work = directory.join(WORK_FILE);
    let name = object_name(newest.sequence);
    let mut object = retry_read("the newest snapshot", || bucket.get(&name)).await?;
    let mut file =
        tokio::fs::File::create(&work).await.map_err(|source| file_error(&work, source))?;
    tokio::io::copy(&mut object, &mut file).await.map_err(|source| file_error(&work, source))?;
    file.sync_all().await.map_err(|source| file_error(&work, source))?;
    drop(file);
    let reflected = snapshot_file::log_sequence_of(&work)?;
    if reflected != newest.sequence {
        return Err(StoreError::Read(
            format!("snapshot `{name}` reflects log entry {reflected}, not {}", newest.sequence)
                .into(),
        ));
    }
    let database = directory.join(DATABASE_FILE);
    for suffix in ["-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", database.display()));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(file_error(&path, source)),
        }
    }
    std::fs::rename(&work, &database).map_err(|source| file_error(&database, source))?;
    tracing::info!(
        sequence = newest.sequence,
        previous = local,
        first,
        "projection restored from a snapshot"
    );
    Ok(newest.sequence)
}

/// What the snapshot task works with.
pub(in crate::store) struct Snapshotter {
    pub bucket: object_store::ObjectStore,
    pub stream: String,
    pub context: jetstream::Context,
    pub nodes: kv::Store,
    pub directory: PathBuf,
    pub ownership: Arc<Ownership>,
    pub log: Arc<Log>,
    pub schedule: Schedule,
    /// Held while a snapshot is written and the log trimmed: the scheduled task and a scrub
    /// share the work file.
    pub writing: tokio::sync::Mutex<()>,
}

impl Snapshotter {
    /// Forever: while this node owns [`SNAPSHOT_PARTITION`], writes a snapshot when one is
    /// due, then trims.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(CHECK.min(self.schedule.every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.ownership.owns(SNAPSHOT_PARTITION) {
                continue;
            }
            if let Err(error) = self.step().await {
                tracing::warn!(%error, "snapshot of the store's projection failed");
            }
        }
    }

    async fn step(&self) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        let snapshots = stored(&self.bucket).await?;
        // The list may have taken a while (it is retried): another node may own it by now.
        if !self.ownership.owns(SNAPSHOT_PARTITION) {
            return Ok(());
        }
        if !due(snapshots.first().copied(), self.log.applied(), now_millis(), self.schedule) {
            return Ok(());
        }
        let sequence = self.write(&snapshots).await?;
        let mut kept = vec![Snapshot { sequence, taken_at: now_millis() }];
        for older in snapshots {
            if older.sequence >= sequence {
                continue;
            }
            if kept.len() < KEPT {
                kept.push(older);
            } else {
                self.delete(older.sequence).await;
            }
        }
        let live = self.live_applied().await?;
        let Some(through) = purge_through(&kept, &live) else { return Ok(()) };
        self.purge_through(through).await
    }

    /// After endpoint records were sealed anew (`store rotate-key`, every router stopped): a
    /// snapshot of the projection as it is now becomes the only one, and the log is purged
    /// through it, so that no stored copy keeps a record as it was before. Running it again
    /// changes nothing more.
    pub async fn replace_all(&self) -> Result<(), StoreError> {
        let _writing = self.writing.lock().await;
        let snapshots = stored(&self.bucket).await?;
        let sequence = match snapshots.first() {
            Some(newest) if newest.sequence >= self.log.applied() => newest.sequence,
            _ => self.write(&snapshots).await?,
        };
        for older in snapshots.iter().filter(|older| older.sequence < sequence) {
            self.delete(older.sequence).await;
        }
        self.purge_through(sequence).await
    }

    async fn delete(&self, sequence: u64) {
        if let Err(error) = self.bucket.delete(object_name(sequence)).await {
            tracing::warn!(%error, sequence, "cannot delete an old snapshot");
        }
    }

    /// Purges the log's entries up to `through` (none when they are gone already).
    async fn purge_through(&self, through: u64) -> Result<(), StoreError> {
        let stream =
            retry_read("where the log starts", || self.context.get_stream(&self.stream)).await?;
        let first = stream.cached_info().state.first_sequence;
        if through < first {
            return Ok(());
        }
        let purged = stream
            .purge()
            .sequence(through + 1)
            .await
            .map_err(|error| StoreError::Write(format!("trimming the log: {error}")))?;
        tracing::info!(through, purged = purged.purged, "log trimmed below the kept snapshots");
        Ok(())
    }

    /// Copies the projection and stores the copy; answers the sequence it reflects (the
    /// newest stored one's, when the projection has not moved past it).
    async fn write(&self, snapshots: &[Snapshot]) -> Result<u64, StoreError> {
        let work = self.directory.join(WORK_FILE);
        let directory = self.directory.clone();
        let copying = work.clone();
        let sequence = tokio::task::spawn_blocking(move || {
            snapshot_file::copy_projection(&directory.join(DATABASE_FILE), &copying)
        })
        .await
        .map_err(|error| StoreError::Write(format!("the snapshot copy stopped: {error}")))??;
        if let Some(newest) = snapshots.first().filter(|newest| newest.sequence >= sequence) {
            let _ = std::fs::remove_file(&work);
            return Ok(newest.sequence);
        }
        let taken_at = now_millis();
        let metadata = object_store::ObjectMetadata {
            name: object_name(sequence),
            metadata: [(TAKEN_AT.to_owned(), taken_at.to_string())].into(),
            ..object_store::ObjectMetadata::default()
        };
        let mut file =
            tokio::fs::File::open(&work).await.map_err(|source| file_error(&work, source))?;
        let put = self.bucket.put(metadata, &mut file).await;
        drop(file);
        let _ = std::fs::remove_file(&work);
        let info =
            put.map_err(|error| StoreError::Write(format!("storing a snapshot: {error}")))?;
        tracing::info!(sequence, bytes = info.size, "snapshot of the projection stored");
        Ok(sequence)
    }

    /// What each live node has applied, from its heartbeat.
    async fn live_applied(&self) -> Result<Vec<u64>, StoreError> {
        let mut keys = self.nodes.keys().await.map_err(read_error)?;
        let mut applied = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(read_error)?;
            let value = self.nodes.get(&key).await.map_err(read_error)?;
            // A heartbeat without a sequence (an older node) holds the log back entirely.
            let sequence = value
                .and_then(|value| std::str::from_utf8(&value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            applied.push(sequence);
        }
        Ok(applied)
    }
}

fn read_error(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Read(Box::new(error))
}

/// A file of a snapshot being written or restored could not be used.
fn file_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Write(format!("snapshot file `{}`: {source}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: Schedule = Schedule { every: Duration::from_secs(600), entries: 1000 };

    fn snapshot(sequence: u64, taken_at: u64) -> Snapshot {
        Snapshot { sequence, taken_at }
    }

    #[test]
    fn names_sort_by_sequence_and_read_back() {
        assert_eq!(sequence_of(&object_name(42)), Some(42));
        assert!(object_name(9) < object_name(10));
        assert_eq!(sequence_of("something-else"), None);
    }

    #[test]
    fn a_snapshot_is_due_when_the_log_grew_and_time_or_entries_say_so() {
        assert!(!due(None, 0, 0, SCHEDULE), "an empty log needs none");
        assert!(due(None, 1, 0, SCHEDULE), "the first one at once");
        let newest = Some(snapshot(500, 1_000));
        assert!(!due(newest, 500, 10_000_000, SCHEDULE), "nothing new");
        assert!(!due(newest, 501, 1_000 + 599_999, SCHEDULE));
        assert!(due(newest, 501, 1_000 + 600_000, SCHEDULE), "time");
        assert!(due(newest, 1_500, 1_001, SCHEDULE), "entries");
    }

    #[test]
    fn the_log_is_purged_below_the_oldest_kept_snapshot_and_no_live_node() {
        assert_eq!(purge_through(&[snapshot(100, 0)], &[]), None, "one snapshot: nothing yet");
        let kept = [snapshot(300, 0), snapshot(100, 0)];
        assert_eq!(purge_through(&kept, &[400, 350]), Some(100));
        assert_eq!(purge_through(&kept, &[400, 60]), Some(60), "a live node behind holds it");
        assert_eq!(purge_through(&kept, &[0]), None, "a node without a sequence holds it all");
    }
}
