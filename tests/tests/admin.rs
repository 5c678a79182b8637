//! The admin API through the real binary: subscribe → deliver → verify → log → rotate;
//! disable/enable and dead letters/redrive; validation, auth, read-only config endpoints and
//! persistence; cursor pagination under inserts; the committed OpenAPI document; and a
//! schema-driven fuzz pass (schemathesis, from PyPI) against that document.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_e2e::{
    Reply, TestHost, TestReceiver, post_webhook, run_cli, verify_with_standardwebhooks,
    workspace_root,
};

const TOKEN: &str = "test-admin-token";
const SERVER: &str = "admin_token = { value = \"test-admin-token\" }";
const WAIT: Duration = Duration::from_secs(20);

/// Two sources, and one config endpoint with its route (to see config endpoints listed
/// read-only beside dynamic ones).
fn config(config_endpoint_url: &str) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [sources.billing]\ntype = \"http\"\n\n[endpoints.audit]\nurl = \"{config_endpoint_url}\"\n\n\
         [routes.audit]\nfrom = [\"billing\"]\nto = [\"audit\"]\n"
    )
}

struct Admin {
    client: reqwest::Client,
}

impl Admin {
    fn new() -> Self {
        Self { client: reqwest::Client::new() }
    }

    async fn call(
        &self,
        host: &TestHost,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, host.url(path)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, host: &TestHost, path: &str) -> Value {
        let (status, body) = self.call(host, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn post(&self, host: &TestHost, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(host, Method::POST, path, Some(body)).await
    }
}

async fn publish(host: &TestHost, source: &str, event_type: &str) -> String {
    let body = json!({"type": event_type, "n": 1}).to_string();
    post_webhook(
        &reqwest::Client::new(),
        host,
        source,
        &[("content-type", "application/json")],
        body,
    )
    .await
    .unwrap()
}

fn signatures(request: &switchyard_e2e::ReceivedRequest) -> Vec<String> {
    let header = request.header("webhook-signature").unwrap_or_default();
    header.split(' ').filter(|entry| !entry.is_empty()).map(str::to_owned).collect()
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The next request carrying `event`, skipping others (repeats of earlier deliveries: a
/// SIGKILL may come between a delivery and its record, and at least once means it is sent
/// again).
async fn next_of(receiver: &mut TestReceiver, event: &str) -> switchyard_e2e::ReceivedRequest {
    loop {
        let request = receiver.next(WAIT).await.unwrap_or_else(|| panic!("{event} never arrived"));
        if request.header("webhook-id") == Some(event) {
            return request;
        }
    }
}

/// Waits until the admin API shows the delivery of `event` in `status`.
async fn delivery_in(admin: &Admin, host: &TestHost, event: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = admin.get(host, &format!("/v1/admin/deliveries?event={event}")).await;
        let first = page["data"].as_array().and_then(|data| data.first());
        if let Some(delivery) = first.filter(|delivery| delivery["status"] == status) {
            return delivery.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no {status} delivery of {event}: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_deliver_verify_log_then_rotate_with_an_overlap() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();

    let (status, created) = admin
        .post(
            &host,
            "/v1/admin/subscriptions",
            json!({"url": receiver.url("/hook"), "types": ["order.*"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ep_") && secret.starts_with("whsec_"), "{created}");
    // The secret is shown once: never listed.
    let listed = admin.get(&host, &format!("/v1/admin/subscriptions/{id}")).await;
    assert!(!listed.to_string().contains(&secret), "{listed}");

    // An event of a subscribed type is delivered, signed with the secret the subscriber got;
    // one of another type is not.
    let skipped = publish(&host, "app", "invoice.paid").await;
    let event = publish(&host, "app", "order.created").await;
    let request = receiver.next(WAIT).await.expect("the subscription gets the event");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("webhook-id"), Some(event.as_str()));
    assert_eq!(verify_with_standardwebhooks(&secret, &[request]), vec![Ok(())]);

    // The log shows the delivery and its attempt.
    let delivery = delivery_in(&admin, &host, &event, "delivered").await;
    assert_eq!(delivery["endpoint"], id.as_str());
    assert_eq!(delivery["attempts"], 1);
    let attempts =
        admin.get(&host, &format!("/v1/admin/deliveries/{}/attempts", delivery["id"])).await;
    let attempts = attempts["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], 200);
    assert!(attempts[0]["error"].is_null());
    let skipped_deliveries =
        admin.get(&host, &format!("/v1/admin/deliveries?event={skipped}")).await;
    assert_eq!(skipped_deliveries["data"], json!([]));
    let event_detail = admin.get(&host, &format!("/v1/admin/events/{event}?body=true")).await;
    assert_eq!(event_detail["type"], "order.created");
    assert_eq!(event_detail["body_encoding"], "utf8");
    assert!(event_detail["body"].as_str().unwrap().contains("order.created"));

    // Rotation: during the overlap both keys sign; after it only the new one.
    let (status, rotated) = admin
        .post(&host, &format!("/v1/admin/endpoints/{id}/secret/rotate"), json!({"overlap": "2s"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let overlap_ends = rotated["previous_expire_at"].as_u64().unwrap();

    publish(&host, "app", "order.updated").await;
    let during = receiver.next(WAIT).await.expect("delivered during the overlap");
    assert!(now_millis() < overlap_ends, "the overlap ended before the check; machine too slow");
    assert_eq!(signatures(&during).len(), 2, "{:?}", during.headers);
    let during = std::slice::from_ref(&during);
    assert_eq!(verify_with_standardwebhooks(&new_secret, during), vec![Ok(())]);
    assert_eq!(verify_with_standardwebhooks(&secret, during), vec![Ok(())]);

    // The overlap ends at a known instant; nothing to await but the clock.
    let left = overlap_ends.saturating_sub(now_millis()) + 50;
    tokio::time::sleep(Duration::from_millis(left)).await;
    publish(&host, "app", "order.shipped").await;
    let after = receiver.next(WAIT).await.expect("delivered after the overlap");
    assert_eq!(signatures(&after).len(), 1, "{:?}", after.headers);
    let after = std::slice::from_ref(&after);
    assert_eq!(verify_with_standardwebhooks(&new_secret, after), vec![Ok(())]);
    assert!(verify_with_standardwebhooks(&secret, after)[0].is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_endpoints_park_enabled_ones_deliver_and_dead_letters_redrive() {
    // The first request fails; every later one succeeds.
    let mut receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();
    let (status, created) = admin
        .post(
            &host,
            "/v1/admin/endpoints",
            json!({"url": receiver.url("/hook"), "sources": ["app"], "retry": {"schedule": []}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["endpoint"]["origin"], "dynamic");

    // One attempt only (an empty schedule), and it fails: a dead letter.
    let first = publish(&host, "app", "thing.happened").await;
    assert!(receiver.next(WAIT).await.is_some());
    let dead = delivery_in(&admin, &host, &first, "dead").await;
    assert_eq!(dead["last_error"], "HTTP 500");
    let letters = admin.get(&host, &format!("/v1/admin/dead-letters?endpoint={id}")).await;
    assert_eq!(letters["data"][0]["event"], first.as_str(), "{letters}");
    let (status, redriven) =
        admin.post(&host, "/v1/admin/dead-letters/redrive", json!({"endpoint": id})).await;
    assert_eq!((status, redriven["deliveries"].as_u64()), (StatusCode::OK, Some(1)), "{redriven}");
    let again = receiver.next(WAIT).await.expect("the redriven delivery arrives");
    assert_eq!(again.header("webhook-id"), Some(first.as_str()));
    delivery_in(&admin, &host, &first, "delivered").await;

    // Disabled: new deliveries are parked and nothing is sent.
    let (status, disabled) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["endpoint"]["disabled"], true);
    let parked = publish(&host, "app", "thing.happened").await;
    let parked_delivery = delivery_in(&admin, &host, &parked, "parked").await;
    let retry = format!("/v1/admin/deliveries/{}/retry", parked_delivery["id"]);
    let (status, refused) = admin.post(&host, &retry, json!({})).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::CONFLICT, Some("endpoint_disabled"))
    );
    assert!(receiver.drain().is_empty());

    // Re-enabled: the parked delivery goes out.
    let (status, enabled) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/enable"), json!({})).await;
    assert_eq!((status, enabled["deliveries"].as_u64()), (StatusCode::OK, Some(1)), "{enabled}");
    let resumed = receiver.next(WAIT).await.expect("the parked delivery arrives");
    assert_eq!(resumed.header("webhook-id"), Some(parked.as_str()));
    let delivered = delivery_in(&admin, &host, &parked, "delivered").await;

    // A manual retry of a delivered delivery sends it once more.
    let (status, retried) = admin
        .post(&host, &format!("/v1/admin/deliveries/{}/retry", delivered["id"]), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    let resent = receiver.next(WAIT).await.expect("the retried delivery arrives");
    assert_eq!(resent.header("webhook-id"), Some(parked.as_str()));
    let delivered = delivery_in(&admin, &host, &parked, "delivered").await;
    let log = admin.get(&host, &format!("/v1/admin/deliveries/{}", delivered["id"])).await;
    let attempts = log["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{log}");
    assert!(attempts.iter().all(|attempt| attempt["status"] == 200), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_and_enabling_during_an_attempt_does_not_send_the_delivery_twice() {
    // The first answer takes a while: the attempt is under way through disable and enable.
    let slow = Reply::Delayed(Duration::from_millis(1500), 200);
    let mut receiver = TestReceiver::scripted(vec![slow], Reply::Status(200)).await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();
    let (_, created) =
        admin.post(&host, "/v1/admin/endpoints", json!({"url": receiver.url("/hook")})).await;
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let first = publish(&host, "app", "thing.happened").await;
    let arrived = receiver.next(WAIT).await.expect("the first attempt arrives");
    assert_eq!(arrived.header("webhook-id"), Some(first.as_str()));
    let (status, _) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, enabled) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/enable"), json!({})).await;
    assert_eq!((status, enabled["deliveries"].as_u64()), (StatusCode::OK, Some(1)), "{enabled}");
    // The attempt under way decides: it succeeds, and the delivery is not sent again. A second
    // send would come at once on re-enabling, before the next event.
    delivery_in(&admin, &host, &first, "delivered").await;
    let second = publish(&host, "app", "thing.happened").await;
    let next = receiver.next(WAIT).await.expect("the second event arrives");
    assert_eq!(next.header("webhook-id"), Some(second.as_str()), "the first was sent twice");
    let delivery = delivery_in(&admin, &host, &first, "delivered").await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_admin_token_there_is_no_admin_api() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start_without_admin("", &config(&receiver.url("/audit"))).await.unwrap();
    for path in ["/v1/admin/endpoints", "/v1/admin/openapi.json"] {
        let response =
            reqwest::Client::new().get(host.url(path)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_resolving_to_a_non_public_address_is_refused_at_creation() {
    // No `allow_networks` here: loopback is not allowed. Only a name lookup happens; nothing
    // is sent anywhere.
    let config = "[sources.app]\ntype = \"http\"\n";
    let host = TestHost::start(SERVER, config).await.unwrap();
    let (status, refused) = Admin::new()
        .post(&host, "/v1/admin/subscriptions", json!({"url": "http://localhost:9/hook"}))
        .await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url"))
    );
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("`localhost` resolves to") && detail.contains("loopback"), "{detail}");
    let listed = Admin::new().get(&host, "/v1/admin/subscriptions").await;
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_config_endpoints_are_read_only_and_dynamic_ones_survive_restarts() {
    let mut receiver = TestReceiver::start().await;
    let mut host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();

    // No token, a wrong token: 401; the document too.
    let client = reqwest::Client::new();
    for path in ["/v1/admin/endpoints", "/v1/admin/openapi.json"] {
        let response = client.get(host.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = client.get(host.url(path)).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    // Every problem at once, each naming its field; SSRF rules at creation (the IPv6 loopback
    // is not allow-listed here), nothing created.
    let (status, refused) = admin
        .post(
            &host,
            "/v1/admin/endpoints",
            json!({
                "url": "http://[::1]:9/hook",
                "types": [""],
                "sources": ["nope"],
                "headers": {"webhook-signature": "forged"},
                "max_in_flight": 0,
                "timeout": "soon",
                "filter": "body.amount >",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "url",
        "types[0]",
        "sources[0]",
        "headers.webhook-signature",
        "max_in_flight",
        "timeout",
        "filter",
    ] {
        assert!(fields.contains(&field), "{field} not named: {refused}");
    }
    assert!(refused["detail"].as_str().unwrap().contains("loopback"), "{refused}");
    let (status, wrong_type) = admin.post(&host, "/v1/admin/endpoints", json!({"url": 5})).await;
    assert_eq!(
        (status, wrong_type["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url"))
    );
    let (status, unknown) = admin
        .post(&host, "/v1/admin/subscriptions", json!({"url": receiver.url("/x"), "colour": "red"}))
        .await;
    assert_eq!(
        (status, unknown["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("colour"))
    );
    let (status, missing) =
        admin.post(&host, "/v1/admin/subscriptions", json!({"types": []})).await;
    assert_eq!(
        (status, missing["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url"))
    );
    let (status, bad_limit) =
        admin.call(&host, Method::GET, "/v1/admin/events?limit=0", None).await;
    assert_eq!(
        (status, bad_limit["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );

    // Config endpoints are listed read-only beside dynamic ones.
    let (status, created) = admin
        .post(
            &host,
            "/v1/admin/endpoints",
            json!({"url": receiver.url("/dyn"), "types": ["a.*"], "headers": {"X-Tenant": "acme"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["endpoint"]["headers"], json!({"x-tenant": "acme"}));
    let listed = admin.get(&host, "/v1/admin/endpoints").await;
    let origins: Vec<(String, String)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_owned(), e["origin"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(origins, vec![("audit".into(), "config".into()), (id.clone(), "dynamic".into())]);
    let first = admin.get(&host, "/v1/admin/endpoints?limit=1").await;
    assert_eq!(first["data"][0]["id"], "audit");
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second = admin.get(&host, &format!("/v1/admin/endpoints?limit=1&cursor={cursor}")).await;
    assert_eq!(second["data"][0]["id"], id.as_str());
    assert!(second["next_cursor"].is_null(), "{second}");
    let (status, read_only) =
        admin.call(&host, Method::DELETE, "/v1/admin/endpoints/audit", None).await;
    assert_eq!((status, read_only["code"].as_str()), (StatusCode::CONFLICT, Some("read_only")));
    let (status, _) = admin.call(&host, Method::GET, "/v1/admin/endpoints/ep_nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Changed settings take effect for the next delivery.
    let (status, replaced) = admin
        .call(
            &host,
            Method::PUT,
            &format!("/v1/admin/endpoints/{id}"),
            Some(json!({"url": receiver.url("/moved"), "types": ["a.*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    publish(&host, "app", "a.one").await;
    assert_eq!(receiver.next(WAIT).await.expect("delivered").path, "/moved");

    // Dynamic endpoints live in the store: after a restart they still deliver.
    host.restart().await.unwrap();
    let after = admin.get(&host, &format!("/v1/admin/endpoints/{id}")).await;
    assert_eq!(after["url"], receiver.url("/moved"));
    let event = publish(&host, "app", "a.two").await;
    assert_eq!(next_of(&mut receiver, &event).await.path, "/moved");

    // Deleted: no more deliveries, none of its old ones sent again, and it is gone after a
    // restart too.
    let delivered = delivery_in(&admin, &host, &event, "delivered").await;
    let (status, deleted) =
        admin.call(&host, Method::DELETE, &format!("/v1/admin/endpoints/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let retry = format!("/v1/admin/deliveries/{}/retry", delivered["id"]);
    let (status, refused) = admin.post(&host, &retry, json!({})).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("endpoint_gone")));
    let unrouted = publish(&host, "app", "a.three").await;
    let none = admin.get(&host, &format!("/v1/admin/deliveries?event={unrouted}")).await;
    assert_eq!(none["data"], json!([]));
    host.restart().await.unwrap();
    let (status, _) =
        admin.call(&host, Method::GET, &format!("/v1/admin/endpoints/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pages_neither_skip_nor_repeat_when_events_arrive_between_pages() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();
    let mut published = Vec::new();
    for _ in 0..7 {
        published.push(publish(&host, "app", "page.test").await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/admin/events?source=app&limit=3&cursor={cursor}"),
            None => "/v1/admin/events?source=app&limit=3".to_owned(),
        };
        let page = admin.get(&host, &path).await;
        seen.extend(
            page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        // New events between pages belong before the first page, not in the next one.
        publish(&host, "app", "page.test").await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    published.reverse();
    assert_eq!(seen, published, "newest first, each once");
    let (status, refused) =
        admin.call(&host, Method::GET, "/v1/admin/events?cursor=zzz", None).await;
    assert_eq!(
        (status, refused["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_openapi_document_matches_the_handlers() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    let committed_path = workspace_root().join("docs/admin-openapi.json");
    let committed = std::fs::read_to_string(&committed_path).unwrap();
    let printed = run_cli(&host.config_dir(), &["openapi"], &[]);
    assert_eq!(
        printed.stdout, committed,
        "docs/admin-openapi.json drifted from the handlers: regenerate it with \
         `cargo run -p switchyard -- openapi > docs/admin-openapi.json`"
    );
    let served = Admin::new().get(&host, "/v1/admin/openapi.json").await;
    assert_eq!(served, serde_json::from_str::<Value>(&committed).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_driven_fuzz_pass_finds_no_server_error_and_no_answer_off_the_schema() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(SERVER, &config(&receiver.url("/audit"))).await.unwrap();
    // Some data for the operations that read by id.
    let event = publish(&host, "billing", "invoice.paid").await;
    delivery_in(&Admin::new(), &host, &event, "delivered").await;
    let schemathesis = workspace_root().join(".tools/venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "`{}` is missing: run `cargo xtask setup`",
        schemathesis.display()
    );
    let report = tempfile::tempdir().unwrap();
    let output = Command::new(schemathesis)
        .arg("run")
        .arg(host.url("/v1/admin/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "1", "--no-color", "--workers", "1"])
        .args(["--report-dir", &report.path().display().to_string()])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(report.path())
        .output()
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(!host.logs.contains("panicked"), "the router panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_test_event_goes_to_that_endpoint_alone_parks_while_disabled_and_is_audited() {
    let mut receiver = TestReceiver::start().await;
    let server = format!("{SERVER}\nviewer_token = {{ value = \"test-viewer-token\" }}");
    let host = TestHost::start(&server, &config(&receiver.url("/audit"))).await.unwrap();
    let admin = Admin::new();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let input = json!({"url": receiver.url("/hook"), "sources": ["app"], "secret": secret});
    let (status, created) = admin.post(&host, "/v1/admin/endpoints", input).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();

    // A config endpoint: one delivery, to it alone, though no route sends it such events.
    let (status, sent) = admin.post(&host, "/v1/admin/endpoints/audit/test", json!({})).await;
    assert_eq!(
        (status, sent["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending")),
        "{sent}"
    );
    let event = sent["event"].as_str().unwrap().to_owned();
    let request = next_of(&mut receiver, &event).await;
    assert_eq!(request.path, "/audit");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        (body["type"].as_str(), body["endpoint"].as_str()),
        (Some("switchyard.endpoint.test"), Some("audit"))
    );
    let delivered = delivery_in(&admin, &host, &event, "delivered").await;
    assert_eq!(
        (delivered["id"].clone(), delivered["endpoint"].as_str()),
        (sent["delivery"].clone(), Some("audit"))
    );
    let all = admin.get(&host, &format!("/v1/admin/deliveries?event={event}")).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1, "{all}");
    let stored = admin.get(&host, &format!("/v1/admin/events/{event}")).await;
    assert_eq!(
        (stored["source"].as_str(), stored["type"].as_str()),
        (Some("switchyard"), Some("switchyard.endpoint.test")),
        "{stored}"
    );

    // A dynamic endpoint: signed with its own secret.
    let (status, sent) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/test"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let event = sent["event"].as_str().unwrap().to_owned();
    let request = next_of(&mut receiver, &event).await;
    assert_eq!(request.path, "/hook");
    assert_eq!(verify_with_standardwebhooks(secret, &[request]), [Ok(())]);

    // Disabled: the test delivery is made parked, as any other, and goes out once enabled.
    let (status, _) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, sent) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/test"), json!({})).await;
    assert_eq!((status, sent["status"].as_str()), (StatusCode::ACCEPTED, Some("parked")), "{sent}");
    assert!(sent["detail"].as_str().unwrap().contains("disabled"), "{sent}");
    let parked = sent["event"].as_str().unwrap().to_owned();
    delivery_in(&admin, &host, &parked, "parked").await;
    let (status, _) =
        admin.post(&host, &format!("/v1/admin/endpoints/{id}/enable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    next_of(&mut receiver, &parked).await;
    delivery_in(&admin, &host, &parked, "delivered").await;

    // Unknown: 404. A viewer: 403, and nothing is stored.
    let (status, _) = admin.post(&host, "/v1/admin/endpoints/nobody/test", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let before =
        admin.get(&host, "/v1/admin/events?limit=500").await["data"].as_array().unwrap().len();
    let viewer = reqwest::Client::new()
        .post(host.url("/v1/admin/endpoints/audit/test"))
        .bearer_auth("test-viewer-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(viewer.status(), StatusCode::FORBIDDEN);
    let after =
        admin.get(&host, "/v1/admin/events?limit=500").await["data"].as_array().unwrap().len();
    assert_eq!(before, after, "a refused test stores no event");
    let audit = admin.get(&host, "/v1/admin/audit?action=endpoint.test").await;
    let entries = audit["data"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "three sent and the 404, not the viewer's: {audit}");
    assert!(entries.iter().any(|entry| entry["resource"] == "endpoint/audit"), "{audit}");
}
