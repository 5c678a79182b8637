//! The cluster rows: one or two router nodes on a 3-server JetStream cluster.
//!
//! Owns the row list (`cluster-1`, `cluster-2`, and their ten-endpoint fan-outs), the NATS
//! servers' and the nodes' configs, and the order of a run: sink, three `nats-server`s
//! (R3, every server fsyncing each write: `sync_interval: always`), the nodes (same config,
//! `[store] backend = "jetstream"`, `durability = "fsync"`), the load spread over the nodes'
//! HTTP intakes (closed loop), CPU sampled for every node and server over the measured window,
//! drain, SIGTERM, then the figures. Lost and duplicated deliveries are counted as in every
//! other row. The CPU per delivery of the nodes and of the servers is what the capacity model
//! in `docs/cluster.md` is drawn from. Everything runs on loopback on the same cores.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::body::{Template, default_body_template};
use crate::load::{self, LoadSpec, Pace, Target};
use crate::procfs::{self, Sampler, Usage};
use crate::router::Router;
use crate::scenario::{self, RunOptions, SIGNING_SECRET, ScenarioResult, signing_sink};
use crate::sink::Reply;

/// How long the servers may take to elect their JetStream leader.
const SERVERS_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries at starting the servers, each on fresh ports.
const START_ATTEMPTS: usize = 3;
/// How long a node may take from listening to `/readyz` answering 200.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often RSS is sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// Servers in the cluster, and copies of each stream.
const SERVERS: usize = 3;
/// Delivery partitions of a cluster (`docs/cluster.md`).
const PARTITIONS: f64 = 16.0;
/// How long the nodes may take to share the partitions out before the load starts anyway.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One cluster row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    pub id: &'static str,
    pub title: &'static str,
    /// Router nodes, each taking an equal share of the load's connections.
    pub nodes: usize,
    /// Endpoints that answer 200, all on one route.
    pub endpoints: usize,
}

/// Every cluster row, in the order they run.
pub fn rows() -> Vec<ClusterRow> {
    vec![
        ClusterRow {
            id: "cluster-1",
            title: "one node, 3 NATS servers (R3), one endpoint",
            nodes: 1,
            endpoints: 1,
        },
        ClusterRow {
            id: "cluster-2",
            title: "two nodes, 3 NATS servers (R3), one endpoint",
            nodes: 2,
            endpoints: 1,
        },
        ClusterRow {
            id: "cluster-1-S10",
            title: "one node, 3 NATS servers (R3), ten endpoints",
            nodes: 1,
            endpoints: 10,
        },
        ClusterRow {
            id: "cluster-2-S10",
            title: "two nodes, 3 NATS servers (R3), ten endpoints",
            nodes: 2,
            endpoints: 10,
        },
    ]
}

/// A cluster row's figures: the common ones, and CPU per delivery for each process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterResult {
    /// As every row reports them; `router` is the first node, `router_cpu_us_per_event` is
    /// summed over the nodes, `other_cpu_cores` leaves out the nodes and the servers.
    #[serde(flatten)]
    pub common: ScenarioResult,
    pub nodes: usize,
    /// Each node over the window.
    pub node_usage: Vec<Usage>,
    /// Each server over the window.
    pub server_usage: Vec<Usage>,
    pub figures: CpuFigures,
}

/// CPU time per delivery that reached the sink in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuFigures {
    /// Each node's CPU microseconds per delivery (of all the cluster's deliveries).
    pub node_us_per_delivery: Vec<f64>,
    /// The nodes together.
    pub nodes_us_per_delivery: f64,
    /// The three servers together.
    pub servers_us_per_delivery: f64,
    /// The busiest server (the log stream's leader, as a rule): the one that limits scale-out.
    pub busiest_server_us_per_delivery: f64,
    /// Deliveries one busy router core makes: 10⁶ / `nodes_us_per_delivery`.
    pub deliveries_per_router_core: f64,
    /// Deliveries per second one core shared by routers and servers makes, both counted.
    pub deliveries_per_core_all_in: f64,
}

impl CpuFigures {
    /// From each node's and each server's CPU (in cores, over the window) and the cluster's
    /// deliveries per second (pure).
    pub fn of(node_cores: &[f64], server_cores: &[f64], deliveries_per_second: f64) -> Self {
        let per = |cores: f64| {
            if deliveries_per_second > 0.0 { cores * 1e6 / deliveries_per_second } else { 0.0 }
        };
        let nodes_us = per(node_cores.iter().sum());
        let servers_us = per(server_cores.iter().sum());
        let inverse = |us: f64| if us > 0.0 { 1e6 / us } else { 0.0 };
        Self {
            node_us_per_delivery: node_cores.iter().map(|&cores| per(cores)).collect(),
            nodes_us_per_delivery: nodes_us,
            servers_us_per_delivery: servers_us,
            busiest_server_us_per_delivery: per(server_cores.iter().copied().fold(0.0, f64::max)),
            deliveries_per_router_core: inverse(nodes_us),
            deliveries_per_core_all_in: inverse(nodes_us + servers_us),
        }
    }
}

/// Ports of one server: clients, routes between servers, monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerPorts {
    pub client: u16,
    pub cluster: u16,
    pub http: u16,
}

/// The config of server `name` (what `docs/cluster.md` shows): JetStream fsyncing each write,
/// routes to every server of the cluster (pure).
pub fn server_config(name: &str, ports: ServerPorts, store: &Path, all: &[ServerPorts]) -> String {
    let routes: String =
        all.iter().map(|other| format!("    nats-route://127.0.0.1:{}\n", other.cluster)).collect();
    format!(
        "server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{http}\n\
         max_payload: 8MB\n\
         jetstream {{\n  store_dir: {store:?}\n  max_memory_store: 64MB\n  \
         max_file_store: 4GB\n  sync_interval: always\n}}\n\
         cluster {{\n  name: switchyard-bench\n  listen: 127.0.0.1:{cluster}\n  routes: [\n\
         {routes}  ]\n}}\n",
        client = ports.client,
        http = ports.http,
        cluster = ports.cluster,
        store = store.display().to_string(),
    )
}

/// The config every node of a row runs (pure): the HTTP source `app`, `endpoints` endpoints
/// `e0…` at the sink on one route, the JetStream store with three copies, fsync durability.
pub fn node_config(row: &ClusterRow, sink: &str, servers: &[ServerPorts]) -> String {
    let list = |scheme: &str, port: fn(&ServerPorts) -> u16| {
        servers
            .iter()
            .map(|server| format!("\"{scheme}://127.0.0.1:{}\"", port(server)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndurability = \"fsync\"\n\n\
         [store]\nbackend = \"jetstream\"\nreplicas = {SERVERS}\nprefix = \"bench\"\n\
         monitor_urls = [{}]\n\n[nats]\nurls = [{}]\n\n\
         [egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [secrets]\nsigning = {{ value = \"{SIGNING_SECRET}\" }}\n\n\
         [sources.app]\ntype = \"http\"\n\n",
        list("http", |server| server.http),
        list("nats", |server| server.client),
    );
    let endpoints: Vec<String> = (0..row.endpoints).map(|index| format!("e{index}")).collect();
    for id in &endpoints {
        text.push_str(&format!(
            "[endpoints.{id}]\nurl = \"{sink}/{id}\"\nsecret = \"signing\"\n\n"
        ));
    }
    let to: Vec<String> = endpoints.iter().map(|id| format!("\"{id}\"")).collect();
    text.push_str(&format!("[routes.all]\nfrom = [\"app\"]\nto = [{}]\n", to.join(", ")));
    text
}

/// Three `nats-server`s in one cluster; killed when dropped.
struct Servers {
    children: Vec<Child>,
    ports: Vec<ServerPorts>,
}

impl Servers {
    /// Starts the servers, again on fresh ports when one of them does not come up: a port
    /// picked free can be taken by another process before the server binds it.
    fn start(binary: &Path, directory: &Path) -> anyhow::Result<Self> {
        let mut failure = None;
        for attempt in 1..=START_ATTEMPTS {
            let attempt_directory = directory.join(format!("servers-{attempt}"));
            std::fs::create_dir_all(&attempt_directory)?;
            match Self::start_once(binary, &attempt_directory) {
                Ok(servers) => return Ok(servers),
                Err(error) => {
                    eprintln!("bench: NATS servers, attempt {attempt}: {error:#}");
                    failure = Some(error);
                }
            }
        }
        Err(failure.unwrap_or_else(|| anyhow::anyhow!("the NATS servers were not started")))
    }

    fn start_once(binary: &Path, directory: &Path) -> anyhow::Result<Self> {
        // Every listener is held until all nine ports are picked, so no port is picked twice.
        let mut held = Vec::new();
        let mut free = || -> anyhow::Result<u16> {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let port = listener.local_addr()?.port();
            held.push(listener);
            Ok(port)
        };
        let mut ports = Vec::new();
        for _ in 0..SERVERS {
            ports.push(ServerPorts { client: free()?, cluster: free()?, http: free()? });
        }
        drop(held);
        let mut servers = Self { children: Vec::new(), ports: ports.clone() };
        let log_path = |name: &str| directory.join(format!("{name}.log"));
        for (index, own) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let config = directory.join(format!("{name}.conf"));
            std::fs::write(&config, server_config(&name, *own, &directory.join(&name), &ports))?;
            let log = std::fs::File::create(log_path(&name))?;
            let child = Command::new(binary)
                .arg("-c")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start `{}`", binary.display()))?;
            servers.children.push(child);
        }
        let deadline = Instant::now() + SERVERS_TIMEOUT;
        for (index, own) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            while !answers_200(SocketAddr::from(([127, 0, 0, 1], own.http)), "/healthz") {
                let exited = servers.children[index].try_wait()?;
                if exited.is_some() || Instant::now() > deadline {
                    let log = std::fs::read_to_string(log_path(&name)).unwrap_or_default();
                    let last = log.lines().rev().find(|line| !line.trim().is_empty());
                    let state = exited.map_or("did not become healthy".into(), |status| {
                        format!("exited ({status})")
                    });
                    bail!(
                        "nats-server {name} on port {} {state}; its log ends: {}",
                        own.client,
                        last.unwrap_or("(empty)")
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(servers)
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `GET path` answers 200.
fn answers_200(address: SocketAddr, path: &str) -> bool {
    get_200(address, path).is_some()
}

/// The whole answer to `GET path` when it is a 200 (one request on a new connection,
/// blocking).
fn get_200(address: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    (answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")).then_some(answer)
}

/// The value of gauge `name` (its first sample) in a Prometheus text exposition (pure).
pub fn gauge(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            return None;
        }
        rest.split_whitespace().last()?.parse().ok()
    })
}

/// Whether the nodes' partitions are settled: every one owned, and with several nodes each
/// owning some, so that no handover happens during the measured window (pure).
pub fn partitions_settled(owned: &[Option<f64>]) -> bool {
    let counts: Option<Vec<f64>> = owned.iter().copied().collect();
    counts.is_some_and(|counts| {
        counts.iter().sum::<f64>() == PARTITIONS && counts.iter().all(|&count| count > 0.0)
    })
}

/// Runs one cluster row end to end, closed loop.
pub async fn run(
    row: &ClusterRow,
    options: &RunOptions,
    nats_server: &Path,
) -> anyhow::Result<ClusterResult> {
    std::fs::create_dir_all(&options.work_dir)?;
    let directory = tempfile::Builder::new().prefix("cluster-").tempdir_in(&options.work_dir)?;
    let paths = (0..row.endpoints).map(|index| (format!("/e{index}"), Reply::OK)).collect();
    let sink = std::sync::Arc::new(signing_sink(paths, options.verify_every).await?);
    let (binary, directory_path) = (nats_server.to_path_buf(), directory.path().to_path_buf());
    let servers =
        tokio::task::spawn_blocking(move || Servers::start(&binary, &directory_path)).await??;
    let config = node_config(row, &sink.url(""), &servers.ports);
    let mut routers = Vec::new();
    for node in 0..row.nodes {
        let home = directory.path().join(format!("node{node}"));
        std::fs::create_dir_all(home.join("data"))?;
        let config_path = home.join("switchyard.toml");
        std::fs::write(&config_path, &config)?;
        let (binary, prefix) = (options.binary.clone(), options.router_prefix.clone());
        let router =
            tokio::task::spawn_blocking(move || Router::start(&prefix, &binary, &config_path))
                .await??;
        routers.push(router);
    }
    for router in &routers {
        let (address, started) = (router.address(), Instant::now());
        while !tokio::task::spawn_blocking(move || answers_200(address, "/readyz")).await? {
            anyhow::ensure!(started.elapsed() < READY_TIMEOUT, "not ready:\n{}", router.tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // A node that joins takes its partitions from the others: wait for that handover, so the
    // window measures steady state (the handover's duplicates are the fault tests' business).
    let addresses: Vec<SocketAddr> = routers.iter().map(Router::address).collect();
    let started = Instant::now();
    loop {
        let addresses = addresses.clone();
        let owned = tokio::task::spawn_blocking(move || {
            addresses
                .iter()
                .map(|address| {
                    gauge(&get_200(*address, "/metrics")?, "switchyard_store_partitions_owned")
                })
                .collect::<Vec<_>>()
        })
        .await?;
        if partitions_settled(&owned) {
            break;
        }
        if started.elapsed() > SETTLE_TIMEOUT {
            eprintln!("bench: {}: partitions not settled ({owned:?}); loading anyway", row.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let connections = options.connections;
    let address = |router: &Router| format!("http://{}/webhooks/app", router.address());
    let spec = LoadSpec {
        target: Target::resolve(&address(&routers[0])).await?,
        connections,
        pace: Pace::Closed,
        warmup: options.warmup,
        duration: options.duration,
        body: Template::parse(&default_body_template()),
        content_type: "application/json".into(),
        headers: Vec::new(),
        github_secret: None,
        limit: None,
    };
    let others = routers[1..].iter().map(Router::address).collect();
    let node_pids: Vec<u32> = routers.iter().map(Router::pid).collect();
    let server_pids = servers.pids();
    let warmup = options.warmup;
    let samplers = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let machine = (Instant::now(), procfs::machine_busy_seconds().unwrap_or(0.0));
        let start = |pids: Vec<u32>| -> Vec<Sampler> {
            pids.into_iter().map(|pid| Sampler::start(pid, SAMPLE_INTERVAL)).collect()
        };
        let harness = Sampler::start(std::process::id(), SAMPLE_INTERVAL);
        (start(node_pids), start(server_pids), harness, machine)
    });
    let tails = || routers.iter().map(Router::tail).collect::<Vec<_>>().join("\n--\n");
    let report = load::run_spread(spec, others).await.with_context(tails)?;
    let (node_samplers, server_samplers, harness, (machine_started, machine_busy)) =
        samplers.await?;
    let node_usage: Vec<Usage> = node_samplers.into_iter().map(Sampler::finish).collect();
    let server_usage: Vec<Usage> = server_samplers.into_iter().map(Sampler::finish).collect();
    let harness_usage = harness.finish();
    let machine_cores = (procfs::machine_busy_seconds().unwrap_or(machine_busy) - machine_busy)
        / machine_started.elapsed().as_secs_f64().max(f64::EPSILON);

    let accepted = report.sent.iter().filter(|sent| sent.status == 202).count() as u64;
    let expected = accepted * row.endpoints as u64;
    let drain_seconds = scenario::drain(&sink, row.endpoints, expected, options.drain_limit).await;
    let stopped = tokio::task::spawn_blocking(move || {
        let statuses: Vec<_> = routers.iter_mut().map(Router::stop).collect();
        (routers, statuses)
    })
    .await?;
    let (routers, statuses) = stopped;
    for (router, status) in routers.iter().zip(statuses) {
        let status = status?;
        if !status.success() {
            bail!("switchyard exited with {status}:\n{}", router.tail());
        }
    }
    drop(servers);

    let arrivals = sink.take();
    let mut template = scenario::catalogue(None, None, None, 1)
        .into_iter()
        .find(|scenario| scenario.id == "S1")
        .context("the catalogue has S1")?;
    (template.id, template.title, template.endpoints) = (row.id, row.title, row.endpoints);
    let mut common = scenario::figures(&template, &report, &arrivals, row.endpoints);
    let node_cores: Vec<f64> = node_usage.iter().map(|usage| usage.cpu_cores).collect();
    let server_cores: Vec<f64> = server_usage.iter().map(|usage| usage.cpu_cores).collect();
    let figures = CpuFigures::of(&node_cores, &server_cores, common.deliveries_per_second);
    let events = (common.intake_per_second * common.window_seconds).max(1.0);
    common.connections = connections;
    common.router_cpu_us_per_event =
        node_cores.iter().sum::<f64>() * common.window_seconds * 1e6 / events;
    // The servers are not the NATS row's intake: their figures are this row's own.
    common.nats_server_cpu_cores = None;
    common.other_cpu_cores = (machine_cores
        - node_cores.iter().sum::<f64>()
        - server_cores.iter().sum::<f64>()
        - harness_usage.cpu_cores)
        .max(0.0);
    common.harness_cpu_cores = harness_usage.cpu_cores;
    common.router = node_usage.first().cloned().unwrap_or_default();
    common.drain_seconds = drain_seconds;
    let counters = sink.counters();
    common.signatures_checked =
        counters.signatures_checked.load(std::sync::atomic::Ordering::Relaxed);
    common.signatures_failed =
        counters.signatures_failed.load(std::sync::atomic::Ordering::Relaxed);
    common.sink_connections = counters.connections.load(std::sync::atomic::Ordering::Relaxed);
    Ok(ClusterResult { common, nodes: row.nodes, node_usage, server_usage, figures })
}

/// The cluster rows' own table (markdown), beside the common one (pure).
pub fn markdown(results: &[ClusterResult]) -> String {
    let mut text = String::from(
        "| row | nodes | deliveries/s | e2e p50 / p99 ms | router µs/delivery (per node) | \
         NATS servers µs/delivery (busiest) | deliveries/s per router core | lost / dup |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let common = &result.common;
        if let Some(reason) = &common.not_measured {
            text.push_str(&format!("| {} | {} | {reason} |||||||\n", common.id, result.nodes));
            continue;
        }
        let per_node: Vec<String> =
            result.figures.node_us_per_delivery.iter().map(|us| format!("{us:.0}")).collect();
        text.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} / {:.1} | {:.0} ({}) | {:.0} ({:.0}) | {:.0} | {} / {} |\n",
            common.id,
            result.nodes,
            common.deliveries_per_second,
            common.e2e_us.p50 as f64 / 1000.0,
            common.e2e_us.p99 as f64 / 1000.0,
            result.figures.nodes_us_per_delivery,
            per_node.join(" + "),
            result.figures.servers_us_per_delivery,
            result.figures.busiest_server_us_per_delivery,
            result.figures.deliveries_per_router_core,
            common.lost,
            common.duplicates,
        ));
    }
    text
}

/// A row that could not run, with the reason.
pub fn not_measured(row: &ClusterRow, reason: String) -> ClusterResult {
    let common = ScenarioResult {
        id: row.id.into(),
        title: row.title.into(),
        durability: "fsync".into(),
        not_measured: Some(reason),
        ..ScenarioResult::default()
    };
    ClusterResult { common, nodes: row.nodes, ..ClusterResult::default() }
}

/// The `nats-server` a row needs, or why it cannot run.
pub fn server_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    given.map(Path::to_path_buf).ok_or_else(|| {
        "not measured: no `nats-server` (`cargo xtask setup`, or `--nats-server <path>`)".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<ServerPorts> {
        (0..3)
            .map(|index| ServerPorts {
                client: 4222 + index,
                cluster: 6222 + index,
                http: 8222 + index,
            })
            .collect()
    }

    #[test]
    fn every_cluster_row_writes_a_valid_node_config() {
        for row in rows() {
            let text = node_config(&row, "http://127.0.0.1:9", &ports());
            let topology =
                switchyard::config::parse(&text, Path::new("/run"), &crate::scenario::Files)
                    .unwrap_or_else(|errors| panic!("{}: {errors}\n{text}", row.id));
            assert_eq!(topology.endpoints.len(), row.endpoints, "{}", row.id);
            assert_eq!(topology.routes.len(), 1, "{}", row.id);
            assert!(text.contains("backend = \"jetstream\""), "{text}");
            assert!(text.contains("durability = \"fsync\""), "{text}");
            assert!(text.contains("replicas = 3"), "{text}");
            assert!(
                text.contains(
                    "monitor_urls = [\"http://127.0.0.1:8222\", \"http://127.0.0.1:8223\", \
                     \"http://127.0.0.1:8224\"]"
                ),
                "{text}"
            );
            assert!(text.contains("urls = [\"nats://127.0.0.1:4222\", "), "{text}");
        }
        let ids: Vec<&str> = rows().iter().map(|row| row.id).collect();
        assert_eq!(ids, ["cluster-1", "cluster-2", "cluster-1-S10", "cluster-2-S10"]);
    }

    #[test]
    fn partitions_settle_when_all_are_owned_and_shared() {
        let metrics = "# HELP switchyard_store_partitions_owned Delivery partitions.\n\
                       # TYPE switchyard_store_partitions_owned gauge\n\
                       switchyard_store_partitions_owned 9\n\
                       switchyard_store_partitions_owned_total 3\n";
        assert_eq!(gauge(metrics, "switchyard_store_partitions_owned"), Some(9.0));
        assert_eq!(gauge("x{a=\"b\"} 2.5\n", "x"), Some(2.5));
        assert_eq!(gauge(metrics, "switchyard_store_log_lag"), None);
        assert!(partitions_settled(&[Some(16.0)]));
        assert!(partitions_settled(&[Some(9.0), Some(7.0)]));
        assert!(!partitions_settled(&[Some(16.0), Some(0.0)]));
        assert!(!partitions_settled(&[Some(12.0), Some(2.0)]));
        assert!(!partitions_settled(&[Some(16.0), None]));
    }

    #[test]
    fn server_config_fsyncs_every_write_and_routes_to_every_server() {
        let all = ports();
        let text = server_config("n2", all[1], Path::new("/srv/n2"), &all);
        assert!(text.contains("server_name: n2\n"), "{text}");
        assert!(text.contains("listen: 127.0.0.1:4223\n"), "{text}");
        assert!(text.contains("http: 127.0.0.1:8223\n"), "{text}");
        assert!(text.contains("store_dir: \"/srv/n2\""), "{text}");
        assert!(text.contains("sync_interval: always"), "{text}");
        assert!(text.contains("listen: 127.0.0.1:6223\n"), "{text}");
        for port in 6222..6225 {
            assert!(text.contains(&format!("nats-route://127.0.0.1:{port}\n")), "{text}");
        }
    }

    #[test]
    fn cpu_per_delivery_per_node_summed_and_per_core() {
        // Two nodes at 0.5 and 0.3 of a core, servers at 0.2 + 0.1 + 0.1, 1,000 deliveries/s.
        let figures = CpuFigures::of(&[0.5, 0.3], &[0.2, 0.1, 0.1], 1000.0);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(figures.node_us_per_delivery[0], 500.0), "{figures:?}");
        assert!(close(figures.node_us_per_delivery[1], 300.0), "{figures:?}");
        assert!(close(figures.nodes_us_per_delivery, 800.0), "{figures:?}");
        assert!(close(figures.servers_us_per_delivery, 400.0), "{figures:?}");
        assert!(close(figures.busiest_server_us_per_delivery, 200.0), "{figures:?}");
        assert!(close(figures.deliveries_per_router_core, 1250.0), "{figures:?}");
        assert!(close(figures.deliveries_per_core_all_in, 1e6 / 1200.0), "{figures:?}");
        // Nothing delivered: no figure rather than infinity.
        let idle = CpuFigures::of(&[0.1], &[0.1, 0.1, 0.1], 0.0);
        assert_eq!(idle.nodes_us_per_delivery, 0.0);
        assert_eq!(idle.deliveries_per_router_core, 0.0);
    }

    #[test]
    fn the_table_shows_each_node_and_the_lost_and_duplicated() {
        let mut result = ClusterResult {
            nodes: 2,
            figures: CpuFigures::of(&[0.5, 0.3], &[0.3, 0.1], 1000.0),
            ..ClusterResult::default()
        };
        result.common.id = "cluster-2".into();
        result.common.deliveries_per_second = 1000.0;
        result.common.lost = 0;
        result.common.duplicates = 3;
        let missing = not_measured(&rows()[0], "not measured: no server".into());
        let text = markdown(&[result, missing]);
        assert!(text.contains("| cluster-2 | 2 | 1000 |"), "{text}");
        assert!(text.contains("| 800 (500 + 300) | 400 (300) | 1250 | 0 / 3 |"), "{text}");
        assert!(text.contains("| cluster-1 | 1 | not measured: no server |"), "{text}");
    }
}
