//! How many jobs one due-queue keeps in memory, and which of its endpoint's pending
//! deliveries wait in the database only.
//!
//! Owns [`Spill`], shared by an endpoint's queue and the writer's dispatch. A queue keeps at
//! most `limit` jobs (in its feed, waiting or held); a job past that is not kept: its row stays
//! pending in the database, and the queue reads such rows back, earliest due first, once it has
//! drained to half. Without it, an endpoint that takes nothing (its breaker open, its host
//! down) held every delivery made for it meanwhile, ~0.8 KB each.
//!
//! What keeps this lossless is one rule about `from`, a position in the order the queue
//! hands jobs out (due time, then id): every pending delivery of the endpoint before `from` is
//! in memory (queued, in the feed or under way); those at or after it may be in the database
//! only. Not keeping a job lowers `from` to the job's position. A read back moves `from` past
//! the last row it read, but never past a job dropped while it ran (a row committed after the
//! read's snapshot). Memory may also hold jobs after `from`: the queue sets those aside, and a
//! read that meets one again keeps it once. Ordered deliveries are always kept, since their
//! key's line needs every one of them; an ordered endpoint's memory is not bounded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::store::{DeliveryId, DeliveryJob};

/// A job's place in the order its queue hands jobs out: due time (unix ms), then id.
pub(in crate::store::sqlite) type Position = (u64, DeliveryId);

pub(in crate::store::sqlite) fn position(job: &DeliveryJob) -> Position {
    (job.due_at, job.delivery_id)
}

/// One queue's count of jobs kept, and where the deliveries it did not keep begin.
#[derive(Debug)]
pub(in crate::store::sqlite) struct Spill {
    endpoint: String,
    limit: usize,
    /// Jobs handed to the feed and not yet taken from it.
    fed: AtomicUsize,
    /// Jobs the queue holds (waiting and held), as it last counted them.
    kept: AtomicUsize,
    /// Whether `from` is set: what the writer reads for each job, rather than the lock.
    spilling: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    from: Option<Position>,
    /// The earliest job not kept since the read back under way began.
    dropped_while_reading: Option<Position>,
    /// Deliveries not kept and not read back yet: an estimate, shown as queued.
    in_database: usize,
}

impl Spill {
    /// A queue's spill for `endpoint`, keeping `limit` jobs; `from` and `in_database` are what
    /// loading the pending deliveries at open left in the database.
    pub fn new(endpoint: &str, limit: usize, from: Option<Position>, in_database: usize) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            limit,
            fed: AtomicUsize::new(0),
            kept: AtomicUsize::new(0),
            spilling: AtomicBool::new(from.is_some()),
            state: Mutex::new(State { from, dropped_while_reading: None, in_database }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few assignments that cannot panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn held(&self) -> usize {
        self.fed.load(Ordering::Relaxed) + self.kept.load(Ordering::Relaxed)
    }

    /// Whether the queue keeps a new unordered job at `at` (the writer asks, before handing it
    /// over); when it does not, its delivery waits in the database from now on.
    pub fn keeps(&self, at: Position) -> bool {
        if !self.spilling.load(Ordering::Relaxed) && self.held() < self.limit {
            return true;
        }
        let mut state = self.lock();
        if state.from.is_some_and(|from| at >= from) || self.held() >= self.limit {
            self.not_kept(&mut state, at);
            return false;
        }
        true
    }

    /// The queue set aside (or did not take back) a job at `at`: it waits in the database.
    pub fn set_aside(&self, at: Position) {
        let mut state = self.lock();
        self.not_kept(&mut state, at);
    }

    fn not_kept(&self, state: &mut State, at: Position) {
        if state.from.is_none() {
            tracing::info!(endpoint = %self.endpoint, kept = self.limit, "due-queue full: further deliveries wait in the database until it drains");
        }
        state.from = Some(earliest(state.from, at));
        state.dropped_while_reading = Some(earliest(state.dropped_while_reading, at));
        state.in_database += 1;
        self.spilling.store(true, Ordering::Relaxed);
    }

    /// A job was handed to the feed (counted before it is sent: the queue may take it at once).
    pub fn fed(&self) {
        self.fed.fetch_add(1, Ordering::Relaxed);
    }

    /// A job handed to the feed was taken from it, or never reached it.
    pub fn taken(&self) {
        self.fed.fetch_sub(1, Ordering::Relaxed);
    }

    /// The queue holds `jobs` now.
    pub fn set_kept(&self, jobs: usize) {
        self.kept.store(jobs, Ordering::Relaxed);
    }

    /// Where the deliveries not kept begin, if any were not.
    pub fn from(&self) -> Option<Position> {
        if !self.spilling.load(Ordering::Relaxed) {
            return None;
        }
        self.lock().from
    }

    /// Deliveries waiting in the database only (an estimate).
    pub fn in_database(&self) -> usize {
        if !self.spilling.load(Ordering::Relaxed) {
            return 0;
        }
        self.lock().in_database
    }

    /// The most jobs the queue keeps.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many rows one read back asks for: half of what the queue keeps.
    pub fn page(&self) -> usize {
        (self.limit / 2).max(1)
    }

    /// Whether the queue, holding `queued` jobs, should read deliveries back now: some wait in
    /// the database and it has drained to half.
    pub fn wants_read(&self, queued: usize) -> bool {
        self.spilling.load(Ordering::Relaxed)
            && queued + self.fed.load(Ordering::Relaxed) < self.page()
    }

    /// A read back begins: answers where it starts.
    pub fn begin_read(&self) -> Option<Position> {
        let mut state = self.lock();
        state.dropped_while_reading = None;
        state.from
    }

    /// A read back ended: `last` is the last row it read when it read a full page (more may
    /// follow), `None` when it read every row left; `taken` counts the rows the queue did not
    /// hold already.
    pub fn end_read(&self, last: Option<Position>, taken: usize) {
        let mut state = self.lock();
        let after_last = last.map(|(due_at, id)| (due_at, DeliveryId::new(id.get() + 1)));
        state.from = match (after_last, state.dropped_while_reading) {
            (Some(after), dropped) => Some(earliest(dropped, after)),
            (None, dropped) => dropped,
        };
        state.in_database = match state.from {
            Some(_) => state.in_database.saturating_sub(taken),
            None => 0,
        };
        self.spilling.store(state.from.is_some(), Ordering::Relaxed);
    }

    /// A read back failed: it will be tried again from where it began.
    pub fn read_failed(&self) {
        let mut state = self.lock();
        if let Some(dropped) = state.dropped_while_reading {
            state.from = Some(earliest(state.from, dropped));
        }
    }

    /// Nothing waits in the database any more: the endpoint's pending deliveries were parked.
    pub fn clear(&self) {
        let mut state = self.lock();
        *state = State::default();
        self.spilling.store(false, Ordering::Relaxed);
    }
}

fn earliest(current: Option<Position>, at: Position) -> Position {
    current.map_or(at, |current| current.min(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(due_at: u64, id: u64) -> Position {
        (due_at, DeliveryId::new(id))
    }

    #[test]
    fn a_queue_keeps_jobs_up_to_its_limit_then_none_after_the_first_it_did_not_keep() {
        let spill = Spill::new("hook", 2, None, 0);
        assert!(spill.keeps(at(5, 1)));
        spill.fed();
        assert!(spill.keeps(at(5, 2)));
        spill.fed();
        assert!(!spill.keeps(at(5, 3)), "full");
        assert_eq!(spill.from(), Some(at(5, 3)));
        // Taken from the feed and handed out: room again, but a job after the first one not
        // kept stays in the database, or it would be handed out before it.
        spill.taken();
        spill.taken();
        assert!(!spill.keeps(at(5, 4)));
        // One due earlier (a retry's place, or a clock step) is kept while there is room.
        assert!(spill.keeps(at(4, 9)));
        assert_eq!(spill.in_database(), 2);
    }

    #[test]
    fn a_read_back_moves_past_what_it_read_but_not_past_a_job_dropped_meanwhile() {
        let spill = Spill::new("hook", 4, Some(at(10, 1)), 100);
        assert!(spill.wants_read(0));
        assert_eq!(spill.begin_read(), Some(at(10, 1)));
        // While the read ran, a job committed after its snapshot was not kept.
        spill.set_aside(at(12, 500));
        spill.end_read(Some(at(20, 7)), 2);
        assert_eq!(spill.from(), Some(at(12, 500)));
        // The next read finds nothing more, and nothing was dropped meanwhile: all is kept.
        assert_eq!(spill.begin_read(), Some(at(12, 500)));
        spill.end_read(None, 0);
        assert_eq!(spill.from(), None);
        assert_eq!(spill.in_database(), 0);
        assert!(!spill.wants_read(0));
    }

    #[test]
    fn a_full_page_read_back_resumes_right_after_its_last_row() {
        let spill = Spill::new("hook", 4, Some(at(10, 1)), 9);
        spill.begin_read();
        spill.end_read(Some(at(11, 6)), 2);
        assert_eq!(spill.from(), Some(at(11, 7)));
        assert_eq!(spill.in_database(), 7);
        // A failed read keeps its start, lowered by anything dropped while it ran.
        spill.begin_read();
        spill.set_aside(at(3, 50));
        spill.read_failed();
        assert_eq!(spill.from(), Some(at(3, 50)));
    }
}
