//! Secrets sealed at rest, through the real binary and its SQLite files: a dynamic endpoint's
//! signing secret (and a credential in its headers) never appears in the database files, WAL
//! included; `switchyard store rotate-key` re-seals and deliveries still verify with the same
//! secret; a wrong or missing key is a clear start error; records stored in clear before a key
//! was configured are sealed by the first start with one.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_e2e::{TestHost, TestReceiver, post_webhook, run_cli, verify_with_standardwebhooks};

const TOKEN: &str = "sealed-admin-token";
const WAIT: Duration = Duration::from_secs(20);
const HEADER_CREDENTIAL: &str = "Bearer header-credential-7f3a9c";

/// Two store keys in files beside the config (absolute paths: the host's directory is made at
/// its start).
struct Keys {
    directory: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        for (name, byte) in [("old", 0x11u8), ("new", 0x22u8), ("other", 0x33u8)] {
            let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
            std::fs::write(directory.path().join(format!("{name}.key")), format!("{text}\n"))
                .unwrap();
        }
        Self { directory }
    }

    fn secrets(&self) -> String {
        let mut text = String::from("[secrets]\n");
        for name in ["old", "new", "other"] {
            let path = self.directory.path().join(format!("{name}.key"));
            text.push_str(&format!("{name} = {{ file = \"{}\" }}\n", path.display()));
        }
        text
    }
}

fn server(store_key: Option<&str>) -> String {
    let key = store_key.map(|name| format!("store_key = \"{name}\"\n")).unwrap_or_default();
    format!("{key}admin_token = {{ value = \"{TOKEN}\" }}")
}

fn config(keys: &Keys) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.app]\ntype = \"http\"\n\n{}",
        keys.secrets()
    )
}

/// Sets `server.store_key` in the host's config file (or removes it).
fn set_store_key(host: &TestHost, store_key: Option<&str>) {
    let path = host.config_dir().join("switchyard.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().filter(|line| !line.starts_with("store_key =")).collect();
    let mut text = kept.join("\n");
    if let Some(name) = store_key {
        text = text.replacen("[server]\n", &format!("[server]\nstore_key = \"{name}\"\n"), 1);
    }
    std::fs::write(path, text).unwrap();
}

/// Creates a dynamic endpoint to `url`; answers its id and signing secret.
async fn create_endpoint(host: &TestHost, url: &str) -> (String, String) {
    let response = reqwest::Client::new()
        .post(host.url("/v1/admin/endpoints"))
        .bearer_auth(TOKEN)
        .json(&json!({"url": url, "headers": {"authorization": HEADER_CREDENTIAL}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["endpoint"]["id"].as_str().unwrap().to_owned();
    (id, created["secret"].as_str().unwrap().to_owned())
}

/// Publishes an event and checks that `receiver` gets it signed with `secret`.
async fn delivered_and_verified(host: &TestHost, receiver: &mut TestReceiver, secret: &str) {
    let client = reqwest::Client::new();
    let event = post_webhook(&client, host, "app", &[("content-type", "application/json")], "{}")
        .await
        .unwrap();
    loop {
        let request = receiver.next(WAIT).await.expect("the delivery arrives");
        if request.header("webhook-id") == Some(event.as_str()) {
            assert_eq!(request.header("authorization"), Some(HEADER_CREDENTIAL));
            assert_eq!(verify_with_standardwebhooks(secret, &[request]), vec![Ok(())]);
            return;
        }
    }
}

/// Every file of the data directory (database, WAL, shared memory), with which of `needles`
/// it holds.
fn files_holding(data_dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(data_dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            if bytes.windows(needle.len()).any(|window| window == needle.as_bytes()) {
                found.push(format!("{} holds `{needle}`", path.display()));
            }
        }
    }
    assert!(files > 0, "no files in `{}`", data_dir.display());
    found
}

/// What must never be found at rest: the secret as given, its key bytes' base64, the header.
fn needles(secret: &str) -> Vec<String> {
    let key = secret.strip_prefix("whsec_").unwrap();
    vec![secret.to_owned(), key[..24].to_owned(), HEADER_CREDENTIAL.to_owned()]
}

fn run_switchyard(host: &TestHost, arguments: &[&str]) -> switchyard_e2e::CliOutput {
    run_cli(&host.config_dir(), arguments, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_at_rest_rotated_and_refused_without_the_right_key() {
    let keys = Keys::new();
    let mut receiver = TestReceiver::start().await;
    let mut host = TestHost::start(&server(Some("old")), &config(&keys)).await.unwrap();
    let (id, secret) = create_endpoint(&host, &receiver.url("/hook")).await;
    delivered_and_verified(&host, &mut receiver, &secret).await;
    let needles = needles(&secret);
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    // While running (the WAL holds the latest writes) and after a clean stop.
    assert_eq!(files_holding(&host.data_dir(), &needles), Vec::<String>::new());
    // What is not secret is still there to find (the search sees the written records).
    assert!(!files_holding(&host.data_dir(), &[id.as_str()]).is_empty());
    host.terminate().await.unwrap();
    assert_eq!(files_holding(&host.data_dir(), &needles), Vec::<String>::new());

    // A wrong key, and no key, are start errors naming the endpoint.
    set_store_key(&host, Some("other"));
    let wrong = run_switchyard(&host, &["run", "-c", "switchyard.toml"]);
    assert_eq!(wrong.code, Some(1), "{}", wrong.stderr);
    assert!(
        wrong
            .stderr
            .contains(&format!("error: stored endpoint `{id}` is sealed with store key id `"))
            && wrong.stderr.contains("but `server.store_key` names `other`"),
        "{}",
        wrong.stderr
    );
    set_store_key(&host, None);
    let missing = run_switchyard(&host, &["run", "-c", "switchyard.toml"]);
    assert_eq!(missing.code, Some(1), "{}", missing.stderr);
    assert!(missing.stderr.contains("and `server.store_key` is not set"), "{}", missing.stderr);

    // Rotation (under the old key as configured) to the new key; running it again finds
    // nothing left to do. An unknown or unfit key is refused before the store is touched.
    set_store_key(&host, Some("old"));
    let refused =
        run_switchyard(&host, &["store", "rotate-key", "-c", "switchyard.toml", "--to", "nope"]);
    assert_eq!(refused.code, Some(78), "{}", refused.stderr);
    assert!(refused.stderr.contains("there is no `[secrets]` entry `nope`"), "{}", refused.stderr);
    let rotated =
        run_switchyard(&host, &["store", "rotate-key", "-c", "switchyard.toml", "--to", "new"]);
    assert_eq!(rotated.code, Some(0), "{}", rotated.stderr);
    assert!(rotated.stdout.starts_with("re-sealed 1 endpoint under `new`"), "{}", rotated.stdout);
    let again =
        run_switchyard(&host, &["store", "rotate-key", "-c", "switchyard.toml", "--to", "new"]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(again.stdout.contains("re-sealed 0 endpoints under `new`"), "{}", again.stdout);
    assert!(again.stdout.contains("1 endpoint already were"), "{}", again.stdout);
    assert_eq!(files_holding(&host.data_dir(), &needles), Vec::<String>::new());

    // The old key no longer opens the store; the new one does, and the same secret signs.
    let stale = run_switchyard(&host, &["run", "-c", "switchyard.toml"]);
    assert_eq!(stale.code, Some(1), "{}", stale.stderr);
    assert!(stale.stderr.contains("but `server.store_key` names `old`"), "{}", stale.stderr);
    set_store_key(&host, Some("new"));
    host.restart().await.unwrap();
    delivered_and_verified(&host, &mut receiver, &secret).await;
    assert_eq!(files_holding(&host.data_dir(), &needles), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_clear_are_sealed_by_the_first_start_with_a_key() {
    let keys = Keys::new();
    let mut receiver = TestReceiver::start().await;
    let mut host = TestHost::start(&server(None), &config(&keys)).await.unwrap();
    let (_, secret) = create_endpoint(&host, &receiver.url("/hook")).await;
    host.terminate().await.unwrap();
    let needles = needles(&secret);
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    // Without a key the secret is in the file: the search finds what it looks for.
    assert!(!files_holding(&host.data_dir(), &needles).is_empty());

    set_store_key(&host, Some("old"));
    host.restart().await.unwrap();
    assert!(host.logs.contains("sealed stored dynamic endpoints that were in clear"));
    delivered_and_verified(&host, &mut receiver, &secret).await;
    host.terminate().await.unwrap();
    assert_eq!(files_holding(&host.data_dir(), &needles), Vec::<String>::new());
}
