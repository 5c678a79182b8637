//! Request and response bodies as the listener hands them over: the request body paced by
//! `body_timeout` and `min_body_rate` ([`PacedBody`]), the response body holding its request's
//! in-flight mark ([`TrackedBody`]).
//!
//! What `min_body_rate` measures: the body's average rate, bytes received over the time since
//! the handler first asked for the body (so `expect: 100-continue` and a slow handler start
//! count for nothing), checked only while the reader waits for more and only once
//! [`RATE_GRACE`] (or `body_timeout`, when shorter) has passed, so a small body behind a slow
//! first packet is not refused. `body_timeout` is the longest wait for the next bytes. A body
//! that stops entirely is usually caught by the rate first. The deadline is pure
//! ([`next_deadline`]); the wrapper only arms one timer for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::activity::{Activity, InFlight};
use crate::telemetry::CloseReason;

/// How long a body is read before its average rate is checked, at most.
pub const RATE_GRACE: Duration = Duration::from_secs(5);

/// When the reader, waiting for more of a body, gives up, and why.
pub fn next_deadline(
    started: Instant,
    last_data: Instant,
    received: u64,
    body_timeout: Duration,
    min_rate: u64,
) -> (Instant, CloseReason) {
    let stalled = (last_data + body_timeout, CloseReason::BodyTimeout);
    if min_rate == 0 {
        return stalled;
    }
    // The bytes received "pay" for `received / min_rate` seconds of reading.
    let paid_for = Duration::from_secs_f64(received as f64 / min_rate as f64);
    let too_slow = started + body_timeout.min(RATE_GRACE).max(paid_for);
    if too_slow < stalled.0 { (too_slow, CloseReason::MinBodyRate) } else { stalled }
}

/// The error a handler reading a paced body sees.
#[derive(Debug, thiserror::Error)]
#[error("the request body was too slow: `{}` was exceeded", .0.as_str())]
pub struct TooSlow(pub CloseReason);

/// A request body that fails once it stalls or trickles.
#[derive(Debug)]
pub(super) struct PacedBody {
    inner: Incoming,
    activity: Arc<Activity>,
    body_timeout: Duration,
    min_rate: u64,
    /// HTTP/2: a limit fails the stream only.
    multiplexed: bool,
    /// Set at the first read.
    started: Option<Instant>,
    last_data: Instant,
    received: u64,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
}

impl PacedBody {
    pub(super) fn new(
        inner: Incoming,
        activity: Arc<Activity>,
        body_timeout: Duration,
        min_rate: u64,
        multiplexed: bool,
    ) -> Self {
        Self {
            inner,
            activity,
            body_timeout,
            min_rate,
            multiplexed,
            started: None,
            last_data: Instant::now(),
            received: 0,
            timer: None,
            failed: false,
        }
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        let started = match this.started {
            Some(started) => started,
            None => {
                let now = Instant::now();
                this.last_data = now;
                *this.started.insert(now)
            }
        };
        match Pin::new(&mut this.inner).poll_frame(context) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !data.is_empty()
                {
                    this.received += data.len() as u64;
                    this.last_data = Instant::now();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        let (deadline, reason) =
            next_deadline(started, this.last_data, this.received, this.body_timeout, this.min_rate);
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                this.failed = true;
                this.activity.body_limit(reason, this.multiplexed);
                Poll::Ready(Some(Err(TooSlow(reason).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body; its request counts as in flight until it is sent or dropped.
#[derive(Debug)]
pub(super) struct TrackedBody {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub(super) fn new(inner: axum::body::Body, in_flight: InFlight) -> Self {
        Self { inner, _in_flight: in_flight }
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_trickle_is_caught_by_the_rate_after_the_grace() {
        let start = Instant::now();
        // 10 bytes a second for 3 s against 1 KiB/s: refused once the 5 s grace is over.
        let (deadline, reason) = next_deadline(start, start + 3 * SECOND, 30, 30 * SECOND, 1024);
        assert_eq!((deadline - start, reason), (5 * SECOND, CloseReason::MinBodyRate));
        // A shorter body timeout shortens the grace.
        let (deadline, _) = next_deadline(start, start, 0, 2 * SECOND, 1024);
        assert_eq!(deadline - start, 2 * SECOND);
    }

    #[test]
    fn bytes_received_fast_buy_time_until_the_stall_limit() {
        let start = Instant::now();
        // 100 KiB in the first second pay for 100 s at 1 KiB/s: only the stall limit applies.
        let (deadline, reason) =
            next_deadline(start, start + SECOND, 100 * 1024, 30 * SECOND, 1024);
        assert_eq!((deadline - start, reason), (31 * SECOND, CloseReason::BodyTimeout));
        // 10 KiB pay for 10 s: the rate deadline comes first.
        let (deadline, reason) = next_deadline(start, start + SECOND, 10 * 1024, 30 * SECOND, 1024);
        assert_eq!((deadline - start, reason), (10 * SECOND, CloseReason::MinBodyRate));
    }

    #[test]
    fn a_zero_rate_leaves_only_the_stall_limit() {
        let start = Instant::now();
        let (deadline, reason) = next_deadline(start, start + SECOND, 1, 30 * SECOND, 0);
        assert_eq!((deadline - start, reason), (31 * SECOND, CloseReason::BodyTimeout));
    }
}
