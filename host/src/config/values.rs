//! Parsers for the scalar value types of the config file: ids, durations and sizes.
//!
//! Pure functions from text to typed values. Each error message says what was expected and
//! gives an example, because it ends up in front of a user in `switchyard validate`.

use std::time::Duration;

/// The longest id we accept; ids appear in URLs, metric labels and NATS subjects.
const MAX_ID_LENGTH: usize = 64;

/// Checks that `id` is kebab-case: lowercase ASCII letters and digits in dash-separated words,
/// starting with a letter.
pub fn check_id(id: &str) -> Result<(), String> {
    let starts_with_letter = id.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let kebab = id.split('-').all(|word| {
        !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if id.len() > MAX_ID_LENGTH {
        return Err(format!("`{id}` is longer than {MAX_ID_LENGTH} characters"));
    }
    if !starts_with_letter || !kebab {
        return Err(format!(
            "`{id}` is not a kebab-case id (lowercase letters, digits and single dashes, \
             starting with a letter)"
        ));
    }
    Ok(())
}

/// Parses a duration such as `50ms`, `15s`, `5m`, `2h`, `7d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("`{text}` is not a duration; expected a number and a unit (ms, s, m, h, d)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_length = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_millis: u64 = match &rest[..unit_length] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_length..];
        let millis = number.checked_mul(unit_millis).ok_or_else(invalid)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Parses a size in bytes such as `512KiB`, `1MiB`, `5MB` or `1024` (plain bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "`{text}` is not a size; expected a number and a unit (B, KiB, MiB, GiB, KB, MB, GB)"
        )
    };
    let trimmed = text.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    if digits == 0 {
        return Err(invalid());
    }
    let number: u64 = trimmed[..digits].parse().map_err(|_| invalid())?;
    let multiplier: u64 = match trimmed[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    number.checked_mul(multiplier).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["github", "verify-github", "a1", "orders-v2-eu"] {
            assert_eq!(check_id(good), Ok(()), "{good}");
        }
        for bad in ["", "GitHub", "1abc", "-a", "a-", "a--b", "a_b", "a.b", &"a".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let table = [
            ("50ms", 50),
            ("15s", 15_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("7d", 604_800_000),
            ("1h30m", 5_400_000),
            ("0s", 0),
        ];
        for (text, millis) in table {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)), "{text}");
        }
        for bad in ["", "5", "s", "5 sec", "-5s", "5w", "1.5s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        let table = [
            ("1024", 1024),
            ("100B", 100),
            ("512KiB", 512 * 1024),
            ("1MiB", 1 << 20),
            ("5MB", 5_000_000),
            ("1GiB", 1 << 30),
        ];
        for (text, bytes) in table {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "MiB", "1.5MiB", "5 megabytes", "-1", "99999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
