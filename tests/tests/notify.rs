//! Failure notifications as ordinary events, through the real binary: a 410, a dead letter, a
//! recovery and a storm of failures each reach an operations endpoint as a signed event of the
//! built-in source `switchyard`, routed by a plain route; a failing operations endpoint makes
//! no loop; the `to-slack` plugin reshapes them into a Slack message.

use std::time::Duration;

use serde_json::Value;
use switchyard_e2e::{
    ReceivedRequest, Reply, TestHost, TestReceiver, eventually_async, plugin_wasm, post_webhook,
    run_cli, verify_with_standardwebhooks,
};

/// The first Standard Webhooks test vector's secret: the operations endpoint's key.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "notify-admin-token";

/// An `app` source routed to the application endpoints `(id, url, extra lines)`, and the
/// `switchyard` source routed to the signed endpoint `ops` at `ops_url` (`ops_extra` lines).
fn config(endpoints: &[(&str, String, &str)], ops_url: &str, ops_extra: &str) -> String {
    let mut text = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[secrets]\nops-signing = {{ value = \"{SECRET}\" }}\n\n\
         [sources.app]\ntype = \"http\"\n\n\
         [endpoints.ops]\nurl = \"{ops_url}\"\nsecret = \"ops-signing\"\n{ops_extra}\n\n"
    );
    let ids: Vec<String> = endpoints.iter().map(|(id, _, _)| format!("\"{id}\"")).collect();
    for (id, url, extra) in endpoints {
        text.push_str(&format!("[endpoints.{id}]\nurl = \"{url}\"\n{extra}\n\n"));
    }
    text.push_str(&format!("[routes.app]\nfrom = [\"app\"]\nto = [{}]\n\n", ids.join(", ")));
    text.push_str("[routes.operations]\nfrom = [\"switchyard\"]\nto = [\"ops\"]\n");
    text
}

async fn start(server_extra: &str, config: &str) -> TestHost {
    let server = format!("admin_token = {{ value = \"{TOKEN}\" }}\n{server_extra}");
    TestHost::start(&server, config).await.unwrap()
}

async fn admin_get(host: &TestHost, path: &str) -> Value {
    let response =
        reqwest::Client::new().get(host.url(path)).bearer_auth(TOKEN).send().await.unwrap();
    assert!(response.status().is_success(), "GET {path}: {}", response.status());
    response.json().await.unwrap()
}

/// Stored events of the `switchyard` source, with `event_type` when given.
async fn operational_events(host: &TestHost, event_type: Option<&str>) -> Vec<Value> {
    let filter = event_type.map(|name| format!("&type={name}")).unwrap_or_default();
    let path = format!("/v1/admin/events?source=switchyard&limit=500{filter}");
    admin_get(host, &path).await["data"].as_array().unwrap().clone()
}

/// The next request at the operations endpoint, its body parsed.
async fn next_notice(ops: &mut TestReceiver) -> (ReceivedRequest, Value) {
    let request = ops.next(WAIT).await.expect("an operational event arrives");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    (request, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_reaches_the_operations_endpoint_as_a_signed_endpoint_disabled_event() {
    let gone = TestReceiver::scripted(vec![Reply::Status(410)], Reply::Status(200)).await;
    let mut ops = TestReceiver::start().await;
    let host = start("", &config(&[("shop", gone.url("/"), "")], &ops.url("/ops"), "")).await;
    post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();

    let (request, body) = next_notice(&mut ops).await;
    assert_eq!(body["type"], "switchyard.endpoint.disabled");
    assert_eq!(body["endpoint"]["id"], "shop");
    assert_eq!(body["endpoint"]["admin"], "/v1/admin/endpoints/shop");
    assert_eq!(body["last_status"], 410);
    assert_eq!(body["last_error"], "HTTP 410");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(verify_with_standardwebhooks(SECRET, std::slice::from_ref(&request)), [Ok(())]);
    // Stored like any event, under the built-in source, with the id it was signed with.
    let stored = operational_events(&host, None).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["type"], "switchyard.endpoint.disabled");
    assert_eq!(Some(stored[0]["id"].as_str().unwrap()), request.header("webhook-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_reaches_the_operations_endpoint() {
    let failing = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    let mut ops = TestReceiver::start().await;
    let extra = "retry = { schedule = [\"10ms\"] }";
    let host = start("", &config(&[("shop", failing.url("/"), extra)], &ops.url("/"), "")).await;
    let event = post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();

    let (request, body) = next_notice(&mut ops).await;
    assert_eq!(body["type"], "switchyard.delivery.dead_lettered");
    assert_eq!(body["endpoint"]["id"], "shop");
    assert_eq!(body["delivery"]["event"], event.as_str());
    assert_eq!(body["delivery"]["attempts"], 2);
    assert_eq!(body["last_error"], "HTTP 500");
    let delivery = body["delivery"]["id"].as_str().unwrap();
    assert_eq!(body["delivery"]["admin"], format!("/v1/admin/deliveries/{delivery}"));
    // The link leads to the dead letter.
    let detail = admin_get(&host, &format!("/v1/admin/deliveries/{delivery}")).await;
    assert_eq!(detail["status"], "dead");
    assert_eq!(detail["event"], event.as_str());
    assert_eq!(verify_with_standardwebhooks(SECRET, &[request]), [Ok(())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_the_threshold_then_recovering_is_announced_both_ways() {
    let failures = vec![Reply::Status(503); switchyard::notify::FAILING_AFTER as usize];
    let flaky = TestReceiver::scripted(failures, Reply::Status(200)).await;
    let mut ops = TestReceiver::start().await;
    let extra =
        "retry = { schedule = [\"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\"] }";
    let host = start("", &config(&[("shop", flaky.url("/"), extra)], &ops.url("/"), "")).await;
    post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();

    let (_, failing) = next_notice(&mut ops).await;
    assert_eq!(failing["type"], "switchyard.endpoint.failing");
    assert_eq!(failing["consecutive_failures"], switchyard::notify::FAILING_AFTER);
    assert_eq!(failing["last_status"], 503);
    let (_, recovered) = next_notice(&mut ops).await;
    assert_eq!(recovered["type"], "switchyard.endpoint.recovered");
    assert_eq!(recovered["endpoint"]["id"], "shop");
    assert_eq!(recovered["consecutive_failures"], switchyard::notify::FAILING_AFTER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_failures_makes_one_failing_event_per_window() {
    const STORM: usize = 300;
    let failing = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    // Answers 410 once the storm is over: its notification comes after all of the storm's.
    let sentinel = TestReceiver::scripted(Vec::new(), Reply::Status(410)).await;
    let mut ops = TestReceiver::start().await;
    // No breaker: every failure becomes a dead letter at once instead of waiting for a probe.
    let endpoints = [
        (
            "shop",
            failing.url("/"),
            "retry = { schedule = [] }\nmax_in_flight = 32\nbreaker = \"off\"",
        ),
        ("sentinel", sentinel.url("/"), ""),
    ];
    let mut text = config(&endpoints[..1], &ops.url("/"), "");
    // The sentinel gets its own source so that the storm does not reach it.
    text.push_str(&format!(
        "\n[sources.late]\ntype = \"http\"\n\n[endpoints.sentinel]\nurl = \"{}\"\n\n\
         [routes.late]\nfrom = [\"late\"]\nto = [\"sentinel\"]\n",
        endpoints[1].1
    ));
    let host = start("notify_every = \"1h\"", &text).await;
    let client = reqwest::Client::new();
    for _ in 0..STORM {
        post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    }
    let dead = eventually_async(WAIT, || async {
        let page = admin_get(&host, "/v1/admin/dead-letters?endpoint=shop&limit=500").await;
        let count = page["data"].as_array().unwrap().len();
        (count == STORM).then_some(count)
    });
    assert_eq!(dead.await, Some(STORM), "every delivery of the storm became a dead letter");
    post_webhook(&client, &host, "late", &[], "{}").await.unwrap();

    // Every notification is in the store once the sentinel's is at the operations endpoint.
    let mut received = Vec::new();
    loop {
        let (_, body) = next_notice(&mut ops).await;
        let done = body["type"] == "switchyard.endpoint.disabled";
        received.push(body);
        if done {
            break;
        }
    }
    let failing = operational_events(&host, Some("switchyard.endpoint.failing")).await;
    let dead_lettered = operational_events(&host, Some("switchyard.delivery.dead_lettered")).await;
    assert_eq!(failing.len(), 1, "{STORM} failures, one window: one failing event");
    assert_eq!(dead_lettered.len(), 1, "{STORM} dead letters, one window: one event");
    assert_eq!(operational_events(&host, None).await.len(), 3);
    let first = received.iter().find(|body| body["type"] == "switchyard.endpoint.failing");
    assert_eq!(first.unwrap()["consecutive_failures"], switchyard::notify::FAILING_AFTER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operations_endpoint_makes_no_loop() {
    let first = TestReceiver::scripted(Vec::new(), Reply::Status(410)).await;
    let second = TestReceiver::scripted(Vec::new(), Reply::Status(410)).await;
    let mut ops = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    // Three attempts per operational event: more failures in a row than the threshold once
    // two events have failed, and each ends as a dead letter.
    let ops_extra = "retry = { schedule = [\"10ms\", \"10ms\"] }";
    let endpoints = [("first", first.url("/"), ""), ("second", second.url("/"), "")];
    let mut text = config(&endpoints[..1], &ops.url("/"), ops_extra);
    text.push_str(&format!(
        "\n[sources.late]\ntype = \"http\"\n\n[endpoints.second]\nurl = \"{}\"\n\n\
         [routes.late]\nfrom = [\"late\"]\nto = [\"second\"]\n",
        endpoints[1].1
    ));
    let host = start("notify_every = \"0s\"", &text).await;
    let client = reqwest::Client::new();

    post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    for _ in 0..3 {
        let (_, body) = next_notice(&mut ops).await;
        assert_eq!(body["type"], "switchyard.endpoint.disabled");
        assert_eq!(body["endpoint"]["id"], "first");
    }
    let dead = eventually_async(WAIT, || async {
        let page = admin_get(&host, "/v1/admin/dead-letters?endpoint=ops").await;
        (page["data"].as_array().unwrap().len() == 1).then_some(())
    });
    assert!(dead.await.is_some(), "the operational event became a dead letter");
    // A later notification is stored after anything the first one's failures could raise.
    post_webhook(&client, &host, "late", &[], "{}").await.unwrap();
    for _ in 0..3 {
        let (_, body) = next_notice(&mut ops).await;
        assert_eq!(body["endpoint"]["id"], "second");
    }
    let dead = eventually_async(WAIT, || async {
        let page = admin_get(&host, "/v1/admin/dead-letters?endpoint=ops").await;
        (page["data"].as_array().unwrap().len() == 2).then_some(())
    });
    assert!(dead.await.is_some(), "the second operational event became a dead letter");
    // Six failed attempts and two dead letters at `ops`, with no storm guard: none of them
    // raised an operational event, only the two endpoints that answered 410 did.
    let stored = operational_events(&host, None).await;
    let types: Vec<&str> = stored.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["switchyard.endpoint.disabled"; 2]);
    assert!(ops.next(Duration::from_millis(300)).await.is_none(), "nothing more reaches `ops`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_to_slack_plugin_reshapes_a_notification_into_a_signed_slack_message() {
    let gone = TestReceiver::scripted(vec![Reply::Status(410)], Reply::Status(200)).await;
    let mut slack = TestReceiver::start().await;
    let plugin = format!(
        "[plugins.to-slack]\npath = \"{}\"\nconfig = {{ admin_url = \"https://switchyard.example.com\" }}\n\n",
        plugin_wasm("to-slack").display()
    );
    let ops_extra = "transform = \"to-slack\"";
    let text = plugin + &config(&[("shop", gone.url("/"), "")], &slack.url("/"), ops_extra);
    let host = start("", &text).await;
    post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();

    let (request, message) = next_notice(&mut slack).await;
    assert_eq!(
        message["text"],
        "Switchyard: endpoint `shop` was disabled; its deliveries are parked"
    );
    let details = message["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(details.contains("Last error: `HTTP 410`"), "{details}");
    assert!(
        details.contains("<https://switchyard.example.com/v1/admin/endpoints/shop|endpoint shop>"),
        "{details}"
    );
    // Reshaped, and signed over the new body.
    assert_eq!(verify_with_standardwebhooks(SECRET, &[request]), [Ok(())]);
}

#[test]
fn routes_test_traces_an_operational_event_through_the_routes() {
    let directory = tempfile::tempdir().unwrap();
    let text = "[endpoints.ops]\nurl = \"https://ops.example.com/hook\"\n\n\
                [routes.operations]\nfrom = [\"switchyard\"]\ntypes = [\"switchyard.endpoint.*\"]\nto = [\"ops\"]\n";
    std::fs::write(directory.path().join("switchyard.toml"), text).unwrap();
    let event = r#"{"source":"switchyard","type":"switchyard.endpoint.failing","body_json":{}}"#;
    std::fs::write(directory.path().join("failing.json"), event).unwrap();
    let arguments = ["routes", "test", "-c", "switchyard.toml", "--event", "failing.json"];
    let output = run_cli(directory.path(), &arguments, &[]);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    assert!(output.stdout.contains("operations: matched"), "{}", output.stdout);
    assert!(output.stdout.contains("1 delivery"), "{}", output.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opening_and_closing_is_announced() {
    // Two failures open the breaker; the probe after its cooldown succeeds and closes it.
    let flaky = TestReceiver::scripted(vec![Reply::Status(500); 2], Reply::Status(200)).await;
    let mut ops = TestReceiver::start().await;
    let extra = "retry = { schedule = [\"10ms\", \"10ms\", \"10ms\"] }\n\
                 breaker = { failures = 2, cooldown = \"300ms\" }";
    let host = start("", &config(&[("shop", flaky.url("/"), extra)], &ops.url("/"), "")).await;
    post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();

    let mut seen = Vec::new();
    while !seen.contains(&"switchyard.breaker.closed".to_owned()) {
        let (request, body) = next_notice(&mut ops).await;
        assert_eq!(verify_with_standardwebhooks(SECRET, &[request]), [Ok(())]);
        if body["type"] == "switchyard.breaker.opened" {
            assert_eq!(body["endpoint"]["id"], "shop");
            assert_eq!(body["cooldown_ms"], 300);
        }
        seen.push(body["type"].as_str().unwrap().to_owned());
    }
    let opened = seen.iter().position(|kind| kind == "switchyard.breaker.opened");
    let closed = seen.iter().position(|kind| kind == "switchyard.breaker.closed");
    assert!(opened.is_some() && opened < closed, "opened, then closed: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_past_its_rate_limit_is_announced_once_per_window() {
    let mut ops = TestReceiver::start().await;
    let receiver = TestReceiver::start().await;
    let text = config(&[("shop", receiver.url("/"), "")], &ops.url("/"), "").replace(
        "[sources.app]\ntype = \"http\"\n",
        "[sources.app]\ntype = \"http\"\nrate_limit = { rate = \"1/h\", burst = 1 }\n",
    );
    let host = start("", &text).await;
    let client = reqwest::Client::new();
    post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    let mut refused = 0;
    for _ in 0..20 {
        let response = client.post(host.url("/webhooks/app")).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 429);
        refused += 1;
    }

    let (request, body) = next_notice(&mut ops).await;
    assert_eq!(body["type"], "switchyard.source.rate_limited");
    assert_eq!(body["source"]["id"], "app");
    assert_eq!(body["rate"], "1/h");
    assert_eq!(verify_with_standardwebhooks(SECRET, &[request]), [Ok(())]);
    // Twenty refusals, one notification (the storm guard holds the rest for the window).
    let stored = operational_events(&host, Some("switchyard.source.rate_limited")).await;
    assert_eq!((refused, stored.len()), (20, 1));
}
