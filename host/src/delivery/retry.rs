//! Retry timing and outcome classes: pure functions of an attempt's result.
//!
//! Owns DESIGN §5's policy: which answers deliver, retry, disable the endpoint or dead-letter,
//! and how long to wait. Time and randomness (the jitter sample) are passed in.
//!
//! `Retry-After` (on 429, 502, 503, 504) is honoured this way: the wait is never shorter than
//! the schedule's jittered next step nor than what the endpoint asked, and never longer than
//! 24 h (unless the schedule's own step is longer). So an endpoint can slow retries down but
//! cannot make them faster than the schedule, nor park a delivery for days.

use std::time::{Duration, SystemTime};

/// The longest a `Retry-After` can stretch one wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Jitter: each delay is scaled by `1 + JITTER × sample`, sample in `[-1, 1]`.
const JITTER: f64 = 0.2;

/// Delays between attempts; the first attempt is immediate, so `n` delays allow `n + 1`
/// attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    pub fn custom(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// The delay after attempt number `attempt` (1-based) failed; `None` when it was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.delays.get(index).copied()
    }
}

/// How an attempt ended, before classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// An HTTP answer (any status), with the parsed `Retry-After` if it had one.
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    Timeout,
    Connection,
    Dns,
    /// Never worth retrying (e.g. the egress policy refused the address).
    Permanent,
}

/// What to do with the delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Delivered,
    /// 410 Gone: disable the endpoint.
    Disable,
    RetryAfter(Duration),
    DeadLetter,
}

/// Decides after attempt number `attempt` (1-based); `jitter_sample` is uniform in `[-1, 1]`.
pub fn decide(
    schedule: &RetrySchedule,
    attempt: u32,
    result: &AttemptError,
    jitter_sample: f64,
) -> Decision {
    let retry_after = match result {
        AttemptError::Status { code: 200..=299, .. } => return Decision::Delivered,
        AttemptError::Status { code: 410, .. } => return Decision::Disable,
        AttemptError::Permanent => return Decision::DeadLetter,
        AttemptError::Status { code: 429 | 502 | 503 | 504, retry_after } => *retry_after,
        AttemptError::Status { .. }
        | AttemptError::Timeout
        | AttemptError::Connection
        | AttemptError::Dns => None,
    };
    let Some(step) = schedule.delay_after(attempt) else { return Decision::DeadLetter };
    let jittered = step.mul_f64(1.0 + JITTER * jitter_sample.clamp(-1.0, 1.0));
    let delay = match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER.max(step))),
        None => jittered,
    };
    Decision::RetryAfter(delay)
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (a past date means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::STANDARD_RETRY_DELAYS;

    fn standard() -> RetrySchedule {
        RetrySchedule::custom(STANDARD_RETRY_DELAYS.to_vec())
    }

    fn status(code: u16) -> AttemptError {
        AttemptError::Status { code, retry_after: None }
    }

    #[test]
    fn outcome_classes() {
        let five_seconds = Decision::RetryAfter(Duration::from_secs(5));
        let table = [
            (status(200), Decision::Delivered),
            (status(204), Decision::Delivered),
            (status(301), five_seconds),
            (status(400), five_seconds),
            (status(410), Decision::Disable),
            (status(429), five_seconds),
            (status(500), five_seconds),
            (status(503), five_seconds),
            (AttemptError::Timeout, five_seconds),
            (AttemptError::Connection, five_seconds),
            (AttemptError::Dns, five_seconds),
            (AttemptError::Permanent, Decision::DeadLetter),
        ];
        for (result, expected) in table {
            assert_eq!(decide(&standard(), 1, &result, 0.0), expected, "{result:?}");
        }
    }

    #[test]
    fn exhaustion() {
        assert_eq!(standard().max_attempts(), 10);
        assert_eq!(
            decide(&standard(), 9, &status(500), 0.0),
            Decision::RetryAfter(Duration::from_secs(86_400))
        );
        assert_eq!(decide(&standard(), 10, &status(500), 0.0), Decision::DeadLetter);
        let custom = RetrySchedule::custom(vec![
            Duration::from_secs(5),
            Duration::from_secs(300),
            Duration::from_secs(1800),
        ]);
        assert_eq!(custom.max_attempts(), 4);
        assert_eq!(
            decide(&custom, 3, &status(500), 0.0),
            Decision::RetryAfter(Duration::from_secs(1800))
        );
        assert_eq!(decide(&custom, 4, &status(500), 0.0), Decision::DeadLetter);
        let none = RetrySchedule::custom(Vec::new());
        assert_eq!(decide(&none, 1, &status(500), 0.0), Decision::DeadLetter);
        // Success and 410 still count on the last attempt.
        assert_eq!(decide(&custom, 4, &status(200), 0.0), Decision::Delivered);
    }

    #[test]
    fn jitter_bounds() {
        let at = |sample| match decide(&standard(), 2, &status(500), sample) {
            Decision::RetryAfter(delay) => delay,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(-1.0), Duration::from_secs(240));
        assert_eq!(at(1.0), Duration::from_secs(360));
        assert_eq!(at(5.0), Duration::from_secs(360), "samples are clamped");
    }

    #[test]
    fn retry_after_is_clamped() {
        let asked = |seconds, code| AttemptError::Status {
            code,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        let short = RetrySchedule::custom(vec![Duration::from_millis(50)]);
        assert_eq!(
            decide(&short, 1, &asked(2, 503), 0.0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        // Shorter than the step: the step wins.
        assert_eq!(
            decide(&standard(), 2, &asked(1, 429), 0.0),
            Decision::RetryAfter(Duration::from_secs(300))
        );
        // Longer than a day: a day.
        assert_eq!(
            decide(&short, 1, &asked(999_999, 503), 0.0),
            Decision::RetryAfter(Duration::from_secs(86_400))
        );
        // Only on the statuses that mean "come back later".
        assert_eq!(
            decide(&short, 1, &asked(2, 500), 0.0),
            Decision::RetryAfter(Duration::from_millis(50))
        );
    }

    #[test]
    fn retry_after_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
