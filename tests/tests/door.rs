//! Hostile clients at the door: the listener's limits (`server.limits`) against the real
//! binary on loopback. Slow heads and trickling bodies are closed by their limits while normal
//! webhooks keep flowing; connections past the limit wait outside the process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use switchyard_e2e::TestHost;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

const SOURCE: &str = "[sources.hooks]\n";
/// Bound on any one wait in these tests; never reached when the router behaves.
const PATIENCE: Duration = Duration::from_secs(120);

/// The open files limit this test process needs for its side of every connection.
fn enough_open_files(needed: u64) {
    let limit = switchyard::listener::raise_open_files_limit().unwrap_or(u64::MAX);
    assert!(limit >= needed, "the open files limit is {limit}; these tests need {needed}");
}

/// Waits until the router closes `stream` (end of file or a reset): true, or false when
/// `PATIENCE` runs out first.
async fn closed_by_router(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    let closed = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, closed).await.is_ok()
}

/// A connection that sends half a request head and nothing more.
async fn half_a_head(
    address: std::net::SocketAddr,
    connecting: Arc<Semaphore>,
) -> anyhow::Result<(bool, Duration)> {
    let permit = connecting.acquire_owned().await?;
    let mut stream = TcpStream::connect(address).await?;
    let started = Instant::now();
    stream.write_all(b"POST /webhooks/hooks HTTP/1.1\r\nhost: switchyard\r\ncontent-le").await?;
    drop(permit);
    Ok((closed_by_router(&mut stream).await, started.elapsed()))
}

/// A connection that announces a 1,000-byte body and sends it at 10 bytes a second.
async fn trickle(
    address: std::net::SocketAddr,
    connecting: Arc<Semaphore>,
) -> anyhow::Result<(bool, Duration)> {
    let permit = connecting.acquire_owned().await?;
    let stream = TcpStream::connect(address).await?;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let head = "POST /webhooks/hooks HTTP/1.1\r\nhost: switchyard\r\n\
                content-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    writer.write_all(head.as_bytes()).await?;
    drop(permit);
    let dripping = async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..1000 {
            ticks.tick().await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
        // Keep the write half open: the router is the one to close.
        std::future::pending::<()>().await;
    };
    let mut buffer = [0u8; 1024];
    let closed = async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let closed = tokio::select! {
        outcome = tokio::time::timeout(PATIENCE, closed) => outcome.is_ok(),
        () = dripping => false,
    };
    Ok((closed, started.elapsed()))
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 2,000 half-sent heads and 200 trickling bodies are closed by `header_timeout` and
/// `min_body_rate` while 1,000 webhooks sent meanwhile are all accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_trickling_bodies_are_closed_while_webhooks_flow() {
    const HEADS: usize = 2_000;
    const TRICKLES: usize = 200;
    const WEBHOOKS: usize = 1_000;
    enough_open_files(4_096);
    let limits =
        "limits = { header_timeout = \"2s\", body_timeout = \"2s\", min_body_rate = \"1KiB/s\" }";
    let host = TestHost::start(limits, SOURCE).await.unwrap();
    let address = host.address;

    let mut slow = JoinSet::new();
    // At most 64 connections being opened at a time: overflowing the kernel's accept queue
    // (which resets connections the router never saw) is not the subject here.
    let connecting = Arc::new(Semaphore::new(64));
    for index in 0..HEADS + TRICKLES {
        let connecting = connecting.clone();
        slow.spawn(async move {
            if index % 11 == 0 && index / 11 < TRICKLES {
                ("trickle", trickle(address, connecting).await)
            } else {
                ("head", half_a_head(address, connecting).await)
            }
        });
    }

    let client = reqwest::Client::new();
    let mut senders = JoinSet::new();
    for worker in 0..20 {
        let (client, url) = (client.clone(), host.url("/webhooks/hooks"));
        senders.spawn(async move {
            let mut answers = Vec::new();
            for index in 0..WEBHOOKS / 20 {
                let body = format!(r#"{{"type":"door.test","worker":{worker},"index":{index}}}"#);
                let started = Instant::now();
                let status =
                    client.post(&url).body(body).send().await.map(|answer| answer.status());
                answers.push((status.map_err(|error| error.to_string()), started.elapsed()));
            }
            answers
        });
    }
    let mut latencies = Vec::new();
    while let Some(answers) = senders.join_next().await {
        for (status, latency) in answers.unwrap() {
            assert_eq!(status, Ok(StatusCode::ACCEPTED));
            latencies.push(latency);
        }
    }
    assert_eq!(latencies.len(), WEBHOOKS);

    let (mut heads, mut trickles) = (Vec::new(), Vec::new());
    while let Some(joined) = slow.join_next().await {
        let (kind, outcome) = joined.unwrap();
        let (closed, after) = outcome.expect("the slow client connected");
        assert!(closed, "a {kind} connection was still open after {PATIENCE:?}");
        if kind == "head" { heads.push(after) } else { trickles.push(after) }
    }
    assert_eq!((heads.len(), trickles.len()), (HEADS, TRICKLES));

    let series = |reason: &str| {
        format!("switchyard_listener_closed_total{{listener=\"main\",reason=\"{reason}\"}}")
    };
    let by_header = host.metric(&series("header_timeout")).await.unwrap();
    let by_rate = host.metric(&series("min_body_rate")).await.unwrap();
    let by_stall = host.metric(&series("body_timeout")).await.unwrap();
    let by_idle = host.metric(&series("idle")).await.unwrap();
    println!(
        "closed: {by_header} header_timeout, {by_idle} idle, {by_rate} min_body_rate, {by_stall} body_timeout"
    );
    assert!(by_header >= HEADS as f64, "closed for their heads: {by_header}");
    assert_eq!(by_rate + by_stall, TRICKLES as f64);

    latencies.sort();
    heads.sort();
    trickles.sort();
    println!(
        "webhooks: {WEBHOOKS} accepted beside {HEADS} slow heads and {TRICKLES} trickles; \
         latency p50 {:?}, p99 {:?}, max {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
    println!(
        "slow heads closed after (median) {:?}; trickles closed after (median) {:?} \
         (limits 2 s; {by_rate} by min_body_rate, {by_stall} by body_timeout)",
        percentile(&heads, 0.5),
        percentile(&trickles, 0.5),
    );
}

/// With `connections = 50`, 2,000 idle clients connect at once: 50 are accepted, the kernel
/// queues some more (its accept queue) and the rest stay in their SYN retries (given up after
/// 2 s here). All of that waits outside the process: its resident memory stays within 16 MiB
/// of what it was; a webhook sent meanwhile waits rather than being refused, and is accepted
/// once the idle clients go away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_wait_outside_the_process() {
    const LIMIT: usize = 50;
    const IDLE: usize = 2_000;
    /// The stated bound on resident memory growth.
    const BOUND_KIB: u64 = 16 * 1024;
    enough_open_files(4_096);
    let limits = format!("limits = {{ connections = {LIMIT}, header_timeout = \"60s\" }}");
    let host = TestHost::start(&limits, SOURCE).await.unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for index in 0..20 {
        let answer = client
            .post(host.url("/webhooks/hooks"))
            .body(format!(r#"{{"type":"warm","index":{index}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    let before = resident_kib(host.pid());

    // Idle connections: the first `LIMIT` are accepted, the rest wait in the kernel's queue,
    // and past its length the connect itself waits (given up here after 2 s).
    let mut connecting = JoinSet::new();
    let address = host.address;
    for _ in 0..IDLE {
        connecting.spawn(async move {
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(address)).await
        });
    }
    let mut idle = Vec::new();
    while let Some(joined) = connecting.join_next().await {
        if let Ok(Ok(stream)) = joined.unwrap() {
            idle.push(stream);
        }
    }
    assert!(idle.len() > LIMIT, "only {} connections were made", idle.len());
    let after = resident_kib(host.pid());
    println!(
        "resident memory: {before} KiB before, {after} KiB with {} idle connections made \
         ({LIMIT} accepted, the rest queued by the kernel; {} more gave up connecting)",
        idle.len(),
        IDLE - idle.len()
    );
    assert!(after < before + BOUND_KIB, "resident memory grew from {before} KiB to {after} KiB");

    // A webhook now waits for a free connection slot.
    let mut webhook = tokio::spawn({
        let request = client.post(host.url("/webhooks/hooks")).body(r#"{"type":"late"}"#);
        async move { request.send().await.map(|answer| answer.status()) }
    });
    let early = tokio::time::timeout(Duration::from_secs(1), &mut webhook).await;
    assert!(early.is_err(), "the webhook was answered while every slot was taken: {early:?}");
    drop(idle);
    let status = tokio::time::timeout(PATIENCE, webhook).await.unwrap().unwrap().unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);

    let saturated = host.metric("switchyard_listener_saturated_total{listener=\"main\"}");
    assert!(saturated.await.unwrap() >= 1.0);
}

/// With `server.admin_listen`, the admin API is served there alone (404 on `server.listen`),
/// webhooks only on `server.listen`, and the admin listener has the same limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listen_serves_the_admin_api_alone_under_the_same_limits() {
    let server_extra = "admin_token = { value = \"door-admin\" }\nadmin_listen = \"127.0.0.1:0\"\n\
                        limits = { header_timeout = \"1s\" }";
    let host = TestHost::start(server_extra, SOURCE).await.unwrap();
    let admin = host.admin_address().await;
    assert_ne!(admin, host.address);
    let client = reqwest::Client::new();
    let get = |address: std::net::SocketAddr| {
        client.get(format!("http://{address}/v1/admin/endpoints")).bearer_auth("door-admin").send()
    };
    assert_eq!(get(host.address).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(get(admin).await.unwrap().status(), StatusCode::OK);
    let post = |address: std::net::SocketAddr| {
        client.post(format!("http://{address}/webhooks/hooks")).body(r#"{"type":"a"}"#).send()
    };
    assert_eq!(post(host.address).await.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(post(admin).await.unwrap().status(), StatusCode::NOT_FOUND);

    // A half-sent head on the admin listener is closed by `header_timeout` there too.
    let (closed, _) = half_a_head(admin, Arc::new(Semaphore::new(1))).await.unwrap();
    assert!(closed);
    let series = "switchyard_listener_closed_total{listener=\"admin\",reason=\"header_timeout\"}";
    assert!(host.metric(series).await.unwrap() >= 1.0);
}

/// HTTP/2 without TLS (prior knowledge) shares the port with HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_shares_the_port_with_http1() {
    let host = TestHost::start("", SOURCE).await.unwrap();
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let answer =
        client.post(host.url("/webhooks/hooks")).body(r#"{"type":"h2c"}"#).send().await.unwrap();
    assert_eq!(
        (answer.status(), answer.version()),
        (StatusCode::ACCEPTED, reqwest::Version::HTTP_2)
    );
}
