//! Config validation as users see it: `switchyard validate` on golden fixtures, and the
//! CLI's exit codes.
//!
//! `tests/fixtures/config/invalid/<case>.toml` must fail with exactly `<case>.err` on stderr.
//! Run with `UPDATE_GOLDEN=1` to rewrite the `.err` files, then review the diff.

use std::path::{Path, PathBuf};

use switchyard_e2e::run_cli;

const EXIT_USAGE: i32 = 2;
const EXIT_CONFIG: i32 = 78;

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/config").join(kind)
}

#[test]
fn invalid_configs_report_every_error() {
    let directory = fixtures("invalid");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "only {} invalid fixtures", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let output = run_cli(&directory, &["validate", "-c", name], &[("HOME", "/home/test")]);
        assert_eq!(output.code, Some(EXIT_CONFIG), "{name}: {}", output.stderr);
        assert!(output.stdout.is_empty(), "{name}: stdout is for data: {}", output.stdout);
        let golden = case.with_extension("err");
        if update {
            std::fs::write(&golden, &output.stderr).unwrap();
        } else if std::fs::read_to_string(&golden).unwrap_or_default() != output.stderr {
            mismatches.push(format!("--- {}\n{}", golden.display(), output.stderr));
        }
    }
    assert!(mismatches.is_empty(), "stderr differs from golden files:\n{}", mismatches.join("\n"));
}

#[test]
fn valid_configs_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let quickstart = run_cli(root, &["validate", "-c", "examples/quickstart/switchyard.toml"], &[]);
    assert_eq!(quickstart.code, Some(0), "{}", quickstart.stderr);
    assert!(quickstart.stdout.contains("is valid: 2 sources"), "{}", quickstart.stdout);

    let environment = [("GITHUB_WEBHOOK_SECRET", "It's a Secret to Everybody")];
    let full = run_cli(&fixtures("valid"), &["validate", "-c", "full.toml"], &environment);
    assert_eq!(full.code, Some(0), "{}", full.stderr);
    assert_eq!(
        full.stdout.trim(),
        "config `full.toml` is valid: 3 sources, 3 endpoints, 2 routes, 1 plugin"
    );
    // Inline secrets are allowed, with a warning.
    assert!(full.stderr.contains("warning: secrets.billing-signing: the secret is inline"));
}

#[test]
fn exit_codes() {
    let directory = fixtures("invalid");
    let no_command = run_cli(&directory, &[], &[]);
    assert_eq!(no_command.code, Some(EXIT_USAGE));
    let unknown = run_cli(&directory, &["launch"], &[]);
    assert_eq!(unknown.code, Some(EXIT_USAGE));
    assert!(unknown.stderr.contains("unrecognized subcommand 'launch'"), "{}", unknown.stderr);
    let version = run_cli(&directory, &["--version"], &[]);
    assert_eq!(version.code, Some(0));
    assert!(version.stdout.starts_with("switchyard 0."), "{}", version.stdout);
    let run_invalid = run_cli(&directory, &["run", "-c", "bad-ids.toml"], &[]);
    assert_eq!(run_invalid.code, Some(EXIT_CONFIG), "{}", run_invalid.stderr);
    let missing = run_cli(&directory, &["validate", "-c", "no-such-file.toml"], &[]);
    assert_eq!(missing.code, Some(EXIT_CONFIG));
    assert!(missing.stderr.contains("cannot read `no-such-file.toml`"), "{}", missing.stderr);
}

/// A config can be valid and still not run: a plugin file that is not a component is refused
/// at start (exit 1), naming the plugin, before anything is accepted.
#[test]
fn run_refuses_a_plugin_that_is_not_a_component() {
    let environment = [("GITHUB_WEBHOOK_SECRET", "It's a Secret to Everybody")];
    let output = run_cli(&fixtures("valid"), &["run", "-c", "full.toml"], &environment);
    assert_eq!(output.code, Some(1), "{}", output.stderr);
    assert!(output.stderr.contains("plugin `verify-github`"), "{}", output.stderr);
    assert!(output.stderr.contains("not a valid component"), "{}", output.stderr);
}
