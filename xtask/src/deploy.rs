//! Checks of the operator kit in `deploy/`: the alert rules (`promtool check rules` and the
//! rules' unit tests) and the systemd unit (`systemd-analyze verify`, and an exposure ceiling
//! from `systemd-analyze security`).
//!
//! Owns which tool checks which file. A missing tool is skipped with a message outside CI
//! and is an error in CI, where `cargo xtask setup` installs it from Debian.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::run;

const RULES: &str = "deploy/prometheus/alerts.yml";
const RULE_TESTS: &str = "deploy/prometheus/alerts.test.yml";
const UNIT: &str = "deploy/systemd/switchyard.service";
/// Where the unit expects the binary; replaced for the check (see `systemd_unit`).
const INSTALLED_BINARY: &str = "/usr/local/bin/switchyard";
/// `systemd-analyze security` rates exposure from 0.0 to 10.0; the threshold is in tenths.
/// The unit scores 1.1 with systemd 252; a change that weakens it past 2.0 fails.
const MAX_EXPOSURE_TENTHS: &str = "20";

/// The checking tools and the Debian packages that carry them.
const TOOLS: [(&str, &str); 2] = [(PROMTOOL, "prometheus"), (SYSTEMD_ANALYZE, "systemd")];
const PROMTOOL: &str = "promtool";
const SYSTEMD_ANALYZE: &str = "systemd-analyze";

fn present(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|output| output.status.success())
}

/// In CI, installs the missing checking tools from Debian; elsewhere says which are missing.
pub fn install_tools() {
    let missing: Vec<(&str, &str)> = TOOLS.into_iter().filter(|(tool, _)| !present(tool)).collect();
    if missing.is_empty() {
        return;
    }
    let packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    if std::env::var_os("CI").is_none() {
        for (tool, package) in &missing {
            eprintln!(
                "xtask: no `{tool}`: its checks of `deploy/` will be skipped \
                 (Debian: `apt-get install {package}`)"
            );
        }
        return;
    }
    let installed = run(Command::new("apt-get").args(["update", "-qq"])).and_then(|()| {
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    });
    if let Err(error) = installed {
        eprintln!(
            "xtask: cannot install {} ({error:#}); `cargo xtask lint` will fail",
            packages.join(", ")
        );
    }
}

/// Runs every check whose tool is present; in CI a missing tool is an error.
pub fn check() -> anyhow::Result<()> {
    let in_ci = std::env::var_os("CI").is_some();
    let mut missing = Vec::new();
    if present(PROMTOOL) {
        run(Command::new("promtool").args(["check", "rules", RULES]))?;
        run(Command::new("promtool").args(["test", "rules", RULE_TESTS]))?;
    } else {
        missing.push(PROMTOOL);
    }
    if present(SYSTEMD_ANALYZE) {
        systemd_unit()?;
    } else {
        missing.push(SYSTEMD_ANALYZE);
    }
    for tool in &missing {
        eprintln!("xtask: no `{tool}`: its checks of `deploy/` were skipped");
    }
    if in_ci && !missing.is_empty() {
        bail!("CI needs {} to check `deploy/`", missing.join(" and "));
    }
    Ok(())
}

/// `systemd-analyze verify` insists that `ExecStart=` names an existing executable, so the
/// check runs on a copy whose binary path is this program's; everything else is the unit as
/// shipped. Warnings (an unknown key, a bad value) go to stderr with exit status 0, so any
/// output fails the check.
fn systemd_unit() -> anyhow::Result<()> {
    let unit = std::fs::read_to_string(UNIT).with_context(|| format!("cannot read `{UNIT}`"))?;
    let executable = std::env::current_exe().context("cannot find the xtask binary")?;
    let executable = executable.to_str().context("the xtask binary's path is not UTF-8")?;
    let directory = std::env::temp_dir().join(format!("switchyard-unit-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let name = Path::new(UNIT).file_name().context("the unit has a file name")?;
    let copy = directory.join(name);
    std::fs::write(&copy, unit.replace(INSTALLED_BINARY, executable))?;
    let checked = check_copy(&copy);
    let _ = std::fs::remove_dir_all(&directory);
    checked
}

fn check_copy(copy: &Path) -> anyhow::Result<()> {
    let mut verify = Command::new("systemd-analyze");
    verify.arg("verify").arg(copy);
    eprintln!("xtask: {verify:?}");
    let output = verify.output().context("cannot run `systemd-analyze verify`")?;
    let complaints = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() || !complaints.is_empty() {
        bail!("`systemd-analyze verify {UNIT}` found problems:\n{complaints}");
    }
    run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", "--threshold", MAX_EXPOSURE_TENTHS])
        .arg(copy)
        .stdout(std::process::Stdio::null()))
}
