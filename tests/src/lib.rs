//! The end-to-end harness: the real `switchyard` binary against real HTTP, SQLite and NATS.
//!
//! [`TestHost`] writes a config into a temp dir, starts the binary on a free loopback port,
//! captures its logs, and can SIGKILL, SIGTERM and restart it on the same data dir. It kills
//! its process when dropped, so a failing test leaves nothing running. Tests read what the
//! router stored through its admin API ([`TestHost::event`], [`TestHost::deliveries_of`], …),
//! never by opening its data directory: they observe behaviour, whatever the store.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use switchyard::event::{Event, EventId};
use switchyard::store::DeliveryState;

mod cluster;
mod nats;
mod otlp;
mod receiver;
pub use cluster::{NatsCluster, free_port};
pub use nats::{NatsServer, nats_server_binary};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use receiver::{ReceivedRequest, Reply, TestReceiver};

/// How long a starting router may take to listen (a debug build on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The admin token the harness gives a router whose test sets none, to read what it stored.
const HARNESS_ADMIN_TOKEN: &str = "harness-admin-token";

/// The `switchyard` binary: `$SWITCHYARD_BIN`, or the one built beside this test binary.
pub fn switchyard_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test> → target/<profile>/switchyard
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("switchyard"))
        .expect("the test binary lives in target/<profile>/deps");
    assert!(
        binary.exists(),
        "`{}` is missing: build it with `cargo build -p switchyard` (cargo xtask test does)",
        binary.display()
    );
    binary
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the workspace").into()
}

/// A first-party (or test) plugin built from `plugins/`; `cargo xtask test` builds them.
pub fn plugin_wasm(name: &str) -> PathBuf {
    let file = format!("{}.wasm", name.replace('-', "_"));
    let path = workspace_root().join("plugins/target/wasm32-wasip2/release").join(file);
    assert!(
        path.exists(),
        "`{}` is missing: build the plugins with `cargo xtask plugins` (cargo xtask test does)",
        path.display()
    );
    path
}

/// Lines a child process wrote to stderr, shared with the thread that reads them.
#[derive(Debug, Default)]
pub struct LogLines {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

impl LogLines {
    /// Starts a thread that collects `stream` line by line.
    pub fn capture(stream: impl std::io::Read + Send + 'static) -> Arc<Self> {
        let logs = Arc::new(Self::default());
        let writer = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("SWITCHYARD_TEST_LOGS").is_some() {
                    eprintln!("[switchyard] {line}");
                }
                writer.lines.lock().unwrap().push(line);
                writer.changed.notify_all();
            }
        });
        logs
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    /// Blocks until a line satisfies `find` (returning its answer) or `timeout` passes.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lock().unwrap();
        let mut seen = 0;
        loop {
            for line in &lines[seen..] {
                if let Some(found) = find(line) {
                    return Some(found);
                }
            }
            seen = lines.len();
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}

/// A running `switchyard run` process with its own temp dir (config + data dir).
#[derive(Debug)]
pub struct TestHost {
    child: Option<Child>,
    start_timeout: Duration,
    pub address: SocketAddr,
    pub logs: Arc<LogLines>,
    config_path: PathBuf,
    directory: tempfile::TempDir,
    /// The admin API's token; `None` when the test wants no admin API.
    admin_token: Option<String>,
}

/// A delivery as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub id: i64,
    pub endpoint: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// An attempt as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttempt {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl TestHost {
    /// Starts the router with `[server]` set to a free loopback port and a fresh data dir,
    /// plus `server_extra` lines in `[server]`, then the rest of the config.
    pub async fn start(server_extra: &str, config: &str) -> anyhow::Result<Self> {
        Self::start_within(server_extra, config, START_TIMEOUT).await
    }

    /// [`Self::start`] for configs that take long to load, e.g. Python or JavaScript plugins
    /// compiled by a debug build: waits up to `start_timeout` for the router to listen.
    pub async fn start_within(
        server_extra: &str,
        config: &str,
        start_timeout: Duration,
    ) -> anyhow::Result<Self> {
        // The test's own admin token, or the harness's: reads go through the admin API.
        let (admin_token, server_extra) = match given_admin_token(server_extra) {
            Some(token) => (token, server_extra.to_owned()),
            None => (
                HARNESS_ADMIN_TOKEN.to_owned(),
                format!("{server_extra}\nadmin_token = {{ value = \"{HARNESS_ADMIN_TOKEN}\" }}"),
            ),
        };
        Self::launch_new(&server_extra, config, start_timeout, Some(admin_token)).await
    }

    /// [`Self::start`] without an admin API; what it stores cannot be read.
    pub async fn start_without_admin(server_extra: &str, config: &str) -> anyhow::Result<Self> {
        Self::launch_new(server_extra, config, START_TIMEOUT, None).await
    }

    async fn launch_new(
        server_extra: &str,
        config: &str,
        start_timeout: Duration,
        admin_token: Option<String>,
    ) -> anyhow::Result<Self> {
        let directory = tempfile::tempdir()?;
        let config_path = directory.path().join("switchyard.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n{server_extra}\n\n{config}\n"
        );
        std::fs::write(&config_path, text)?;
        let mut host = Self {
            child: None,
            start_timeout,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs: Arc::default(),
            config_path,
            directory,
            admin_token,
        };
        host.launch().await?;
        Ok(host)
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(switchyard_binary())
            .arg("run")
            .arg("-c")
            .arg(&self.config_path)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start switchyard")?;
        let logs = LogLines::capture(child.stderr.take().expect("stderr is piped"));
        self.logs = logs.clone();
        self.child = Some(child);
        let start_timeout = self.start_timeout;
        let address = tokio::task::spawn_blocking(move || {
            logs.wait_for(start_timeout, |line| {
                let rest = line.split("listening address=").nth(1)?;
                rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
            })
        })
        .await?;
        match address {
            Some(address) => {
                self.address = address;
                Ok(())
            }
            None => bail!(
                "switchyard did not start listening; logs:\n{}",
                self.logs.snapshot().join("\n")
            ),
        }
    }

    /// The directory holding `switchyard.toml` (the CLI runs from here).
    pub fn config_dir(&self) -> PathBuf {
        self.directory.path().to_path_buf()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.directory.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The address the router logged for `server.admin_listen`.
    pub async fn admin_address(&self) -> SocketAddr {
        let logs = self.logs.clone();
        let found = tokio::task::spawn_blocking(move || {
            logs.wait_for(Duration::from_secs(30), |line| {
                line.split("admin_address=").nth(1)?.split_whitespace().next()?.parse().ok()
            })
        });
        found.await.expect("the log reader ends").expect("the admin listener's address is logged")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the host is running").id()
    }

    /// SIGKILL: no drain, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the host is not running")?;
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
        Ok(tokio::task::spawn_blocking(move || child.wait()).await??)
    }

    /// Starts the binary again on the same config and data dir (a new port).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch().await
    }

    /// Calls the admin API with the router's admin token and answers the status and the body
    /// (JSON, or the text as a JSON string when it is not JSON). Panics if it cannot connect.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let token = self.admin_token.as_deref().expect("this router has an admin API");
        let mut request = reqwest::Client::new().request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// GETs an admin API path and answers its JSON; `None` on a 404.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let token = self.admin_token.as_deref().context("this router has no admin API")?;
        let response = reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let status = response.status();
        let body: serde_json::Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(Some(body))
    }

    /// The stored event `id` with its headers and body, as received.
    pub async fn event(&self, id: EventId) -> anyhow::Result<Option<Event>> {
        let Some(detail) = self.admin_get(&format!("/v1/admin/events/{id}?body=true")).await?
        else {
            return Ok(None);
        };
        let text = |field: &str| detail[field].as_str().map(str::to_owned);
        let body = text("body").unwrap_or_default();
        let body = match detail["body_encoding"].as_str() {
            Some("base64") => base64::engine::general_purpose::STANDARD.decode(body)?,
            _ => body.into_bytes(),
        };
        let headers = detail["headers"]
            .as_array()
            .context("headers")?
            .iter()
            .map(|pair| {
                let name = pair[0].as_str().unwrap_or_default().to_owned();
                (name, pair[1].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        Ok(Some(Event {
            id,
            source: text("source").context("source")?,
            event_type: text("type").context("type")?,
            subject: text("subject"),
            headers,
            body: body.into(),
            received_at: detail["received_at"].as_u64().context("received_at")?,
            dedupe_key: text("dedupe_key"),
            metadata: Vec::new(),
        }))
    }

    /// The deliveries of event `id`, oldest first (none when the event is not stored).
    pub async fn deliveries_of(&self, id: EventId) -> anyhow::Result<Vec<StoredDelivery>> {
        let Some(detail) = self.admin_get(&format!("/v1/admin/events/{id}")).await? else {
            return Ok(Vec::new());
        };
        let mut deliveries: Vec<StoredDelivery> = detail["deliveries"]
            .as_array()
            .context("deliveries")?
            .iter()
            .map(stored_delivery)
            .collect::<anyhow::Result<_>>()?;
        deliveries.reverse();
        Ok(deliveries)
    }

    /// The attempts of delivery `id`, oldest first.
    pub async fn attempts(&self, id: i64) -> anyhow::Result<Vec<StoredAttempt>> {
        let detail = self.admin_get(&format!("/v1/admin/deliveries/{id}")).await?;
        let detail = detail.with_context(|| format!("no delivery {id}"))?;
        let attempts = detail["attempt_log"].as_array().context("attempt_log")?;
        Ok(attempts
            .iter()
            .map(|attempt| StoredAttempt {
                status: attempt["status"].as_u64().map(|status| status as u16),
                error: attempt["error"].as_str().map(str::to_owned),
            })
            .collect())
    }

    /// The ids of the disabled endpoints.
    pub async fn disabled_endpoints(&self) -> anyhow::Result<Vec<String>> {
        let mut disabled = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/v1/admin/endpoints?limit=500{cursor}");
            let page = self.admin_get(&path).await?.context("the endpoint list")?;
            for endpoint in page["data"].as_array().context("data")? {
                if endpoint["disabled"].as_bool() == Some(true) {
                    disabled.push(endpoint["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return Ok(disabled),
            }
        }
    }

    /// How many events are stored.
    pub async fn count_events(&self) -> anyhow::Result<u64> {
        self.count_listed_events("").await
    }

    /// How many stored events came from `source` (operational events of the built-in
    /// `switchyard` source are not counted unless asked for).
    pub async fn count_events_of(&self, source: &str) -> anyhow::Result<u64> {
        self.count_listed_events(&format!("&source={source}")).await
    }

    async fn count_listed_events(&self, filter: &str) -> anyhow::Result<u64> {
        let mut count = 0;
        let mut cursor = String::new();
        loop {
            let path = format!("/v1/admin/events?limit=500{filter}{cursor}");
            let page = self.admin_get(&path).await?;
            let page = page.context("the event list")?;
            count += page["data"].as_array().context("data")?.len() as u64;
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return Ok(count),
            }
        }
    }

    /// The value of an unlabelled metric (or a labelled series, given its full text).
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let text = reqwest::get(self.url("/metrics")).await?.text().await?;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
            .with_context(|| format!("no series `{series}` in /metrics"))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The token `admin_token = { value = "…" }` in `server` sets, if it sets one.
fn given_admin_token(server: &str) -> Option<String> {
    let rest = server.split("admin_token").nth(1)?;
    let value = rest.split("value").nth(1)?;
    Some(value.split('"').nth(1)?.to_owned())
}

fn stored_delivery(view: &serde_json::Value) -> anyhow::Result<StoredDelivery> {
    let state = match view["status"].as_str() {
        Some("pending") => DeliveryState::Pending,
        Some("delivered") => DeliveryState::Delivered,
        Some("dead") => DeliveryState::Dead,
        Some("parked") => DeliveryState::Parked,
        other => bail!("unknown delivery status {other:?}"),
    };
    Ok(StoredDelivery {
        id: view["id"].as_i64().context("id")?,
        endpoint: view["endpoint"].as_str().context("endpoint")?.to_owned(),
        state,
        attempts: view["attempts"].as_u64().context("attempts")? as u32,
        last_error: view["last_error"].as_str().map(str::to_owned),
    })
}

/// Runs `switchyard` with `arguments` in `directory` and a controlled environment.
pub fn run_cli(directory: &Path, arguments: &[&str], environment: &[(&str, &str)]) -> CliOutput {
    let output = Command::new(switchyard_binary())
        .args(arguments)
        .current_dir(directory)
        .env_clear()
        .envs(environment.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("switchyard runs");
    CliOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The project's test tool venv (`cargo xtask setup` creates it).
pub fn tools_python() -> PathBuf {
    let python = workspace_root().join(".tools/venv/bin/python");
    assert!(python.exists(), "`{}` is missing: run `cargo xtask setup`", python.display());
    python
}

/// Verifies each request's Standard Webhooks signature with the `standardwebhooks` package
/// from PyPI; answers one `Ok` or `Err(reason)` per request.
pub fn verify_with_standardwebhooks(
    secret: &str,
    requests: &[ReceivedRequest],
) -> Vec<Result<(), String>> {
    use base64::Engine;
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("verify/standard_webhooks.py");
    let mut child = Command::new(tools_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut input = String::new();
    for request in requests {
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::from(value.clone())))
            .collect();
        let line = serde_json::json!({
            "secret": secret,
            "headers": headers,
            "body_base64": base64::engine::general_purpose::STANDARD.encode(&request.body),
        });
        input.push_str(&line.to_string());
        input.push('\n');
    }
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("write to python");
    let output = child.wait_with_output().expect("python runs");
    assert!(output.status.success(), "the verifier failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| if line == "ok" { Ok(()) } else { Err(line.to_owned()) })
        .collect()
}

/// Polls `check` every 20 ms until it answers `Some` or `timeout` passes: for waiting on
/// state that has no event to await (rows committed by another process).
pub async fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for a check that has to wait for an answer itself.
pub async fn eventually_async<T, F, Answer>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Answer,
    Answer: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts a webhook and answers the event id from the `202`.
pub async fn post_webhook(
    client: &reqwest::Client,
    host: &TestHost,
    source: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> anyhow::Result<String> {
    let mut request = client.post(host.url(&format!("/webhooks/{source}"))).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("expected 202, got {status}: {text}");
    }
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    answer["id"].as_str().map(str::to_owned).context("no id in the answer")
}
