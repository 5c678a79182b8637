//! `cargo xtask <task>`: the one entry point for developer and CI tasks.
//!
//! Owns the order of build steps (the router binary before the end-to-end tests that start
//! it, tools before the tests that need them). Each task is a short list of commands; no
//! task hides logic that a developer could not run by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task> [args]

tasks:
  setup        install what the tests need (rust targets, test tools)
  test [ARGS]  build the router, then run every test (ARGS go to `cargo test`)
  ci           formatting, clippy with warnings denied, then `test`
  demo         run the router on examples/quickstart";

fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let task = arguments.next().unwrap_or_default();
    let rest: Vec<String> = arguments.collect();
    std::env::set_current_dir(workspace_root()).context("cannot enter the workspace root")?;
    match task.as_str() {
        "setup" => setup(),
        "test" => test(&rest),
        "ci" => ci(),
        "demo" => demo(),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").into()
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
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
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
    ]))
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    setup()?;
    // The end-to-end tests start the real binary; make sure it is the current one.
    run(cargo().args(["build", "--package", "switchyard", "--bins"]))?;
    run(cargo().args(["test", "--workspace"]).args(extra))
}

fn ci() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    test(&[])
}

fn demo() -> anyhow::Result<()> {
    run(cargo()
        .args(["run", "--package", "switchyard", "--", "run", "-c"])
        .arg(Path::new("examples").join("quickstart").join("switchyard.toml")))
}
