//! A token bucket: `burst` tokens at most, refilled at a [`Rate`]; one token per event.
//!
//! Pure: every method takes the current instant, so tests move time by hand. Ingest limits
//! ask [`TokenBucket::take`] and refuse what finds no token (answering how long until one);
//! endpoint delivery rates wait that long instead.

use std::time::{Duration, Instant};

use super::rate::Rate;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    updated_at: Instant,
}

impl TokenBucket {
    /// A full bucket (`burst` tokens, at least one) at `now`.
    pub fn new(rate: Rate, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self { per_second: rate.per_second(), burst, tokens: burst, updated_at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        // Never backwards: an instant older than the last one adds nothing.
        self.updated_at = self.updated_at.max(now);
    }

    /// Takes a token if there is one; otherwise answers how long until there is.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.missing_for(1.0))
        }
    }

    /// How long until a token is there (zero if one is), without taking it.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 { Duration::ZERO } else { self.missing_for(1.0) }
    }

    /// How long until a token is there, but `early`: a waiter that wakes late by at most
    /// `early` then loses no time, so the rate is kept on average. Takes nothing.
    pub fn wait_early(&mut self, now: Instant, early: Duration) -> Duration {
        self.refill(now);
        let wanted = 1.0 - self.per_second * early.as_secs_f64();
        if self.tokens >= wanted { Duration::ZERO } else { self.missing_for(wanted) }
    }

    /// Takes a token that [`TokenBucket::wait_early`] said is there, owing the part that is
    /// not yet: the next refill pays it back.
    pub fn take_owed(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// Whether it is full at `now`: a full bucket is the same as a new one, so it can be
    /// forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn missing_for(&self, wanted: f64) -> Duration {
        let seconds = (wanted - self.tokens) / self.per_second;
        // Rounded up a little so that waiting exactly this long finds the token there.
        Duration::from_secs_f64(seconds.max(0.0)) + Duration::from_micros(1)
    }

    /// Same settings? A config change replaces the bucket, one that changes nothing keeps it.
    pub fn has_settings(&self, rate: Rate, burst: u32) -> bool {
        self.per_second == rate.per_second() && self.burst == f64::from(burst.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::parse(text).unwrap()
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_one_token_per_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate("20/s"), 20, start);
        for _ in 0..20 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(wait > Duration::from_millis(49) && wait <= Duration::from_millis(51), "{wait:?}");
        // After a second, twenty more, and not one more.
        let later = start + Duration::from_secs(1);
        for _ in 0..20 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn waiting_the_answered_time_finds_a_token() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate("3/s"), 1, start);
        assert!(bucket.take(start).is_ok());
        let wait = bucket.take(start).unwrap_err();
        assert_eq!(bucket.wait(start), wait);
        assert!(bucket.take(start + wait).is_ok());
    }

    #[test]
    fn an_idle_bucket_fills_up_to_its_burst_and_no_further() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate("10/s"), 5, start);
        assert!(bucket.is_full(start));
        bucket.take(start).unwrap();
        assert!(!bucket.is_full(start));
        let hour_later = start + Duration::from_secs(3600);
        assert!(bucket.is_full(hour_later));
        let taken = (0..100).filter(|_| bucket.take(hour_later).is_ok()).count();
        assert_eq!(taken, 5);
    }

    #[test]
    fn an_instant_older_than_the_last_one_adds_nothing() {
        let start = Instant::now();
        let later = start + Duration::from_secs(1);
        let mut bucket = TokenBucket::new(rate("1/s"), 1, later);
        bucket.take(later).unwrap();
        assert!(bucket.take(start).is_err());
        assert!(bucket.take(later + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn waking_up_to_early_late_loses_no_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate("50/s"), 1, start);
        let early = Duration::from_millis(1);
        let mut now = start;
        let mut taken = 0;
        // A waiter that always wakes a millisecond late.
        while now < start + Duration::from_secs(10) {
            let wait = bucket.wait_early(now, early);
            if wait.is_zero() {
                bucket.take_owed(now);
                taken += 1;
            } else {
                now += wait + early;
            }
        }
        assert!((500..=501).contains(&taken), "{taken}");
    }

    #[test]
    fn a_burst_of_zero_still_lets_one_through() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(rate("1/s"), 0, start);
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_err());
        assert!(bucket.has_settings(rate("1/s"), 1));
        assert!(!bucket.has_settings(rate("2/s"), 1));
    }
}
