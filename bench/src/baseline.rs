//! The quick run's guard: router CPU per event of S0, S1 and S10 against a committed baseline.
//!
//! Owns the baseline file (`bench/baseline.json`: the figures, and where and how they were
//! measured) and the comparison, which flags a row whose CPU per event rose by more than
//! [`REGRESSION`]. It informs; it never fails a run: CPU per event moves with the machine's
//! neighbours far less than rates do, but it still moves.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::scenario::ScenarioResult;

/// The rows the guard watches.
pub const GUARDED: [&str; 3] = ["S0", "S1", "S10"];
/// A rise in CPU per event past this share is flagged.
pub const REGRESSION: f64 = 0.15;

/// What `--save-baseline` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// How and where the figures were measured.
    pub measured: String,
    /// Router CPU µs per accepted event, by row.
    pub router_cpu_us_per_event: BTreeMap<String, f64>,
    /// Other processes' CPU during each row (cores): how quiet the machine was.
    pub other_cpu_cores: BTreeMap<String, f64>,
}

impl Baseline {
    /// The guarded rows of a run; `None` unless all three were measured.
    pub fn of(results: &[ScenarioResult], measured: String) -> Option<Self> {
        let mut cpu = BTreeMap::new();
        let mut other = BTreeMap::new();
        for id in GUARDED {
            let result = measured_row(results, id)?;
            cpu.insert(id.to_owned(), round(result.router_cpu_us_per_event));
            other.insert(id.to_owned(), (result.other_cpu_cores * 100.0).round() / 100.0);
        }
        Some(Self { measured, router_cpu_us_per_event: cpu, other_cpu_cores: other })
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("`{}` is not a baseline", path.display()))
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))
    }
}

fn measured_row<'a>(results: &'a [ScenarioResult], id: &str) -> Option<&'a ScenarioResult> {
    results.iter().find(|result| result.id == id && result.not_measured.is_none())
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// One guarded row compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub id: &'static str,
    pub baseline: Option<f64>,
    pub measured: Option<f64>,
    /// `measured / baseline − 1`.
    pub change: Option<f64>,
    pub regressed: bool,
}

/// Compares the guarded rows of a run with the baseline (pure).
pub fn compare(baseline: &Baseline, results: &[ScenarioResult]) -> Vec<Comparison> {
    GUARDED
        .iter()
        .map(|id| {
            let before = baseline.router_cpu_us_per_event.get(*id).copied();
            let now = measured_row(results, id).map(|result| result.router_cpu_us_per_event);
            let change = match (before, now) {
                (Some(before), Some(now)) if before > 0.0 => Some(now / before - 1.0),
                _ => None,
            };
            Comparison {
                id,
                baseline: before,
                measured: now,
                change,
                regressed: change.is_some_and(|change| change > REGRESSION),
            }
        })
        .collect()
}

/// The comparison as the quick run prints it.
pub fn render(baseline: &Baseline, comparisons: &[Comparison]) -> String {
    let mut text = format!(
        "router CPU µs per event against the baseline ({}); more than +{:.0} % is flagged:\n",
        baseline.measured,
        REGRESSION * 100.0
    );
    let shown = |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |v| format!("{v:.0}"));
    for row in comparisons {
        let change = row.change.map_or_else(String::new, |c| format!(" ({:+.0} %)", c * 100.0));
        let flag = if row.regressed { "  REGRESSION" } else { "" };
        let _ = writeln!(
            text,
            "  {:<4} baseline {:>5}  now {:>5}{change}{flag}",
            row.id,
            shown(row.baseline),
            shown(row.measured)
        );
    }
    let regressions = comparisons.iter().filter(|row| row.regressed).count();
    let _ = writeln!(
        text,
        "{}",
        match regressions {
            0 => "no regression past the threshold".to_owned(),
            count => format!(
                "{count} row(s) past the threshold: information only, compare on a quiet machine \
                 before acting"
            ),
        }
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, cpu: f64) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            router_cpu_us_per_event: cpu,
            other_cpu_cores: 0.031,
            ..ScenarioResult::default()
        }
    }

    #[test]
    fn a_rise_past_the_threshold_is_flagged_and_nothing_else() {
        let baseline =
            Baseline::of(&[row("S0", 70.0), row("S1", 150.0), row("S10", 60.0)], "here".into())
                .unwrap();
        assert_eq!(baseline.other_cpu_cores.get("S1"), Some(&0.03));
        // S0 +16 % is flagged, S1 +13 % is not, S10 fell.
        let now = [row("S0", 81.0), row("S1", 170.0), row("S10", 40.0)];
        let comparisons = compare(&baseline, &now);
        let flagged: Vec<&str> =
            comparisons.iter().filter(|row| row.regressed).map(|row| row.id).collect();
        assert_eq!(flagged, ["S0"]);
        let text = render(&baseline, &comparisons);
        assert!(text.contains("S0   baseline    70  now    81 (+16 %)  REGRESSION\n"), "{text}");
        assert!(text.contains("S1   baseline   150  now   170 (+13 %)\n"), "{text}");
        assert!(text.contains("S10  baseline    60  now    40 (-33 %)\n"), "{text}");
        assert!(text.contains("1 row(s) past the threshold"), "{text}");
    }

    #[test]
    fn missing_rows_are_shown_not_flagged() {
        let baseline =
            Baseline::of(&[row("S0", 70.0), row("S1", 150.0), row("S10", 60.0)], "x".into())
                .unwrap();
        let comparisons = compare(&baseline, &[row("S1", 150.0)]);
        assert!(comparisons.iter().all(|row| !row.regressed));
        assert_eq!(comparisons[0].measured, None);
        assert!(Baseline::of(&[row("S1", 1.0)], "x".into()).is_none());
    }

    #[test]
    fn the_baseline_file_round_trips() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("baseline.json");
        let baseline =
            Baseline::of(&[row("S0", 70.0), row("S1", 150.0), row("S10", 60.0)], "x".into())
                .unwrap();
        baseline.save(&path).unwrap();
        assert_eq!(Baseline::load(&path).unwrap(), baseline);
    }
}
