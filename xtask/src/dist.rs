//! `cargo xtask dist`: the router built with the `dist` profile, with its shell completions
//! and man page beside it, ready to package.
//!
//! Owns the layout of `target/dist/`; it never installs anything.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::{cargo, run};

const SHELLS: [(&str, &str); 3] =
    [("bash", "switchyard.bash"), ("zsh", "_switchyard"), ("fish", "switchyard.fish")];

/// Builds `target/dist/switchyard` and writes `completions/` and `switchyard.1` beside it.
pub fn dist() -> anyhow::Result<()> {
    run(cargo().args([
        "build",
        "--profile",
        "dist",
        "--package",
        "switchyard",
        "--bin",
        "switchyard",
    ]))?;
    let directory = crate::target_directory().join("dist");
    let binary = directory.join("switchyard");
    let completions = directory.join("completions");
    std::fs::create_dir_all(&completions)?;
    for (shell, file) in SHELLS {
        write_output(&binary, &["completions", shell], &completions.join(file))?;
    }
    write_output(&binary, &["man"], &directory.join("switchyard.1"))?;
    let size = std::fs::metadata(&binary)?.len();
    eprintln!(
        "xtask: {} ({:.1} MB), completions in {}, man page {}",
        binary.display(),
        size as f64 / 1e6,
        completions.display(),
        directory.join("switchyard.1").display()
    );
    Ok(())
}

fn write_output(binary: &Path, arguments: &[&str], file: &Path) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .args(arguments)
        .output()
        .with_context(|| format!("cannot run `{}`", binary.display()))?;
    anyhow::ensure!(output.status.success(), "`switchyard {}` failed", arguments.join(" "));
    std::fs::write(file, output.stdout)
        .with_context(|| format!("cannot write `{}`", file.display()))
}
