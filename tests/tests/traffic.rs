//! Traffic control through the real binary: ingest rate limits per source and per client
//! (webhooks and the publish API).

use std::net::IpAddr;
use std::time::Instant;

use switchyard_e2e::TestHost;

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
    assert_eq!(host.count_events().await.unwrap(), accepted as u64);
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
    assert_eq!(host.count_events().await.unwrap(), 9);
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
    assert_eq!(host.count_events().await.unwrap(), 2);
}
