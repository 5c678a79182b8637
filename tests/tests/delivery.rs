//! Routing and signed delivery through the real binary: signatures checked by an independent
//! implementation, retries, 410, Retry-After, dead letters and replay, endpoint isolation,
//! the SSRF guard, and a SIGKILL in the middle of delivering.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchyard::event::EventId;
use switchyard::store::DeliveryState;
use switchyard_e2e::{
    Reply, StoredDelivery, TestHost, TestReceiver, eventually_async, post_webhook, run_cli,
    verify_with_standardwebhooks,
};

/// The first Standard Webhooks test vector's secret.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const OTHER_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);
const ADMIN: &str = "admin_token = { value = \"test-admin-token\" }";

/// A config with one `app` source and one endpoint per `(id, url, extra lines)`, all routed.
fn config(endpoints: &[(&str, String, &str)]) -> String {
    let mut text = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[secrets]\nsigning = {{ value = \"{SECRET}\" }}\n\
         other = {{ value = \"{OTHER_SECRET}\" }}\n\n[sources.app]\ntype = \"http\"\n\n"
    );
    let ids: Vec<String> = endpoints.iter().map(|(id, _, _)| format!("\"{id}\"")).collect();
    for (id, url, extra) in endpoints {
        text.push_str(&format!("[endpoints.{id}]\nurl = \"{url}\"\n{extra}\n\n"));
    }
    text.push_str(&format!("[routes.everything]\nfrom = [\"app\"]\nto = [{}]\n", ids.join(", ")));
    text
}

async fn delivery_of(host: &TestHost, event: &str) -> Option<StoredDelivery> {
    host.deliveries_of(event.parse::<EventId>().ok()?).await.ok()?.into_iter().next()
}

async fn wait_for_state(host: &TestHost, event: &str, state: DeliveryState) -> StoredDelivery {
    let reached = eventually_async(WAIT, || async {
        delivery_of(host, event).await.filter(|delivery| delivery.state == state)
    });
    match reached.await {
        Some(delivery) => delivery,
        None => {
            let last = delivery_of(host, event).await;
            panic!("delivery of {event} never reached {state:?}: {last:?}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_verified_by_an_independent_implementation() {
    let mut single = TestReceiver::start().await;
    let mut rotating = TestReceiver::start().await;
    let host = TestHost::start(
        "",
        &config(&[
            (
                "single",
                single.url("/hook"),
                "secret = \"signing\"\nheaders = { \"x-tenant\" = \"acme\" }",
            ),
            ("rotating", rotating.url("/hook"), "secrets = [\"other\", \"signing\"]"),
        ]),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut sent = HashMap::new();
    for index in 0..20 {
        let body = format!(r#"{{"type":"order.created","index":{index},"note":"caf\u00e9 ✓"}}"#);
        let id = post_webhook(
            &client,
            &host,
            "app",
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await
        .unwrap();
        sent.insert(id, body);
    }
    let mut received = Vec::new();
    for _ in 0..20 {
        received.push(single.next(WAIT).await.expect("a delivery to `single`"));
    }
    for request in &received {
        let id = request.header("webhook-id").unwrap();
        assert_eq!(request.body.as_ref(), sent[id].as_bytes(), "the body is delivered as received");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("x-tenant"), Some("acme"));
        assert!(request.header("user-agent").unwrap().starts_with("Switchyard/"));
        assert_eq!(request.path, "/hook");
    }
    let ids: HashSet<_> =
        received.iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    assert_eq!(ids, sent.keys().cloned().collect::<HashSet<_>>());
    for result in verify_with_standardwebhooks(SECRET, &received) {
        assert_eq!(result, Ok(()));
    }
    // During rotation every delivery carries one signature per key; each key verifies it.
    let rotated = rotating.next(WAIT).await.expect("a delivery to `rotating`");
    let signature = rotated.header("webhook-signature").unwrap();
    assert_eq!(
        signature.split(' ').filter(|entry| entry.starts_with("v1,")).count(),
        2,
        "{signature}"
    );
    for secret in [SECRET, OTHER_SECRET] {
        assert_eq!(
            verify_with_standardwebhooks(secret, std::slice::from_ref(&rotated)),
            vec![Ok(())]
        );
    }
    // A wrong key does not verify: the check above can fail.
    let wrong = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(verify_with_standardwebhooks(wrong, &received[..1])[0].is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_with_the_same_id_and_body() {
    let mut receiver =
        TestReceiver::scripted(vec![Reply::Status(500), Reply::Status(500)], Reply::Status(200))
            .await;
    let extra = "secret = \"signing\"\nretry = { schedule = [\"100ms\", \"100ms\", \"100ms\"] }";
    let host = TestHost::start("", &config(&[("flaky", receiver.url("/"), extra)])).await.unwrap();
    let client = reqwest::Client::new();
    let event = post_webhook(&client, &host, "app", &[], r#"{"type":"a.b"}"#).await.unwrap();
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(receiver.next(WAIT).await.expect("an attempt"));
    }
    for request in &requests {
        assert_eq!(request.header("webhook-id"), Some(event.as_str()));
        assert_eq!(request.body.as_ref(), br#"{"type":"a.b"}"#);
    }
    let delivery = wait_for_state(&host, &event, DeliveryState::Delivered).await;
    assert_eq!(delivery.attempts, 3);
    let attempts = host.attempts(delivery.id).await.unwrap();
    let statuses: Vec<_> = attempts.iter().map(|attempt| attempt.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(200)]);
    let retrying = r#"switchyard_delivery_attempts_total{endpoint="flaky",outcome="retrying"}"#;
    let delivered = r#"switchyard_delivery_attempts_total{endpoint="flaky",outcome="delivered"}"#;
    assert_eq!(host.metric(retrying).await.unwrap(), 2.0);
    assert_eq!(host.metric(delivered).await.unwrap(), 1.0);
    let latency = r#"switchyard_delivery_attempt_seconds_count{endpoint="flaky"}"#;
    assert_eq!(host.metric(latency).await.unwrap(), 3.0);
    assert!(receiver.next(Duration::from_millis(300)).await.is_none(), "no attempt after success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_across_restarts() {
    let mut receiver = TestReceiver::scripted(vec![Reply::Status(410)], Reply::Status(200)).await;
    let mut host = TestHost::start("", &config(&[("gone", receiver.url("/"), "")])).await.unwrap();
    let client = reqwest::Client::new();
    let first = post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    assert!(receiver.next(WAIT).await.is_some());
    wait_for_state(&host, &first, DeliveryState::Parked).await;
    let second = post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    assert_eq!(delivery_of(&host, &second).await.unwrap().state, DeliveryState::Parked);
    host.restart().await.unwrap();
    let third = post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
    assert_eq!(delivery_of(&host, &third).await.unwrap().state, DeliveryState::Parked);
    assert!(host.disabled_endpoints().await.unwrap().contains(&"gone".to_owned()));
    assert!(
        receiver.next(Duration::from_millis(500)).await.is_none(),
        "a disabled endpoint gets nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let busy = Reply::StatusWithHeaders(503, vec![("retry-after", "2".into())]);
    let mut receiver = TestReceiver::scripted(vec![busy], Reply::Status(200)).await;
    let extra = "retry = { schedule = [\"50ms\", \"50ms\"] }";
    let host = TestHost::start("", &config(&[("busy", receiver.url("/"), extra)])).await.unwrap();
    let event = post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();
    let first = receiver.next(WAIT).await.unwrap();
    let second = receiver.next(WAIT).await.unwrap();
    let gap = second.arrived - first.arrived;
    // The schedule alone would retry after ~50 ms; the endpoint asked for 2 s.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    wait_for_state(&host, &event, DeliveryState::Delivered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_deliveries_become_dead_letters_and_replay_delivers_them() {
    let failures = vec![Reply::Status(500), Reply::Status(500)];
    let mut receiver = TestReceiver::scripted(failures, Reply::Status(200)).await;
    let extra = "retry = { schedule = [\"50ms\"] }";
    let host =
        TestHost::start(ADMIN, &config(&[("fragile", receiver.url("/"), extra)])).await.unwrap();
    let event = post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();
    receiver.next(WAIT).await.unwrap();
    receiver.next(WAIT).await.unwrap();
    let dead = wait_for_state(&host, &event, DeliveryState::Dead).await;
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 500"));
    let directory = host.config_dir();
    let url = host.url("");
    let dry_run =
        run_cli(&directory, &["replay", "-c", "switchyard.toml", "--url", &url, "--dry-run"], &[]);
    assert_eq!(dry_run.code, Some(0), "{}", dry_run.stderr);
    assert!(dry_run.stdout.contains("would replay 1 delivery"), "{}", dry_run.stdout);
    assert!(receiver.next(Duration::from_millis(300)).await.is_none(), "a dry run sends nothing");
    let replay = run_cli(&directory, &["replay", "-c", "switchyard.toml", "--url", &url], &[]);
    assert_eq!(replay.code, Some(0), "{}", replay.stderr);
    assert!(replay.stdout.contains("replayed 1 delivery"), "{}", replay.stdout);
    let again = receiver.next(WAIT).await.expect("the replayed delivery");
    assert_eq!(again.header("webhook-id"), Some(event.as_str()));
    wait_for_state(&host, &event, DeliveryState::Delivered).await;
    // Replay by time range sends the event again, as a new delivery.
    let by_time = run_cli(
        &directory,
        &["replay", "-c", "switchyard.toml", "--url", &url, "--since", "1h"],
        &[],
    );
    assert_eq!(by_time.code, Some(0), "{}", by_time.stderr);
    assert!(by_time.stdout.contains("replayed 1 delivery"), "{}", by_time.stdout);
    assert_eq!(receiver.next(WAIT).await.unwrap().header("webhook-id"), Some(event.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_and_a_failing_endpoint_do_not_hold_back_a_healthy_one() {
    const EVENTS: usize = 50;
    let mut healthy = TestReceiver::start().await;
    let hanging = TestReceiver::scripted(Vec::new(), Reply::Hang).await;
    let failing = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    let host = TestHost::start(
        "",
        &config(&[
            ("healthy", healthy.url("/"), ""),
            ("hanging", hanging.url("/"), "timeout = \"30s\"\nmax_in_flight = 2"),
            ("failing", failing.url("/"), "retry = { schedule = [\"10ms\", \"10ms\", \"10ms\"] }"),
        ]),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut sent_at = HashMap::new();
    for _ in 0..EVENTS {
        // Timed from before the request: delivery starts at the commit, before the 202.
        let sent = Instant::now();
        let id = post_webhook(&client, &host, "app", &[], "{}").await.unwrap();
        sent_at.insert(id, sent);
    }
    let mut latencies = Vec::new();
    for _ in 0..EVENTS {
        // Were the queues shared, most of these would wait behind 30 s timeouts.
        let request =
            healthy.next(Duration::from_secs(10)).await.expect("healthy delivery held back");
        let id = request.header("webhook-id").unwrap();
        latencies.push(request.arrived.saturating_duration_since(sent_at[id]));
    }
    latencies.sort();
    println!(
        "healthy endpoint latency beside bad ones: p50 {:?}, max {:?}",
        latencies[EVENTS / 2],
        latencies[EVENTS - 1]
    );
    assert!(latencies[EVENTS - 1] < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_egress_guard_blocks_loopback_that_is_not_allow_listed() {
    let mut receiver = TestReceiver::start().await;
    // A host name, so the config is valid; it resolves to loopback at connect time.
    let url = format!("http://localhost:{}/hook", receiver.address.port());
    let text = format!(
        "[sources.app]\n\n[endpoints.internal]\nurl = \"{url}\"\n\n[routes.all]\nto = [\"internal\"]\n"
    );
    let host = TestHost::start("", &text).await.unwrap();
    let event = post_webhook(&reqwest::Client::new(), &host, "app", &[], "{}").await.unwrap();
    let dead = wait_for_state(&host, &event, DeliveryState::Dead).await;
    assert_eq!(dead.attempts, 1, "a blocked address is not retried");
    let error = dead.last_error.unwrap();
    assert!(error.contains("blocked by the egress policy"), "{error}");
    assert!(error.contains("loopback"), "{error}");
    assert!(receiver.drain().is_empty(), "the endpoint received a request");
}

/// 2,000 events to two endpoints; SIGKILL while deliveries are under way; after a restart
/// every acknowledged event reaches both endpoints at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_event_is_delivered_after_sigkill() {
    const EVENTS: usize = 2000;
    const CLIENTS: usize = 16;
    let mut first =
        TestReceiver::scripted(Vec::new(), Reply::Delayed(Duration::from_millis(2), 200)).await;
    let mut second = TestReceiver::start().await;
    let mut host = TestHost::start(
        "",
        &config(&[("first", first.url("/"), "max_in_flight = 4"), ("second", second.url("/"), "")]),
    )
    .await
    .unwrap();
    let acknowledged = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let kill_at = EVENTS / 2;
    let mut clients = Vec::new();
    let address = host.address;
    for _ in 0..CLIENTS {
        let (acknowledged, next) = (acknowledged.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while next.fetch_add(1, Ordering::Relaxed) < kill_at {
                let response = client
                    .post(format!("http://{address}/webhooks/app"))
                    .body(r#"{"type":"load"}"#)
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() == reqwest::StatusCode::ACCEPTED {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    acknowledged.lock().unwrap().insert(answer["id"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    // The slow endpoint is still working through its queue when the process dies.
    host.kill();
    host.restart().await.unwrap();
    let pending: usize = host
        .logs
        .wait_for(WAIT, |line| {
            line.split("loaded pending deliveries pending=").nth(1)?.trim().parse().ok()
        })
        .unwrap();
    assert!(pending > 0, "the kill did not interrupt any delivery");
    let client = reqwest::Client::new();
    for _ in kill_at..EVENTS {
        let id = post_webhook(&client, &host, "app", &[], r#"{"type":"load"}"#).await.unwrap();
        acknowledged.lock().unwrap().insert(id);
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(acknowledged.len(), EVENTS);
    let mut duplicates = 0;
    for receiver in [&mut first, &mut second] {
        let mut seen = HashSet::new();
        while !acknowledged.is_subset(&seen) {
            let request = receiver.next(Duration::from_secs(60)).await.unwrap_or_else(|| {
                panic!(
                    "{} acknowledged events never arrived",
                    acknowledged.difference(&seen).count()
                )
            });
            let id = request.header("webhook-id").unwrap().to_owned();
            if !seen.insert(id) {
                duplicates += 1;
            }
        }
        duplicates += receiver.drain().len();
    }
    println!(
        "{EVENTS} events x 2 endpoints across a SIGKILL with {pending} deliveries pending: \
         {duplicates} duplicate deliveries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_delivered_events_and_keeps_pending_ones() {
    let mut healthy = TestReceiver::start().await;
    let failing = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\n\n[sources.other]\n\n\
         [endpoints.healthy]\nurl = \"{}\"\n\n\
         [endpoints.failing]\nurl = \"{}\"\nretry = {{ schedule = [\"1h\"] }}\n\n\
         [routes.app]\nfrom = [\"app\"]\nto = [\"healthy\"]\n\n\
         [routes.other]\nfrom = [\"other\"]\nto = [\"failing\"]\n",
        healthy.url("/"),
        failing.url("/"),
    );
    let host = TestHost::start("retention = \"1s\"", &config).await.unwrap();
    let client = reqwest::Client::new();
    let delivered = post_webhook(&client, &host, "app", &[], r#"{"n":1}"#).await.unwrap();
    let pending = post_webhook(&client, &host, "other", &[], r#"{"n":2}"#).await.unwrap();
    healthy.next(WAIT).await.expect("the healthy delivery");
    wait_for_state(&host, &delivered, DeliveryState::Delivered).await;
    // Past the retention the delivered event goes, with its body; the pending one stays.
    let gone = eventually_async(WAIT, || async {
        host.event(delivered.parse().ok()?).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the delivered event was not deleted");
    assert!(host.event(pending.parse().unwrap()).await.unwrap().is_some());
    let kept = host.deliveries_of(pending.parse().unwrap()).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].state, DeliveryState::Pending);
    assert!(host.metric("switchyard_store_pruned_events_total").await.unwrap() >= 1.0);
}
