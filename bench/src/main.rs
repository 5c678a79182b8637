//! `switchyard-bench`: run the scenarios, or use the load generator, the sink or the plugin
//! stage measure on their own (e.g. against another gateway).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use switchyard_bench::baseline::{self, Baseline};
use switchyard_bench::body::{Template, default_body_template};
use switchyard_bench::load::{self, LoadSpec, Pace, Target};
use switchyard_bench::neighbour::Neighbour;
use switchyard_bench::peer::{Peer, PeerInfo};
use switchyard_bench::plugin_stage::LanguageTransform;
use switchyard_bench::report::{self, Machine, RunSummary};
use switchyard_bench::scenario::{self, PaceRule, RunFigures, RunOptions, ScenarioResult};
use switchyard_bench::signature::WebhookKey;
use switchyard_bench::sink::{Reply, Sink, SinkSpec};
use switchyard_bench::stats::Summary;
use switchyard_bench::{cluster, conditions, parse_duration, peer, plot, plugin_stage};

#[derive(Debug, Parser)]
#[command(name = "switchyard-bench", about = "Benchmarks for Switchyard (DESIGN §11)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenarios against the release binary and report.
    Run(RunArgs),
    /// Send load to any URL and print what the answers took.
    Load(LoadArgs),
    /// Receive deliveries, print rates and end-to-end latency each interval.
    Sink(SinkArgs),
    /// Measure one call of the first-party Rust plugins and the benchmarks' Python and
    /// JavaScript transforms, fresh and warm.
    PluginStage {
        #[arg(long)]
        plugins: Option<PathBuf>,
        #[arg(long, default_value_t = 20_000)]
        calls: usize,
        /// Only this plugin (`pass`, `verify-github`, `redact`, `pass-python`, `redact-python`,
        /// `pass-javascript` or `redact-javascript`).
        #[arg(long)]
        only: Option<String>,
        #[command(flatten)]
        languages: LanguageArgs,
    },
}

/// The benchmarks' transforms in other languages (`bench/plugins`, built with
/// `switchyard plugin build`); each is skipped when it is not built.
#[derive(Debug, clap::Args)]
struct LanguageArgs {
    /// The Python transform component (default: `bench/plugins/python`'s build, if built).
    #[arg(long)]
    python_transform: Option<PathBuf>,
    /// The JavaScript transform component (default: `bench/plugins/js`'s build, if built).
    #[arg(long)]
    js_transform: Option<PathBuf>,
    /// Where compiled plugins are kept between runs (default: `target/bench/plugin-cache`).
    #[arg(long)]
    plugin_cache: Option<PathBuf>,
}

impl LanguageArgs {
    /// The Python transform: the one given, else the default build if it exists.
    fn python(&self) -> Option<PathBuf> {
        given_or_built(self.python_transform.as_ref(), "python")
    }

    fn transforms(&self) -> Vec<LanguageTransform> {
        let mut transforms = Vec::new();
        if let Some(path) = self.python() {
            transforms.push(LanguageTransform { language: "Python", path });
        }
        if let Some(path) = given_or_built(self.js_transform.as_ref(), "js") {
            transforms.push(LanguageTransform { language: "JavaScript", path });
        }
        transforms
    }

    fn plugin_cache(&self) -> PathBuf {
        self.plugin_cache.clone().unwrap_or_else(|| target_dir().join("bench").join("plugin-cache"))
    }
}

/// `given`, else `bench/plugins/<directory>/build/bench_redact.wasm` when it was built.
fn given_or_built(given: Option<&PathBuf>, directory: &str) -> Option<PathBuf> {
    given.cloned().or_else(|| {
        let built = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plugins")
            .join(directory)
            .join("build")
            .join("bench_redact.wasm");
        built.is_file().then_some(built)
    })
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// A short sanity pass (about a minute and a half).
    #[arg(long)]
    quick: bool,
    /// Only these rows, comma-separated (e.g. `S0,S1,S1-half`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The router binary (default: the workspace's release build).
    #[arg(long)]
    switchyard: Option<PathBuf>,
    /// Directory of the first-party plugins' `.wasm` files.
    #[arg(long)]
    plugins: Option<PathBuf>,
    #[command(flatten)]
    languages: LanguageArgs,
    /// Where JSON and markdown results go (default: `target/bench/<date>-<time>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the results section of this README (e.g. `bench/README.md`).
    #[arg(long)]
    readme: Option<PathBuf>,
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Pace every row at this many events per second instead (for comparing CPU per event
    /// between builds at the same load).
    #[arg(long)]
    rate: Option<f64>,
    /// The sink checks the signature of one delivery in this many.
    #[arg(long, default_value_t = 16)]
    verify_every: u64,
    /// Run the router under this command, e.g. `valgrind --tool=callgrind` (split on spaces;
    /// its CPU and RSS figures are then the profiler's).
    #[arg(long)]
    router_prefix: Option<String>,
    /// The `nats-server` binary for the NATS row (default: the test tools' venv, where
    /// `cargo xtask setup` installs it).
    #[arg(long)]
    nats_server: Option<PathBuf>,
    /// Skip the in-process plugin stage measure.
    #[arg(long)]
    no_plugin_stage: bool,
    /// The peer gateway: a directory with the Svix server and its `run.sh` (default:
    /// `../shared/peers/svix` from the workspace root, when present). Without it the peer rows
    /// say "not measured"; a quick run measures them only when this is given.
    #[arg(long)]
    peer_svix: Option<PathBuf>,
    /// Runs of S1 and S10 each; the run with the median rate is reported (default: 3 in a
    /// full run, 1 in a quick one).
    #[arg(long)]
    repeat: Option<usize>,
    /// Write S0/S1/S10's router CPU per event to the baseline file (the guard's reference).
    #[arg(long)]
    save_baseline: bool,
    /// The guard's baseline file (default: `bench/baseline.json`).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// A busy machine: every row, the peer's too, runs beside a neighbour spinning this many
    /// cores (the table says so).
    #[arg(long, default_value_t = 0)]
    neighbour: usize,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Requests per second in all; closed loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    warmup: Duration,
    /// Body template file (`{{seq}}`, `{{sent_us}}`); default: about 1 KiB of JSON.
    #[arg(long)]
    body_file: Option<PathBuf>,
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// `name: value` (templates allowed), repeatable.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Sign each body as GitHub does with this secret.
    #[arg(long)]
    github_secret: Option<String>,
    /// Closed loop: stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Check `webhook-signature` with this `whsec_…` key.
    #[arg(long)]
    secret: Option<String>,
    #[arg(long, default_value_t = 1)]
    verify_every: u64,
    /// `PATH=STATUS` or `PATH=STATUS@DELAY` (e.g. `/slow=200@50ms`), repeatable.
    #[arg(long = "reply")]
    replies: Vec<String>,
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    report_every: Duration,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Load(args) => runtime().and_then(|runtime| runtime.block_on(load_command(args))),
        Command::Sink(args) => runtime().and_then(|runtime| runtime.block_on(sink_command(args))),
        Command::PluginStage { plugins, calls, only, languages } => {
            let plugins = plugins.unwrap_or_else(default_plugins_dir);
            let cache = languages.plugin_cache();
            plugin_stage::run(&plugins, calls, only.as_deref(), &languages.transforms(), &cache)
                .and_then(|results| {
                    println!("{}", serde_json::to_string_pretty(&results)?);
                    Ok(())
                })
        }
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// The harness's runtime: two workers, as many as the machine the figures are for has cores.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is in the workspace").into()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn default_nats_server() -> Option<PathBuf> {
    let venv = workspace_root().join(".tools").join("venv").join("bin").join("nats-server");
    venv.is_file().then_some(venv)
}

/// The peer beside the workspace, when it is there.
fn default_peer() -> Option<PathBuf> {
    let peer = workspace_root().join("..").join("shared").join("peers").join("svix");
    peer.join("run.sh").is_file().then_some(peer)
}

fn default_plugins_dir() -> PathBuf {
    workspace_root().join("plugins/target/wasm32-wasip2/release")
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let binary = args.switchyard.unwrap_or_else(|| target_dir().join("release/switchyard"));
    if !binary.is_file() {
        bail!(
            "`{}` is missing: build it with `cargo build --release -p switchyard`",
            binary.display()
        );
    }
    let (warmup, duration, drain_limit, plugin_calls) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(15), 2_000)
    } else {
        (Duration::from_secs(3), Duration::from_secs(15), Duration::from_secs(60), 20_000)
    };
    let options = RunOptions {
        binary,
        plugins_dir: args.plugins.unwrap_or_else(default_plugins_dir),
        connections: args.connections,
        paced_connections: 64,
        warmup: args.warmup.unwrap_or(warmup),
        duration: args.duration.unwrap_or(duration),
        drain_limit,
        verify_every: args.verify_every,
        work_dir: std::env::temp_dir().join("switchyard-bench"),
        router_prefix: args
            .router_prefix
            .as_deref()
            .map(|prefix| prefix.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        plugin_cache: args.languages.plugin_cache(),
        nats_server: args.nats_server.clone().or_else(default_nats_server),
        neighbour_cores: args.neighbour,
    };
    let out = args.out.unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        target_dir().join("bench").join(format!("{}-{}", report::today(), stamp % 86_400))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create `{}`", out.display()))?;
    let runtime = runtime()?;
    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut intake: HashMap<&str, f64> = HashMap::new();
    let python = args.languages.python();
    let explicit_peer = args.peer_svix.is_some();
    let peer_dir = args.peer_svix.clone().or_else(default_peer);
    let repeats = args.repeat.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let catalogue = scenario::catalogue(
        python.as_deref(),
        options.nats_server.as_deref(),
        peer_dir.as_deref(),
        repeats,
    );
    let mut peer: Option<Peer> = None;
    let mut peer_failed: Option<String> = None;
    let mut peer_info: Option<PeerInfo> = None;
    for scenario in catalogue {
        if !args.only.is_empty() && !args.only.iter().any(|id| id == scenario.id) {
            continue;
        }
        if args.quick && args.only.is_empty() && scenario.heavy && !(scenario.peer && explicit_peer)
        {
            continue;
        }
        if !scenario.peer
            && let Some(mut running) = peer.take()
        {
            eprintln!("bench: stopping the peer…");
            let stopped = running.stop()?;
            if let Some(info) = &mut peer_info {
                info.stop_seconds = stopped.as_secs_f64();
            }
        }
        let rate = match scenario.pace {
            _ if args.rate.is_some() => Ok(args.rate),
            PaceRule::Saturate => Ok(None),
            PaceRule::Fixed(rate) => Ok(Some(rate)),
            PaceRule::HalfOf(other) => intake
                .get(other)
                .map(|rate| Some(rate / 2.0))
                .ok_or_else(|| format!("not measured: needs `{other}` in the same run")),
        };
        let result = match (&scenario.not_yet, rate) {
            (Some(reason), _) => ScenarioResult::not_measured(&scenario, reason.clone()),
            (None, Err(reason)) => ScenarioResult::not_measured(&scenario, reason),
            (None, Ok(_)) if scenario.peer && peer_failed.is_some() => {
                ScenarioResult::not_measured(&scenario, peer_failed.clone().unwrap_or_default())
            }
            (None, Ok(rate)) => {
                if scenario.peer && peer.is_none() {
                    eprintln!("bench: starting the peer (Svix, Postgres, Redis)…");
                    let started = std::time::Instant::now();
                    let installation = peer_dir.clone().unwrap_or_default();
                    match Peer::start(&installation, &target_dir().join("bench").join("peer")) {
                        Ok(started_peer) => {
                            peer_info = Some(PeerInfo {
                                version: started_peer.version.clone(),
                                start_seconds: started.elapsed().as_secs_f64(),
                                stop_seconds: 0.0,
                            });
                            peer = Some(started_peer);
                        }
                        Err(error) => {
                            eprintln!("bench: the peer did not start: {error:#}");
                            peer_failed =
                                Some(format!("not measured: the peer did not start ({error})"));
                        }
                    }
                }
                match (&peer, scenario.peer) {
                    (None, true) => ScenarioResult::not_measured(
                        &scenario,
                        peer_failed.clone().unwrap_or_default(),
                    ),
                    _ => measure(&runtime, &scenario, &options, rate, peer.as_ref())?,
                }
            }
        };
        if result.not_measured.is_none() {
            intake.insert(scenario.id, result.intake_per_second);
        }
        let json = serde_json::to_string_pretty(&result)?;
        std::fs::write(out.join(format!("{}.json", result.id)), json)?;
        results.push(result);
    }
    if let Some(mut running) = peer.take() {
        eprintln!("bench: stopping the peer…");
        let stopped = running.stop()?;
        if let Some(info) = &mut peer_info {
            info.stop_seconds = stopped.as_secs_f64();
        }
    }
    let clustered = cluster_rows(&args.only, args.quick, &options, &runtime, &out)?;
    results.extend(clustered.iter().map(|result| result.common.clone()));
    let plugin_stage = if args.no_plugin_stage {
        Vec::new()
    } else {
        eprintln!("bench: plugin stage ({plugin_calls} calls per plugin and mode)…");
        let languages = args.languages.transforms();
        plugin_stage::run(
            &options.plugins_dir,
            plugin_calls,
            None,
            &languages,
            &options.plugin_cache,
        )?
    };
    let summary = RunSummary {
        date: report::today(),
        quick: args.quick,
        machine: Machine::describe(),
        warmup_seconds: options.warmup.as_secs_f64(),
        window_seconds: options.duration.as_secs_f64(),
        connections: options.connections,
        neighbour_cores: options.neighbour_cores,
        peer: peer_info,
        scenarios: results,
        plugin_stage,
    };
    let mut markdown = report::markdown(&summary);
    if !clustered.is_empty() {
        markdown.push_str(&format!("\n### Cluster rows\n\n{}", cluster::markdown(&clustered)));
    }
    if plot::has_curve(&summary.scenarios) {
        let mut caption = report::scaling_caption(&summary);
        if !options.binary.ends_with(Path::new("release").join("switchyard")) {
            caption.push_str(" Router: not the release build; read the shapes, not the values.");
        }
        let svg = plot::scaling_svg(&summary.scenarios, &caption);
        std::fs::write(out.join("scaling.svg"), &svg)?;
        if let Some(readme) = &args.readme {
            let beside = readme.parent().unwrap_or(Path::new(".")).join("scaling.svg");
            std::fs::write(&beside, &svg)
                .with_context(|| format!("cannot write `{}`", beside.display()))?;
        }
    }
    let baseline_path = args
        .baseline
        .clone()
        .unwrap_or_else(|| workspace_root().join("bench").join("baseline.json"));
    if args.save_baseline {
        let measured = format!(
            "{} {} run of `cargo xtask bench --quick --save-baseline` on {} cores ({}), Linux {}",
            summary.date,
            if summary.quick { "quick" } else { "full" },
            summary.machine.cores,
            summary.machine.cpu,
            summary.machine.kernel,
        );
        let baseline = Baseline::of(&summary.scenarios, measured)
            .context("the baseline needs S0, S1 and S10 measured in this run")?;
        baseline.save(&baseline_path)?;
        eprintln!("bench: baseline written to {}", baseline_path.display());
    } else if !baseline_path.is_file() {
        eprintln!(
            "bench: no baseline at {}: `cargo xtask bench --quick --save-baseline` writes one",
            baseline_path.display()
        );
    } else {
        let baseline = Baseline::load(&baseline_path)?;
        let comparisons = baseline::compare(&baseline, &summary.scenarios);
        if comparisons.iter().any(|row| row.measured.is_some()) {
            eprint!("{}", baseline::render(&baseline, &comparisons));
        }
    }
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(out.join("summary.md"), &markdown)?;
    if let Some(readme) = args.readme {
        report::update_readme(&readme, &markdown)?;
    }
    println!("{markdown}");
    eprintln!("bench: results in {}", out.display());
    Ok(())
}

/// Runs one row (`scenario.repeats` times, keeping the run with the median rate), with the
/// machine's state probed before each run and judged after it.
fn measure(
    runtime: &tokio::runtime::Runtime,
    scenario: &scenario::Scenario,
    options: &RunOptions,
    rate: Option<f64>,
    peer: Option<&Peer>,
) -> anyhow::Result<ScenarioResult> {
    let mut runs = Vec::new();
    for attempt in 0..scenario.repeats {
        let repeat = if scenario.repeats > 1 {
            format!(", run {} of {}", attempt + 1, scenario.repeats)
        } else {
            String::new()
        };
        eprintln!("bench: {} ({}{repeat})…", scenario.id, scenario.title);
        // The previous row's writes are flushed now, not in this row's window.
        let _ = std::process::Command::new("sync").status();
        std::fs::create_dir_all(&options.work_dir)?;
        let mut conditions = conditions::probe(&options.work_dir);
        let neighbour = Neighbour::start(options.neighbour_cores)?;
        let mut result = match (scenario.peer, peer) {
            (true, Some(peer)) => runtime.block_on(peer::run(scenario, options, rate, peer)),
            _ => runtime.block_on(scenario::run(scenario, options, rate)),
        }
        .with_context(|| format!("scenario `{}`", scenario.id))?;
        drop(neighbour);
        conditions::judge(&mut conditions, result.other_cpu_cores);
        result.conditions = conditions;
        eprintln!(
            "bench: {}: {:.0} ev/s in, {:.0} deliveries/s, e2e p50 {} µs p99 {} µs, ingest p99 \
             {} µs, CPU {:.0} µs/event, lost {}, dup {}{}",
            result.id,
            result.intake_per_second,
            result.deliveries_per_second,
            result.e2e_us.p50,
            result.e2e_us.p99,
            result.ingest_us.p99,
            result.router_cpu_us_per_event,
            result.lost,
            result.duplicates,
            if result.conditions.quiet() {
                String::new()
            } else {
                format!(" ({})", result.conditions.warnings.join("; "))
            }
        );
        runs.push(result);
    }
    let rates: Vec<f64> = runs.iter().map(report::rate_of).collect();
    let median = conditions::median_index(&rates).context("a row runs at least once")?;
    let spread = runs
        .iter()
        .map(|run| RunFigures {
            rate: report::rate_of(run),
            router_cpu_us_per_event: run.router_cpu_us_per_event,
            bodies_read_back: run.bodies_read_back,
        })
        .collect();
    let mut result = runs.swap_remove(median);
    if scenario.repeats > 1 {
        result.runs = spread;
    }
    Ok(result)
}

async fn load_command(args: LoadArgs) -> anyhow::Result<()> {
    let body = match &args.body_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?,
        None => default_body_template(),
    };
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("`{header}`: expected `name: value`"))?;
        headers.push((name.trim().try_into()?, Template::parse(value.trim())));
    }
    let spec = LoadSpec {
        target: Target::resolve(&args.url).await?,
        connections: args.connections,
        pace: args.rate.map_or(Pace::Closed, Pace::Rate),
        warmup: args.warmup,
        duration: args.duration,
        body: Template::parse(&body),
        content_type: args.content_type,
        headers,
        github_secret: args.github_secret.map(String::into_bytes),
        limit: args.requests,
    };
    let report = load::run(spec).await?;
    let mut statuses = std::collections::BTreeMap::new();
    let mut latencies = Vec::new();
    for sent in report.measured() {
        *statuses.entry(sent.status).or_insert(0usize) += 1;
        latencies.push(sent.latency_us);
    }
    let summary = serde_json::json!({
        "window_seconds": report.window_seconds(),
        "requests_per_second": latencies.len() as f64 / report.window_seconds().max(f64::EPSILON),
        "statuses": statuses,
        "latency_us": Summary::of(&mut latencies),
        "late_sends": report.late,
        "connection_failures": report.connection_failures,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary:#}");
    }
    Ok(())
}

async fn sink_command(args: SinkArgs) -> anyhow::Result<()> {
    let mut paths = Vec::new();
    for rule in &args.replies {
        let (path, reply) = rule
            .split_once('=')
            .with_context(|| format!("`{rule}`: expected `PATH=STATUS[@DELAY]`"))?;
        let (status, delay) = match reply.split_once('@') {
            Some((status, delay)) => (status, parse_duration(delay).map_err(anyhow::Error::msg)?),
            None => (reply, Duration::ZERO),
        };
        let status = status.parse().with_context(|| format!("`{status}` is not a status"))?;
        paths.push((path.to_owned(), Reply { status, delay }));
    }
    let key = args.secret.as_deref().map(WebhookKey::parse).transpose()?;
    let names: Vec<String> =
        paths.iter().map(|(path, _)| path.clone()).chain(["other".into()]).collect();
    let sink =
        Sink::start(args.listen, SinkSpec { paths, key, verify_every: args.verify_every }).await?;
    eprintln!("sink: listening on {} (Ctrl-C stops)", sink.address());
    let mut interval = tokio::time::interval(args.report_every);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let arrivals = sink.take();
        if arrivals.is_empty() {
            continue;
        }
        let mut e2e: Vec<u64> = arrivals
            .iter()
            .filter_map(|arrival| Some(arrival.arrival_us.saturating_sub(arrival.sent_us?)))
            .collect();
        let mut per_path = vec![0usize; names.len()];
        for arrival in &arrivals {
            per_path[arrival.path.min(names.len() - 1)] += 1;
        }
        let e2e = Summary::of(&mut e2e);
        let counts: Vec<String> = names
            .iter()
            .zip(&per_path)
            .filter(|(_, count)| **count > 0)
            .map(|(name, count)| format!("{name}={count}"))
            .collect();
        println!(
            "{:.0} req/s [{}] e2e p50 {} µs p99 {} µs max {} µs; signatures failed {}",
            arrivals.len() as f64 / args.report_every.as_secs_f64(),
            counts.join(" "),
            e2e.p50,
            e2e.p99,
            e2e.max,
            sink.counters().signatures_failed.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
    Ok(())
}

/// The cluster rows `only` names (all when it is empty, none in a quick run that names none:
/// each starts three servers and takes about a minute), each written to `<id>.json`.
fn cluster_rows(
    only: &[String],
    quick: bool,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    out: &Path,
) -> anyhow::Result<Vec<cluster::ClusterResult>> {
    let mut results = Vec::new();
    for row in cluster::rows()
        .into_iter()
        .filter(|row| if only.is_empty() { !quick } else { only.iter().any(|id| id == row.id) })
    {
        let result = match cluster::server_binary(options.nats_server.as_deref()) {
            Err(reason) => cluster::not_measured(&row, reason),
            Ok(binary) => {
                eprintln!("bench: {} ({})…", row.id, row.title);
                let result = runtime
                    .block_on(cluster::run(&row, options, &binary))
                    .with_context(|| format!("row `{}`", row.id))?;
                eprintln!(
                    "bench: {}",
                    cluster::markdown(std::slice::from_ref(&result)).lines().last().unwrap_or("")
                );
                result
            }
        };
        std::fs::write(
            out.join(format!("{}.json", row.id)),
            serde_json::to_string_pretty(&result)?,
        )?;
        results.push(result);
    }
    Ok(results)
}
