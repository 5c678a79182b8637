//! The HTTP listeners: an accept loop of our own around hyper's connection machinery
//! (HTTP/1.1 and HTTP/2 on one port, told apart by the connection's first bytes), enforcing
//! `server.limits` on every connection.
//!
//! Owns accepting, one task per connection, the limits, the peer address handed to handlers
//! and the drain of connections when the process stops. It serves whatever router it is given
//! and decides nothing about requests.
//!
//! Decisions the design leaves open:
//! - **Past `connections`, new connections wait**: the loop stops accepting until one closes.
//!   They queue in the kernel (the listen backlog, then the clients' SYN retries), which costs
//!   the process no memory; nothing is refused by Switchyard. Each listener has its own
//!   budget, so a flood on the webhook port does not lock operators out of `admin_listen`.
//! - **`header_timeout`** runs from the connection's start (protocol detection and, under
//!   TLS, the handshake included) and again from the end of each response: a connection with
//!   no request in flight for that long is closed, counted as `header_timeout` when a head had
//!   started to arrive (or none ever came) and as `idle` otherwise. HTTP/2 connections follow
//!   the same rule (no open stream for `header_timeout` closes them); no keep-alive pings
//!   are sent, since an idle connection closes anyway and an active one is paced by its bodies.
//!   So idle keep-alive connections live `header_timeout` (10 s by default, like many
//!   proxies' keep-alive timeouts); a client request racing that close fails as with any
//!   server that closes idle connections.
//! - **Body limits** ([`body`]): on HTTP/1 a stalled or trickling body closes the connection
//!   at once, without an answer (it cannot be reused with a body half read); on HTTP/2 only its
//!   stream fails and the other streams go on.
//! - **Peer address**: every request carries axum's `ConnectInfo<SocketAddr>` extension;
//!   under TLS, a request whose client presented a verified certificate also carries its
//!   [`subject::PeerSubject`] (one whose subject cannot be read carries none).
//! - **TLS** ([`tls`]): the handshake must finish within `header_timeout` (counted as
//!   `header_timeout` otherwise); a failed handshake (plain HTTP, no required certificate)
//!   just closes the connection.
//! - **Open files**: [`raise_open_files_limit`] lifts the soft `RLIMIT_NOFILE` to the hard
//!   limit at start; the process warns when `connections` does not fit in it.
//! - **Drain**: on stop the listening socket closes, idle connections close, connections with
//!   requests under way finish them (HTTP/1 without keep-alive, HTTP/2 with GOAWAY); the
//!   caller bounds how long it waits.

pub mod activity;
pub mod body;
pub mod subject;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use self::activity::{Activity, CountingIo};
use self::body::{PacedBody, TrackedBody};
use crate::config::Limits;
use crate::telemetry::{CloseReason, ListenerLabels, Metrics};

/// How long the loop waits after an accept error other than a vanished client (for example
/// too many open files) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Warnings about a saturated listener, at most one per this period.
const SATURATION_WARNING_PERIOD: Duration = Duration::from_secs(60);

/// One listening socket and what its connections are held to.
#[derive(Debug)]
pub struct Listener {
    /// `main` (`server.listen`) or `admin` (`server.admin_listen`), in logs and metrics.
    pub name: &'static str,
    pub socket: TcpListener,
    pub limits: Limits,
    /// `server.tls`: the certificates, shared by every listener and replaced on reload.
    pub tls: Option<Arc<tls::Certificates>>,
}

/// What every connection task of one listener shares.
struct Shared {
    name: &'static str,
    limits: Limits,
    tls: Option<Arc<tls::Certificates>>,
    router: axum::Router,
    builder: auto::Builder<TokioExecutor>,
    metrics: Arc<Metrics>,
}

/// Serves `router` on `listener` until `stop` turns true, then stops accepting, lets every
/// connection finish what it has under way and returns once all are closed.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let Listener { name, socket, limits, tls } = listener;
    metrics.register_listener(name);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(limits.http2_streams);
    let shared = Arc::new(Shared { name, limits, tls, router, builder, metrics });
    let permits = Arc::new(Semaphore::new(limits.connections));
    let (finish, finishing) = watch::channel(false);
    let stopping = async move {
        // A dropped sender stops the listener too.
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let mut warned_at: Option<Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                shared.saturated(&mut warned_at);
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut stopping => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = socket.accept() => accepted,
            () = &mut stopping => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, shared.clone(), finishing.clone(), permit));
            }
            Err(error) if is_client_gone(&error) => {}
            Err(error) => {
                tracing::warn!(listener = name, %error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    drop(socket);
    let _ = finish.send(true);
    // Every connection holds a permit: all of them back means every connection closed.
    let everything = u32::try_from(limits.connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(everything).await;
}

impl Shared {
    fn labels(&self) -> ListenerLabels {
        ListenerLabels { listener: self.name.to_owned() }
    }

    fn saturated(&self, warned_at: &mut Option<Instant>) {
        self.metrics.listener_saturated.get_or_create(&self.labels()).inc();
        if warned_at.is_none_or(|at| at.elapsed() >= SATURATION_WARNING_PERIOD) {
            *warned_at = Some(Instant::now());
            tracing::warn!(
                listener = self.name,
                connections = self.limits.connections,
                "connection limit reached; new connections wait until one closes"
            );
        }
    }
}

/// Errors about one client that went away before it was accepted.
fn is_client_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// One client connection, from accept to close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    finishing: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let open = shared.metrics.connections_open.get_or_create(&shared.labels()).clone();
    open.inc();
    let activity = Activity::new(shared.name, shared.metrics.clone());
    let io = CountingIo::new(stream, activity.clone());
    match &shared.tls {
        None => serve_connection(io, peer, None, &shared, activity, finishing).await,
        Some(certificates) => {
            let handshake = certificates.acceptor().accept(io);
            match tokio::time::timeout(shared.limits.header_timeout, handshake).await {
                Ok(Ok(stream)) => {
                    let subject = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(|certificate| subject::subject_of(certificate));
                    let session = TlsSession { subject };
                    serve_connection(stream, peer, Some(session), &shared, activity, finishing)
                        .await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(listener = shared.name, %peer, %error, "TLS handshake failed");
                }
                Err(_) => activity.count(CloseReason::HeaderTimeout),
            }
        }
    }
    open.dec();
    drop(permit);
}

/// What a connection accepted over TLS tells its requests: they carry
/// [`crate::http_api::OverTls`], and the verified client certificate's subject when it has one.
#[derive(Debug, Clone)]
struct TlsSession {
    subject: Option<subject::PeerSubject>,
}

/// Runs HTTP on `io` until the client or a limit closes it, or a drain finishes it.
async fn serve_connection<Io>(
    io: Io,
    peer: SocketAddr,
    tls: Option<TlsSession>,
    shared: &Arc<Shared>,
    activity: Arc<Activity>,
    mut finishing: watch::Receiver<bool>,
) where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn({
        let (shared, activity) = (shared.clone(), activity.clone());
        move |request: hyper::Request<Incoming>| {
            let in_flight = activity.request_started();
            let multiplexed = request.version() == hyper::Version::HTTP_2;
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(ConnectInfo(peer));
            if let Some(session) = &tls {
                parts.extensions.insert(crate::http_api::OverTls);
                if let Some(subject) = &session.subject {
                    parts.extensions.insert(subject.clone());
                }
            }
            let limits = &shared.limits;
            let body = PacedBody::new(
                body,
                activity.clone(),
                limits.body_timeout,
                limits.min_body_rate,
                multiplexed,
            );
            let request = axum::extract::Request::from_parts(parts, axum::body::Body::new(body));
            let router = shared.router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
            }
        }
    });
    let connection = shared.builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let watchdog = activity.clone().watch(shared.limits.header_timeout);
    tokio::pin!(watchdog);
    let mut draining = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(listener = shared.name, %peer, %error, "connection ended with an error");
                }
                return;
            }
            reason = &mut watchdog => {
                if matches!(reason, CloseReason::HeaderTimeout | CloseReason::Idle) {
                    activity.count(reason);
                }
                tracing::debug!(listener = shared.name, %peer, reason = reason.as_str(), "connection closed by a limit");
                return;
            }
            _ = finishing.wait_for(|finish| *finish), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit (capped at 1,048,576) and answers the
/// limit now in force; `None` when it cannot be read.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const CAP: u64 = 1 << 20;
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    let wanted = limit.maximum.unwrap_or(CAP).min(CAP);
    if wanted <= current {
        return Some(current);
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum }) {
        Ok(()) => Some(wanted),
        Err(error) => {
            tracing::warn!(%error, current, wanted, "cannot raise the open files limit");
            Some(current)
        }
    }
}
