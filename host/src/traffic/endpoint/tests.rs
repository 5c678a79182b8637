//! Every control of [`EndpointTraffic`] driven by hand-moved time.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn settings() -> TrafficSettings {
    TrafficSettings { breaker: None, adaptive: false, disable_after: None, rate: None }
}

fn rate(text: &str, burst: u32) -> Option<DeliveryRate> {
    Some(DeliveryRate { rate: Rate::parse(text).unwrap(), burst })
}

/// Starts attempts whenever the gate opens, for `span`, stepping time by `step`; answers when
/// each started.
fn run(
    traffic: &mut EndpointTraffic,
    start: Instant,
    span: Duration,
    step: Duration,
) -> Vec<Instant> {
    let mut started = Vec::new();
    let mut now = start;
    while now < start + span {
        match traffic.gate(now, true) {
            Gate::Open { probe } => {
                traffic.started(probe, now);
                started.push(now);
            }
            Gate::Until(until, _) => now = until.max(now + step),
            Gate::AfterProbe => now += step,
        }
    }
    started
}

#[test]
fn a_rate_spaces_attempts_evenly_and_a_burst_lets_some_start_at_once() {
    let start = Instant::now();
    let mut traffic =
        EndpointTraffic::new(TrafficSettings { rate: rate("50/s", 1), ..settings() }, 16, start);
    let started = run(&mut traffic, start, Duration::from_secs(1), MS);
    assert!((50..=51).contains(&started.len()), "{}", started.len());
    for pair in started.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= 19 * MS && gap <= 21 * MS, "{gap:?}");
    }
    let mut bursty =
        EndpointTraffic::new(TrafficSettings { rate: rate("50/s", 10), ..settings() }, 16, start);
    let at_once =
        (0..20).take_while(|_| matches!(bursty.gate(start, true), Gate::Open { .. })).count();
    assert_eq!(at_once, 20, "asking the gate takes no token");
    for _ in 0..10 {
        assert_eq!(bursty.gate(start, true), Gate::Open { probe: false });
        bursty.started(false, start);
    }
    assert!(matches!(bursty.gate(start, true), Gate::Until(_, WaitReason::Rate)));
    let view = bursty.view(start, 1_000);
    // A millisecond early (`RATE_EARLY`): a timer wakes that late at most.
    assert_eq!((view.waiting, view.waiting_until), (Some(WaitReason::Rate), Some(1_019)));
    // The wait is counted as the rate's.
    let later = start + 100 * MS;
    bursty.gate(later, true);
    assert_eq!(bursty.waited(WaitReason::Rate), 100 * MS);
}

#[test]
fn retry_after_pauses_the_whole_endpoint_until_then_and_never_shortens_a_pause() {
    let start = Instant::now();
    let mut traffic = EndpointTraffic::new(settings(), 4, start);
    traffic.started(false, start);
    let overloaded = Outcome::Overloaded { retry_after: Some(Duration::from_secs(2)) };
    let consequences = traffic.finished(false, start, overloaded, start);
    let until = start + Duration::from_secs(2);
    assert_eq!(consequences.paused_until, Some(until));
    assert_eq!(
        traffic.gate(start + Duration::from_secs(1), true),
        Gate::Until(until, WaitReason::Paused)
    );
    // A shorter one does not shorten it.
    let shorter = Outcome::Overloaded { retry_after: Some(Duration::from_millis(500)) };
    assert_eq!(traffic.finished(false, start, shorter, start).paused_until, None);
    assert_eq!(traffic.view(start, 10_000).paused_until, Some(12_000));
    assert_eq!(traffic.gate(until, true), Gate::Open { probe: false });
    // A day's Retry-After pauses the endpoint an hour at most.
    let day = Outcome::Overloaded { retry_after: Some(Duration::from_secs(86_400)) };
    assert_eq!(traffic.finished(false, until, day, until).paused_until, Some(until + MAX_PAUSE));
}

#[test]
fn the_breaker_holds_attempts_and_lets_one_probe_through_per_cooldown() {
    let start = Instant::now();
    let breaker = BreakerSettings {
        failures: 3,
        cooldown: Duration::from_secs(1),
        max_cooldown: Duration::from_secs(4),
    };
    let mut traffic =
        EndpointTraffic::new(TrafficSettings { breaker: Some(breaker), ..settings() }, 4, start);
    for _ in 0..3 {
        assert_eq!(traffic.gate(start, true), Gate::Open { probe: false });
        traffic.started(false, start);
    }
    let mut last = Consequences::default();
    for _ in 0..3 {
        last = traffic.finished(false, start, Outcome::Failed, start);
    }
    assert_eq!(last.breaker, Some(Transition::Opened { cooldown: Duration::from_secs(1) }));
    let reopen = start + Duration::from_secs(1);
    assert_eq!(traffic.gate(start, true), Gate::Until(reopen, WaitReason::Breaker));
    let view = traffic.view(start, 0);
    let shown = view.breaker.unwrap();
    assert_eq!((shown.state, shown.next_probe_at, shown.opened_total), ("open", Some(1_000), 1));
    assert_eq!(traffic.gate(reopen, true), Gate::Open { probe: true });
    traffic.started(true, reopen);
    assert_eq!(traffic.gate(reopen, true), Gate::AfterProbe);
    let closed = traffic.finished(true, reopen, Outcome::Delivered, reopen);
    assert_eq!(closed.breaker, Some(Transition::Closed));
    assert_eq!(traffic.gate(reopen, true), Gate::Open { probe: false });
    assert_eq!(traffic.waited(WaitReason::Breaker), Duration::from_secs(1));
}

#[test]
fn overload_shrinks_the_in_flight_limit_and_successes_grow_it_back() {
    let start = Instant::now();
    let mut traffic =
        EndpointTraffic::new(TrafficSettings { adaptive: true, ..settings() }, 8, start);
    assert_eq!(traffic.in_flight_limit(), 8);
    let mut now = start;
    for _ in 0..3 {
        now += MS;
        traffic.finished(false, now, Outcome::Unreachable, now);
    }
    assert_eq!(traffic.in_flight_limit(), 1);
    // Other failures are no overload signal.
    traffic.finished(false, now, Outcome::Failed, now);
    assert_eq!(traffic.in_flight_limit(), 1);
    for _ in 0..100 {
        traffic.finished(false, now, Outcome::Delivered, now);
    }
    assert_eq!(traffic.in_flight_limit(), 8);
    // Not adaptive: always the maximum.
    traffic.update(TrafficSettings { adaptive: false, ..settings() }, 8, now);
    traffic.finished(false, now + MS, Outcome::Unreachable, now + MS);
    assert_eq!(traffic.in_flight_limit(), 8);
}

#[test]
fn failing_without_a_success_for_disable_after_disables_with_a_reason() {
    let start = Instant::now();
    let after = Duration::from_secs(10);
    let mut traffic = EndpointTraffic::new(
        TrafficSettings { disable_after: Some(after), ..settings() },
        1,
        start,
    );
    assert_eq!(traffic.finished(false, start, Outcome::Failed, start).disable, None);
    let almost = start + Duration::from_secs(9);
    assert_eq!(traffic.finished(false, almost, Outcome::Failed, almost).disable, None);
    // A success starts the count again.
    traffic.finished(false, almost, Outcome::Delivered, almost);
    let later = start + Duration::from_secs(12);
    assert_eq!(traffic.finished(false, later, Outcome::Unreachable, later).disable, None);
    let end = later + after;
    let reason = traffic.finished(false, end, Outcome::Failed, end).disable.unwrap();
    assert_eq!(
        reason,
        "no successful attempt for 10s while attempts kept failing (`disable_after`)"
    );
    // Off: never.
    let mut never = EndpointTraffic::new(settings(), 1, start);
    never.finished(false, start, Outcome::Failed, start);
    let far = start + Duration::from_secs(3600 * 24 * 365);
    assert_eq!(never.finished(false, far, Outcome::Failed, far).disable, None);
}

#[test]
fn an_update_keeps_what_did_not_change() {
    let start = Instant::now();
    let breaker = BreakerSettings {
        failures: 1,
        cooldown: Duration::from_secs(5),
        max_cooldown: Duration::from_secs(5),
    };
    let with_breaker =
        TrafficSettings { breaker: Some(breaker), rate: rate("1/s", 1), ..settings() };
    let mut traffic = EndpointTraffic::new(with_breaker, 2, start);
    traffic.started(false, start);
    traffic.finished(false, start, Outcome::Failed, start);
    traffic.update(with_breaker, 4, start);
    assert!(matches!(traffic.gate(start, true), Gate::Until(_, WaitReason::Breaker)));
    // Breaker off: attempts go, still at the rate.
    traffic.update(TrafficSettings { breaker: None, ..with_breaker }, 4, start);
    assert!(matches!(traffic.gate(start, true), Gate::Until(_, WaitReason::Rate)));
}

#[test]
fn durations_are_shown_in_their_largest_whole_unit() {
    let cases = [
        (432_000_000, "5d"),
        (5_400_000, "90m"),
        (7_200_000, "2h"),
        (1_500, "1500ms"),
        (30_000, "30s"),
    ];
    for (millis, text) in cases {
        assert_eq!(duration_text(Duration::from_millis(millis)), text);
    }
}
