//! Durable webhook ingest through the real binary: crash safety, group commit, bad input,
//! draining, and a data dir that cannot be written.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use switchyard::event::EventId;
use switchyard_e2e::{TestHost, run_cli};
use tokio::sync::{Mutex, watch};

const SOURCES: &str = r#"
[sources.github]
type = "http"
event_type = { header = "x-github-event", prefix = "github." }
dedupe = { header = "x-github-delivery", window = "1h" }
max_body = "4KiB"
"#;

/// A ~1 KiB body, with some bytes that are not UTF-8 so "byte-identical" means something.
fn body(index: usize) -> Vec<u8> {
    let mut body = format!(r#"{{"index":{index},"padding":"{}"}}"#, "x".repeat(1000)).into_bytes();
    if index.is_multiple_of(7) {
        body.extend_from_slice(&[0xff, 0x00, 0xfe, b'\n']);
    }
    body
}

async fn send(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    index: usize,
) -> Option<String> {
    let response = client
        .post(format!("http://{address}/webhooks/github"))
        .header("x-github-event", "push")
        .header("x-github-delivery", format!("delivery-{index}"))
        .body(body(index))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::ACCEPTED {
        return None;
    }
    let answer: serde_json::Value = response.json().await.ok()?;
    answer["id"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_event_survives_sigkill() {
    const EVENTS: usize = 1000;
    const CLIENTS: usize = 32;
    const KILL_AFTER: usize = 300;
    let mut host = TestHost::start("", SOURCES).await.unwrap();
    let (address_sender, address) = watch::channel(host.address);
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<usize, String>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let (kill_sender, mut kill_signal) = tokio::sync::mpsc::channel::<()>(1);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (acknowledged, next, kill_sender) =
            (acknowledged.clone(), next.clone(), kill_sender.clone());
        let mut address = address.clone();
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= EVENTS {
                    return;
                }
                // Like a real sender: retry until acknowledged, waiting for the router to
                // come back when it is down.
                loop {
                    let current = *address.borrow_and_update();
                    if let Some(id) = send(&client, current, index).await {
                        let mut acknowledged = acknowledged.lock().await;
                        acknowledged.insert(index, id);
                        if acknowledged.len() == KILL_AFTER {
                            let _ = kill_sender.try_send(());
                        }
                        break;
                    }
                    if *address.borrow() == current {
                        address.changed().await.unwrap();
                    }
                }
            }
        }));
    }
    kill_signal.recv().await.unwrap();
    host.kill();
    let before_kill = acknowledged.lock().await.clone();
    assert!(before_kill.len() >= KILL_AFTER);
    assert!(before_kill.len() < EVENTS, "the kill came after the load, not during it");
    host.restart().await.unwrap();
    // Every event acknowledged before the kill is stored, byte for byte.
    for (index, id) in &before_kill {
        let event = host.event(id.parse::<EventId>().unwrap()).await.unwrap();
        let event = event.unwrap_or_else(|| panic!("acknowledged event {index} ({id}) was lost"));
        assert_eq!(event.body.as_ref(), body(*index).as_slice(), "event {index}");
    }
    address_sender.send(host.address).unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await;
    assert_eq!(acknowledged.len(), EVENTS);
    // Retries of requests whose answer was lost in the crash got the original id back
    // (dedupe survives the restart), so there is exactly one event per delivery id.
    assert_eq!(host.count_events().await.unwrap(), EVENTS as u64);
    for (index, id) in acknowledged.iter() {
        let event = host.event(id.parse::<EventId>().unwrap()).await.unwrap().expect("stored");
        assert_eq!(event.body.as_ref(), body(*index).as_slice());
        assert_eq!(event.event_type, "github.push");
        assert_eq!(event.dedupe_key.as_deref(), Some(format!("delivery-{index}").as_str()));
        assert_eq!(event.header("x-github-delivery"), Some(format!("delivery-{index}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_commits() {
    const EVENTS: usize = 2000;
    const CLIENTS: usize = 32;
    let host = TestHost::start("", SOURCES).await.unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (next, address) = (next.clone(), host.address);
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= EVENTS {
                    return;
                }
                assert!(send(&client, address, index).await.is_some(), "event {index} refused");
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = started.elapsed();
    let commits = host.metric("switchyard_store_commits_total").await.unwrap();
    let events = host.metric("switchyard_store_committed_events_total").await.unwrap();
    assert_eq!(events, EVENTS as f64);
    println!(
        "{EVENTS} events from {CLIENTS} clients in {elapsed:?} ({:.0} events/s): {commits} \
         commits, {:.1} events per commit",
        EVENTS as f64 / elapsed.as_secs_f64(),
        events / commits
    );
    // One fsync per request would make this ratio 1; group commit makes it far larger.
    assert!(events / commits >= 3.0, "{events} events took {commits} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_answers_and_the_server_keeps_serving() {
    let host = TestHost::start("max_body = \"2KiB\"", SOURCES).await.unwrap();
    let client = reqwest::Client::new();
    let webhook = || client.post(host.url("/webhooks/github")).header("x-github-event", "push");
    let error_code = |response: reqwest::Response| async move {
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap();
        (status, answer["code"].as_str().unwrap_or_default().to_owned())
    };

    let too_large = webhook().body(vec![b'a'; 4097]).send().await.unwrap();
    assert_eq!(
        error_code(too_large).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );

    // Chunked: no content-length, so the limit is enforced while reading.
    let chunks = futures_chunks(vec![vec![b'a'; 3000], vec![b'b'; 3000]]);
    let chunked = webhook().body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(
        error_code(chunked).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into())
    );

    let missing_type = client.post(host.url("/webhooks/github")).body("{}").send().await.unwrap();
    assert_eq!(
        error_code(missing_type).await,
        (StatusCode::BAD_REQUEST, "missing_event_type".into())
    );

    let unknown = client.post(host.url("/webhooks/gitlab")).body("{}").send().await.unwrap();
    assert_eq!(error_code(unknown).await, (StatusCode::NOT_FOUND, "unknown_source".into()));

    let wrong_method = client.get(host.url("/webhooks/github")).send().await.unwrap();
    assert_eq!(
        error_code(wrong_method).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );

    let no_route = client.post(host.url("/nowhere")).send().await.unwrap();
    assert_eq!(error_code(no_route).await, (StatusCode::NOT_FOUND, "not_found".into()));

    // An empty body is a valid event (some providers send empty pings).
    let empty = webhook().send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::ACCEPTED);
    let empty_id: serde_json::Value = empty.json().await.unwrap();

    // Header values that are not UTF-8 are kept, decoded as ISO-8859-1.
    let latin1 = reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap();
    let odd_header = webhook().header("x-note", latin1).body("{}").send().await.unwrap();
    assert_eq!(odd_header.status(), StatusCode::ACCEPTED);
    let odd_id: serde_json::Value = odd_header.json().await.unwrap();

    // Still serving, and what was accepted is stored as sent.
    let fine = webhook().body(r#"{"ok":true}"#).send().await.unwrap();
    assert_eq!(fine.status(), StatusCode::ACCEPTED);
    assert_eq!(client.get(host.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(client.get(host.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    let stored = async |answer: &serde_json::Value| {
        host.event(answer["id"].as_str().unwrap().parse().unwrap()).await.unwrap().unwrap()
    };
    assert!(stored(&empty_id).await.body.is_empty());
    assert_eq!(stored(&odd_id).await.header("x-note"), Some("café"));
    assert_eq!(host.count_events().await.unwrap(), 3);
}

fn futures_chunks(
    chunks: Vec<Vec<u8>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter(chunks.into_iter().map(Ok))
}

/// Reads one HTTP/1.1 answer head (status line and headers) from `stream`.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.unwrap();
        assert_eq!(read, 1, "the connection closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// SIGTERM with a webhook request and a delivery attempt both under way: the request is
/// answered 202 after the drain began, the attempt finishes and is recorded (so it is not sent
/// again after a restart), and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    use switchyard_e2e::{Reply, TestReceiver};
    use tokio::io::AsyncWriteExt;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
    // The attempt takes 2 s: the receiver records it on arrival, then answers.
    let mut receiver = TestReceiver::scripted(
        vec![Reply::Delayed(std::time::Duration::from_secs(2), 200)],
        Reply::Status(200),
    )
    .await;
    let config = format!(
        "{SOURCES}\n[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [endpoints.slow]\nurl = \"{}\"\n\n[routes.all]\nto = [\"slow\"]\n",
        receiver.url("/slow")
    );
    let mut host =
        TestHost::start("admin_token = { value = \"drain-test\" }", &config).await.unwrap();
    let client = reqwest::Client::new();
    let first = send(&client, host.address, 1).await.expect("the first event is accepted");
    let attempt = receiver.next(WAIT).await.expect("the attempt starts");
    assert_eq!(attempt.header("webhook-id"), Some(first.as_str()));

    // A request under way: its head sent with `expect: 100-continue`; the router's `100`
    // says the handler is reading the body, which is held back until the drain has begun.
    let body = body(2);
    let mut stream = tokio::net::TcpStream::connect(host.address).await.unwrap();
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nhost: switchyard\r\nx-github-event: push\r\n\
         x-github-delivery: delivery-2\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 100 Continue"));

    let logs = host.logs.clone();
    let terminated = tokio::spawn(async move {
        let status = host.terminate().await.unwrap();
        (host, status)
    });
    let drain_line = "draining: no new connections; finishing in-flight requests";
    let draining = tokio::task::spawn_blocking({
        let logs = logs.clone();
        move || logs.wait_for(WAIT, |line| line.contains(drain_line).then_some(()))
    });
    assert!(draining.await.unwrap().is_some(), "no drain line");
    stream.write_all(&body).await.unwrap();
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let (mut host, status) = terminated.await.unwrap();
    assert_eq!(status.code(), Some(0));
    let lines = logs.snapshot();
    let position = |needle: &str| lines.iter().position(|line| line.contains(needle));
    let (drained, stopped) = (position(drain_line), position("INFO switchyard::app: stopped"));
    assert!(drained < stopped && drained.is_some(), "{}", lines.join("\n"));

    // After a restart: both events are there, the first delivery is delivered after one
    // attempt and is not sent again; the second event's delivery goes out now.
    host.restart().await.unwrap();
    let page: serde_json::Value = client
        .get(host.url("/v1/admin/deliveries?endpoint=slow"))
        .bearer_auth("drain-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{page}");
    let delivered = data.iter().find(|delivery| delivery["event"] == first.as_str()).unwrap();
    assert_eq!(
        (delivered["status"].as_str(), delivered["attempts"].as_u64()),
        (Some("delivered"), Some(1))
    );
    let second = receiver.next(WAIT).await.expect("the second event is delivered");
    assert_ne!(second.header("webhook-id"), Some(first.as_str()));
    assert!(receiver.next(std::time::Duration::from_millis(500)).await.is_none());
}

/// The data dir exists but cannot be written: a clear error and exit code 1, not a panic.
/// As root, permissions do not stop writes, so the router runs as `nobody` then.
#[test]
fn unwritable_data_dir_is_a_clear_startup_error() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = directory.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let config = "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n";
    std::fs::write(directory.path().join("switchyard.toml"), config).unwrap();
    let binary = switchyard_e2e::switchyard_binary();
    let mut command = if is_root() {
        let mut command = std::process::Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&binary);
        command
    } else {
        std::process::Command::new(&binary)
    };
    let output = command
        .args(["run", "-c", "switchyard.toml"])
        .current_dir(directory.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: cannot open the store at"), "{stderr}");
    assert!(stderr.contains("data/switchyard.db"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A data dir path that is a file.
    let file_config = "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"switchyard.toml\"\n";
    std::fs::write(directory.path().join("file.toml"), file_config).unwrap();
    let output = run_cli(directory.path(), &["run", "-c", "file.toml"], &[]);
    assert_eq!(output.code, Some(1), "{}", output.stderr);
    assert!(output.stderr.contains("error: cannot create the data directory"), "{}", output.stderr);
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}
