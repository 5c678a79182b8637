//! A rate as the config writes it: `"100/s"`, `"600/m"`, `"3600/h"`.
//!
//! Pure: [`Rate::parse`] turns the text into events per second, with a message that says
//! what was expected.

use std::fmt;
use std::time::Duration;

/// Events per unit of time, kept as written for display and as a per-second figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    per: Duration,
}

impl Rate {
    /// `count` events every `per`; `None` when either is zero.
    pub fn new(count: u32, per: Duration) -> Option<Self> {
        (count > 0 && !per.is_zero()).then_some(Self { count, per })
    }

    /// Parses `<count>/<unit>` with unit `s`, `m` or `h` (also `second`, `minute`, `hour`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is not a rate; expected a positive count per unit (s, m, h), e.g. `100/s`"
            )
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let count: u32 = count.trim().parse().map_err(|_| invalid())?;
        let per = match unit.trim() {
            "s" | "second" => Duration::from_secs(1),
            "m" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        Self::new(count, per).ok_or_else(invalid)
    }

    pub fn per_second(self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }

    /// The time one event's share takes: `1/s` is a second, `50/s` 20 ms.
    pub fn interval(self) -> Duration {
        self.per / self.count
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(formatter, "{}/{unit}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_per_second_minute_and_hour() {
        let cases = [
            ("100/s", 100.0),
            ("600/m", 10.0),
            ("3600/h", 1.0),
            (" 5 / second ", 5.0),
            ("30/minute", 0.5),
        ];
        for (text, per_second) in cases {
            let rate = Rate::parse(text).unwrap();
            assert!((rate.per_second() - per_second).abs() < 1e-9, "{text}");
        }
        assert_eq!(Rate::parse("50/s").unwrap().interval(), Duration::from_millis(20));
        assert_eq!(Rate::parse("600/m").unwrap().to_string(), "600/m");
    }

    #[test]
    fn text_that_is_not_a_rate_says_what_was_expected() {
        for text in ["", "100", "0/s", "-1/s", "1.5/s", "10/d", "/s", "ten/s"] {
            let error = Rate::parse(text).unwrap_err();
            assert!(error.contains("e.g. `100/s`"), "{text}: {error}");
        }
    }
}
