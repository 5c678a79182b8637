//! How quiet the machine was around a row, and whether its figures can be compared.
//!
//! Owns the disk probe (the flush latency of small writes in the run's directory, measured
//! just before a row: what every `fsync` commit waits for) and the rule that marks a row as
//! measured beside a busy neighbour or on a slow disk. The rule is pure; the thresholds are
//! the ones under which quiet runs of the same build agreed within their usual spread.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

/// Other processes' CPU above which a row's rates are not comparable with a quiet run's.
pub const BUSY_OTHER_CORES: f64 = 0.15;
/// A disk flush slower than this (median of the probe) sets a lower ceiling on every
/// `fsync` row than an idle disk does.
pub const SLOW_FLUSH_US: u64 = 2_000;
/// Flushes the probe times.
const PROBE_FLUSHES: usize = 20;

/// What was noticed about one row's surroundings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Conditions {
    /// Median and largest time of a 4 KiB write plus `fdatasync`, just before the row.
    pub flush_p50_us: u64,
    pub flush_max_us: u64,
    /// The one-minute load average just before the row.
    pub load_average: f64,
    /// Why the row's figures may not be comparable; empty when nothing was noticed.
    pub warnings: Vec<String>,
}

impl Conditions {
    /// Whether nothing was noticed.
    pub fn quiet(&self) -> bool {
        self.warnings.is_empty()
    }
}

/// Times `PROBE_FLUSHES` flushes of a small file in `directory` (the disk the row's store is
/// on), and reads the load average.
pub fn probe(directory: &Path) -> Conditions {
    let mut times = Vec::with_capacity(PROBE_FLUSHES);
    let path = directory.join("flush-probe");
    if let Ok(mut file) = std::fs::File::create(&path) {
        let page = [0x5au8; 4096];
        for _ in 0..PROBE_FLUSHES {
            let started = Instant::now();
            if file.write_all(&page).and_then(|()| file.sync_data()).is_err() {
                break;
            }
            times.push(started.elapsed().as_micros() as u64);
        }
    }
    let _ = std::fs::remove_file(&path);
    times.sort_unstable();
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Conditions {
        flush_p50_us: times.get(times.len() / 2).copied().unwrap_or(0),
        flush_max_us: times.last().copied().unwrap_or(0),
        load_average,
        warnings: Vec::new(),
    }
}

/// Adds the warnings a row earned: other processes busy during its window, a slow disk
/// before it (pure).
pub fn judge(conditions: &mut Conditions, other_cores: f64) {
    conditions.warnings.clear();
    if other_cores > BUSY_OTHER_CORES {
        conditions.warnings.push(format!("busy neighbour: other {other_cores:.2} cores"));
    }
    if conditions.flush_p50_us > SLOW_FLUSH_US {
        conditions.warnings.push(format!(
            "slow disk: flush p50 {:.1} ms",
            conditions.flush_p50_us as f64 / 1000.0
        ));
    }
}

/// The index of the median of `values` (the lower one of an even count); `None` when empty.
pub fn median_index(values: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    order.get(values.len().saturating_sub(1) / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_neighbours_and_slow_disks_are_named() {
        let mut conditions = Conditions { flush_p50_us: 900, ..Conditions::default() };
        judge(&mut conditions, 0.05);
        assert!(conditions.quiet());
        judge(&mut conditions, 0.6);
        assert_eq!(conditions.warnings, ["busy neighbour: other 0.60 cores"]);
        conditions.flush_p50_us = 4_200;
        judge(&mut conditions, 0.0);
        assert_eq!(conditions.warnings, ["slow disk: flush p50 4.2 ms"]);
    }

    #[test]
    fn the_median_run_is_picked() {
        assert_eq!(median_index(&[9.0, 3.0, 5.0]), Some(2));
        assert_eq!(median_index(&[4.0, 1.0]), Some(1));
        assert_eq!(median_index(&[]), None);
    }

    #[test]
    fn the_probe_times_flushes() {
        let directory = tempfile::tempdir().unwrap();
        let conditions = probe(directory.path());
        assert!(conditions.flush_max_us >= conditions.flush_p50_us);
        assert!(conditions.flush_max_us > 0);
        assert!(std::fs::read_dir(directory.path()).unwrap().next().is_none());
    }
}
