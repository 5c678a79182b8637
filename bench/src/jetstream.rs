//! The NATS side of the benchmarks: a `nats-server` with JetStream, and a publisher that loads
//! a stream the way the HTTP load generator loads a URL.
//!
//! Owns the server process (loopback, a free port, its store in a directory the caller
//! gives; killed when dropped) and the closed-loop publisher: `connections` tasks on one client
//! connection each publish the next templated body and wait for the stream's ack. An ack is
//! what a publisher of a JetStream source gets back, so it is recorded as the HTTP load
//! generator records a 202 ([`Sent`] with status 202; 0 when the publish or its ack failed),
//! and the figures are computed the same way. A stream takes messages much faster than a
//! consumer that stores each one can, so the publishers also hold back while more than
//! `backlog` messages are published but not delivered: the run then measures the consumer,
//! not how deep a stream can get. It knows nothing about Switchyard.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::body::Template;
use crate::load::{LoadReport, Sent, now_micros};

/// How long a starting server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The stream the benchmark publishes to, and its subjects.
pub const STREAM: &str = "BENCH";
pub const SUBJECT: &str = "bench.event";
const SUBJECTS: &str = "bench.>";
/// How long a publisher waits when the backlog is full.
const HOLD_BACK: Duration = Duration::from_millis(1);

/// A `nats-server -js` on a free loopback port; killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    /// Starts `binary` with JetStream, its store in `store`, and waits until it accepts
    /// connections (it has no readiness signal but its port).
    pub fn start(binary: &Path, store: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start `{}`", binary.display()))?;
        let server = Self { child, port };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {address}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the benchmark's stream (file storage, the server's defaults otherwise).
pub async fn create_stream(url: &str) -> anyhow::Result<()> {
    let client = async_nats::connect(url).await.with_context(|| format!("cannot reach {url}"))?;
    jetstream::new(client)
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![SUBJECTS.into()],
            ..Default::default()
        })
        .await
        .context("cannot create the stream")?;
    Ok(())
}

/// One closed-loop publishing run.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    pub url: String,
    /// Publishers waiting for their ack at once.
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub body: Template,
    /// Messages published but not yet delivered, at most.
    pub backlog: u64,
}

/// Publishes until the warm-up and the window are over; answers what was sent, in the load
/// generator's terms. `delivered` counts the messages that reached the far end so far.
pub async fn publish(
    spec: PublishSpec,
    delivered: impl Fn() -> u64 + Send + Sync + 'static,
) -> anyhow::Result<LoadReport> {
    let delivered = Arc::new(delivered);
    let client = async_nats::connect(spec.url.as_str())
        .await
        .with_context(|| format!("cannot reach {}", spec.url))?;
    let context = jetstream::new(client);
    let next_seq = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let start_us = now_micros();
    let deadline = Instant::now() + spec.warmup + spec.duration;
    let workers: Vec<_> = (0..spec.connections)
        .map(|_| {
            let (context, body) = (context.clone(), spec.body.clone());
            let (next_seq, failures) = (next_seq.clone(), failures.clone());
            let (delivered, backlog) = (delivered.clone(), spec.backlog);
            tokio::spawn(async move {
                let mut records = Vec::new();
                while Instant::now() < deadline {
                    if next_seq.load(Ordering::Relaxed).saturating_sub(delivered()) >= backlog {
                        tokio::time::sleep(HOLD_BACK).await;
                        continue;
                    }
                    let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                    let sent_us = now_micros();
                    let began = Instant::now();
                    let payload = Bytes::from(body.render(seq, sent_us));
                    let acked = match context.publish(SUBJECT, payload).await {
                        Ok(ack) => ack.await.is_ok(),
                        Err(_) => false,
                    };
                    if !acked {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    let latency_us = began.elapsed().as_micros() as u64;
                    let status = if acked { 202 } else { 0 };
                    records.push(Sent { seq, sent_us, latency_us, status });
                }
                records
            })
        })
        .collect();
    let mut sent = Vec::new();
    for worker in workers {
        sent.extend(worker.await.context("a publisher failed")?);
    }
    sent.sort_unstable_by_key(|sent| sent.seq);
    let window_start_us = start_us + spec.warmup.as_micros() as u64;
    Ok(LoadReport {
        sent,
        window_start_us,
        window_end_us: window_start_us + spec.duration.as_micros() as u64,
        late: 0,
        connection_failures: failures.load(Ordering::Relaxed),
    })
}
