//! Whether the store can commit, for `/readyz`, and the throttle that keeps a failing store
//! from flooding the log.
//!
//! Owns [`StoreHealth`]: the store's writer reports each batch (committed, or failed with a
//! reason) with a one-line call, and readiness reads it; whichever backend runs does the
//! same. A failure is believed until a commit succeeds or, with no write tried since, for
//! [`FAILURE_BELIEVED_FOR`]: a router with no traffic cannot learn that the store recovered,
//! and answering 503 forever would keep the traffic that would tell away.
//!
//! Also owns [`ProjectionProgress`]: in cluster mode, how far this node's projection of the
//! store's log is behind, which `/readyz` reports, and whether it has caught up with the log
//! as it stood when the node started (not ready before).
//!
//! Also owns [`log_store_error`]: an error repeated with the same words is logged once per
//! [`LOG_INTERVAL`], the next line saying how many were left out. It must not decide
//! anything about requests; it only reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a store failure stands without any write tried since.
pub const FAILURE_BELIEVED_FOR: Duration = Duration::from_secs(10);
/// The shortest time between two log lines of the same store error.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Distinct messages tracked at once; past that the table starts over (and logs again).
const MAX_TRACKED: usize = 256;

/// The store's ability to commit, shared by its writer and readiness.
#[derive(Debug, Default)]
pub struct StoreHealth {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// The last failure's reason and when it happened, until a commit succeeds.
    failing: Option<(String, Instant)>,
    /// Batches failed since the last success.
    failures: u64,
}

// === impl StoreHealth ===

impl StoreHealth {
    /// A batch was committed: the store works.
    pub fn commit_succeeded(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.failing.take().is_some() {
            tracing::info!(failed_batches = state.failures, "store commits succeed again");
        }
        state.failures = 0;
    }

    /// A batch could not be committed (or none of its writes could be made) for `reason`.
    pub fn commit_failed(&self, reason: &str) {
        self.commit_failed_at(reason, Instant::now());
    }

    fn commit_failed_at(&self, reason: &str, now: Instant) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.failing = Some((reason.to_owned(), now));
        state.failures += 1;
    }

    /// Why the store cannot commit now, or `None` when it can (as far as anyone knows).
    pub fn problem(&self) -> Option<String> {
        self.problem_at(Instant::now())
    }

    fn problem_at(&self, now: Instant) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (reason, at) = state.failing.as_ref()?;
        (now.saturating_duration_since(*at) < FAILURE_BELIEVED_FOR)
            .then(|| format!("the store cannot commit: {reason}"))
    }
}

/// How far a cluster node's projection is behind its store's log; untouched (and not
/// reported) on a single node.
#[derive(Debug, Default)]
pub struct ProjectionProgress {
    /// Set once by the cluster store when it opens.
    tracked: AtomicBool,
    /// Log entries known to be in the log and not applied here yet.
    lag: AtomicU64,
    /// The log's last entry when the node started, and whether it was applied since.
    start_target: AtomicU64,
    caught_up: AtomicBool,
    /// Set when entries this node had not applied were trimmed from the log: it stopped
    /// applying, and is not ready until restarted.
    trimmed: Mutex<Option<String>>,
}

// === impl ProjectionProgress ===

impl ProjectionProgress {
    /// The cluster store opened, with the log ending at `last` (its entry to reach before
    /// the node is ready).
    pub fn track(&self, last: u64) {
        self.start_target.store(last, Ordering::Release);
        self.tracked.store(true, Ordering::Release);
    }

    /// The projection has applied up to `applied`; the log is known to reach `known_last`.
    pub fn applied(&self, applied: u64, known_last: u64) {
        self.lag.store(known_last.saturating_sub(applied), Ordering::Release);
        if applied >= self.start_target.load(Ordering::Acquire) {
            self.caught_up.store(true, Ordering::Release);
        }
    }

    /// The log entry `wanted` next was trimmed (the log starts at `first`): this node stops
    /// applying, and says so in `/readyz` until it is restarted.
    pub fn trimmed(&self, wanted: u64, first: u64) {
        let reason = format!(
            "the store's log was trimmed past this node's projection (it needs entry {wanted}, \
             the log starts at {first}): restart the node to restore the newest snapshot"
        );
        *self.trimmed.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }

    /// The lag to report, `None` on a single node.
    pub fn lag(&self) -> Option<u64> {
        self.tracked.load(Ordering::Acquire).then(|| self.lag.load(Ordering::Acquire))
    }

    /// Why the node is not ready yet: its projection has not reached the log's end as of
    /// its start.
    pub fn problem(&self) -> Option<String> {
        if let Some(reason) = self.trimmed.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Some(reason);
        }
        let behind =
            self.tracked.load(Ordering::Acquire) && !self.caught_up.load(Ordering::Acquire);
        behind.then(|| {
            format!(
                "the store's projection is catching up with its log ({} entries behind)",
                self.lag.load(Ordering::Acquire)
            )
        })
    }
}

/// Decides which repeated messages get a log line: the first, then one per interval.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    /// Message → when it was last logged, and how many were left out since.
    seen: HashMap<String, (Instant, u64)>,
}

/// Whether to log a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it, saying that `left_out` identical lines were not logged before it.
    Log {
        left_out: u64,
    },
    Quiet,
}

// === impl Throttle ===

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self { interval, seen: HashMap::new() }
    }

    pub fn admit(&mut self, message: &str, now: Instant) -> Admit {
        if let Some((logged, left_out)) = self.seen.get_mut(message) {
            if now.saturating_duration_since(*logged) < self.interval {
                *left_out += 1;
                return Admit::Quiet;
            }
            let admitted = Admit::Log { left_out: *left_out };
            *logged = now;
            *left_out = 0;
            return admitted;
        }
        if self.seen.len() >= MAX_TRACKED {
            self.seen.clear();
        }
        self.seen.insert(message.to_owned(), (now, 0));
        Admit::Log { left_out: 0 }
    }
}

static STORE_ERRORS: LazyLock<Mutex<Throttle>> =
    LazyLock::new(|| Mutex::new(Throttle::new(LOG_INTERVAL)));

/// Logs the store error `error` under `what` at ERROR level, once per [`LOG_INTERVAL`] for
/// the same words; the line says how many identical ones were left out before it.
pub fn log_store_error(what: &str, error: &dyn std::fmt::Display) {
    let error = error.to_string();
    let key = format!("{what}: {error}");
    let admitted =
        STORE_ERRORS.lock().unwrap_or_else(PoisonError::into_inner).admit(&key, Instant::now());
    match admitted {
        Admit::Quiet => {}
        Admit::Log { left_out: 0 } => tracing::error!(%error, "{what}"),
        Admit::Log { left_out } => {
            tracing::error!(%error, repeated = left_out, "{what} (and {left_out} more like it)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_node_is_not_ready_until_its_projection_reaches_the_log_end_of_its_start() {
        let progress = ProjectionProgress::default();
        assert_eq!((progress.lag(), progress.problem()), (None, None), "single node");
        progress.track(100);
        progress.applied(40, 100);
        assert_eq!(progress.lag(), Some(60));
        assert_eq!(
            progress.problem().as_deref(),
            Some("the store's projection is catching up with its log (60 entries behind)")
        );
        progress.applied(100, 120);
        assert_eq!((progress.lag(), progress.problem()), (Some(20), None));
        // Falling behind later is reported, not a reason to stop taking traffic.
        progress.applied(100, 500);
        assert_eq!((progress.lag(), progress.problem()), (Some(400), None));
    }

    #[test]
    fn a_repeated_message_is_logged_once_per_interval_with_the_count_left_out() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(10));
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let admitted: Vec<Admit> = [0, 1, 2, 9, 10, 11, 25]
            .into_iter()
            .map(|second| throttle.admit("disk full", at(second)))
            .collect();
        assert_eq!(
            admitted,
            [
                Admit::Log { left_out: 0 },
                Admit::Quiet,
                Admit::Quiet,
                Admit::Quiet,
                Admit::Log { left_out: 3 },
                Admit::Quiet,
                Admit::Log { left_out: 1 },
            ]
        );
        // Other words are another line.
        assert_eq!(throttle.admit("locked", at(26)), Admit::Log { left_out: 0 });
    }

    #[test]
    fn a_failure_stands_until_a_commit_succeeds_or_it_grows_old() {
        let health = StoreHealth::default();
        let start = Instant::now();
        assert_eq!(health.problem_at(start), None);
        health.commit_failed_at("database is locked", start);
        assert_eq!(
            health.problem_at(start + Duration::from_secs(1)).as_deref(),
            Some("the store cannot commit: database is locked")
        );
        assert_eq!(health.problem_at(start + FAILURE_BELIEVED_FOR), None);
        health.commit_failed_at("database is locked", start);
        health.commit_succeeded();
        assert_eq!(health.problem_at(start), None);
    }
}
