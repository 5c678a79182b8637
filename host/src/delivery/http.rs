//! The outbound HTTP client: one delivery attempt, with the SSRF guard enforced at connect time.
//!
//! Owns every reqwest type in the host and the mapping of what happened on the wire onto an
//! [`AttemptOutcome`]. Host names are resolved by `GuardedResolver`, which refuses a name when
//! ANY of its addresses fails [`EgressPolicy::check`]; reqwest connects only to the addresses that
//! resolver returns, so a DNS answer that changes between checks (rebinding) gains nothing. URLs
//! holding a literal IP never reach a resolver and are checked before sending. Proxies are
//! disabled (a proxy would resolve and connect on our behalf, past the guard), redirects are never
//! followed, and at most [`RESPONSE_EXCERPT_LIMIT`] bytes of an answer are read.
//!
//! It must not decide what an outcome means for the delivery (that is `delivery::retry`), sign,
//! or record anything; it never panics on what an endpoint or a request holds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;
use url::{Host, Url};

use crate::egress::{BlockedAddress, EgressPolicy};

/// How much of an answer's body is kept with the attempt; the rest is never read.
pub const RESPONSE_EXCERPT_LIMIT: usize = 1024;
/// Upper bound of the TCP and TLS connect phase; a shorter request timeout bounds it further.
const CONNECT_TIMEOUT_LIMIT: Duration = Duration::from_secs(10);
/// How long a pooled keep-alive connection may sit unused before it is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle keep-alive connections kept per host. Several endpoints often share a host (one
/// receiver, several paths), and their `max_in_flight` add up: a smaller pool closes
/// connections that the next burst must open again. Connections are only ever opened for a
/// request, so the endpoints' limits bound this pool, not this number.
const POOL_MAX_IDLE_PER_HOST: usize = 512;

/// Why the delivery client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("`user_agent` {user_agent:?} is not a valid header value")]
    UserAgent { user_agent: String },
    #[error("reqwest refused the delivery client's configuration: {reason}")]
    Client { reason: String },
}

/// One attempt to send: a `POST` of `body` to `url` with exactly `headers`.
#[derive(Clone)]
pub struct OutboundRequest {
    pub url: Url,
    /// Sent in order; a name given twice is sent twice. `user-agent` comes from the sender
    /// unless given here.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Bounds the whole attempt: resolving, connecting, sending and reading the answer.
    pub timeout: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered; 3xx included, since redirects are never followed.
    Status { code: u16, retry_after: Option<String> },
    /// No answer within the request's timeout (connecting included).
    Timeout,
    /// The connection failed or broke before an answer: refused, reset, TLS failure, or a request
    /// that could not be written at all (an invalid header).
    Connect(String),
    /// The endpoint's host name did not resolve.
    Dns(String),
    /// The egress policy refused the endpoint; no connection was made. The reason names the
    /// address and its kind.
    Blocked(String),
}

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub outcome: AttemptOutcome,
    pub duration: Duration,
    /// The first [`RESPONSE_EXCERPT_LIMIT`] bytes of the answer's body at most; empty without an
    /// answer.
    pub response_excerpt: Bytes,
}

/// The process's delivery client: pooled keep-alive connections behind the egress guard.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

/// Resolves host names, then refuses the name unless every address passes the egress policy.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
    lookup: Lookup,
}

/// Where [`GuardedResolver`] gets addresses from.
#[derive(Debug, Clone)]
enum Lookup {
    /// The system resolver, through tokio.
    System,
    /// Fixed answers, so tests can play a DNS server without one; a missing name fails.
    #[cfg(test)]
    Fixed(Arc<std::collections::HashMap<String, Vec<IpAddr>>>),
}

/// Why [`GuardedResolver`] gave no addresses; found again in reqwest's error chain.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("cannot resolve `{host}`: {reason}")]
    Lookup { host: String, reason: String },
    #[error("`{host}` resolved to no address")]
    NoAddress { host: String },
    #[error("host `{host}`: {blocked}")]
    Refused { host: String, blocked: BlockedAddress },
}

// === impl HttpSender ===

impl HttpSender {
    /// Builds the client; `user_agent` goes on every request that does not set its own.
    pub fn new(policy: EgressPolicy, user_agent: String) -> Result<Self, SenderError> {
        Self::with_lookup(policy, user_agent, Lookup::System)
    }

    fn with_lookup(
        policy: EgressPolicy,
        user_agent: String,
        lookup: Lookup,
    ) -> Result<Self, SenderError> {
        let user_agent = HeaderValue::from_str(&user_agent)
            .map_err(|_| SenderError::UserAgent { user_agent: user_agent.clone() })?;
        let policy = Arc::new(policy);
        let resolver = GuardedResolver { policy: policy.clone(), lookup };
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .dns_resolver(Arc::new(resolver))
            // Environment proxies (`HTTP_PROXY`, …) would resolve and connect past the guard.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT_LIMIT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build()
            .map_err(|error| SenderError::Client { reason: error_chain(&error) })?;
        Ok(Self { client, policy })
    }

    /// Sends one attempt and says how it ended; never takes much longer than `request.timeout`.
    pub async fn send(&self, request: OutboundRequest) -> AttemptResult {
        let started = Instant::now();
        // A timeout too large to add is no timeout at all; a year stands in for it.
        let deadline = started
            .checked_add(request.timeout)
            .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 60 * 60));
        let (outcome, response_excerpt) = self.attempt(request, deadline).await;
        let duration = started.elapsed();
        AttemptResult { outcome, duration, response_excerpt }
    }

    async fn attempt(
        &self,
        request: OutboundRequest,
        deadline: Instant,
    ) -> (AttemptOutcome, Bytes) {
        if let Err(reason) = self.check_url(&request.url) {
            return (AttemptOutcome::Blocked(reason), Bytes::new());
        }
        let headers = match header_map(&request.headers) {
            Ok(headers) => headers,
            Err(reason) => return (AttemptOutcome::Connect(reason), Bytes::new()),
        };
        let sending = self
            .client
            .post(request.url)
            .headers(headers)
            .body(request.body)
            .timeout(request.timeout)
            .send();
        // reqwest's own timeout covers the same span; this one holds even if it did not.
        let mut response = match tokio::time::timeout_at(deadline, sending).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return (classify(error), Bytes::new()),
            Err(_elapsed) => return (AttemptOutcome::Timeout, Bytes::new()),
        };
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let excerpt = read_excerpt(&mut response, deadline).await;
        // Dropping a response whose body was not read to the end closes its connection instead
        // of pooling it, so the rest of a large answer is never downloaded.
        drop(response);
        (AttemptOutcome::Status { code, retry_after }, excerpt)
    }

    /// What the guard can decide from the URL alone: the scheme, and a literal IP host (which
    /// reqwest connects to without asking the resolver).
    fn check_url(&self, url: &Url) -> Result<(), String> {
        if self.policy.https_only && url.scheme() != "https" {
            return Err(format!(
                "the URL's scheme is `{}`, and `egress.https_only` allows `https` only",
                url.scheme()
            ));
        }
        let literal = match url.host() {
            Some(Host::Ipv4(address)) => Some(IpAddr::V4(address)),
            Some(Host::Ipv6(address)) => Some(IpAddr::V6(address)),
            // `url` turns every IPv4 spelling into `Host::Ipv4` for http(s); this catches any
            // other scheme's numeric host, which the connector would not resolve either.
            Some(Host::Domain(domain)) => domain.parse().ok(),
            None => None,
        };
        match literal {
            Some(address) => self.policy.check(address).map_err(|blocked| blocked.to_string()),
            None => Ok(()),
        }
    }
}

/// The request's headers, in order, duplicates kept.
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            format!("`{name}` is not a valid header name; the request was not sent")
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            format!(
                "header `{name}` has a value that is not valid in HTTP; the request was not sent"
            )
        })?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// Reads the start of the body until the limit, its end, an error or `deadline`, whichever
/// comes first: the status is the answer, so a body cut short only shortens the excerpt.
async fn read_excerpt(response: &mut reqwest::Response, deadline: Instant) -> Bytes {
    let mut excerpt = BytesMut::new();
    while excerpt.len() < RESPONSE_EXCERPT_LIMIT {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = RESPONSE_EXCERPT_LIMIT - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Ok(None) | Err(_)) | Err(_) => break,
        }
    }
    excerpt.freeze()
}

/// Maps a failed exchange onto an outcome by what its cause chain holds.
fn classify(error: reqwest::Error) -> AttemptOutcome {
    // The URL may carry credentials (tokens in paths are common in webhook URLs): keep it out.
    let error = error.without_url();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(resolve_error) = current.downcast_ref::<ResolveError>() {
            return match resolve_error {
                ResolveError::Refused { .. } => AttemptOutcome::Blocked(resolve_error.to_string()),
                ResolveError::Lookup { .. } | ResolveError::NoAddress { .. } => {
                    AttemptOutcome::Dns(resolve_error.to_string())
                }
            };
        }
        cause = current.source();
    }
    if error.is_timeout() {
        AttemptOutcome::Timeout
    } else if error.is_dns() {
        AttemptOutcome::Dns(error_chain(&error))
    } else {
        AttemptOutcome::Connect(error_chain(&error))
    }
}

/// `error` and its causes, joined by `: `, skipping a cause its parent already spelled out.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = current.source();
    }
    message
}

// === impl OutboundRequest ===

impl fmt::Debug for OutboundRequest {
    /// Header values and the URL's path and query may hold credentials: names and origin only.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        formatter
            .debug_struct("OutboundRequest")
            .field("origin", &self.url.origin().ascii_serialization())
            .field("header_names", &header_names)
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

// === impl GuardedResolver ===

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = lookup.addresses(&host).await?;
            let addresses = guard(&policy, host, addresses)?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Passes `addresses` through only if every one of them is allowed.
fn guard(
    policy: &EgressPolicy,
    host: String,
    addresses: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if addresses.is_empty() {
        return Err(ResolveError::NoAddress { host });
    }
    for address in &addresses {
        if let Err(blocked) = policy.check(address.ip()) {
            return Err(ResolveError::Refused { host, blocked });
        }
    }
    Ok(addresses)
}

// === impl Lookup ===

impl Lookup {
    /// The addresses of `host`, with port 0 (reqwest puts in the URL's port).
    async fn addresses(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        match self {
            Self::System => match tokio::net::lookup_host((host, 0)).await {
                Ok(addresses) => Ok(addresses.collect()),
                Err(error) => {
                    Err(ResolveError::Lookup { host: host.to_owned(), reason: error.to_string() })
                }
            },
            #[cfg(test)]
            Self::Fixed(answers) => match answers.get(host) {
                Some(addresses) => Ok(addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect()),
                None => Err(ResolveError::Lookup {
                    host: host.to_owned(),
                    reason: "no such name in the test's answers".to_owned(),
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::extract::{ConnectInfo, State};
    use axum::http::{HeaderMap as AxumHeaderMap, Method, StatusCode, Uri};
    use axum::response::Response;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const USER_AGENT: &str = "Switchyard/test";

    /// What the receiver saw of one request.
    #[derive(Debug, Clone)]
    struct Received {
        method: Method,
        path: String,
        peer: SocketAddr,
        headers: Vec<(String, Vec<u8>)>,
        body: Bytes,
    }

    type Log = Arc<Mutex<Vec<Received>>>;

    /// A loopback axum server that records every request and answers by path.
    struct Receiver {
        port: u16,
        log: Log,
    }

    impl Receiver {
        async fn start() -> Self {
            let log = Log::default();
            let app = axum::Router::new().fallback(answer).with_state(log.clone());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move { axum::serve(listener, service).await });
            Self { port, log }
        }

        fn url(&self, path: &str) -> String {
            format!("http://127.0.0.1:{}{path}", self.port)
        }

        fn received(&self) -> Vec<Received> {
            self.log.lock().unwrap().clone()
        }
    }

    async fn answer(
        State(log): State<Log>,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        method: Method,
        uri: Uri,
        headers: AxumHeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path().to_owned();
        let headers = headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        log.lock().unwrap().push(Received { method, path: path.clone(), peer, headers, body });
        let response = Response::builder();
        let response = match path.as_str() {
            "/ok" => response.status(StatusCode::OK).body(Body::from("accepted by the receiver")),
            "/error" => response.status(StatusCode::INTERNAL_SERVER_ERROR).body(Body::from("boom")),
            "/redirect" => response
                .status(StatusCode::MOVED_PERMANENTLY)
                .header("location", "/target")
                .body(Body::from("moved")),
            "/limited" => response
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", "120")
                .body(Body::empty()),
            // Never answers; the test runtime drops this future when the test ends.
            "/hang" => return std::future::pending().await,
            _ => response.status(StatusCode::NOT_FOUND).body(Body::empty()),
        };
        response.unwrap()
    }

    fn policy(allow_networks: &[&str]) -> EgressPolicy {
        EgressPolicy {
            allow_networks: allow_networks.iter().map(|network| network.parse().unwrap()).collect(),
            https_only: false,
        }
    }

    fn loopback_allowed() -> HttpSender {
        HttpSender::new(policy(&["127.0.0.0/8", "::1/128"]), USER_AGENT.into()).unwrap()
    }

    fn request(url: &str, timeout: Duration) -> OutboundRequest {
        OutboundRequest {
            url: Url::parse(url).unwrap(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from_static(b"{}"),
            timeout,
        }
    }

    fn status(code: u16) -> AttemptOutcome {
        AttemptOutcome::Status { code, retry_after: None }
    }

    #[tokio::test]
    async fn a_2xx_answer_comes_back_with_its_excerpt() {
        let receiver = Receiver::start().await;
        let result =
            loopback_allowed().send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
        assert_eq!(result.outcome, status(200));
        assert_eq!(result.response_excerpt, Bytes::from_static(b"accepted by the receiver"));
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].method, Method::POST);
    }

    #[tokio::test]
    async fn a_5xx_answer_is_a_status() {
        let receiver = Receiver::start().await;
        let result =
            loopback_allowed().send(request(&receiver.url("/error"), Duration::from_secs(5))).await;
        assert_eq!(result.outcome, status(500));
        assert_eq!(result.response_excerpt, Bytes::from_static(b"boom"));
    }

    #[tokio::test]
    async fn a_redirect_is_a_status_and_is_not_followed() {
        let receiver = Receiver::start().await;
        let result = loopback_allowed()
            .send(request(&receiver.url("/redirect"), Duration::from_secs(5)))
            .await;
        assert_eq!(result.outcome, status(301));
        let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/redirect"], "the redirect target was requested");
    }

    #[tokio::test]
    async fn retry_after_is_passed_through() {
        let receiver = Receiver::start().await;
        let result = loopback_allowed()
            .send(request(&receiver.url("/limited"), Duration::from_secs(5)))
            .await;
        assert_eq!(
            result.outcome,
            AttemptOutcome::Status { code: 429, retry_after: Some("120".into()) }
        );
    }

    #[tokio::test]
    async fn headers_and_body_arrive_exactly_as_given() {
        let receiver = Receiver::start().await;
        let body = Bytes::from_static(b"\x00\xff\xfe not utf-8 \x80\r\n");
        let headers: Vec<(String, String)> = [
            ("content-type", "application/octet-stream"),
            ("webhook-id", "evt_01JC0000000000000000000000"),
            ("webhook-timestamp", "1700000000"),
            ("webhook-signature", "v1,c2lnbmF0dXJl v1,b3RoZXI="),
            ("x-tenant", "acme"),
            ("x-repeated", "first"),
            ("x-repeated", "second"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let outbound = OutboundRequest {
            url: Url::parse(&receiver.url("/ok")).unwrap(),
            headers: headers.clone(),
            body: body.clone(),
            timeout: Duration::from_secs(5),
        };
        let result = loopback_allowed().send(outbound).await;
        assert_eq!(result.outcome, status(200));
        let received = receiver.received().remove(0);
        assert_eq!(received.body, body);
        let mut expected: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .chain([
                ("user-agent".to_owned(), USER_AGENT.as_bytes().to_vec()),
                // Added by reqwest to every request that does not set its own.
                ("accept".to_owned(), b"*/*".to_vec()),
                ("host".to_owned(), format!("127.0.0.1:{}", receiver.port).into_bytes()),
                ("content-length".to_owned(), body.len().to_string().into_bytes()),
            ])
            .collect();
        let mut actual = received.headers;
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected);
    }

    #[tokio::test]
    async fn an_invalid_header_fails_without_sending() {
        let receiver = Receiver::start().await;
        let mut outbound = request(&receiver.url("/ok"), Duration::from_secs(5));
        outbound.headers.push(("bad name".into(), "value".into()));
        let result = loopback_allowed().send(outbound).await;
        match result.outcome {
            AttemptOutcome::Connect(reason) => assert!(reason.contains("`bad name`"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(receiver.received().is_empty());
    }

    #[tokio::test]
    async fn connections_are_kept_alive_and_reused() {
        let receiver = Receiver::start().await;
        let sender = loopback_allowed();
        for _ in 0..3 {
            let result = sender.send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
            assert_eq!(result.outcome, status(200));
        }
        let peers: Vec<SocketAddr> = receiver.received().into_iter().map(|r| r.peer).collect();
        assert_eq!(peers.len(), 3);
        assert!(peers.iter().all(|peer| *peer == peers[0]), "{peers:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let receiver = Receiver::start().await;
        let timeout = Duration::from_millis(300);
        let result = loopback_allowed().send(request(&receiver.url("/hang"), timeout)).await;
        assert_eq!(result.outcome, AttemptOutcome::Timeout);
        assert!(result.duration >= timeout, "{:?}", result.duration);
        assert!(result.duration < timeout + Duration::from_secs(1), "{:?}", result.duration);
        assert!(result.response_excerpt.is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/");
        let result = loopback_allowed().send(request(&url, Duration::from_secs(5))).await;
        match result.outcome {
            AttemptOutcome::Connect(reason) => {
                assert!(reason.to_lowercase().contains("refused"), "{reason}");
                assert!(!reason.contains(&url), "the URL is kept out of the reason: {reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Accepts one connection, reads the request head, then writes `head` and calls `then`.
    async fn raw_server<F, Fut>(head: &'static str, then: F) -> (u16, tokio::task::JoinHandle<u64>)
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = u64> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0_u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return 0,
                    Ok(read) => seen.extend_from_slice(&buffer[..read]),
                }
            }
            stream.write_all(head.as_bytes()).await.unwrap();
            then(stream).await
        });
        (port, task)
    }

    #[tokio::test]
    async fn a_huge_answer_is_cut_at_the_excerpt_limit_and_not_downloaded() {
        const ADVERTISED: u64 = 1 << 30;
        let (port, server) = raw_server(
            "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n",
            |mut stream| async move {
                // Writes until the client hangs up (or, at worst, the whole advertised body).
                let block = vec![b'x'; 64 * 1024];
                let mut written = 0;
                while written < ADVERTISED {
                    if stream.write_all(&block).await.is_err() {
                        break;
                    }
                    written += block.len() as u64;
                }
                written
            },
        )
        .await;
        let url = format!("http://127.0.0.1:{port}/");
        let result = loopback_allowed().send(request(&url, Duration::from_secs(30))).await;
        assert_eq!(result.outcome, status(200));
        assert_eq!(result.response_excerpt, Bytes::from(vec![b'x'; RESPONSE_EXCERPT_LIMIT]));
        assert!(result.duration < Duration::from_secs(5), "{:?}", result.duration);
        let written = tokio::time::timeout(Duration::from_secs(10), server).await.unwrap().unwrap();
        assert!(written < 64 << 20, "the client kept reading: {written} bytes sent");
    }

    #[tokio::test]
    async fn a_stalled_answer_body_ends_at_the_timeout() {
        let (port, _server) = raw_server(
            "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial",
            |mut stream| async move {
                // Holds the connection open, bounded, until the client hangs up.
                let mut buffer = [0_u8; 64];
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
                0
            },
        )
        .await;
        let timeout = Duration::from_millis(300);
        let url = format!("http://127.0.0.1:{port}/");
        let result = loopback_allowed().send(request(&url, timeout)).await;
        assert_eq!(result.outcome, status(200));
        assert_eq!(result.response_excerpt, Bytes::from_static(b"partial"));
        assert!(result.duration < timeout + Duration::from_secs(1), "{:?}", result.duration);
    }

    fn assert_blocked(result: &AttemptResult, needles: &[&str]) {
        match &result.outcome {
            AttemptOutcome::Blocked(reason) => {
                for needle in needles {
                    assert!(reason.contains(needle), "`{needle}` not in: {reason}");
                }
            }
            other => panic!("expected blocked, got {other:?}"),
        }
        assert!(result.response_excerpt.is_empty());
    }

    #[tokio::test]
    async fn the_guard_blocks_loopback_before_connecting() {
        let receiver = Receiver::start().await;
        let port = receiver.port;
        let guarded = HttpSender::new(EgressPolicy::default(), USER_AGENT.into()).unwrap();
        let cases = [
            (
                format!("http://localhost:{port}/ok"),
                ["host `localhost`", "`127.0.0.1`", "(loopback)"],
            ),
            (
                format!("http://127.0.0.1:{port}/ok"),
                ["`127.0.0.1`", "(loopback)", "allow_networks"],
            ),
            (format!("http://[::1]:{port}/ok"), ["`::1`", "(loopback)", "allow_networks"]),
            (
                format!("http://[::ffff:127.0.0.1]:{port}/ok"),
                ["`::ffff:127.0.0.1`", "(IPv4-mapped)", "allow_networks"],
            ),
        ];
        for (url, needles) in cases {
            let result = guarded.send(request(&url, Duration::from_secs(5))).await;
            assert_blocked(&result, &needles);
        }
        assert!(receiver.received().is_empty(), "a blocked request reached the receiver");
    }

    #[tokio::test]
    async fn allowed_networks_are_delivered_to() {
        let receiver = Receiver::start().await;
        let sender = loopback_allowed();
        for url in [
            format!("http://localhost:{}/ok", receiver.port),
            format!("http://127.0.0.1:{}/ok", receiver.port),
        ] {
            let result = sender.send(request(&url, Duration::from_secs(5))).await;
            assert_eq!(result.outcome, status(200), "{url}");
        }
        assert_eq!(receiver.received().len(), 2);
    }

    #[tokio::test]
    async fn https_only_blocks_plain_http() {
        let receiver = Receiver::start().await;
        let mut egress = policy(&["127.0.0.0/8"]);
        egress.https_only = true;
        let sender = HttpSender::new(egress, USER_AGENT.into()).unwrap();
        let result = sender.send(request(&receiver.url("/ok"), Duration::from_secs(5))).await;
        assert_blocked(&result, &["`http`", "`egress.https_only`"]);
        assert!(receiver.received().is_empty());
    }

    /// A sender whose resolver answers from `answers` instead of asking any DNS server.
    fn with_answers(egress: EgressPolicy, answers: &[(&str, &[&str])]) -> HttpSender {
        let answers = answers
            .iter()
            .map(|(name, addresses)| {
                let addresses = addresses.iter().map(|address| address.parse().unwrap()).collect();
                (name.to_string(), addresses)
            })
            .collect::<HashMap<_, _>>();
        HttpSender::with_lookup(egress, USER_AGENT.into(), Lookup::Fixed(Arc::new(answers)))
            .unwrap()
    }

    #[tokio::test]
    async fn a_name_is_refused_if_any_of_its_addresses_is_refused() {
        let receiver = Receiver::start().await;
        let sender = with_answers(
            policy(&["127.0.0.0/8"]),
            &[("allowed.test", &["127.0.0.1"]), ("mixed.test", &["127.0.0.1", "::1"])],
        );
        let url = format!("http://mixed.test:{}/ok", receiver.port);
        let result = sender.send(request(&url, Duration::from_secs(5))).await;
        assert_blocked(&result, &["host `mixed.test`", "`::1`", "(loopback)"]);
        assert!(receiver.received().is_empty(), "a blocked request reached the receiver");
        // The same resolver delivers to a name whose every address is allowed, on the URL's port.
        let url = format!("http://allowed.test:{}/ok", receiver.port);
        let result = sender.send(request(&url, Duration::from_secs(5))).await;
        assert_eq!(result.outcome, status(200));
        assert_eq!(receiver.received().len(), 1);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_dns_failure() {
        let sender = with_answers(policy(&["127.0.0.0/8"]), &[("empty.test", &[])]);
        for (name, expected) in [
            ("missing.test", "cannot resolve `missing.test`: no such name in the test's answers"),
            ("empty.test", "`empty.test` resolved to no address"),
        ] {
            let url = format!("http://{name}/");
            let result = sender.send(request(&url, Duration::from_secs(5))).await;
            assert_eq!(result.outcome, AttemptOutcome::Dns(expected.to_owned()), "{name}");
        }
    }

    #[tokio::test]
    async fn a_tls_failure_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = [0_u8; 1024];
            let _ = stream.read(&mut buffer).await;
            // Not a TLS record: the handshake must fail.
            let _ =
                stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        });
        let url = format!("https://127.0.0.1:{port}/");
        let result = loopback_allowed().send(request(&url, Duration::from_secs(5))).await;
        match result.outcome {
            // rustls saw the plain-text answer: TLS ran, offline, with no provider installed.
            AttemptOutcome::Connect(reason) => {
                assert!(reason.contains("corrupt message"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        server.await.unwrap();
    }

    #[test]
    fn an_invalid_user_agent_is_refused() {
        let error = HttpSender::new(EgressPolicy::default(), "bad\nagent".into()).unwrap_err();
        assert_eq!(error.to_string(), r#"`user_agent` "bad\nagent" is not a valid header value"#);
    }

    #[test]
    fn debug_output_leaves_out_credentials() {
        let mut outbound =
            request("https://hooks.example.com/T0/secret-token?key=k", Duration::ZERO);
        outbound.headers.push(("authorization".into(), "Bearer hunter2".into()));
        let debug = format!("{outbound:?}");
        assert!(debug.contains("https://hooks.example.com"), "{debug}");
        for secret in ["secret-token", "key=k", "hunter2"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
