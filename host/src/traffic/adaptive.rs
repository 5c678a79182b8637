//! Adaptive concurrency: additive increase, multiplicative decrease of an endpoint's
//! in-flight limit between 1 and its `max_in_flight`.
//!
//! Pure: instants are passed in. The limit starts at the maximum. Every success adds
//! `1 / limit` (about one more slot per round of `limit` successes); an overload signal
//! (429, 503, a timeout, a connection error) halves it, at most once per round: signals from
//! attempts that started before the last decrease are the same congestion and are ignored.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Aimd {
    maximum: u32,
    limit: f64,
    last_decrease: Option<Instant>,
    decreases: u64,
}

impl Aimd {
    pub fn new(maximum: u32) -> Self {
        let maximum = maximum.max(1);
        Self { maximum, limit: f64::from(maximum), last_decrease: None, decreases: 0 }
    }

    /// A new maximum; the limit is kept within it.
    pub fn set_maximum(&mut self, maximum: u32) {
        self.maximum = maximum.max(1);
        self.limit = self.limit.min(f64::from(self.maximum));
    }

    /// Attempts allowed under way at once now.
    pub fn limit(&self) -> u32 {
        (self.limit.floor() as u32).clamp(1, self.maximum)
    }

    pub fn success(&mut self) {
        self.limit = (self.limit + 1.0 / self.limit).min(f64::from(self.maximum));
    }

    /// An attempt that started at `started_at` met an overloaded endpoint at `now`.
    pub fn overload(&mut self, started_at: Instant, now: Instant) {
        if self.last_decrease.is_some_and(|last| started_at < last) {
            return;
        }
        self.limit = (self.limit / 2.0).max(1.0);
        self.last_decrease = Some(now);
        self.decreases += 1;
    }

    /// How many times the limit was halved.
    pub fn decreases(&self) -> u64 {
        self.decreases
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn overload_halves_down_to_one_and_successes_grow_it_back_to_the_maximum() {
        let start = Instant::now();
        let mut aimd = Aimd::new(16);
        assert_eq!(aimd.limit(), 16);
        let mut limits = Vec::new();
        for round in 0..6 {
            let at = start + Duration::from_secs(round);
            aimd.overload(at, at);
            limits.push(aimd.limit());
        }
        assert_eq!(limits, [8, 4, 2, 1, 1, 1]);
        // Additive: from 1, about one more per round of `limit` successes.
        let mut successes = 0;
        while aimd.limit() < 16 {
            aimd.success();
            successes += 1;
            assert!(successes < 1000, "never grew back");
        }
        // 1 + 2 + … + 15 successes, give or take rounding.
        assert!((110..=130).contains(&successes), "{successes}");
        aimd.success();
        assert_eq!(aimd.limit(), 16);
    }

    #[test]
    fn signals_from_attempts_started_before_the_last_decrease_are_ignored() {
        let start = Instant::now();
        let mut aimd = Aimd::new(32);
        let later = start + Duration::from_millis(10);
        // Thirty attempts started together all time out: one halving.
        for _ in 0..30 {
            aimd.overload(start, later);
        }
        assert_eq!((aimd.limit(), aimd.decreases()), (16, 1));
        // One started after it: another.
        aimd.overload(later, later + Duration::from_millis(10));
        assert_eq!(aimd.limit(), 8);
    }

    #[test]
    fn a_lower_maximum_lowers_the_limit() {
        let mut aimd = Aimd::new(10);
        aimd.set_maximum(4);
        assert_eq!(aimd.limit(), 4);
        aimd.set_maximum(0);
        assert_eq!(aimd.limit(), 1);
    }
}
