//! Reports: the JSON of a whole run and the markdown tables kept in `bench/README.md`.
//!
//! Owns the DESIGN §11 targets (and the peer's figures beside them) and how each is read off
//! the results. Rendering is pure: results in, text out.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::peer::PeerInfo;
use crate::plugin_stage::PluginStageResult;
use crate::scenario::{RunFigures, ScenarioResult};

/// Where the generated part of `bench/README.md` starts and ends.
pub const README_START: &str = "<!-- bench:results:start -->";
pub const README_END: &str = "<!-- bench:results:end -->";

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':').map(|(_, name)| name))
            .map_or_else(|| "unknown".into(), |name| name.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            // The version only: the rest of the release string names the build, not the kernel.
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
                |_| "unknown".into(),
                |text| text.trim().split('-').next().unwrap_or_default().to_owned(),
            ),
        }
    }
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
    pub quick: bool,
    pub machine: Machine,
    pub warmup_seconds: f64,
    pub window_seconds: f64,
    pub connections: usize,
    /// Cores a neighbour kept busy through every row (`--neighbour`); 0 on a quiet run.
    pub neighbour_cores: usize,
    /// The peer, when its rows ran.
    pub peer: Option<PeerInfo>,
    pub scenarios: Vec<ScenarioResult>,
    pub plugin_stage: Vec<PluginStageResult>,
}

/// Today's UTC date, `YYYY-MM-DD` (civil-from-days over the Unix clock).
pub fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn ms(micros: u64) -> String {
    let millis = micros as f64 / 1000.0;
    if millis < 10.0 { format!("{millis:.2}") } else { format!("{millis:.1}") }
}

fn micros(nanos: u64) -> String {
    format!("{:.1}", nanos as f64 / 1000.0)
}

fn thousands(value: f64) -> String {
    let rounded = value.round() as u64;
    let digits = rounded.to_string();
    let mut text = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The scenario table, the targets table and the plugin-stage table.
pub fn markdown(summary: &RunSummary) -> String {
    let mut text = String::new();
    let machine = &summary.machine;
    let _ = writeln!(
        text,
        "Measured {} on {} cores ({}), {:.0} GiB, Linux {}; {} run: {:.0} s warm-up, {:.0} s \
         measured, {} connections closed loop (64 for paced rows). Load generator, sink and \
         router share the same cores; loopback only. Durability `fsync` unless a row says \
         otherwise.\n",
        summary.date,
        machine.cores,
        machine.cpu,
        machine.memory_gib,
        machine.kernel,
        if summary.quick { "quick" } else { "full" },
        summary.warmup_seconds,
        summary.window_seconds,
        summary.connections,
    );
    let _ = writeln!(
        text,
        "Both sides at the same durability and a quiet log level: the router with `durability = \
         \"fsync\"` (each commit waits for the WAL's fsync) and `RUST_LOG={}`; the peer {} with \
         Postgres `fsync = on`, `synchronous_commit = on` and `RUST_LOG=warn`, its CPU the sum \
         of its Svix, Postgres and Redis processes (in the router CPU columns of its rows). \
         \"vs peer\" compares a row with the peer row of this run: deliveries/s (intake for \
         S0) and CPU per event for closed-loop rows, e2e p99 and CPU per event for paced ones. \
         Rows marked ⚠ ran beside a busy neighbour or on a slow disk (see the conditions \
         table); compare those by CPU µs/event only.\n",
        crate::router::LOG_FILTER,
        summary.peer.as_ref().map_or_else(
            || "(not measured)".to_owned(),
            |peer| format!(
                "(Svix {}, started in {:.0} s, stopped in {:.0} s before the router's rows)",
                peer.version, peer.start_seconds, peer.stop_seconds
            )
        ),
    );
    if summary.neighbour_cores > 0 {
        let _ = writeln!(
            text,
            "**A busy machine**: every row, the peer's too, ran beside a neighbour spinning {} \
             of the {} cores (`--neighbour {}`).\n",
            summary.neighbour_cores, machine.cores, summary.neighbour_cores,
        );
    }
    text.push_str(&targets(summary));
    text.push('\n');
    text.push_str(&scenarios(&summary.scenarios));
    text.push('\n');
    text.push_str(&conditions(&summary.scenarios));
    text.push('\n');
    text.push_str(&threads(&summary.scenarios));
    text.push('\n');
    text.push_str(&plugin_stage(&summary.plugin_stage));
    text
}

fn find<'a>(summary: &'a RunSummary, id: &str) -> Option<&'a ScenarioResult> {
    summary.scenarios.iter().find(|result| result.id == id && result.not_measured.is_none())
}

fn targets(summary: &RunSummary) -> String {
    let mut text = String::from(
        "| figure (DESIGN §11) | target | peer (Svix + Postgres) | measured | |\n\
         |---|---|---|---|---|\n",
    );
    // A row without a target says no verdict.
    let mut row = |figure: &str, target: &str, peer: &str, measured: Option<(String, bool)>| {
        let (value, met) = match measured {
            Some((value, _)) if target.is_empty() => (value, ""),
            Some((value, met)) => (value, verdict(met)),
            None => ("not measured".to_owned(), ""),
        };
        let _ = writeln!(text, "| {figure} | {target} | {peer} | {value} | {met} |");
    };
    let peer = |id: &str, figure: fn(&ScenarioResult) -> String| {
        find(summary, id).map_or_else(|| "not measured".to_owned(), figure)
    };
    let peer_rate = |s: &ScenarioResult| thousands(s.deliveries_per_second);
    let peer_e2e = |s: &ScenarioResult| format!("{} / {} ms", ms(s.e2e_us.p50), ms(s.e2e_us.p99));
    row(
        "deliveries/s, 1 endpoint (S1)",
        "≥ 9,000",
        &peer("peer-S1", peer_rate),
        find(summary, "S1")
            .map(|s| (thousands(s.deliveries_per_second), s.deliveries_per_second >= 9000.0)),
    );
    row(
        "deliveries/s, 10 endpoints (S10)",
        "≥ 28,000",
        &peer("peer-S10", peer_rate),
        find(summary, "S10")
            .map(|s| (thousands(s.deliveries_per_second), s.deliveries_per_second >= 28000.0)),
    );
    for id in ["S1-half", "S10-half"] {
        row(
            &format!("e2e p50 / p99 at half load ({id})"),
            "≤ 1 ms / ≤ 3 ms",
            &if id == "S1-half" { peer("peer-S1-half", peer_e2e) } else { String::new() },
            find(summary, id).map(|s| {
                (
                    format!("{} / {} ms", ms(s.e2e_us.p50), ms(s.e2e_us.p99)),
                    s.e2e_us.p50 <= 1000 && s.e2e_us.p99 <= 3000,
                )
            }),
        );
    }
    row(
        "ingest → 202 p99, no routes, saturated (S0)",
        "≤ 10 ms",
        "",
        find(summary, "S0")
            .map(|s| (format!("{} ms", ms(s.ingest_us.p99)), s.ingest_us.p99 <= 10_000)),
    );
    for stage in summary.plugin_stage.iter().filter(|stage| stage.language == "Rust") {
        row(
            &format!("Rust plugin fresh p50 / p99 (`{}`)", stage.plugin),
            "≤ 25 µs / ≤ 60 µs",
            "",
            Some((
                format!(
                    "{} / {} µs",
                    micros(stage.fresh_inside_ns.p50),
                    micros(stage.fresh_inside_ns.p99)
                ),
                stage.fresh_inside_ns.p50 <= 25_000 && stage.fresh_inside_ns.p99 <= 60_000,
            )),
        );
        row(
            &format!("Rust plugin warm p50, back to back (`{}`)", stage.plugin),
            "≤ 3 µs",
            "",
            Some((
                format!(
                    "{} µs ({} after idle)",
                    micros(stage.warm_inside_ns.p50),
                    micros(stage.warm_after_idle_ns.p50)
                ),
                stage.warm_inside_ns.p50 <= 3_000,
            )),
        );
    }
    let warm_p50 = |plugin: &str| {
        summary
            .plugin_stage
            .iter()
            .find(|stage| stage.plugin == plugin)
            .map(|stage| stage.warm_inside_ns.p50)
    };
    let (python, javascript) = (warm_p50("redact-python"), warm_p50("redact-javascript"));
    let shown = |p50: Option<u64>| p50.map_or_else(|| "not measured".to_owned(), micros);
    row(
        "Python / JS plugin warm p50, back to back (`redact` in each)",
        "≤ 25 µs / ≤ 50 µs",
        "",
        (python.is_some() || javascript.is_some()).then(|| {
            (
                format!("{} / {} µs", shown(python), shown(javascript)),
                python.is_some_and(|p50| p50 <= 25_000)
                    && javascript.is_some_and(|p50| p50 <= 50_000),
            )
        }),
    );
    // No target of its own: the share of the figure above that no plugin code can remove.
    let (python_pass, javascript_pass) = (warm_p50("pass-python"), warm_p50("pass-javascript"));
    if python_pass.is_some() || javascript_pass.is_some() {
        row(
            "Python / JS plugin warm p50, answering at once (`pass` mode)",
            "",
            "",
            Some((format!("{} / {} µs", shown(python_pass), shown(javascript_pass)), true)),
        );
    }
    row(
        "RSS under the 10-endpoint load (S10)",
        "≤ 60 MB",
        &peer("peer-S10", |s| {
            format!("{:.0} MB (Svix, Postgres, Redis)", s.router.rss_max_bytes as f64 / 1e6)
        }),
        find(summary, "S10").map(|s| {
            let megabytes = s.router.rss_max_bytes as f64 / 1e6;
            (format!("{megabytes:.0} MB"), megabytes <= 60.0)
        }),
    );
    row(
        "disk per delivered 1 KiB message (S1)",
        "≤ 1.5 KB",
        "",
        find(summary, "S1").map(|s| {
            (
                format!("{:.2} KB", s.disk_bytes_per_delivery / 1000.0),
                s.disk_bytes_per_delivery <= 1500.0,
            )
        }),
    );
    for (id, peer_id) in [("S1", "peer-S1"), ("S10", "peer-S10")] {
        row(
            &format!("deliveries/s against the peer in the same run ({id})"),
            "≥ 10×",
            "1×",
            find(summary, id).zip(find(summary, peer_id)).map(|(ours, theirs)| {
                let ratio = ours.deliveries_per_second / theirs.deliveries_per_second.max(1e-9);
                (format!("{ratio:.1}×"), ratio >= 10.0)
            }),
        );
    }
    row(
        "router CPU per delivered event (S1)",
        "≤ 80 µs",
        &peer("peer-S1", |s| format!("{:.0} µs", s.router_cpu_us_per_delivery)),
        find(summary, "S1").map(|s| {
            (
                format!("{:.0} µs", s.router_cpu_us_per_delivery),
                s.router_cpu_us_per_delivery <= 80.0,
            )
        }),
    );
    row(
        "restart with 100k pending deliveries, start → ready",
        "≤ 2 s",
        "",
        find(summary, "restart").and_then(|s| {
            let seconds = s.restart_ready_seconds?;
            Some((format!("{seconds:.2} s"), seconds <= 2.0))
        }),
    );
    text
}

fn scenarios(results: &[ScenarioResult]) -> String {
    let mut text = String::from(
        "| row | scenario | load | intake ev/s | deliveries/s | e2e p50 / p90 / p99 / max (ms) \
         | ingest p50 / p99 (ms) | CPU router / harness / other (cores) | router CPU µs/event \
         | router RSS max | disk B/delivery | written KB/event | lost / dup | vs peer |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let measured =
        |id: &str| results.iter().find(|result| result.id == id && result.not_measured.is_none());
    for result in results {
        if let Some(reason) = &result.not_measured {
            let _ = writeln!(
                text,
                "| {} | {} | | {reason} | | | | | | | | | | |",
                result.id, result.title
            );
            continue;
        }
        let versus = peer_row_for(&result.id)
            .and_then(&measured)
            .map_or_else(String::new, |peer| versus(result, peer));
        let id = if result.conditions.quiet() {
            result.id.clone()
        } else {
            format!("{} ⚠", result.id)
        };
        let load = match result.target_rate {
            Some(rate) => format!("paced {}/s", thousands(rate)),
            None => format!("closed, {}", result.connections),
        };
        let mut notes = Vec::new();
        if let Some(attempts) = result.failing_attempts {
            notes.push(format!("{attempts} attempts at the failing endpoint"));
        }
        let refused: usize = result.refused.values().sum();
        if refused > 0 {
            notes.push(format!("{refused} not accepted {:?}", result.refused));
        }
        if result.late_sends > 0 {
            notes.push(format!("{} late sends", result.late_sends));
        }
        if result.sink_connections > 0 {
            notes.push(format!("{} connections to the sink", result.sink_connections));
        }
        if result.signatures_failed > 0 {
            notes.push(format!("{} bad signatures", result.signatures_failed));
        }
        if let Some((created, seconds)) = result.idle_endpoints_created {
            notes.push(format!(
                "{} idle dynamic endpoints, created through the admin API in {seconds:.0} s \
                 ({:.0}/s)",
                thousands(created as f64),
                created as f64 / seconds.max(f64::EPSILON)
            ));
        }
        if result.peer {
            notes.push("CPU, RSS and written: Svix + Postgres + Redis".into());
        }
        if result.endpoints_fanned_out() > 10 {
            notes.push(format!(
                "router CPU {:.1} µs per delivery",
                result.router_cpu_us_per_delivery
            ));
        }
        if let Some(cores) = result.nats_server_cpu_cores {
            notes.push(format!(
                "intake: publishes the stream acked; nats-server {cores:.2} cores, not in \
                 \"other\""
            ));
        }
        if let (Some(ready), Some(listening)) =
            (result.restart_ready_seconds, result.restart_listening_seconds)
        {
            let pending =
                result.restart_pending.map_or_else(|| "?".into(), |n| thousands(n as f64));
            let rss = result
                .restart_rss_bytes
                .map_or_else(String::new, |bytes| format!(", RSS {:.0} MB", bytes as f64 / 1e6));
            notes.push(format!(
                "{} events accepted for endpoints that are down; restarted with {pending} \
                 pending: listening after {listening:.2} s, ready after {ready:.2} s{rss}; \
                 other figures are for the fill",
                thousands(result.accepted as f64)
            ));
        }
        let title = if notes.is_empty() {
            result.title.clone()
        } else {
            format!("{} ({})", result.title, notes.join("; "))
        };
        let e2e = &result.e2e_us;
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} / {} / {} / {} | {} / {} | {:.2} / {:.2} / {:.2} | {:.0} | {:.0} MB | {} | {:.1} | {} / {} | {} |",
            id,
            title,
            load,
            thousands(result.intake_per_second),
            thousands(result.deliveries_per_second),
            ms(e2e.p50),
            ms(e2e.p90),
            ms(e2e.p99),
            ms(e2e.max),
            ms(result.ingest_us.p50),
            ms(result.ingest_us.p99),
            result.router.cpu_cores,
            result.harness_cpu_cores,
            result.other_cpu_cores,
            result.router_cpu_us_per_event,
            result.router.rss_max_bytes as f64 / 1e6,
            if result.peer {
                "—".to_owned()
            } else {
                format!("{:.0}", result.disk_bytes_per_delivery)
            },
            result.written_kb_per_event,
            result.lost,
            result.duplicates,
            versus,
        );
    }
    text
}

/// The peer row a row is compared with, if any: the same scenario where the peer has one,
/// else one endpoint where that comparison still says something (not for the peer's own
/// rows, fan-outs past ten, the restarts, the NATS source or S10-half).
pub fn peer_row_for(id: &str) -> Option<&'static str> {
    match id {
        "S1" => Some("peer-S1"),
        "S10" => Some("peer-S10"),
        "S1-half" => Some("peer-S1-half"),
        "S10-half" | "NATS" => None,
        id if id.starts_with("peer-") || id.starts_with("restart") || id.starts_with("scale-") => {
            None
        }
        _ => Some("peer-S1"),
    }
}

/// The rate a row is judged by: deliveries per second, or intake when it delivers nothing.
pub fn rate_of(result: &ScenarioResult) -> f64 {
    if result.deliveries_per_second > 0.0 {
        result.deliveries_per_second
    } else {
        result.intake_per_second
    }
}

/// `ours` against the peer row `peer`: how many times the rate (closed loop) or how many
/// times lower the e2e p99 (paced), and how many times less CPU per event (pure).
pub fn versus(ours: &ScenarioResult, peer: &ScenarioResult) -> String {
    let cpu = times(
        peer.router_cpu_us_per_event / ours.router_cpu_us_per_event.max(1e-9),
        "less",
        "more",
    );
    if ours.target_rate.is_some() {
        let p99 = peer.e2e_us.p99 as f64 / (ours.e2e_us.p99 as f64).max(1.0);
        format!("e2e p99 {}, CPU/event {cpu}", times(p99, "lower", "higher"))
    } else {
        let rate = rate_of(ours) / rate_of(peer).max(1e-9);
        format!("{rate:.1}× the rate, CPU/event {cpu}")
    }
}

/// `ratio` as "2.5× better" or, below 1, "2.5× worse" (its inverse).
fn times(ratio: f64, better: &str, worse: &str) -> String {
    if ratio >= 1.0 || ratio <= 0.0 {
        format!("{ratio:.1}× {better}")
    } else {
        format!("{:.1}× {worse}", 1.0 / ratio)
    }
}

/// How quiet the machine was for each row, and the runs of repeated rows.
fn conditions(results: &[ScenarioResult]) -> String {
    let mut text = String::from(
        "| row | disk flush p50 / max before the row (ms) | load average | other CPU (cores) | \
         runs: rate (CPU µs/event, bodies read back) | noticed |\n|---|---|---|---|---|---|\n",
    );
    for result in results.iter().filter(|result| result.not_measured.is_none()) {
        let conditions = &result.conditions;
        let runs: Vec<String> = result.runs.iter().map(run_figures).collect();
        let _ = writeln!(
            text,
            "| {} | {} / {} | {:.1} | {:.2} | {} | {} |",
            result.id,
            ms(conditions.flush_p50_us),
            ms(conditions.flush_max_us),
            conditions.load_average,
            result.other_cpu_cores,
            if runs.is_empty() {
                read_back(result.bodies_read_back)
                    .map_or_else(|| "1".to_owned(), |read_back| format!("1 ({read_back})"))
            } else {
                runs.join(", ") + "; median shown"
            },
            if conditions.quiet() { "quiet".to_owned() } else { conditions.warnings.join("; ") },
        );
    }
    text
}

/// One run of a repeated row: its rate, its CPU per event and, when the router read any,
/// how many bodies it read back from the store (the regime a backlog can push it into).
fn run_figures(run: &RunFigures) -> String {
    let (rate, cpu) = (thousands(run.rate), run.router_cpu_us_per_event);
    match read_back(run.bodies_read_back) {
        Some(read_back) => format!("{rate} ({cpu:.0}, {read_back})"),
        None => format!("{rate} ({cpu:.0})"),
    }
}

/// "N read back", or nothing when no body was (or it was not counted).
fn read_back(bodies: Option<u64>) -> Option<String> {
    bodies.filter(|&count| count > 0).map(|count| format!("{} read back", thousands(count as f64)))
}

/// The line under the scaling plot.
pub fn scaling_caption(summary: &RunSummary) -> String {
    let idle = summary
        .scenarios
        .iter()
        .find(|result| result.id == "S1-idle10k" && result.not_measured.is_none())
        .map_or_else(String::new, |idle| {
            format!(
                "; S1 beside {} idle dynamic endpoints: {} deliveries/s, {:.0} µs/delivery",
                thousands(idle.idle_endpoints_created.map_or(0.0, |(created, _)| created as f64)),
                thousands(idle.deliveries_per_second),
                idle.router_cpu_us_per_delivery
            )
        });
    format!(
        "Measured {} ({} run, {} cores); 1 KiB events, 4,000 deliveries/s offered at every \
         endpoint count; backlog rows: endpoints that are down, 1M = 100k events to ten \
         endpoints{idle}.",
        summary.date,
        if summary.quick { "quick" } else { "full" },
        summary.machine.cores
    )
}

/// Where the router's CPU went, per thread name.
fn threads(results: &[ScenarioResult]) -> String {
    let mut text = String::from("| row | router CPU by thread (cores) |\n|---|---|\n");
    for result in results.iter().filter(|result| result.not_measured.is_none()) {
        let mut threads: Vec<(&String, &f64)> = result.router.threads.iter().collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        let list: Vec<String> =
            threads.iter().map(|(name, cores)| format!("{name} {cores:.2}")).collect();
        let _ = writeln!(text, "| {} | {} |", result.id, list.join(", "));
    }
    text
}

fn plugin_stage(results: &[PluginStageResult]) -> String {
    if results.is_empty() {
        return String::new();
    }
    let mut text = String::from(
        "| plugin stage (µs) | language | fresh p50 / p99 | warm, back to back p50 / p99 | warm, after idle p50 / p99 | warm round trip p50 / p99 |\n\
         |---|---|---|---|---|---|\n",
    );
    for result in results {
        let calls = if result.fresh_calls == result.calls {
            format!("{} calls", result.calls)
        } else {
            format!("{} calls, {} fresh", result.calls, result.fresh_calls)
        };
        let _ = writeln!(
            text,
            "| `{}` ({calls}) | {} | {} / {} | {} / {} | {} / {} | {} / {} |",
            result.plugin,
            result.language,
            micros(result.fresh_inside_ns.p50),
            micros(result.fresh_inside_ns.p99),
            micros(result.warm_inside_ns.p50),
            micros(result.warm_inside_ns.p99),
            micros(result.warm_after_idle_ns.p50),
            micros(result.warm_after_idle_ns.p99),
            micros(result.warm_round_trip_ns.p50),
            micros(result.warm_round_trip_ns.p99),
        );
    }
    text
}

/// Replaces the generated part of the README at `path` with `generated`.
pub fn update_readme(path: &Path, generated: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let start = text.find(README_START).context("the README has no results start marker")?;
    let end = text.find(README_END).context("the README has no results end marker")?;
    anyhow::ensure!(start < end, "the README's result markers are out of order");
    let updated = format!("{}{README_START}\n{generated}{}", &text[..start], &text[end..]);
    std::fs::write(path, updated).with_context(|| format!("cannot write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(28_000.4), "28,000");
        assert_eq!(thousands(899.0), "899");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(ms(850), "0.85");
        assert_eq!(ms(12_345), "12.3");
        assert_eq!(micros(24_950), "24.9");
    }

    #[test]
    fn a_run_names_the_bodies_it_read_back_only_when_there_were_some() {
        let run = |bodies_read_back| RunFigures {
            rate: 37_503.4,
            router_cpu_us_per_event: 390.2,
            bodies_read_back,
        };
        assert_eq!(run_figures(&run(None)), "37,503 (390)");
        assert_eq!(run_figures(&run(Some(0))), "37,503 (390)");
        assert_eq!(run_figures(&run(Some(278_102))), "37,503 (390, 278,102 read back)");
    }

    #[test]
    fn rows_are_compared_with_the_peer_row_of_the_same_scenario() {
        assert_eq!(peer_row_for("S1"), Some("peer-S1"));
        assert_eq!(peer_row_for("S10"), Some("peer-S10"));
        assert_eq!(peer_row_for("S1-half"), Some("peer-S1-half"));
        assert_eq!(peer_row_for("S1-ordered"), Some("peer-S1"));
        assert_eq!(peer_row_for("S0"), Some("peer-S1"));
        for id in ["peer-S1", "S10-half", "scale-100", "restart-1M", "NATS"] {
            assert_eq!(peer_row_for(id), None, "{id}");
        }
        let row = |deliveries: f64, cpu: f64, p99: u64, paced: bool| ScenarioResult {
            deliveries_per_second: deliveries,
            router_cpu_us_per_event: cpu,
            e2e_us: crate::stats::Summary { p99, ..Default::default() },
            target_rate: paced.then_some(100.0),
            ..ScenarioResult::default()
        };
        let peer = row(900.0, 1800.0, 12_000, false);
        assert_eq!(
            versus(&row(9000.0, 150.0, 0, false), &peer),
            "10.0× the rate, CPU/event 12.0× less"
        );
        assert_eq!(
            versus(&row(450.0, 3600.0, 24_000, true), &peer),
            "e2e p99 2.0× higher, CPU/event 2.0× more"
        );
    }

    #[test]
    fn dates_are_iso() {
        let date = today();
        assert_eq!(date.len(), 10, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }

    #[test]
    fn the_readme_section_is_replaced_between_its_markers() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("README.md");
        std::fs::write(&path, format!("intro\n{README_START}\nold\n{README_END}\noutro\n"))
            .unwrap();
        update_readme(&path, "new\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("intro\n{README_START}\nnew\n{README_END}\noutro\n"));
    }
}
