//! Plugin call times as a fixed-bucket histogram, so that the plugins page and
//! `GET /v1/admin/plugins` can show p50 and p95 since start in constant memory per plugin.
//!
//! Pure. Buckets are a quarter of an octave wide (each bound 2^¼ ≈ 1.19 times the one below)
//! from 10 µs to about a minute; a percentile answers the upper bound of the bucket its rank
//! falls in, clamped to the slowest call seen, so it overstates by less than 19 %.

/// The first bucket's upper bound, in microseconds.
const FIRST_BOUND_MICROS: f64 = 10.0;
/// Buckets per doubling.
const PER_OCTAVE: f64 = 4.0;
/// 23 octaves above 10 µs: about 84 s; slower calls share the last bucket.
const BUCKETS: usize = 92;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTimes {
    counts: [u64; BUCKETS],
    calls: u64,
    slowest_micros: u64,
}

impl Default for CallTimes {
    fn default() -> Self {
        Self { counts: [0; BUCKETS], calls: 0, slowest_micros: 0 }
    }
}

fn bucket_of(micros: f64) -> usize {
    if micros <= FIRST_BOUND_MICROS {
        return 0;
    }
    let index = ((micros / FIRST_BOUND_MICROS).log2() * PER_OCTAVE).ceil();
    (index as usize).min(BUCKETS - 1)
}

fn upper_bound_micros(bucket: usize) -> f64 {
    FIRST_BOUND_MICROS * (bucket as f64 / PER_OCTAVE).exp2()
}

impl CallTimes {
    pub fn record(&mut self, seconds: f64) {
        let micros = (seconds * 1e6).max(0.0);
        self.counts[bucket_of(micros)] += 1;
        self.calls += 1;
        self.slowest_micros = self.slowest_micros.max(micros.round() as u64);
    }

    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The `percent`-th percentile (nearest rank) in milliseconds; `None` before a call.
    pub fn percentile_ms(&self, percent: f64) -> Option<f64> {
        if self.calls == 0 {
            return None;
        }
        let rank = ((percent / 100.0) * self.calls as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                // The last bucket has no upper bound: the slowest call is its bound.
                let slowest = self.slowest_micros as f64;
                let micros = if bucket == BUCKETS - 1 {
                    slowest
                } else {
                    upper_bound_micros(bucket).min(slowest)
                };
                return Some(micros / 1000.0);
            }
        }
        Some(self.slowest_micros as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_call_no_percentile() {
        assert_eq!(CallTimes::default().percentile_ms(50.0), None);
    }

    #[test]
    fn percentiles_are_within_a_quarter_octave_above_the_true_value() {
        let mut times = CallTimes::default();
        // 1..=100 ms: the true p50 is 50 ms, p95 95 ms.
        for millis in 1..=100 {
            times.record(f64::from(millis) / 1000.0);
        }
        assert_eq!(times.calls(), 100);
        let p50 = times.percentile_ms(50.0).unwrap();
        let p95 = times.percentile_ms(95.0).unwrap();
        assert!((50.0..50.0 * 1.19).contains(&p50), "{p50}");
        assert!((95.0..=100.0).contains(&p95), "{p95}: at most the slowest call");
    }

    #[test]
    fn one_call_is_every_percentile_and_outliers_land_in_the_last_bucket() {
        let mut times = CallTimes::default();
        times.record(0.002);
        assert_eq!(times.percentile_ms(50.0), Some(2.0));
        assert_eq!(times.percentile_ms(95.0), Some(2.0));
        times.record(1_000.0);
        assert_eq!(bucket_of(1e9), BUCKETS - 1);
        assert_eq!(times.percentile_ms(100.0), Some(1_000_000.0));
        assert_eq!(bucket_of(0.0), 0);
    }
}
