//! The load generator: POSTs templated bodies to any HTTP URL, closed loop or paced.
//!
//! Owns connections (one keep-alive HTTP/1.1 connection per worker, on raw hyper so the
//! generator spends as little CPU as possible beside the router it measures) and what each
//! request records. It knows nothing about Switchyard: a URL, a body template and headers are
//! all it takes, so it can drive another gateway's intake the same way.
//!
//! - **Closed loop**: `connections` workers each send the next request as soon as the last
//!   one is answered.
//! - **Paced**: request `i` is due at `start + i / rate`; worker `k` sends requests
//!   `k, k + connections, …`, so no worker coordinates with another. A request sent more than
//!   5 ms after it was due counts as late: then the generator (a connection still waiting for
//!   its previous answer), not the target, limited the rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::Template;
use crate::signature::github_signature;

/// A request sent more than this after it was due is counted late. Timers fire on a 1 ms
/// grid, so anything under a couple of milliseconds is the timer, not the generator.
const LATE_AFTER: Duration = Duration::from_millis(5);
/// How long a worker waits before reconnecting after a connection failed.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Microseconds since the Unix epoch: the clock the sink subtracts from.
pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    /// The `host` header.
    pub authority: String,
    pub path_and_query: String,
}

impl Target {
    /// Resolves an `http://host:port/path` URL.
    pub async fn resolve(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("`{url}` is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("`{url}`: only http:// URLs are supported (loopback benchmarks)");
        }
        let authority = uri.authority().context("the URL has no host")?.clone();
        let port = authority.port_u16().unwrap_or(80);
        let address = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("cannot resolve `{}`", authority.host()))?
            .next()
            .with_context(|| format!("`{}` resolved to no address", authority.host()))?;
        let path_and_query = uri.path_and_query().map_or("/", |path| path.as_str()).to_owned();
        Ok(Self { address, authority: authority.to_string(), path_and_query })
    }
}

/// How requests are timed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Each connection sends as soon as its last request was answered.
    Closed,
    /// This many requests per second in all, spread evenly over the connections.
    Rate(f64),
}

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: Target,
    pub connections: usize,
    pub pace: Pace,
    /// Requests in this first span are sent but marked as warm-up.
    pub warmup: Duration,
    /// The measured span, after the warm-up.
    pub duration: Duration,
    pub body: Template,
    pub content_type: String,
    pub headers: Vec<(HeaderName, Template)>,
    /// Signs each body as GitHub does (`x-hub-signature-256`) with this secret.
    pub github_secret: Option<Vec<u8>>,
    /// Closed loop only: stop after this many requests (or at the end of the window, if
    /// sooner); the window then ends when the last answer came.
    pub limit: Option<u64>,
}

/// One request and its answer.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub seq: u64,
    /// When the body was stamped, microseconds since the epoch.
    pub sent_us: u64,
    /// Until the whole answer was read.
    pub latency_us: u64,
    /// The answer's status; 0 when the connection failed.
    pub status: u16,
}

/// Everything a run sent.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: Vec<Sent>,
    /// The measured window, microseconds since the epoch.
    pub window_start_us: u64,
    pub window_end_us: u64,
    pub late: u64,
    pub connection_failures: u64,
}

impl LoadReport {
    pub fn window_seconds(&self) -> f64 {
        self.window_end_us.saturating_sub(self.window_start_us) as f64 / 1e6
    }

    /// The requests stamped inside the measured window.
    pub fn measured(&self) -> impl Iterator<Item = &Sent> {
        self.sent.iter().filter(|sent| {
            sent.sent_us >= self.window_start_us && sent.sent_us < self.window_end_us
        })
    }
}

/// Shared by a run's workers.
struct Shared {
    spec: LoadSpec,
    /// Where each worker connects: worker `k` to `addresses[k % len]`.
    addresses: Vec<SocketAddr>,
    next_seq: AtomicU64,
    late: AtomicU64,
    connection_failures: AtomicU64,
    started: Instant,
    deadline: Instant,
}

/// Runs the load and answers what was sent. Spawns its workers on the current runtime.
pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadReport> {
    run_spread(spec, Vec::new()).await
}

/// [`run`], with the connections spread over the target and `others` in turn (several
/// instances of the same service behind no balancer); one sequence and one report for all.
pub async fn run_spread(spec: LoadSpec, others: Vec<SocketAddr>) -> anyhow::Result<LoadReport> {
    if spec.connections == 0 {
        bail!("at least one connection is needed");
    }
    if let Pace::Rate(rate) = spec.pace
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("the rate must be a positive number of requests per second, not {rate}");
    }
    let mut addresses = vec![spec.target.address];
    addresses.extend(others);
    // Fail fast when nothing listens, rather than counting failures for the whole run.
    for address in &addresses {
        TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to {address}"))?;
    }
    let started = Instant::now();
    let start_us = now_micros();
    let shared = Arc::new(Shared {
        deadline: started + spec.warmup + spec.duration,
        next_seq: AtomicU64::new(0),
        late: AtomicU64::new(0),
        connection_failures: AtomicU64::new(0),
        started,
        spec,
        addresses,
    });
    let workers: Vec<_> = (0..shared.spec.connections)
        .map(|index| tokio::spawn(worker(shared.clone(), index)))
        .collect();
    let mut sent = Vec::new();
    for handle in workers {
        sent.extend(handle.await.context("a load worker failed")?);
    }
    sent.sort_unstable_by_key(|sent| sent.seq);
    let window_start_us = start_us + shared.spec.warmup.as_micros() as u64;
    // A run that reached its limit early ends there; otherwise the last answers, which come
    // after the deadline, do not stretch the window.
    let window_end_us = (window_start_us + shared.spec.duration.as_micros() as u64)
        .min(now_micros().max(window_start_us));
    Ok(LoadReport {
        sent,
        window_start_us,
        window_end_us,
        late: shared.late.load(Ordering::Relaxed),
        connection_failures: shared.connection_failures.load(Ordering::Relaxed),
    })
}

async fn worker(shared: Arc<Shared>, index: usize) -> Vec<Sent> {
    let mut records = Vec::new();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let spec = &shared.spec;
    let address = shared.addresses[index % shared.addresses.len()];
    let mut paced_index = index as u64;
    loop {
        let seq = match spec.pace {
            Pace::Closed => {
                if Instant::now() >= shared.deadline {
                    break;
                }
                let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
                if spec.limit.is_some_and(|limit| seq >= limit) {
                    break;
                }
                seq
            }
            Pace::Rate(rate) => {
                let due = shared.started + Duration::from_secs_f64(paced_index as f64 / rate);
                if due >= shared.deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                if Instant::now() > due + LATE_AFTER {
                    shared.late.fetch_add(1, Ordering::Relaxed);
                }
                let seq = paced_index;
                paced_index += spec.connections as u64;
                seq
            }
        };
        let sender = match connection.as_mut() {
            Some(sender) => sender,
            None => match connect(address).await {
                Ok(sender) => connection.insert(sender),
                Err(_) => {
                    shared.connection_failures.fetch_add(1, Ordering::Relaxed);
                    records.push(Sent { seq, sent_us: now_micros(), latency_us: 0, status: 0 });
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let sent_us = now_micros();
        let began = Instant::now();
        let status = match send(sender, spec, seq, sent_us).await {
            Ok(status) => status,
            Err(_) => {
                shared.connection_failures.fetch_add(1, Ordering::Relaxed);
                connection = None;
                0
            }
        };
        let latency_us = began.elapsed().as_micros() as u64;
        records.push(Sent { seq, sent_us, latency_us, status });
    }
    records
}

async fn connect(address: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // A failed connection shows up as an error on the next send.
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    spec: &LoadSpec,
    seq: u64,
    sent_us: u64,
) -> anyhow::Result<u16> {
    let body = spec.body.render(seq, sent_us);
    let mut request = Request::post(spec.target.path_and_query.as_str())
        .header(HOST, spec.target.authority.as_str())
        .header(CONTENT_TYPE, spec.content_type.as_str());
    for (name, value) in &spec.headers {
        request = request.header(name, HeaderValue::try_from(value.render(seq, sent_us))?);
    }
    if let Some(secret) = &spec.github_secret {
        request = request.header("x-hub-signature-256", github_signature(secret, body.as_bytes()));
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::default_body_template;
    use crate::sink::{Reply, Sink, SinkSpec};

    #[tokio::test]
    async fn spread_load_reaches_every_target_with_one_sequence() {
        let spec =
            || SinkSpec { paths: vec![("/in".into(), Reply::OK)], key: None, verify_every: 1 };
        let first = Sink::start(([127, 0, 0, 1], 0).into(), spec()).await.unwrap();
        let second = Sink::start(([127, 0, 0, 1], 0).into(), spec()).await.unwrap();
        let load = LoadSpec {
            target: Target::resolve(&first.url("/in")).await.unwrap(),
            connections: 4,
            pace: Pace::Closed,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(30),
            body: Template::parse(&default_body_template()),
            content_type: "application/json".into(),
            headers: Vec::new(),
            github_secret: None,
            limit: Some(40),
        };
        let report = run_spread(load, vec![second.address()]).await.unwrap();
        assert_eq!(report.sent.len(), 40);
        assert!(report.sent.iter().all(|sent| sent.status == 200), "{:?}", report.sent);
        let seqs: Vec<u64> = report.sent.iter().map(|sent| sent.seq).collect();
        assert_eq!(seqs, (0..40).collect::<Vec<_>>());
        assert!(first.count(0) > 0 && second.count(0) > 0);
        assert_eq!(first.count(0) + second.count(0), 40);
        let mut arrived: Vec<u64> =
            first.take().into_iter().chain(second.take()).filter_map(|a| a.seq).collect();
        arrived.sort_unstable();
        assert_eq!(arrived, seqs);
    }
}
