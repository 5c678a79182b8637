//! Latency summaries: exact percentiles over every sample (no histogram buckets, no sampling).
//!
//! Owns the percentile rule (nearest rank) so every figure in a report means the same thing.

use serde::Serialize;

/// Percentiles of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `samples` (sorted in place). Empty input gives all zeros.
    pub fn of(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let total: u128 = samples.iter().map(|&sample| u128::from(sample)).sum();
        Self {
            count: samples.len(),
            p50: nearest_rank(samples, 50.0),
            p90: nearest_rank(samples, 90.0),
            p99: nearest_rank(samples, 99.0),
            max: samples[samples.len() - 1],
            mean: total as f64 / samples.len() as f64,
        }
    }
}

/// The smallest sample with at least `percent` % of the samples at or below it; `sorted` is
/// not empty.
pub fn nearest_rank(sorted: &[u64], percent: f64) -> u64 {
    let rank = ((percent / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let summary = Summary::of(&mut samples);
        assert_eq!((summary.p50, summary.p90, summary.p99, summary.max), (50, 90, 99, 100));
        assert_eq!(summary.count, 100);
        assert!((summary.mean - 50.5).abs() < 1e-9);
        let mut one = vec![7];
        let summary = Summary::of(&mut one);
        assert_eq!((summary.p50, summary.p99, summary.max), (7, 7, 7));
        assert_eq!(Summary::of(&mut []), Summary::default());
    }
}
