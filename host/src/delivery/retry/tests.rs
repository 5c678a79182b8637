//! Tests of the retry policy: status classification, decisions, schedules, jitter and `Retry-After`.

use super::*;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_mins(1);
const HOUR: Duration = Duration::from_hours(1);

fn status(code: u16) -> AttemptError {
    AttemptError::Status { code, retry_after: None }
}

fn status_asking(code: u16, retry_after: Duration) -> AttemptError {
    AttemptError::Status { code, retry_after: Some(retry_after) }
}

/// Equality up to a microsecond, for results that went through `f64`.
fn assert_close(actual: Duration, expected: Duration, context: &str) {
    let difference = actual.abs_diff(expected);
    assert!(difference <= Duration::from_micros(1), "{context}: {actual:?} != {expected:?}");
}

fn retry_wait(decision: Decision, context: &str) -> Duration {
    match decision {
        Decision::RetryAfter(wait) => wait,
        other => panic!("{context}: expected a retry, got {other:?}"),
    }
}

#[test]
fn classification_of_every_status_class() {
    let cases = [
        (status(200), OutcomeClass::Delivered),
        (status(204), OutcomeClass::Delivered),
        (status(299), OutcomeClass::Delivered),
        (status(100), OutcomeClass::Failed),
        (status(301), OutcomeClass::Failed),
        (status(302), OutcomeClass::Failed),
        (status(304), OutcomeClass::Failed),
        (status(307), OutcomeClass::Failed),
        (status(400), OutcomeClass::Failed),
        (status(401), OutcomeClass::Failed),
        (status(404), OutcomeClass::Failed),
        (status(409), OutcomeClass::Failed),
        (status(410), OutcomeClass::EndpointGone),
        (status(429), OutcomeClass::Overloaded),
        (status(500), OutcomeClass::Failed),
        (status(501), OutcomeClass::Failed),
        (status(502), OutcomeClass::Overloaded),
        (status(503), OutcomeClass::Overloaded),
        (status(504), OutcomeClass::Overloaded),
        (status(505), OutcomeClass::Failed),
        (status(0), OutcomeClass::Failed),
        (status(999), OutcomeClass::Failed),
        (AttemptError::Timeout, OutcomeClass::Overloaded),
        (AttemptError::Connection, OutcomeClass::Failed),
        (AttemptError::Dns, OutcomeClass::Failed),
        (AttemptError::Permanent, OutcomeClass::Permanent),
    ];
    for (result, expected) in cases {
        assert_eq!(classify(&result), expected, "{result:?}");
    }
}

#[test]
fn decisions_after_a_first_attempt() {
    let schedule = RetrySchedule::standard();
    let five_seconds = Decision::RetryAfter(5 * SECOND);
    let cases = [
        (status(200), Decision::Delivered),
        (status(201), Decision::Delivered),
        (status(301), five_seconds),
        (status(400), five_seconds),
        (status(404), five_seconds),
        (status(410), Decision::Disable),
        (status(429), five_seconds),
        (status(500), five_seconds),
        (status(502), five_seconds),
        (status(503), five_seconds),
        (status(504), five_seconds),
        (AttemptError::Timeout, five_seconds),
        (AttemptError::Connection, five_seconds),
        (AttemptError::Dns, five_seconds),
        (AttemptError::Permanent, Decision::DeadLetter),
    ];
    for (result, expected) in cases {
        assert_eq!(decide(&schedule, 1, &result, 0.0), expected, "{result:?}");
    }
}

#[test]
fn standard_schedule_runs_ten_attempts_then_dead_letters() {
    let schedule = RetrySchedule::standard();
    assert_eq!(schedule.max_attempts(), 10);
    let expected_waits = [
        5 * SECOND,
        5 * MINUTE,
        30 * MINUTE,
        2 * HOUR,
        5 * HOUR,
        10 * HOUR,
        14 * HOUR,
        20 * HOUR,
        24 * HOUR,
    ];
    for (attempts_made, wait) in (1..).zip(expected_waits) {
        let decision = decide(&schedule, attempts_made, &status(500), 0.0);
        assert_eq!(decision, Decision::RetryAfter(wait), "after attempt {attempts_made}");
    }
    let cases = [
        (10, status(500), Decision::DeadLetter),
        (10, AttemptError::Timeout, Decision::DeadLetter),
        (10, status_asking(503, MINUTE), Decision::DeadLetter),
        (11, status(500), Decision::DeadLetter),
        (10, status(200), Decision::Delivered),
        (10, status(410), Decision::Disable),
        (u32::MAX, status(502), Decision::DeadLetter),
    ];
    for (attempts_made, result, expected) in cases {
        let decision = decide(&schedule, attempts_made, &result, 0.0);
        assert_eq!(decision, expected, "after attempt {attempts_made}: {result:?}");
    }
}

#[test]
fn custom_schedules_count_delays_between_attempts() {
    let three = RetrySchedule::custom(vec![5 * SECOND, 5 * MINUTE, 30 * MINUTE]);
    let none = RetrySchedule::custom(Vec::new());
    let cases = [
        (&three, 1, Decision::RetryAfter(5 * SECOND)),
        (&three, 2, Decision::RetryAfter(5 * MINUTE)),
        (&three, 3, Decision::RetryAfter(30 * MINUTE)),
        (&three, 4, Decision::DeadLetter),
        (&none, 1, Decision::DeadLetter),
    ];
    for (schedule, attempts_made, expected) in cases {
        let decision = decide(schedule, attempts_made, &AttemptError::Connection, 0.0);
        assert_eq!(decision, expected, "{:?} after {attempts_made}", schedule.delays());
    }
    assert_eq!(three.max_attempts(), 4);
    assert_eq!(none.max_attempts(), 1);
}

#[test]
fn delay_before_each_attempt() {
    let schedule = RetrySchedule::custom(vec![5 * SECOND, 5 * MINUTE]);
    let cases = [
        (0, None),
        (1, Some(Duration::ZERO)),
        (2, Some(5 * SECOND)),
        (3, Some(5 * MINUTE)),
        (4, None),
        (u32::MAX, None),
    ];
    for (attempt_number, expected) in cases {
        assert_eq!(schedule.delay_before(attempt_number), expected, "{attempt_number}");
    }
    assert_eq!(RetrySchedule::default(), RetrySchedule::standard());
    assert_eq!(RetrySchedule::standard().delays(), STANDARD_DELAYS);
}

#[test]
fn jitter_stays_within_twenty_percent() {
    let cases = [
        (-1.0, 0.8),
        (-0.5, 0.9),
        (0.0, 1.0),
        (0.5, 1.1),
        (1.0, 1.2),
        (-7.0, 0.8),
        (7.0, 1.2),
        (f64::NEG_INFINITY, 0.8),
        (f64::INFINITY, 1.2),
        (f64::NAN, 1.0),
    ];
    for delay in STANDARD_DELAYS {
        for (sample, factor) in cases {
            let jittered = apply_jitter(delay, sample);
            assert_close(jittered, delay.mul_f64(factor), &format!("{delay:?} × {sample}"));
            assert!(jittered >= delay.mul_f64(0.8) - Duration::from_micros(1));
            assert!(jittered <= delay.mul_f64(1.2) + Duration::from_micros(1));
        }
    }
    assert_eq!(apply_jitter(Duration::MAX, 1.0), Duration::MAX);
    assert_eq!(apply_jitter(Duration::ZERO, -1.0), Duration::ZERO);
}

#[test]
fn jitter_applies_to_the_schedule_step() {
    let schedule = RetrySchedule::standard();
    let cases = [(2, -1.0, 4 * MINUTE), (2, 1.0, 6 * MINUTE), (3, 0.5, 33 * MINUTE)];
    for (attempts_made, sample, expected) in cases {
        let wait = retry_wait(decide(&schedule, attempts_made, &status(500), sample), "");
        assert_close(wait, expected, &format!("after {attempts_made}, sample {sample}"));
    }
}

#[test]
fn retry_after_is_clamped_between_the_step_and_a_day() {
    let standard = RetrySchedule::standard();
    let long_steps = RetrySchedule::custom(vec![30 * HOUR]);
    let cases = [
        ("asks longer than the step", &standard, 1, status_asking(503, MINUTE), 0.0, MINUTE),
        ("asks shorter than the step", &standard, 1, status_asking(429, SECOND), 0.0, 5 * SECOND),
        ("asks zero", &standard, 2, status_asking(502, Duration::ZERO), 0.0, 5 * MINUTE),
        ("asks two days", &standard, 1, status_asking(504, 48 * HOUR), 0.0, 24 * HOUR),
        ("asks the maximum", &standard, 1, status_asking(503, Duration::MAX), 0.0, 24 * HOUR),
        ("step beyond a day wins", &long_steps, 1, status_asking(503, 48 * HOUR), 0.0, 30 * HOUR),
        (
            "jittered step above a day wins",
            &standard,
            9,
            status_asking(429, 25 * HOUR),
            1.0,
            24 * HOUR + 24 * HOUR / 5,
        ),
        (
            "asks between the shrunk step and the step",
            &standard,
            1,
            status_asking(503, 4500 * Duration::from_millis(1)),
            -1.0,
            4500 * Duration::from_millis(1),
        ),
        ("ignored on 500", &standard, 1, status_asking(500, HOUR), 0.0, 5 * SECOND),
        ("ignored on 404", &standard, 1, status_asking(404, HOUR), 0.0, 5 * SECOND),
        ("ignored on 3xx", &standard, 1, status_asking(301, HOUR), 0.0, 5 * SECOND),
    ];
    for (name, schedule, attempts_made, result, sample, expected) in cases {
        let wait = retry_wait(decide(schedule, attempts_made, &result, sample), name);
        assert_close(wait, expected, name);
    }
}

#[test]
fn retry_after_counts_only_for_overloaded_outcomes() {
    let schedule = RetrySchedule::standard();
    let cases = [
        (OutcomeClass::Overloaded, Decision::RetryAfter(HOUR)),
        (OutcomeClass::Failed, Decision::RetryAfter(5 * SECOND)),
        (OutcomeClass::Delivered, Decision::Delivered),
        (OutcomeClass::EndpointGone, Decision::Disable),
        (OutcomeClass::Permanent, Decision::DeadLetter),
    ];
    for (outcome, expected) in cases {
        let decision = decide_classified(&schedule, 1, outcome, Some(HOUR), 0.0);
        assert_eq!(decision, expected, "{outcome:?}");
    }
}

#[test]
fn parse_retry_after_forms() {
    // Wed, 21 Oct 2015 07:28:00 GMT
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    let cases = [
        ("120", Some(120 * SECOND)),
        (" 0 ", Some(Duration::ZERO)),
        ("\t30", Some(30 * SECOND)),
        ("99999999999999999999999", Some(Duration::from_secs(u64::MAX))),
        ("Wed, 21 Oct 2015 07:28:00 GMT", Some(Duration::ZERO)),
        ("Wed, 21 Oct 2015 07:29:30 GMT", Some(90 * SECOND)),
        ("Thu, 22 Oct 2015 07:28:00 GMT", Some(24 * HOUR)),
        ("Wednesday, 21-Oct-15 08:28:00 GMT", Some(HOUR)),
        ("Wed Oct 21 07:38:00 2015", Some(10 * MINUTE)),
        ("Tue, 20 Oct 2015 07:28:00 GMT", Some(Duration::ZERO)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("-5", None),
        ("+5", None),
        ("1.5", None),
        ("5s", None),
        ("12 34", None),
        ("2015-10-21T07:28:00Z", None),
        ("Wed, 21 Oct 2015 07:28:00", None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
    }
}

#[test]
fn garbage_retry_after_leaves_the_schedule_alone() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    let schedule = RetrySchedule::standard();
    for value in ["soon", "-1", "1.5", "tomorrow at noon"] {
        let result = AttemptError::Status { code: 503, retry_after: parse_retry_after(value, now) };
        let decision = decide(&schedule, 2, &result, 0.0);
        assert_eq!(decision, Decision::RetryAfter(5 * MINUTE), "{value:?}");
    }
}
