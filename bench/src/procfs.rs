//! What a process costs, read from `/proc`: CPU time and resident memory.
//!
//! Owns the parsing of `/proc/<pid>/stat` and `/proc/<pid>/status` and a sampler thread that
//! records the largest and mean RSS over a window. Linux only, like the benchmark itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Clock ticks per second of `utime`/`stime`: `USER_HZ`, 100 on every Linux architecture the
/// benchmark runs on (it is fixed by the kernel ABI, not by `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// CPU time a process has used so far (user + system, all threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, seconds)| seconds)
}

/// The name and CPU seconds of a `stat` line (a process's or a thread's).
fn parse_stat(stat: &str) -> Option<(&str, f64)> {
    // The command name is in parentheses and may hold spaces: fields start after the last `)`.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (user + system) / USER_HZ))
}

/// CPU seconds per thread name, numbered threads (`plugin-0`, `plugin-1`) counted together as
/// `plugin-N`.
pub fn thread_cpu_seconds(pid: u32) -> BTreeMap<String, f64> {
    let mut threads = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return threads };
    for entry in entries.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((name, seconds)) = parse_stat(&stat) else { continue };
        let group = match name.trim_end_matches(|c: char| c.is_ascii_digit()) {
            trimmed if trimmed.len() < name.len() => format!("{trimmed}N"),
            _ => name.to_owned(),
        };
        *threads.entry(group).or_insert(0.0) += seconds;
    }
    threads
}

/// Bytes a process has caused to be written to storage so far (`write_bytes` of
/// `/proc/<pid>/io`: what reaches the block layer, fsynced or not).
pub fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines().find_map(|line| line.strip_prefix("write_bytes:")?.trim().parse().ok())
}

/// CPU time every process on the machine has used since boot (idle and I/O wait excluded),
/// in seconds: the first line of `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<f64> = line.split_whitespace().filter_map(|field| field.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy = [0, 1, 2, 5, 6, 7].iter().filter_map(|&index| ticks.get(index)).sum::<f64>();
    Some(busy / USER_HZ)
}

/// Every process on the machine with its parent: `(pid, ppid)`.
pub fn parents() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_parent(&stat)?))
        })
        .collect()
}

/// The parent pid of a `stat` line.
fn parse_parent(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Resident set size, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Proportional set size, in bytes: resident memory with every shared page divided among
/// the processes that map it (so the Postgres backends' shared buffers count once in all).
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|line| line.starts_with("Pss:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes used by the files directly in `directory` whose names start with `prefix`.
pub fn files_bytes(directory: &Path, prefix: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir(directory) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|entry| entry.metadata().ok())
        .filter(|metadata| metadata.is_file())
        .map(|metadata| metadata.len())
        .sum()
}

/// What a process used over a window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// CPU time over wall time: 1.0 is one core busy for the whole window.
    pub cpu_cores: f64,
    /// The same, per thread name (threads that used less than 1 % of a core left out).
    pub threads: BTreeMap<String, f64>,
    pub rss_max_bytes: u64,
    pub rss_mean_bytes: u64,
    /// Bytes written to storage over the window.
    pub written_bytes: u64,
}

/// Samples one process's RSS on a thread and its CPU time at the ends of the window.
#[derive(Debug)]
pub struct Sampler {
    pid: u32,
    started: Instant,
    cpu_at_start: f64,
    threads_at_start: BTreeMap<String, f64>,
    written_at_start: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<u64>>,
}

impl Sampler {
    pub fn start(pid: u32, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                if let Some(rss) = rss_bytes(pid) {
                    samples.push(rss);
                }
                std::thread::sleep(interval);
            }
            samples
        });
        Self {
            pid,
            started: Instant::now(),
            cpu_at_start: cpu_seconds(pid).unwrap_or(0.0),
            threads_at_start: thread_cpu_seconds(pid),
            written_at_start: written_bytes(pid).unwrap_or(0),
            stop,
            thread,
        }
    }

    pub fn finish(self) -> Usage {
        let cpu = cpu_seconds(self.pid).unwrap_or(self.cpu_at_start) - self.cpu_at_start;
        let threads_at_end = thread_cpu_seconds(self.pid);
        let written = written_bytes(self.pid).unwrap_or(0).saturating_sub(self.written_at_start);
        let wall = self.started.elapsed().as_secs_f64().max(f64::EPSILON);
        let threads = threads_at_end
            .into_iter()
            .map(|(name, seconds)| {
                let before = self.threads_at_start.get(&name).copied().unwrap_or(0.0);
                (name, (seconds - before) / wall)
            })
            .filter(|(_, cores)| *cores >= 0.01)
            .collect();
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let count = samples.len().max(1) as u64;
        Usage {
            cpu_cores: cpu / wall,
            threads,
            rss_max_bytes: samples.iter().copied().max().unwrap_or(0),
            rss_mean_bytes: samples.iter().sum::<u64>() / count,
            written_bytes: written,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        let line = "42 (tokio (rt) 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(parse_stat(line), Some(("tokio (rt) 1", 3.0)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_parent(line), Some(1));
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(rss_bytes(pid).is_some_and(|rss| rss > 0));
        assert!(pss_bytes(pid).is_some_and(|pss| pss > 0));
        assert_eq!(cpu_seconds(u32::MAX), None);
        assert!(machine_busy_seconds().is_some_and(|busy| busy > 0.0));
        assert!(!thread_cpu_seconds(pid).is_empty());
        let parent = std::os::unix::process::parent_id();
        assert!(parents().contains(&(pid, parent)));
    }
}
