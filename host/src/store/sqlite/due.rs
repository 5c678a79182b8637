//! The SQLite store's due-queues: each endpoint's pending deliveries, in memory, by due time.
//!
//! Owns [`Dispatch`] (where the writer puts the jobs a commit made due, and the pending ones
//! loaded at open until their endpoint's queue is claimed) and [`SqliteDueQueue`] (one
//! endpoint's binary heap by due time, the jobs under way, and which queued jobs keep their
//! body), with the [`KeyGate`] of ordered deliveries: a delivery with an order key enters the
//! heap only once every earlier delivery (by id, that is ingest order) of its key is
//! delivered or dead, and a retry keeps its key's place. The database stays the source of truth: a job only ever mirrors a pending row, and
//! losing one (a restart) loses nothing, since pending rows are loaded again at open.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::event::now_millis;
use crate::store::{DeliveryId, DeliveryJob, DueQueue, NextStep};
use crate::traffic::ordering::KeyGate;

/// The bytes of bodies all queues together keep in memory (each queued delivery counts its
/// body's length, even when a fan-out shares one body between endpoints). A delivery queued
/// beyond it has its body read from the store when due, so a backlog past it costs a few
/// bytes per delivery. A budget for the whole store, not a count per queue: a count per
/// queue made every delivery of a queue past it a read from the store, which cost so much
/// CPU that the endpoint fell further behind and stayed there.
pub(super) const KEPT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Where committed jobs go: the queue of each endpoint that has one.
#[derive(Debug, Default)]
pub(super) struct Dispatch {
    feeds: Mutex<Feeds>,
    /// Jobs for endpoints without a queue are expected (a cluster node's projection queues
    /// only the endpoints it owns): not worth a warning.
    unclaimed_expected: std::sync::atomic::AtomicBool,
    /// Body bytes the queues keep now (see [`KEPT_BODY_BYTES`]).
    kept_body_bytes: AtomicUsize,
}

#[derive(Debug, Default)]
struct Feeds {
    queues: HashMap<String, Feed>,
    /// Pending deliveries loaded at open, by endpoint, until its queue is claimed.
    unclaimed: HashMap<String, Vec<DeliveryJob>>,
    claims: u64,
}

#[derive(Debug)]
struct Feed {
    sender: mpsc::UnboundedSender<DeliveryJob>,
    /// Which claim made it, so that a replaced queue, when dropped, leaves its successor be.
    claim: u64,
}

impl Dispatch {
    /// A dispatch holding `pending` (loaded at open) for their endpoints' queues.
    pub fn new(pending: Vec<DeliveryJob>) -> Self {
        let mut unclaimed: HashMap<String, Vec<DeliveryJob>> = HashMap::new();
        for job in pending {
            unclaimed.entry(job.endpoint.clone()).or_default().push(job);
        }
        Self {
            feeds: Mutex::new(Feeds { unclaimed, ..Feeds::default() }),
            unclaimed_expected: std::sync::atomic::AtomicBool::new(false),
            kept_body_bytes: AtomicUsize::new(0),
        }
    }

    /// Jobs for endpoints without a queue are expected from now on.
    pub fn expect_unclaimed(&self) {
        self.unclaimed_expected.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Feeds> {
        // Every change under the lock is a single insert or remove: never left half-done.
        self.feeds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands every job of `jobs` (drained) to its endpoint's queue.
    pub fn queue_all(&self, jobs: &mut Vec<DeliveryJob>) {
        if jobs.is_empty() {
            return;
        }
        let feeds = self.lock();
        for mut job in jobs.drain(..) {
            match feeds.queues.get(&job.endpoint) {
                Some(feed) => {
                    // The budget is taken here, not when the queue takes the job: a worker
                    // that does not ask for jobs (its breaker open) leaves them in the feed.
                    self.budget_body(&mut job);
                    if let Err(mpsc::error::SendError(job)) = feed.sender.send(job) {
                        self.forget_job_body(&job);
                    }
                }
                // Kept pending in the store: it resumes if the endpoint comes back.
                None if self.unclaimed_expected.load(std::sync::atomic::Ordering::Relaxed) => {}
                None => {
                    tracing::warn!(endpoint = %job.endpoint, delivery = %job.delivery_id, "delivery for an endpoint that is not configured")
                }
            }
        }
    }

    /// The queue of `endpoint`, with its deliveries loaded at open; replaces an earlier one.
    pub fn claim(self: &Arc<Self>, endpoint: &str) -> SqliteDueQueue {
        let (sender, feed) = mpsc::unbounded_channel();
        let mut feeds = self.lock();
        feeds.claims += 1;
        let claim = feeds.claims;
        for mut job in feeds.unclaimed.remove(endpoint).unwrap_or_default() {
            self.budget_body(&mut job);
            let _ = sender.send(job);
        }
        feeds.queues.insert(endpoint.to_owned(), Feed { sender, claim });
        drop(feeds);
        SqliteDueQueue {
            endpoint: endpoint.to_owned(),
            claim,
            dispatch: self.clone(),
            feed,
            due: BinaryHeap::new(),
            waiting: HashMap::new(),
            held: HashMap::new(),
            gate: KeyGate::default(),
            under_way: HashSet::new(),
            paused: false,
        }
    }

    /// Takes `bytes` of the body budget; answers false (nothing taken) when they do not fit.
    fn keep_body(&self, bytes: usize) -> bool {
        self.kept_body_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                kept.checked_add(bytes).filter(|total| *total <= KEPT_BODY_BYTES)
            })
            .is_ok()
    }

    /// Keeps `job`'s body only if it fits in the budget (taken then); else drops it, to be
    /// read from the store when due.
    fn budget_body(&self, job: &mut DeliveryJob) {
        if let Some(payload) = &job.payload
            && !self.keep_body(payload.body.len())
        {
            job.payload = None;
        }
    }

    /// Gives back the budget `job`'s body took.
    fn forget_job_body(&self, job: &DeliveryJob) {
        if let Some(payload) = &job.payload {
            self.forget_body(payload.body.len());
        }
    }

    /// Body bytes the queues keep now.
    #[cfg(test)]
    pub fn kept_body_bytes(&self) -> usize {
        self.kept_body_bytes.load(Ordering::Relaxed)
    }

    /// Gives `bytes` of the body budget back.
    fn forget_body(&self, bytes: usize) {
        self.kept_body_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    fn release(&self, endpoint: &str, claim: u64) {
        let mut feeds = self.lock();
        if feeds.queues.get(endpoint).is_some_and(|feed| feed.claim == claim) {
            feeds.queues.remove(endpoint);
        }
    }
}

/// One endpoint's queue (see [`DueQueue`]).
#[derive(Debug)]
pub(in crate::store) struct SqliteDueQueue {
    endpoint: String,
    claim: u64,
    dispatch: Arc<Dispatch>,
    feed: mpsc::UnboundedReceiver<DeliveryJob>,
    /// By due time; an entry is stale when `waiting` holds its delivery for another time.
    due: BinaryHeap<Reverse<(u64, DeliveryId)>>,
    waiting: HashMap<DeliveryId, DeliveryJob>,
    /// Ordered deliveries behind an earlier one of their key: out of `due` until the gate
    /// releases them.
    held: HashMap<DeliveryId, DeliveryJob>,
    /// Per order key, the line of unfinished deliveries (see [`KeyGate`]).
    gate: KeyGate,
    under_way: HashSet<DeliveryId>,
    paused: bool,
}

impl SqliteDueQueue {
    /// Queues `job`, whose body (if it has one) already counts against the budget.
    fn push(&mut self, job: DeliveryJob) {
        if self.under_way.contains(&job.delivery_id) {
            tracing::debug!(delivery = %job.delivery_id, "already under way; its outcome decides");
            self.forget(&job);
            return;
        }
        if let Some(key) = &job.order_key
            && !self.gate.admit(key, job.delivery_id)
        {
            if let Some(replaced) = self.held.insert(job.delivery_id, job) {
                self.forget(&replaced);
            }
            return;
        }
        self.due.push(Reverse((job.due_at, job.delivery_id)));
        if let Some(replaced) = self.waiting.insert(job.delivery_id, job) {
            self.forget(&replaced);
        }
    }

    /// Takes what the writer sent meanwhile; answers false once the feed is closed.
    fn take_fed(&mut self) -> bool {
        loop {
            match self.feed.try_recv() {
                Ok(job) => self.push(job),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// The first job due at `now`, now under way.
    fn pop_due(&mut self, now: u64) -> Option<DeliveryJob> {
        if self.paused {
            return None;
        }
        while let Some(&Reverse((due_at, id))) = self.due.peek() {
            if self.waiting.get(&id).is_none_or(|job| job.due_at != due_at) {
                self.due.pop();
                continue;
            }
            if due_at > now {
                return None;
            }
            self.due.pop();
            let job = self.waiting.remove(&id)?;
            self.forget(&job);
            self.under_way.insert(id);
            return Some(job);
        }
        None
    }

    /// `job` leaves the queue: its body no longer counts against the budget.
    fn forget(&self, job: &DeliveryJob) {
        self.dispatch.forget_job_body(job);
    }

    /// Empties the heap and both maps, giving their bodies' budget back.
    fn forget_all(&mut self) {
        let bytes: usize = (self.waiting.values().chain(self.held.values()))
            .filter_map(|job| job.payload.as_ref())
            .map(|payload| payload.body.len())
            .sum();
        self.dispatch.forget_body(bytes);
        self.due.clear();
        self.waiting.clear();
        self.held.clear();
    }

    fn next_due_at(&self) -> Option<u64> {
        if self.paused {
            return None;
        }
        self.due.peek().map(|Reverse((due_at, _))| *due_at)
    }
}

impl SqliteDueQueue {
    /// Queues `jobs` read from the store (a delivery already queued or under way is kept
    /// once).
    pub fn add(&mut self, jobs: Vec<DeliveryJob>) {
        for mut job in jobs {
            self.dispatch.budget_body(&mut job);
            self.push(job);
        }
    }
}

impl DueQueue for SqliteDueQueue {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<DeliveryJob>> + Send + '_>> {
        Box::pin(async move {
            loop {
                let open = self.take_fed();
                if let Some(job) = self.pop_due(now_millis()) {
                    return Some(job);
                }
                if !open {
                    return None;
                }
                let wake = self
                    .next_due_at()
                    .map(|due_at| Duration::from_millis(due_at.saturating_sub(now_millis())));
                tokio::select! {
                    job = self.feed.recv() => match job {
                        Some(job) => self.push(job),
                        None => return None,
                    },
                    () = sleep_for(wake) => {}
                }
            }
        })
    }

    fn try_next(&mut self) -> Option<DeliveryJob> {
        self.take_fed();
        self.pop_due(now_millis())
    }

    fn finished(&mut self, mut job: DeliveryJob, next: NextStep) {
        // Under way, or still queued (an outcome learnt otherwise): either way it is settled.
        self.take_fed();
        self.under_way.remove(&job.delivery_id);
        let queued = self.waiting.remove(&job.delivery_id);
        let held = self.held.remove(&job.delivery_id);
        for left in queued.iter().chain(held.iter()) {
            self.forget(left);
        }
        if let Some(key) = &job.order_key
            && !matches!(next, NextStep::RetryAt(_))
            && let Some(released) = self.gate.settle(key, job.delivery_id)
            && let Some(next_job) = self.held.remove(&released)
        {
            // Its key's earlier delivery is delivered or dead: this one may go now.
            self.push(next_job);
        }
        match next {
            NextStep::RetryAt(at) if !self.paused => {
                job.attempts += 1;
                job.due_at = at;
                // Bodies of deliveries that wait are read again when due.
                job.payload = None;
                self.push(job);
            }
            NextStep::DisableEndpoint => self.pause(),
            NextStep::RetryAt(_) | NextStep::Delivered | NextStep::DeadLetter => {}
        }
    }

    fn abandoned(&mut self, delivery: DeliveryId) {
        self.under_way.remove(&delivery);
    }

    fn pause(&mut self) {
        // What the store sent before it parked them is forgotten too.
        self.take_fed();
        self.paused = true;
        self.forget_all();
        self.gate.clear();
    }

    fn resume(&mut self) {
        self.paused = false;
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.held.len()
    }
}

impl Drop for SqliteDueQueue {
    fn drop(&mut self) {
        self.forget_all();
        self.dispatch.release(&self.endpoint, self.claim);
        // No job comes into the feed any more: give back the budget of those still in it.
        self.feed.close();
        while let Ok(job) = self.feed.try_recv() {
            self.forget(&job);
        }
    }
}

async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
