//! The audit log through the real binary: each state-changing admin action (create, rotate,
//! redrive, retry, disable, delete, and one that fails) leaves exactly one entry naming the
//! credential's role, its name, the client's address, the resource and the outcome; no entry
//! holds a secret; reads and refused requests leave none; the listing pages and filters; and
//! entries older than `server.audit_retention` are pruned.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_e2e::{Reply, TestHost, TestReceiver, post_webhook};

const TOKEN: &str = "audit-test-admin-token";
const WAIT: Duration = Duration::from_secs(20);

fn server(extra: &str) -> String {
    format!("admin_token = {{ value = \"{TOKEN}\" }}\n{extra}")
}

const CONFIG: &str =
    "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n";

async fn call(
    host: &TestHost,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    host.admin_call(method, path, body).await
}

async fn get(host: &TestHost, path: &str) -> Value {
    let (status, body) = call(host, Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn post(host: &TestHost, path: &str, body: Value) -> (StatusCode, Value) {
    call(host, Method::POST, path, Some(body)).await
}

/// Waits until the one delivery of `event` is in `status`.
async fn delivery_in(host: &TestHost, event: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = get(host, &format!("/v1/admin/deliveries?event={event}")).await;
        if let Some(delivery) = page["data"].as_array().and_then(|data| data.first())
            && delivery["status"] == status
        {
            return delivery.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no {status} delivery of {event}: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every entry of the audit log, newest first, read page by page (`limit` a page).
async fn whole_log(host: &TestHost, filter: &str, limit: u32) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/admin/audit?limit={limit}{filter}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = get(host, &path).await;
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return entries,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
            (text("action"), text("resource"), text("outcome"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_admin_action_leaves_one_entry_and_none_holds_a_secret() {
    // The first delivery fails (a dead letter); every later one succeeds.
    let mut receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    let host = TestHost::start(&server(""), CONFIG).await.unwrap();
    let started = get(&host, "/v1/admin/audit").await;
    assert_eq!(started["data"], json!([]), "reads leave no entry: {started}");

    let (status, created) = post(
        &host,
        "/v1/admin/endpoints",
        json!({"url": receiver.url("/hook"), "sources": ["app"], "retry": {"schedule": []}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    let (status, rotated) = post(
        &host,
        &format!("/v1/admin/endpoints/{id}/secret/rotate"),
        json!({"secret": "whsec_c2VjcmV0LWdpdmVuLWJ5LXRoZS1vcGVyYXRvcg==", "overlap": "0s"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();

    // A dead letter, redriven; then the delivered delivery retried by hand.
    let event = post_webhook(
        &reqwest::Client::new(),
        &host,
        "app",
        &[("content-type", "application/json")],
        json!({"type": "thing.happened"}).to_string(),
    )
    .await
    .unwrap();
    assert!(receiver.next(WAIT).await.is_some());
    delivery_in(&host, &event, "dead").await;
    let (status, redriven) =
        post(&host, "/v1/admin/dead-letters/redrive", json!({"endpoint": id})).await;
    assert_eq!(status, StatusCode::OK, "{redriven}");
    assert!(receiver.next(WAIT).await.is_some());
    let delivered = delivery_in(&host, &event, "delivered").await;
    let delivery = delivered["id"].to_string();
    let (status, retried) =
        post(&host, &format!("/v1/admin/deliveries/{delivery}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert!(receiver.next(WAIT).await.is_some());

    let (status, _) = post(&host, &format!("/v1/admin/endpoints/{id}/disable"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&host, Method::DELETE, &format!("/v1/admin/endpoints/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // A failed action is recorded with its error code; one without the token is not recorded.
    let (status, _) = call(&host, Method::DELETE, &format!("/v1/admin/endpoints/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = reqwest::Client::new()
        .delete(host.url("/v1/admin/endpoints/ep_unknown"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // Read back two at a time: the pages neither overlap nor skip.
    let entries = whole_log(&host, "", 2).await;
    let resource = format!("endpoint/{id}");
    let expected: Vec<(String, String, String)> = [
        ("endpoint.delete", resource.as_str(), "not_found"),
        ("endpoint.delete", &resource, "success"),
        ("endpoint.disable", &resource, "success"),
        ("delivery.retry", &format!("delivery/{delivery}"), "success"),
        ("dead_letters.redrive", &resource, "success"),
        ("endpoint.rotate", &resource, "success"),
        ("endpoint.create", &resource, "success"),
    ]
    .iter()
    .map(|(action, resource, outcome)| {
        ((*action).to_owned(), (*resource).to_owned(), (*outcome).to_owned())
    })
    .collect();
    assert_eq!(actions(&entries), expected, "one entry per action, newest first");
    for entry in &entries {
        assert_eq!(entry["role"], "admin", "{entry}");
        assert_eq!(entry["credential"], "server.admin_token", "{entry}");
        let remote = entry["remote"].as_str().unwrap_or_default();
        assert!(remote.starts_with("127.0.0.1:"), "the client's address: {entry}");
        assert!(entry["at"].as_u64().unwrap() > 0, "{entry}");
    }
    assert_eq!(entries[0]["status"], 404);
    assert_eq!(entries[1]["status"], 200);

    // No secret anywhere: neither signing key (nor its key bytes), nor the admin token.
    let text = serde_json::to_string(&entries).unwrap();
    for secret in [&first_secret, &second_secret] {
        let key = secret.strip_prefix("whsec_").unwrap();
        assert!(!text.contains(key), "a signing key in the audit log: {text}");
    }
    assert!(!text.contains(TOKEN), "the admin token in the audit log: {text}");

    // Filters: by action, by resource, and by time.
    let deletes = whole_log(&host, "&action=endpoint.delete", 50).await;
    assert_eq!(deletes.len(), 2, "{deletes:?}");
    let retries = whole_log(&host, &format!("&resource=delivery/{delivery}"), 50).await;
    assert_eq!(actions(&retries), expected[3..4].to_vec());
    let rotate_at = entries[5]["at"].as_u64().unwrap();
    let created_at = entries[6]["at"].as_u64().unwrap();
    let window =
        whole_log(&host, &format!("&since={created_at}&until={}", rotate_at + 1), 50).await;
    assert!(
        actions(&window).ends_with(&expected[5..]),
        "the window holds the create and the rotate: {window:?}"
    );
    let none = whole_log(&host, &format!("&until={created_at}"), 50).await;
    assert!(none.is_empty(), "nothing before the first action: {none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_older_than_the_audit_retention_are_pruned() {
    let host = TestHost::start(&server("audit_retention = \"5s\""), CONFIG).await.unwrap();
    let (status, _) = post(&host, "/v1/admin/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let entries = get(&host, "/v1/admin/audit").await;
    assert_eq!(
        actions(entries["data"].as_array().unwrap()),
        [("config.reload".to_owned(), "config".to_owned(), "success".to_owned())]
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let entries = get(&host, "/v1/admin/audit").await;
        if entries["data"] == json!([]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never pruned: {entries}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
