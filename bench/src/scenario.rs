//! Scenarios: what each run configures, and how one run is measured.
//!
//! Owns the catalogue (S0, S1, S10, the paced runs, plugins, a failing endpoint, a restart
//! with a backlog, and the rows that cannot run yet), the config each writes, and the order of
//! a run: sink, router, load (warm-up, then the measured window with CPU and RSS sampled from
//! `/proc`), drain, SIGTERM, then the figures. The NATS row publishes to a JetStream stream the
//! router consumes, on a `nats-server` it starts for the run. The restart row fills the store
//! instead (a fixed number of events for an endpoint nothing listens on), stops, and times the
//! next start to `/readyz` answering 200. Everything here runs on loopback, bounded in time and
//! in count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::body::{Template, default_body_template, keyed_body_template};
use crate::jetstream::{self, NatsServer, PublishSpec};
use crate::load::{self, LoadReport, LoadSpec, Pace, Target};
use crate::procfs::{self, Sampler, Usage};
use crate::router::Router;
use crate::signature::WebhookKey;
use crate::sink::{Arrival, Reply, Sink, SinkSpec};
use crate::stats::Summary;

/// The endpoints' signing secret (a Standard Webhooks test key, not a real one).
pub const SIGNING_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The GitHub webhook secret of the verify scenario.
pub const GITHUB_SECRET: &str = "bench-github-secret";
/// The JSON pointer the redact scenario masks (present in the default body).
pub const REDACT_POINTER: &str = "/data/card/number";
/// How often RSS is sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// A drain that makes no progress for this long is over.
const DRAIN_STALL: Duration = Duration::from_secs(5);
/// Pending deliveries the restart row leaves in the store (DESIGN §11: 100k).
pub const RESTART_PENDING: u64 = 100_000;
/// The longest the restart row may take to accept its events.
const RESTART_FILL_LIMIT: Duration = Duration::from_secs(240);
/// The NATS row's most messages published but not yet delivered: the JetStream source's
/// default `max_ack_pending`, so the router always has a full window to work on.
const NATS_BACKLOG: u64 = 1024;
/// The longest wait for `/readyz` after the restarted router listens.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The router's count of delivery bodies read back from the store (see `bodies_read_back`).
const BODY_READS_METRIC: &str = "switchyard_delivery_body_reads_total";
/// Distinct ordering keys of the ordered row.
pub const ORDER_KEYS: u64 = 1000;
/// The JSON pointer the ordered row orders by (present in its body).
pub const ORDER_POINTER: &str = "/data/customer";
/// A rate no row reaches: the limiter rows pay for the limiters, never wait.
const UNREACHED_RATE: &str = "1000000/s";
/// Deliveries per second the endpoint-scaling rows offer, whatever their fan-out: a load the
/// router keeps up with at ten endpoints on this machine, so each row's CPU per delivery is
/// measured at the same delivery rate and its backlog stays bounded.
pub const SCALE_DELIVERIES: f64 = 4_000.0;

/// Idle dynamic endpoints of the scaling row.
pub const IDLE_DYNAMIC_ENDPOINTS: usize = 10_000;
/// The longest the scaling row spends creating them (each creation is an admin request that
/// commits and rebuilds the routing tables); the row runs with as many as were created.
const IDLE_CREATE_LIMIT: Duration = Duration::from_secs(120);
/// The admin token of the rows that use the admin API.
const ADMIN_TOKEN: &str = "bench-admin-token";

/// How a scenario's load is timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PaceRule {
    /// Closed loop: as fast as the router answers.
    Saturate,
    /// Paced at half the intake the named scenario reached.
    HalfOf(&'static str),
    /// Paced at this many events per second.
    Fixed(f64),
}

/// A plugin on the route, between routing and the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePlugin {
    /// The first-party Rust `redact` transform, fresh instance per event.
    Redact,
    /// A Python transform (componentize-py), warm instances, masking what `redact` masks.
    Python(PathBuf),
}

/// One benchmark row.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    /// Endpoints that answer 200.
    pub endpoints: usize,
    /// Adds an endpoint that answers 500 (retried after 1 s and 2 s, then dead-lettered).
    pub failing: bool,
    /// The source runs `verify-github`; the load generator signs every body.
    pub verify: bool,
    pub route_plugin: Option<RoutePlugin>,
    /// `server.durability`.
    pub durability: &'static str,
    pub pace: PaceRule,
    /// Accept this many events for an endpoint nothing listens on (each keeps a pending
    /// delivery, its retry an hour away), stop, and time the next start to ready.
    pub restart_with: Option<u64>,
    /// The source is a JetStream stream on a `nats-server` started for the run, and the load
    /// is published to it.
    pub nats: bool,
    /// The peer gateway (Svix + Postgres), driven and measured as the router is.
    pub peer: bool,
    /// An ingest `rate_limit` on the source and a `rate` on every endpoint, both far above
    /// what the run reaches: the cost of the limiters alone.
    pub limiters: bool,
    /// `ordered_by` on every endpoint, on a body key that cycles over [`ORDER_KEYS`] values.
    pub ordered: bool,
    /// Dynamic endpoints created through the admin API before the load, on a type no event
    /// has: idle, but in the store and in the router's tables.
    pub idle_dynamic_endpoints: usize,
    /// Runs of the row; the one with the median rate is kept (spread in the result).
    pub repeats: usize,
    /// Its measured window, in windows of the run (`--duration`): longer where memory over
    /// time is the point (S1-failing, DESIGN §11: "through 60 s").
    pub windows: u32,
    /// Left out of `--quick` runs (long, or needs the peer).
    pub heavy: bool,
    /// Why this row cannot run yet; it is reported, not measured.
    pub not_yet: Option<String>,
}

/// Knobs shared by every scenario of one invocation.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub binary: PathBuf,
    /// Where the first-party plugins' `.wasm` files are.
    pub plugins_dir: PathBuf,
    /// Closed-loop connections (DESIGN §11: 32).
    pub connections: usize,
    /// Connections of the paced runs; enough that none waits at half load.
    pub paced_connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// The longest wait for deliveries after the load stops.
    pub drain_limit: Duration,
    /// The sink checks the signature of one delivery in this many.
    pub verify_every: u64,
    /// Where each run's config and data directory go (a temp dir per run inside).
    pub work_dir: PathBuf,
    /// Runs the router under this command (a profiler); empty for none.
    pub router_prefix: Vec<String>,
    /// Compiled plugins (`.cwasm`) kept between runs, so a Python component is compiled once,
    /// not at every router start (the data directory's `plugin-cache` links here).
    pub plugin_cache: PathBuf,
    /// The `nats-server` binary for the NATS row.
    pub nats_server: Option<PathBuf>,
    /// Cores a neighbour keeps busy through every row (a busy machine); 0 for none.
    pub neighbour_cores: usize,
}

/// Every row, in the order they run. The peer's rows come first (one peer started for all
/// three, stopped before the router's rows), paced rows follow the row they halve. Rows whose
/// Python transform, `nats-server` or peer is not given are reported as not measured.
/// `headline_repeats` runs of S1 and S10 each.
pub fn catalogue(
    python_transform: Option<&Path>,
    nats_server: Option<&Path>,
    peer: Option<&Path>,
    headline_repeats: usize,
) -> Vec<Scenario> {
    let base = Scenario {
        id: "",
        title: "",
        endpoints: 1,
        failing: false,
        verify: false,
        route_plugin: None,
        durability: "fsync",
        pace: PaceRule::Saturate,
        restart_with: None,
        nats: false,
        peer: false,
        limiters: false,
        ordered: false,
        idle_dynamic_endpoints: 0,
        repeats: 1,
        windows: 1,
        heavy: false,
        not_yet: None,
    };
    let no_peer = peer.is_none().then(|| {
        "not measured: no peer (`--peer-svix <dir>` with the Svix server and its `run.sh`)".into()
    });
    let peer_row = Scenario {
        peer: true,
        heavy: true,
        durability: "Postgres fsync",
        not_yet: no_peer,
        ..base.clone()
    };
    vec![
        Scenario { id: "peer-S1", title: "peer: one endpoint", ..peer_row.clone() },
        Scenario {
            id: "peer-S1-half",
            title: "peer: one endpoint, paced at half of peer-S1",
            pace: PaceRule::HalfOf("peer-S1"),
            ..peer_row.clone()
        },
        Scenario { id: "peer-S10", title: "peer: ten endpoints", endpoints: 10, ..peer_row },
        Scenario { id: "S0", title: "ingest only (no routes)", endpoints: 0, ..base.clone() },
        Scenario { id: "S1", title: "one endpoint", repeats: headline_repeats, ..base.clone() },
        Scenario {
            id: "S1-half",
            title: "one endpoint, paced at half of S1",
            pace: PaceRule::HalfOf("S1"),
            ..base.clone()
        },
        Scenario {
            id: "S10",
            title: "ten endpoints",
            endpoints: 10,
            repeats: headline_repeats,
            ..base.clone()
        },
        Scenario {
            id: "S10-half",
            title: "ten endpoints, paced at half of S10",
            endpoints: 10,
            pace: PaceRule::HalfOf("S10"),
            ..base.clone()
        },
        Scenario {
            id: "S1-os",
            title: "one endpoint, durability = \"os\"",
            durability: "os",
            ..base.clone()
        },
        Scenario {
            id: "S1-rate",
            title: "one endpoint, ingest rate_limit and endpoint rate never reached",
            limiters: true,
            ..base.clone()
        },
        Scenario {
            id: "S1-ordered",
            title: "one endpoint, ordered_by a body key (1,000 keys)",
            ordered: true,
            ..base.clone()
        },
        Scenario {
            id: "S1-verify",
            title: "one endpoint, Rust verify plugin (verify-github)",
            verify: true,
            ..base.clone()
        },
        Scenario {
            id: "S1-redact",
            title: "one endpoint, Rust route plugin (redact), fresh",
            route_plugin: Some(RoutePlugin::Redact),
            ..base.clone()
        },
        Scenario {
            id: "S1-python",
            title: "one endpoint, Python route transform, warm",
            route_plugin: python_transform.map(|path| RoutePlugin::Python(path.to_path_buf())),
            not_yet: python_transform.is_none().then(|| {
                "not measured: no Python transform (build `bench/plugins/python` with `switchyard \
                 plugin build`, or give `--python-transform <wasm>`)"
                    .into()
            }),
            ..base.clone()
        },
        Scenario {
            id: "S1-failing",
            title: "one healthy endpoint beside one answering 500, four windows long",
            failing: true,
            windows: 4,
            ..base.clone()
        },
        scale(&base, "scale-1", "one route to 1 endpoint, paced", 1),
        scale(&base, "scale-10", "one route to 10 endpoints, paced", 10),
        scale(&base, "scale-100", "one route to 100 endpoints, paced", 100),
        scale(&base, "scale-1000", "one route to 1,000 endpoints, paced", 1000),
        Scenario {
            id: "S1-idle10k",
            heavy: true,
            title: "one endpoint beside up to 10,000 idle dynamic endpoints",
            idle_dynamic_endpoints: IDLE_DYNAMIC_ENDPOINTS,
            ..base.clone()
        },
        Scenario {
            id: "restart-1k",
            heavy: true,
            title: "restart with 1k pending deliveries",
            restart_with: Some(1_000),
            ..base.clone()
        },
        Scenario {
            id: "restart",
            title: "restart with 100k pending deliveries",
            restart_with: Some(RESTART_PENDING),
            ..base.clone()
        },
        Scenario {
            id: "restart-1M",
            heavy: true,
            title: "restart with 1M pending deliveries (100k events to ten endpoints)",
            endpoints: 10,
            restart_with: Some(RESTART_PENDING),
            ..base.clone()
        },
        Scenario {
            id: "NATS",
            title: "NATS JetStream in, webhook out",
            nats: true,
            not_yet: nats_server.is_none().then(|| {
                "not measured: no `nats-server` (`cargo xtask setup`, or `--nats-server <path>`)"
                    .into()
            }),
            ..base
        },
    ]
}

/// An endpoint-scaling row: one route to `endpoints` endpoints, paced so that the deliveries
/// offered are [`SCALE_DELIVERIES`] per second.
fn scale(base: &Scenario, id: &'static str, title: &'static str, endpoints: usize) -> Scenario {
    Scenario {
        id,
        title,
        endpoints,
        pace: PaceRule::Fixed(SCALE_DELIVERIES / endpoints as f64),
        heavy: true,
        ..base.clone()
    }
}

/// One run of a repeated row, for the spread between runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RunFigures {
    /// Deliveries (intake for a row without endpoints) per second.
    pub rate: f64,
    pub router_cpu_us_per_event: f64,
    pub bodies_read_back: Option<u64>,
}

/// A run's figures, as written to JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub durability: String,
    /// Why it was not measured.
    pub not_measured: Option<String>,
    pub connections: usize,
    /// Requests per second asked of a paced run.
    pub target_rate: Option<f64>,
    pub window_seconds: f64,
    pub requests: usize,
    pub accepted: usize,
    /// Answers other than 202, by status (0: the connection failed).
    pub refused: std::collections::BTreeMap<u16, usize>,
    /// Paced requests sent more than 5 ms after they were due.
    pub late_sends: u64,
    /// 202 answers per second in the window.
    pub intake_per_second: f64,
    /// Requests to healthy endpoints that arrived at the sink in the window, per second.
    pub deliveries_per_second: f64,
    /// Sink arrival − send stamp, for requests stamped in the window, microseconds.
    pub e2e_us: Summary,
    /// POST → 202 as the load generator saw it, for accepted requests in the window.
    pub ingest_us: Summary,
    pub router: Usage,
    /// The load generator and sink together (this process).
    pub harness_cpu_cores: f64,
    /// Every other process on the machine: what the run competed with.
    pub other_cpu_cores: f64,
    /// Router CPU time per accepted event in the window: unlike rates, it hardly depends on
    /// what else the machine was doing, so it is the figure to compare changes with.
    pub router_cpu_us_per_event: f64,
    /// Bytes the router wrote to storage per accepted event in the window, in KB (WAL,
    /// checkpoints and the database file).
    pub written_kb_per_event: f64,
    /// Database growth over the run (after the router's clean stop) per stored delivery (per
    /// event when there are no deliveries).
    pub disk_bytes_per_delivery: f64,
    pub database_bytes: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    /// Accepted requests that never reached a healthy endpoint.
    pub lost: u64,
    /// Arrivals beyond the first of a request at an endpoint.
    pub duplicates: u64,
    /// How long the backlog took to reach the sink after the load stopped.
    pub drain_seconds: f64,
    /// Requests that reached the failing endpoint (first attempts and retries).
    pub failing_attempts: Option<u64>,
    pub signatures_checked: u64,
    pub signatures_failed: u64,
    /// Connections the router opened to the sink.
    pub sink_connections: u64,
    /// Restart row: pending deliveries the restarted router loaded (from its log).
    pub restart_pending: Option<u64>,
    /// Restart row: process start → `/readyz` answering 200, seconds.
    pub restart_ready_seconds: Option<f64>,
    /// Restart row: process start → the listening socket, seconds.
    pub restart_listening_seconds: Option<f64>,
    /// NATS row: the `nats-server`'s CPU over the window (not counted in `other`).
    pub nats_server_cpu_cores: Option<f64>,
    /// Restart rows: the restarted router's RSS once ready.
    pub restart_rss_bytes: Option<u64>,
    /// Router CPU time per delivery that reached a healthy endpoint in the window.
    pub router_cpu_us_per_delivery: f64,
    /// A peer row: `router` is then the peer's processes (Svix, Postgres, Redis).
    pub peer: bool,
    /// How quiet the machine was: the disk's flush latency just before the row, and why the
    /// figures may not be comparable (empty when nothing was noticed).
    pub conditions: crate::conditions::Conditions,
    /// Deliveries whose body the router read back from the store rather than from memory
    /// (its `switchyard_delivery_body_reads_total` once the row drained): the costly regime a
    /// router falls into when a backlog outgrows the bodies it keeps. `None`: not read.
    pub bodies_read_back: Option<u64>,
    /// Every run of a repeated row.
    pub runs: Vec<RunFigures>,
    /// Idle dynamic endpoints created before the load, and how long that took.
    pub idle_endpoints_created: Option<(u64, f64)>,
}

impl ScenarioResult {
    /// Deliveries each accepted event fanned out to (0 when nothing was accepted).
    pub fn endpoints_fanned_out(&self) -> u64 {
        self.expected_deliveries.checked_div(self.accepted as u64).unwrap_or(0)
    }

    pub fn not_measured(scenario: &Scenario, reason: String) -> Self {
        Self {
            id: scenario.id.into(),
            title: scenario.title.into(),
            durability: scenario.durability.into(),
            not_measured: Some(reason),
            ..Self::default()
        }
    }
}

/// The config a scenario runs with; `sink` is the sink's base URL, `nats` the server's URL
/// for the NATS row.
pub fn config_text(
    scenario: &Scenario,
    sink: &str,
    plugins_dir: &Path,
    nats: Option<&str>,
) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndurability = \"{}\"\n{}\n\
         [egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [secrets]\nsigning = {{ value = \"{SIGNING_SECRET}\" }}\n\
         github = {{ value = \"{GITHUB_SECRET}\" }}\n\n",
        scenario.durability,
        if scenario.idle_dynamic_endpoints > 0 {
            format!("admin_token = {{ value = \"{ADMIN_TOKEN}\" }}\n")
        } else {
            String::new()
        }
    );
    if let Some(url) = nats {
        text.push_str(&format!("[nats]\nurl = \"{url}\"\n\n"));
    }
    let wasm = |file: &str| plugins_dir.join(file).display().to_string();
    if scenario.verify {
        text.push_str(&format!(
            "[plugins.verify-github]\npath = {:?}\nsecrets = [\"github\"]\n\
             config = {{ secret = \"github\" }}\n\n",
            wasm("verify_github.wasm")
        ));
    }
    let route_plugin = match &scenario.route_plugin {
        Some(RoutePlugin::Redact) => {
            text.push_str(&format!(
                "[plugins.redact]\npath = {:?}\nconfig = {{ pointers = \"{REDACT_POINTER}\" }}\n\n",
                wasm("redact.wasm")
            ));
            Some("redact")
        }
        Some(RoutePlugin::Python(path)) => {
            text.push_str(&format!(
                "[plugins.python-transform]\npath = {:?}\ninstances = \"warm\"\n\
                 timeout = \"1s\"\nconfig = {{ pointers = \"{REDACT_POINTER}\" }}\n\n",
                path.display().to_string()
            ));
            Some("python-transform")
        }
        None => None,
    };
    if scenario.nats {
        text.push_str(&format!(
            "[sources.app]\ntype = \"nats\"\nsubject = \"{}\"\n\
             jetstream = {{ stream = \"{}\", durable = \"switchyard\" }}\n",
            jetstream::SUBJECT,
            jetstream::STREAM
        ));
    } else {
        text.push_str("[sources.app]\ntype = \"http\"\n");
    }
    if scenario.verify {
        text.push_str("verify = [\"verify-github\"]\n");
    }
    if scenario.limiters {
        text.push_str(&format!("rate_limit = {{ rate = \"{UNREACHED_RATE}\" }}\n"));
    }
    text.push('\n');
    let mut endpoints: Vec<String> =
        (0..scenario.endpoints).map(|index| format!("e{index}")).collect();
    for id in &endpoints {
        text.push_str(&format!("[endpoints.{id}]\nurl = \"{sink}/{id}\"\nsecret = \"signing\"\n"));
        if scenario.restart_with.is_some() {
            // The first attempt fails at once (nothing listens), the next is an hour away.
            text.push_str("retry = { schedule = [\"1h\"] }\n");
        }
        if scenario.limiters {
            text.push_str(&format!("rate = \"{UNREACHED_RATE}\"\n"));
        }
        if scenario.ordered {
            text.push_str(&format!("ordered_by = {{ json = \"{ORDER_POINTER}\" }}\n"));
        }
        text.push('\n');
    }
    if scenario.failing {
        text.push_str(&format!(
            "[endpoints.failing]\nurl = \"{sink}/failing\"\nsecret = \"signing\"\n\
             retry = {{ schedule = [\"1s\", \"2s\"] }}\n\n"
        ));
        endpoints.push("failing".into());
    }
    if !endpoints.is_empty() {
        let to: Vec<String> = endpoints.iter().map(|id| format!("\"{id}\"")).collect();
        text.push_str(&format!("[routes.all]\nfrom = [\"app\"]\nto = [{}]\n", to.join(", ")));
        if let Some(plugin) = route_plugin {
            text.push_str(&format!("plugins = [\"{plugin}\"]\n"));
        }
    }
    text
}

/// A sink on loopback answering `paths`, checking the Standard Webhooks signature (the rows'
/// signing secret) of one delivery in `verify_every`.
pub(crate) async fn signing_sink(
    paths: Vec<(String, Reply)>,
    verify_every: u64,
) -> anyhow::Result<Sink> {
    let key = Some(WebhookKey::parse(SIGNING_SECRET)?);
    Sink::start(([127, 0, 0, 1], 0).into(), SinkSpec { paths, key, verify_every }).await
}

/// Runs one scenario end to end; `rate` paces it (requests per second), else closed loop.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    rate: Option<f64>,
) -> anyhow::Result<ScenarioResult> {
    std::fs::create_dir_all(&options.work_dir)?;
    let directory = tempfile::Builder::new().prefix("run-").tempdir_in(&options.work_dir)?;
    let mut paths: Vec<(String, Reply)> =
        (0..scenario.endpoints).map(|index| (format!("/e{index}"), Reply::OK)).collect();
    if scenario.failing {
        paths.push(("/failing".into(), Reply { status: 500, delay: Duration::ZERO }));
    }
    // The restart row's endpoint is never reached: nothing counts as lost.
    let healthy = if scenario.restart_with.is_some() { 0 } else { scenario.endpoints };
    let sink = std::sync::Arc::new(signing_sink(paths, options.verify_every).await?);
    let endpoint_base =
        if scenario.restart_with.is_some() { unreachable_url()? } else { sink.url("") };
    let nats = match (scenario.nats, &options.nats_server) {
        (false, _) => None,
        (true, None) => anyhow::bail!("the NATS row needs a `nats-server`"),
        (true, Some(binary)) => {
            let server = NatsServer::start(binary, &directory.path().join("nats"))?;
            jetstream::create_stream(&server.url()).await?;
            Some(server)
        }
    };
    let nats_url = nats.as_ref().map(NatsServer::url);
    let config_path = directory.path().join("switchyard.toml");
    let config = config_text(scenario, &endpoint_base, &options.plugins_dir, nats_url.as_deref());
    std::fs::write(&config_path, config)?;
    let data_dir = directory.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    std::fs::create_dir_all(&options.plugin_cache)?;
    std::os::unix::fs::symlink(
        std::path::absolute(&options.plugin_cache)?,
        data_dir.join(switchyard::plugin::CACHE_DIRECTORY),
    )?;
    let (binary, prefix) = (options.binary.clone(), options.router_prefix.clone());
    let start_config = config_path.clone();
    let mut router =
        tokio::task::spawn_blocking(move || Router::start(&prefix, &binary, &start_config))
            .await??;
    let database_before = procfs::files_bytes(&data_dir, "switchyard.db");
    if nats.is_some() {
        // Listening comes before the JetStream consumer exists; ready waits for it.
        let started = Instant::now();
        while !readyz(router.address()).await.unwrap_or(false) {
            anyhow::ensure!(started.elapsed() < READY_TIMEOUT, "not ready:\n{}", router.tail());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let idle_endpoints_created = match scenario.idle_dynamic_endpoints {
        0 => None,
        count => Some(create_idle_endpoints(router.address(), &sink.url(""), count).await?),
    };

    let connections = if rate.is_some() { options.paced_connections } else { options.connections };
    let mut headers = Vec::new();
    if scenario.verify {
        headers.push(("x-github-event".try_into()?, Template::parse("push")));
        headers.push(("x-github-delivery".try_into()?, Template::parse("bench-{{seq}}")));
    }
    // The restart row sends a fixed number of events, all of them measured.
    let (warmup, duration) = match scenario.restart_with {
        Some(_) => (Duration::ZERO, RESTART_FILL_LIMIT),
        None => (options.warmup, options.duration * scenario.windows),
    };
    let spec = LoadSpec {
        target: Target::resolve(&format!("http://{}/webhooks/app", router.address())).await?,
        connections,
        pace: rate.map_or(Pace::Closed, Pace::Rate),
        warmup,
        duration,
        body: Template::parse(&if scenario.ordered {
            keyed_body_template(ORDER_KEYS)
        } else {
            default_body_template()
        }),
        content_type: "application/json".into(),
        headers,
        github_secret: scenario.verify.then(|| GITHUB_SECRET.as_bytes().to_vec()),
        limit: scenario.restart_with,
    };
    let pid = router.pid();
    let nats_pid = nats.as_ref().map(NatsServer::pid);
    let samplers = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let machine = (Instant::now(), procfs::machine_busy_seconds().unwrap_or(0.0));
        let router = Sampler::start(pid, SAMPLE_INTERVAL);
        let nats = nats_pid.map(|pid| Sampler::start(pid, SAMPLE_INTERVAL));
        (router, Sampler::start(std::process::id(), SAMPLE_INTERVAL), nats, machine)
    });
    let report = match &nats_url {
        Some(url) => {
            let publish = PublishSpec {
                url: url.clone(),
                connections,
                warmup,
                duration,
                body: spec.body,
                backlog: NATS_BACKLOG,
            };
            let sink = sink.clone();
            let delivered = move || (0..healthy).map(|index| sink.count(index)).sum();
            jetstream::publish(publish, delivered).await.context("publishing to JetStream")?
        }
        None => load::run(spec).await.with_context(|| router.tail())?,
    };
    let (router_sampler, harness_sampler, nats_sampler, (machine_started, machine_busy)) =
        samplers.await?;
    let router_usage = router_sampler.finish();
    let harness_usage = harness_sampler.finish();
    let nats_cores = nats_sampler.map(|sampler| sampler.finish().cpu_cores);
    let machine_cores = (procfs::machine_busy_seconds().unwrap_or(machine_busy) - machine_busy)
        / machine_started.elapsed().as_secs_f64().max(f64::EPSILON);

    let accepted = report.sent.iter().filter(|sent| sent.status == 202).count() as u64;
    let expected = accepted * healthy as u64;
    let drain_seconds = drain(&sink, healthy, expected, options.drain_limit).await;
    let bodies_read_back = metrics(router.address())
        .await
        .ok()
        .and_then(|text| crate::cluster::gauge(&text, BODY_READS_METRIC))
        .map(|count| count as u64);
    let stopped = tokio::task::spawn_blocking(move || {
        let status = router.stop();
        (router, status)
    })
    .await?;
    let (router, status) = stopped;
    let status = status?;
    if !status.success() {
        anyhow::bail!("switchyard exited with {status}:\n{}", router.tail());
    }
    let database_after = procfs::files_bytes(&data_dir, "switchyard.db");
    let restart = match scenario.restart_with {
        Some(_) => Some(time_restart(options, &config_path).await?),
        None => None,
    };
    let arrivals = sink.take();
    let mut result = figures(scenario, &report, &arrivals, healthy);
    result.connections = connections;
    result.target_rate = rate;
    result.other_cpu_cores = (machine_cores
        - router_usage.cpu_cores
        - harness_usage.cpu_cores
        - nats_cores.unwrap_or(0.0))
    .max(0.0);
    result.nats_server_cpu_cores = nats_cores;
    let events = (result.intake_per_second * result.window_seconds).max(1.0);
    result.router_cpu_us_per_event = router_usage.cpu_cores * result.window_seconds * 1e6 / events;
    let deliveries = (result.deliveries_per_second * result.window_seconds).max(1.0);
    result.router_cpu_us_per_delivery =
        router_usage.cpu_cores * result.window_seconds * 1e6 / deliveries;
    result.idle_endpoints_created = idle_endpoints_created;
    result.written_kb_per_event = router_usage.written_bytes as f64 / 1000.0 / events;
    result.router = router_usage;
    result.harness_cpu_cores = harness_usage.cpu_cores;
    result.drain_seconds = drain_seconds;
    result.bodies_read_back = bodies_read_back;
    result.database_bytes = database_after;
    // The restart rows store a delivery per endpoint, though none is reachable.
    let stored = accepted * (scenario.endpoints + usize::from(scenario.failing)).max(1) as u64;
    result.disk_bytes_per_delivery =
        database_after.saturating_sub(database_before) as f64 / stored.max(1) as f64;
    result.signatures_checked =
        sink.counters().signatures_checked.load(std::sync::atomic::Ordering::Relaxed);
    result.signatures_failed =
        sink.counters().signatures_failed.load(std::sync::atomic::Ordering::Relaxed);
    result.sink_connections =
        sink.counters().connections.load(std::sync::atomic::Ordering::Relaxed);
    if let Some(restart) = restart {
        result.restart_pending = restart.pending;
        result.restart_listening_seconds = Some(restart.listening.as_secs_f64());
        result.restart_ready_seconds = Some(restart.ready.as_secs_f64());
        result.restart_rss_bytes = restart.rss_bytes;
    }
    Ok(result)
}

/// An `http://127.0.0.1:<port>` where nothing listens (a port the OS handed out and took back).
fn unreachable_url() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    drop(listener);
    Ok(format!("http://127.0.0.1:{port}"))
}

/// How long a restart took.
struct Restart {
    listening: Duration,
    ready: Duration,
    /// What the router logged as `loaded pending deliveries pending=N`.
    pending: Option<u64>,
    /// Its RSS once ready.
    rss_bytes: Option<u64>,
}

/// Starts the router again on the same config and data directory, times it to listening and
/// to `/readyz` answering 200, then stops it.
async fn time_restart(options: &RunOptions, config_path: &Path) -> anyhow::Result<Restart> {
    let (binary, prefix) = (options.binary.clone(), options.router_prefix.clone());
    let config_path = config_path.to_path_buf();
    let started = Instant::now();
    let mut router =
        tokio::task::spawn_blocking(move || Router::start(&prefix, &binary, &config_path))
            .await??;
    let listening = started.elapsed();
    let ready = loop {
        if readyz(router.address()).await.unwrap_or(false) {
            break started.elapsed();
        }
        if started.elapsed() > listening + READY_TIMEOUT {
            anyhow::bail!("`/readyz` did not answer 200 within {READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let pending = router.tail().lines().find_map(pending_in_log_line);
    let rss_bytes = procfs::rss_bytes(router.pid());
    let status = tokio::task::spawn_blocking(move || router.stop()).await??;
    anyhow::ensure!(status.success(), "the restarted switchyard exited with {status}");
    Ok(Restart { listening, ready, pending, rss_bytes })
}

/// Creates up to `count` dynamic endpoints through the admin API (32 at a time, with the load
/// generator, for at most [`IDLE_CREATE_LIMIT`]), each on its own sink path and on a type no
/// event has; answers how many were created and the seconds it took.
async fn create_idle_endpoints(
    router: std::net::SocketAddr,
    sink: &str,
    count: usize,
) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let body = format!(
        r#"{{"url":"{sink}/idle/{{{{seq}}}}","sources":["app"],"types":["bench.idle"],"description":"idle {{{{seq}}}}"}}"#
    );
    let spec = LoadSpec {
        target: Target::resolve(&format!("http://{router}/v1/admin/endpoints")).await?,
        connections: 32,
        pace: Pace::Closed,
        warmup: Duration::ZERO,
        duration: IDLE_CREATE_LIMIT,
        body: Template::parse(&body),
        content_type: "application/json".into(),
        headers: vec![(
            "authorization".try_into()?,
            Template::parse(&format!("Bearer {ADMIN_TOKEN}")),
        )],
        github_secret: None,
        limit: Some(count as u64),
    };
    let report = load::run(spec).await?;
    let created = report.sent.iter().filter(|sent| (200..300).contains(&sent.status)).count();
    anyhow::ensure!(
        created > 0,
        "no idle endpoint was created (statuses: {:?})",
        report.sent.iter().map(|sent| sent.status).collect::<std::collections::BTreeSet<_>>()
    );
    Ok((created as u64, started.elapsed().as_secs_f64()))
}

/// `N` of the router's `loaded pending deliveries pending=N` line.
fn pending_in_log_line(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("loaded pending deliveries")?;
    let digits = rest.split_once("pending=")?.1;
    digits.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Whether `GET /readyz` answers 200 (one request on a new connection).
async fn readyz(address: std::net::SocketAddr) -> anyhow::Result<bool> {
    Ok(get(address, "/readyz").await?.starts_with(b"HTTP/1.1 200"))
}

/// The router's Prometheus exposition.
async fn metrics(address: std::net::SocketAddr) -> anyhow::Result<String> {
    let answer = get(address, "/metrics").await?;
    anyhow::ensure!(answer.starts_with(b"HTTP/1.1 200"), "`/metrics` did not answer 200");
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// The whole answer to `GET path`, status line and headers included.
async fn get(address: std::net::SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer)
}

/// The figures of a finished run, from what was sent and what arrived (pure).
pub fn figures(
    scenario: &Scenario,
    report: &LoadReport,
    arrivals: &[Arrival],
    healthy: usize,
) -> ScenarioResult {
    let window = report.window_seconds().max(f64::EPSILON);
    let (start, end) = (report.window_start_us, report.window_end_us);
    let mut refused = std::collections::BTreeMap::new();
    for sent in report.sent.iter().filter(|sent| sent.status != 202) {
        *refused.entry(sent.status).or_insert(0) += 1;
    }
    let mut ingest: Vec<u64> =
        report.measured().filter(|sent| sent.status == 202).map(|sent| sent.latency_us).collect();
    let accepted_in_window = ingest.len();
    let to_healthy = || arrivals.iter().filter(|arrival| arrival.path < healthy);
    let delivered_in_window =
        to_healthy().filter(|arrival| (start..end).contains(&arrival.arrival_us)).count();
    let mut e2e: Vec<u64> = to_healthy()
        .filter_map(|arrival| {
            let sent = arrival.sent_us.filter(|sent| (start..end).contains(sent))?;
            Some(arrival.arrival_us.saturating_sub(sent))
        })
        .collect();
    // Lost and duplicated, per healthy endpoint, over the whole run (warm-up included).
    let max_seq = report.sent.iter().map(|sent| sent.seq).max().unwrap_or(0) as usize;
    let mut seen = vec![vec![0u32; max_seq + 1]; healthy];
    for arrival in to_healthy() {
        if let Some(seq) = arrival.seq.map(|seq| seq as usize).filter(|seq| *seq <= max_seq) {
            seen[arrival.path][seq] += 1;
        }
    }
    let accepted: Vec<usize> = report
        .sent
        .iter()
        .filter(|sent| sent.status == 202)
        .map(|sent| sent.seq as usize)
        .collect();
    let lost = seen
        .iter()
        .map(|counts| accepted.iter().filter(|&&seq| counts[seq] == 0).count() as u64)
        .sum();
    let duplicates = seen.iter().flatten().map(|&count| u64::from(count.saturating_sub(1))).sum();
    ScenarioResult {
        id: scenario.id.into(),
        title: scenario.title.into(),
        durability: scenario.durability.into(),
        window_seconds: window,
        requests: report.sent.len(),
        accepted: accepted.len(),
        refused,
        late_sends: report.late,
        intake_per_second: accepted_in_window as f64 / window,
        deliveries_per_second: delivered_in_window as f64 / window,
        e2e_us: Summary::of(&mut e2e),
        ingest_us: Summary::of(&mut ingest),
        expected_deliveries: (accepted.len() * healthy) as u64,
        delivered: to_healthy().count() as u64,
        lost,
        duplicates,
        failing_attempts: scenario
            .failing
            .then(|| arrivals.iter().filter(|arrival| arrival.path == healthy).count() as u64),
        ..ScenarioResult::default()
    }
}

/// Waits until the sink's first `endpoints` paths have `expected` arrivals in all, `limit` has
/// passed, or arrivals stalled for [`DRAIN_STALL`]; answers how long it waited, in seconds.
pub async fn drain(sink: &Sink, endpoints: usize, expected: u64, limit: Duration) -> f64 {
    let started = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let delivered: u64 = (0..endpoints).map(|index| sink.count(index)).sum();
        if delivered >= expected || started.elapsed() > limit {
            break;
        }
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed() > DRAIN_STALL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed().as_secs_f64()
}

/// For tests that parse a written config: every file exists, no variables are set.
#[cfg(test)]
pub(crate) struct Files;

#[cfg(test)]
impl switchyard::config::Environment for Files {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other(format!("{} is not readable here", path.display())))
    }
    fn is_file(&self, _: &Path) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Sent;

    fn scenario(endpoints: usize, failing: bool) -> Scenario {
        let mut scenario = by_id("S1");
        scenario.endpoints = endpoints;
        scenario.failing = failing;
        scenario
    }

    fn by_id(id: &str) -> Scenario {
        catalogue(None, None, None, 1).into_iter().find(|scenario| scenario.id == id).unwrap()
    }

    #[test]
    fn every_scenario_writes_a_valid_config() {
        let (python, nats) = (Path::new("/plugins/python.wasm"), Path::new("/bin/nats-server"));
        let peer = Path::new("/peers/svix");
        for scenario in catalogue(Some(python), Some(nats), Some(peer), 3) {
            if scenario.peer {
                continue;
            }
            let url = scenario.nats.then_some("nats://127.0.0.1:4222");
            let text = config_text(&scenario, "http://127.0.0.1:9", Path::new("/plugins"), url);
            let topology = switchyard::config::parse(&text, Path::new("/run"), &Files)
                .unwrap_or_else(|errors| panic!("{}: {errors}\n{text}", scenario.id));
            let endpoints = scenario.endpoints + usize::from(scenario.failing);
            assert_eq!(topology.endpoints.len(), endpoints, "{}", scenario.id);
            assert_eq!(topology.routes.len(), usize::from(endpoints > 0), "{}", scenario.id);
        }
        let text = config_text(&scenario(2, true), "http://127.0.0.1:9", Path::new("/p"), None);
        assert!(text.contains("to = [\"e0\", \"e1\", \"failing\"]"), "{text}");
    }

    #[test]
    fn the_restart_row_reads_the_pending_count_from_the_log() {
        let line = "2026-12-02T01:00:00Z  INFO switchyard::app: loaded pending deliveries \
                    pending=100000";
        assert_eq!(pending_in_log_line(line), Some(100_000));
        assert_eq!(pending_in_log_line("listening address=127.0.0.1:1"), None);
        let restart = by_id("restart");
        let text = config_text(&restart, "http://127.0.0.1:9", Path::new("/p"), None);
        assert!(text.contains("retry = { schedule = [\"1h\"] }"), "{text}");
    }

    #[test]
    fn the_limiter_and_ordered_rows_configure_what_they_measure() {
        let sink = "http://127.0.0.1:9";
        let text = config_text(&by_id("S1-rate"), sink, Path::new("/p"), None);
        assert!(text.contains("rate_limit = { rate = \"1000000/s\" }"), "{text}");
        assert!(text.contains("\nrate = \"1000000/s\"\n"), "{text}");
        let text = config_text(&by_id("S1-ordered"), sink, Path::new("/p"), None);
        assert!(text.contains("ordered_by = { json = \"/data/customer\" }"), "{text}");
        let text = config_text(&by_id("S1-idle10k"), sink, Path::new("/p"), None);
        assert!(text.contains("admin_token = { value = "), "{text}");
        let text = config_text(&by_id("S1"), sink, Path::new("/p"), None);
        assert!(!text.contains("rate") && !text.contains("ordered_by") && !text.contains("admin"));
    }

    #[test]
    fn peer_rows_come_first_and_say_why_they_are_not_measured() {
        let rows = catalogue(None, None, None, 3);
        let ids: Vec<&str> = rows.iter().take(4).map(|scenario| scenario.id).collect();
        assert_eq!(ids, ["peer-S1", "peer-S1-half", "peer-S10", "S0"]);
        assert!(rows[0].not_yet.as_deref().is_some_and(|reason| reason.contains("--peer-svix")));
        assert_eq!(rows[1].pace, PaceRule::HalfOf("peer-S1"));
        let with_peer = catalogue(None, None, Some(Path::new("/peers/svix")), 3);
        assert!(with_peer.iter().all(|scenario| scenario.not_yet.is_none() || !scenario.peer));
        let repeated: Vec<&str> =
            with_peer.iter().filter(|s| s.repeats == 3).map(|s| s.id).collect();
        assert_eq!(repeated, ["S1", "S10"]);
    }

    #[test]
    fn figures_count_lost_and_duplicated_deliveries_per_endpoint() {
        let sent = |seq, status| Sent { seq, sent_us: 1_000_000 + seq * 10, latency_us: 5, status };
        let report = LoadReport {
            sent: vec![sent(0, 202), sent(1, 202), sent(2, 503), sent(3, 202)],
            window_start_us: 1_000_000,
            window_end_us: 2_000_000,
            late: 0,
            connection_failures: 0,
        };
        let arrival = |seq, path| Arrival {
            arrival_us: 1_000_500 + seq * 10,
            seq: Some(seq),
            sent_us: Some(1_000_000 + seq * 10),
            path,
        };
        // Endpoint 0 gets 0, 1, 1 (a duplicate) and 3; endpoint 1 misses 3; the failing
        // endpoint (index 2) gets two attempts.
        let arrivals = vec![
            arrival(0, 0),
            arrival(1, 0),
            arrival(1, 0),
            arrival(3, 0),
            arrival(0, 1),
            arrival(1, 1),
            arrival(0, 2),
            arrival(0, 2),
        ];
        let result = figures(&scenario(2, true), &report, &arrivals, 2);
        assert_eq!(result.accepted, 3);
        assert_eq!(result.refused.get(&503), Some(&1));
        assert_eq!(result.expected_deliveries, 6);
        assert_eq!(result.delivered, 6);
        assert_eq!(result.lost, 1);
        assert_eq!(result.duplicates, 1);
        assert_eq!(result.failing_attempts, Some(2));
        assert_eq!(result.e2e_us.p50, 500);
        assert_eq!(result.ingest_us.count, 3);
        assert!((result.intake_per_second - 3.0).abs() < 1e-9);
    }
}
