//! The Switchyard process under test: started on a config, stopped with SIGTERM.
//!
//! Owns the child process and its stderr (kept as a short tail for error messages). Knows the
//! one log line it waits for: `listening address=<ip:port>`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a release build may take to start (plugins compile on a cold cache).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a drain may take after SIGTERM before the process is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// The router's log filter unless `RUST_LOG` says otherwise: warnings only, as quiet as the
/// peer's, but for the two info lines the harness reads: `listening` (`switchyard::app`) and
/// `loaded pending deliveries` (the SQLite store's, once at start).
pub const LOG_FILTER: &str = "warn,switchyard::app=info,switchyard::store::sqlite=info";
/// Log lines kept for error messages.
const TAIL_LINES: usize = 40;

/// A running router; killed when dropped.
#[derive(Debug)]
pub struct Router {
    child: Option<Child>,
    address: SocketAddr,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Router {
    /// Runs `binary run -c config` and waits until it listens. A non-empty `prefix` runs
    /// it under another program (a profiler): `prefix[0] prefix[1..] binary run -c config`.
    pub fn start(prefix: &[String], binary: &Path, config: &Path) -> anyhow::Result<Self> {
        let mut command = match prefix.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .arg("run")
            .arg("-c")
            .arg(config)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| LOG_FILTER.into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", binary.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let (listening, address) = mpsc::channel();
        let writer = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line
                    .split("listening address=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next()?.parse::<SocketAddr>().ok())
                {
                    let _ = listening.send(address);
                }
                let mut tail = writer.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let mut router = Self { child: Some(child), address: ([127, 0, 0, 1], 0).into(), tail };
        let started = Instant::now();
        loop {
            match address.recv_timeout(Duration::from_millis(100)) {
                Ok(address) => {
                    router.address = address;
                    return Ok(router);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_TIMEOUT => {
                    if let Some(child) = router.child.as_mut()
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        bail!(
                            "switchyard exited with {status} before listening:\n{}",
                            router.tail()
                        );
                    }
                }
                Err(_) => bail!("switchyard did not start listening:\n{}", router.tail()),
            }
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The last lines it logged.
    pub fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM, then waits for the drain; kills it if the drain takes too long.
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("the router is not running")?;
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("cannot run `kill`")?;
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                bail!("switchyard did not stop within {STOP_TIMEOUT:?}:\n{}", self.tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
