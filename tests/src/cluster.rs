//! A real 3-server NATS cluster with JetStream on loopback ports, every server fsyncing each
//! write (`sync_interval: always`), each with its own store directory and monitoring port;
//! its servers are stopped by pid when it is dropped.
//!
//! Self-contained (std, anyhow, tempfile) so that the host crate's own tests use this same
//! file for the store conformance suite.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a starting cluster may take to elect its JetStream leader.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One server of the cluster.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct NatsCluster {
    members: Vec<Member>,
    directory: tempfile::TempDir,
}

/// The `nats-server` binary of the test tools venv.
fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("a crate of the workspace");
    let binary = root.join(".tools/venv/bin/nats-server");
    assert!(binary.exists(), "`{}` is missing: run `cargo xtask setup`", binary.display());
    binary
}

/// A loopback port free now, which neither an outgoing connection nor another call here can
/// take before a server binds it.
///
/// A port taken with `bind(0)` and released lies in the kernel's ephemeral range, where
/// any outgoing connection (the routers under test open many) may take it as its local
/// port before nats-server binds it; that server then fails to start and its cluster never
/// elects a leader. So the port comes from below that range, where outgoing connections
/// never land, and a process-wide set keeps two clusters started side by side from being
/// handed the same one.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (low, high) = outside_ephemeral_range();
    let span = u64::from(high - low);
    // A random start, so that two test processes do not walk the range in step.
    let start = RandomState::new().hash_one(std::process::id()) % span;
    for step in 0..span {
        let port = low + ((start + step) % span) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port in {low}..{high}")
}

/// The last lines a server wrote to its log at `path`, headed as such, for a failure's message.
pub(crate) fn last_lines(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let mut text = String::from("(last lines of its log)\n");
    for line in &lines[lines.len().saturating_sub(15)..] {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Ports from 10000 up to the start of the kernel's ephemeral range (32768 unless
/// configured otherwise), or above its end when the range starts lower.
fn outside_ephemeral_range() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(|bound| bound.parse::<u16>().ok());
            Some((bounds.next()??, bounds.next()??))
        })
        .unwrap_or((32768, 60999));
    match range {
        (first, _) if first > 12_000 => (10_000, first),
        (_, last) if last < 63_000 => (last + 1, u16::MAX),
        _ => (10_000, 32768),
    }
}

impl NatsCluster {
    /// Starts three servers and waits until each answers healthy (JetStream up, leader
    /// elected).
    pub fn start() -> anyhow::Result<Self> {
        // Another process may still bind one of the ports between our check and the
        // server's own bind: that start is retried on fresh ports, anything else is the error.
        let mut attempts = 1;
        loop {
            match Self::start_on_fresh_ports() {
                Err(error) if attempts < 3 && error.to_string().contains("already in use") => {
                    attempts += 1;
                }
                outcome => return outcome,
            }
        }
    }

    fn start_on_fresh_ports() -> anyhow::Result<Self> {
        let directory = tempfile::tempdir()?;
        let mut ports = Vec::new();
        for _ in 0..3 {
            ports.push((free_port()?, free_port()?, free_port()?));
        }
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, cluster, _)| format!("nats-route://127.0.0.1:{cluster}"))
            .collect();
        let mut members = Vec::new();
        for (index, (client_port, cluster_port, http_port)) in ports.into_iter().enumerate() {
            let name = format!("n{}", index + 1);
            let store = directory.path().join(&name);
            let config = directory.path().join(format!("{name}.conf"));
            std::fs::write(
                &config,
                server_config(&name, client_port, cluster_port, http_port, &store, &routes),
            )?;
            members.push(Member { name, client_port, http_port, config, child: None });
        }
        let mut cluster = Self { members, directory };
        for index in 0..cluster.members.len() {
            cluster.launch(index)?;
        }
        cluster.wait_healthy()?;
        Ok(cluster)
    }

    fn launch(&mut self, index: usize) -> anyhow::Result<()> {
        let member = &mut self.members[index];
        let log =
            std::fs::File::create(self.directory.path().join(format!("{}.log", member.name)))?;
        let child = Command::new(binary())
            .arg("-c")
            .arg(&member.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start nats-server")?;
        member.child = Some(child);
        Ok(())
    }

    /// Waits until every running server answers healthy. A server that exited, or a
    /// cluster still unhealthy at the deadline, is an error that carries the servers' logs.
    fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        for index in 0..self.members.len() {
            let member = &self.members[index];
            if member.child.is_none() {
                continue;
            }
            let (name, port) = (member.name.clone(), member.http_port);
            while !healthy(port) {
                if let Some((exited, status)) = self.exited()? {
                    bail!("nats-server `{exited}` exited ({status})\n{}", self.logs());
                }
                if Instant::now() > deadline {
                    bail!("nats-server `{name}` did not become healthy\n{}", self.logs());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The first server started here that has exited since, with how it ended.
    fn exited(&mut self) -> std::io::Result<Option<(String, std::process::ExitStatus)>> {
        for member in &mut self.members {
            if let Some(status) = member.child.as_mut().map(Child::try_wait).transpose()?.flatten()
            {
                return Ok(Some((member.name.clone(), status)));
            }
        }
        Ok(None)
    }

    /// The last lines each server wrote, for a failure's message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for member in &self.members {
            let path = self.directory.path().join(format!("{}.log", member.name));
            text.push_str(&format!("--- {} ", member.name));
            text.push_str(&last_lines(&path));
        }
        text
    }

    /// Every server's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| format!("nats://127.0.0.1:{}", member.client_port))
            .collect()
    }

    /// Every server's monitoring URL (`/varz`, `/jsz`, `/healthz`).
    pub fn monitor_urls(&self) -> Vec<String> {
        self.members.iter().map(|member| format!("http://127.0.0.1:{}", member.http_port)).collect()
    }

    /// The process ids of the servers running now, to read their CPU time and memory.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|member| Some(member.child.as_ref()?.id())).collect()
    }

    /// Kills server `index` (SIGKILL); its store stays.
    pub fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `index` again on its ports and store, and waits until it is healthy.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        self.stop(index);
        self.launch(index)?;
        self.wait_healthy()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.stop(index);
        }
    }
}

/// The configuration every test server runs: what `docs/cluster.md` shows.
fn server_config(
    name: &str,
    client_port: u16,
    cluster_port: u16,
    http_port: u16,
    store: &Path,
    routes: &[String],
) -> String {
    let routes = routes.iter().map(|route| format!("    {route}\n")).collect::<String>();
    format!(
        "server_name: {name}\n\
         listen: 127.0.0.1:{client_port}\n\
         http: 127.0.0.1:{http_port}\n\
         max_payload: 8MB\n\
         jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n  sync_interval: always\n}}\n\
         cluster {{\n  name: switchyard-test\n  listen: 127.0.0.1:{cluster_port}\n  routes: [\n{routes}  ]\n}}\n",
        store = store.display(),
    )
}

/// Whether the server's `/healthz` answers 200 (JetStream ready).
fn healthy(http_port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], http_port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}
