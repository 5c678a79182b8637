//! The SQLite store's due-queues: each endpoint's pending deliveries, in memory, by due time.
//!
//! Owns [`Dispatch`] (where the writer puts the jobs a commit made due, and the pending ones
//! loaded at open until their endpoint's queue is claimed) and [`SqliteDueQueue`] (one
//! endpoint's jobs in due order, the jobs under way, and which queued jobs keep their body),
//! with the [`KeyGate`] of ordered deliveries: a delivery with an order key enters the due
//! order only once every earlier delivery (by id, that is ingest order) of its key is
//! delivered or dead, and a retry keeps its key's place. A queue keeps at most
//! [`KEPT_JOBS`] jobs and reads the rest back from the database as it drains ([`spill`]). The
//! database stays the source of truth: a job only ever mirrors a pending row, and losing one
//! (a restart) loses nothing, since pending rows are loaded again at open.

mod kept;
mod spill;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::kept::Kept;
use self::spill::{Position, Spill, position};
use super::reader::Readers;
use crate::event::now_millis;
use crate::store::{DeliveryId, DeliveryJob, DueQueue, NextStep, StoreError};
use crate::traffic::ordering::KeyGate;

/// The jobs one endpoint's queue keeps in memory (in its feed, waiting for their due time or
/// held behind their order key); its endpoint's deliveries past it wait in the database and
/// are read back, a page at a time, as the queue drains. An endpoint that takes nothing for
/// an hour then costs ~7 MB, not ~0.8 KB per delivery made meanwhile. Far above the queue
/// that closed-loop overload builds (~1,000 jobs at 30,000 deliveries/s over ten endpoints),
/// so that a busy endpoint never pays a read per job.
pub(super) const KEPT_JOBS: usize = 8_192;

/// After a read back failed, how long the queue waits before it tries again.
const READ_RETRY: Duration = Duration::from_secs(1);

/// The bytes of bodies all queues together keep in memory (a body the deliveries of one
/// commit share, a fan-out's, counts once: each queued delivery is charged its share, see
/// [`kept`]). A delivery queued beyond it has its body read from the store when due, so a
/// backlog past it costs a few bytes per delivery. A budget for the whole store, not a count per queue: a count per
/// queue made every delivery of a queue past it a read from the store, which cost so much
/// CPU that the endpoint fell further behind and stayed there.
pub(super) const KEPT_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How many jobs each queue keeps, and where it reads the rest back from.
#[derive(Debug, Clone)]
pub(super) struct Bound {
    pub kept_jobs: usize,
    pub readers: Readers,
}

/// Where committed jobs go: the queue of each endpoint that has one.
#[derive(Debug)]
pub(super) struct Dispatch {
    feeds: Mutex<Feeds>,
    /// `None`: every queue keeps every job (a cluster node's projection; tests).
    bound: Option<Bound>,
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
    unclaimed: HashMap<String, Unclaimed>,
    claims: u64,
}

/// What loading at open left for one endpoint's queue.
#[derive(Debug, Default)]
struct Unclaimed {
    jobs: Vec<DeliveryJob>,
    /// Where the pending deliveries not loaded begin (see [`spill`]), and how many there are.
    spilled_from: Option<Position>,
    spilled: usize,
}

#[derive(Debug)]
struct Feed {
    sender: mpsc::UnboundedSender<Kept>,
    /// Which claim made it, so that a replaced queue, when dropped, leaves its successor be.
    claim: u64,
    spill: Option<Arc<Spill>>,
}

impl Dispatch {
    pub fn new(bound: Option<Bound>) -> Self {
        Self {
            feeds: Mutex::default(),
            bound,
            unclaimed_expected: std::sync::atomic::AtomicBool::new(false),
            kept_body_bytes: AtomicUsize::new(0),
        }
    }

    /// Keeps `job`, a pending delivery read at open (in id order), for its endpoint's queue;
    /// past the bound, an unordered one is left in the database, to be read back.
    pub fn load(&self, job: DeliveryJob) {
        let mut feeds = self.lock();
        let unclaimed = feeds.unclaimed.entry(job.endpoint.clone()).or_default();
        let full = self.bound.as_ref().is_some_and(|bound| {
            unclaimed.spilled_from.is_some() || unclaimed.jobs.len() >= bound.kept_jobs
        });
        if full && job.order_key.is_none() {
            let at = position(&job);
            unclaimed.spilled_from = Some(unclaimed.spilled_from.map_or(at, |from| from.min(at)));
            unclaimed.spilled += 1;
        } else {
            unclaimed.jobs.push(job);
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
        let mut taken = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match feeds.queues.get(&job.endpoint) {
                Some(feed) if admits(feed, &job) => taken.push(job),
                Some(_) => {}
                // Kept pending in the store: it resumes if the endpoint comes back.
                None if self.unclaimed_expected.load(std::sync::atomic::Ordering::Relaxed) => {}
                None => {
                    tracing::warn!(endpoint = %job.endpoint, delivery = %job.delivery_id, "delivery for an endpoint that is not configured")
                }
            }
        }
        // Shared among the jobs the queues take: a body left in the database costs nothing.
        let shares = body_shares(&taken);
        for (job, share) in taken.into_iter().zip(shares) {
            if let Some(feed) = feeds.queues.get(&job.endpoint) {
                self.send(feed, job, share);
            }
        }
    }

    /// Hands `job`, which `feed`'s queue admitted, to it; its body, if kept, is charged `share`
    /// bytes of the budget.
    fn send(&self, feed: &Feed, job: DeliveryJob, share: usize) {
        // The budget is taken here, not when the queue takes the job: a worker that does not
        // ask for jobs (its breaker open) leaves them in the feed.
        let job = self.keep(job, share);
        if let Err(mpsc::error::SendError(job)) = feed.sender.send(job) {
            self.forget_body(job.charge());
            if let Some(spill) = &feed.spill {
                spill.taken();
            }
        }
    }

    /// The queue of `endpoint`, with its deliveries loaded at open; replaces an earlier one.
    pub fn claim(self: &Arc<Self>, endpoint: &str) -> SqliteDueQueue {
        let (sender, feed) = mpsc::unbounded_channel();
        let mut feeds = self.lock();
        feeds.claims += 1;
        let claim = feeds.claims;
        let unclaimed = feeds.unclaimed.remove(endpoint).unwrap_or_default();
        let spill = self.bound.as_ref().map(|bound| {
            Arc::new(Spill::new(
                endpoint,
                bound.kept_jobs,
                unclaimed.spilled_from,
                unclaimed.spilled,
            ))
        });
        let entry = Feed { sender, claim, spill: spill.clone() };
        for job in unclaimed.jobs {
            if admits(&entry, &job) {
                let share = job.payload.as_ref().map_or(0, |payload| payload.body.len());
                self.send(&entry, job, share);
            }
        }
        feeds.queues.insert(endpoint.to_owned(), entry);
        drop(feeds);
        SqliteDueQueue {
            endpoint: endpoint.to_owned(),
            claim,
            dispatch: self.clone(),
            feed,
            due: BTreeSet::new(),
            waiting: HashMap::new(),
            held: HashMap::new(),
            gate: KeyGate::default(),
            under_way: HashSet::new(),
            paused: false,
            spill,
            reading: None,
            read_again_at: None,
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

    /// `job` as a queue keeps it: with its body if `share` bytes of the budget are left (taken
    /// then), else without, to be read from the store when due.
    fn keep(&self, mut job: DeliveryJob, share: usize) -> Kept {
        if job.payload.is_none() {
            return Kept::new(job, 0);
        }
        if self.keep_body(share) {
            return Kept::new(job, share);
        }
        job.payload = None;
        Kept::new(job, 0)
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

type ReadBack = JoinHandle<Result<Vec<DeliveryJob>, StoreError>>;
type ReadResult = Result<Result<Vec<DeliveryJob>, StoreError>, tokio::task::JoinError>;

/// One endpoint's queue (see [`DueQueue`]).
#[derive(Debug)]
pub(in crate::store) struct SqliteDueQueue {
    endpoint: String,
    claim: u64,
    dispatch: Arc<Dispatch>,
    feed: mpsc::UnboundedReceiver<Kept>,
    /// The queued jobs' positions, in the order they are handed out.
    due: BTreeSet<Position>,
    waiting: HashMap<DeliveryId, Kept>,
    /// Ordered deliveries behind an earlier one of their key: out of `due` until the gate
    /// releases them.
    held: HashMap<DeliveryId, Kept>,
    /// Per order key, the line of unfinished deliveries (see [`KeyGate`]).
    gate: KeyGate,
    under_way: HashSet<DeliveryId>,
    paused: bool,
    /// How many jobs it keeps, and where those it did not keep begin; `None`: it keeps all.
    spill: Option<Arc<Spill>>,
    /// The read back of deliveries it did not keep, under way: kept here, not in the future
    /// that asked for it, so that a `next` dropped meanwhile loses nothing.
    reading: Option<ReadBack>,
    /// After a read back failed: not before then.
    read_again_at: Option<Instant>,
}

impl SqliteDueQueue {
    /// Queues `job`, which has no body (a retry, a read back): its body is read when due.
    /// Answers whether it was new to the queue.
    fn push(&mut self, mut job: DeliveryJob) -> bool {
        job.payload = None;
        self.push_kept(Kept::new(job, 0))
    }

    /// Queues `job`, its body's share of the budget taken already; answers whether it was new
    /// to the queue.
    fn push_kept(&mut self, job: Kept) -> bool {
        if self.under_way.contains(&job.delivery_id) {
            tracing::debug!(delivery = %job.delivery_id, "already under way; its outcome decides");
            self.forget(&job);
            return false;
        }
        if let Some(key) = &job.order_key
            && !self.gate.admit(key, job.delivery_id)
        {
            return match self.held.insert(job.delivery_id, job) {
                Some(replaced) => {
                    self.forget(&replaced);
                    false
                }
                None => true,
            };
        }
        self.due.insert(position(&job));
        match self.waiting.insert(job.delivery_id, job) {
            Some(replaced) => {
                let id = replaced.delivery_id;
                if self.waiting.get(&id).is_some_and(|job| job.due_at != replaced.due_at) {
                    self.due.remove(&position(&replaced));
                }
                self.forget(&replaced);
                false
            }
            None => true,
        }
    }

    /// Takes what the writer sent meanwhile; answers false once the feed is closed.
    fn take_fed(&mut self) -> bool {
        let open = loop {
            match self.feed.try_recv() {
                Ok(job) => self.take(job),
                Err(mpsc::error::TryRecvError::Empty) => break true,
                Err(mpsc::error::TryRecvError::Disconnected) => break false,
            }
        };
        self.count_kept();
        open
    }

    /// Queues `job`, taken from the feed.
    fn take(&mut self, job: Kept) {
        if let Some(spill) = &self.spill {
            spill.taken();
        }
        self.push_kept(job);
    }

    /// The first job due at `now`, now under way.
    fn pop_due(&mut self, now: u64) -> Option<DeliveryJob> {
        if self.paused {
            return None;
        }
        while let Some(&(due_at, id)) = self.due.first() {
            if due_at > now {
                return None;
            }
            self.due.pop_first();
            let Some(job) = self.waiting.remove(&id) else { continue };
            self.forget(&job);
            self.under_way.insert(id);
            self.count_kept();
            return Some(job.into_job(&self.endpoint));
        }
        None
    }

    /// `job` leaves the queue: its body no longer counts against the budget.
    fn forget(&self, job: &Kept) {
        self.dispatch.forget_body(job.charge());
    }

    /// Empties the due order and both maps, giving their bodies' budget back.
    fn forget_all(&mut self) {
        let bytes: usize =
            (self.waiting.values().chain(self.held.values())).map(Kept::charge).sum();
        self.dispatch.forget_body(bytes);
        self.due.clear();
        self.waiting.clear();
        self.held.clear();
        self.count_kept();
    }

    fn next_due_at(&self) -> Option<u64> {
        if self.paused {
            return None;
        }
        self.due.first().map(|(due_at, _)| *due_at)
    }

    /// Tells the spill how many jobs the queue holds now.
    fn count_kept(&self) {
        if let Some(spill) = &self.spill {
            spill.set_kept(self.waiting.len() + self.held.len());
        }
    }

    /// Queues a retry of `job`, or leaves it in the database when the queue keeps no more or
    /// deliveries due before it wait there.
    fn requeue(&mut self, job: DeliveryJob) {
        if let Some(spill) = &self.spill
            && job.order_key.is_none()
        {
            let at = position(&job);
            let full = self.waiting.len() + self.held.len() >= spill.limit();
            if full || spill.from().is_some_and(|from| at >= from) {
                spill.set_aside(at);
                return;
            }
        }
        self.push(job);
    }

    /// Sets aside the queued unordered jobs due at or after the first delivery that waits in
    /// the database, so that what is handed out stays in due order and a read back has room.
    fn set_aside_past_spill(&mut self) {
        let Some(spill) = &self.spill else { return };
        let Some(from) = spill.from() else { return };
        if self.due.last().is_none_or(|last| *last < from) {
            return;
        }
        for at in self.due.split_off(&from) {
            let Some(job) = self.waiting.get(&at.1) else { continue };
            if job.order_key.is_some() {
                self.due.insert(at);
                continue;
            }
            if let Some(job) = self.waiting.remove(&at.1) {
                self.forget(&job);
                spill.set_aside(at);
            }
        }
        self.count_kept();
    }

    /// Starts reading back deliveries left in the database, once the queue has drained to
    /// half, on a blocking thread.
    fn start_read(&mut self) {
        let Some(spill) = &self.spill else { return };
        let readers = match &self.dispatch.bound {
            Some(bound) => bound.readers.clone(),
            None => return,
        };
        if self.reading.is_some()
            || self.paused
            || self.read_again_at.is_some_and(|at| Instant::now() < at)
            || !spill.wants_read(self.waiting.len() + self.held.len())
        {
            return;
        }
        let Some(from) = spill.begin_read() else { return };
        let (endpoint, page) = (self.endpoint.clone(), spill.page());
        self.reading = Some(tokio::task::spawn_blocking(move || {
            readers.with(|reader| reader.pending_deliveries_from(&endpoint, from, page))
        }));
    }

    /// Takes the read back's rows if it has ended, without waiting.
    fn settle_read(&mut self) {
        let Some(reading) = self.reading.as_mut() else { return };
        let mut context = Context::from_waker(Waker::noop());
        if let Poll::Ready(read) = Pin::new(reading).poll(&mut context) {
            self.reading = None;
            self.read_back(read);
        }
    }

    /// Queues what a read back found, and moves the spill past it.
    fn read_back(&mut self, read: ReadResult) {
        let Some(spill) = self.spill.clone() else { return };
        let jobs = match read.map_err(|error| StoreError::Read(Box::new(error))).flatten() {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(endpoint = %self.endpoint, %error, "cannot read back the deliveries waiting in the database; trying again");
                spill.read_failed();
                self.read_again_at = Some(Instant::now() + READ_RETRY);
                return;
            }
        };
        self.read_again_at = None;
        let last = (jobs.len() >= spill.page()).then(|| jobs.last().map(position)).flatten();
        let mut taken = 0;
        for job in jobs {
            // Parked meanwhile: the store resumes it as a new job.
            if self.paused {
                break;
            }
            if self.push(job) {
                taken += 1;
            }
        }
        spill.end_read(last, taken);
        self.count_kept();
    }

    /// Where the queue stands after taking what arrived: reads settled, jobs past the spill
    /// set aside, a read started if it drained. Answers false once the feed is closed.
    fn catch_up(&mut self) -> bool {
        let open = self.take_fed();
        if self.spill.is_some() {
            self.settle_read();
            self.set_aside_past_spill();
            self.start_read();
        }
        open
    }
}

impl SqliteDueQueue {
    /// Jobs in memory: in the feed, waiting or held.
    #[cfg(test)]
    pub fn in_memory(&self) -> usize {
        self.feed.len() + self.waiting.len() + self.held.len()
    }

    /// Queues `jobs` read from the store (a delivery already queued or under way is kept
    /// once).
    pub fn add(&mut self, jobs: Vec<DeliveryJob>) {
        for job in jobs {
            let share = job.payload.as_ref().map_or(0, |payload| payload.body.len());
            let job = self.dispatch.keep(job, share);
            self.push_kept(job);
        }
        self.count_kept();
    }
}

/// Whether `feed`'s queue takes `job` in now (counted as fed then), or leaves it in the
/// database to read back later.
fn admits(feed: &Feed, job: &DeliveryJob) -> bool {
    let Some(spill) = &feed.spill else { return true };
    if job.order_key.is_none() && !spill.keeps(position(job)) {
        return false;
    }
    spill.fed();
    true
}

/// Each job's share of its body's length: a body that jobs of one commit share (a fan-out's,
/// one allocation for all its deliveries) is split between them.
fn body_shares(jobs: &[DeliveryJob]) -> Vec<usize> {
    let key = |body: &bytes::Bytes| (body.as_ptr() as usize, body.len());
    let mut sharers: HashMap<(usize, usize), usize> = HashMap::new();
    for payload in jobs.iter().filter_map(|job| job.payload.as_ref()) {
        *sharers.entry(key(&payload.body)).or_default() += 1;
    }
    let share = |body: &bytes::Bytes| {
        let sharers = sharers.get(&key(body)).copied().unwrap_or(1);
        body.len().div_ceil(sharers.max(1))
    };
    jobs.iter().map(|job| job.payload.as_ref().map_or(0, |payload| share(&payload.body))).collect()
}

/// What woke a queue waiting for its next job.
enum Woken {
    Fed(Option<Kept>),
    Read(ReadResult),
    Due,
}

impl DueQueue for SqliteDueQueue {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<DeliveryJob>> + Send + '_>> {
        Box::pin(async move {
            loop {
                let open = self.catch_up();
                if let Some(job) = self.pop_due(now_millis()) {
                    return Some(job);
                }
                if !open {
                    return None;
                }
                let due = self
                    .next_due_at()
                    .map(|due_at| Duration::from_millis(due_at.saturating_sub(now_millis())));
                // A failed read back is tried again then, even with a later job queued.
                let read_again =
                    self.read_again_at.map(|at| at.saturating_duration_since(Instant::now()));
                let wake = match (due, read_again) {
                    (Some(due), Some(read_again)) => Some(due.min(read_again)),
                    (due, read_again) => due.or(read_again),
                };
                let woken = {
                    let (feed, reading) = (&mut self.feed, &mut self.reading);
                    tokio::select! {
                        job = feed.recv() => Woken::Fed(job),
                        read = read_ended(reading) => Woken::Read(read),
                        () = sleep_for(wake) => Woken::Due,
                    }
                };
                match woken {
                    Woken::Fed(Some(job)) => {
                        self.take(job);
                        self.count_kept();
                    }
                    Woken::Fed(None) => return None,
                    Woken::Read(read) => {
                        self.reading = None;
                        self.read_back(read);
                    }
                    Woken::Due => {}
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
            self.due.remove(&position(left));
            self.forget(left);
        }
        if let Some(key) = &job.order_key
            && !matches!(next, NextStep::RetryAt(_))
            && let Some(released) = self.gate.settle(key, job.delivery_id)
            && let Some(next_job) = self.held.remove(&released)
        {
            // Its key's earlier delivery is delivered or dead: this one may go now.
            self.push_kept(next_job);
        }
        match next {
            NextStep::RetryAt(at) if !self.paused => {
                job.attempts += 1;
                job.due_at = at;
                // Bodies of deliveries that wait are read again when due.
                job.payload = None;
                self.requeue(job);
            }
            NextStep::DisableEndpoint => self.pause(),
            NextStep::RetryAt(_) | NextStep::Delivered | NextStep::DeadLetter => {}
        }
        self.count_kept();
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
        // The store parked every pending delivery of the endpoint: none waits for a read back.
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
        if let Some(spill) = &self.spill {
            spill.clear();
        }
    }

    fn resume(&mut self) {
        self.paused = false;
    }

    /// Jobs queued: in the feed, waiting, held, and those left in the database (an estimate).
    fn len(&self) -> usize {
        let in_database = self.spill.as_ref().map_or(0, |spill| spill.in_database());
        self.feed.len() + self.waiting.len() + self.held.len() + in_database
    }
}

impl Drop for SqliteDueQueue {
    fn drop(&mut self) {
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
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

/// The read back under way's result, once it ends; never, when none is under way.
async fn read_ended(reading: &mut Option<ReadBack>) -> ReadResult {
    match reading {
        Some(reading) => reading.await,
        None => std::future::pending().await,
    }
}
