//! An endpoint's due-queue on a cluster node: the projection's queue, open only while this
//! node owns the endpoint's partition.
//!
//! Owns the hand-over rules. While the partition is not ours the queue hands out nothing and
//! keeps nothing (every node's projection makes every job; only the owner's count). When the
//! partition becomes ours (the lease loop has caught the projection up with the log first),
//! the queue is claimed afresh from the projection with every pending delivery of the
//! endpoint, retries waiting included; deliveries still under way here from an earlier
//! ownership are not handed out twice.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

use super::ownership::{Ownership, partition_of};
use crate::store::sqlite::{SqliteDueQueue, SqliteStore};
use crate::store::{DeliveryId, DeliveryJob, DueQueue, NextStep};

pub(in crate::store) struct ClusterDueQueue {
    endpoint: String,
    partition: u16,
    projection: Arc<SqliteStore>,
    ownership: Arc<Ownership>,
    changes: watch::Receiver<u64>,
    /// The projection's queue while the partition is ours.
    inner: Option<SqliteDueQueue>,
    under_way: HashSet<DeliveryId>,
    paused: bool,
}

impl ClusterDueQueue {
    pub(in crate::store) fn new(
        endpoint: &str,
        projection: Arc<SqliteStore>,
        ownership: Arc<Ownership>,
    ) -> Self {
        let changes = ownership.subscribe();
        let mut queue = Self {
            endpoint: endpoint.to_owned(),
            partition: partition_of(endpoint),
            projection,
            ownership,
            changes,
            inner: None,
            under_way: HashSet::new(),
            paused: false,
        };
        queue.refresh();
        queue
    }

    /// Claims or drops the projection's queue as ownership says; answers whether it is ours.
    fn refresh(&mut self) -> bool {
        let owned = self.ownership.owns(self.partition);
        if !owned {
            self.inner = None;
            return false;
        }
        if self.inner.is_none() {
            // Reads the projection once per change of ownership.
            match self.projection.due_queue_with_pending(&self.endpoint) {
                Ok(mut inner) => {
                    if self.paused {
                        inner.pause();
                    }
                    self.inner = Some(inner);
                }
                Err(error) => {
                    tracing::error!(%error, endpoint = %self.endpoint, "cannot load the endpoint's pending deliveries");
                    return false;
                }
            }
        }
        true
    }

    /// `job`, unless it is under way here already (then `None`); marks it under way.
    fn hand_out(&mut self, job: DeliveryJob) -> Option<DeliveryJob> {
        self.under_way.insert(job.delivery_id).then_some(job)
    }
}

impl DueQueue for ClusterDueQueue {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<DeliveryJob>> + Send + '_>> {
        Box::pin(async move {
            loop {
                if !self.refresh() {
                    self.changes.changed().await.ok()?;
                    continue;
                }
                let Some(inner) = self.inner.as_mut() else { continue };
                tokio::select! {
                    job = inner.next() => {
                        let job = job?;
                        if let Some(job) = self.hand_out(job) {
                            return Some(job);
                        }
                    }
                    changed = self.changes.changed() => changed.ok()?,
                }
            }
        })
    }

    fn try_next(&mut self) -> Option<DeliveryJob> {
        if !self.refresh() {
            return None;
        }
        loop {
            let job = self.inner.as_mut()?.try_next()?;
            if let Some(job) = self.hand_out(job) {
                return Some(job);
            }
        }
    }

    fn finished(&mut self, job: DeliveryJob, next: NextStep) {
        self.under_way.remove(&job.delivery_id);
        if next == NextStep::DisableEndpoint {
            self.paused = true;
        }
        // Not ours any more: the new owner reads the outcome from the log.
        if let Some(inner) = self.inner.as_mut() {
            inner.finished(job, next);
        }
    }

    fn abandoned(&mut self, delivery: DeliveryId) {
        self.under_way.remove(&delivery);
        if let Some(inner) = self.inner.as_mut() {
            inner.abandoned(delivery);
        }
    }

    fn pause(&mut self) {
        self.paused = true;
        if let Some(inner) = self.inner.as_mut() {
            inner.pause();
        }
    }

    fn resume(&mut self) {
        self.paused = false;
        if let Some(inner) = self.inner.as_mut() {
            inner.resume();
        }
    }

    fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, DueQueue::len)
    }
}

impl std::fmt::Debug for ClusterDueQueue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ClusterDueQueue").finish_non_exhaustive()
    }
}
