//! The sink: an HTTP receiver that records when each delivery arrived and which request it
//! carries, answers with scripted statuses and delays, and can check signatures.
//!
//! Owns what is recorded per request ([`Arrival`]). It must never be the bottleneck: raw
//! hyper, one task per connection, a two-number scan of the body instead of a JSON parse,
//! and signature checks on one request in `verify_every` when asked.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::body::find_number;
use crate::load::now_micros;
use crate::signature::WebhookKey;

/// How the sink answers requests to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub const OK: Self = Self { status: 200, delay: Duration::ZERO };
}

/// What the sink does.
#[derive(Debug, Clone, Default)]
pub struct SinkSpec {
    /// Paths it knows, each with its answer; the index in this list is what
    /// [`Arrival::path`] records. Other paths answer 200 and record `paths.len()`.
    pub paths: Vec<(String, Reply)>,
    /// Check `webhook-signature` with this key…
    pub key: Option<WebhookKey>,
    /// …on one request in this many (0 or 1: every request).
    pub verify_every: u64,
}

/// One request the sink received.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// When its body had been read, microseconds since the epoch.
    pub arrival_us: u64,
    pub seq: Option<u64>,
    pub sent_us: Option<u64>,
    /// Index of its path in [`SinkSpec::paths`].
    pub path: usize,
}

/// Counters the sink keeps besides arrivals.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub signatures_checked: AtomicU64,
    pub signatures_failed: AtomicU64,
    /// Requests whose body had no `seq`.
    pub unrecognised: AtomicU64,
    /// TCP connections accepted: many more than the sender's concurrency means it does not
    /// keep its connections alive.
    pub connections: AtomicU64,
}

struct SinkState {
    spec: SinkSpec,
    index: HashMap<String, usize>,
    arrivals: Mutex<Vec<Arrival>>,
    per_path: Vec<AtomicU64>,
    counters: SinkCounters,
    requests: AtomicU64,
}

/// A running sink; stops when dropped.
pub struct Sink {
    address: SocketAddr,
    state: Arc<SinkState>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Sink").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Sink {
    /// Listens on `listen` (port 0 picks a free one) and serves until dropped.
    pub async fn start(listen: SocketAddr, spec: SinkSpec) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        let index =
            spec.paths.iter().enumerate().map(|(at, (path, _))| (path.clone(), at)).collect();
        let per_path = (0..=spec.paths.len()).map(|_| AtomicU64::new(0)).collect();
        let state = Arc::new(SinkState {
            spec,
            index,
            arrivals: Mutex::new(Vec::with_capacity(1 << 16)),
            per_path,
            counters: SinkCounters::default(),
            requests: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Self { address, state, accept })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Requests received on path `index` so far.
    pub fn count(&self, index: usize) -> u64 {
        self.state.per_path.get(index).map_or(0, |count| count.load(Ordering::Relaxed))
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.state.counters
    }

    /// Takes every arrival recorded so far.
    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.state.arrivals.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<SinkState>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        state.counters.connections.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(
    state: Arc<SinkState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path_index =
        state.index.get(request.uri().path()).copied().unwrap_or(state.spec.paths.len());
    let reply = state.spec.paths.get(path_index).map_or(Reply::OK, |(_, reply)| *reply);
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(answer(StatusCode::BAD_REQUEST)),
    };
    let arrival_us = now_micros();
    let seq = find_number(&body, "seq");
    let sent_us = find_number(&body, "sent_us");
    if seq.is_none() {
        state.counters.unrecognised.fetch_add(1, Ordering::Relaxed);
    }
    let number = state.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(key) = &state.spec.key
        && number.is_multiple_of(state.spec.verify_every.max(1))
    {
        let header = |name: &str| parts.headers.get(name).and_then(|value| value.to_str().ok());
        let valid = match (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        ) {
            (Some(id), Some(timestamp), Some(signature)) => {
                key.verify(id, timestamp, &body, signature)
            }
            _ => false,
        };
        state.counters.signatures_checked.fetch_add(1, Ordering::Relaxed);
        if !valid {
            state.counters.signatures_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    state.per_path[path_index].fetch_add(1, Ordering::Relaxed);
    state.arrivals.lock().unwrap_or_else(PoisonError::into_inner).push(Arrival {
        arrival_us,
        seq,
        sent_us,
        path: path_index,
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    Ok(answer(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK)))
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
