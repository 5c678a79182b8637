//! Switchyard's benchmark suite: a load generator, a sink, and a scenario runner that measure
//! the router against the targets of DESIGN §11.
//!
//! The load generator and the sink know nothing about Switchyard (a URL, a body template and
//! headers in; arrival times and sequence numbers out), so the same tools can measure another
//! gateway side by side. The scenario runner is the Switchyard-specific part: it writes a
//! config, starts the release binary, and turns what was sent and received into figures.

pub mod baseline;
pub mod body;
pub mod cluster;
pub mod conditions;
pub mod jetstream;
pub mod load;
pub mod neighbour;
pub mod peer;
pub mod plot;
pub mod plugin_stage;
pub mod procfs;
pub mod report;
pub mod router;
pub mod scenario;
pub mod signature;
pub mod sink;
pub mod stats;

/// Parses `"500ms"`, `"5s"`, `"2m"` (and a bare number of seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("`{text}` is not a duration, e.g. `5s`"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: unknown unit `{unit}`; use ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(super::parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(super::parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(super::parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(super::parse_duration("5h").is_err());
        assert!(super::parse_duration("soon").is_err());
    }
}
