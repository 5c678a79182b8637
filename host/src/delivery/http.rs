//! The outbound HTTP client: one attempt, with the SSRF guard enforced at connect time.
//!
//! Owns every reqwest type in the host. Names are resolved by our own resolver, which refuses
//! a name if ANY of its addresses fails the [`EgressPolicy`]: the addresses checked are the
//! ones connected to, so DNS rebinding gains nothing. Literal-IP URLs are checked before
//! sending. Redirects are never followed; at most 1 KiB of an answer is read.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::egress::{BlockedAddress, EgressPolicy};

/// How much of an answer is kept with the attempt.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct SenderError(String);

/// One request to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub timeout: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Any HTTP answer, 3xx included (redirects are not followed).
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    Timeout,
    Connect(String),
    Dns(String),
    /// The egress policy refused the address; no connection was made.
    Blocked(String),
}

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub outcome: AttemptOutcome,
    pub duration: Duration,
    pub response_excerpt: Bytes,
}

/// The process's delivery client (pooled keep-alive connections).
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl HttpSender {
    pub fn new(policy: EgressPolicy, user_agent: String) -> Result<Self, SenderError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|error| SenderError(error.to_string()))?;
        Ok(Self { client, policy })
    }

    pub async fn send(&self, request: OutboundRequest) -> AttemptResult {
        let started = Instant::now();
        let finish = |outcome, response_excerpt| AttemptResult {
            outcome,
            duration: started.elapsed(),
            response_excerpt,
        };
        let literal = match request.url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(Err(blocked)) = literal.map(|address| self.policy.check(address)) {
            return finish(AttemptOutcome::Blocked(blocked.to_string()), Bytes::new());
        }
        let mut builder = self.client.post(request.url).timeout(request.timeout).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let connect_timeout = request.timeout.min(MAX_CONNECT_TIMEOUT);
        let exchange = async {
            let mut response = builder.send().await?;
            let code = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let mut excerpt = BytesMut::new();
            while excerpt.len() < RESPONSE_EXCERPT_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = RESPONSE_EXCERPT_BYTES - excerpt.len();
                        excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    // The status is what counts; a body cut short is still an answer.
                    Ok(None) | Err(_) => break,
                }
            }
            Ok::<_, reqwest::Error>((code, retry_after, excerpt.freeze()))
        };
        // The request timeout covers the whole exchange; this outer bound also covers a
        // connection attempt that never completes.
        match tokio::time::timeout(request.timeout + connect_timeout, exchange).await {
            Ok(Ok((code, retry_after, excerpt))) => {
                finish(AttemptOutcome::Status { code, retry_after }, excerpt)
            }
            Ok(Err(error)) => finish(classify(&error), Bytes::new()),
            Err(_) => finish(AttemptOutcome::Timeout, Bytes::new()),
        }
    }
}

/// Maps a reqwest error onto an outcome by what its cause chain holds.
fn classify(error: &reqwest::Error) -> AttemptOutcome {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<RefusedName>() {
            return AttemptOutcome::Blocked(refused.0.to_string());
        }
        if let Some(failure) = current.downcast_ref::<LookupFailure>() {
            return AttemptOutcome::Dns(failure.to_string());
        }
        cause = current.source();
    }
    if error.is_timeout() {
        return AttemptOutcome::Timeout;
    }
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        message = format!("{message}: {current}");
        cause = current.source();
    }
    AttemptOutcome::Connect(message)
}

/// Resolves with the system resolver, then applies the egress policy to every address.
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

#[derive(Debug)]
struct RefusedName(BlockedAddress);

impl fmt::Display for RefusedName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

impl StdError for RefusedName {}

#[derive(Debug)]
struct LookupFailure(String);

impl fmt::Display for LookupFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl StdError for LookupFailure {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| Box::new(LookupFailure(format!("`{host}`: {error}"))) as Box<_>)?
                .collect();
            if addresses.is_empty() {
                return Err(Box::new(LookupFailure(format!("`{host}` has no addresses"))) as Box<_>);
            }
            for address in &addresses {
                if let Err(blocked) = policy.check(address.ip()) {
                    return Err(Box::new(RefusedName(blocked)) as Box<_>);
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::post;

    use super::*;

    /// A loopback server; answers per path and counts every request it receives.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new()
            .route("/ok", post(|body: Bytes| async move { body }))
            .route(
                "/redirect",
                post(|| async {
                    (axum::http::StatusCode::MOVED_PERMANENTLY, [("location", "/ok")])
                }),
            )
            .route("/huge", post(|| async { vec![b'x'; 1 << 20] }))
            .route(
                "/slow",
                post(|| async {
                    // A hanging endpoint: the client's 200 ms timeout must end the attempt.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (address, hits)
    }

    fn loopback_allowed() -> HttpSender {
        let policy = EgressPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            https_only: false,
        };
        HttpSender::new(policy, "Switchyard/test".into()).unwrap()
    }

    fn request(url: String, timeout: Duration) -> OutboundRequest {
        OutboundRequest {
            url: Url::parse(&url).unwrap(),
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: Bytes::from_static(b"\xff\x00raw"),
            timeout,
        }
    }

    #[tokio::test]
    async fn answers_statuses_and_excerpts() {
        let (address, hits) = server().await;
        let sender = loopback_allowed();
        let ok = sender.send(request(format!("http://{address}/ok"), Duration::from_secs(5))).await;
        assert_eq!(ok.outcome, AttemptOutcome::Status { code: 200, retry_after: None });
        assert_eq!(ok.response_excerpt.as_ref(), b"\xff\x00raw", "the body arrived byte for byte");
        let redirect = sender
            .send(request(format!("http://{address}/redirect"), Duration::from_secs(5)))
            .await;
        assert_eq!(redirect.outcome, AttemptOutcome::Status { code: 301, retry_after: None });
        assert_eq!(hits.load(Ordering::SeqCst), 2, "the redirect was not followed");
        let huge =
            sender.send(request(format!("http://{address}/huge"), Duration::from_secs(5))).await;
        assert_eq!(huge.response_excerpt.len(), RESPONSE_EXCERPT_BYTES);
    }

    #[tokio::test]
    async fn timeouts_and_refused_connections() {
        let (address, _) = server().await;
        let sender = loopback_allowed();
        let slow = sender
            .send(request(format!("http://{address}/slow"), Duration::from_millis(200)))
            .await;
        assert_eq!(slow.outcome, AttemptOutcome::Timeout);
        assert!(slow.duration < Duration::from_secs(5), "{:?}", slow.duration);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        let refused =
            sender.send(request(format!("http://{closed_address}/"), Duration::from_secs(5))).await;
        assert!(matches!(refused.outcome, AttemptOutcome::Connect(_)), "{:?}", refused.outcome);
    }

    #[tokio::test]
    async fn the_guard_blocks_before_connecting() {
        let (address, hits) = server().await;
        let guarded = HttpSender::new(EgressPolicy::default(), "Switchyard/test".into()).unwrap();
        for url in [
            format!("http://127.0.0.1:{}/ok", address.port()),
            format!("http://localhost:{}/ok", address.port()),
        ] {
            let blocked = guarded.send(request(url.clone(), Duration::from_secs(5))).await;
            match blocked.outcome {
                AttemptOutcome::Blocked(reason) => assert!(reason.contains("loopback"), "{reason}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0, "a blocked request reached the server");
        let allowed = loopback_allowed()
            .send(request(
                format!("http://localhost:{}/ok", address.port()),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(allowed.outcome, AttemptOutcome::Status { code: 200, retry_after: None });
    }
}
