//! TLS to endpoints through the real binary: a receiver on 127.0.0.1 that demands a client
//! certificate from a private CA gets deliveries from an endpoint with `tls.client_cert`; one
//! without it fails with the reason recorded in its attempt; without `ca` the same receiver is
//! untrusted. The same settings through the admin API, with the key sealed at rest.

mod egress_support;

use std::time::Duration;

use base64::Engine;
use egress_support::{TestPki, TlsReceiver, any_file_holds};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::event::EventId;
use switchyard_e2e::{StoredDelivery, TestHost, eventually_async, post_webhook};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "egress-admin-token";

fn tls_line(pki: &TestPki, ca: bool, client_cert: bool) -> String {
    let mut parts = Vec::new();
    if ca {
        parts.push(format!("ca = \"{}\"", pki.path("ca.pem").display()));
    }
    if client_cert {
        parts.push(format!("client_cert = \"{}\"", pki.path("client.pem").display()));
        parts.push(format!("client_key = {{ file = \"{}\" }}", pki.path("client.key").display()));
    }
    format!("tls = {{ {} }}", parts.join(", "))
}

/// The delivery of `event` to `endpoint` once it has at least one attempt.
async fn attempted(host: &TestHost, event: &str, endpoint: &str) -> StoredDelivery {
    let id: EventId = event.parse().unwrap();
    eventually_async(WAIT, || async move {
        let deliveries = host.deliveries_of(id).await.ok()?;
        deliveries
            .into_iter()
            .find(|delivery| delivery.endpoint == endpoint && delivery.attempts > 0)
    })
    .await
    .unwrap_or_else(|| panic!("no attempt of `{endpoint}`"))
}

async fn publish(host: &TestHost) -> String {
    let client = reqwest::Client::new();
    post_webhook(&client, host, "app", &[("content-type", "application/json")], "{\"n\":1}")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_and_a_private_ca_are_used_and_their_absence_is_recorded() {
    let pki = TestPki::new();
    let mut receiver = TlsReceiver::start(&pki).await;
    let url = receiver.url("/hook");
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [endpoints.mutual]\nurl = \"{url}\"\n{mutual}\n\n\
         [endpoints.no-client-cert]\nurl = \"{url}\"\n{ca_only}\nretry = {{ schedule = [\"1h\"] }}\n\n\
         [endpoints.no-ca]\nurl = \"{url}\"\n{cert_only}\nretry = {{ schedule = [\"1h\"] }}\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"mutual\", \"no-client-cert\", \"no-ca\"]\n",
        mutual = tls_line(&pki, true, true),
        ca_only = tls_line(&pki, true, false),
        cert_only = tls_line(&pki, false, true),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let event = publish(&host).await;

    let request = receiver.next(WAIT).await.expect("the mutual-TLS endpoint delivers");
    assert!(request.head.starts_with("POST /hook HTTP/1.1"), "{}", request.head);
    assert!(request.head.contains(&format!("webhook-id: {event}")), "{}", request.head);
    let delivered = attempted(&host, &event, "mutual").await;
    assert_eq!(delivered.last_error, None);

    // Without a client certificate the receiver ends the handshake; without the private CA
    // the router does not trust the receiver. Both attempts say so, and nothing arrived.
    let refused = attempted(&host, &event, "no-client-cert").await;
    let attempts = host.attempts(refused.id).await.unwrap();
    let reason = attempts[0].error.clone().expect("a recorded reason");
    assert_eq!(attempts[0].status, None);
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");

    let untrusted = attempted(&host, &event, "no-ca").await;
    let attempts = host.attempts(untrusted.id).await.unwrap();
    let reason = attempts[0].error.clone().expect("a recorded reason");
    assert!(reason.contains("UnknownIssuer") || reason.contains("unknown issuer"), "{reason}");
    assert!(receiver.drain().is_empty(), "only the mutual-TLS endpoint got through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_takes_the_same_settings_checks_them_and_seals_the_key() {
    let pki = TestPki::new();
    let mut receiver = TlsReceiver::start(&pki).await;
    let key_file = pki.path("store.key");
    std::fs::write(&key_file, base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
    let server = format!("store_key = \"store\"\nadmin_token = {{ value = \"{TOKEN}\" }}");
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [secrets]\nstore = {{ file = \"{}\" }}\n",
        key_file.display()
    );
    let host = TestHost::start(&server, &config).await.unwrap();
    let client = reqwest::Client::new();
    let create = |body: Value| {
        client.post(host.url("/v1/admin/endpoints")).bearer_auth(TOKEN).json(&body).send()
    };

    // Every problem at once, each naming its field.
    let response = create(json!({
        "url": receiver.url("/hook"),
        "tls": {"ca": "not a certificate", "client_cert": pki.client.cert, "client_key": pki.client.cert},
    }))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = response.json().await.unwrap();
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["tls.ca", "tls.client_key"], "{refused}");
    let response =
        create(json!({"url": "http://127.0.0.1:9/", "tls": {"ca": pki.ca}})).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = create(json!({
        "url": receiver.url("/dynamic"),
        "tls": {"ca": pki.ca, "client_cert": pki.client.cert, "client_key": pki.client.key},
    }))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["endpoint"]["tls"], json!({"ca": true, "client_cert": true}));
    assert!(!created.to_string().contains("PRIVATE KEY"), "{created}");

    let event = publish(&host).await;
    let request = receiver.next(WAIT).await.expect("the dynamic endpoint delivers over mTLS");
    assert!(request.head.starts_with("POST /dynamic HTTP/1.1"), "{}", request.head);
    assert!(request.head.contains(&format!("webhook-id: {event}")), "{}", request.head);

    // The client key is sealed with the rest of the record.
    let key_body = pki.client.key.lines().nth(1).unwrap();
    assert!(!any_file_holds(&host.data_dir(), key_body.as_bytes()));
    assert!(!any_file_holds(&host.data_dir(), b"PRIVATE KEY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reads_the_tls_files_again() {
    let pki = TestPki::new();
    let mut receiver = TlsReceiver::start(&pki).await;
    // The endpoint starts out trusting the wrong CA.
    let trusted = pki.path("trusted.pem");
    std::fs::write(&trusted, &pki.other_ca).unwrap();
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [endpoints.mutual]\nurl = \"{url}\"\nretry = {{ schedule = [\"1h\"] }}\n\
         tls = {{ ca = \"{ca}\", client_cert = \"{cert}\", client_key = {{ file = \"{key}\" }} }}\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"mutual\"]\n",
        url = receiver.url("/hook"),
        ca = trusted.display(),
        cert = pki.path("client.pem").display(),
        key = pki.path("client.key").display(),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let first = publish(&host).await;
    let refused = attempted(&host, &first, "mutual").await;
    let reason = refused.last_error.unwrap_or_default();
    assert!(reason.contains("UnknownIssuer") || reason.contains("unknown issuer"), "{reason}");

    // The right CA in the same file, then SIGHUP: the next delivery trusts the receiver.
    std::fs::write(&trusted, &pki.ca).unwrap();
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(host.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    host.logs
        .wait_for(WAIT, |line| line.contains("config reloaded").then_some(()))
        .expect("the reload is applied");
    let second = publish(&host).await;
    let request = receiver.next(WAIT).await.expect("delivered after the reload");
    assert!(request.head.contains(&format!("webhook-id: {second}")), "{}", request.head);
}
