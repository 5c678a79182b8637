//! `switchyard plugin …`: the plugin author's tools (DESIGN §7.4).
//!
//! Owns `new` (a project from a template), `build` (drive the language's toolchain, then
//! check the component against the world), `run` (one event, with logs, wall time,
//! instructions and peak memory) and `test` (golden fixtures). Plugins run in the same
//! runtime as in the router, on the calling thread, with instruction counting on.

pub mod fixtures;
mod scaffold;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

pub use scaffold::{Kind, Language};

use crate::config::{Instances, OnError, Plugin, Secret, values};
use crate::plugin::{CallReport, PluginHost, RuntimeOptions};
use fixtures::{BindingFixture, EventFixture, VerdictFixture};

/// The binding file `plugin test` reads beside the fixtures.
pub const BINDING_FILE: &str = "plugin.toml";
/// The id under which the CLI loads the plugin it is given.
const PLUGIN_ID: &str = "plugin";
/// Calls from the CLI may take longer than in the router: nobody is waiting on a webhook.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MEMORY: u64 = 64 << 20;

/// What `plugin run` is given.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub wasm: PathBuf,
    pub event: PathBuf,
    /// A `plugin.toml` binding; `config` and `secrets` below add to it.
    pub binding: Option<PathBuf>,
    pub config: Vec<(String, String)>,
    pub secrets: Vec<(String, String)>,
    pub now_ms: Option<u64>,
}

/// Runs the plugin on one event and answers the report as JSON: the verdict in the fixture
/// format, logs, wall time, instructions and peak memory.
pub fn run(request: &RunRequest) -> anyhow::Result<Value> {
    let mut binding = match &request.binding {
        Some(path) => read_binding(path)?,
        None => BindingFixture::default(),
    };
    binding.config.extend(request.config.iter().cloned());
    binding.secrets.extend(request.secrets.iter().cloned());
    if request.now_ms.is_some() {
        binding.now_ms = request.now_ms;
    }
    let host = load(&request.wasm, &binding)?;
    let event: EventFixture = read_json(&request.event)?;
    let event = event
        .to_event()
        .map_err(|problem| anyhow::anyhow!("`{}`: {problem}", request.event.display()))?;
    let report = host.call_blocking(PLUGIN_ID, &event, binding.now_ms);
    Ok(report_json(&report))
}

fn report_json(report: &CallReport) -> Value {
    let mut value = match &report.answer {
        Ok(answer) => fixtures::answer_json(answer),
        Err(error) => json!({"error": error.to_string()}),
    };
    let object = value.as_object_mut().expect("answers are JSON objects");
    let logs: Vec<Value> = report
        .log
        .iter()
        .map(|line| json!({"level": line.level.as_str(), "message": line.message}))
        .collect();
    object.insert("logs".into(), json!(logs));
    if report.dropped_log_lines > 0 {
        object.insert("logs_dropped".into(), json!(report.dropped_log_lines));
    }
    object.insert("wall_time_us".into(), json!(report.elapsed.as_micros() as u64));
    object.insert("instructions".into(), json!(report.instructions));
    object.insert("peak_memory_bytes".into(), json!(report.peak_memory));
    value
}

/// The outcome of `plugin test`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestSummary {
    pub passed: usize,
    pub failed: usize,
}

/// Runs every `*.event.json` in `directory` and compares it with its `*.verdict.json`,
/// printing one line per pair and the differences of each mismatch.
pub fn test(wasm: &Path, directory: &Path) -> anyhow::Result<TestSummary> {
    let binding_path = directory.join(BINDING_FILE);
    let binding = if binding_path.is_file() {
        read_binding(&binding_path)?
    } else {
        BindingFixture::default()
    };
    let host = load(wasm, &binding)?;
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(directory)
        .with_context(|| format!("cannot read `{}`", directory.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".event.json")?.to_owned();
            Some((name, path))
        })
        .collect();
    cases.sort();
    if cases.is_empty() {
        bail!("no `*.event.json` fixtures in `{}`", directory.display());
    }
    let mut summary = TestSummary::default();
    for (name, event_path) in cases {
        let verdict_path = directory.join(format!("{name}.verdict.json"));
        let problems = check_case(&host, &binding, &event_path, &verdict_path);
        if problems.is_empty() {
            summary.passed += 1;
            println!("ok   {name}");
        } else {
            summary.failed += 1;
            println!("FAIL {name}");
            for problem in problems {
                println!("     {problem}");
            }
        }
    }
    println!("{} passed, {} failed", summary.passed, summary.failed);
    Ok(summary)
}

fn check_case(
    host: &PluginHost,
    binding: &BindingFixture,
    event_path: &Path,
    verdict_path: &Path,
) -> Vec<String> {
    let expected: VerdictFixture = match read_json(verdict_path) {
        Ok(expected) => expected,
        Err(error) => return vec![format!("{error:#}")],
    };
    let event = match read_json::<EventFixture>(event_path).and_then(|fixture| {
        fixture
            .to_event()
            .map_err(|problem| anyhow::anyhow!("`{}`: {problem}", event_path.display()))
    }) {
        Ok(event) => event,
        Err(error) => return vec![format!("{error:#}")],
    };
    let report = host.call_blocking(PLUGIN_ID, &event, binding.now_ms);
    match &report.answer {
        Ok(answer) => expected.differences(answer),
        Err(error) => vec![format!("the call failed: {error}")],
    }
}

/// Builds the plugin project in `directory` and answers the component's path, after checking
/// that it fits the world.
pub fn build(directory: &Path) -> anyhow::Result<PathBuf> {
    let language = Language::detect(directory)?;
    let wasm = match language {
        Language::Rust => build_rust(directory)?,
    };
    load(&wasm, &BindingFixture::default())
        .with_context(|| format!("`{}` was built but cannot run as a plugin", wasm.display()))?;
    Ok(wasm)
}

fn build_rust(directory: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(directory)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run `cargo`; is Rust installed?")?;
    if !output.status.success() {
        bail!(
            "`cargo build` failed ({}); if the target is missing: `rustup target add wasm32-wasip2`",
            output.status
        );
    }
    // The last cdylib artifact cargo reports is the plugin.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = stdout
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["crate_types"]
                    .as_array()
                    .is_some_and(|types| types.iter().any(|kind| kind == "cdylib"))
        })
        .filter_map(|message| {
            message["filenames"].as_array()?.iter().find_map(|file| {
                file.as_str().filter(|file| file.ends_with(".wasm")).map(PathBuf::from)
            })
        })
        .next();
    wasm.context("`cargo build` produced no `.wasm`; is the crate a `cdylib`?")
}

/// Creates the project `name` in the current directory and answers its path.
pub fn new(
    language: Language,
    kind: Kind,
    name: &str,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    scaffold::create(Path::new(name), language, kind, sdk)
}

/// Loads one plugin under `binding` for the CLI: no cache, no threads, instructions counted.
fn load(wasm: &Path, binding: &BindingFixture) -> anyhow::Result<PluginHost> {
    if !wasm.is_file() {
        bail!("no file at `{}`", wasm.display());
    }
    let timeout = binding
        .timeout
        .as_deref()
        .map(values::parse_duration)
        .transpose()
        .map_err(|problem| anyhow::anyhow!("`timeout`: {problem}"))?
        .unwrap_or(DEFAULT_TIMEOUT);
    let memory = binding
        .memory
        .as_deref()
        .map(values::parse_size)
        .transpose()
        .map_err(|problem| anyhow::anyhow!("`memory`: {problem}"))?
        .unwrap_or(DEFAULT_MEMORY);
    let secrets: BTreeMap<String, Secret> = binding
        .secrets
        .iter()
        .map(|(name, value)| (name.clone(), Secret::new(value.as_bytes().to_vec())))
        .collect();
    let plugin = Plugin {
        id: PLUGIN_ID.into(),
        path: wasm.to_path_buf(),
        secrets: secrets.keys().cloned().collect(),
        config: binding.config.clone(),
        timeout,
        memory,
        instances: Instances::Fresh,
        on_error: OnError::FailClosed,
    };
    let options =
        RuntimeOptions { cache_dir: None, threads: 0, count_instructions: true, emit_logs: false };
    Ok(PluginHost::load(&[plugin], &secrets, &options)?)
}

fn read_binding(path: &Path) -> anyhow::Result<BindingFixture> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    toml::from_str(&text).with_context(|| format!("`{}` is not a valid binding", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not a valid fixture", path.display()))
}
