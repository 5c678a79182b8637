//! The tools around the router: the config file's JSON Schema, shell completions and the man
//! page.
//!
//! The schema in `docs/config.schema.json` is what editors check configs against, so it must
//! be exactly what `switchyard config schema` prints (regenerate it when the config types
//! change), it must accept every config we ship, and it must refuse keys it does not know.

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_e2e::{run_cli, workspace_root};

const EXIT_CONFIG: i32 = 78;
const SCHEMA_DIRECTIVE: &str = "#:schema ../../docs/config.schema.json";

fn committed_schema() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("docs/config.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&committed_schema()).unwrap()
}

/// A TOML config as the JSON document the schema describes.
fn config_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let table: toml::Table = text.parse().unwrap();
    serde_json::to_value(table).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, config: &Value) -> Vec<String> {
    validator
        .iter_errors(config)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

/// Every example's `switchyard.toml`, and the valid test fixtures.
fn shipped_configs() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut configs: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("switchyard.toml"))
        .filter(|path| path.is_file())
        .collect();
    configs.extend(
        std::fs::read_dir(root.join("tests/fixtures/config/valid"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "toml")),
    );
    configs.sort();
    configs
}

#[test]
fn the_committed_config_schema_matches_the_config_types() {
    let committed = std::fs::read_to_string(workspace_root().join("docs/config.schema.json"));
    let printed = run_cli(&workspace_root(), &["config", "schema"], &[]);
    assert_eq!(printed.code, Some(0), "{}", printed.stderr);
    assert_eq!(
        printed.stdout,
        committed.unwrap(),
        "docs/config.schema.json drifted from the config types: regenerate it with \
         `cargo run -p switchyard -- config schema > docs/config.schema.json`"
    );
}

#[test]
fn every_shipped_config_validates_against_the_committed_schema() {
    let validator = validator();
    let configs = shipped_configs();
    assert!(configs.len() >= 4, "{configs:?}");
    for path in configs {
        let errors = schema_errors(&validator, &config_json(&path));
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn every_example_points_editors_at_the_schema() {
    let examples = shipped_configs()
        .into_iter()
        .filter(|path| path.starts_with(workspace_root().join("examples")));
    for path in examples {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(SCHEMA_DIRECTIVE), "{}", path.display());
        let schema = path.parent().unwrap().join("../../docs/config.schema.json");
        assert!(schema.is_file(), "{}", schema.display());
    }
}

#[test]
fn a_key_missing_from_the_schema_is_an_error() {
    // What a new key in the config types looks like to the committed schema until it is
    // regenerated: an error, in editors and here; the router refuses it as well.
    let quickstart = workspace_root().join("examples/quickstart/switchyard.toml");
    let mut config = config_json(&quickstart);
    config["server"]["colour"] = "blue".into();
    config["endpoints"] =
        serde_json::json!({"billing": {"url": "https://example.com/hook", "retries": 3}});
    let errors = schema_errors(&validator(), &config);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("/endpoints/billing: ") && errors[0].contains("'retries'"),
        "{errors:#?}"
    );
    assert!(errors[1].starts_with("/server: ") && errors[1].contains("'colour'"), "{errors:#?}");

    let directory = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&quickstart)
        .unwrap()
        .replace("[server]\n", "[server]\ncolour = \"blue\"\n");
    std::fs::write(directory.path().join("switchyard.toml"), text).unwrap();
    let output = run_cli(directory.path(), &["validate"], &[]);
    assert_eq!(output.code, Some(EXIT_CONFIG), "{}", output.stderr);
    assert!(output.stderr.contains("unknown field `colour`"), "{}", output.stderr);
}

#[test]
fn schema_values_are_checked_as_the_router_checks_them() {
    let schema = committed_schema();
    let definition = |name: &str| {
        let mut definition = schema["definitions"][name].clone();
        definition["definitions"] = schema["definitions"].clone();
        jsonschema::draft7::new(&definition).unwrap()
    };
    let duration = definition("Duration");
    for text in
        ["50ms", "15s", "5m", "2h", "7d", "1h30m", "0s", "", "5", "s", "5 sec", "-5s", "5w", "1.5s"]
    {
        let parsed = switchyard::config::values::parse_duration(text).is_ok();
        assert_eq!(duration.is_valid(&text.into()), parsed, "duration `{text}`");
    }
    let size = definition("Size");
    for text in [
        "1024",
        "100B",
        "512KiB",
        "1MiB",
        "5MB",
        "5 MB",
        "1GiB",
        "",
        "MiB",
        "1.5MiB",
        "5 megabytes",
        "-1",
    ] {
        let parsed = switchyard::config::values::parse_size(text).is_ok();
        assert_eq!(size.is_valid(&text.into()), parsed, "size `{text}`");
    }
    let id = definition("Id");
    for text in [
        "github",
        "verify-github",
        "a1",
        "orders-v2-eu",
        "",
        "GitHub",
        "1abc",
        "-a",
        "a-",
        "a--b",
        "a_b",
        "a.b",
    ] {
        let checked = switchyard::config::values::check_id(text).is_ok();
        assert_eq!(id.is_valid(&text.into()), checked, "id `{text}`");
    }
    let retry = definition("RetryPolicy");
    assert!(retry.is_valid(&"standard".into()));
    assert!(retry.is_valid(&serde_json::json!({"schedule": ["5s", "5m"]})));
    assert!(!retry.is_valid(&"aggressive".into()));
    assert!(!retry.is_valid(&serde_json::json!({"schedule": ["soon"]})));
}

#[test]
fn completions_generate_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = run_cli(&workspace_root(), &["completions", shell], &[]);
        assert_eq!(output.code, Some(0), "{shell}: {}", output.stderr);
        for subcommand in ["validate", "plugin", "openapi"] {
            assert!(output.stdout.contains(subcommand), "{shell}: no `{subcommand}`");
        }
    }
    let bash = run_cli(&workspace_root(), &["completions", "bash"], &[]).stdout;
    assert!(bash.contains("complete -F _switchyard"), "{bash}");
    let unknown = run_cli(&workspace_root(), &["completions", "tcsh"], &[]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.stderr);
}

#[test]
fn the_man_page_renders_every_command() {
    let output = run_cli(&workspace_root(), &["man"], &[]);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(output.stdout.contains(".TH switchyard 1"), "{}", output.stdout);
    for command in ["run", "validate", "plugin", "config", "completions"] {
        assert!(output.stdout.contains(&format!("switchyard\\-{command}")), "no `{command}`");
    }
}

/// `plugin diff` over redact's own fixtures, `redact.wasm` against itself with a different
/// mask on the new side: exactly the events redact modifies change.
#[test]
fn plugin_diff_shows_exactly_the_events_a_new_redact_changes() {
    let redact = switchyard_e2e::plugin_wasm("redact");
    let redact = redact.to_str().unwrap();
    let fixtures = workspace_root().join("plugins/redact/fixtures");
    let fixtures = fixtures.to_str().unwrap();
    let same =
        run_cli(&workspace_root(), &["plugin", "diff", redact, redact, "--events", fixtures], &[]);
    assert_eq!(same.code, Some(0), "{}{}", same.stdout, same.stderr);
    assert_eq!(same.stdout, "0 changed, 6 unchanged\n");

    let arguments =
        ["plugin", "diff", redact, redact, "--events", fixtures, "--new-config", "mask=***"];
    let changed = run_cli(&workspace_root(), &arguments, &[]);
    assert_eq!(changed.code, Some(1), "{}{}", changed.stdout, changed.stderr);
    let names: Vec<&str> = changed
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("changed  "))
        .map(|line| line.split(':').next().unwrap())
        .collect();
    assert_eq!(names, ["redacts-an-object-value", "redacts-every-pointer", "redacts-what-exists"]);
    assert!(changed.stdout.ends_with("3 changed, 3 unchanged\n"), "{}", changed.stdout);
    assert!(
        changed.stdout.contains(
            "changed  redacts-what-exists: modify → modify\n  \
         /patch/body_json/customer/email: \"[redacted]\" → \"***\"\n"
        ),
        "{}",
        changed.stdout
    );
}

/// A pointer added on the new side: the event that has a value there changes verdict.
#[test]
fn plugin_diff_reports_a_verdict_change_with_its_json_diff() {
    let directory = tempfile::tempdir().unwrap();
    let events = [
        ("card", r#"{"card": {"number": "4242"}, "customer": {"email": "j@example.com"}}"#),
        ("name", r#"{"customer": {"name": "Jane"}}"#),
        ("nothing", r#"{"other": 1}"#),
    ];
    for (name, body) in events {
        let fixture =
            serde_json::json!({"source": "billing", "type": "customer.updated", "body": body});
        std::fs::write(directory.path().join(format!("{name}.event.json")), fixture.to_string())
            .unwrap();
    }
    let redact = switchyard_e2e::plugin_wasm("redact");
    let redact = redact.to_str().unwrap();
    let arguments = [
        "plugin",
        "diff",
        redact,
        redact,
        "--events",
        ".",
        "--old-config",
        "pointers=/card/number",
        "--new-config",
        "pointers=/card/number,/customer/name",
    ];
    let output = run_cli(directory.path(), &arguments, &[]);
    assert_eq!(output.code, Some(1), "{}{}", output.stdout, output.stderr);
    assert_eq!(
        output.stdout,
        "changed  name: pass → modify\n  \
         /verdict: \"pass\" → \"modify\"\n  \
         /patch: (absent) → {\"body_json\":{\"customer\":{\"name\":\"[redacted]\"}},\
         \"remove_headers\":[],\"set_headers\":[],\"set_metadata\":[]}\n\
         1 changed, 2 unchanged\n"
    );
}

/// The sample names the router exports: from each `# TYPE` line of `/metrics`, a counter's
/// `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's own name. Labelled
/// families appear once they have a sample, so each gets one.
fn exported_samples() -> Vec<String> {
    use switchyard::telemetry::{AttemptOutcome, IngestOutcome, NatsOutcome, PluginOutcome};
    let metrics = switchyard::telemetry::Metrics::new();
    metrics.count_ingest("github", IngestOutcome::Accepted);
    metrics.count_attempt("billing", AttemptOutcome::Delivered, 0.01);
    metrics.set_pending("billing", 1);
    metrics.count_plugin_call("redact", PluginOutcome::Ok, 0.0001);
    metrics.count_nats_message("orders", NatsOutcome::Acked);
    metrics.set_nats_connected(true);
    let mut samples = Vec::new();
    for line in metrics.render().lines() {
        let Some(declaration) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = declaration.split_once(' ').unwrap();
        match kind {
            "counter" => samples.push(format!("{name}_total")),
            "histogram" => samples
                .extend(["_bucket", "_sum", "_count"].map(|suffix| format!("{name}{suffix}"))),
            _ => samples.push(name.to_owned()),
        }
    }
    samples
}

/// Every `switchyard_…` name in `text`.
fn metric_names(text: &str) -> Vec<&str> {
    text.match_indices("switchyard_")
        .map(|(start, _)| {
            let rest = &text[start..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn the_operator_kit_uses_only_metrics_the_router_exports() {
    let exported = exported_samples();
    for name in ["switchyard_nats_connected", "switchyard_delivery_attempts_total"] {
        assert!(exported.contains(&name.to_owned()), "{exported:?}");
    }
    let deploy = workspace_root().join("deploy");
    for file in ["grafana/switchyard.json", "prometheus/alerts.yml", "prometheus/alerts.test.yml"] {
        let text = std::fs::read_to_string(deploy.join(file)).unwrap();
        let names = metric_names(&text);
        assert!(names.len() >= 5, "{file}: {names:?}");
        for name in names {
            assert!(
                exported.iter().any(|sample| sample == name),
                "{file}: `{name}` is not exported"
            );
        }
    }
}

#[test]
fn the_dashboard_has_a_query_in_every_panel() {
    let path = workspace_root().join("deploy/grafana/switchyard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let graphs: Vec<&Value> = panels.iter().filter(|panel| panel["type"] != "row").collect();
    assert!(graphs.len() >= 12, "{}", graphs.len());
    for panel in graphs {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            assert!(target["expr"].as_str().unwrap().contains("switchyard_"), "{}", panel["title"]);
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        }
    }
}
