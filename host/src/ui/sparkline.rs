//! The endpoints list's sparkline: attempts per bucket as bars, the failed part of each bar
//! drawn apart, rendered by the template as inline SVG (no script, no image request).
//!
//! Pure: counts in, bar geometry out.

/// The drawing's size in SVG user units.
pub const WIDTH: u32 = 96;
pub const HEIGHT: u32 = 24;

/// One bucket's bar: the succeeded part sits on the failed part, which sits on the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub x: u32,
    pub width: u32,
    /// Top and height of the succeeded part (height 0: none).
    pub ok_y: u32,
    pub ok_height: u32,
    /// Top and height of the failed part.
    pub failed_y: u32,
    pub failed_height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sparkline {
    pub bars: Vec<Bar>,
    /// Read out instead of the drawing, e.g. `12 attempts, 3 failed, in 24 hourly buckets`.
    pub label: String,
}

/// Bars scaled to the busiest bucket; a bucket with any attempt is at least 1 unit tall, and
/// any failure at least 1 unit, so that a lone failure is never drawn away.
pub fn sparkline(attempts: &[u64], failed: &[u64]) -> Sparkline {
    let count = attempts.len().max(1) as u32;
    let width = (WIDTH / count).max(1);
    let busiest = attempts.iter().copied().max().unwrap_or(0).max(1);
    let scale = |value: u64| -> u32 {
        if value == 0 { 0 } else { ((value * u64::from(HEIGHT)).div_ceil(busiest) as u32).max(1) }
    };
    let bars = attempts
        .iter()
        .enumerate()
        .map(|(index, &total)| {
            let failures = failed.get(index).copied().unwrap_or(0).min(total);
            let total_height = scale(total).min(HEIGHT);
            let failed_height = scale(failures).min(total_height);
            let ok_height = total_height - failed_height;
            Bar {
                x: index as u32 * width,
                width: width.saturating_sub(1).max(1),
                ok_y: HEIGHT - total_height,
                ok_height,
                failed_y: HEIGHT - failed_height,
                failed_height,
            }
        })
        .collect();
    let total: u64 = attempts.iter().sum();
    let total_failed: u64 = failed.iter().sum();
    let label = format!("{total} attempts, {total_failed} failed, in {} buckets", attempts.len());
    Sparkline { bars, label }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_bucket_with_failures_at_the_bottom() {
        let line = sparkline(&[0, 4, 2, 1], &[0, 1, 2, 0]);
        assert_eq!(line.bars.len(), 4);
        assert_eq!(line.bars[0].ok_height + line.bars[0].failed_height, 0);
        let busiest = line.bars[1];
        assert_eq!((busiest.x, busiest.width), (24, 23));
        assert_eq!((busiest.ok_y, busiest.ok_height + busiest.failed_height), (0, HEIGHT));
        assert_eq!((busiest.failed_y, busiest.failed_height), (HEIGHT - 6, 6));
        let all_failed = line.bars[2];
        assert_eq!((all_failed.ok_height, all_failed.failed_height), (0, 12));
        assert_eq!(line.bars[3].ok_height, 6);
        assert_eq!(line.label, "7 attempts, 3 failed, in 4 buckets");
    }

    #[test]
    fn a_lone_failure_among_many_attempts_stays_visible() {
        let line = sparkline(&[10_000, 1], &[0, 1]);
        assert_eq!(line.bars[1].failed_height, 1);
        assert_eq!(line.bars[1].ok_height, 0);
    }
}
