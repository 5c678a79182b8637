//! One delivery attempt: the signed request (or NATS message), the send, the decision, the
//! record.
//!
//! Owns the exact outbound headers of DESIGN §5 ([`outbound_headers`] is pure; NATS messages
//! carry the same plus `Nats-Msg-Id`) and the mapping from an HTTP or NATS outcome to the
//! delivery's next step. The attempt is recorded in the
//! store before the worker acts on its decision, so a crash repeats at most this attempt.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::http::{AttemptOutcome, AttemptResult, HttpSender, OutboundRequest};
use super::nats::{NatsPublisher, OutboundMessage, PublishOutcome};
use super::retry::{self, AttemptError, Decision};
use super::{EndpointRuntime, Target};
use crate::event::{EventId, now_millis};
use crate::signing;
use crate::store::{AttemptRecord, DeliveryId, DeliveryJob, NextStep, Payload, Store};
use crate::telemetry::{self, Metrics};
use crate::traces::{AttemptSpan, TRACEPARENT};
use crate::traffic::endpoint::Outcome;

pub(super) struct AttemptContext {
    pub store: Store,
    pub sender: HttpSender,
    /// Present when `[nats]` is configured.
    pub publisher: Option<NatsPublisher>,
    /// Announce each attempt's outcome on `switchyard.outcomes.<endpoint>` (`nats.outcomes`).
    pub announce_outcomes: bool,
    pub metrics: Arc<Metrics>,
    /// Hears every recorded attempt: operational events (`switchyard.endpoint.failing`…).
    pub notifier: Option<crate::notify::Notifier>,
}

/// What a send produced, in the terms the retry policy and the attempt record use.
struct Sent {
    input: AttemptError,
    status: Option<u16>,
    error: Option<String>,
    duration: Duration,
    response_excerpt: Bytes,
}

/// One attempt to make, holding one of its endpoint's in-flight slots.
pub(super) struct Attempt {
    pub job: DeliveryJob,
    pub endpoint: Arc<EndpointRuntime>,
    /// The endpoint's attempt series in `/metrics`.
    pub series: Arc<telemetry::AttemptSeries>,
    /// Given back the moment the exchange is over (answer read, timed out or failed), not
    /// when the attempt is: its record, which waits for a commit, then goes on without it, so
    /// the commit never idles the endpoint.
    pub slot: Option<super::worker::Slot>,
    /// Where the exchange's outcome goes the moment it is known, before the slot is given
    /// back: the endpoint's traffic controls see it before the next attempt can start.
    pub report: tokio::sync::mpsc::UnboundedSender<Exchanged>,
}

/// How an attempt's exchange ended, told to its worker before the attempt is recorded.
pub(super) struct Exchanged {
    pub delivery: DeliveryId,
    pub outcome: Outcome,
}

/// What a finished attempt tells its worker.
pub(super) struct Finished {
    pub job: DeliveryJob,
    pub next: NextStep,
    /// Whether anything was sent (its outcome was reported as [`Exchanged`]).
    pub sent: bool,
}

/// The headers of a delivery, in order: content type, Standard Webhooks headers, then the
/// endpoint's own headers. `user-agent` is added by the HTTP client. `attempted_at` is unix
/// milliseconds: its seconds are the signed timestamp.
pub fn outbound_headers(
    endpoint: &EndpointRuntime,
    event_id: EventId,
    attempted_at: u64,
    payload: &Payload,
) -> Vec<(String, String)> {
    let timestamp_seconds = (attempted_at / 1000) as i64;
    let message_id = event_id.to_string();
    let content_type = payload.content_type.clone().unwrap_or_else(|| "application/json".into());
    let mut headers = vec![
        ("content-type".to_owned(), content_type),
        ("webhook-id".to_owned(), message_id.clone()),
        ("webhook-timestamp".to_owned(), timestamp_seconds.to_string()),
    ];
    // A rotated-out key signs until its overlap ends, then no more.
    let mut keys = endpoint.signing_keys.iter().filter(|key| key.signs_at(attempted_at)).peekable();
    if keys.peek().is_some() {
        let keys = keys.map(|key| &key.key);
        let signature =
            signing::signature_header(keys, &message_id, timestamp_seconds, &payload.body);
        headers.push(("webhook-signature".to_owned(), signature));
    }
    headers.extend(endpoint.headers.iter().cloned());
    headers
}

impl Attempt {
    pub async fn run(self, context: Arc<AttemptContext>) -> Finished {
        let Self { job, endpoint, series, mut slot, report } = self;
        let payload = match job.payload.clone() {
            Some(payload) => Some(payload),
            None => {
                context.metrics.delivery_body_reads.inc();
                load_payload(&context.store, job.delivery_id).await
            }
        };
        let Some(payload) = payload else {
            // The row is gone (retention) or unreadable; it stays as stored and is retried
            // after a pause rather than spinning.
            let at = now_millis() + 60_000;
            return Finished { job, next: NextStep::RetryAt(at), sent: false };
        };
        let nats = matches!(endpoint.target, Target::Nats { .. });
        let span = AttemptSpan::start(&context.store, &job, nats).await;
        let trace = span.as_ref().map(AttemptSpan::traceparent);
        let attempted_at = now_millis();
        let sent = match &endpoint.target {
            Target::Http(url) => {
                let sender = &context.sender;
                send_http(sender, &endpoint, url, &job, &payload, attempted_at, trace).await
            }
            Target::Nats { jetstream } => {
                let publisher = context.publisher.as_ref();
                let jetstream = *jetstream;
                publish_nats(publisher, &endpoint, jetstream, &job, payload, attempted_at, trace)
                    .await
            }
        };
        // The exchange is over: its outcome goes to the traffic controls first, then the slot
        // is given back (the endpoint's next request need not wait for this record).
        let traffic_outcome = traffic_outcome(&sent.input);
        let _ = report.send(Exchanged { delivery: job.delivery_id, outcome: traffic_outcome });
        drop(slot.take());
        let next = decide(&endpoint, &job, &sent.input, attempted_at);
        let outcome = match next {
            NextStep::Delivered => telemetry::AttemptOutcome::Delivered,
            NextStep::RetryAt(_) => telemetry::AttemptOutcome::Retrying,
            NextStep::DeadLetter => telemetry::AttemptOutcome::DeadLetter,
            NextStep::DisableEndpoint => telemetry::AttemptOutcome::EndpointDisabled,
        };
        series.count(outcome, sent.duration.as_secs_f64());
        AttemptSpan::end(span, sent.status, sent.error.as_deref(), outcome);
        if let Some(error) = &sent.error {
            tracing::info!(endpoint = %endpoint.id, event = %job.event_id, attempt = job.attempts + 1, error, "delivery attempt failed");
        }
        let record = AttemptRecord {
            delivery_id: job.delivery_id,
            endpoint: endpoint.id.clone(),
            attempted_at,
            duration: sent.duration,
            status: sent.status,
            error: sent.error,
            response_excerpt: sent.response_excerpt,
            next,
        };
        let announcement =
            context.announce_outcomes.then(|| outcome_notice(&record, &job, outcome));
        if let Some(notifier) = &context.notifier {
            notifier.attempted(&job, &record);
        }
        if let Err(error) = context.store.record_attempt(record).await {
            // Not recorded: the delivery is still pending on disk and will be retried after a
            // restart (at least once); in memory we retry it soon.
            tracing::error!(%error, delivery = %job.delivery_id, "attempt not recorded");
            let next = NextStep::RetryAt(now_millis() + 1_000);
            return Finished { job, next, sent: true };
        }
        // Announced once recorded, so a notice never runs ahead of the store.
        if let (Some(publisher), Some(notice)) = (&context.publisher, announcement) {
            let subject = format!("switchyard.outcomes.{}", endpoint.id);
            publisher.announce(subject, notice).await;
        }
        Finished { job, next, sent: true }
    }
}

/// An exchange's end as traffic control sees it: 429 and 503 are overload (with their
/// `Retry-After`), timeouts and connection errors say the endpoint is unreachable.
fn traffic_outcome(input: &AttemptError) -> Outcome {
    match input {
        AttemptError::Status { code: 200..=299, .. } => Outcome::Delivered,
        AttemptError::Status { code: 429 | 503, retry_after } => {
            Outcome::Overloaded { retry_after: *retry_after }
        }
        AttemptError::Timeout | AttemptError::Connection => Outcome::Unreachable,
        AttemptError::Status { .. } | AttemptError::Dns | AttemptError::Permanent => {
            Outcome::Failed
        }
    }
}

async fn load_payload(store: &Store, delivery_id: DeliveryId) -> Option<Payload> {
    match store.payload(delivery_id).await {
        Ok(payload) => payload,
        Err(error) => {
            tracing::error!(%error, delivery = %delivery_id, "cannot read the delivery's body");
            None
        }
    }
}

/// What `switchyard.outcomes.<endpoint>` carries about one attempt.
fn outcome_notice(
    record: &AttemptRecord,
    job: &DeliveryJob,
    outcome: telemetry::AttemptOutcome,
) -> Bytes {
    let next_attempt_at = match record.next {
        NextStep::RetryAt(at) => Some(at),
        _ => None,
    };
    let notice = serde_json::json!({
        "event": job.event_id.to_string(),
        "endpoint": record.endpoint,
        "delivery": record.delivery_id.get(),
        "attempt": job.attempts + 1,
        "outcome": outcome.as_str(),
        "status": record.status,
        "error": record.error,
        "attempted_at": record.attempted_at,
        "duration_ms": record.duration.as_millis() as u64,
        "next_attempt_at": next_attempt_at,
    });
    Bytes::from(notice.to_string())
}

async fn send_http(
    sender: &HttpSender,
    endpoint: &EndpointRuntime,
    url: &url::Url,
    job: &DeliveryJob,
    payload: &Payload,
    attempted_at: u64,
    traceparent: Option<&str>,
) -> Sent {
    let mut headers = outbound_headers(endpoint, job.event_id, attempted_at, payload);
    headers.extend(traceparent.map(|value| (TRACEPARENT.to_owned(), value.to_owned())));
    let request = OutboundRequest {
        url: url.clone(),
        headers,
        body: payload.body.clone(),
        timeout: endpoint.timeout,
        tls: endpoint.tls.clone(),
    };
    let result = sender.send(request).await;
    let (input, status, error) = classify_http(endpoint, &result);
    Sent {
        input,
        status,
        error,
        duration: result.duration,
        response_excerpt: result.response_excerpt,
    }
}

async fn publish_nats(
    publisher: Option<&NatsPublisher>,
    endpoint: &EndpointRuntime,
    jetstream: bool,
    job: &DeliveryJob,
    payload: Payload,
    attempted_at: u64,
    traceparent: Option<&str>,
) -> Sent {
    let failed = |input, error: &str| Sent {
        input,
        status: None,
        error: Some(error.to_owned()),
        duration: Duration::ZERO,
        response_excerpt: Bytes::new(),
    };
    let Some(publisher) = publisher else {
        return failed(AttemptError::Permanent, "this endpoint needs a `[nats]` connection");
    };
    let Some(subject) = payload.subject.clone() else {
        return failed(AttemptError::Permanent, "the delivery has no NATS subject");
    };
    let mut headers = outbound_headers(endpoint, job.event_id, attempted_at, &payload);
    // The stream drops a repeat of a message id it has seen: retries are not duplicated.
    headers.push(("Nats-Msg-Id".to_owned(), job.event_id.to_string()));
    headers.extend(traceparent.map(|value| (TRACEPARENT.to_owned(), value.to_owned())));
    let message = OutboundMessage {
        subject,
        headers,
        body: payload.body,
        jetstream,
        timeout: endpoint.timeout,
    };
    let (outcome, duration) = publisher.publish(message).await;
    let (input, error) = match outcome {
        PublishOutcome::Published => (AttemptError::Status { code: 200, retry_after: None }, None),
        PublishOutcome::Timeout => (
            AttemptError::Timeout,
            Some(format!("no acknowledgement within {:?}", endpoint.timeout)),
        ),
        PublishOutcome::Failed(reason) => {
            (AttemptError::Connection, Some(format!("publish failed: {reason}")))
        }
    };
    Sent { input, status: None, error, duration, response_excerpt: Bytes::new() }
}

/// An HTTP outcome as the retry policy's input, the status to record and the error text.
fn classify_http(
    endpoint: &EndpointRuntime,
    result: &AttemptResult,
) -> (AttemptError, Option<u16>, Option<String>) {
    match &result.outcome {
        AttemptOutcome::Status { code, retry_after } => {
            let retry_after = retry_after
                .as_deref()
                .and_then(|value| retry::parse_retry_after(value, std::time::SystemTime::now()));
            let error = (!(200..300).contains(code)).then(|| format!("HTTP {code}"));
            (AttemptError::Status { code: *code, retry_after }, Some(*code), error)
        }
        AttemptOutcome::Timeout => {
            (AttemptError::Timeout, None, Some(format!("timed out after {:?}", endpoint.timeout)))
        }
        AttemptOutcome::Connect(reason) => {
            (AttemptError::Connection, None, Some(format!("connection failed: {reason}")))
        }
        AttemptOutcome::Dns(reason) => {
            (AttemptError::Dns, None, Some(format!("name did not resolve: {reason}")))
        }
        AttemptOutcome::Blocked(reason) => {
            (AttemptError::Permanent, None, Some(format!("blocked by the egress policy: {reason}")))
        }
    }
}

/// The delivery's next step.
fn decide(
    endpoint: &EndpointRuntime,
    job: &DeliveryJob,
    input: &AttemptError,
    attempted_at: u64,
) -> NextStep {
    let jitter = fastrand::f64() * 2.0 - 1.0;
    match retry::decide(&endpoint.schedule, job.attempts + 1, input, jitter) {
        Decision::Delivered => NextStep::Delivered,
        Decision::Disable => NextStep::DisableEndpoint,
        Decision::DeadLetter => NextStep::DeadLetter,
        Decision::RetryAfter(delay) => NextStep::RetryAt(attempted_at + millis(delay)),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::EndpointKey;
    use crate::signing::SigningKey;

    fn endpoint(keys: Vec<EndpointKey>) -> EndpointRuntime {
        EndpointRuntime {
            id: "hook".into(),
            target: Target::Http(url::Url::parse("http://127.0.0.1/").unwrap()),
            timeout: Duration::from_secs(1),
            max_in_flight: 1,
            schedule: retry::RetrySchedule::custom(Vec::new()),
            headers: vec![("x-tenant".into(), "acme".into())],
            signing_keys: keys,
            traffic: Default::default(),
            tls: None,
        }
    }

    fn signature_count(endpoint: &EndpointRuntime, attempted_at: u64) -> usize {
        let payload =
            Payload { body: Bytes::from_static(b"{}"), content_type: None, subject: None };
        let headers = outbound_headers(endpoint, EventId::generate(), attempted_at, &payload);
        headers
            .iter()
            .find(|(name, _)| name == "webhook-signature")
            .map_or(0, |(_, value)| value.split(' ').count())
    }

    #[test]
    fn a_rotated_out_key_signs_until_its_overlap_ends_to_the_millisecond() {
        let key = |text: &str| SigningKey::parse(text).unwrap();
        let ends = 1_700_000_000_500;
        let endpoint = endpoint(vec![
            EndpointKey { key: key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"), expires_at: None },
            EndpointKey {
                key: key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                expires_at: Some(ends),
            },
        ]);
        assert_eq!(signature_count(&endpoint, ends - 1), 2);
        // Same second as the last instant above: the millisecond decides, not the second.
        assert_eq!(signature_count(&endpoint, ends), 1);
        assert_eq!(signature_count(&endpoint, ends + 10_000), 1);
        let unsigned = self::endpoint(Vec::new());
        assert_eq!(signature_count(&unsigned, ends), 0);
    }
}
