//! An endpoint's traffic controls together: its delivery rate, a pause a `Retry-After` asked
//! for, its circuit breaker, its adaptive in-flight limit and auto-disable.
//!
//! Pure: instants are passed in. The delivery worker asks [`EndpointTraffic::gate`] before it
//! takes the next due delivery (a delivery that is not taken waits in its queue without
//! spending an attempt), tells [`EndpointTraffic::started`] when an attempt starts and
//! [`EndpointTraffic::finished`] how it ended, and keeps at most
//! [`EndpointTraffic::in_flight_limit`] attempts under way. [`TrafficView`] is what the admin
//! API and `/metrics` show of it. Must not: sleep, send, or touch the store.

use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use super::adaptive::Aimd;
use super::breaker::{Admission, Breaker, BreakerSettings, BreakerState, Transition};
use super::bucket::TokenBucket;
use super::rate::Rate;

/// How long an endpoint stays without a success, while failing, before it is disabled, by
/// default.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// How late a waiting worker may wake without the rate losing time (a timer's resolution).
const RATE_EARLY: Duration = Duration::from_millis(1);
/// The longest pause a `Retry-After` can impose on a whole endpoint.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// `rate` and `burst` of an endpoint: attempts started per unit of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryRate {
    pub rate: Rate,
    /// Attempts that may start at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// An endpoint's traffic settings, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficSettings {
    pub rate: Option<DeliveryRate>,
    /// `None`: no breaker (`breaker = "off"`).
    pub breaker: Option<BreakerSettings>,
    /// Adaptive concurrency (AIMD of the in-flight limit).
    pub adaptive: bool,
    /// `None`: never disabled for failing (`disable_after = "off"`).
    pub disable_after: Option<Duration>,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        Self {
            rate: None,
            breaker: Some(BreakerSettings::default()),
            adaptive: true,
            disable_after: Some(DEFAULT_DISABLE_AFTER),
        }
    }
}

/// How an attempt ended, in the terms traffic control needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 429 or 503, with the `Retry-After` it carried, if any.
    Overloaded {
        retry_after: Option<Duration>,
    },
    /// A timeout or a connection error.
    Unreachable,
    /// Any other failure (another status, a DNS error, a refused address).
    Failed,
}

/// Why the next attempt waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The endpoint's `rate`.
    Rate,
    /// A `Retry-After` the endpoint answered.
    Paused,
    /// The circuit breaker is open, or its probe is under way.
    Breaker,
}

impl WaitReason {
    pub const ALL: [Self; 3] = [Self::Rate, Self::Paused, Self::Breaker];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::Paused => "paused",
            Self::Breaker => "breaker",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Rate => 0,
            Self::Paused => 1,
            Self::Breaker => 2,
        }
    }
}

/// Whether the next attempt may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Now; `probe` if it is the half-open breaker's probe.
    Open { probe: bool },
    /// Not before this instant.
    Until(Instant, WaitReason),
    /// Not before the breaker's probe ends.
    AfterProbe,
}

/// What an ended attempt changed that the caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consequences {
    /// The breaker opened or closed.
    pub breaker: Option<Transition>,
    /// A pause starts or is extended, until then.
    pub paused_until: Option<Instant>,
    /// Disable the endpoint, for this reason (`disable_after`).
    pub disable: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EndpointTraffic {
    settings: TrafficSettings,
    max_in_flight: u32,
    bucket: Option<TokenBucket>,
    paused_until: Option<Instant>,
    breaker: Option<Breaker>,
    aimd: Aimd,
    /// The first failure since the last success.
    failing_since: Option<Instant>,
    last_success: Option<Instant>,
    /// The last gate asked, when, and whether something was queued then.
    last_gate: Option<(Instant, Gate, bool)>,
    waited: [Duration; 3],
}

impl EndpointTraffic {
    pub fn new(settings: TrafficSettings, max_in_flight: u32, now: Instant) -> Self {
        Self {
            settings,
            max_in_flight,
            bucket: settings.rate.map(|rate| TokenBucket::new(rate.rate, rate.burst, now)),
            paused_until: None,
            breaker: settings.breaker.map(Breaker::new),
            aimd: Aimd::new(max_in_flight),
            failing_since: None,
            last_success: None,
            last_gate: None,
            waited: [Duration::ZERO; 3],
        }
    }

    /// New settings: what did not change keeps its state (a breaker stays open, a pause
    /// lasts, tokens used stay used).
    pub fn update(&mut self, settings: TrafficSettings, max_in_flight: u32, now: Instant) {
        if settings.rate != self.settings.rate {
            self.bucket = settings.rate.map(|rate| TokenBucket::new(rate.rate, rate.burst, now));
        }
        match (settings.breaker, &mut self.breaker) {
            (Some(new), Some(breaker)) => breaker.set_settings(new),
            (new, breaker) => *breaker = new.map(Breaker::new),
        }
        self.aimd.set_maximum(max_in_flight);
        if !self.settings.adaptive && settings.adaptive {
            self.aimd = Aimd::new(max_in_flight);
        }
        self.settings = settings;
        self.max_in_flight = max_in_flight;
    }

    /// Whether the next attempt may start at `now`. `queued` says whether a delivery is
    /// waiting: time spent waiting with one queued is counted ([`EndpointTraffic::waited`]).
    pub fn gate(&mut self, now: Instant, queued: bool) -> Gate {
        let gate = self.decide(now);
        if let Some((at, Gate::Until(_, reason), true)) = self.last_gate {
            self.waited[reason.index()] += now.saturating_duration_since(at);
        }
        if let Some((at, Gate::AfterProbe, true)) = self.last_gate {
            self.waited[WaitReason::Breaker.index()] += now.saturating_duration_since(at);
        }
        self.last_gate = Some((now, gate, queued));
        gate
    }

    fn decide(&mut self, now: Instant) -> Gate {
        if let Some(until) = self.paused_until {
            if now < until {
                return Gate::Until(until, WaitReason::Paused);
            }
            self.paused_until = None;
        }
        let probe = match self.breaker.as_mut().map(|breaker| breaker.admit(now)) {
            Some(Admission::At(until)) => return Gate::Until(until, WaitReason::Breaker),
            Some(Admission::AfterProbe) => return Gate::AfterProbe,
            Some(Admission::Now { probe }) => probe,
            None => false,
        };
        if let Some(bucket) = &mut self.bucket {
            let wait = bucket.wait_early(now, RATE_EARLY);
            if !wait.is_zero() {
                return Gate::Until(now + wait, WaitReason::Rate);
            }
        }
        Gate::Open { probe }
    }

    /// An attempt the gate let through starts now.
    pub fn started(&mut self, probe: bool, now: Instant) {
        if let Some(bucket) = &mut self.bucket {
            // The gate saw a token (give or take a timer tick) and nothing else takes from
            // this bucket.
            bucket.take_owed(now);
        }
        if let Some(breaker) = &mut self.breaker {
            breaker.started(probe);
        }
        // The wait is over: it is counted up to now.
        self.gate(now, false);
    }

    /// An attempt that started at `started_at` (as the breaker's probe or not) ended at
    /// `now` with `outcome`.
    pub fn finished(
        &mut self,
        probe: bool,
        started_at: Instant,
        outcome: Outcome,
        now: Instant,
    ) -> Consequences {
        let mut consequences = Consequences::default();
        let success = outcome == Outcome::Delivered;
        match outcome {
            Outcome::Delivered => self.aimd.success(),
            Outcome::Overloaded { .. } | Outcome::Unreachable => {
                self.aimd.overload(started_at, now)
            }
            Outcome::Failed => {}
        }
        if let Outcome::Overloaded { retry_after: Some(wait) } = outcome {
            let until = now + wait.min(MAX_PAUSE);
            if self.paused_until.is_none_or(|paused| paused < until) {
                self.paused_until = Some(until);
                consequences.paused_until = Some(until);
            }
        }
        if let Some(breaker) = &mut self.breaker {
            consequences.breaker = breaker.record(probe, success, now);
        }
        if success {
            self.failing_since = None;
            self.last_success = Some(now);
        } else {
            let since = *self.failing_since.get_or_insert(now);
            if let Some(after) = self.settings.disable_after
                && now.saturating_duration_since(since) >= after
            {
                consequences.disable = Some(format!(
                    "no successful attempt for {} while attempts kept failing (`disable_after`)",
                    duration_text(after)
                ));
            }
        }
        consequences
    }

    /// An attempt ended without sending anything: it says nothing about the endpoint, but a
    /// probe's place is free again.
    pub fn abandoned(&mut self, probe: bool) {
        if let (true, Some(breaker)) = (probe, &mut self.breaker) {
            breaker.probe_abandoned();
        }
    }

    /// The endpoint was enabled again: its failing streak starts over.
    pub fn enabled(&mut self) {
        self.failing_since = None;
    }

    /// Attempts allowed under way at once now.
    pub fn in_flight_limit(&self) -> u32 {
        if self.settings.adaptive { self.aimd.limit() } else { self.max_in_flight }
    }

    /// Time spent waiting with a delivery queued, by reason, since the start.
    pub fn waited(&self, reason: WaitReason) -> Duration {
        self.waited[reason.index()]
    }

    pub fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(Breaker::state)
    }

    pub fn breaker_failures(&self) -> Option<u32> {
        self.breaker.as_ref().map(Breaker::consecutive_failures)
    }

    /// What the admin API shows; instants become unix milliseconds through `unix_now`, the
    /// wall clock at `now`.
    pub fn view(&self, now: Instant, unix_now: u64) -> TrafficView {
        let unix = |at: Instant| -> u64 {
            match at.checked_duration_since(now) {
                Some(ahead) => unix_now + ahead.as_millis() as u64,
                None => unix_now.saturating_sub(now.duration_since(at).as_millis() as u64),
            }
        };
        let (waiting, waiting_until) = match self.last_gate {
            Some((_, Gate::Until(until, reason), _)) if until > now => {
                (Some(reason), Some(unix(until)))
            }
            Some((_, Gate::AfterProbe, _)) => (Some(WaitReason::Breaker), None),
            _ => (None, None),
        };
        let breaker = self.breaker.as_ref().map(|breaker| BreakerView {
            state: breaker.state().as_str(),
            consecutive_failures: breaker.consecutive_failures(),
            opened_total: breaker.opened_total(),
            next_probe_at: breaker.next_probe_at().map(unix),
        });
        TrafficView {
            rate: self.settings.rate.map(|rate| rate.rate.to_string()),
            burst: self.settings.rate.map(|rate| rate.burst),
            waiting,
            waiting_until,
            paused_until: self.paused_until.filter(|until| *until > now).map(unix),
            wait_seconds: WaitSeconds {
                rate: self.waited(WaitReason::Rate).as_secs_f64(),
                paused: self.waited(WaitReason::Paused).as_secs_f64(),
                breaker: self.waited(WaitReason::Breaker).as_secs_f64(),
            },
            adaptive: self.settings.adaptive,
            in_flight_limit: self.in_flight_limit(),
            breaker,
            disable_after: self.settings.disable_after.map(duration_text),
            failing_since: self.failing_since.map(unix),
            last_success_at: self.last_success.map(unix),
        }
    }
}

/// An endpoint's traffic control as the admin API shows it (in memory: since the last start).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TrafficView {
    /// `rate`, e.g. `50/s`; absent: unlimited.
    pub rate: Option<String>,
    pub burst: Option<u32>,
    /// Why the next attempt waits now, if it does.
    pub waiting: Option<WaitReason>,
    /// Until when (unix ms), if known.
    pub waiting_until: Option<u64>,
    /// A `Retry-After` pause of the whole endpoint, until (unix ms).
    pub paused_until: Option<u64>,
    /// Time deliveries spent waiting, by reason, in seconds.
    pub wait_seconds: WaitSeconds,
    pub adaptive: bool,
    /// Attempts allowed under way at once now (`max_in_flight` unless adaptive).
    pub in_flight_limit: u32,
    /// Absent when `breaker = "off"`.
    pub breaker: Option<BreakerView>,
    /// Absent when `disable_after = "off"`.
    pub disable_after: Option<String>,
    /// The first failure since the last success (unix ms).
    pub failing_since: Option<u64>,
    pub last_success_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WaitSeconds {
    pub rate: f64,
    pub paused: f64,
    pub breaker: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BreakerView {
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    pub consecutive_failures: u32,
    /// How many times it opened since the start.
    pub opened_total: u64,
    /// While open: when the probe may start (unix ms).
    pub next_probe_at: Option<u64>,
}

/// A duration as the config writes it, in its largest whole unit: `5d`, `90m`, `1500ms`.
pub fn duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests;
