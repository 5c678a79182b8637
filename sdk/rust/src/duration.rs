//! Durations written in config values: a whole number and a unit, e.g. `"300s"` or `"5m"`.
//!
//! Owns the one duration syntax plugins accept, the same as the host's `switchyard.toml`
//! (`ms`, `s`, `m`, `h`, `d`). Pure; must not read config itself (see [`crate::host`]).

use std::fmt;
use std::time::Duration;

/// A duration that does not parse; its message shows the text and a good example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    text: String,
}

impl fmt::Display for DurationError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "`{}` is not a duration: expected a whole number and a unit (`ms`, `s`, `m`, `h` or \
             `d`), e.g. `5m`",
            self.text
        )
    }
}

impl std::error::Error for DurationError {}

/// Parses `"1500ms"`, `"300s"`, `"5m"`, `"24h"` or `"7d"`; whitespace around the value is
/// ignored, anything else (no unit, fractions, signs, several parts) is refused.
///
/// ```
/// use std::time::Duration;
/// use switchyard_sdk::duration::parse_duration;
///
/// assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
/// assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let error = || DurationError { text: text.to_string() };
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = trimmed.split_at(digits);
    let count: u64 = number.parse().map_err(|_| error())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(error()),
    };
    let millis = count.checked_mul(millis_per_unit).ok_or_else(error)?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        for (text, millis) in [
            ("0s", 0),
            ("1500ms", 1_500),
            ("300s", 300_000),
            ("5m", 300_000),
            ("24h", 86_400_000),
            ("7d", 604_800_000),
            (" 10s\n", 10_000),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)), "{text:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for text in
            ["", "5", "s", "5 m", "5M", "1.5s", "-5s", "+5s", "5m30s", "5min", "99999999999999999d"]
        {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn the_error_shows_the_text_and_an_example() {
        let message = parse_duration("soon").unwrap_err().to_string();
        assert_eq!(
            message,
            "`soon` is not a duration: expected a whole number and a unit (`ms`, `s`, `m`, `h` \
             or `d`), e.g. `5m`"
        );
    }
}
