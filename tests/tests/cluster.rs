//! Cluster mode through the real binary: router nodes sharing one 3-server NATS JetStream
//! cluster (`[store] backend = "jetstream"`), every server fsyncing each write.
//!
//! Two nodes take webhooks and every event reaches every endpoint; either node's admin API
//! shows what the other stored; dynamic endpoints created through one node (before the other
//! started, and while it runs) get the other's webhooks, and are delivered to by the other once
//! the first has stopped (its partitions move); a 410 answered to one node disables the endpoint
//! on the other, and a secret rotation made on one node signs on the other at once; a SQLite
//! data directory migrates to the cluster (`store migrate`) and its work resumes there; a node
//! SIGKILLed under load loses nothing acknowledged, and the receiver never sees more requests
//! in flight per endpoint than its `max_in_flight` plus the handover overlap; a node refuses
//! `durability = "fsync"` on servers that do not fsync each write; a node behind a long log
//! answers `/readyz` 503 with its lag until it has caught up; once snapshots have trimmed the
//! log a node with an empty data directory restores one and delivers; and `store rotate-key`
//! re-seals the cluster's endpoint records and purges the old ones.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_e2e::{
    NatsCluster, NatsServer, Reply, TestHost, TestReceiver, eventually_async, free_port,
    post_webhook, run_cli, verify_with_standardwebhooks,
};

const TOKEN: &str = "cluster-admin-token";
const WAIT: Duration = Duration::from_secs(30);

/// `[server]` lines of every node.
fn server() -> String {
    format!("admin_token = {{ value = \"{TOKEN}\" }}\ndurability = \"fsync\"")
}

/// The rest of a node's config: the cluster store, one source, one config endpoint.
fn config(cluster: &NatsCluster, audit_url: &str) -> String {
    let quoted = |urls: Vec<String>| {
        urls.iter().map(|url| format!("\"{url}\"")).collect::<Vec<_>>().join(", ")
    };
    format!(
        "[store]\nbackend = \"jetstream\"\nreplicas = 3\nprefix = \"e2e\"\n\
         monitor_urls = [{monitors}]\n\n\
         [nats]\nurls = [{urls}]\n\n\
         [egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [sources.app]\ntype = \"http\"\n\n\
         [endpoints.audit]\nurl = \"{audit_url}\"\n\n\
         [routes.audit]\nfrom = [\"app\"]\nto = [\"audit\"]\n",
        monitors = quoted(cluster.monitor_urls()),
        urls = quoted(cluster.urls()),
    )
}

async fn publish(client: &reqwest::Client, host: &TestHost, n: usize) -> String {
    let body = json!({"type": "thing.happened", "n": n}).to_string();
    post_webhook(client, host, "app", &[("content-type", "application/json")], body)
        .await
        .expect("a node takes the webhook")
}

/// The `webhook-id`s that reached each path, waiting until `expected` ids reached each of
/// `paths`; answers them with how many requests arrived in all.
async fn received(
    receiver: &mut TestReceiver,
    paths: &[&str],
    expected: &HashSet<String>,
) -> (HashMap<String, HashSet<String>>, usize) {
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    let mut requests = 0;
    let done = |seen: &HashMap<String, HashSet<String>>| {
        paths.iter().all(|path| seen.get(*path).is_some_and(|ids| expected.is_subset(ids)))
    };
    while !done(&seen) {
        let Some(request) = receiver.next(WAIT).await else { break };
        requests += 1;
        let id = request.header("webhook-id").unwrap_or_default().to_owned();
        seen.entry(request.path.clone()).or_default().insert(id);
    }
    (seen, requests)
}

fn arrived(seen: &HashMap<String, HashSet<String>>, path: &str, id: &str) -> bool {
    seen.get(path).is_some_and(|ids| ids.contains(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_every_event_and_one_serves_an_endpoint_made_on_the_other() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let config = config(&cluster, &receiver.url("/audit"));
    let mut first = TestHost::start(&server(), &config).await.unwrap();
    assert!(first.logs.contains("every NATS server fsyncs each write"), "the check ran");
    let client = reqwest::Client::new();

    // A dynamic endpoint, made through the first node.
    let created = client
        .post(first.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": receiver.url("/dynamic"), "sources": ["app"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let dynamic = created["endpoint"]["id"].as_str().unwrap().to_owned();

    let second = TestHost::start(&server(), &config).await.unwrap();
    // The partitions spread: the first node hands the second its share.
    let logs = second.logs.clone();
    let spread = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| line.contains("partition taken").then_some(()))
    });
    assert!(spread.await.unwrap().is_some(), "the second node takes partitions");
    let logs = first.logs.clone();
    let handed = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| line.contains("partition released").then_some(()))
    });
    assert!(handed.await.unwrap().is_some(), "the first node released them");
    let nodes = [&first, &second];

    // An endpoint made through the first node while the second runs: the second routes its
    // webhooks to it within a second.
    let made = client
        .post(first.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": receiver.url("/live"), "sources": ["app"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let live = made["endpoint"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/admin/endpoints/{live}");
    let known = eventually_async(Duration::from_secs(1), || async {
        let response = client.get(second.url(&path)).bearer_auth(TOKEN).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(known.is_some(), "the second node knows the new endpoint within a second");

    // Webhooks to both nodes: every event reaches both endpoints.
    let mut ids = HashSet::new();
    let mut taken_by_first = None;
    for n in 0..20 {
        let id = publish(&client, nodes[n % 2], n).await;
        taken_by_first.get_or_insert_with(|| id.clone());
        ids.insert(id);
    }
    let paths = ["/audit", "/dynamic", "/live"];
    let (seen, requests) = received(&mut receiver, &paths, &ids).await;
    for path in paths {
        let missing: Vec<_> = ids.iter().filter(|id| !arrived(&seen, path, id)).collect();
        assert!(missing.is_empty(), "{path} missed {missing:?}");
    }
    assert!(requests >= 60, "{requests} requests");

    // Either node's admin API shows what the other took and delivered.
    let taken_by_first = taken_by_first.unwrap().parse().unwrap();
    let delivered = eventually_async(WAIT, || async {
        let deliveries = second.deliveries_of(taken_by_first).await.ok()?;
        let states: Vec<_> = deliveries.iter().map(|delivery| delivery.state).collect();
        (states.len() == 3
            && states.iter().all(|state| *state == switchyard::store::DeliveryState::Delivered))
        .then_some(states)
    })
    .await;
    assert!(delivered.is_some(), "the second node sees every delivery delivered");
    let listed: Value = client
        .get(second.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.to_string().contains(&dynamic), "{listed}");

    // The first node stops cleanly and gives its partitions back: the second delivers
    // everything now, to the endpoint made through the first included.
    assert!(first.terminate().await.unwrap().success());
    let mut later = HashSet::new();
    for n in 20..26 {
        later.insert(publish(&client, &second, n).await);
    }
    let (seen, _) = received(&mut receiver, &paths, &later).await;
    for path in paths {
        let missing: Vec<_> = later.iter().filter(|id| !arrived(&seen, path, id)).collect();
        assert!(missing.is_empty(), "{path} missed {missing:?} after the first node stopped");
    }
    // It says so in its metrics: every partition, and its projection caught up.
    let metrics = eventually_async(WAIT, || async {
        let owned = second.metric("switchyard_store_partitions_owned{}").await.ok()?;
        let lag = second.metric("switchyard_store_log_lag{}").await.ok()?;
        (owned == 16.0 && lag == 0.0).then_some(())
    })
    .await;
    assert!(metrics.is_some(), "the second node owns every partition, with no lag");
    drop(cluster);
}

/// `max_in_flight` of the dynamic endpoint in the node-kill test: low, so that the load
/// reaches it.
const DYNAMIC_MAX_IN_FLIGHT: usize = 4;

/// A receiver that answers 200 after `delay` and counts, per path, the requests it is
/// answering at the same time; it hands on each request's path and `webhook-id`.
struct ConcurrencyReceiver {
    address: std::net::SocketAddr,
    requests: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    counts: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    server: tokio::task::JoinHandle<()>,
}

/// Counts one request in flight on its path until dropped (also when the connection closes).
struct InFlight {
    counts: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    path: String,
}

impl InFlight {
    fn enter(counts: &Arc<Mutex<HashMap<String, (usize, usize)>>>, path: &str) -> Self {
        let mut all = counts.lock().unwrap();
        let (now, most) = all.entry(path.to_owned()).or_default();
        *now += 1;
        *most = (*most).max(*now);
        Self { counts: counts.clone(), path: path.to_owned() }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((now, _)) = self.counts.lock().unwrap().get_mut(&self.path) {
            *now -= 1;
        }
    }
}

impl ConcurrencyReceiver {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, requests) = tokio::sync::mpsc::unbounded_channel();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let state = (counts.clone(), sender);
        let answer = move |request: axum::extract::Request| {
            let (counts, sender) = state.clone();
            async move {
                let path = request.uri().path().to_owned();
                let id = request
                    .headers()
                    .get("webhook-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _in_flight = InFlight::enter(&counts, &path);
                tokio::time::sleep(delay).await;
                let _ = sender.send((path, id));
                StatusCode::OK
            }
        };
        let app = axum::Router::new().fallback(answer);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, requests, counts, server }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The next request answered (its path and `webhook-id`), waiting at most `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<(String, String)> {
        tokio::time::timeout(timeout, self.requests.recv()).await.ok().flatten()
    }

    /// The most requests each path was answering at once.
    fn most_in_flight(&self) -> HashMap<String, usize> {
        let counts = self.counts.lock().unwrap();
        counts.iter().map(|(path, (_, most))| (path.clone(), *most)).collect()
    }
}

impl Drop for ConcurrencyReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_and_restarted_loses_no_acknowledged_event() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    // Each answer takes a little while, so that attempts are under way when the node dies;
    // the receiver counts each path's requests in flight.
    let mut receiver = ConcurrencyReceiver::start(Duration::from_millis(20)).await;
    let config = config(&cluster, &receiver.url("/audit"));
    let mut first = TestHost::start(&server(), &config).await.unwrap();
    let second = TestHost::start(&server(), &config).await.unwrap();
    let client = reqwest::Client::new();
    let made = client
        .post(first.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "url": receiver.url("/dynamic"),
            "sources": ["app"],
            "max_in_flight": DYNAMIC_MAX_IN_FLIGHT,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let logs = second.logs.clone();
    let spread = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| line.contains("partition taken").then_some(()))
    });
    assert!(spread.await.unwrap().is_some(), "the second node takes partitions");

    // Webhooks to both; the first node is SIGKILLed a third of the way, restarted at two
    // thirds. Only what got a 202 counts.
    let mut acknowledged = HashSet::new();
    let mut first_up = true;
    for n in 0..300 {
        if n == 100 {
            first.kill();
            first_up = false;
        }
        if n == 200 {
            first.restart().await.unwrap();
            first_up = true;
        }
        let target = if first_up && n % 2 == 0 { &first } else { &second };
        let body = json!({"type": "thing.happened", "n": n}).to_string();
        let sent =
            post_webhook(&client, target, "app", &[("content-type", "application/json")], body);
        if let Ok(id) = sent.await {
            acknowledged.insert(id);
        }
    }
    assert!(acknowledged.len() >= 290, "{} acknowledged", acknowledged.len());
    let mut arrivals: HashMap<(String, String), usize> = HashMap::new();
    let complete = |arrivals: &HashMap<(String, String), usize>| {
        acknowledged.iter().all(|id| {
            ["/audit", "/dynamic"]
                .iter()
                .all(|path| arrivals.contains_key(&(path.to_string(), id.clone())))
        })
    };
    while !complete(&arrivals) {
        let Some((path, id)) = receiver.next(Duration::from_secs(60)).await else { break };
        *arrivals.entry((path, id)).or_default() += 1;
    }
    let lost: Vec<_> = acknowledged
        .iter()
        .flat_map(|id| ["/audit", "/dynamic"].map(|path| (path.to_string(), id.clone())))
        .filter(|key| !arrivals.contains_key(key))
        .collect();
    assert!(lost.is_empty(), "{} acknowledged deliveries lost: {lost:?}", lost.len());
    // Duplicates: at most the attempts under way on the killed node, per endpoint.
    let duplicates: usize = arrivals.values().map(|count| count - 1).sum();
    eprintln!(
        "a node killed under load: {} events, {duplicates} duplicate requests",
        acknowledged.len()
    );
    assert!(duplicates <= 2 * 16, "{duplicates} duplicates");
    // Concurrency at the receiver: each endpoint's `max_in_flight`, exceeded only during a
    // handover (the restarted node takes its partitions back) by the old owner's attempts
    // still under way, at most its own `max_in_flight` more. The killed node's attempts end
    // with it, and its partitions wait for its leases to expire.
    let most = receiver.most_in_flight();
    eprintln!("a node killed under load: most requests in flight per endpoint {most:?}");
    for (path, limit) in [("/audit", 16), ("/dynamic", DYNAMIC_MAX_IN_FLIGHT)] {
        let seen = most.get(path).copied().unwrap_or_default();
        assert!(seen >= 1, "{path} was measured");
        assert!(seen <= 2 * limit, "{path}: {seen} requests in flight, limit {limit}");
    }
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_log_leader_pauses_writes_and_loses_nothing_acknowledged() {
    let mut cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let config = config(&cluster, &receiver.url("/audit"));
    let host = TestHost::start(&server(), &config).await.unwrap();
    let client = reqwest::Client::new();
    // The server leading the log stream, from the JetStream API.
    let nats = async_nats::connect(cluster.urls()[0].as_str()).await.unwrap();
    let mut stream = async_nats::jetstream::new(nats).get_stream("e2e_log").await.unwrap();
    let info = stream.info().await.unwrap();
    let leader = info.cluster.as_ref().and_then(|cluster| cluster.leader.clone()).unwrap();
    let index: usize = leader.trim_start_matches('n').parse::<usize>().unwrap() - 1;

    let mut acknowledged = HashSet::new();
    for n in 0..50 {
        acknowledged.insert(publish_once(&client, &host, n).await.expect("a 202 before the kill"));
    }
    cluster.stop(index);
    let killed = std::time::Instant::now();
    // Senders retry what is refused (503) until writes resume on a new leader.
    let (mut refused, mut paused) = (0, None);
    let mut n = 50;
    while acknowledged.len() < 100 {
        assert!(killed.elapsed() < Duration::from_secs(60), "writes never resumed");
        n += 1;
        match publish_once(&client, &host, n).await {
            Some(id) => {
                paused.get_or_insert_with(|| killed.elapsed());
                acknowledged.insert(id);
            }
            None => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tokio::task::block_in_place(|| cluster.restart(index)).unwrap();
    let started = killed;
    let (seen, _) = received(&mut receiver, &["/audit"], &acknowledged).await;
    let lost: Vec<_> = acknowledged.iter().filter(|id| !arrived(&seen, "/audit", id)).collect();
    eprintln!(
        "log leader `{leader}` killed: {} acknowledged, {refused} refused, writes paused {:?}, \
         all delivered {:.1}s after the kill",
        acknowledged.len(),
        paused,
        started.elapsed().as_secs_f64()
    );
    assert!(lost.is_empty(), "{} acknowledged events lost: {lost:?}", lost.len());
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_and_server_loses_nothing_acknowledged() {
    let mut cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let config = config(&cluster, &receiver.url("/audit"));
    let mut nodes = [
        TestHost::start(&server(), &config).await.unwrap(),
        TestHost::start(&server(), &config).await.unwrap(),
    ];
    let client = reqwest::Client::new();
    let mut acknowledged = HashSet::new();
    let mut n = 0;
    // Five steps: each node, then each server, restarted (SIGKILL, start) in turn, with
    // webhooks to the nodes before and after each; a sender retries what is refused.
    for step in 0..5 {
        for _ in 0..20 {
            n += 1;
            acknowledged.insert(send_until_acknowledged(&client, &nodes, n).await);
        }
        match step {
            0 | 1 => nodes[step].restart().await.unwrap(),
            server => tokio::task::block_in_place(|| cluster.restart(server - 2)).unwrap(),
        }
    }
    for _ in 0..20 {
        n += 1;
        acknowledged.insert(send_until_acknowledged(&client, &nodes, n).await);
    }
    let (seen, _) = received(&mut receiver, &["/audit"], &acknowledged).await;
    let lost: Vec<_> = acknowledged.iter().filter(|id| !arrived(&seen, "/audit", id)).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost: {lost:?}", lost.len());
    assert_eq!(acknowledged.len(), 120);
    drop(cluster);
}

/// Posts webhook `n` to the nodes in turn until one acknowledges it (a sender retrying).
async fn send_until_acknowledged(client: &reqwest::Client, nodes: &[TestHost], n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut turn = n;
    loop {
        if let Some(id) = publish_once(client, &nodes[turn % nodes.len()], n).await {
            return id;
        }
        assert!(std::time::Instant::now() < deadline, "webhook {n} was never acknowledged");
        turn += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts one webhook; `None` when it was not acknowledged (a 503 during an election).
async fn publish_once(client: &reqwest::Client, host: &TestHost, n: usize) -> Option<String> {
    let body = json!({"type": "thing.happened", "n": n}).to_string();
    post_webhook(client, host, "app", &[("content-type", "application/json")], body).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_durability_is_refused_on_servers_that_do_not_fsync_each_write() {
    let monitor = free_port().unwrap();
    let server = NatsServer::start_with(&["-m", &monitor.to_string()]).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndurability = \"fsync\"\n\n\
         [store]\nbackend = \"jetstream\"\nreplicas = 1\n\
         monitor_urls = [\"http://127.0.0.1:{monitor}\"]\n\n[nats]\nurl = \"{}\"\n",
        server.url()
    );
    std::fs::write(directory.path().join("switchyard.toml"), text).unwrap();
    let output = run_cli(directory.path(), &["run", "-c", "switchyard.toml"], &[]);
    assert_ne!(output.code, Some(0), "{output:?}");
    assert!(output.stderr.contains("does not fsync each write"), "{}", output.stderr);
    assert!(output.stderr.contains("sync_interval: always"), "{}", output.stderr);
}

/// An address nothing listens on: deliveries to it fail to connect.
fn closed_url(path: &str) -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}{path}")
}

/// Endpoints `later` (one retry, an hour away) and `dead` (dead after one quick retry) at
/// `later_url` and `dead_url`, both routed from source `app`.
fn migration_config(store: &str, later_url: &str, dead_url: &str) -> String {
    format!(
        "{store}[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [sources.app]\ntype = \"http\"\n\n\
         [endpoints.later]\nurl = \"{later_url}\"\nretry = {{ schedule = [\"1h\"] }}\n\n\
         [endpoints.dead]\nurl = \"{dead_url}\"\nretry = {{ schedule = [\"10ms\"] }}\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"later\", \"dead\"]\n"
    )
}

async fn admin_json(client: &reqwest::Client, host: &TestHost, path: &str) -> Value {
    let response = client.get(host.url(path)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_migrates_to_the_cluster_once_and_its_work_resumes_there() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let client = reqwest::Client::new();

    // A single node on SQLite whose endpoints are down: `later` keeps its deliveries pending,
    // `dead` dead-letters them.
    let sqlite = migration_config("", &closed_url("/later"), &closed_url("/dead"));
    let mut host = TestHost::start(&server(), &sqlite).await.unwrap();
    let made = client
        .post(host.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": receiver.url("/dynamic"), "sources": ["app"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let dynamic = made["endpoint"]["id"].as_str().unwrap().to_owned();
    let mut ids = HashSet::new();
    for n in 0..5 {
        ids.insert(publish(&client, &host, n).await);
    }
    let dead = eventually_async(WAIT, || async {
        let page = admin_json(&client, &host, "/v1/admin/dead-letters?endpoint=dead").await;
        (page["data"].as_array()?.len() == 5).then_some(())
    })
    .await;
    assert!(dead.is_some(), "the SQLite node dead-lettered every delivery to `dead`");
    let pending = admin_json(&client, &host, "/v1/admin/deliveries?status=pending&endpoint=later");
    assert_eq!(pending.await["data"].as_array().unwrap().len(), 5);
    assert!(host.terminate().await.unwrap().success());

    // The same directory, now configured for the cluster, with both endpoints up.
    let store = {
        let quoted = |urls: Vec<String>| {
            urls.iter().map(|url| format!("\"{url}\"")).collect::<Vec<_>>().join(", ")
        };
        format!(
            "[store]\nbackend = \"jetstream\"\nreplicas = 3\nprefix = \"e2e\"\n\
             monitor_urls = [{}]\n\n[nats]\nurls = [{}]\n\n",
            quoted(cluster.monitor_urls()),
            quoted(cluster.urls())
        )
    };
    let clustered = migration_config(&store, &receiver.url("/later"), &receiver.url("/dead"));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{}\n\n{clustered}\n",
        server()
    );
    std::fs::write(host.config_dir().join("switchyard.toml"), text).unwrap();
    let migrate = ["store", "migrate", "--from", "sqlite", "--to", "jetstream", "-c"];
    let arguments = [&migrate[..], &["switchyard.toml"]].concat();
    let directory = host.config_dir();
    let first = tokio::task::spawn_blocking({
        let (directory, arguments) = (directory.clone(), arguments.clone());
        move || run_cli(&directory, &arguments, &[])
    });
    let first = first.await.unwrap();
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(
        first.stdout.starts_with(
            "copied 1 endpoint, 0 endpoints disabled; 5 events with 5 pending, 0 parked and 5 \
             dead deliveries"
        ),
        "{}",
        first.stdout
    );

    // A node on the cluster delivers every pending delivery, and lists the dead letters.
    host.restart().await.unwrap();
    let (seen, _) = received(&mut receiver, &["/later"], &ids).await;
    let missing: Vec<_> = ids.iter().filter(|id| !arrived(&seen, "/later", id)).collect();
    assert!(missing.is_empty(), "pending deliveries not delivered after the switch: {missing:?}");
    let page = admin_json(&client, &host, "/v1/admin/dead-letters?endpoint=dead").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 5, "{page}");
    let listed = admin_json(&client, &host, &format!("/v1/admin/endpoints/{dynamic}")).await;
    assert!(listed.to_string().contains("/dynamic"), "{listed}");
    let redriven = client
        .post(host.url("/v1/admin/dead-letters/redrive"))
        .bearer_auth(TOKEN)
        .json(&json!({"endpoint": "dead"}))
        .send()
        .await
        .unwrap();
    assert_eq!(redriven.status(), StatusCode::OK);
    let redriven: Value = redriven.json().await.unwrap();
    assert_eq!(redriven["deliveries"].as_u64(), Some(5), "{redriven}");
    let (seen, _) = received(&mut receiver, &["/dead"], &ids).await;
    let missing: Vec<_> = ids.iter().filter(|id| !arrived(&seen, "/dead", id)).collect();
    assert!(missing.is_empty(), "redriven dead letters not delivered: {missing:?}");

    // Running the migration again copies nothing.
    assert!(host.terminate().await.unwrap().success());
    let again = tokio::task::spawn_blocking(move || run_cli(&directory, &arguments, &[]));
    let again = again.await.unwrap();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(
        again.stdout.starts_with(
            "copied 0 endpoints, 0 endpoints disabled; 0 events with 0 pending, 0 parked and 0 \
             dead deliveries, 0 claiming a dedupe key; 5 events already in the cluster"
        ),
        "{}",
        again.stdout
    );
    drop(cluster);
}

/// This node's id in the cluster (kept in its data directory).
fn node_id(host: &TestHost) -> String {
    let path = host.data_dir().join("jetstream/e2e/node-id");
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Creates dynamic endpoints on `host` at `url` until one falls in a partition that `owner`
/// owns among `nodes` (the others are deleted); answers its id and signing secret.
async fn endpoint_owned_by(
    client: &reqwest::Client,
    host: &TestHost,
    url: &str,
    owner: &str,
    nodes: &[String],
) -> (String, String) {
    use switchyard::store::jetstream::ownership::{partition_of, preferred_owner};
    for _ in 0..64 {
        let created = client
            .post(host.url("/v1/admin/endpoints"))
            .bearer_auth(TOKEN)
            .json(&json!({"url": url, "sources": ["app"], "retry": {"schedule": ["1h"]}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
        if preferred_owner(partition_of(&id), nodes) == Some(owner) {
            return (id, created["secret"].as_str().unwrap().to_owned());
        }
        let deleted = client
            .delete(host.url(&format!("/v1/admin/endpoints/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(deleted.status().is_success(), "{}", deleted.status());
    }
    panic!("no endpoint in 64 fell in a partition of `{owner}`");
}

/// Waits until `host` logs that it took `partition`.
async fn wait_taken(host: &TestHost, partition: u16) {
    let logs = host.logs.clone();
    let wanted = format!("partition={partition}");
    let taken = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| {
            (line.contains("partition taken") && line.split_whitespace().any(|word| word == wanted))
                .then_some(())
        })
    });
    assert!(taken.await.unwrap().is_some(), "partition {partition} never taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_seen_by_one_node_disables_the_endpoint_on_the_other_and_a_rotation_signs_there_at_once()
 {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let audit = TestReceiver::start().await;
    let mut gone = TestReceiver::scripted(Vec::new(), Reply::Status(410)).await;
    let mut signed = TestReceiver::start().await;
    let config = config(&cluster, &audit.url("/audit"));
    let first = TestHost::start(&server(), &config).await.unwrap();
    let mut second = TestHost::start(&server(), &config).await.unwrap();
    let nodes = [node_id(&first), node_id(&second)];
    let client = reqwest::Client::new();

    // Both made through the first node: `gone` delivered by the second, `rotated` by the first.
    let (gone_id, _) = endpoint_owned_by(&client, &first, &gone.url("/"), &nodes[1], &nodes).await;
    let (rotated_id, secret) =
        endpoint_owned_by(&client, &first, &signed.url("/"), &nodes[0], &nodes).await;
    use switchyard::store::jetstream::ownership::partition_of;
    wait_taken(&second, partition_of(&gone_id)).await;

    // A 410 answered to the second node: the first node's admin API shows the endpoint
    // disabled.
    let event = publish(&client, &first, 0).await;
    let answered = gone.next(WAIT).await.expect("the second node delivers to `gone`");
    assert_eq!(answered.header("webhook-id"), Some(event.as_str()));
    let seen = std::time::Instant::now();
    let path = format!("/v1/admin/endpoints/{gone_id}");
    let disabled = eventually_async(WAIT, || async {
        let view = admin_json(&client, &first, &path).await;
        (view["disabled"] == json!(true)).then_some(view)
    })
    .await;
    let disabled = disabled.expect("the first node shows the endpoint disabled");
    eprintln!("a 410 on one node: disabled on the other after {:?}", seen.elapsed());
    assert!(seen.elapsed() < Duration::from_secs(2), "{:?}", seen.elapsed());
    assert!(disabled["disabled_reason"].as_str().unwrap_or_default().contains("410"), "{disabled}");
    let first_delivery = signed.next(WAIT).await.expect("the first node delivers to `rotated`");
    let first_delivery = std::slice::from_ref(&first_delivery);
    assert_eq!(verify_with_standardwebhooks(&secret, first_delivery), vec![Ok(())]);

    // A rotation made on the second node, retiring the old key at once: the first node signs
    // with the new key within a second.
    let rotated = client
        .post(second.url(&format!("/v1/admin/endpoints/{rotated_id}/secret/rotate")))
        .bearer_auth(TOKEN)
        .json(&json!({"overlap": "0s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated_at = std::time::Instant::now();
    let rotated: Value = rotated.json().await.unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let mut n = 1;
    let sent_at = loop {
        let sent_at = rotated_at.elapsed();
        assert!(sent_at < Duration::from_secs(5), "the first node never signed with the new key");
        publish(&client, &first, n).await;
        n += 1;
        let request = signed.next(WAIT).await.expect("the first node delivers to `rotated`");
        let request = std::slice::from_ref(&request);
        if verify_with_standardwebhooks(&new_secret, request) == vec![Ok(())] {
            assert!(verify_with_standardwebhooks(&secret, request)[0].is_err(), "old key retired");
            break sent_at;
        }
    };
    eprintln!(
        "a rotation on one node: the other signs with the new key for events sent {sent_at:?} after it"
    );
    assert!(sent_at < Duration::from_secs(1), "{sent_at:?}");

    // The second node leaves; the first, now delivering every partition, sends nothing more
    // to the disabled endpoint: its new deliveries are parked.
    assert!(second.terminate().await.unwrap().success());
    let owned = eventually_async(WAIT, || async {
        let owned = first.metric("switchyard_store_partitions_owned{}").await.ok()?;
        (owned == 16.0).then_some(())
    })
    .await;
    assert!(owned.is_some(), "the first node owns every partition");
    let last = publish(&client, &first, n).await;
    let request = signed.next(WAIT).await.expect("the first node delivers the last event");
    assert_eq!(request.header("webhook-id"), Some(last.as_str()));
    let deliveries = first.deliveries_of(last.parse().unwrap()).await.unwrap();
    let states: Vec<_> = deliveries.iter().map(|delivery| delivery.state).collect();
    assert!(
        states.contains(&switchyard::store::DeliveryState::Parked),
        "the disabled endpoint's delivery is parked: {states:?}"
    );
    assert!(gone.next(Duration::from_millis(200)).await.is_none(), "nothing more to `gone`");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_catching_up_answers_503_with_its_lag_then_200_and_loses_nothing_it_took() {
    /// Events written per round; the log grows by a round until a new node is seen catching up.
    const ROUND: usize = 3000;
    const ROUNDS: usize = 4;
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let mut receiver = TestReceiver::start().await;
    let config = config(&cluster, &receiver.url("/audit"));
    let first = TestHost::start(&server(), &config).await.unwrap();
    let client = reqwest::Client::new();
    let mut written = 0;
    for round in 1..=ROUNDS {
        // A log long enough that replaying it takes a while (how long depends on the machine
        // and its load: one more round of writes when the last was replayed too soon).
        let sending = std::time::Instant::now();
        write_concurrently(&client, &first, written, ROUND).await;
        written += ROUND;
        eprintln!("{written} events written ({ROUND} in {:?})", sending.elapsed());

        // A new node replays the whole log into its empty projection: it listens at once,
        // and until it has replayed, `/readyz` answers 503 and says how far behind it is;
        // once ready, its admin API has every event.
        let mut second = TestHost::start(&server(), &config).await.unwrap();
        let started = std::time::Instant::now();
        let mut behind = Vec::new();
        let mut taken_while_behind = None;
        let ready = loop {
            assert!(started.elapsed() < WAIT, "the new node never became ready: {behind:?}");
            let response = client.get(second.url("/readyz")).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            if status == StatusCode::OK {
                break body;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            let detail = body["detail"].as_str().unwrap_or_default().to_owned();
            assert!(detail.contains("catching up"), "{body}");
            behind.push(body["store_log_lag"].as_u64().expect("the lag while not ready"));
            // A webhook sent to it meanwhile (a balancer that has not looked yet): if taken,
            // it is answered once applied, and delivered.
            if taken_while_behind.is_none() {
                let body = json!({"type": "thing.happened", "n": written}).to_string();
                let headers = [("content-type", "application/json")];
                let sent = post_webhook(&client, &second, "app", &headers, body).await;
                taken_while_behind = Some(sent.map_err(|error| error.to_string()));
            }
        };
        assert!(ready["store_log_lag"].as_u64().is_some(), "{ready}");
        let Some(taken) = taken_while_behind else {
            assert!(round < ROUNDS, "a log of {written} events replayed before the node listened");
            assert!(second.terminate().await.unwrap().success());
            continue;
        };
        assert!(behind.iter().any(|lag| *lag > 0), "{behind:?}");
        written += usize::from(taken.is_ok());
        assert_eq!(all_event_ids(&client, &second).await.len(), written, "every event once ready");
        match taken {
            Ok(id) => assert!(wait_for_event(&mut receiver, &id).await, "accepted, so delivered"),
            Err(error) => assert!(error.contains("503"), "refused only with a 503: {error}"),
        }
        eprintln!(
            "a new node on a log of {written} events: ready after {:?}, lag while not ready {:?}",
            started.elapsed(),
            behind.iter().step_by(behind.len().div_ceil(10).max(1)).collect::<Vec<_>>()
        );
        break;
    }
    // The node that wrote them is ready with no lag.
    let body: Value = client.get(first.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "store_log_lag": 0}));
    drop(cluster);
}

/// Sends `count` webhooks to `host` from 16 concurrent senders, numbered from `from`.
async fn write_concurrently(client: &reqwest::Client, host: &TestHost, from: usize, count: usize) {
    const SENDERS: usize = 16;
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (client, url) = (client.clone(), host.url("/webhooks/app"));
        senders.spawn(async move {
            for n in (from + sender..from + count).step_by(SENDERS) {
                let body = json!({"type": "thing.happened", "n": n}).to_string();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::ACCEPTED);
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
}

/// The log stream's `first_seq` and `last_seq` as server `monitor` reports them (`/jsz`).
async fn log_bounds(client: &reqwest::Client, monitor: &str) -> Option<(u64, u64)> {
    fn find<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
        match value {
            Value::Object(map) if map.get("name") == Some(&json!(name)) => Some(value),
            Value::Object(map) => map.values().find_map(|value| find(value, name)),
            Value::Array(items) => items.iter().find_map(|value| find(value, name)),
            _ => None,
        }
    }
    let url = format!("{monitor}/jsz?streams=true");
    let page: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    let state = &find(&page, "e2e_log")?["state"];
    Some((state["first_seq"].as_u64()?, state["last_seq"].as_u64()?))
}

/// Creates a dynamic endpoint at `url` from source `app` retrying on `schedule`; answers its id.
async fn dynamic_endpoint(
    client: &reqwest::Client,
    host: &TestHost,
    url: &str,
    schedule: &str,
) -> String {
    let created = client
        .post(host.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": url, "sources": ["app"], "retry": {"schedule": [schedule]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    created["endpoint"]["id"].as_str().unwrap().to_owned()
}

/// Every event id `host`'s admin API lists, page after page.
async fn all_event_ids(client: &reqwest::Client, host: &TestHost) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut path = "/v1/admin/events?limit=500".to_owned();
    loop {
        let page = admin_json(client, host, &path).await;
        for event in page["data"].as_array().unwrap() {
            ids.insert(event["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/admin/events?limit=500&cursor={cursor}"),
            None => return ids,
        }
    }
}

/// Waits until `receiver` gets the event `id`.
async fn wait_for_event(receiver: &mut TestReceiver, id: &str) -> bool {
    while let Some(request) = receiver.next(WAIT).await {
        if request.header("webhook-id") == Some(id) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_snapshots_trim_the_log_a_fresh_node_restores_one_and_delivers() {
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let monitor = cluster.monitor_urls()[0].clone();
    let mut audit = TestReceiver::start().await;
    // `flaky` fails its first attempt (retried an hour later: it stays pending); `dying` fails
    // twice (one quick retry: a dead letter), then both answer 200.
    let mut flaky = TestReceiver::scripted(vec![Reply::Status(503)], Reply::Status(200)).await;
    let mut dying =
        TestReceiver::scripted(vec![Reply::Status(500), Reply::Status(500)], Reply::Status(200))
            .await;
    let config = config(&cluster, &audit.url("/audit"))
        .replace("prefix = \"e2e\"\n", "prefix = \"e2e\"\nsnapshot_every = \"1s\"\n");
    let mut first = TestHost::start(&server(), &config).await.unwrap();
    let client = reqwest::Client::new();
    let pending_id = dynamic_endpoint(&client, &first, &flaky.url("/flaky"), "1h").await;
    let dead_id = dynamic_endpoint(&client, &first, &dying.url("/dying"), "10ms").await;
    let settled_event = publish(&client, &first, 0).await;
    let dead_path = format!("/v1/admin/dead-letters?endpoint={dead_id}");
    let pending_path = format!("/v1/admin/deliveries?status=pending&endpoint={pending_id}");
    let settled = eventually_async(WAIT, || async {
        let dead = admin_json(&client, &first, &dead_path).await;
        let pending = admin_json(&client, &first, &pending_path).await;
        let attempted = pending["data"].as_array()?.first()?["attempts"].as_u64()? == 1;
        (dead["data"].as_array()?.len() == 1 && attempted).then_some(())
    })
    .await;
    assert!(settled.is_some(), "a dead letter and a pending delivery after one attempt");
    assert!(wait_for_event(&mut audit, &settled_event).await);
    let (_, settled_at) = log_bounds(&client, &monitor).await.expect("the log stream");

    // Writes go on; snapshots are taken every second, and once two are kept past the
    // settled state the log is trimmed below the older one.
    let started = std::time::Instant::now();
    let mut n = 1;
    let (trimmed_to, last) = loop {
        assert!(started.elapsed() < WAIT, "the log was never trimmed past entry {settled_at}");
        publish(&client, &first, n).await;
        n += 1;
        match log_bounds(&client, &monitor).await {
            Some((first_seq, last)) if first_seq > settled_at => break (first_seq, last),
            _ => {}
        }
    };
    eprintln!(
        "log trimmed to start at entry {trimmed_to} (of {last}) {:?} after {n} events",
        started.elapsed()
    );
    let written = all_event_ids(&client, &first).await;
    assert!(written.len() >= n, "{} events listed, {n} sent", written.len());
    assert!(first.terminate().await.unwrap().success());

    // A node with an empty data directory: it restores the newest snapshot, then replays
    // what follows it.
    let second = TestHost::start(&server(), &config).await.unwrap();
    let logs = second.logs.clone();
    let restored = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| {
            line.contains("projection restored from a snapshot").then_some(())
        })
    });
    assert!(restored.await.unwrap().is_some(), "the fresh node restored a snapshot");
    let ready = eventually_async(WAIT, || async {
        let response = client.get(second.url("/readyz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the fresh node becomes ready");
    let endpoints = admin_json(&client, &second, "/v1/admin/endpoints").await.to_string();
    assert!(endpoints.contains(&pending_id) && endpoints.contains(&dead_id), "{endpoints}");
    let pending = admin_json(&client, &second, &pending_path).await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending["data"][0]["attempts"], json!(1), "{pending}");
    let dead = admin_json(&client, &second, &dead_path).await;
    assert_eq!(dead["data"].as_array().unwrap().len(), 1, "{dead}");
    assert_eq!(all_event_ids(&client, &second).await, written, "every event, trimmed or not");

    // And it delivers: the redriven dead letter, and a new event to every endpoint.
    let redriven = client
        .post(second.url("/v1/admin/dead-letters/redrive"))
        .bearer_auth(TOKEN)
        .json(&json!({"endpoint": dead_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(redriven.status(), StatusCode::OK);
    assert!(wait_for_event(&mut dying, &settled_event).await, "the dead letter redriven");
    let fresh = publish(&client, &second, n).await;
    assert!(wait_for_event(&mut audit, &fresh).await, "a new event to `audit`");
    assert!(wait_for_event(&mut flaky, &fresh).await, "a new event to the pending endpoint");
    assert!(wait_for_event(&mut dying, &fresh).await, "a new event to the redriven endpoint");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_reseals_the_cluster_store_through_its_log_and_purges_the_old_records() {
    use base64::Engine;
    let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
    let audit = TestReceiver::start().await;
    let mut signed = TestReceiver::start().await;
    let keys = tempfile::tempdir().unwrap();
    let mut secrets = String::from("\n[secrets]\n");
    for (name, byte) in [("old", 0x11u8), ("new", 0x22u8)] {
        let path = keys.path().join(format!("{name}.key"));
        let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        std::fs::write(&path, text).unwrap();
        secrets.push_str(&format!("{name} = {{ file = \"{}\" }}\n", path.display()));
    }
    let config = config(&cluster, &audit.url("/audit")) + &secrets;
    let sealed_with = |key: &str| format!("store_key = \"{key}\"\n{}", server());
    let mut first = TestHost::start(&sealed_with("old"), &config).await.unwrap();
    let client = reqwest::Client::new();
    let (id, secret) = endpoint_owned_by(
        &client,
        &first,
        &signed.url("/signed"),
        &node_id(&first),
        &[node_id(&first)],
    )
    .await;
    let event = publish(&client, &first, 0).await;
    let request = signed.next(WAIT).await.expect("the endpoint is delivered to");
    assert_eq!(request.header("webhook-id"), Some(event.as_str()));
    assert_eq!(verify_with_standardwebhooks(&secret, &[request]), vec![Ok(())]);
    let monitor = cluster.monitor_urls()[0].clone();
    let (_, before) = log_bounds(&client, &monitor).await.expect("the log stream");

    // Refused while a node runs; once every router is stopped, the records are sealed anew
    // through the log and everything older is purged.
    let directory = first.config_dir();
    let arguments = ["store", "rotate-key", "-c", "switchyard.toml", "--to", "new"];
    let rotate = |directory: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || run_cli(&directory, &arguments, &[]))
    };
    let refused = rotate(directory.clone()).await.unwrap();
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("stop every router before rotating"), "{}", refused.stderr);
    assert!(first.terminate().await.unwrap().success());
    let rotated = rotate(directory.clone()).await.unwrap();
    assert_eq!(rotated.code, Some(0), "{rotated:?}");
    assert!(rotated.stdout.starts_with("re-sealed 1 endpoint under `new`"), "{}", rotated.stdout);
    let (first_entry, _) = log_bounds(&client, &monitor).await.expect("the log stream");
    assert!(first_entry > before, "entries up to {before} purged: the log starts at {first_entry}");
    let again = rotate(directory).await.unwrap();
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(again.stdout.contains("re-sealed 0 endpoints under `new`"), "{}", again.stdout);
    assert!(again.stdout.contains("1 endpoint already were"), "{}", again.stdout);

    // A fresh node with the new key restores the re-sealed snapshot and signs with the same
    // secret as before.
    let second = TestHost::start(&sealed_with("new"), &config).await.unwrap();
    let logs = second.logs.clone();
    let restored = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| {
            line.contains("projection restored from a snapshot").then_some(())
        })
    });
    assert!(restored.await.unwrap().is_some(), "the fresh node restored a snapshot");
    let listed = admin_json(&client, &second, &format!("/v1/admin/endpoints/{id}")).await;
    assert!(listed.to_string().contains("/signed"), "{listed}");
    let event = publish(&client, &second, 1).await;
    let request = loop {
        let request = signed.next(WAIT).await.expect("the fresh node delivers");
        if request.header("webhook-id") == Some(event.as_str()) {
            break request;
        }
    };
    assert_eq!(verify_with_standardwebhooks(&secret, &[request]), vec![Ok(())]);
    drop(cluster);
}
