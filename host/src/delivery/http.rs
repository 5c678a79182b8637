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
//! With `egress.proxy`, every client sends through the proxy (`CONNECT` for `https` targets),
//! except targets in `egress.no_proxy`. The proxy would resolve target names past the guard, so
//! before each attempt the target's name is resolved here and every address checked; the
//! resolver itself still checks every connection made directly (bypassed targets). The
//! proxy's own host name is the one name the resolver does not hold to the rules: it is the
//! operator's choice, typically on a private network.
//!
//! Endpoints with their own TLS settings ([`EndpointTls`]: a private CA, a client certificate)
//! get a client of their own, one per distinct setting, made when first needed and built exactly
//! as the shared one (same resolver, timeouts and pool); every other endpoint shares one client.
//!
//! It must not decide what an outcome means for the delivery (that is `delivery::retry`), sign,
//! or record anything; it never panics on what an endpoint or a request holds.

mod tls;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use tokio::time::Instant;
use url::{Host, Url};

use crate::egress::{BlockedAddress, EgressPolicy};

pub use tls::{EndpointTls, TlsField, TlsProblem};

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
/// Clients kept for endpoints' own TLS settings. Settings change rarely; should changes through
/// the admin API pile up past this, the cache starts over (clients in use live on).
const MAX_TLS_CLIENTS: usize = 256;

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
    /// The endpoint's own TLS settings; `None` uses the shared client.
    pub tls: Option<EndpointTls>,
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
    user_agent: HeaderValue,
    resolver: Arc<GuardedResolver>,
    /// One client per distinct endpoint TLS setting.
    tls_clients: Arc<Mutex<HashMap<EndpointTls, reqwest::Client>>>,
}

/// Resolves host names, then refuses the name unless every address passes the egress policy.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
    lookup: Lookup,
    /// The proxy's host name: resolved without the policy (the operator chose it).
    proxy_host: Option<String>,
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
        let proxy_host = policy
            .proxy
            .as_ref()
            .and_then(|proxy| proxy.url.host_str())
            .map(|host| host.to_ascii_lowercase());
        let resolver = Arc::new(GuardedResolver { policy: policy.clone(), lookup, proxy_host });
        let client = client_builder(&user_agent, &resolver)?
            .build()
            .map_err(|error| SenderError::Client { reason: error_chain(&error) })?;
        let tls_clients = Arc::default();
        Ok(Self { client, policy, user_agent, resolver, tls_clients })
    }

    /// The client for `tls`: the shared one, or the one for that setting (built now if it is
    /// the first request with it).
    fn client_for(&self, tls: Option<&EndpointTls>) -> Result<reqwest::Client, String> {
        let Some(tls) = tls else { return Ok(self.client.clone()) };
        let mut clients = self.tls_clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(tls) {
            return Ok(client.clone());
        }
        let builder =
            client_builder(&self.user_agent, &self.resolver).map_err(|error| error.to_string())?;
        let client = tls.apply(builder)?.build().map_err(|error| error_chain(&error))?;
        if clients.len() >= MAX_TLS_CLIENTS {
            clients.clear();
        }
        clients.insert(tls.clone(), client.clone());
        Ok(client)
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
        if let Err(outcome) = self.check_name_for_proxy(&request.url, deadline).await {
            return (outcome, Bytes::new());
        }
        let headers = match header_map(request.headers) {
            Ok(headers) => headers,
            Err(reason) => return (AttemptOutcome::Connect(reason), Bytes::new()),
        };
        let client = match self.client_for(request.tls.as_ref()) {
            Ok(client) => client,
            Err(reason) => {
                let reason = format!("the endpoint's `tls` settings cannot be used: {reason}");
                return (AttemptOutcome::Connect(reason), Bytes::new());
            }
        };
        // One deadline for the whole exchange, connecting included, and the same one for the
        // excerpt below. reqwest's per-request timeout would cover the same span with a second
        // timer, boxed and registered at every attempt (~2 % of the CPU under ten endpoints).
        // Built whole rather than through a builder, whose `headers` copies the map entry by
        // entry into the request's own.
        let mut outbound = reqwest::Request::new(Method::POST, request.url);
        *outbound.headers_mut() = headers;
        *outbound.body_mut() = Some(request.body.into());
        let sending = client.execute(outbound);
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

/// A client builder with what every delivery client has: the user agent, the guarded resolver,
/// `egress.proxy` or no proxy at all, no redirects, the connect timeout and the pool's limits.
fn client_builder(
    user_agent: &HeaderValue,
    resolver: &Arc<GuardedResolver>,
) -> Result<reqwest::ClientBuilder, SenderError> {
    let builder = reqwest::Client::builder()
        .user_agent(user_agent.clone())
        .dns_resolver(resolver.clone())
        // Environment proxies (`HTTP_PROXY`, …) are never read: only `egress.proxy` counts.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT_LIMIT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST);
    let Some(proxy) = &resolver.policy.proxy else { return Ok(builder) };
    let bypass = reqwest::NoProxy::from_string(&proxy.no_proxy.join(","));
    let proxy = reqwest::Proxy::all(proxy.url.clone())
        .map_err(|error| SenderError::Client { reason: error_chain(&error) })?
        .no_proxy(bypass);
    Ok(builder.proxy(proxy))
}

// === impl HttpSender: the proxy ===

impl HttpSender {
    /// With a proxy, resolves the target's host name here and checks every address, so that
    /// the proxy is never asked for a target the rules refuse. (The proxy resolves the name
    /// again; an answer that changes in between is its to police.) Literal addresses were
    /// checked by [`Self::check_url`]; without a proxy the resolver checks at connect time.
    async fn check_name_for_proxy(
        &self,
        url: &Url,
        deadline: Instant,
    ) -> Result<(), AttemptOutcome> {
        if self.policy.proxy.is_none() {
            return Ok(());
        }
        let Some(Host::Domain(host)) = url.host() else { return Ok(()) };
        if host.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        let host = host.to_ascii_lowercase();
        let resolving = self.resolver.lookup.addresses(&host);
        let addresses = match tokio::time::timeout_at(deadline, resolving).await {
            Err(_elapsed) => return Err(AttemptOutcome::Timeout),
            Ok(Err(error)) => return Err(AttemptOutcome::Dns(error.to_string())),
            Ok(Ok(addresses)) => addresses,
        };
        match guard(&self.policy, host, addresses) {
            Ok(_) => Ok(()),
            Err(error @ ResolveError::Refused { .. }) => {
                Err(AttemptOutcome::Blocked(error.to_string()))
            }
            Err(error) => Err(AttemptOutcome::Dns(error.to_string())),
        }
    }
}

/// The request's headers, in order, duplicates kept; each value keeps its string's bytes.
fn header_map(headers: Vec<(String, String)>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            format!("`{name}` is not a valid header name; the request was not sent")
        })?;
        let header_value = HeaderValue::from_maybe_shared(Bytes::from(value)).map_err(|_| {
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
            .field("tls", &self.tls)
            .finish()
    }
}

// === impl GuardedResolver ===

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        let host = name.as_str().to_owned();
        let is_proxy = self.proxy_host.as_deref() == Some(host.to_ascii_lowercase().as_str());
        Box::pin(async move {
            let addresses = lookup.addresses(&host).await?;
            if is_proxy {
                if addresses.is_empty() {
                    return Err(ResolveError::NoAddress { host }.into());
                }
                return Ok(Box::new(addresses.into_iter()) as Addrs);
            }
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
mod tests;
