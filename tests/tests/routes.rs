//! `switchyard routes test` as users see it: the quickstart's and the examples' configs traced
//! for a few events, text and `--json`, compared with golden files in `tests/fixtures/routes/`.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the golden files, then review the diff. The
//! `plugin-languages` example's transform is its Python plugin: it is built first (as in
//! `languages.rs`, sharing its `.cwasm` cache), and the example's config is traced without the
//! plugins of the other languages, which its endpoint does not use.

use std::path::{Path, PathBuf};

use switchyard_e2e::{CliOutput, run_cli, workspace_root};

fn fixtures() -> PathBuf {
    workspace_root().join("tests/fixtures/routes")
}

/// The test tools' venv first on `PATH`, so `python3` has componentize-py.
fn environment() -> Vec<(String, String)> {
    let venv = workspace_root().join(".tools/venv/bin");
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let cache = workspace_root().join("target/plugin-languages/cache");
    let mut environment: Vec<(String, String)> = ["HOME"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect();
    environment.push(("PATH".into(), path));
    environment.push(("SWITCHYARD_PLUGIN_CACHE".into(), cache.display().to_string()));
    environment
}

fn cli(directory: &Path, arguments: &[&str]) -> CliOutput {
    let environment = environment();
    let pairs: Vec<(&str, &str)> =
        environment.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    run_cli(directory, arguments, &pairs)
}

/// Runs `routes test` with `arguments` from the workspace root, text and JSON, and compares
/// both with `<case>.txt` and `<case>.json`; answers the mismatches.
fn compare(case: &str, arguments: &[&str]) -> Vec<String> {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (extension, extra) in [("txt", None), ("json", Some("--json"))] {
        let mut full = vec!["routes", "test"];
        full.extend_from_slice(arguments);
        full.extend(extra);
        let output = cli(&workspace_root(), &full);
        assert_eq!(output.code, Some(0), "{case} {full:?}: {}", output.stderr);
        let golden = fixtures().join(format!("{case}.{extension}"));
        if update {
            std::fs::write(&golden, &output.stdout).unwrap();
        } else if std::fs::read_to_string(&golden).unwrap_or_default() != output.stdout {
            mismatches.push(format!("--- {}\n{}", golden.display(), output.stdout));
        }
    }
    mismatches
}

fn fixture(name: &str) -> String {
    fixtures().join(name).display().to_string()
}

#[test]
fn the_quickstart_verifies_github_and_refuses_a_forgery() {
    let config = "examples/quickstart/switchyard.toml";
    let mut mismatches = compare(
        "quickstart-push",
        &["-c", config, "--event", &fixture("quickstart-push.event.json")],
    );
    mismatches.extend(compare(
        "quickstart-forged",
        &[
            "-c",
            config,
            "--source",
            "github",
            "--header",
            "x-github-event: push",
            "--header",
            &format!("x-hub-signature-256: sha256={}", "0".repeat(64)),
            "--body",
            "{}",
        ],
    ));
    mismatches.extend(compare(
        "quickstart-generic",
        &["-c", config, "--source", "generic", "--body", &format!("@{}", fixture("generic.json"))],
    ));
    assert!(mismatches.is_empty(), "output differs from golden files:\n{}", mismatches.join("\n"));
}

#[test]
fn nats_orders_route_by_type_and_subject() {
    let config = "examples/nats-orders/switchyard.toml";
    let mut mismatches = compare(
        "nats-orders-created",
        &["-c", config, "--event", &fixture("nats-orders-created.event.json")],
    );
    mismatches.extend(compare(
        "nats-orders-shipped",
        &[
            "-c",
            config,
            "--source",
            "orders",
            "--subject",
            "orders.us.shipped",
            "--header",
            "content-type: application/json",
            "--body",
            &format!("@{}", fixture("order-shipped.json")),
        ],
    ));
    assert!(mismatches.is_empty(), "output differs from golden files:\n{}", mismatches.join("\n"));
}

/// The example's config with only the plugin its endpoint uses (`chat-python`): validation
/// wants every configured plugin built, and the C one needs a toolchain CI may lack.
fn plugin_languages_config(directory: &Path) -> PathBuf {
    let example = workspace_root().join("examples/plugin-languages");
    let text = std::fs::read_to_string(example.join("switchyard.toml")).unwrap();
    let mut kept = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.starts_with("[plugins.") && line != "[plugins.chat-python]";
        }
        if !skipping {
            kept.push_str(
                &line.replace(
                    "path = \"python/",
                    &format!("path = \"{}/python/", example.display()),
                ),
            );
            kept.push('\n');
        }
    }
    let config = directory.join("plugin-languages.toml");
    std::fs::write(&config, kept).unwrap();
    config
}

/// Builds the example's Python plugin unless its component is newer than its source (the
/// languages test may have built it already; a build takes a minute).
fn build_python_plugin(example: &Path) {
    let project = example.join("python");
    let modified = |path: PathBuf| std::fs::metadata(path).and_then(|meta| meta.modified()).ok();
    let built = modified(project.join("build/push_to_chat.wasm"));
    if built.is_some() && built > modified(project.join("plugin.py")) {
        return;
    }
    let built = cli(&project, &["plugin", "build"]);
    assert_eq!(built.code, Some(0), "the Python plugin builds: {}", built.stderr);
}

#[test]
fn plugin_languages_shape_a_push_into_a_chat_message() {
    let example = workspace_root().join("examples/plugin-languages");
    build_python_plugin(&example);
    let directory = tempfile::tempdir().unwrap();
    let config = plugin_languages_config(directory.path());
    let config = config.to_str().unwrap();
    let fixtures = example.join("fixtures");
    let mut mismatches = compare(
        "plugin-languages-push",
        &["-c", config, "--event", fixtures.join("push-one-commit.event.json").to_str().unwrap()],
    );
    mismatches.extend(compare(
        "plugin-languages-not-a-push",
        &["-c", config, "--event", fixtures.join("not-a-push.event.json").to_str().unwrap()],
    ));
    assert!(mismatches.is_empty(), "output differs from golden files:\n{}", mismatches.join("\n"));
}

#[test]
fn routes_test_refuses_an_unknown_source_and_a_missing_event() {
    let config = "examples/quickstart/switchyard.toml";
    let unknown = cli(&workspace_root(), &["routes", "test", "-c", config, "--source", "nope"]);
    assert_eq!(unknown.code, Some(1));
    assert_eq!(
        unknown.stderr,
        "error: source `nope` is not in the config; its sources are `generic`, `github`\n"
    );
    let missing = cli(&workspace_root(), &["routes", "test", "-c", config]);
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.starts_with("error: give an event"), "{}", missing.stderr);
}
