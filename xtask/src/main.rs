//! `cargo xtask <task>`: the one entry point for developer and CI tasks.
//!
//! Owns the order of build steps (the router binary before the end-to-end tests that start
//! it, tools before the tests that need them). Each task is a short list of commands; no
//! task hides logic that a developer could not run by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod deploy;
mod dist;

const USAGE: &str = "usage: cargo xtask <task> [args]

tasks:
  setup        install what the tests need (rust targets, test tools)
  plugins      build the first-party plugins (plugins/, wasm32-wasip2)
  test [ARGS]  build the router and the plugins, run every test (ARGS go to the router
               workspace's `cargo test`), then fuzz every target for 2 minutes in all
  fuzz [--time 2m] [--target NAME] [--seed N]
               run the fuzz targets (fuzz/) for a total of --time, shared evenly; a
               panic fails it, its input left in fuzz/crashes/
  lint         formatting and clippy, warnings denied, in every workspace; the alert
               rules and the systemd unit in deploy/ (promtool, systemd-analyze)
  ci           `lint`, then `test`
  demo         build the plugins, then run the router on examples/quickstart
  dist         build the router to ship (`dist` profile: LTO, stripped) into target/dist/,
               with shell completions and the man page
  bench [--quick] [ARGS]
               build the plugins, the release router and the benchmarks' Python and
               JavaScript transforms, run the benchmark scenarios (bench/); without --quick
               or --only the results replace bench/README.md's table and bench/scaling.svg;
               the peer's rows run when ../shared/peers/svix (or --peer-svix DIR) is there;
               --quick compares router CPU per event of S0/S1/S10 with bench/baseline.json
               (regressions past 15 % are flagged, not failed); --save-baseline rewrites it";

/// The guest workspaces: built for wasm32-wasip2, outside the router's workspace.
const PLUGINS_MANIFEST: &str = "plugins/Cargo.toml";
const SDK_MANIFEST: &str = "sdk/rust/Cargo.toml";

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let task = arguments.next().unwrap_or_default();
    let rest: Vec<String> = arguments.collect();
    std::env::set_current_dir(workspace_root()).context("cannot enter the workspace root")?;
    match task.as_str() {
        "setup" => setup(),
        "plugins" => plugins(),
        "test" => test(&rest),
        "fuzz" => fuzz(&rest),
        "lint" => lint(),
        "ci" => lint().and_then(|()| test(&[])),
        "demo" => demo(),
        "dist" => dist::dist(),
        "bench" => bench(&rest),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").into()
}

/// Where cargo builds: `$CARGO_TARGET_DIR`, or `target/` of the workspace root (the current
/// directory once `main` has entered it).
fn target_directory() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {command:?}");
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// The venv holding test tools from PyPI (see `tests/requirements.txt`).
const TOOLS_VENV: &str = ".tools/venv";

fn setup() -> anyhow::Result<()> {
    wasm_target()?;
    let python = Path::new(TOOLS_VENV).join("bin").join("python");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv", TOOLS_VENV]))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        "tests/requirements.txt",
    ]))?;
    // The JavaScript SDK's toolchain (componentize-js, rolldown, tsc) and the tests' npm
    // signers, pinned by its package-lock.json; `npm ci` starts from scratch, so only when
    // the lock file is newer than the last install.
    let js = Path::new(JS_SDK);
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let installed = modified(js.join("node_modules").join(".package-lock.json"));
    if installed.is_none() || installed < modified(js.join("package-lock.json")) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix", JS_SDK]))?;
    }
    c_toolchain();
    browser()?;
    deploy::install_tools();
    Ok(())
}

/// The headless browser of the dashboard's tests (`tests/tests/ui.rs`): Debian's Chromium,
/// driven by Playwright from the venv (its own browser download needs the network).
fn browser() -> anyhow::Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args([
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "chromium",
    ]))
}

/// The optional C plugin toolchain (sdk/c/README.md): installed from Debian in CI (about a
/// minute), left to the developer elsewhere; without it the C plugin tests are skipped.
fn c_toolchain() {
    let present = |tool: &str| Command::new(tool).arg("--version").output().is_ok();
    if present("clang-19") {
        return;
    }
    if std::env::var_os("CI").is_none() {
        eprintln!("xtask: no clang-19: the C plugin tests will be skipped (see sdk/c/README.md)");
        return;
    }
    let packages = ["clang-19", "lld-19", "wasi-libc", "libclang-rt-19-dev-wasm32"];
    let installed = run(Command::new("apt-get").args(["update", "-qq"]))
        .and_then(|()| run(Command::new("apt-get").args(["install", "-y", "-qq"]).args(packages)));
    if let Err(error) = installed {
        eprintln!("xtask: cannot install the C toolchain ({error:#}); the C tests will be skipped");
    }
}

/// The JavaScript SDK: `npm ci` installs its dependencies into `sdk/js/node_modules`.
const JS_SDK: &str = "sdk/js";

/// `rustup` does not add targets to a toolchain that is already installed, so a fresh machine
/// whose toolchain came without `wasm32-wasip2` cannot build a plugin: every task that builds
/// one adds it first (a no-op, and offline, when it is there).
fn wasm_target() -> anyhow::Result<()> {
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))
}

fn plugins() -> anyhow::Result<()> {
    wasm_target()?;
    run(cargo()
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(PLUGINS_MANIFEST))
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    setup()?;
    // The end-to-end tests start the real binaries (the router, the examples' services) and
    // load the real plugins: build them all.
    plugins()?;
    build_workspace()?;
    run(cargo().args(["test", "--manifest-path", SDK_MANIFEST, "--workspace"]))?;
    run(cargo().args(["test", "--workspace"]).args(extra))?;
    // A bounded pass over every fuzz target, about two minutes; a filtered run skips it.
    if extra.is_empty() { fuzz_built(&[]) } else { Ok(()) }
}

/// Builds the workspace's binaries and tests (dev profile) in one invocation, so that cargo
/// resolves one set of features for all of them. Built apart (`build --bins`, or `run` of one
/// package), the binaries would leave out features that the tests' dev-dependencies turn on,
/// and the whole graph, wasmtime with it, would be compiled twice: twice the time and the disk.
fn build_workspace() -> anyhow::Result<()> {
    run(cargo().args(["build", "--workspace", "--bins", "--tests"]))
}

/// Fuzzing runs the dev build the tests use; `--time` is the total.
fn fuzz(extra: &[String]) -> anyhow::Result<()> {
    build_workspace()?;
    fuzz_built(extra)
}

/// Runs the fuzz binary that [`build_workspace`] made.
fn fuzz_built(extra: &[String]) -> anyhow::Result<()> {
    run(Command::new(target_directory().join("debug/switchyard-fuzz")).args(extra))
}

fn lint() -> anyhow::Result<()> {
    // Seconds, where clippy takes minutes: first.
    deploy::check()?;
    for manifest in ["Cargo.toml", SDK_MANIFEST, PLUGINS_MANIFEST] {
        run(cargo().args(["fmt", "--all", "--manifest-path", manifest, "--", "--check"]))?;
    }
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--manifest-path",
        SDK_MANIFEST,
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args([
            "clippy",
            "--workspace",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
            PLUGINS_MANIFEST,
        ])
        .args(["--", "-D", "warnings"]))
}

fn demo() -> anyhow::Result<()> {
    plugins()?;
    // The quickstart config sets this admin token (inline: local development only).
    eprintln!(
        "xtask: dashboard at http://127.0.0.1:8080/ui/ once the router listens; \
         sign in with the token `quickstart-admin`"
    );
    run(cargo()
        .args(["run", "--package", "switchyard", "--", "run", "-c"])
        .arg(Path::new("examples").join("quickstart").join("switchyard.toml")))
}

/// Benchmarks measure the release build. Only a full run of every row replaces the README's
/// figures; `--quick` is a sanity pass and `--only` a partial one.
fn bench(extra: &[String]) -> anyhow::Result<()> {
    plugins()?;
    run(cargo().args(["build", "--release", "--package", "switchyard", "--bins"]))?;
    let tools = [
        ("python", Path::new(TOOLS_VENV).to_path_buf()),
        ("js", Path::new(JS_SDK).join("node_modules")),
    ];
    for (project, tool) in &tools {
        if let Err(error) = bench_transform(project, tool) {
            eprintln!("xtask: {error:#}; its rows are reported as not measured");
        }
    }
    let mut command = cargo();
    command.args(["run", "--release", "--package", "switchyard-bench", "--", "run"]);
    // A busy-machine run (`--neighbour`) is not the table's quiet one either.
    let partial = ["--quick", "--readme", "--only", "--neighbour"];
    if !extra.iter().any(|argument| partial.iter().any(|flag| argument.starts_with(flag))) {
        command.arg("--readme").arg(Path::new("bench").join("README.md"));
    }
    run(command.args(extra))
}

/// Builds `bench/plugins/<project>` (the `redact` job in Python or JavaScript) with the release
/// router's `plugin build`, unless its component is newer than the project's files (a change in
/// the SDK alone does not rebuild it: delete `build/`). The tool it needs (`tool`: the test
/// tools' venv with componentize-py, or the JavaScript SDK's dependencies) comes from `setup`.
fn bench_transform(project: &str, tool: &Path) -> anyhow::Result<()> {
    let directory = Path::new("bench").join("plugins").join(project);
    if !tool.exists() {
        bail!("`{}` needs `{}`: run `cargo xtask setup`", directory.display(), tool.display());
    }
    let modified = |path: &Path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let built = modified(&directory.join("build").join("bench_redact.wasm"));
    let mut sources = vec![directory.clone()];
    let mut newest = None;
    while let Some(path) = sources.pop() {
        let generated = ["build", "node_modules", "__pycache__"];
        if generated.iter().any(|name| path.ends_with(name)) {
            continue;
        }
        if path.is_dir() {
            sources.extend(
                std::fs::read_dir(&path)?
                    .map(|entry| entry.map(|entry| entry.path()))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        } else {
            newest = newest.max(modified(&path));
        }
    }
    if built.is_some() && built > newest {
        return Ok(());
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let router = std::path::absolute(target.join("release").join("switchyard"))?;
    let venv = std::path::absolute(Path::new(TOOLS_VENV).join("bin"))?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(venv).chain(std::env::split_paths(&path)))?;
    run(Command::new(router).args(["plugin", "build"]).arg(&directory).env("PATH", path).env(
        "SWITCHYARD_PLUGIN_CACHE",
        std::path::absolute(target.join("bench").join("plugin-cache"))?,
    ))
}
