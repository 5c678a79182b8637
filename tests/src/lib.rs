//! The end-to-end harness: the real `switchyard` binary against real HTTP, SQLite and NATS.
//!
//! [`TestHost`] writes a config into a temp dir, starts the binary on a free loopback port,
//! captures its logs, and can SIGKILL, SIGTERM and restart it on the same data dir. It kills
//! its process when dropped, so a failing test leaves nothing running.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod nats;
mod otlp;
mod receiver;
pub use nats::{NatsServer, nats_server_binary};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use receiver::{ReceivedRequest, Reply, TestReceiver};

/// How long a starting router may take to listen (a debug build on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// Opens the store read-only, as tests read what is on disk.
    pub fn reader(&self) -> anyhow::Result<switchyard::store::Reader> {
        Ok(switchyard::store::Reader::open(&self.data_dir())?)
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
