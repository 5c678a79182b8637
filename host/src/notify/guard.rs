//! When an operational event is due: endpoint health from attempt outcomes, and the storm guard.
//!
//! Owns each endpoint's run of consecutive failed attempts (past [`FAILING_AFTER`] the
//! endpoint is failing; its first success after that is a recovery) and the storm guard: at
//! most one notification per (kind, subject) per `notify_every`, the ones held back counted
//! into the next. Pure: time is passed in, nothing is sent, and it never looks at which source
//! an attempt's event came from (the caller leaves operational events out, the loop guard).

use std::collections::HashMap;
use std::time::Duration;

use super::notice::{self, Details, Notice, NoticeKind};

/// Consecutive failed attempts after which an endpoint is failing (`switchyard.endpoint.failing`).
pub const FAILING_AFTER: u32 = 5;

/// What became of one attempt, as endpoint health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; the delivery will be tried again.
    Failed,
    /// Failed for the last time: the delivery is a dead letter.
    DeadLettered,
    /// The endpoint answered 410 Gone and is disabled.
    Disabled,
}

/// One recorded attempt of a delivery that is not an operational event.
#[derive(Debug, Clone)]
pub struct Attempted<'a> {
    pub endpoint: &'a str,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub delivery: u64,
    pub event: String,
    /// Attempts made, this one included.
    pub attempts: u32,
}

#[derive(Debug, Default)]
struct Health {
    consecutive_failures: u32,
    /// Passed [`FAILING_AFTER`] since the last success.
    failing: bool,
}

#[derive(Debug, Default)]
struct Window {
    /// Unix ms of the last notification sent, if any.
    sent_at: Option<u64>,
    /// Times the condition arose since then, held back by the guard.
    held: u32,
}

/// Endpoint health and the storm guard.
#[derive(Debug)]
pub struct Guard {
    every: u64,
    health: HashMap<String, Health>,
    windows: HashMap<(NoticeKind, String), Window>,
}

impl Guard {
    pub fn new(every: Duration) -> Self {
        Self { every: millis(every), health: HashMap::new(), windows: HashMap::new() }
    }

    /// A new `notify_every` (a reload); the windows already open keep their start.
    pub fn set_every(&mut self, every: Duration) {
        self.every = millis(every);
    }

    /// Whether an attempt at `endpoint` that succeeds would change anything: callers skip the
    /// work of telling a success apart (is it an operational event?) when it would not.
    pub fn is_healthy(&self, endpoint: &str) -> bool {
        self.health.get(endpoint).is_none_or(|health| health.consecutive_failures == 0)
    }

    /// Takes one attempt's outcome into account at `now` (unix ms); the notifications due.
    pub fn attempted(&mut self, attempt: &Attempted<'_>, now: u64) -> Vec<Notice> {
        let health = self.health.entry(attempt.endpoint.to_owned()).or_default();
        let mut due = Vec::new();
        let mut details = Details {
            last_error: attempt.error.map(str::to_owned),
            last_status: attempt.status,
            delivery: Some((attempt.delivery, attempt.event.clone())),
            ..Details::default()
        };
        if attempt.outcome == Outcome::Delivered {
            let failures = std::mem::take(&mut health.consecutive_failures);
            if std::mem::take(&mut health.failing) {
                details.consecutive_failures = Some(failures);
                details.last_error = None;
                due.push((NoticeKind::EndpointRecovered, details));
            }
        } else {
            health.consecutive_failures = health.consecutive_failures.saturating_add(1);
            details.consecutive_failures = Some(health.consecutive_failures);
            if health.consecutive_failures >= FAILING_AFTER {
                health.failing = true;
                due.push((NoticeKind::EndpointFailing, details.clone()));
            }
            match attempt.outcome {
                Outcome::DeadLettered => {
                    let dead = Details { attempts: Some(attempt.attempts), ..details };
                    due.push((NoticeKind::DeliveryDeadLettered, dead));
                }
                Outcome::Disabled => due.push((NoticeKind::EndpointDisabled, details)),
                Outcome::Failed | Outcome::Delivered => {}
            }
        }
        due.into_iter()
            .filter_map(|(kind, details)| self.raise(kind, attempt.endpoint, &details, now))
            .collect()
    }

    /// A condition raised at `now` about `about` (an endpoint, or a source for
    /// [`NoticeKind::SourceRateLimited`]): its notification, unless one of the same kind about
    /// the same subject went out less than `notify_every` ago.
    pub fn raise(
        &mut self,
        kind: NoticeKind,
        about: &str,
        details: &Details,
        now: u64,
    ) -> Option<Notice> {
        let window = self.windows.entry((kind, about.to_owned())).or_default();
        let open = window.sent_at.is_some_and(|sent_at| now < sent_at.saturating_add(self.every));
        if open {
            window.held = window.held.saturating_add(1);
            return None;
        }
        let occurrences = std::mem::take(&mut window.held).saturating_add(1);
        window.sent_at = Some(now);
        let body = notice::body(kind, about, details, occurrences, now);
        Some(Notice { kind, about: about.to_owned(), body })
    }

    /// Forgets an endpoint that no longer exists.
    pub fn forget(&mut self, endpoint: &str) {
        self.health.remove(endpoint);
        self.windows.retain(|(_, about), _| about != endpoint);
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    fn attempt(endpoint: &str, outcome: Outcome) -> Attempted<'_> {
        Attempted {
            endpoint,
            outcome,
            status: (outcome != Outcome::Delivered).then_some(500),
            error: (outcome != Outcome::Delivered).then_some("HTTP 500"),
            delivery: 7,
            event: "evt_1".into(),
            attempts: 1,
        }
    }

    fn kinds(notices: &[Notice]) -> Vec<NoticeKind> {
        notices.iter().map(|notice| notice.kind).collect()
    }

    #[test]
    fn failing_after_the_threshold_and_recovered_at_the_next_success() {
        let mut guard = Guard::new(Duration::from_secs(15 * 60));
        for _ in 1..FAILING_AFTER {
            assert!(guard.attempted(&attempt("hook", Outcome::Failed), 0).is_empty());
        }
        assert!(!guard.is_healthy("hook"));
        let failing = guard.attempted(&attempt("hook", Outcome::Failed), 0);
        assert_eq!(kinds(&failing), [NoticeKind::EndpointFailing]);
        assert_eq!(failing[0].body["consecutive_failures"], FAILING_AFTER);
        assert_eq!(failing[0].body["last_error"], "HTTP 500");
        let recovered = guard.attempted(&attempt("hook", Outcome::Delivered), 1);
        assert_eq!(kinds(&recovered), [NoticeKind::EndpointRecovered]);
        assert_eq!(recovered[0].body["consecutive_failures"], FAILING_AFTER);
        assert!(guard.is_healthy("hook"));
        // Healthy again: a success says nothing.
        assert!(guard.attempted(&attempt("hook", Outcome::Delivered), 2).is_empty());
    }

    #[test]
    fn a_success_before_the_threshold_is_no_recovery_and_restarts_the_count() {
        let mut guard = Guard::new(Duration::from_secs(60));
        for _ in 1..FAILING_AFTER {
            guard.attempted(&attempt("hook", Outcome::Failed), 0);
        }
        assert!(guard.attempted(&attempt("hook", Outcome::Delivered), 0).is_empty());
        for _ in 1..FAILING_AFTER {
            assert!(guard.attempted(&attempt("hook", Outcome::Failed), 0).is_empty());
        }
    }

    #[test]
    fn a_storm_sends_one_failing_per_window_counting_the_rest() {
        let mut guard = Guard::new(Duration::from_secs(15 * 60));
        let mut sent = Vec::new();
        // 1,000 failures over 40 minutes.
        for index in 0..1_000u64 {
            let now = index * 40 * MINUTE / 1_000;
            sent.extend(guard.attempted(&attempt("hook", Outcome::Failed), now));
        }
        let at: Vec<u64> = sent.iter().map(|notice| notice.body["at"].as_u64().unwrap()).collect();
        // A failure every 2.4 s: the 5th (index 4) opens the first window, then the first
        // failure at or past each 15 minutes (index 379, 754) opens the next.
        assert_eq!(at, [4 * 2_400, 379 * 2_400, 754 * 2_400]);
        let occurrences: Vec<u64> =
            sent.iter().map(|notice| notice.body["occurrences"].as_u64().unwrap()).collect();
        assert_eq!(occurrences, [1, 375, 375]);
    }

    #[test]
    fn windows_are_per_kind_and_per_endpoint() {
        let mut guard = Guard::new(Duration::from_secs(60));
        let one = guard.attempted(&attempt("one", Outcome::DeadLettered), 0);
        let two = guard.attempted(&attempt("two", Outcome::DeadLettered), 0);
        assert_eq!(kinds(&one), [NoticeKind::DeliveryDeadLettered]);
        assert_eq!(kinds(&two), [NoticeKind::DeliveryDeadLettered]);
        assert_eq!(one[0].body["delivery"]["attempts"], 1);
        let disabled = guard.attempted(&attempt("one", Outcome::Disabled), 1);
        assert_eq!(kinds(&disabled), [NoticeKind::EndpointDisabled]);
        assert!(guard.attempted(&attempt("one", Outcome::DeadLettered), 59_999).is_empty());
        let again = guard.attempted(&attempt("one", Outcome::DeadLettered), 60_000);
        assert_eq!(again[0].body["occurrences"], 2);
    }

    #[test]
    fn a_raised_condition_goes_through_the_same_guard() {
        let mut guard = Guard::new(Duration::from_secs(60));
        let details = Details::default();
        assert!(guard.raise(NoticeKind::BreakerOpened, "hook", &details, 0).is_some());
        assert!(guard.raise(NoticeKind::BreakerOpened, "hook", &details, 10).is_none());
        assert!(guard.raise(NoticeKind::BreakerClosed, "hook", &details, 10).is_some());
        guard.forget("hook");
        assert!(guard.raise(NoticeKind::BreakerOpened, "hook", &details, 20).is_some());
    }
}
