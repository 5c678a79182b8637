//! Endpoint ownership through the real binary (`server.verify_endpoints = true`): a new
//! subscription gets a signed `switchyard.endpoint.verification` challenge and nothing else
//! until it answers; a receiver that echoes the challenge gets its deliveries (parked ones
//! included); one that never does stays parked and is disabled after `server.verify_timeout`.
//! Config endpoints are never challenged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_e2e::{
    ReceivedRequest, TestHost, TestReceiver, eventually_async, post_webhook,
    verify_with_standardwebhooks,
};
use tokio::sync::mpsc;

const TOKEN: &str = "verify-test-admin-token";
const WAIT: Duration = Duration::from_secs(20);
const VERIFICATION: &str = "switchyard.endpoint.verification";

fn server(timeout: &str) -> String {
    format!(
        "admin_token = {{ value = \"{TOKEN}\" }}\nverify_endpoints = true\n\
         verify_timeout = \"{timeout}\""
    )
}

fn config(config_endpoint_url: &str) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n\
         [endpoints.ledger]\nurl = \"{config_endpoint_url}\"\n\n\
         [routes.ledger]\nfrom = [\"app\"]\nto = [\"ledger\"]\n"
    )
}

/// A receiver that answers challenges with the challenge only while `echo` is on, and 200
/// to everything; it records every request.
struct OwnerReceiver {
    address: SocketAddr,
    echo: Arc<AtomicBool>,
    requests: mpsc::UnboundedReceiver<ReceivedRequest>,
}

#[derive(Clone)]
struct Owner {
    echo: Arc<AtomicBool>,
    requests: mpsc::UnboundedSender<ReceivedRequest>,
}

async fn answer(State(owner): State<Owner>, headers: HeaderMap, body: Bytes) -> String {
    let headers = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned()))
        .collect();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = ReceivedRequest { arrived: Instant::now(), path: "/hook".into(), headers, body };
    let _ = owner.requests.send(request);
    match parsed["challenge"].as_str() {
        Some(challenge) if owner.echo.load(Ordering::SeqCst) => {
            json!({"challenge": challenge}).to_string()
        }
        _ => "ok".to_owned(),
    }
}

impl OwnerReceiver {
    async fn start(echo: bool) -> Self {
        let echo = Arc::new(AtomicBool::new(echo));
        let (sender, requests) = mpsc::unbounded_channel();
        let owner = Owner { echo: echo.clone(), requests: sender };
        let app = axum::Router::new().fallback(answer).with_state(owner);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, echo, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    async fn next(&mut self) -> ReceivedRequest {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("a request arrives in time")
            .expect("the receiver runs")
    }

    fn drain(&mut self) -> Vec<ReceivedRequest> {
        std::iter::from_fn(|| self.requests.try_recv().ok()).collect()
    }
}

fn body(request: &ReceivedRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap_or(Value::Null)
}

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

async fn publish(host: &TestHost, event_type: &str) -> String {
    let body = json!({"type": event_type}).to_string();
    let headers = [("content-type", "application/json")];
    post_webhook(&reqwest::Client::new(), host, "app", &headers, body).await.unwrap()
}

/// Waits until the delivery of `event` to `endpoint` is in `status`.
async fn delivery_in(host: &TestHost, event: &str, endpoint: &str, status: &str) -> Value {
    let path = format!("/v1/admin/deliveries?event={event}&endpoint={endpoint}");
    let found = eventually_async(WAIT, || async {
        let page = get(host, &path).await;
        let first = page["data"].as_array().and_then(|data| data.first()).cloned();
        first.filter(|delivery| delivery["status"] == status)
    })
    .await;
    found.unwrap_or_else(|| panic!("no {status} delivery of {event} to {endpoint}"))
}

/// Waits until endpoint `id` shows `verification`.
async fn endpoint_in(host: &TestHost, id: &str, verification: &str) -> Value {
    let path = format!("/v1/admin/endpoints/{id}");
    let found = eventually_async(WAIT, || async {
        Some(get(host, &path).await).filter(|view| view["verification"] == verification)
    })
    .await;
    found.unwrap_or_else(|| panic!("endpoint {id} never {verification}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subscription_delivers_nothing_until_its_challenge_is_answered() {
    let mut owner = OwnerReceiver::start(false).await;
    let mut ledger = TestReceiver::start().await;
    let host = TestHost::start(&server("24h"), &config(&ledger.url("/ledger"))).await.unwrap();
    let (status, created) = call(
        &host,
        Method::POST,
        "/v1/admin/subscriptions",
        Some(json!({"url": owner.url(), "types": ["order.*"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["subscription"]["verification"], "pending_verification", "{created}");
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();

    // The challenge arrives, signed with the subscription's secret; it is not echoed.
    let challenge = owner.next().await;
    let event = body(&challenge);
    assert_eq!(
        (event["type"].as_str(), event["endpoint"].as_str()),
        (Some(VERIFICATION), Some(id.as_str()))
    );
    let challenge_text = event["challenge"].as_str().unwrap().to_owned();
    assert!(challenge_text.len() >= 32, "a random challenge: {event}");
    let verified = verify_with_standardwebhooks(&secret, std::slice::from_ref(&challenge));
    assert_eq!(verified, [Ok(())], "the challenge is signed like any delivery");

    // An event for it is parked; the config endpoint gets its own copy at once.
    let order = publish(&host, "order.created").await;
    delivery_in(&host, &order, &id, "parked").await;
    let copy = ledger.next(WAIT).await.expect("config endpoints are never challenged");
    assert_eq!(copy.header("webhook-id"), Some(order.as_str()));
    let view = get(&host, &format!("/v1/admin/endpoints/{id}")).await;
    assert_eq!(
        (view["verification"].as_str(), view["disabled"].as_bool()),
        (Some("pending_verification"), Some(true)),
        "{view}"
    );
    // Enabling by hand does not skip the check.
    let (status, refused) =
        call(&host, Method::POST, &format!("/v1/admin/endpoints/{id}/enable"), None).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("unverified")));
    // Resent while the receiver still does not echo: not verified, and it says why.
    let (status, answer) =
        call(&host, Method::POST, &format!("/v1/admin/endpoints/{id}/verify"), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["verified"], false, "{answer}");
    assert_eq!(answer["detail"], "HTTP 200 without the challenge");
    let resent = owner.next().await;
    assert_eq!(body(&resent)["challenge"], challenge_text.as_str(), "the same challenge");
    assert!(owner.drain().is_empty(), "nothing but challenges was sent");

    // Once the receiver echoes it, a resend verifies the subscription and the parked
    // delivery goes out.
    owner.echo.store(true, Ordering::SeqCst);
    let (status, answer) =
        call(&host, Method::POST, &format!("/v1/admin/endpoints/{id}/verify"), None).await;
    assert_eq!((status, answer["verified"].as_bool()), (StatusCode::OK, Some(true)), "{answer}");
    assert_eq!(answer["endpoint"]["verification"], "verified");
    assert_eq!(answer["endpoint"]["disabled"], false);
    assert_eq!(body(&owner.next().await)["type"], VERIFICATION);
    let delivered = owner.next().await;
    assert_eq!(delivered.header("webhook-id"), Some(order.as_str()));
    assert_eq!(body(&delivered)["type"], "order.created");
    delivery_in(&host, &order, &id, "delivered").await;
    let subscription = get(&host, &format!("/v1/admin/subscriptions/{id}")).await;
    assert_eq!(subscription["verification"], "verified", "{subscription}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_echoes_its_challenge_gets_its_deliveries() {
    let mut owner = OwnerReceiver::start(true).await;
    let ledger = TestReceiver::start().await;
    let host = TestHost::start(&server("24h"), &config(&ledger.url("/ledger"))).await.unwrap();
    let (status, created) = call(
        &host,
        Method::POST,
        "/v1/admin/endpoints",
        Some(json!({"url": owner.url(), "sources": ["app"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body(&owner.next().await)["type"], VERIFICATION);
    endpoint_in(&host, &id, "verified").await;
    let event = publish(&host, "thing.happened").await;
    let delivered = owner.next().await;
    assert_eq!(delivered.header("webhook-id"), Some(event.as_str()));
    delivery_in(&host, &event, &id, "delivered").await;

    // A new URL must prove ownership again.
    let mut other = OwnerReceiver::start(false).await;
    let (status, replaced) = call(
        &host,
        Method::PUT,
        &format!("/v1/admin/endpoints/{id}"),
        Some(json!({"url": other.url(), "sources": ["app"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["verification"], "pending_verification", "{replaced}");
    assert_eq!(body(&other.next().await)["type"], VERIFICATION);
    let parked = publish(&host, "thing.happened").await;
    delivery_in(&host, &parked, &id, "parked").await;
    assert!(other.drain().is_empty(), "the new URL gets nothing before it answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_stays_parked_and_is_disabled_after_the_timeout() {
    let mut owner = OwnerReceiver::start(false).await;
    let ledger = TestReceiver::start().await;
    let host = TestHost::start(&server("2s"), &config(&ledger.url("/ledger"))).await.unwrap();
    let (status, created) =
        call(&host, Method::POST, "/v1/admin/subscriptions", Some(json!({"url": owner.url()})))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body(&owner.next().await)["type"], VERIFICATION);
    let event = publish(&host, "thing.happened").await;
    delivery_in(&host, &event, &id, "parked").await;

    let expired = endpoint_in(&host, &id, "expired").await;
    assert_eq!(expired["disabled"], true, "{expired}");
    let reason = expired["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("verification_expired"), "{expired}");
    let created_at = expired["created_at"].as_u64().unwrap();
    let disabled_at = expired["disabled_at"].as_u64().unwrap();
    assert!(disabled_at >= created_at + 2_000, "disabled after the timeout: {expired}");
    delivery_in(&host, &event, &id, "parked").await;
    assert!(owner.drain().is_empty(), "nothing was delivered: {:?}", owner.drain().len());
}
