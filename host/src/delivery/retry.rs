//! Retry timing and outcome classes for deliveries: pure functions of an attempt's result.
//!
//! Owns DESIGN §5's retry policy: the `"standard"` and custom schedules, which answers deliver,
//! retry, disable the endpoint or go to the dead letters, the ±20 % jitter, and how
//! `Retry-After` bends the next wait.
//!
//! Must not: read a clock or draw random numbers (the caller passes `now` and a jitter sample),
//! do I/O, or name HTTP client types (an attempt's result arrives as [`AttemptError`]).
//!
//! Schedules list the delays *between* attempts; the first attempt is immediate, so `n`
//! delays allow `n + 1` attempts (`"standard"`: 9 delays, 10 attempts).
//!
//! Jitter: each delay is scaled by `1 + 0.2 × sample`, where the caller draws `sample`
//! uniformly from `[-1, 1]`; samples outside that range are clamped and `NaN` counts as 0.
//!
//! `Retry-After` policy (our decision; DESIGN §5 only says "bounded by the schedule's next
//! step and 24 h"): it is honoured only on 429, 502, 503 and 504. The wait is then the
//! `Retry-After` value clamped so that it is never shorter than the schedule's jittered next
//! step and never longer than 24 h; when the schedule's own step is longer than 24 h, the step
//! wins. So a receiver can slow its retries down but never speed them up past the schedule,
//! nor park a delivery for days. It never adds attempts: the last attempt still dead-letters.
//! An unparsable `Retry-After` is ignored (the schedule alone decides).

use std::time::{Duration, SystemTime};

/// The `"standard"` schedule's delays between attempts: 10 attempts in all.
pub const STANDARD_DELAYS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_mins(5),
    Duration::from_mins(30),
    Duration::from_hours(2),
    Duration::from_hours(5),
    Duration::from_hours(10),
    Duration::from_hours(14),
    Duration::from_hours(20),
    Duration::from_hours(24),
];

/// How far jitter moves a delay, as a fraction of it (±20 %).
pub const JITTER_FRACTION: f64 = 0.2;

/// The longest wait a `Retry-After` can ask for (unless the schedule's step is longer).
pub const RETRY_AFTER_CEILING: Duration = Duration::from_hours(24);

/// The delays between a delivery's attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// How one attempt ended, as the delivery code saw it (any HTTP answer, 2xx included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// An HTTP answer, with its `Retry-After` already parsed by [`parse_retry_after`].
    Status { code: u16, retry_after: Option<Duration> },
    /// No answer within the endpoint's timeout.
    Timeout,
    /// The connection failed (refused, reset, TLS error, …).
    Connection,
    /// The host name did not resolve.
    Dns,
    /// Never worth retrying, e.g. the SSRF guard refused every resolved address. The caller
    /// keeps the reason for the attempt record; the decision does not need it.
    Permanent,
}

/// The class of an attempt's outcome; see [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeClass {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver wants no more deliveries.
    EndpointGone,
    /// 429, 502, 503, 504 or a timeout: the receiver is overloaded; retried, and the statuses
    /// may carry a `Retry-After`.
    Overloaded,
    /// 3xx (redirects are never followed), any other status, connection and DNS errors.
    Failed,
    /// No retry: straight to the dead letters.
    Permanent,
}

/// What to do with the delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// 410 Gone: disable the endpoint (and park its pending deliveries).
    Disable,
    /// Try again after this wait, measured from the attempt that just ended.
    RetryAfter(Duration),
    /// Attempts exhausted, or a permanent failure.
    DeadLetter,
}

// === impl RetrySchedule ===

impl RetrySchedule {
    /// DESIGN §5's `"standard"` schedule: now, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
    /// 20 h and 24 h.
    pub fn standard() -> Self {
        Self { delays: STANDARD_DELAYS.to_vec() }
    }

    /// A schedule of delays between attempts: `[5s, 5m, 30m]` makes 4 attempts, and an empty
    /// list a single attempt with no retry.
    pub fn custom(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The delays between attempts, unjittered.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The unjittered wait before attempt number `attempt_number` (1-based): zero for the
    /// first, `None` for 0 and for numbers past [`Self::max_attempts`].
    pub fn delay_before(&self, attempt_number: u32) -> Option<Duration> {
        match attempt_number {
            0 => None,
            1 => Some(Duration::ZERO),
            later => {
                let index = usize::try_from(later - 2).ok()?;
                self.delays.get(index).copied()
            }
        }
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

// === impl AttemptError ===

impl AttemptError {
    /// The parsed `Retry-After` of an HTTP answer, whatever its status.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::Timeout | Self::Connection | Self::Dns | Self::Permanent => None,
        }
    }
}

// === classification and decision ===

/// Classifies an attempt's result (DESIGN §5).
pub fn classify(result: &AttemptError) -> OutcomeClass {
    match result {
        AttemptError::Status { code: 200..=299, .. } => OutcomeClass::Delivered,
        AttemptError::Status { code: 410, .. } => OutcomeClass::EndpointGone,
        AttemptError::Status { code: 429 | 502 | 503 | 504, .. } | AttemptError::Timeout => {
            OutcomeClass::Overloaded
        }
        AttemptError::Status { .. } | AttemptError::Connection | AttemptError::Dns => {
            OutcomeClass::Failed
        }
        AttemptError::Permanent => OutcomeClass::Permanent,
    }
}

/// Decides what follows attempt number `attempts_made` (1-based: the attempt that just ended),
/// classifying `result` and taking its `Retry-After`. `jitter_sample` is drawn by the caller,
/// uniformly from `[-1, 1]`.
pub fn decide(
    schedule: &RetrySchedule,
    attempts_made: u32,
    result: &AttemptError,
    jitter_sample: f64,
) -> Decision {
    decide_classified(
        schedule,
        attempts_made,
        classify(result),
        result.retry_after(),
        jitter_sample,
    )
}

/// [`decide`] for an outcome classified already. `retry_after` counts only for
/// [`OutcomeClass::Overloaded`]; see the module documentation for how it is bounded.
pub fn decide_classified(
    schedule: &RetrySchedule,
    attempts_made: u32,
    outcome: OutcomeClass,
    retry_after: Option<Duration>,
    jitter_sample: f64,
) -> Decision {
    match outcome {
        OutcomeClass::Delivered => Decision::Delivered,
        OutcomeClass::EndpointGone => Decision::Disable,
        OutcomeClass::Permanent => Decision::DeadLetter,
        OutcomeClass::Overloaded | OutcomeClass::Failed => {
            let Some(step) = schedule.delay_before(attempts_made.saturating_add(1)) else {
                return Decision::DeadLetter;
            };
            let step = apply_jitter(step, jitter_sample);
            let wait = match (outcome, retry_after) {
                (OutcomeClass::Overloaded, Some(asked)) => step.max(asked.min(RETRY_AFTER_CEILING)),
                _ => step,
            };
            Decision::RetryAfter(wait)
        }
    }
}

/// `delay × (1 + 0.2 × sample)`, with `sample` clamped to `[-1, 1]` (`NaN` counts as 0).
pub fn apply_jitter(delay: Duration, sample: f64) -> Duration {
    let sample = if sample.is_nan() { 0.0 } else { sample.clamp(-1.0, 1.0) };
    if sample == 0.0 {
        return delay;
    }
    let factor = 1.0 + JITTER_FRACTION * sample;
    Duration::try_from_secs_f64(delay.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms). A date in the past means zero. `None` for anything
/// else, including negative or fractional numbers. A number too large for `u64` saturates
/// (the ceiling applies later anyway).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests;
