//! The peer gateway run in the same benchmark: Svix with its own PostgreSQL and Redis.
//!
//! Owns the peer's lifecycle (its `run.sh start DIR PORT`, `setup-app`, `stop`), the
//! environment file the script writes, the processes whose CPU counts as the peer's (the
//! Svix server, Redis, the Postgres postmaster and every backend it forked), and how one peer
//! row runs: a sink, an app whose endpoints point at it, the same load generator on Svix's
//! message API, the same figures as a Switchyard row. The peer is started once for all its
//! rows and stopped after the last (Svix takes about 11 s to exit, so the stop is waited for
//! before the next row starts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::body::{Template, default_body_template};
use crate::load::{self, LoadSpec, Pace, Target};
use crate::procfs::{self, Usage};
use crate::scenario::{self, RunOptions, Scenario, ScenarioResult};
use crate::sink::{Reply, Sink, SinkSpec};

/// The event type every peer message carries.
const EVENT_TYPE: &str = "bench.event";
/// Starts of the peer tried before its rows are given up.
const START_ATTEMPTS: usize = 3;

/// A started peer: where it keeps its data, how to reach it, which processes are its own.
#[derive(Debug)]
pub struct Peer {
    script: PathBuf,
    directory: PathBuf,
    url: String,
    token: String,
    /// The Svix server, Redis and the Postgres postmaster.
    roots: Vec<(&'static str, u32)>,
    pub version: String,
    stopped: bool,
}

/// How the peer was run, for the report's header.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub version: String,
    /// Seconds from `run.sh start` to a healthy server.
    pub start_seconds: f64,
    /// Seconds `run.sh stop` took (Svix drains for about 11 s).
    pub stop_seconds: f64,
}

impl Peer {
    /// Runs `run.sh start` with a fresh directory under `work_dir` and a free port, up to
    /// [`START_ATTEMPTS`] times: the script picks Postgres's and Redis's ports by probing
    /// for a listener, and a port a live client connection holds passes that probe but
    /// cannot be bound.
    pub fn start(installation: &Path, work_dir: &Path) -> anyhow::Result<Self> {
        let mut failure = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(installation, work_dir) {
                Ok(peer) => return Ok(peer),
                Err(error) => failure = Some(error),
            }
        }
        Err(failure.unwrap_or_else(|| anyhow::anyhow!("the peer was not started")))
    }

    fn start_once(installation: &Path, work_dir: &Path) -> anyhow::Result<Self> {
        let script = installation.join("run.sh");
        if !script.is_file() {
            bail!("`{}` has no `run.sh`", installation.display());
        }
        std::fs::create_dir_all(work_dir)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let directory = std::path::absolute(work_dir.join(format!("peer-{stamp}")))?;
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        let output = Command::new(&script)
            .arg("start")
            .arg(&directory)
            .arg(port.to_string())
            .output()
            .with_context(|| format!("cannot run `{}`", script.display()))?;
        if !output.status.success() {
            // `run.sh` stopped what it had started; the directory is this attempt's only.
            let _ = std::fs::remove_dir_all(&directory);
            // The script's last line only says that it stopped; the cause is before it.
            let stderr = String::from_utf8_lossy(&output.stderr);
            let mut last: Vec<&str> =
                stderr.lines().rev().filter(|line| !line.trim().is_empty()).take(3).collect();
            last.reverse();
            bail!("`run.sh start` failed ({}): {}", output.status, last.join(" / "));
        }
        let text = std::fs::read_to_string(directory.join("env"))
            .with_context(|| format!("the peer wrote no `{}`", directory.join("env").display()))?;
        let env = parse_env(&text);
        let get = |key: &str| {
            env.get(key).cloned().with_context(|| format!("the peer's env has no `{key}`"))
        };
        let pid = |key: &str| -> anyhow::Result<u32> {
            get(key)?.parse().with_context(|| format!("the peer's `{key}` is not a pid"))
        };
        Ok(Self {
            script,
            url: get("SVIX_URL")?,
            token: get("SVIX_TOKEN")?,
            roots: vec![
                ("svix", pid("SVIX_PID")?),
                ("postgres", pid("PG_PID")?),
                ("redis", pid("REDIS_PID")?),
            ],
            version: env.get("SVIX_VERSION").cloned().unwrap_or_default(),
            directory,
            stopped: false,
        })
    }

    /// Creates app `name` with `endpoints` endpoints `<sink>/e0 …`; answers its id. Blocks
    /// while the script runs (a few requests per endpoint).
    pub async fn setup_app(
        &self,
        name: &str,
        endpoints: usize,
        sink: &str,
    ) -> anyhow::Result<String> {
        let mut command = tokio::process::Command::new(&self.script);
        command.arg("setup-app").arg(&self.directory).arg(name);
        let output = command.arg(endpoints.to_string()).arg(sink).output().await?;
        if !output.status.success() {
            bail!(
                "the peer's app `{name}` was not created:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("the peer printed no id for app `{name}`"))
    }

    /// Svix's message API for one app.
    pub fn message_url(&self, app: &str) -> String {
        format!("{}/api/v1/app/{app}/msg/", self.url)
    }

    /// The peer's processes by group: each root, and for Postgres every backend it forked.
    pub fn processes(&self) -> Vec<(&'static str, u32)> {
        let mut processes = self.roots.clone();
        let parents: HashMap<u32, &'static str> =
            self.roots.iter().map(|(group, pid)| (*pid, *group)).collect();
        for (pid, parent) in procfs::parents() {
            if let Some(group) = parents.get(&parent) {
                processes.push((group, pid));
            }
        }
        processes
    }

    /// `run.sh stop`: Svix, then Redis, then Postgres; waits for all three.
    pub fn stop(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.stopped = true;
        let status = Command::new(&self.script).arg("stop").arg(&self.directory).status()?;
        if !status.success() {
            bail!("`run.sh stop` exited with {status}");
        }
        // The data is the run's only; the cluster's files belong to another user.
        let _ = std::fs::remove_dir_all(&self.directory);
        Ok(started.elapsed())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop();
        }
    }
}

/// The `KEY=value` lines of the environment file `run.sh start` writes (pure).
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim().trim_matches('"').trim_matches('\'');
            (!key.is_empty() && !key.starts_with('#')).then(|| (key.trim().into(), value.into()))
        })
        .collect()
}

/// The body of one message: the default 1 KiB event as the payload of Svix's envelope.
pub fn message_template() -> String {
    format!(r#"{{"eventType":"{EVENT_TYPE}","payload":{}}}"#, default_body_template())
}

/// CPU of a set of processes, summed, between two readings.
struct GroupSampler {
    started: Instant,
    at_start: HashMap<u32, f64>,
    written_at_start: HashMap<u32, u64>,
}

impl GroupSampler {
    fn start(processes: &[(&'static str, u32)]) -> Self {
        Self {
            started: Instant::now(),
            at_start: processes
                .iter()
                .filter_map(|(_, pid)| Some((*pid, procfs::cpu_seconds(*pid)?)))
                .collect(),
            written_at_start: processes
                .iter()
                .filter_map(|(_, pid)| Some((*pid, procfs::written_bytes(*pid)?)))
                .collect(),
        }
    }

    /// Usage over the window, per group in `threads`; processes born in the window count
    /// from zero, those that exited in it are lost (Postgres keeps its backends). Memory is
    /// the processes' proportional set sizes at the end, summed: shared buffers count once.
    fn finish(self, processes: &[(&'static str, u32)]) -> Usage {
        let wall = self.started.elapsed().as_secs_f64().max(f64::EPSILON);
        let mut usage = Usage::default();
        for (group, pid) in processes {
            let Some(now) = procfs::cpu_seconds(*pid) else { continue };
            let used = now - self.at_start.get(pid).copied().unwrap_or(0.0);
            *usage.threads.entry((*group).to_owned()).or_insert(0.0) += used / wall;
            usage.cpu_cores += used / wall;
            usage.rss_max_bytes += procfs::pss_bytes(*pid).unwrap_or(0);
            let written = procfs::written_bytes(*pid).unwrap_or(0);
            usage.written_bytes +=
                written.saturating_sub(self.written_at_start.get(pid).copied().unwrap_or(0));
        }
        usage.rss_mean_bytes = usage.rss_max_bytes;
        usage
    }
}

/// Runs one peer row: its own sink and app, the load on Svix's message API, the drain.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    rate: Option<f64>,
    peer: &Peer,
) -> anyhow::Result<ScenarioResult> {
    let endpoints = scenario.endpoints;
    let paths = (0..endpoints).map(|index| (format!("/e{index}"), Reply::OK)).collect();
    // Svix signs with its own per-endpoint keys and header names: the sink checks none.
    let sink = std::sync::Arc::new(
        Sink::start(([127, 0, 0, 1], 0).into(), SinkSpec { paths, key: None, verify_every: 1 })
            .await?,
    );
    let app_name = format!("bench-{}", scenario.id.to_ascii_lowercase());
    let sink_url = sink.url("");
    let app = peer.setup_app(&app_name, endpoints, &sink_url).await?;
    let connections = if rate.is_some() { options.paced_connections } else { options.connections };
    let spec = LoadSpec {
        target: Target::resolve(&peer.message_url(&app)).await?,
        connections,
        pace: rate.map_or(Pace::Closed, Pace::Rate),
        warmup: options.warmup,
        duration: options.duration,
        body: Template::parse(&message_template()),
        content_type: "application/json".into(),
        headers: vec![(
            "authorization".try_into()?,
            Template::parse(&format!("Bearer {}", peer.token)),
        )],
        github_secret: None,
        limit: None,
    };
    let warmup = options.warmup;
    let processes = peer.processes();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let machine = (Instant::now(), procfs::machine_busy_seconds().unwrap_or(0.0));
        let harness = procfs::Sampler::start(std::process::id(), Duration::from_millis(200));
        (GroupSampler::start(&processes), processes, harness, machine)
    });
    let report = load::run(spec).await?;
    let (group, processes, harness, (machine_started, machine_busy)) = sampler.await?;
    // Backends forked during the window count too.
    let mut processes = processes;
    for process in peer.processes() {
        if !processes.contains(&process) {
            processes.push(process);
        }
    }
    let peer_usage = group.finish(&processes);
    let harness_usage = harness.finish();
    let machine_cores = (procfs::machine_busy_seconds().unwrap_or(machine_busy) - machine_busy)
        / machine_started.elapsed().as_secs_f64().max(f64::EPSILON);

    let accepted = report.sent.iter().filter(|sent| (200..300).contains(&sent.status)).count();
    let expected = (accepted * endpoints) as u64;
    let drain_seconds = scenario::drain(&sink, endpoints, expected, options.drain_limit).await;
    let arrivals = sink.take();
    // Svix answers a created message with 202, as the router does.
    let mut result = scenario::figures(scenario, &report, &arrivals, endpoints);
    result.connections = connections;
    result.target_rate = rate;
    result.durability = "Postgres fsync".into();
    result.other_cpu_cores =
        (machine_cores - peer_usage.cpu_cores - harness_usage.cpu_cores).max(0.0);
    let events = (result.intake_per_second * result.window_seconds).max(1.0);
    result.router_cpu_us_per_event = peer_usage.cpu_cores * result.window_seconds * 1e6 / events;
    let deliveries = (result.deliveries_per_second * result.window_seconds).max(1.0);
    result.router_cpu_us_per_delivery =
        peer_usage.cpu_cores * result.window_seconds * 1e6 / deliveries;
    result.written_kb_per_event = peer_usage.written_bytes as f64 / 1000.0 / events;
    result.router = peer_usage;
    result.harness_cpu_cores = harness_usage.cpu_cores;
    result.drain_seconds = drain_seconds;
    result.sink_connections =
        sink.counters().connections.load(std::sync::atomic::Ordering::Relaxed);
    result.peer = true;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_file_is_read() {
        let text = "SVIX_URL=http://127.0.0.1:8071\nSVIX_TOKEN=ey.J.w\nexport PG_PID=\"42\"\n\
                    # a comment\n\nSVIX_VERSION=1.100.0\n";
        let env = parse_env(text);
        assert_eq!(env.get("SVIX_URL").map(String::as_str), Some("http://127.0.0.1:8071"));
        assert_eq!(env.get("SVIX_TOKEN").map(String::as_str), Some("ey.J.w"));
        assert_eq!(env.get("PG_PID").map(String::as_str), Some("42"));
        assert_eq!(env.len(), 4);
    }

    #[test]
    fn a_message_wraps_the_default_event_in_the_envelope() {
        let message = Template::parse(&message_template()).render(7, 1_700_000_000_000_000);
        let value: serde_json::Value = serde_json::from_str(&message).unwrap();
        assert_eq!(value["eventType"], EVENT_TYPE);
        assert_eq!(value["payload"]["seq"], 7);
        assert!(message.len() > 1024, "{}", message.len());
        assert_eq!(crate::body::find_number(message.as_bytes(), "seq"), Some(7));
    }
}
