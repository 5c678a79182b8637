//! Which node delivers which endpoints: partitions, leases on them, and the set of live nodes.
//!
//! Owns the pure rules (an endpoint's partition, a partition's preferred node among the live
//! ones: rendezvous hashing, so a node joining or leaving moves only its share) and the lease
//! loop that makes them true: every node heartbeats its id (with the last log entry it has
//! applied, which trimming respects) into a KV bucket whose entries expire after the lease
//! time, and holds a lease (a KV key with the same expiry, taken with create and renewed with
//! compare-and-set) on each partition it owns. A node hands out the jobs of an endpoint only
//! while it holds the endpoint's partition's lease, so that one node at a time runs an
//! endpoint's worker and its `max_in_flight` holds cluster-wide.
//!
//! It never touches deliveries: [`Ownership`] is what the due-queues read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind, KeyValueError};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::log::{Log, retry_read};

/// How many partitions the endpoints are hashed into. Fixed: changing it moves endpoints.
pub const PARTITIONS: u16 = 16;
/// How long a lease (and a node's heartbeat) lives without renewal.
pub const LEASE_TIME: Duration = Duration::from_secs(10);
/// How often the loop heartbeats, renews and rebalances.
pub const TICK: Duration = Duration::from_secs(1);

/// The partition `endpoint` falls in.
pub fn partition_of(endpoint: &str) -> u16 {
    let hash = Sha256::digest(endpoint.as_bytes());
    u16::from_be_bytes([hash[0], hash[1]]) % PARTITIONS
}

/// The live node that should own `partition`: the one whose hash with it is highest.
pub fn preferred_owner(partition: u16, nodes: &[String]) -> Option<&str> {
    nodes
        .iter()
        .max_by_key(|node| {
            let hash = Sha256::digest(format!("{node}/{partition}").as_bytes());
            <[u8; 8]>::try_from(&hash[..8]).map(u64::from_be_bytes).unwrap_or(0)
        })
        .map(String::as_str)
}

/// The partitions this node holds now, and a signal each time that changes.
#[derive(Debug)]
pub struct Ownership {
    owned: Vec<AtomicBool>,
    changes: watch::Sender<u64>,
}

impl Default for Ownership {
    fn default() -> Self {
        Self::new()
    }
}

impl Ownership {
    pub fn new() -> Self {
        let owned = (0..PARTITIONS).map(|_| AtomicBool::new(false)).collect();
        Self { owned, changes: watch::Sender::new(0) }
    }

    pub fn owns(&self, partition: u16) -> bool {
        self.owned.get(usize::from(partition)).is_some_and(|owned| owned.load(Ordering::Acquire))
    }

    /// A receiver that sees every change from now on.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn set(&self, partition: u16, owned: bool) {
        if let Some(flag) = self.owned.get(usize::from(partition))
            && flag.swap(owned, Ordering::AcqRel) != owned
        {
            self.changes.send_modify(|version| *version += 1);
        }
    }

    /// How many partitions this node holds.
    pub fn count(&self) -> usize {
        self.owned.iter().filter(|owned| owned.load(Ordering::Acquire)).count()
    }
}

/// The lease loop's state: the two buckets, this node, and the revisions of its leases.
pub(in crate::store) struct Leases {
    nodes: kv::Store,
    leases: kv::Store,
    node: String,
    ownership: Arc<Ownership>,
    log: Arc<Log>,
    /// Partition → (revision of our lease, when it was last renewed).
    held: HashMap<u16, (u64, Instant)>,
}

impl Leases {
    pub fn new(
        nodes: kv::Store,
        leases: kv::Store,
        node: String,
        ownership: Arc<Ownership>,
        log: Arc<Log>,
    ) -> Self {
        Self { nodes, leases, node, ownership, log, held: HashMap::new() }
    }

    /// One round: heartbeat, then for each partition renew, release or take its lease.
    pub async fn step(&mut self) {
        // The heartbeat carries what this node has applied: the log is never trimmed past it.
        let applied = Bytes::from(self.log.applied().to_string());
        if let Err(error) = self.nodes.put(&self.node, applied).await {
            tracing::warn!(%error, "cluster heartbeat failed");
        }
        let nodes = match self.live_nodes().await {
            Ok(nodes) => nodes,
            Err(error) => {
                tracing::warn!(%error, "cannot list the cluster's nodes");
                self.expire_unrenewed();
                return;
            }
        };
        for partition in 0..PARTITIONS {
            let preferred = preferred_owner(partition, &nodes) == Some(self.node.as_str());
            match (self.held.get(&partition).copied(), preferred) {
                (Some((revision, _)), false) => self.release(partition, revision).await,
                (Some((revision, renewed)), true) => {
                    if renewed.elapsed() >= LEASE_TIME / 4 {
                        self.renew(partition, revision).await;
                    }
                }
                (None, true) => self.take(partition).await,
                (None, false) => {}
            }
        }
        self.expire_unrenewed();
    }

    /// Gives every lease back (a clean shutdown), so that other nodes take over at once.
    pub async fn release_all(&mut self) {
        let held: Vec<(u16, u64)> =
            self.held.iter().map(|(partition, (revision, _))| (*partition, *revision)).collect();
        for (partition, revision) in held {
            self.release(partition, revision).await;
        }
        if let Err(error) = self.nodes.delete(&self.node).await {
            tracing::warn!(%error, "cannot remove this node from the cluster's node list");
        }
    }

    async fn live_nodes(&self) -> Result<Vec<String>, async_nats::Error> {
        let mut keys = self.nodes.keys().await?;
        let mut nodes = Vec::new();
        while let Some(key) = keys.next().await {
            nodes.push(key?);
        }
        if !nodes.contains(&self.node) {
            // Our heartbeat failed: we are not live, so we prefer nothing.
            return Ok(Vec::new());
        }
        Ok(nodes)
    }

    async fn take(&mut self, partition: u16) {
        let key = lease_key(partition);
        let value = Bytes::from(self.node.clone());
        let taken = match self.leases.entry(&key).await {
            Ok(Some(entry))
                if entry.operation == kv::Operation::Put && entry.value != self.node.as_bytes() =>
            {
                // Another node's lease: it releases it or lets it expire.
                return;
            }
            // Ours from before a restart: renewed in place.
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                self.leases.update(&key, value, entry.revision).await.ok()
            }
            Ok(Some(entry)) => self.leases.update(&key, value, entry.revision).await.ok(),
            Ok(None) => self.leases.create(&key, value).await.ok(),
            Err(error) => {
                tracing::warn!(%error, partition, "cannot read a partition lease");
                None
            }
        };
        let Some(revision) = taken else { return };
        // Before handing out its jobs, see everything its last owner recorded.
        if let Err(error) = self.log.catch_up().await {
            tracing::warn!(%error, partition, "cannot catch up with the log; lease returned");
            let _ = self.leases.delete_expect_revision(&key, Some(revision)).await;
            return;
        }
        self.held.insert(partition, (revision, Instant::now()));
        self.ownership.set(partition, true);
        tracing::info!(partition, "partition taken");
    }

    async fn renew(&mut self, partition: u16, revision: u64) {
        let value = Bytes::from(self.node.clone());
        match self.leases.update(lease_key(partition), value, revision).await {
            Ok(revision) => {
                self.held.insert(partition, (revision, Instant::now()));
            }
            Err(error) => {
                tracing::warn!(%error, partition, "cannot renew a partition lease");
                if matches!(error.kind(), kv::UpdateErrorKind::WrongLastRevision) {
                    // Another node has it now.
                    self.held.remove(&partition);
                    self.ownership.set(partition, false);
                }
            }
        }
    }

    async fn release(&mut self, partition: u16, revision: u64) {
        // Stop handing out jobs first; attempts under way finish and record their outcome.
        self.ownership.set(partition, false);
        self.held.remove(&partition);
        let key = lease_key(partition);
        if let Err(error) = self.leases.delete_expect_revision(&key, Some(revision)).await {
            tracing::warn!(%error, partition, "cannot release a partition lease; it expires");
        } else {
            tracing::info!(partition, "partition released");
        }
    }

    /// Drops every lease not renewed for half its life: another node may take it soon, and
    /// this one must have stopped by then.
    fn expire_unrenewed(&mut self) {
        let stale: Vec<u16> = self
            .held
            .iter()
            .filter(|(_, (_, renewed))| renewed.elapsed() >= LEASE_TIME / 2)
            .map(|(partition, _)| *partition)
            .collect();
        for partition in stale {
            tracing::warn!(partition, "partition lease not renewed in time; stopped");
            self.held.remove(&partition);
            self.ownership.set(partition, false);
        }
    }
}

/// The nodes heartbeating into the cluster named by `prefix` now (none when its node bucket
/// does not exist yet). Only a bucket that is not there counts as no nodes: a request that
/// fails (a timeout under load) is tried again, then is an error, since `store rotate-key`
/// asks this to refuse while any node runs.
pub async fn live_nodes(
    context: &async_nats::jetstream::Context,
    prefix: &str,
) -> Result<Vec<String>, crate::store::StoreError> {
    let name = format!("{prefix}_nodes");
    let bucket = retry_read("the node bucket", || async {
        match context.get_key_value(name.as_str()).await {
            Ok(bucket) => Ok(Some(bucket)),
            Err(error) if is_missing_bucket(&error) => Ok(None),
            Err(error) => Err(error),
        }
    })
    .await?;
    let Some(bucket) = bucket else { return Ok(Vec::new()) };
    retry_read("the live nodes", || async {
        let mut keys = bucket.keys().await?;
        let mut nodes = Vec::new();
        while let Some(key) = keys.next().await {
            nodes.push(key?);
        }
        Ok::<_, async_nats::Error>(nodes)
    })
    .await
}

/// Whether opening a key-value bucket failed because its stream does not exist.
fn is_missing_bucket(error: &KeyValueError) -> bool {
    let source = std::error::Error::source(error);
    source.and_then(|source| source.downcast_ref::<GetStreamError>()).is_some_and(|error| {
        matches!(error.kind(), GetStreamErrorKind::JetStream(error)
            if error.error_code() == ErrorCode::STREAM_NOT_FOUND)
    })
}

fn lease_key(partition: u16) -> String {
    format!("p{partition}")
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Leases").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_always_falls_in_the_same_partition() {
        assert_eq!(partition_of("billing"), partition_of("billing"));
        assert!((0..1000).all(|index| partition_of(&format!("ep_{index}")) < PARTITIONS));
        let spread: std::collections::HashSet<u16> =
            (0..200).map(|index| partition_of(&format!("ep_{index}"))).collect();
        assert_eq!(spread.len(), usize::from(PARTITIONS), "200 endpoints reach every partition");
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_partitions() {
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let two: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let mut owners = HashMap::new();
        for partition in 0..PARTITIONS {
            let before = preferred_owner(partition, &three).unwrap();
            let after = preferred_owner(partition, &two).unwrap();
            if before != "c" {
                assert_eq!(before, after, "partition {partition} moved needlessly");
            }
            *owners.entry(before).or_insert(0) += 1;
        }
        assert_eq!(owners.len(), 3, "every node gets a share: {owners:?}");
        assert_eq!(preferred_owner(0, &[]), None);
    }

    #[test]
    fn ownership_signals_each_change_once() {
        let ownership = Ownership::new();
        let mut changes = ownership.subscribe();
        ownership.set(3, true);
        ownership.set(3, true);
        assert!(ownership.owns(3) && !ownership.owns(4));
        assert_eq!(ownership.count(), 1);
        assert!(changes.has_changed().unwrap());
        assert_eq!(*changes.borrow_and_update(), 1);
        ownership.set(3, false);
        assert_eq!(*changes.borrow_and_update(), 2);
    }
}
