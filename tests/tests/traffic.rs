//! Traffic control through the real binary: ingest rate limits per source and per client
//! (webhooks and the publish API; NATS sources paced), and per endpoint the delivery rate
//! measured at the receiver, the whole-endpoint `Retry-After` pause, the circuit breaker,
//! adaptive concurrency (read from `/metrics`), auto-disable, and the same settings on
//! endpoints created through the admin API.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use switchyard_e2e::{Reply, TestHost, TestReceiver, eventually_async};

const PUBLISH_TOKEN: &str = "publish-secret";

/// A client whose connections come from `local` (a loopback address of its own).
fn client_from(local: &str) -> reqwest::Client {
    let local: IpAddr = local.parse().unwrap();
    reqwest::Client::builder().local_address(local).build().unwrap()
}

/// Posts one webhook; answers the status and the `Retry-After` seconds, if any.
async fn post(
    client: &reqwest::Client,
    host: &TestHost,
    forwarded_for: Option<&str>,
) -> (u16, Option<u64>, serde_json::Value) {
    let mut request = client.post(host.url("/webhooks/app")).body(r#"{"type":"order.paid"}"#);
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse::<u64>().expect("whole seconds"));
    let body = response.json().await.unwrap_or_default();
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_gets_the_burst_plus_the_rate_and_429_with_retry_after() {
    let host = TestHost::start(
        "durability = \"os\"",
        "[sources.app]\nrate_limit = { rate = \"20/s\", burst = 20 }\n",
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    // 500 requests over about two seconds: 25 senders, each sending every 100 ms, so that
    // the rate shows beside the burst.
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..25 {
        let (client, next, url) = (client.clone(), next.clone(), host.url("/webhooks/app"));
        requests.spawn(async move {
            let mut answers = Vec::new();
            let mut ticks = tokio::time::interval(std::time::Duration::from_millis(100));
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 500 {
                ticks.tick().await;
                let response = client.post(&url).body(r#"{"type":"order.paid"}"#).send().await;
                let response = response.unwrap();
                let status = response.status().as_u16();
                let retry_after = response.headers().get("retry-after").cloned();
                let body: serde_json::Value = response.json().await.unwrap();
                answers.push((status, retry_after, body));
            }
            answers
        });
    }
    let mut answers = Vec::new();
    while let Some(batch) = requests.join_next().await {
        answers.extend(batch.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(answers.len(), 500);
    let accepted = answers.iter().filter(|(status, ..)| *status == 202).count();
    let refused: Vec<_> = answers.iter().filter(|(status, ..)| *status != 202).collect();
    assert_eq!(accepted + refused.len(), 500);
    for (status, retry_after, body) in &refused {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["code"], "rate_limited", "{body}");
        let seconds: u64 =
            retry_after.as_ref().expect("a Retry-After").to_str().unwrap().parse().unwrap();
        assert!(seconds >= 1, "Retry-After {seconds}");
    }
    // About burst + rate × elapsed: never more, and at most a quarter second's worth fewer
    // (the time before the first request and after the last one reached the router).
    let most = 20.0 + 20.0 * elapsed;
    let least = 20.0 + 20.0 * (elapsed - 0.25).max(0.0);
    println!("500 requests in {elapsed:.2}s: {accepted} accepted, {} refused", refused.len());
    assert!((accepted as f64) <= most + 1.0, "{accepted} accepted in {elapsed:.2}s");
    assert!((accepted as f64) >= least - 1.0, "{accepted} accepted in {elapsed:.2}s");
    // Nothing refused was stored; every refusal is counted.
    assert_eq!(host.count_events_of("app").await.unwrap(), accepted as u64);
    let counted = host
        .metric("switchyard_ingest_events_total{source=\"app\",outcome=\"rate_limited\"}")
        .await
        .unwrap();
    assert_eq!(counted as usize, refused.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_client_limits_count_each_address_apart_behind_trusted_proxies_only() {
    let host = TestHost::start(
        "durability = \"os\"\ntrusted_proxies = [\"127.0.0.2/32\"]",
        "[sources.app]\nrate_limit = { rate = \"1/h\", burst = 3, per = \"client\" }\n",
    )
    .await
    .unwrap();
    let (second, third) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(post(&second, &host, None).await.0);
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    // Another address has a bucket of its own.
    for _ in 0..3 {
        assert_eq!(post(&third, &host, None).await.0, 202);
    }
    let (status, retry_after, body) = post(&third, &host, None).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    // An hour's token: the sender is told to come back in about an hour, in whole seconds.
    let retry_after = retry_after.expect("a Retry-After");
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    // 127.0.0.2 is a trusted proxy: the client it forwards for is limited on its own.
    for _ in 0..3 {
        assert_eq!(post(&second, &host, Some("203.0.113.7")).await.0, 202);
    }
    assert_eq!(post(&second, &host, Some("203.0.113.7")).await.0, 429);
    // 127.0.0.3 is not: what it forwards is ignored, and it is still out of tokens.
    assert_eq!(post(&third, &host, Some("203.0.113.8")).await.0, 429);
    assert_eq!(host.count_events_of("app").await.unwrap(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_api_honours_its_sources_rate_limit() {
    let host = TestHost::start(
        &format!("publish_token = {{ value = \"{PUBLISH_TOKEN}\" }}"),
        "[sources.orders]\ntype = \"api\"\nrate_limit = { rate = \"1/h\", burst = 2 }\n",
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for index in 0..3 {
        let response = client
            .post(host.url("/v1/events"))
            .bearer_auth(PUBLISH_TOKEN)
            .json(&serde_json::json!({"type": "order.created", "data": {"n": index}}))
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").is_some();
        answers.push((response.status().as_u16(), retry_after));
    }
    assert_eq!(answers, [(202, false), (202, false), (429, true)]);
    assert_eq!(host.count_events_of("orders").await.unwrap(), 2);
}

/// A config with an `app` source routed to each `(id, url, extra lines)` endpoint.
fn delivering(endpoints: &[(&str, String, &str)]) -> String {
    let mut text =
        String::from("[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\n\n");
    let ids: Vec<String> = endpoints.iter().map(|(id, _, _)| format!("\"{id}\"")).collect();
    for (id, url, extra) in endpoints {
        text.push_str(&format!("[endpoints.{id}]\nurl = \"{url}\"\n{extra}\n\n"));
    }
    text.push_str(&format!("[routes.all]\nfrom = [\"app\"]\nto = [{}]\n", ids.join(", ")));
    text
}

/// Posts `count` webhooks to `app`, 10 at a time.
async fn send_events(host: &TestHost, count: usize) {
    let client = reqwest::Client::new();
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(10);
        let mut requests = tokio::task::JoinSet::new();
        for index in sent..sent + batch {
            let (client, url) = (client.clone(), host.url("/webhooks/app"));
            requests.spawn(async move {
                let body = format!(r#"{{"type":"order.paid","n":{index}}}"#);
                let response = client.post(url).body(body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 202);
            });
        }
        while let Some(done) = requests.join_next().await {
            done.unwrap();
        }
        sent += batch;
    }
}

/// Waits for `count` requests at `receiver`; answers their arrival instants.
async fn arrivals(receiver: &mut TestReceiver, count: usize, within: Duration) -> Vec<Instant> {
    let deadline = Instant::now() + within;
    let mut arrived = Vec::new();
    while arrived.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.next(left).await {
            Some(request) => arrived.push(request.arrived),
            None => panic!("only {} of {count} requests arrived", arrived.len()),
        }
    }
    arrived
}

/// The most arrivals within any `window`.
fn most_within(arrived: &[Instant], window: Duration) -> usize {
    (0..arrived.len())
        .map(|first| {
            arrived[first..].iter().take_while(|at| **at < arrived[first] + window).count()
        })
        .max()
        .unwrap_or(0)
}

async fn endpoint_traffic(host: &TestHost, id: &str) -> serde_json::Value {
    let view = host.admin_get(&format!("/v1/admin/endpoints/{id}")).await.unwrap();
    view.expect("the endpoint")["traffic"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_rate_is_never_exceeded_at_the_receiver_and_the_wait_shows() {
    let mut receiver = TestReceiver::start().await;
    let config = delivering(&[("paced", receiver.url("/"), "rate = \"50/s\"")]);
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    let started = Instant::now();
    send_events(&host, 400).await;
    // While they trickle out, the endpoint says why they wait.
    let traffic = endpoint_traffic(&host, "paced").await;
    assert_eq!(traffic["rate"], "50/s", "{traffic}");
    let arrived = arrivals(&mut receiver, 400, Duration::from_secs(30)).await;
    let elapsed = started.elapsed();
    let busiest = most_within(&arrived, Duration::from_secs(5));
    let busiest_second = most_within(&arrived, Duration::from_secs(1));
    println!(
        "400 deliveries at 50/s in {elapsed:.2?}: at most {busiest} in 5 s, {busiest_second} in 1 s"
    );
    // rate × 5 s + burst (1).
    assert!(busiest <= 251, "{busiest} deliveries within 5 s");
    // And not much less (a loaded machine may lag a little behind the timer).
    assert!(busiest >= 225, "the rate was not used: {busiest} within 5 s");
    assert!(elapsed >= Duration::from_millis(7_900), "{elapsed:?}");
    let waited = host
        .metric("switchyard_endpoint_wait_seconds_total{endpoint=\"paced\",reason=\"rate\"}")
        .await
        .unwrap();
    assert!(waited > 1.0, "waited {waited}s for the rate");
    let traffic = endpoint_traffic(&host, "paced").await;
    assert!(traffic["wait_seconds"]["rate"].as_f64().unwrap() > 1.0, "{traffic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_429_pauses_the_whole_endpoint_then_it_resumes() {
    let too_many = Reply::StatusWithHeaders(429, vec![("retry-after", "2".to_owned())]);
    let mut receiver = TestReceiver::scripted(vec![too_many], Reply::Status(200)).await;
    let config = delivering(&[("busy", receiver.url("/"), "retry = { schedule = [\"100ms\"] }")]);
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    send_events(&host, 1).await;
    let refused = receiver.next(Duration::from_secs(10)).await.expect("the first attempt");
    // More deliveries while it is paused: none goes before the two seconds are over.
    send_events(&host, 5).await;
    let traffic = endpoint_traffic(&host, "busy").await;
    assert_eq!(traffic["waiting"], "paused", "{traffic}");
    assert!(traffic["paused_until"].as_u64().is_some(), "{traffic}");
    let arrived = arrivals(&mut receiver, 6, Duration::from_secs(10)).await;
    let first = arrived.iter().min().unwrap().duration_since(refused.arrived);
    println!("first request after the 429 came {first:.2?} later");
    assert!(first >= Duration::from_secs(2), "a request came {first:?} after `Retry-After: 2`");
    assert!(first < Duration::from_secs(4), "it did not resume: {first:?}");
    let paused = host
        .metric("switchyard_endpoint_wait_seconds_total{endpoint=\"busy\",reason=\"paused\"}")
        .await
        .unwrap();
    assert!(paused > 1.0, "waited {paused}s paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_trips_its_breaker_gets_one_probe_per_cooldown_and_recovers() {
    // Five failures open it; two probes fail; the third succeeds.
    let mut failing = TestReceiver::scripted(vec![Reply::Status(500); 7], Reply::Status(200)).await;
    let mut healthy = TestReceiver::start().await;
    let config = delivering(&[
        (
            "failing",
            failing.url("/"),
            "max_in_flight = 1\nretry = { schedule = [\"100ms\", \"100ms\", \"100ms\", \"100ms\", \
             \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"] }\n\
             breaker = { failures = 5, cooldown = \"1s\", max_cooldown = \"2s\" }",
        ),
        ("healthy", healthy.url("/"), ""),
    ]);
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    let sent = Instant::now();
    send_events(&host, 10).await;
    let first_five = arrivals(&mut failing, 5, Duration::from_secs(10)).await;
    // The other endpoint is not held up meanwhile.
    let healthy_arrived = arrivals(&mut healthy, 10, Duration::from_secs(10)).await;
    let healthy_last = healthy_arrived.iter().max().unwrap().duration_since(sent);
    assert!(healthy_last < Duration::from_secs(2), "healthy deliveries took {healthy_last:?}");
    // Open once the fifth failure is recorded, saying when it probes.
    let open = eventually_async(Duration::from_secs(1), || async {
        let traffic = endpoint_traffic(&host, "failing").await;
        (traffic["breaker"]["state"] == "open").then_some(traffic)
    });
    let traffic = open.await.expect("the breaker opens after five failures");
    assert!(traffic["breaker"]["next_probe_at"].as_u64().is_some(), "{traffic}");
    assert_eq!(traffic["waiting"], "breaker", "{traffic}");
    // Then one probe per cooldown: 1 s, then 2 s, then 2 s (the maximum).
    let probes = arrivals(&mut failing, 3, Duration::from_secs(10)).await;
    let mut previous = *first_five.last().unwrap();
    let mut gaps = Vec::new();
    for probe in &probes {
        gaps.push(probe.duration_since(previous));
        previous = *probe;
    }
    println!("probes came after {gaps:.2?}");
    for (gap, cooldown) in gaps.iter().zip([1, 2, 2]) {
        assert!(*gap >= Duration::from_secs(cooldown), "a probe {gap:?} after the last attempt");
        assert!(*gap < Duration::from_secs(cooldown) + Duration::from_millis(900), "{gap:?}");
    }
    // The third probe succeeded: the breaker closed and the rest flow again.
    let rest = arrivals(&mut failing, 10 - 1, Duration::from_secs(10)).await;
    let flowed = rest.last().unwrap().duration_since(*probes.last().unwrap());
    assert!(flowed < Duration::from_secs(2), "the rest took {flowed:?}");
    let opened = host
        .metric("switchyard_endpoint_breaker_opened_total{endpoint=\"failing\"}")
        .await
        .unwrap();
    assert_eq!(opened, 3.0);
    let state = host.metric("switchyard_endpoint_breaker_state{endpoint=\"failing\"}").await;
    assert_eq!(state.unwrap(), 0.0);
}

/// A receiver whose answer the test switches: every request gets the current status.
struct Switchable {
    address: std::net::SocketAddr,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Switchable {
    async fn start(status: u16) -> Self {
        use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
        let state =
            (std::sync::Arc::new(AtomicU16::new(status)), std::sync::Arc::new(AtomicUsize::new(0)));
        let answer = {
            let state = state.clone();
            move || {
                let (status, requests) = state.clone();
                async move {
                    requests.fetch_add(1, Ordering::SeqCst);
                    // A little work, so that attempts overlap.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    axum::http::StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
                }
            }
        };
        let app = axum::Router::new().fallback(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, status: state.0, requests: state.1 }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn in_flight_limit(host: &TestHost, id: &str) -> f64 {
    let series = format!("switchyard_endpoint_in_flight_limit{{endpoint=\"{id}\"}}");
    host.metric(&series).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_endpoint_sees_its_in_flight_limit_shrink_and_grow_back() {
    let receiver = Switchable::start(503).await;
    let retries = vec!["\"200ms\""; 40].join(", ");
    let extra =
        format!("max_in_flight = 8\nbreaker = \"off\"\nretry = {{ schedule = [{retries}] }}");
    let config = delivering(&[("strained", receiver.url(), &extra)]);
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    assert_eq!(in_flight_limit(&host, "strained").await, 8.0);
    send_events(&host, 60).await;
    let shrunk = eventually_async(Duration::from_secs(10), || async {
        (in_flight_limit(&host, "strained").await == 1.0).then_some(())
    });
    shrunk.await.expect("503s shrink the in-flight limit to 1");
    let traffic = endpoint_traffic(&host, "strained").await;
    assert_eq!(traffic["in_flight_limit"], 1, "{traffic}");
    // It recovers: successes grow the limit back to `max_in_flight`.
    let requests = || receiver.requests.load(std::sync::atomic::Ordering::SeqCst);
    receiver.answer(200);
    let before = requests();
    let grown = eventually_async(Duration::from_secs(20), || async {
        (in_flight_limit(&host, "strained").await == 8.0).then_some(())
    });
    grown.await.expect("successes grow the in-flight limit back to 8");
    // Additively: from 1 to 8 takes 1 + 2 + … + 7 = 28 successes.
    let successes = requests() - before;
    assert!(successes >= 20, "back to 8 after {successes} successes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_disable_after_is_disabled_with_a_reason_and_parked() {
    let mut receiver = TestReceiver::scripted(Vec::new(), Reply::Status(500)).await;
    let retries = vec!["\"300ms\""; 30].join(", ");
    let extra =
        format!("disable_after = \"2s\"\nbreaker = \"off\"\nretry = {{ schedule = [{retries}] }}");
    let config = delivering(&[("doomed", receiver.url("/"), &extra)]);
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    let started = Instant::now();
    send_events(&host, 1).await;
    let disabled = eventually_async(Duration::from_secs(10), || async {
        host.disabled_endpoints().await.ok().filter(|ids| ids.contains(&"doomed".to_owned()))
    });
    disabled.await.expect("the endpoint is disabled");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "disabled after {took:?}");
    let view = host.admin_get("/v1/admin/endpoints/doomed").await.unwrap().unwrap();
    let reason = view["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("no successful attempt for 2s"), "{reason}");
    // Its delivery is parked, and nothing more is sent.
    receiver.drain();
    let page = host.admin_get("/v1/admin/deliveries?endpoint=doomed").await.unwrap().unwrap();
    assert_eq!(page["data"][0]["status"], "parked", "{page}");
    assert!(receiver.next(Duration::from_secs(1)).await.is_none(), "an attempt after disabling");
    let counted =
        host.metric("switchyard_endpoint_auto_disabled_total{endpoint=\"doomed\"}").await.unwrap();
    assert_eq!(counted, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_source_is_paced_by_its_rate_limit_and_loses_nothing() {
    use async_nats::jetstream::{self, stream};
    const MESSAGES: u64 = 40;
    let nats = switchyard_e2e::NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    let publisher = jetstream::new(client.clone());
    let config = stream::Config {
        name: "ORDERS".to_owned(),
        subjects: vec!["orders.>".to_owned()],
        ..Default::default()
    };
    publisher.create_stream(config).await.unwrap();
    for sequence in 0..MESSAGES {
        let body = format!(r#"{{"type":"order.created","sequence":{sequence}}}"#);
        publisher.publish("orders.created", body.into()).await.unwrap().await.unwrap();
    }
    let started = Instant::now();
    let config = format!(
        "[nats]\nurl = \"{}\"\n\n[sources.orders]\ntype = \"nats\"\nsubject = \"orders.>\"\n\
         jetstream = {{ stream = \"ORDERS\", durable = \"switchyard\" }}\n\
         rate_limit = {{ rate = \"10/s\", burst = 5 }}\n",
        nats.url()
    );
    let host = TestHost::start("durability = \"os\"", &config).await.unwrap();
    // Never ahead of burst + rate × time, and in the end every message is stored.
    loop {
        let stored = host.count_events().await.unwrap();
        let allowed = 5.0 + 10.0 * started.elapsed().as_secs_f64() + 1.0;
        assert!((stored as f64) <= allowed, "{stored} stored after {:?}", started.elapsed());
        if stored == MESSAGES {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "only {stored} stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    println!("{MESSAGES} NATS messages at 10/s (burst 5) stored in {took:.2?}");
    assert!(took >= Duration::from_millis(3_400), "not paced: {took:?}");
    let acked = host
        .metric("switchyard_nats_messages_total{source=\"orders\",outcome=\"acked\"}")
        .await
        .unwrap();
    assert_eq!(acked as u64, MESSAGES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_endpoints_take_the_same_traffic_settings_through_the_admin_api() {
    let mut receiver = TestReceiver::start().await;
    let host = TestHost::start(
        "admin_token = { value = \"traffic-admin\" }",
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\n",
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let create = |body: serde_json::Value| {
        client.post(host.url("/v1/admin/endpoints")).bearer_auth("traffic-admin").json(&body).send()
    };
    // The config file's rules and words.
    let refused = create(serde_json::json!({
        "url": receiver.url("/"), "rate": "often", "breaker": {"failures": 0}, "disable_after": "1ms"
    }))
    .await
    .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let answer: serde_json::Value = refused.json().await.unwrap();
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["rate", "breaker.failures", "disable_after"], "{answer}");
    let created = create(serde_json::json!({
        "url": receiver.url("/"), "rate": "5/s", "burst": 2, "breaker": "off", "adaptive": false
    }))
    .await
    .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    let traffic = endpoint_traffic(&host, &id).await;
    assert_eq!((traffic["rate"].as_str(), traffic["burst"].as_u64()), (Some("5/s"), Some(2)));
    assert!(traffic["breaker"].is_null() && traffic["adaptive"] == false, "{traffic}");
    // And they apply: 12 deliveries at 5/s with a burst of 2 take about two seconds.
    let started = Instant::now();
    send_events(&host, 12).await;
    arrivals(&mut receiver, 12, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1_900), "{took:?}");
}
