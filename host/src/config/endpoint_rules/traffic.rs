//! The traffic keys of an endpoint: `rate` and `burst`, `breaker`, `adaptive` and
//! `disable_after`, checked into [`TrafficSettings`] with the same words for the config file
//! and the admin API.

use std::time::Duration;

use super::{EndpointFields, Field, Problem};
use crate::config::values::parse_duration;
use crate::traffic::breaker::BreakerSettings;
use crate::traffic::endpoint::{DEFAULT_DISABLE_AFTER, DeliveryRate, TrafficSettings};
use crate::traffic::rate::Rate;

/// The largest `burst`.
pub const MAX_BURST: u32 = 10_000;
/// The most consecutive failures a breaker may wait for.
pub const MAX_BREAKER_FAILURES: u32 = 100_000;
/// The longest cooldown.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(24 * 3600);
/// The shortest `disable_after`.
pub const MIN_DISABLE_AFTER: Duration = Duration::from_secs(1);

/// `breaker` as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BreakerField<'a> {
    /// Absent: the defaults.
    #[default]
    Default,
    /// A name: only `off` is one.
    Named(&'a str),
    Settings {
        failures: Option<i64>,
        cooldown: Option<&'a str>,
        max_cooldown: Option<&'a str>,
    },
}

pub(super) fn check(
    fields: &EndpointFields<'_>,
    problems: &mut Vec<(Field, Problem)>,
) -> TrafficSettings {
    TrafficSettings {
        rate: check_rate(fields.rate, fields.burst, problems),
        breaker: check_breaker(&fields.breaker, problems),
        adaptive: fields.adaptive.unwrap_or(true),
        disable_after: check_disable_after(fields.disable_after, problems),
    }
}

fn check_rate(
    rate: Option<&str>,
    burst: Option<i64>,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<DeliveryRate> {
    let burst = match burst {
        None => 1,
        Some(value) => match u32::try_from(value) {
            Ok(n) if (1..=MAX_BURST).contains(&n) => n,
            _ => {
                problems.push((Field::Burst, Problem::BurstOutOfRange(value)));
                1
            }
        },
    };
    let Some(text) = rate else {
        if burst != 1 {
            problems.push((Field::Burst, Problem::BurstWithoutRate));
        }
        return None;
    };
    match Rate::parse(text) {
        Ok(rate) => Some(DeliveryRate { rate, burst }),
        Err(message) => {
            problems.push((Field::Rate, Problem::Rate(message)));
            None
        }
    }
}

fn check_breaker(
    breaker: &BreakerField<'_>,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<BreakerSettings> {
    let defaults = BreakerSettings::default();
    let (failures, cooldown, max_cooldown) = match breaker {
        BreakerField::Default => return Some(defaults),
        BreakerField::Named("off") => return None,
        BreakerField::Named(other) => {
            problems.push((Field::Breaker, Problem::UnknownBreaker((*other).to_owned())));
            return Some(defaults);
        }
        BreakerField::Settings { failures, cooldown, max_cooldown } => {
            (*failures, *cooldown, *max_cooldown)
        }
    };
    let failures = match failures {
        None => defaults.failures,
        Some(value) => match u32::try_from(value) {
            Ok(n) if (1..=MAX_BREAKER_FAILURES).contains(&n) => n,
            _ => {
                problems.push((Field::BreakerFailures, Problem::BreakerFailuresOutOfRange(value)));
                defaults.failures
            }
        },
    };
    let cooldown = check_cooldown(Field::BreakerCooldown, cooldown, defaults.cooldown, problems);
    // Without a maximum, at least the default one, and never below the cooldown.
    let default_max = defaults.max_cooldown.max(cooldown);
    let max_cooldown =
        check_cooldown(Field::BreakerMaxCooldown, max_cooldown, default_max, problems);
    if max_cooldown < cooldown {
        problems.push((Field::BreakerMaxCooldown, Problem::MaxCooldownBelowCooldown));
    }
    Some(BreakerSettings { failures, cooldown, max_cooldown: max_cooldown.max(cooldown) })
}

fn check_cooldown(
    field: Field,
    text: Option<&str>,
    default: Duration,
    problems: &mut Vec<(Field, Problem)>,
) -> Duration {
    let Some(text) = text else { return default };
    match parse_duration(text) {
        Ok(cooldown) if !cooldown.is_zero() && cooldown <= MAX_COOLDOWN => cooldown,
        Ok(_) => {
            problems.push((field, Problem::CooldownOutOfRange(text.to_owned())));
            default
        }
        Err(message) => {
            problems.push((field, Problem::Duration(message)));
            default
        }
    }
}

fn check_disable_after(
    text: Option<&str>,
    problems: &mut Vec<(Field, Problem)>,
) -> Option<Duration> {
    match text {
        None => Some(DEFAULT_DISABLE_AFTER),
        Some("off") => None,
        Some(text) => match parse_duration(text) {
            Ok(after) if after >= MIN_DISABLE_AFTER => Some(after),
            Ok(_) => {
                problems
                    .push((Field::DisableAfter, Problem::DisableAfterTooShort(text.to_owned())));
                Some(DEFAULT_DISABLE_AFTER)
            }
            Err(message) => {
                let message = format!("{message}, or `off`");
                problems.push((Field::DisableAfter, Problem::Duration(message)));
                Some(DEFAULT_DISABLE_AFTER)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(fields: EndpointFields<'_>) -> (TrafficSettings, Vec<String>) {
        let mut problems = Vec::new();
        let settings = check(&fields, &mut problems);
        let problems = problems.iter().map(|(field, problem)| format!("{field}: {problem}"));
        (settings, problems.collect())
    }

    #[test]
    fn absent_keys_give_the_defaults() {
        let (settings, problems) = checked(EndpointFields::default());
        assert_eq!(settings, TrafficSettings::default());
        assert!(problems.is_empty());
        assert!(settings.adaptive && settings.rate.is_none());
        assert_eq!(settings.disable_after, Some(Duration::from_secs(5 * 24 * 3600)));
    }

    #[test]
    fn every_key_is_read() {
        let fields = EndpointFields {
            rate: Some("50/s"),
            burst: Some(5),
            breaker: BreakerField::Settings {
                failures: Some(3),
                cooldown: Some("2s"),
                max_cooldown: None,
            },
            adaptive: Some(false),
            disable_after: Some("off"),
            ..EndpointFields::default()
        };
        let (settings, problems) = checked(fields);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.rate.unwrap().burst, 5);
        let breaker = settings.breaker.unwrap();
        assert_eq!(
            (breaker.failures, breaker.cooldown, breaker.max_cooldown),
            (3, Duration::from_secs(2), Duration::from_secs(600))
        );
        assert!(!settings.adaptive);
        assert_eq!(settings.disable_after, None);
        let off = EndpointFields { breaker: BreakerField::Named("off"), ..Default::default() };
        assert_eq!(checked(off).0.breaker, None);
        // A long cooldown without a maximum: the maximum follows it.
        let long = EndpointFields {
            breaker: BreakerField::Settings {
                failures: None,
                cooldown: Some("1h"),
                max_cooldown: None,
            },
            ..Default::default()
        };
        assert_eq!(checked(long).0.breaker.unwrap().max_cooldown, Duration::from_secs(3600));
    }

    #[test]
    fn every_wrong_key_is_reported() {
        let fields = EndpointFields {
            rate: Some("fast"),
            burst: Some(0),
            breaker: BreakerField::Settings {
                failures: Some(0),
                cooldown: Some("0s"),
                max_cooldown: Some("forever"),
            },
            disable_after: Some("500ms"),
            ..EndpointFields::default()
        };
        let (_, problems) = checked(fields);
        assert_eq!(
            problems,
            [
                "burst: `0` is out of range 1..=10000",
                "rate: `fast` is not a rate; expected a positive count per unit (s, m, h), e.g. `100/s`",
                "breaker.failures: `0` is out of range 1..=100000",
                "breaker.cooldown: `0s` is out of range; a cooldown is more than 0 and at most 1d",
                "breaker.max_cooldown: `forever` is not a duration; expected a number and a unit (ms, s, m, h, d)",
                "disable_after: `500ms` is shorter than 1s; use `off` to never disable",
            ]
        );
        let named = EndpointFields {
            breaker: BreakerField::Named("on"),
            burst: Some(3),
            ..Default::default()
        };
        let (_, problems) = checked(named);
        assert_eq!(
            problems,
            [
                "burst: `burst` needs a `rate`",
                "breaker: `on` is not a breaker; expected `off` or `{ failures, cooldown, max_cooldown }`",
            ]
        );
    }
}
