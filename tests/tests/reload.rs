//! Live reload through the real binary: SIGHUP, `switchyard reload` and the admin endpoint
//! re-read the config file; a valid one is applied (new endpoints deliver), an invalid one
//! changes nothing and every error is logged, a removed endpoint's pending deliveries are
//! parked and resume when it comes back, and `/metrics` counts both outcomes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use switchyard_e2e::{Reply, TestHost, TestReceiver, post_webhook, run_cli};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "reload-test-token";

fn server_extra() -> String {
    format!("admin_token = {{ value = \"{TOKEN}\" }}")
}

fn base(receiver: &TestReceiver) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [sources.hooks]\ntype = \"http\"\n\n\
         [endpoints.first]\nurl = \"{}\"\n\n\
         [routes.to-first]\nfrom = [\"hooks\"]\nto = [\"first\"]\n",
        receiver.url("/first")
    )
}

fn config_path(host: &TestHost) -> PathBuf {
    host.config_dir().join("switchyard.toml")
}

/// Rewrites the config: the harness's `[server]` section, then `rest`.
fn write_config(host: &TestHost, rest: &str) {
    let path = config_path(host);
    let text = std::fs::read_to_string(&path).unwrap();
    let server_end = text.find("\n\n").expect("the harness writes [server] first");
    std::fs::write(&path, format!("{}\n\n{rest}", &text[..server_end])).unwrap();
}

fn sighup(host: &TestHost) {
    let status = Command::new("kill").arg("-HUP").arg(host.pid().to_string()).status().unwrap();
    assert!(status.success());
}

/// Waits for the `count`-th log line containing `needle`.
fn wait_for_line(host: &TestHost, needle: &str, count: usize) {
    let mut seen = 0;
    let found = host.logs.wait_for(WAIT, |line| {
        if line.contains(needle) {
            seen += 1;
        }
        (seen >= count).then_some(())
    });
    assert!(found.is_some(), "no `{needle}` ×{count} in:\n{}", host.logs.snapshot().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_an_endpoint_that_then_gets_deliveries() {
    let mut first = TestReceiver::start().await;
    let mut second = TestReceiver::start().await;
    let host = TestHost::start(&server_extra(), &base(&first)).await.unwrap();
    let client = reqwest::Client::new();

    let added = format!(
        "{}\n[endpoints.second]\nurl = \"{}\"\n\n[routes.to-second]\nfrom = [\"hooks\"]\nto = [\"second\"]\n",
        base(&first),
        second.url("/second")
    );
    write_config(&host, &added);
    sighup(&host);
    wait_for_line(&host, "config reloaded", 1);

    let id = post_webhook(&client, &host, "hooks", &[], r#"{"n":1}"#).await.unwrap();
    let to_second = second.next(WAIT).await.expect("the added endpoint gets the event");
    assert_eq!(to_second.header("webhook-id"), Some(id.as_str()));
    assert_eq!(&to_second.body[..], br#"{"n":1}"#);
    assert!(first.next(WAIT).await.is_some(), "the kept endpoint still gets it");
    assert_eq!(
        host.metric("switchyard_config_reloads_total{outcome=\"applied\"}").await.unwrap(),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_refused_with_every_error_logged_and_the_old_config_serves() {
    let mut first = TestReceiver::start().await;
    let host = TestHost::start(&server_extra(), &base(&first)).await.unwrap();
    let client = reqwest::Client::new();

    // Two errors: a URL that is not one, and a route to an endpoint that does not exist.
    let broken = format!(
        "{}\n[endpoints.broken]\nurl = \"not a url\"\n\n[routes.to-nowhere]\nto = [\"nowhere\"]\n",
        base(&first)
    );
    write_config(&host, &broken);
    sighup(&host);
    wait_for_line(&host, "config reload refused; the running config stays", 1);
    let refusals: Vec<String> = host
        .logs
        .snapshot()
        .into_iter()
        .filter(|line| line.contains("config reload refused: "))
        .collect();
    assert_eq!(refusals.len(), 2, "one line per error: {refusals:#?}");
    assert!(refusals.iter().any(|line| line.contains("endpoints.broken.url")), "{refusals:#?}");
    assert!(refusals.iter().any(|line| line.contains("nowhere")), "{refusals:#?}");

    // The CLI reads the same file first (for the router's address and token): it refuses it
    // with the same errors and the config exit code, without bothering the router.
    let cli = run_cli(
        &host.config_dir(),
        &["reload", "-c", "switchyard.toml", "--url", &host.url("")],
        &[],
    );
    assert_eq!(cli.code, Some(78), "{}", cli.stderr);
    assert!(cli.stderr.contains("endpoints.broken.url"), "{}", cli.stderr);

    // The admin endpoint answers 422 with every error.
    let answer = client.post(host.url("/v1/admin/reload")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["outcome"], "refused");
    assert_eq!(answer["errors"].as_array().map(Vec::len), Some(2), "{answer}");

    let id = post_webhook(&client, &host, "hooks", &[], "{}").await.unwrap();
    let delivered = first.next(WAIT).await.expect("the old config still delivers");
    assert_eq!(delivered.header("webhook-id"), Some(id.as_str()));
    assert_eq!(
        host.metric("switchyard_config_reloads_total{outcome=\"refused\"}").await.unwrap(),
        2.0
    );
    assert_eq!(
        host.metric("switchyard_config_reloads_total{outcome=\"applied\"}").await.unwrap(),
        0.0
    );

    // Fixed, the file is applied through the CLI.
    write_config(&host, &base(&first));
    let cli = run_cli(
        &host.config_dir(),
        &["reload", "-c", "switchyard.toml", "--url", &host.url("")],
        &[],
    );
    assert_eq!(cli.code, Some(0), "{}", cli.stderr);
    assert_eq!(
        cli.stdout,
        "config reloaded: 1 route, 0 plugins; endpoints added: none; removed: none\n"
    );
}

async fn deliveries(host: &TestHost, endpoint: &str) -> Vec<Value> {
    let page: Value = reqwest::Client::new()
        .get(host.url(&format!("/v1/admin/deliveries?endpoint={endpoint}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoint_parks_its_pending_deliveries_and_adding_it_back_delivers_them() {
    let mut first = TestReceiver::start().await;
    // `flaky` fails once; its retry would come an hour later.
    let mut flaky = TestReceiver::scripted(vec![Reply::Status(503)], Reply::Status(200)).await;
    let with_flaky = format!(
        "{}\n[endpoints.flaky]\nurl = \"{}\"\nretry = {{ schedule = [\"1h\"] }}\n\n\
         [routes.to-flaky]\nfrom = [\"hooks\"]\nto = [\"flaky\"]\n",
        base(&first),
        flaky.url("/flaky")
    );
    let host = TestHost::start(&server_extra(), &with_flaky).await.unwrap();
    let client = reqwest::Client::new();
    let id = post_webhook(&client, &host, "hooks", &[], r#"{"order":7}"#).await.unwrap();
    assert!(flaky.next(WAIT).await.is_some(), "the first attempt fails");
    assert!(first.next(WAIT).await.is_some());

    write_config(&host, &base(&first));
    sighup(&host);
    wait_for_line(&host, "config reloaded", 1);
    let parked = deliveries(&host, "flaky").await;
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert_eq!(parked[0]["status"], "parked", "{parked:#?}");
    assert_eq!(parked[0]["event"], id.as_str());

    // An event while it is gone is not routed to it.
    post_webhook(&client, &host, "hooks", &[], "{}").await.unwrap();
    assert!(first.next(WAIT).await.is_some());

    write_config(&host, &with_flaky);
    sighup(&host);
    wait_for_line(&host, "config reloaded", 2);
    let resumed = flaky.next(WAIT).await.expect("the parked delivery is sent again at once");
    assert_eq!(resumed.header("webhook-id"), Some(id.as_str()));
    assert_eq!(&resumed.body[..], br#"{"order":7}"#);
    assert!(flaky.next(Duration::from_millis(500)).await.is_none(), "only that one");
    assert_eq!(
        host.metric("switchyard_config_reloads_total{outcome=\"applied\"}").await.unwrap(),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_needs_the_admin_token() {
    let first = TestReceiver::start().await;
    let host = TestHost::start(&server_extra(), &base(&first)).await.unwrap();
    let status =
        reqwest::Client::new().post(host.url("/v1/admin/reload")).send().await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The SDKs keep the config values a plugin reads for the life of an instance, which holds only
/// because a reload makes new instances: a warm plugin must answer with the new config at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_gives_a_warm_plugin_its_new_config() {
    let mut first = TestReceiver::start().await;
    let redact = |pointer: &str| {
        format!(
            "[plugins.redact]\npath = \"{}\"\ninstances = \"warm\"\n\
             config = {{ pointers = \"{pointer}\" }}\n\n",
            switchyard_e2e::plugin_wasm("redact").display()
        )
    };
    let routed =
        base(&first).replace("to = [\"first\"]", "plugins = [\"redact\"]\nto = [\"first\"]");
    let config = |pointer: &str| format!("{}{routed}", redact(pointer));
    let host = TestHost::start(&server_extra(), &config("/card")).await.unwrap();
    let client = reqwest::Client::new();
    let body = r#"{"card":"4111","name":"ada"}"#;

    // Enough events that the warm instances have read the config before the reload.
    for _ in 0..3 {
        post_webhook(&client, &host, "hooks", &[], body).await.unwrap();
        let delivered = first.next(WAIT).await.expect("delivered");
        assert_eq!(&delivered.body[..], br#"{"card":"[redacted]","name":"ada"}"#);
    }

    write_config(&host, &config("/name"));
    sighup(&host);
    wait_for_line(&host, "config reloaded", 1);
    for _ in 0..3 {
        post_webhook(&client, &host, "hooks", &[], body).await.unwrap();
        let delivered = first.next(WAIT).await.expect("delivered");
        assert_eq!(&delivered.body[..], br#"{"card":"4111","name":"[redacted]"}"#);
    }
}
