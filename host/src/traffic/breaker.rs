//! An endpoint's circuit breaker: closed, open for a cooldown, then one probe (half-open).
//!
//! Pure: time is passed in. After `failures` consecutive failed attempts the breaker opens:
//! no attempt starts until the cooldown ends; then one probe may start (half-open). The
//! probe's success closes it; its failure opens it again for twice the cooldown, up to
//! `max_cooldown`. Outcomes of attempts that started before the breaker opened change nothing
//! while it is open: only the probe decides. Must not: know what a failure is (the caller
//! says) or sleep.

use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker by default.
pub const DEFAULT_FAILURES: u32 = 20;
/// The first cooldown by default.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// The longest cooldown by default.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failures: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: DEFAULT_FAILURES,
            cooldown: DEFAULT_COOLDOWN,
            max_cooldown: DEFAULT_MAX_COOLDOWN,
        }
    }
}

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Attempts start as usual.
    Closed,
    /// No attempt starts before `until`.
    Open { until: Instant },
    /// The cooldown is over: one probe may start (or is under way).
    HalfOpen { probing: bool },
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

/// Whether an attempt may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes; `probe` if it is the half-open breaker's one probe.
    Now { probe: bool },
    /// Not before this instant.
    At(Instant),
    /// Not before the probe under way ends.
    AfterProbe,
}

/// What an outcome did to the breaker, for logs and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened { cooldown: Duration },
    Closed,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    /// The cooldown of the next opening from half-open (doubles up to the maximum).
    cooldown: Duration,
    opened_total: u64,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            cooldown: settings.cooldown,
            opened_total: 0,
        }
    }

    /// New settings; the state is kept (an open breaker stays open until its time).
    pub fn set_settings(&mut self, settings: BreakerSettings) {
        self.settings = settings;
        self.cooldown = self.cooldown.clamp(settings.cooldown, settings.max_cooldown);
    }

    /// Whether an attempt may start at `now`; an open breaker whose cooldown is over turns
    /// half-open here.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if let BreakerState::Open { until } = self.state {
            if now < until {
                return Admission::At(until);
            }
            self.state = BreakerState::HalfOpen { probing: false };
        }
        match self.state {
            BreakerState::HalfOpen { probing: true } => Admission::AfterProbe,
            BreakerState::HalfOpen { probing: false } => Admission::Now { probe: true },
            _ => Admission::Now { probe: false },
        }
    }

    /// An attempt admitted by [`Breaker::admit`] started.
    pub fn started(&mut self, probe: bool) {
        if probe && self.state == (BreakerState::HalfOpen { probing: false }) {
            self.state = BreakerState::HalfOpen { probing: true };
        }
    }

    /// The probe under way ended without an outcome (nothing was sent): another may start.
    pub fn probe_abandoned(&mut self) {
        if self.state == (BreakerState::HalfOpen { probing: true }) {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }

    /// An attempt ended: `probe` as [`Admission::Now`] said, `success` as the caller judges.
    pub fn record(&mut self, probe: bool, success: bool, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Closed if success => {
                self.consecutive_failures = 0;
                None
            }
            BreakerState::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                (self.consecutive_failures >= self.settings.failures)
                    .then(|| self.open(self.settings.cooldown, now))
            }
            BreakerState::HalfOpen { probing: true } if probe => {
                if success {
                    self.state = BreakerState::Closed;
                    self.consecutive_failures = 0;
                    self.cooldown = self.settings.cooldown;
                    Some(Transition::Closed)
                } else {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    let cooldown = (self.cooldown * 2).min(self.settings.max_cooldown);
                    Some(self.open(cooldown, now))
                }
            }
            // Attempts that started before it opened, or a probe of an earlier round.
            _ => None,
        }
    }

    fn open(&mut self, cooldown: Duration, now: Instant) -> Transition {
        self.cooldown = cooldown;
        self.state = BreakerState::Open { until: now + cooldown };
        self.opened_total += 1;
        Transition::Opened { cooldown }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// How many times it opened (from closed or from half-open).
    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }

    /// When the next probe may start, while open.
    pub fn next_probe_at(&self) -> Option<Instant> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(failures: u32) -> BreakerSettings {
        BreakerSettings {
            failures,
            cooldown: Duration::from_secs(1),
            max_cooldown: Duration::from_secs(5),
        }
    }

    fn fail(breaker: &mut Breaker, times: u32, now: Instant) -> Option<Transition> {
        let mut last = None;
        for _ in 0..times {
            assert_eq!(breaker.admit(now), Admission::Now { probe: false });
            breaker.started(false);
            last = breaker.record(false, false, now);
        }
        last
    }

    #[test]
    fn it_opens_after_the_consecutive_failures_and_a_success_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::new(settings(3));
        assert_eq!(fail(&mut breaker, 2, now), None);
        assert_eq!(breaker.record(false, true, now), None);
        assert_eq!(breaker.consecutive_failures(), 0);
        assert_eq!(fail(&mut breaker, 2, now), None);
        let opened = fail(&mut breaker, 1, now);
        assert_eq!(opened, Some(Transition::Opened { cooldown: Duration::from_secs(1) }));
        assert_eq!(breaker.admit(now), Admission::At(now + Duration::from_secs(1)));
        assert_eq!(breaker.next_probe_at(), Some(now + Duration::from_secs(1)));
        assert_eq!(breaker.opened_total(), 1);
    }

    #[test]
    fn one_probe_per_cooldown_doubling_up_to_the_maximum_then_success_closes() {
        let mut now = Instant::now();
        let mut breaker = Breaker::new(settings(1));
        fail(&mut breaker, 1, now);
        let mut cooldowns = Vec::new();
        for _ in 0..4 {
            let Admission::At(until) = breaker.admit(now) else { panic!("not open") };
            now = until;
            assert_eq!(breaker.admit(now), Admission::Now { probe: true });
            breaker.started(true);
            assert_eq!(breaker.state(), BreakerState::HalfOpen { probing: true });
            // Only one probe at a time.
            assert_eq!(breaker.admit(now), Admission::AfterProbe);
            let Some(Transition::Opened { cooldown }) = breaker.record(true, false, now) else {
                panic!("the failed probe did not reopen it")
            };
            cooldowns.push(cooldown.as_secs());
        }
        assert_eq!(cooldowns, [2, 4, 5, 5]);
        now += Duration::from_secs(5);
        assert_eq!(breaker.admit(now), Admission::Now { probe: true });
        breaker.started(true);
        assert_eq!(breaker.record(true, true, now), Some(Transition::Closed));
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Closed again, the next opening starts from the first cooldown.
        let reopened = fail(&mut breaker, 1, now);
        assert_eq!(reopened, Some(Transition::Opened { cooldown: Duration::from_secs(1) }));
    }

    #[test]
    fn outcomes_of_attempts_started_before_it_opened_change_nothing() {
        let now = Instant::now();
        let mut breaker = Breaker::new(settings(1));
        fail(&mut breaker, 1, now);
        let open = breaker.state();
        // A late success or failure while open.
        assert_eq!(breaker.record(false, true, now), None);
        assert_eq!(breaker.record(false, false, now), None);
        assert_eq!(breaker.state(), open);
        // Half-open: a late outcome is not the probe's.
        let later = now + Duration::from_secs(1);
        assert_eq!(breaker.admit(later), Admission::Now { probe: true });
        breaker.started(true);
        assert_eq!(breaker.record(false, true, later), None);
        assert_eq!(breaker.state(), BreakerState::HalfOpen { probing: true });
    }
}
