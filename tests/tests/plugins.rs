//! Plugins through the real binary: the first-party plugins against their golden fixtures,
//! verify / route / endpoint stages end to end, `on_error` policies, hostile plugins
//! contained, and the author's loop (`plugin new` → `build` → `test`, `plugin run`).

use std::path::Path;
use std::time::{Duration, Instant};

use switchyard::event::EventId;
use switchyard::store::DeliveryState;
use switchyard_e2e::{
    CliOutput, TestHost, TestReceiver, plugin_wasm, post_webhook, run_cli,
    verify_with_standardwebhooks, workspace_root,
};

const WAIT: Duration = Duration::from_secs(20);
const SIGNING: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// HMAC-SHA256 of `Hello, World!` under [`GITHUB_SECRET`] (GitHub's documented example).
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

/// `[plugins.<id>]` for a plugin built from `plugins/`, with extra lines.
fn plugin(id: &str, crate_name: &str, extra: &str) -> String {
    let path = plugin_wasm(crate_name);
    format!("[plugins.{id}]\npath = \"{}\"\n{extra}\n\n", path.display())
}

fn egress_and_secrets() -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[secrets]\n\
         signing = {{ value = \"{SIGNING}\" }}\ngithub = {{ value = \"{GITHUB_SECRET}\" }}\n\n"
    )
}

async fn post(
    client: &reqwest::Client,
    host: &TestHost,
    source: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value, Option<String>) {
    let mut request = client.post(host.url(&format!("/webhooks/{source}"))).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null), retry_after)
}

fn cli_environment() -> Vec<(String, String)> {
    ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .collect()
}

fn cli(directory: &Path, arguments: &[&str], extra: &[(&str, &str)]) -> CliOutput {
    let mut environment = cli_environment();
    environment.extend(extra.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let pairs: Vec<(&str, &str)> =
        environment.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    run_cli(directory, arguments, &pairs)
}

#[test]
fn first_party_plugins_pass_their_golden_fixtures() {
    for name in [
        "verify-github",
        "verify-standard-webhooks",
        "verify-stripe",
        "verify-slack",
        "verify-shopify",
        "redact",
        "filter-json",
        "to-cloudevents",
        "to-slack",
    ] {
        let wasm = plugin_wasm(name);
        let fixtures = workspace_root().join("plugins").join(name).join("fixtures");
        let output = cli(
            &workspace_root(),
            &["plugin", "test", wasm.to_str().unwrap(), fixtures.to_str().unwrap()],
            &[],
        );
        assert_eq!(output.code, Some(0), "{name}:\n{}\n{}", output.stdout, output.stderr);
        let summary = output.stdout.lines().last().unwrap_or_default();
        assert!(summary.ends_with(" passed, 0 failed"), "{name}: {summary}");
        assert!(!summary.starts_with("0 passed"), "{name} has fixtures");
    }
}

#[test]
fn plugin_test_fails_on_a_mismatch_and_says_where() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("plugin.toml"),
        format!("[config]\nsecret = \"github\"\n[secrets]\ngithub = \"{GITHUB_SECRET}\"\n"),
    )
    .unwrap();
    std::fs::write(
        directory.path().join("signed.event.json"),
        format!(
            r#"{{"type":"github.push","headers":{{"x-hub-signature-256":"{GITHUB_SIGNATURE}"}},"body":"Hello, World!"}}"#
        ),
    )
    .unwrap();
    // Wrong on purpose: a valid signature passes.
    std::fs::write(
        directory.path().join("signed.verdict.json"),
        r#"{"verdict":"reject","status":401,"code":"bad_signature"}"#,
    )
    .unwrap();
    let wasm = plugin_wasm("verify-github");
    let output = cli(directory.path(), &["plugin", "test", wasm.to_str().unwrap(), "."], &[]);
    assert_eq!(output.code, Some(1), "{}", output.stdout);
    assert!(output.stdout.contains("FAIL signed"), "{}", output.stdout);
    assert!(output.stdout.contains("expected `reject`, got `pass`"), "{}", output.stdout);
    assert!(output.stdout.ends_with("0 passed, 1 failed\n"), "{}", output.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_github_authenticates_webhooks_before_anything_is_stored() {
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}{}[sources.github]\nverify = [\"verify-github\"]\n\
         event_type = {{ header = \"x-github-event\", prefix = \"github.\" }}\n\n\
         [endpoints.ci]\nurl = \"{}\"\nsecret = \"signing\"\n\n\
         [routes.all]\nfrom = [\"github\"]\nto = [\"ci\"]\n",
        egress_and_secrets(),
        plugin(
            "verify-github",
            "verify-github",
            "secrets = [\"github\"]\nconfig = { secret = \"github\" }"
        ),
        receiver.url("/ci"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let signed = [
        ("x-github-event", "push"),
        ("x-github-delivery", "delivery-1"),
        ("x-hub-signature-256", GITHUB_SIGNATURE),
    ];
    let id = post_webhook(&client, &host, "github", &signed, "Hello, World!").await.unwrap();
    let delivered = receiver.next(WAIT).await.expect("the verified event is delivered");
    assert_eq!(delivered.header("webhook-id"), Some(id.as_str()));
    assert_eq!(delivered.body.as_ref(), b"Hello, World!");
    assert_eq!(verify_with_standardwebhooks(SIGNING, &[delivered]), vec![Ok(())]);
    // The plugin's dedupe key (the delivery id): a redelivery is the same event, stored once.
    let again = post_webhook(&client, &host, "github", &signed, "Hello, World!").await.unwrap();
    assert_eq!(again, id);

    let tampered = [
        ("x-github-event", "push"),
        ("x-github-delivery", "delivery-2"),
        ("x-hub-signature-256", GITHUB_SIGNATURE),
    ];
    let (status, body, _) = post(&client, &host, "github", &tampered, "Hello, World?").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("bad_signature")), "{body}");
    let (status, body, _) =
        post(&client, &host, "github", &[("x-github-event", "push")], "Hello, World!").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_signature")), "{body}");
    // Authentication comes before the event type: an unsigned request without one is a 401.
    let (status, _, _) = post(&client, &host, "github", &[], "{}").await;
    assert_eq!(status, 401);
    assert!(receiver.next(Duration::from_millis(300)).await.is_none(), "nothing else is delivered");
    assert_eq!(host.count_events().await.unwrap(), 1, "rejected events are not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_plugins_and_endpoint_transforms_shape_what_is_delivered() {
    let mut plain = TestReceiver::start().await;
    let mut shaped = TestReceiver::start().await;
    let config = format!(
        "{egress}{redact}{split}{filter}{wrap}\
         [sources.shop]\n\n\
         [endpoints.plain]\nurl = \"{plain}\"\nsecret = \"signing\"\n\n\
         [endpoints.shaped]\nurl = \"{shaped}\"\nsecret = \"signing\"\ntransform = \"wrap\"\n\n\
         [routes.orders]\nfrom = [\"shop\"]\ntypes = [\"order.*\"]\nplugins = [\"redact\", \"only-paid\"]\nto = [\"plain\", \"shaped\"]\n\n\
         [routes.batches]\nfrom = [\"shop\"]\ntypes = [\"batch\"]\nplugins = [\"split\"]\nto = [\"plain\"]\n",
        egress = egress_and_secrets(),
        redact =
            plugin("redact", "redact", "config = { pointers = \"/card/number,/customer/email\" }"),
        split = plugin("split", "hostile", "config = { mode = \"split-two\" }"),
        filter = plugin(
            "only-paid",
            "filter-json",
            "config = { pointer = \"/paid\", equals = \"true\" }"
        ),
        wrap = plugin("wrap", "redact", "config = { pointers = \"/card\", mask = \"[card]\" }"),
        plain = plain.url("/plain"),
        shaped = shaped.url("/shaped"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let order = r#"{"type":"order.paid","paid":true,"card":{"number":"4242424242424242"},"customer":{"email":"a@example.com","name":"Ada"}}"#;
    let id = post_webhook(&client, &host, "shop", &[("content-type", "application/json")], order)
        .await
        .unwrap();
    let delivered = plain.next(WAIT).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&delivered.body).unwrap();
    assert_eq!(body["card"]["number"], "[redacted]");
    assert_eq!(body["customer"]["email"], "[redacted]");
    assert_eq!(body["customer"]["name"], "Ada");
    assert_eq!(delivered.header("webhook-id"), Some(id.as_str()), "a modified event keeps its id");
    // The signature covers the bytes actually sent.
    assert_eq!(verify_with_standardwebhooks(SIGNING, &[delivered]), vec![Ok(())]);
    let transformed = shaped.next(WAIT).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&transformed.body).unwrap();
    assert_eq!(body["card"], "[card]", "the endpoint's transform ran after the route's plugins");
    assert_eq!(body["customer"]["email"], "[redacted]");
    // The stored event is the raw one.
    let stored = host.event(id.parse::<EventId>().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.body.as_ref(), order.as_bytes());

    // A filter plugin that says no: stored, not delivered.
    let unpaid = r#"{"type":"order.created","paid":false}"#;
    post_webhook(&client, &host, "shop", &[], unpaid).await.unwrap();
    // A split: two events, each with its own id, each delivered.
    let batch = post_webhook(&client, &host, "shop", &[], r#"{"type":"batch"}"#).await.unwrap();
    let first = plain.next(WAIT).await.unwrap();
    let second = plain.next(WAIT).await.unwrap();
    let mut bodies = vec![first.body.clone(), second.body.clone()];
    bodies.sort();
    assert_eq!(bodies, vec![&br#"{"part":1}"#[..], &br#"{"part":2}"#[..]]);
    let ids = [first.header("webhook-id").unwrap(), second.header("webhook-id").unwrap()];
    assert!(
        ids[0] != ids[1] && !ids.contains(&batch.as_str()),
        "split events get new ids: {ids:?}"
    );
    assert!(plain.next(Duration::from_millis(300)).await.is_none(), "the unpaid order was dropped");
    assert!(shaped.next(Duration::from_millis(100)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_policies_decide_what_a_failing_plugin_means() {
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{egress}{open}{dead}{closed}{retry}\
         [sources.open]\nverify = [\"fatal-open\"]\n\n\
         [sources.dead]\n\n\
         [sources.closed]\nverify = [\"fatal-closed\"]\n\n\
         [sources.retry]\nverify = [\"retry-open\"]\n\n\
         [endpoints.sink]\nurl = \"{url}\"\nsecret = \"signing\"\n\n\
         [routes.open]\nfrom = [\"open\"]\nto = [\"sink\"]\n\n\
         [routes.dead]\nfrom = [\"dead\"]\nplugins = [\"fatal-dead\"]\nto = [\"sink\"]\n",
        egress = egress_and_secrets(),
        open = plugin(
            "fatal-open",
            "hostile",
            "config = { mode = \"fatal\" }\non_error = \"fail-open\""
        ),
        dead = plugin(
            "fatal-dead",
            "hostile",
            "config = { mode = \"fatal\" }\non_error = \"dead-letter\""
        ),
        closed = plugin("fatal-closed", "hostile", "config = { mode = \"fatal\" }"),
        retry = plugin(
            "retry-open",
            "hostile",
            "config = { mode = \"retry\" }\non_error = \"fail-open\""
        ),
        url = receiver.url("/"),
    );
    let host = TestHost::start("admin_token = { value = \"token\" }", &config).await.unwrap();
    let client = reqwest::Client::new();
    // fail-open: the event goes on as if the plugin had passed it.
    let open = post_webhook(&client, &host, "open", &[], r#"{"n":1}"#).await.unwrap();
    assert_eq!(receiver.next(WAIT).await.unwrap().header("webhook-id"), Some(open.as_str()));
    // fail-closed (the default): the sender retries later; nothing is stored.
    let (status, body, retry_after) = post(&client, &host, "closed", &[], "{}").await;
    assert_eq!((status, retry_after.as_deref()), (503, Some("1")), "{body}");
    // `failure::retry` asks for a retry whatever the policy.
    let (status, _, _) = post(&client, &host, "retry", &[], "{}").await;
    assert_eq!(status, 503);
    // dead-letter: accepted, its delivery dead with the reason, and replay sends it.
    let dead = post_webhook(&client, &host, "dead", &[], r#"{"n":2}"#).await.unwrap();
    let delivery = host.deliveries_of(dead.parse::<EventId>().unwrap()).await.unwrap();
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].state, DeliveryState::Dead);
    let error = delivery[0].last_error.clone().unwrap();
    assert!(error.contains("plugin `fatal-dead` failed: fatal: boom"), "{error}");
    assert_eq!(
        host.count_events().await.unwrap(),
        2,
        "the fail-closed and retry events were not stored"
    );
    let replay =
        cli(&host.config_dir(), &["replay", "-c", "switchyard.toml", "--url", &host.url("")], &[]);
    assert_eq!(replay.code, Some(0), "{}", replay.stderr);
    let replayed = receiver.next(WAIT).await.expect("the dead letter is replayed");
    assert_eq!(replayed.header("webhook-id"), Some(dead.as_str()));
    assert_eq!(replayed.body.as_ref(), br#"{"n":2}"#);
    assert!(host.logs.contains("plugin failed"), "failures are logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_contained_and_the_router_keeps_serving() {
    let mut receiver = TestReceiver::start().await;
    let hostile = [
        ("loop", "timeout = \"50ms\""),
        ("memory-bomb", "memory = \"16MiB\""),
        ("huge-output", ""),
        ("panic", ""),
        ("bad-reject-status", ""),
        ("read-file", ""),
        ("snoop-secret", "config = { mode = \"snoop-secret\", secret = \"github\" }"),
        ("log-spam", ""),
    ];
    let mut config = egress_and_secrets();
    for (mode, extra) in hostile {
        let settings = if extra.starts_with("config") {
            extra.to_owned()
        } else {
            format!("config = {{ mode = \"{mode}\" }}\n{extra}")
        };
        config.push_str(&plugin(mode, "hostile", &settings));
        config.push_str(&format!("[sources.{mode}]\nverify = [\"{mode}\"]\n\n"));
    }
    config.push_str(&plugin(
        "too-many-splits",
        "hostile",
        "config = { mode = \"too-many-splits\" }",
    ));
    config.push_str("[sources.splits]\n\n[sources.healthy]\n\n");
    config.push_str(&format!(
        "[endpoints.sink]\nurl = \"{}\"\n\n\
         [routes.splits]\nfrom = [\"splits\"]\nplugins = [\"too-many-splits\"]\nto = [\"sink\"]\n\n\
         [routes.rest]\nfrom = [\"healthy\", \"log-spam\"]\nto = [\"sink\"]\n",
        receiver.url("/")
    ));
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    for source in [
        "loop",
        "memory-bomb",
        "huge-output",
        "panic",
        "bad-reject-status",
        "read-file",
        "snoop-secret",
        "splits",
    ] {
        let started = Instant::now();
        let (status, body, _) = post(&client, &host, source, &[], "{}").await;
        assert_eq!(status, 503, "{source}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{source} took {:?}",
            started.elapsed()
        );
    }
    // Lines reach the log a moment after the answer: wait for each.
    for expected in [
        "timed out after 50ms",
        "exceeded its memory limit of 16777216 bytes",
        "invalid verdict: the answer holds",
        "invalid verdict: `reject` status 200",
        "`split` produced 101 events",
        "read:",
        "not-allowed: github",
    ] {
        let found = host.logs.wait_for(WAIT, |line| line.contains(expected).then_some(()));
        let logs = host.logs.snapshot().join("\n");
        assert!(found.is_some(), "no `{expected}` in the logs:\n{logs}");
    }
    // A plugin that logs without end is cut at its budget; its event goes through.
    let spam = post_webhook(&client, &host, "log-spam", &[], "{}").await.unwrap();
    assert_eq!(receiver.next(WAIT).await.unwrap().header("webhook-id"), Some(spam.as_str()));
    let spam_lines =
        host.logs.snapshot().iter().filter(|line| line.contains("plugin=log-spam")).count();
    assert!((1..=200).contains(&spam_lines), "{spam_lines} log lines from log-spam");
    // After all that, a healthy source is served as usual.
    let healthy = post_webhook(&client, &host, "healthy", &[], "{}").await.unwrap();
    assert_eq!(receiver.next(WAIT).await.unwrap().header("webhook-id"), Some(healthy.as_str()));
    let failed = host
        .metric("switchyard_plugin_calls_total{plugin=\"loop\",outcome=\"failed\"}")
        .await
        .unwrap();
    assert_eq!(failed, 1.0);
}

#[test]
fn plugin_run_reports_the_verdict_logs_and_costs() {
    let directory = tempfile::tempdir().unwrap();
    let event = directory.path().join("signed.event.json");
    std::fs::write(
        &event,
        format!(
            r#"{{"type":"github.push","headers":{{"x-hub-signature-256":"{GITHUB_SIGNATURE}","x-github-delivery":"d-9"}},"body":"Hello, World!"}}"#
        ),
    )
    .unwrap();
    let wasm = plugin_wasm("verify-github");
    let output = cli(
        directory.path(),
        &[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--config",
            "secret=github",
            "--secret",
            &format!("github={GITHUB_SECRET}"),
        ],
        &[],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(report["verdict"], "modify", "{report}");
    assert_eq!(report["patch"]["set_metadata"], serde_json::json!([["dedupe-key", "d-9"]]));
    assert!(report["instructions"].as_u64().unwrap() > 1_000, "{report}");
    assert!(report["peak_memory_bytes"].as_u64().unwrap() >= 64 * 1024, "{report}");
    assert!(report["wall_time_us"].as_u64().is_some());

    let hostile = plugin_wasm("hostile");
    let output = cli(
        directory.path(),
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--event",
            event.to_str().unwrap(),
            "--config",
            "mode=log-spam",
        ],
        &[],
    );
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let logged: usize = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().len())
        .sum();
    assert!(logged <= 4096 && logged > 3000, "{logged} bytes logged");
    assert!(report["logs_dropped"].as_u64().unwrap() > 9_000, "{report}");
}

#[test]
fn a_component_outside_the_world_is_refused_at_load() {
    let directory = tempfile::tempdir().unwrap();
    // A core module is not a component at all.
    let not_component = directory.path().join("core.wasm");
    std::fs::write(&not_component, b"\0asm\x01\0\0\0").unwrap();
    let event = directory.path().join("e.event.json");
    std::fs::write(&event, r#"{"type":"t"}"#).unwrap();
    let output = cli(
        directory.path(),
        &["plugin", "run", not_component.to_str().unwrap(), "--event", event.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.code, Some(1));
    assert!(output.stderr.contains("not a valid component"), "{}", output.stderr);
    // A component that imports an interface the host does not offer is refused by name.
    let intruder = plugin_wasm("imports-outside-world");
    let output = cli(
        directory.path(),
        &["plugin", "run", intruder.to_str().unwrap(), "--event", event.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.code, Some(1));
    assert!(
        output.stderr.contains("does not fit a `switchyard:plugin` world"),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("acme:outside/network"), "{}", output.stderr);
}

#[test]
fn plugin_new_build_and_test_work_for_every_kind() {
    let directory = tempfile::tempdir().unwrap();
    // One target directory for the three projects, kept between runs: the SDK and its
    // dependencies compile once.
    let target = workspace_root().join("target/plugin-new");
    let target = target.to_str().unwrap();
    for kind in ["filter", "transform", "verify"] {
        let name = format!("my-{kind}");
        let created = cli(directory.path(), &["plugin", "new", "--kind", kind, &name], &[]);
        assert_eq!(created.code, Some(0), "{}", created.stderr);
        let project = directory.path().join(&name);
        assert!(project.join("fixtures").is_dir());
        let built = cli(&project, &["plugin", "build"], &[("CARGO_TARGET_DIR", target)]);
        assert_eq!(built.code, Some(0), "{kind}: {}", built.stderr);
        let wasm = built.stdout.lines().last().unwrap().to_owned();
        assert!(wasm.ends_with(&format!("{}.wasm", name.replace('-', "_"))), "{wasm}");
        let tested = cli(&project, &["plugin", "test", &wasm, "fixtures"], &[]);
        assert_eq!(tested.code, Some(0), "{kind}: {}\n{}", tested.stdout, tested.stderr);
        assert!(tested.stdout.contains(" passed, 0 failed"), "{}", tested.stdout);
    }
    let again = cli(directory.path(), &["plugin", "new", "--kind", "filter", "my-filter"], &[]);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_in_the_data_dir() {
    let config = format!(
        "{}{}[sources.github]\nverify = [\"verify-github\"]\n",
        egress_and_secrets(),
        plugin(
            "verify-github",
            "verify-github",
            "secrets = [\"github\"]\nconfig = { secret = \"github\" }"
        ),
    );
    let mut host = TestHost::start("", &config).await.unwrap();
    let cache = host.data_dir().join("plugin-cache");
    let cached = |cache: &Path| -> Vec<_> {
        std::fs::read_dir(cache)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default()
    };
    // Plugins are loaded before the router listens.
    let files = cached(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|extension| extension == "cwasm"));
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    host.restart().await.unwrap();
    assert_eq!(cached(&cache), files, "the restart reused the artifact");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_instances_are_reused_and_fresh_ones_are_not() {
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{egress}{warm}{fresh}[sources.warm]\n\n[sources.fresh]\n\n\
         [endpoints.sink]\nurl = \"{url}\"\n\n\
         [routes.warm]\nfrom = [\"warm\"]\nplugins = [\"counter-warm\"]\nto = [\"sink\"]\n\n\
         [routes.fresh]\nfrom = [\"fresh\"]\nplugins = [\"counter-fresh\"]\nto = [\"sink\"]\n",
        egress = egress_and_secrets(),
        warm = plugin(
            "counter-warm",
            "hostile",
            "config = { mode = \"count-calls\" }\ninstances = \"warm\""
        ),
        fresh = plugin("counter-fresh", "hostile", "config = { mode = \"count-calls\" }"),
        url = receiver.url("/"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let mut counts = std::collections::HashMap::new();
    for source in ["fresh", "warm"] {
        for _ in 0..10 {
            post_webhook(&client, &host, source, &[], "{}").await.unwrap();
            let delivered = receiver.next(WAIT).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&delivered.body).unwrap();
            counts.entry(source).or_insert_with(Vec::new).push(body["calls"].as_u64().unwrap());
        }
    }
    assert!(counts["fresh"].iter().all(|calls| *calls == 1), "{counts:?}");
    // Each plugin thread keeps its own warm instance: ten calls over a few threads reuse one.
    assert!(counts["warm"].iter().any(|calls| *calls > 1), "{counts:?}");
}
