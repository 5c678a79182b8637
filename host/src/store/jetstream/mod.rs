//! The JetStream backend: cluster mode, several Switchyard nodes sharing one NATS JetStream
//! cluster and no other database.
//!
//! # Design: a replicated command log and a projection on every node
//!
//! Every write of the [`Backend`] trait becomes one command, appended as one message to one
//! stream (`<prefix>_log`, subject `<prefix>.log`, `store.replicas` copies, file storage).
//! JetStream acknowledges a message once a quorum of the stream's servers has it, so an
//! ingest (the event, its splits and all its deliveries, one message) is committed on a
//! quorum all or nothing, with no batch API needed. Every node follows the stream with an
//! ordered consumer and applies each command, in stream order, to a local SQLite database in
//! its data directory (the *projection*), with the SQLite backend's own write code
//! ([`super::sqlite`]), at the time the command was issued and with the stream sequence
//! recorded in the same transaction. Applying is deterministic, so every projection holds the
//! same rows: the same delivery ids, the same dedupe answers, the same cursors on every node.
//! A writer answers once its own node's projection has applied its command (what it answers
//! is what applying it answered: `Duplicate`, a count, a refusal), so a node reads its own
//! writes. Queries read the local projection: consistent with what this node has applied,
//! behind other nodes' writes by the follow lag (milliseconds on a healthy cluster).
//!
//! Why this design: it is the smallest one that keeps every promise of the SQLite backend
//! (the lifecycle, queries and cursors come for free, and the conformance suite runs
//! unchanged), it needs no JetStream feature younger than 2.10 (no atomic batch, which
//! async-nats does not expose, no scheduler), and the projection is a cache: deleting the
//! data directory rebuilds it from the newest snapshot and the stream.
//!
//! Its costs: all writes of the cluster go through one stream leader (one Raft group); the
//! log keeps what came after the older of two kept snapshots of the projection ([`snapshot`]:
//! the owner of partition 0 writes one every `store.snapshot_every`, a new node restores the
//! newest and replays the rest); each node stores and applies everything
//! (projection disk and CPU per node grow with cluster traffic, not with the node's share);
//! an ingest message carries the bodies of its event and of every delivery whose body differs
//! from its event's, base64-encoded, so servers need `max_payload` above 4/3 of the largest
//! body plus its fan-out; endpoint specs (with their signing keys) are in the stream as the
//! admin API stores them.
//!
//! # Delivery: partitions owned through leases
//!
//! Endpoints are hashed into [`ownership::PARTITIONS`] partitions; each partition is owned by
//! one node at a time through a lease (a key in the `<prefix>_leases` KV bucket, expiring
//! after [`ownership::LEASE_TIME`] unless renewed by compare-and-set). Live nodes heartbeat
//! into `<prefix>_nodes`; each partition's preferred owner among them is chosen by rendezvous
//! hashing, so nodes spread the partitions and a node leaving moves only its own. Only the
//! owner's due-queue for an endpoint hands out jobs ([`due`]), so today's per-endpoint worker
//! (and its `max_in_flight`, exact) runs on exactly one node. Before a node hands out a
//! partition's jobs it catches its projection up with the log, so it sees every outcome its
//! previous owner recorded.
//!
//! Failure windows (what can be exceeded or duplicated while ownership moves):
//! - A clean handover (a node joins, or leaves with a clean shutdown) stops the old owner's
//!   queue before the lease is released, but attempts already under way there finish there:
//!   until they do, the new owner may start attempts of the same endpoint, so its
//!   `max_in_flight` can be exceeded by up to the attempts under way on the old owner, for at
//!   most one attempt timeout; and a delivery under way on the old owner is pending in the
//!   log until its outcome lands, so the new owner may attempt it once more (a duplicate,
//!   at-least-once).
//! - A node that dies holds its leases until they expire ([`ownership::LEASE_TIME`], 10 s):
//!   its partitions' deliveries wait that long; then the new owner attempts its deliveries
//!   that were under way (duplicates bounded by the dead node's attempts in flight).
//! - A node that cannot renew (cut off from the cluster) stops handing out jobs after half a
//!   lease time, before any other node may take the lease; its attempts under way finish and
//!   their outcomes are appended once it reconnects.
//! - Writes need the stream's quorum: during a leader election (4–9 s measured) appends fail
//!   and ingest answers 503; nothing acknowledged is lost.

mod command;
mod due;
pub mod durability;
mod log;
pub mod ownership;
pub mod snapshot;
#[cfg(test)]
#[allow(dead_code)] // Shared with the end-to-end tests, which use all of it.
#[path = "../../../../tests/src/cluster.rs"]
pub(super) mod test_cluster;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_nats::jetstream::{self, kv};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use self::log::{Log, retry_setup};
use self::ownership::{LEASE_TIME, Leases, Ownership, TICK};
use super::sqlite::{Command, Outcome, SqliteStore};
use super::{
    Activity, Answer, AttemptRecord, AttemptRow, AuditEntry, AuditQuery, AuditRecord, Backend,
    DeliveryId, DeliveryQuery, DeliveryState, DeliverySummary, DisabledEndpoints, DueQueue,
    EndpointActivity, EventQuery, EventSummary, IngestReceipt, LogPosition, NewEvent, Payload,
    PruneReport, ReplaySelection, Retention, StoreError, StoredEndpoint,
};
use crate::config::{Durability, JetStreamStore as Settings};
use crate::event::{Event, EventId};
use crate::telemetry::Metrics;

/// Ingests waiting for the log beyond this are refused at once ([`StoreError::Busy`]).
const INGESTS_IN_FLIGHT: usize = 4096;
/// The partition whose owner appends the retention passes.
const RETENTION_PARTITION: u16 = snapshot::SNAPSHOT_PARTITION;
/// How long an ingest tries to append while the log has no leader before answering 503.
const INGEST_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);
/// How long other writes (attempt outcomes, admin changes) try: an election lasts 4–9 s.
const WRITE_BUDGET: std::time::Duration = std::time::Duration::from_secs(15);
/// The file in the data directory holding this node's id, kept across restarts so that a
/// restarted node takes its own leases back at once.
const NODE_ID_FILE: &str = "node-id";

pub struct JetStreamStore {
    log: Arc<Log>,
    projection: Arc<SqliteStore>,
    ownership: Arc<Ownership>,
    ingest_slots: Arc<Semaphore>,
    leases: Arc<tokio::sync::Mutex<Leases>>,
    snapshotter: Arc<snapshot::Snapshotter>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl JetStreamStore {
    /// Opens the cluster store: the projection in `data_dir`, the log stream and the lease
    /// buckets (created when missing), then takes the partitions this node should own and are
    /// free, each once the projection has caught up with the log (it catches up in the
    /// background; `/readyz` says how far). Must run inside a Tokio runtime.
    pub async fn open(
        settings: &Settings,
        client: async_nats::Client,
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let directory = data_dir.join("jetstream").join(&settings.prefix);
        std::fs::create_dir_all(&directory)
            .map_err(|source| StoreError::DataDirectory { path: directory.clone(), source })?;
        let node = node_id(&directory)?;
        let context = jetstream::new(client);
        // A projection behind the log's first entry (trimmed), or empty, starts from the
        // newest snapshot instead.
        let stream = log::stream_config(&settings.prefix, settings.replicas);
        let created =
            retry_setup("create the log stream", || context.get_or_create_stream(stream.clone()))
                .await?;
        let first = created.cached_info().state.first_sequence;
        let snapshots = snapshot::bucket(&context, &settings.prefix, settings.replicas).await?;
        snapshot::restore(&snapshots, &directory, first).await?;
        // A cache that the log rebuilds: the OS may keep its last writes.
        let projection =
            Arc::new(SqliteStore::open_keeping(&directory, Durability::Os, metrics.clone(), None)?);
        projection.expect_unclaimed_jobs();
        let applied = projection.log_sequence()?;
        let log = Arc::new(
            Log::open(
                context.clone(),
                &settings.prefix,
                settings.replicas,
                projection.clone(),
                applied,
                metrics.clone(),
            )
            .await?,
        );
        let follower = tokio::spawn(log.clone().follow());
        let bucket = |name: &str| kv::Config {
            bucket: format!("{}_{name}", settings.prefix),
            history: 1,
            max_age: LEASE_TIME,
            num_replicas: settings.replicas,
            ..kv::Config::default()
        };
        let nodes =
            retry_setup("create the node bucket", || context.create_key_value(bucket("nodes")))
                .await?;
        let lease_bucket =
            retry_setup("create the lease bucket", || context.create_key_value(bucket("leases")))
                .await?;
        // A projection with nothing to replay takes its partitions now. One behind the log
        // does not wait here: the node listens at once and `/readyz` answers 503 until the
        // projection has caught up; its partitions are taken in the background, each once the
        // projection has caught up (bounded: past that, the lease is returned and taken again
        // at a later tick); endpoint changes applied meanwhile reach the router as any other
        // node's do.
        let ownership = Arc::new(Ownership::new());
        let mut leases =
            Leases::new(nodes.clone(), lease_bucket, node.clone(), ownership.clone(), log.clone());
        let stepped = log.began_caught_up();
        if stepped {
            leases.step().await;
        }
        metrics.set_store_partitions_owned(ownership.count());
        tracing::info!(
            node = %node,
            applied = log.applied(),
            first,
            partitions = ownership.count(),
            "cluster store open"
        );
        let leases = Arc::new(tokio::sync::Mutex::new(leases));
        let snapshotter = Arc::new(snapshot::Snapshotter {
            bucket: snapshots,
            stream: stream.name.clone(),
            context: context.clone(),
            nodes,
            directory: directory.clone(),
            ownership: ownership.clone(),
            log: log.clone(),
            schedule: snapshot::Schedule {
                every: settings.snapshot_every,
                entries: settings.snapshot_entries,
            },
            writing: tokio::sync::Mutex::new(()),
        });
        let snapshotting = tokio::spawn(snapshotter.clone().run());
        let renewing = tokio::spawn({
            let (leases, ownership, metrics) = (leases.clone(), ownership.clone(), metrics.clone());
            async move {
                let mut tick = tokio::time::interval(TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                if stepped {
                    tick.tick().await;
                }
                loop {
                    tick.tick().await;
                    leases.lock().await.step().await;
                    metrics.set_store_partitions_owned(ownership.count());
                }
            }
        });
        Ok(Self {
            log,
            projection,
            ownership,
            ingest_slots: Arc::new(Semaphore::new(INGESTS_IN_FLIGHT)),
            leases,
            snapshotter,
            tasks: Mutex::new(vec![follower, renewing, snapshotting]),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Waits until this node holds the lease of every delivery partition, up to `limit`;
    /// answers how many it holds then.
    #[cfg(test)]
    pub(in crate::store) async fn own_every_partition(&self, limit: std::time::Duration) -> usize {
        let all = usize::from(ownership::PARTITIONS);
        let mut changes = self.ownership.subscribe();
        let owned = || self.ownership.count();
        let _ = tokio::time::timeout(limit, changes.wait_for(|_| owned() == all)).await;
        owned()
    }

    /// Appends `command`; an ingest gives up after [`INGEST_BUDGET`] (its sender retries on
    /// a 503), every other write keeps trying for [`WRITE_BUDGET`].
    fn append(&self, command: Command) -> Answer<'_, Outcome> {
        let budget =
            if matches!(command, Command::Ingest(_)) { INGEST_BUDGET } else { WRITE_BUDGET };
        Box::pin(async move {
            match self.log.append(command, budget).await? {
                Outcome::Skipped => Err(StoreError::Write("the command was applied twice".into())),
                outcome => Ok(outcome),
            }
        })
    }

    fn count(&self, command: Command) -> Answer<'_, usize> {
        Box::pin(async move {
            match self.append(command).await? {
                Outcome::Count(count) => Ok(count),
                other => Err(unexpected(other)),
            }
        })
    }

    fn done(&self, command: Command) -> Answer<'_, ()> {
        Box::pin(async move {
            match self.append(command).await? {
                Outcome::Done => Ok(()),
                other => Err(unexpected(other)),
            }
        })
    }

    fn stop_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
    }
}

fn unexpected(outcome: Outcome) -> StoreError {
    StoreError::Write(format!("the projection answered {outcome:?}"))
}

/// This node's id: read from `directory`, or made and written there.
fn node_id(directory: &Path) -> Result<String, StoreError> {
    let path: PathBuf = directory.join(NODE_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id = format!("node-{}", ulid::Ulid::new().to_string().to_lowercase());
    std::fs::write(&path, &id)
        .map_err(|source| StoreError::DataDirectory { path: path.clone(), source })?;
    Ok(id)
}

impl Drop for JetStreamStore {
    fn drop(&mut self) {
        // A crash or a dropped handle: no more applying or renewing (leases then expire).
        self.stop_tasks();
    }
}

impl Backend for JetStreamStore {
    fn ingest(&self, event: NewEvent) -> Answer<'_, IngestReceipt> {
        let slot = self.ingest_slots.clone().try_acquire_owned();
        Box::pin(async move {
            let _slot = slot.map_err(|_| StoreError::Busy)?;
            match self.append(Command::Ingest(event)).await? {
                Outcome::Receipt(receipt) => Ok(receipt),
                other => Err(unexpected(other)),
            }
        })
    }

    fn record_attempt(&self, record: AttemptRecord) -> Answer<'_, ()> {
        self.done(Command::RecordAttempt(record))
    }

    fn replay(&self, selection: ReplaySelection) -> Answer<'_, usize> {
        self.count(Command::Replay(selection))
    }

    fn prune(&self, retention: Retention) -> Answer<'_, PruneReport> {
        Box::pin(async move {
            // Every node runs the retention pass; one (the owner of partition 0) appends it,
            // and every projection applies it.
            if !self.ownership.owns(RETENTION_PARTITION) {
                return Ok(PruneReport::default());
            }
            match self.append(Command::Prune(retention)).await? {
                Outcome::Pruned(report) => Ok(report),
                other => Err(unexpected(other)),
            }
        })
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> Answer<'_, ()> {
        self.done(Command::PutEndpoint(endpoint))
    }

    /// This node's projection rebuilt, then a snapshot of it made the only one and the log
    /// purged through it: records as they were before (the log's old entries, older
    /// snapshots) are gone from the cluster. Other nodes' projections are then behind the
    /// log's start, so each restores the new snapshot when it starts (its old file replaced).
    fn scrub(&self) -> Answer<'_, ()> {
        Box::pin(async move {
            self.projection.scrub().await?;
            self.snapshotter.replace_all().await
        })
    }

    fn delete_endpoint(&self, id: String, reason: String) -> Answer<'_, usize> {
        self.count(Command::DeleteEndpoint { id, reason })
    }

    fn set_endpoint_enabled(
        &self,
        endpoint: String,
        enabled: bool,
        reason: String,
    ) -> Answer<'_, usize> {
        self.count(Command::SetEndpointEnabled { endpoint, enabled, reason })
    }

    fn append_audit(&self, entry: AuditEntry) -> Answer<'_, LogPosition> {
        Box::pin(async move {
            match self.append(Command::AppendAudit(entry)).await? {
                Outcome::Position(position) => Ok(position),
                other => Err(unexpected(other)),
            }
        })
    }

    fn prune_audit(&self, before: u64, batch: usize) -> Answer<'_, usize> {
        Box::pin(async move {
            // As for `prune`: one node appends the pass, every projection applies it.
            if !self.ownership.owns(RETENTION_PARTITION) {
                return Ok(0);
            }
            self.count(Command::PruneAudit { before, batch }).await
        })
    }

    fn list_audit(&self, query: AuditQuery) -> Answer<'_, Vec<AuditRecord>> {
        self.projection.list_audit(query)
    }

    fn activity_since(&self, since: u64, limit: u32) -> Answer<'_, Activity> {
        self.projection.activity_since(since, limit)
    }

    fn endpoint_activity(
        &self,
        endpoints: Vec<String>,
        since: u64,
        bucket_millis: u64,
    ) -> Answer<'_, Vec<EndpointActivity>> {
        self.projection.endpoint_activity(endpoints, since, bucket_millis)
    }

    fn event(&self, id: EventId) -> Answer<'_, Option<Event>> {
        self.projection.event(id)
    }

    fn list_events(&self, query: EventQuery) -> Answer<'_, Vec<EventSummary>> {
        self.projection.list_events(query)
    }

    fn events_received_between(
        &self,
        since: u64,
        until: u64,
        limit: u32,
    ) -> Answer<'_, Vec<Event>> {
        self.projection.events_received_between(since, until, limit)
    }

    fn count_events(&self) -> Answer<'_, u64> {
        self.projection.count_events()
    }

    fn list_deliveries(&self, query: DeliveryQuery) -> Answer<'_, Vec<DeliverySummary>> {
        self.projection.list_deliveries(query)
    }

    fn delivery(&self, id: DeliveryId) -> Answer<'_, Option<DeliverySummary>> {
        self.projection.delivery(id)
    }

    fn count_deliveries(&self, state: DeliveryState, endpoint: Option<String>) -> Answer<'_, u64> {
        self.projection.count_deliveries(state, endpoint)
    }

    fn attempts(&self, id: DeliveryId) -> Answer<'_, Vec<AttemptRow>> {
        self.projection.attempts(id)
    }

    fn payload(&self, id: DeliveryId) -> Answer<'_, Option<Payload>> {
        self.projection.payload(id)
    }

    fn endpoints(&self) -> Answer<'_, Vec<StoredEndpoint>> {
        self.projection.endpoints()
    }

    fn endpoint(&self, id: String) -> Answer<'_, Option<StoredEndpoint>> {
        self.projection.endpoint(id)
    }

    fn disabled_endpoints(&self) -> Answer<'_, DisabledEndpoints> {
        self.projection.disabled_endpoints()
    }

    fn due_queue(&self, endpoint: &str) -> Box<dyn DueQueue> {
        Box::new(due::ClusterDueQueue::new(
            endpoint,
            self.projection.clone(),
            self.ownership.clone(),
        ))
    }

    fn outside_changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.log.endpoint_changes())
    }

    fn shutdown(&self) {
        // Called off the async threads: gives the leases back so that other nodes take over
        // at once, then stops applying and closes the projection.
        let leases = self.leases.clone();
        self.runtime.block_on(async move { leases.lock().await.release_all().await });
        self.stop_tasks();
        self.projection.shutdown();
    }
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("JetStreamStore").finish_non_exhaustive()
    }
}
