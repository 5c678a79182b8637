//! The scaling plot: a hand-written SVG of how the router scales with endpoints and backlog.
//!
//! Owns which rows make the curve (scale-1 … scale-1000 for endpoints; S1-idle10k
//! beside them; restart-1k, restart, restart-1M for the backlog) and the drawing: four small
//! panels on logarithmic x axes, each a polyline with its values written at the points.
//! Rendering is pure: results in, SVG text out.

use std::fmt::Write as _;

use crate::scenario::ScenarioResult;

/// The endpoint-count rows, with their endpoint counts.
pub const ENDPOINT_ROWS: [(&str, f64); 4] =
    [("scale-1", 1.0), ("scale-10", 10.0), ("scale-100", 100.0), ("scale-1000", 1000.0)];
/// The backlog rows, with their pending deliveries.
pub const BACKLOG_ROWS: [(&str, f64); 3] =
    [("restart-1k", 1e3), ("restart", 1e5), ("restart-1M", 1e6)];

const PANEL_WIDTH: f64 = 360.0;
const PANEL_HEIGHT: f64 = 220.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 40.0;
const MARGIN_RIGHT: f64 = 18.0;
/// The caption's longest line, in characters (at 11 px, within the plot's width).
const CAPTION_CHARACTERS: usize = 118;

/// One panel's data: points (x, y) on a log x axis.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    points: Vec<(f64, f64)>,
    /// How a value is written beside its point.
    format: fn(f64) -> String,
}

fn measured<'a>(results: &'a [ScenarioResult], id: &str) -> Option<&'a ScenarioResult> {
    results.iter().find(|result| result.id == id && result.not_measured.is_none())
}

fn series(
    results: &[ScenarioResult],
    rows: &[(&str, f64)],
    value: impl Fn(&ScenarioResult) -> Option<f64>,
) -> Vec<(f64, f64)> {
    rows.iter().filter_map(|(id, x)| Some((*x, value(measured(results, id)?)?))).collect()
}

/// Whether a run has at least two points of any curve (else no plot is written).
pub fn has_curve(results: &[ScenarioResult]) -> bool {
    let endpoints = ENDPOINT_ROWS.iter().filter(|(id, _)| measured(results, id).is_some());
    let backlog = BACKLOG_ROWS.iter().filter(|(id, _)| measured(results, id).is_some());
    endpoints.count() >= 2 || backlog.count() >= 2
}

/// The plot, from a run's results.
pub fn scaling_svg(results: &[ScenarioResult], caption: &str) -> String {
    let panels = [
        Panel {
            title: "deliveries/s",
            x_label: "endpoints (one route fanning out; 4,000/s offered)",
            points: series(results, &ENDPOINT_ROWS, |r| Some(r.deliveries_per_second)),
            format: |v| format!("{v:.0}"),
        },
        Panel {
            title: "router CPU µs per delivery",
            x_label: "endpoints (one route fanning out)",
            points: series(results, &ENDPOINT_ROWS, |r| Some(r.router_cpu_us_per_delivery)),
            format: |v| format!("{v:.0}"),
        },
        Panel {
            title: "start → ready (s)",
            x_label: "pending deliveries",
            points: series(results, &BACKLOG_ROWS, |r| r.restart_ready_seconds),
            format: |v| format!("{v:.2}"),
        },
        Panel {
            title: "RSS once ready (MB)",
            x_label: "pending deliveries",
            points: series(results, &BACKLOG_ROWS, |r| {
                r.restart_rss_bytes.map(|bytes| bytes as f64 / 1e6)
            }),
            format: |v| format!("{v:.0}"),
        },
    ];
    let width = PANEL_WIDTH * 2.0;
    let height = PANEL_HEIGHT * 2.0 + 20.0 + 15.0 * wrap(caption, CAPTION_CHARACTERS).len() as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    for (index, panel) in panels.iter().enumerate() {
        let left = PANEL_WIDTH * (index % 2) as f64;
        let top = PANEL_HEIGHT * (index / 2) as f64;
        draw_panel(&mut svg, panel, left, top);
    }
    for (index, line) in wrap(caption, CAPTION_CHARACTERS).iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="8" y="{:.0}" fill="#333">{}</text>"##,
            PANEL_HEIGHT * 2.0 + 20.0 + 15.0 * index as f64,
            escape(line)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_panel(svg: &mut String, panel: &Panel<'_>, left: f64, top: f64) {
    let plot_left = left + MARGIN_LEFT;
    let plot_right = left + PANEL_WIDTH - MARGIN_RIGHT;
    let plot_top = top + MARGIN_TOP;
    let plot_bottom = top + PANEL_HEIGHT - MARGIN_BOTTOM;
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" font-size="13" font-weight="bold">{}</text>"#,
        plot_left,
        top + 20.0,
        escape(panel.title)
    );
    let _ = writeln!(
        svg,
        r##"<path d="M{plot_left:.1},{plot_top:.1} V{plot_bottom:.1} H{plot_right:.1}" stroke="#444" fill="none"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.0}" y="{:.0}" text-anchor="middle">{}</text>"#,
        (plot_left + plot_right) / 2.0,
        plot_bottom + 32.0,
        escape(panel.x_label)
    );
    if panel.points.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="middle" fill="#888">not measured</text>"##,
            (plot_left + plot_right) / 2.0,
            (plot_top + plot_bottom) / 2.0
        );
        return;
    }
    let (x_min, x_max) = bounds(panel.points.iter().map(|(x, _)| x.log10()));
    let (x_min, x_max) =
        if x_max - x_min < 1e-9 { (x_min - 0.5, x_max + 0.5) } else { (x_min, x_max) };
    let y_max = panel.points.iter().map(|(_, y)| *y).fold(0.0, f64::max).max(f64::EPSILON) * 1.15;
    let x_at = |x: f64| {
        plot_left + 20.0 + (x.log10() - x_min) / (x_max - x_min) * (plot_right - plot_left - 40.0)
    };
    let y_at = |y: f64| plot_bottom - y / y_max * (plot_bottom - plot_top);
    for step in 0..=4 {
        let value = y_max * f64::from(step) / 4.0;
        let y = y_at(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{plot_left:.1}" y1="{y:.1}" x2="{plot_right:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            plot_left - 4.0,
            y + 4.0,
            tick(value)
        );
    }
    let line: Vec<String> =
        panel.points.iter().map(|(x, y)| format!("{:.1},{:.1}", x_at(*x), y_at(*y))).collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f6feb" stroke-width="2"/>"##,
        line.join(" ")
    );
    for (x, y) in &panel.points {
        let (px, py) = (x_at(*x), y_at(*y));
        let _ = writeln!(
            svg,
            r##"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="#1f6feb"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{px:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            py - 8.0,
            (panel.format)(*y),
            plot_bottom + 15.0,
            tick(*x)
        );
    }
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| (low.min(v), high.max(v)))
}

/// `1,000` → `1k`, `1e6` → `1M`; small values with what precision they need.
fn tick(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim(value / 1e3))
    } else if value >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, deliveries: f64, cpu: f64) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            deliveries_per_second: deliveries,
            router_cpu_us_per_delivery: cpu,
            ..ScenarioResult::default()
        }
    }

    #[test]
    fn the_plot_draws_each_measured_point_and_says_what_is_missing() {
        let mut restart = row("restart", 0.0, 0.0);
        restart.restart_ready_seconds = Some(0.1);
        restart.restart_rss_bytes = Some(90_000_000);
        let results = vec![
            row("scale-1", 9000.0, 110.0),
            row("scale-10", 25_000.0, 60.0),
            row("scale-1000", 30_000.0, 40.0),
            restart,
        ];
        assert!(has_curve(&results));
        let svg = scaling_svg(&results, "a <caption> & more");
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3 + 3 + 1 + 1);
        assert!(svg.contains(">25000<"), "{svg}");
        assert!(svg.contains(">1k<"), "{svg}");
        assert!(svg.contains("a &lt;caption&gt; &amp; more"));
        assert!(!svg.contains("not measured"));
        let svg = scaling_svg(&[row("scale-1", 9000.0, 110.0)], "");
        assert_eq!(svg.matches("not measured").count(), 2);
        assert!(!has_curve(&[row("scale-1", 9000.0, 110.0)]));
    }

    #[test]
    fn captions_wrap_between_words() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert!(wrap("", 9).is_empty());
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(1000.0), "1k");
        assert_eq!(tick(1e6), "1M");
        assert_eq!(tick(1500.0), "1.5k");
        assert_eq!(tick(12.4), "12");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.0), "1");
    }
}
