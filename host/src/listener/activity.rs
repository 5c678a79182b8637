//! One connection's activity, as the listener's limits see it: requests in flight, bytes read,
//! when it went idle, and whether a limit asked for it to close.
//!
//! Owns the header and idle watchdog ([`Activity::watch`]) and the byte counting I/O wrapper
//! ([`CountingIo`]). It decides nothing about requests and never touches the socket itself:
//! the connection task drops the connection when the watchdog answers.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::telemetry::{CloseReason, Metrics};

/// Shared by a connection's task, its requests' bodies and its I/O wrapper.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
    /// Wakes the watchdog: a request ended or a limit asks to close.
    changed: Notify,
    /// Bytes read from the client so far (TLS records included).
    bytes_read: AtomicU64,
    listener: &'static str,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the last request ended, or the connection started.
    idle_since: Instant,
    /// `bytes_read` at `idle_since`: more since then means a request head is arriving.
    bytes_at_idle: u64,
    /// Whether any request reached the router.
    served: bool,
    /// Set by a body limit on an HTTP/1 connection: the connection closes now.
    closing: Option<CloseReason>,
}

impl Activity {
    pub(super) fn new(listener: &'static str, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                bytes_at_idle: 0,
                served: false,
                closing: None,
            }),
            changed: Notify::new(),
            bytes_read: AtomicU64::new(0),
            listener,
            metrics,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state holds plain numbers: one a panic interrupted is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request reached the router; it is in flight until the guard (held by its response
    /// body) drops.
    pub(super) fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.served = true;
        InFlight(self.clone())
    }

    fn request_finished(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.bytes_at_idle = self.bytes_read.load(Ordering::Relaxed);
        }
        drop(state);
        self.changed.notify_one();
    }

    /// A body limit was hit: counted, and on HTTP/1 the whole connection closes (it cannot
    /// be reused with a body half read); on HTTP/2 only that stream fails.
    pub(super) fn body_limit(&self, reason: CloseReason, multiplexed: bool) {
        // Counted here: the connection may end on its own (hyper closes one whose request
        // body was left unread) before the watchdog sees `closing`.
        self.count(reason);
        if multiplexed {
            return;
        }
        self.state().closing.get_or_insert(reason);
        self.changed.notify_one();
    }

    pub(super) fn count(&self, reason: CloseReason) {
        self.metrics.count_listener_close(self.listener, reason);
    }

    /// Resolves with the reason the connection must close (counted by the caller for the
    /// header and idle limits, already counted for body limits): no request head within
    /// `header_timeout` of the connection's start or of its previous request's end, or a body
    /// limit on HTTP/1. Never resolves while requests are in flight and within their limits.
    pub(super) async fn watch(self: Arc<Self>, header_timeout: Duration) -> CloseReason {
        loop {
            let deadline = {
                let state = self.state();
                if let Some(reason) = state.closing {
                    return reason;
                }
                (state.in_flight == 0).then(|| state.idle_since + header_timeout)
            };
            let Some(deadline) = deadline else {
                self.changed.notified().await;
                continue;
            };
            tokio::select! {
                () = self.changed.notified() => {}
                () = tokio::time::sleep_until(deadline.into()) => {
                    if let Some(reason) = self.timed_out(header_timeout) {
                        return reason;
                    }
                }
            }
        }
    }

    fn timed_out(&self, header_timeout: Duration) -> Option<CloseReason> {
        let state = self.state();
        if let Some(reason) = state.closing {
            return Some(reason);
        }
        if state.in_flight > 0 || state.idle_since.elapsed() < header_timeout {
            return None;
        }
        let head_arriving = self.bytes_read.load(Ordering::Relaxed) > state.bytes_at_idle;
        Some(if !state.served || head_arriving {
            CloseReason::HeaderTimeout
        } else {
            CloseReason::Idle
        })
    }
}

/// Held by a response body: the request is in flight until it drops (sent or abandoned).
#[derive(Debug)]
pub(super) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The client's socket (or TLS stream's socket), counting the bytes read.
#[derive(Debug)]
pub(super) struct CountingIo<Io> {
    inner: Io,
    activity: Arc<Activity>,
}

impl<Io> CountingIo<Io> {
    pub(super) fn new(inner: Io, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for CountingIo<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buffer);
        let read = buffer.filled().len().saturating_sub(before) as u64;
        if read > 0 {
            self.activity.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for CountingIo<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short: the tests wait for it to pass (real time; tokio's paused clock is not built).
    const TIMEOUT: Duration = Duration::from_millis(50);

    fn activity() -> Arc<Activity> {
        Activity::new("main", Metrics::new())
    }

    async fn read_some(activity: &Arc<Activity>, bytes: &[u8]) {
        use tokio::io::AsyncReadExt as _;
        let mut io = CountingIo::new(bytes, activity.clone());
        let mut buffer = Vec::new();
        io.read_to_end(&mut buffer).await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_closes_for_its_header() {
        let reason = activity().watch(TIMEOUT).await;
        assert_eq!(reason, CloseReason::HeaderTimeout);
    }

    #[tokio::test]
    async fn a_request_in_flight_holds_the_connection_and_idleness_counts_from_its_end() {
        let activity = activity();
        let in_flight = activity.request_started();
        let mut watchdog = tokio::spawn(activity.clone().watch(TIMEOUT));
        let early = tokio::time::timeout(TIMEOUT * 4, &mut watchdog).await;
        assert!(early.is_err(), "closed with a request in flight: {early:?}");
        drop(in_flight);
        // Nothing arrives after the answer: an idle keep-alive connection, not a slow head.
        assert_eq!(watchdog.await.unwrap(), CloseReason::Idle);
    }

    #[tokio::test]
    async fn bytes_after_an_answer_without_a_request_are_a_slow_head() {
        let activity = activity();
        drop(activity.request_started());
        read_some(&activity, b"POST /webhooks/github HTTP/1.1\r\n").await;
        assert_eq!(activity.watch(TIMEOUT).await, CloseReason::HeaderTimeout);
    }

    #[tokio::test]
    async fn a_body_limit_closes_http1_at_once_and_counts_only_the_stream_on_http2() {
        let activity = activity();
        let _in_flight = activity.request_started();
        activity.body_limit(CloseReason::MinBodyRate, true);
        let watchdog = tokio::spawn(activity.clone().watch(TIMEOUT));
        tokio::task::yield_now().await;
        assert!(!watchdog.is_finished(), "an HTTP/2 stream's limit closed the connection");
        let text = activity.metrics.render();
        let series =
            "switchyard_listener_closed_total{listener=\"main\",reason=\"min_body_rate\"} 1";
        assert!(text.contains(series), "{text}");
        activity.body_limit(CloseReason::BodyTimeout, false);
        assert_eq!(watchdog.await.unwrap(), CloseReason::BodyTimeout);
    }
}
