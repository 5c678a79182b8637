//! Cluster mode at scale: 10,000 dynamic endpoints on two nodes sharing one 3-server NATS
//! JetStream cluster (`[store] backend = "jetstream"`, every server fsyncing each write).
//!
//! The endpoints are created through both nodes' admin APIs; then a sample of 200 of them,
//! covering every partition, gets one event each (half sent to each node) and every event
//! arrives at its own endpoint's path; both nodes stay ready throughout. The idle CPU and
//! memory of the nodes and of the NATS servers are measured from `/proc` and printed (they are
//! the figures `docs/cluster.md` reports), and checked against a bound far below what a design
//! with one JetStream consumer per endpoint would cost (about 40 % of a core per 1,000).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard::store::jetstream::ownership::{PARTITIONS, partition_of};
use switchyard_e2e::{NatsCluster, TestHost, TestReceiver, post_webhook};

const TOKEN: &str = "scale-admin-token";
const ENDPOINTS: usize = 10_000;
/// Endpoints that get one event each.
const SAMPLE: usize = 200;
/// Admin clients creating endpoints at the same time, spread over both nodes.
const CREATORS: usize = 8;
const WAIT: Duration = Duration::from_secs(60);
/// How long idle CPU is measured over.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

fn config(cluster: &NatsCluster) -> String {
    let quoted = |urls: Vec<String>| {
        urls.iter().map(|url| format!("\"{url}\"")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "[store]\nbackend = \"jetstream\"\nreplicas = 3\nprefix = \"scale\"\n\
         monitor_urls = [{monitors}]\n\n\
         [nats]\nurls = [{urls}]\n\n\
         [egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [sources.app]\ntype = \"http\"\n",
        monitors = quoted(cluster.monitor_urls()),
        urls = quoted(cluster.urls()),
    )
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process runs");
    // Fields after the command name (which may hold spaces), counted from `state` (field 3).
    let fields: Vec<&str> =
        stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports these in USER_HZ, 100 per second on every platform it runs on.
    Duration::from_millis(ticks * 10)
}

/// Resident memory of a process, in MB.
fn resident_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("a VmRSS line");
    let kilobytes: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kilobytes / 1024.0
}

/// Each process's share of a core over `window` (1.0 = one core busy) and its RSS in MB.
async fn idle_cost(pids: &[u32], window: Duration) -> Vec<(f64, f64)> {
    let before: Vec<Duration> = pids.iter().map(|pid| cpu_time(*pid)).collect();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = started.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|(pid, before)| {
            let used = cpu_time(*pid).saturating_sub(before).as_secs_f64();
            (used / elapsed, resident_mb(*pid))
        })
        .collect()
}

async fn ready(client: &reqwest::Client, node: &TestHost) -> StatusCode {
    client.get(node.url("/readyz")).send().await.expect("the node answers").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_endpoints_on_two_nodes_deliver_and_stay_cheap_when_idle() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let server = format!("admin_token = {{ value = \"{TOKEN}\" }}\ndurability = \"fsync\"");
    let config = config(&cluster);
    let first = TestHost::start(&server, &config).await.unwrap();
    let second = TestHost::start(&server, &config).await.unwrap();
    let nodes = Arc::new([first, second]);
    let client = reqwest::Client::new();

    // Endpoint `i` takes events of type `scale.i` only, at its own path.
    let started = Instant::now();
    let mut creators = Vec::new();
    for creator in 0..CREATORS {
        let (nodes, client) = (nodes.clone(), client.clone());
        let base = receiver.url("/endpoint");
        creators.push(tokio::spawn(async move {
            let node = &nodes[creator % 2];
            let mut made = Vec::new();
            for index in (creator..ENDPOINTS).step_by(CREATORS) {
                let input = json!({
                    "url": format!("{base}/{index}"),
                    "sources": ["app"],
                    "types": [format!("scale.{index}")],
                });
                let response = client
                    .post(node.url("/v1/admin/endpoints"))
                    .bearer_auth(TOKEN)
                    .json(&input)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED, "endpoint {index}");
                let created: Value = response.json().await.unwrap();
                made.push((index, created["endpoint"]["id"].as_str().unwrap().to_owned()));
            }
            made
        }));
    }
    let mut ids = HashMap::new();
    for creator in creators {
        ids.extend(creator.await.unwrap());
    }
    let created_in = started.elapsed();
    assert_eq!(ids.len(), ENDPOINTS);
    for node in nodes.iter() {
        assert_eq!(ready(&client, node).await, StatusCode::OK, "ready after the creates");
    }

    // The sample: every 50th endpoint, which covers every partition.
    let sample: Vec<usize> = (0..ENDPOINTS).step_by(ENDPOINTS / SAMPLE).collect();
    let partitions: HashSet<u16> = sample.iter().map(|index| partition_of(&ids[index])).collect();
    assert_eq!(partitions.len(), usize::from(PARTITIONS), "the sample covers every partition");

    // Each node must know every endpoint (the other node's creates reach it through the log)
    // before its webhooks are routed: the last one each creator made is known on both.
    for node in nodes.iter() {
        for index in ENDPOINTS - CREATORS..ENDPOINTS {
            let path = format!("/v1/admin/endpoints/{}", ids[&index]);
            let known = switchyard_e2e::eventually_async(WAIT, || async {
                let response = client.get(node.url(&path)).bearer_auth(TOKEN).send().await.ok()?;
                (response.status() == StatusCode::OK).then_some(())
            })
            .await;
            assert!(known.is_some(), "endpoint {index} known on {}", node.address);
        }
    }

    let sending = Instant::now();
    let mut expected = HashMap::new();
    for (n, index) in sample.iter().enumerate() {
        let body = json!({"type": format!("scale.{index}"), "n": n}).to_string();
        let headers = [("content-type", "application/json")];
        let id = post_webhook(&client, &nodes[n % 2], "app", &headers, body)
            .await
            .expect("a node takes the webhook");
        expected.insert(id, format!("/endpoint/{index}"));
    }
    let mut arrived: HashMap<String, String> = HashMap::new();
    while arrived.len() < expected.len() {
        let Some(request) = receiver.next(WAIT).await else { break };
        let id = request.header("webhook-id").unwrap_or_default().to_owned();
        assert_eq!(expected.get(&id), Some(&request.path), "event `{id}` at its own path");
        arrived.insert(id, request.path);
    }
    let delivered_in = sending.elapsed();
    let missing: Vec<_> = expected.keys().filter(|id| !arrived.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {SAMPLE} events not delivered: {missing:?}", missing.len());
    for node in nodes.iter() {
        assert_eq!(ready(&client, node).await, StatusCode::OK, "ready after delivering");
    }

    // Idle: nothing sent, both nodes and the three servers measured over the same window.
    let mut pids: Vec<u32> = nodes.iter().map(TestHost::pid).collect();
    pids.extend(cluster.pids());
    let costs = idle_cost(&pids, IDLE_WINDOW).await;
    let (node_costs, server_costs) = costs.split_at(2);
    let show = |costs: &[(f64, f64)]| {
        costs
            .iter()
            .map(|(cpu, rss)| format!("{:.1} % of a core, {rss:.0} MB", cpu * 100.0))
            .collect::<Vec<_>>()
            .join("; ")
    };
    eprintln!(
        "{ENDPOINTS} endpoints created in {:.1} s ({:.2} ms each), {SAMPLE} events to {SAMPLE} \
         of them delivered in {:.2} s; idle over {IDLE_WINDOW:?}: nodes {}; NATS servers {}",
        created_in.as_secs_f64(),
        created_in.as_secs_f64() * 1000.0 / ENDPOINTS as f64,
        delivered_in.as_secs_f64(),
        show(node_costs),
        show(server_costs),
    );
    // One consumer per endpoint would cost about 4 cores here; the partitions cost next to
    // nothing. A tenth of a core per process leaves room for a busy machine.
    for (cpu, _) in costs.iter() {
        assert!(*cpu < 0.1, "idle CPU {:.1} % of a core", cpu * 100.0);
    }
    for node in nodes.iter() {
        assert_eq!(ready(&client, node).await, StatusCode::OK, "ready when idle");
    }
    drop(cluster);
}
