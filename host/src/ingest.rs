//! The accept path shared by every ingress: inbound bytes → event → durable.
//!
//! Owns the rules that turn what a source received into an [`Event`] (event type, dedupe
//! key) and the order of the stages before acknowledgement: build the event, verify it
//! (plugins), route it and run the route and endpoint plugins, then store it with its
//! deliveries in the same commit, then tell the live tail ([`crate::tail`]). It knows nothing of HTTP or NATS:
//! ingresses hand it an [`Inbound`] and map its answer to their protocol.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use crate::config::{DEFAULT_DEDUPE_WINDOW, EventTypeRule, Source};
use crate::event::{Event, EventId, EventType, InvalidEventType, header_value, now_millis};
use crate::pipeline::{Pipeline, StageError, Verified};
use crate::store::{IngestReceipt, NewEvent, Store, StoreError};
use crate::telemetry::{IngestOutcome, Metrics};
use crate::verdict::{DEDUPE_KEY_METADATA, Rejection};

/// What an ingress received, before any decision.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub subject: Option<String>,
    /// The type the message declares itself (a CloudEvent's), which wins over the source's
    /// rule.
    pub event_type: Option<String>,
    /// A dedupe key the protocol carries (`Nats-Msg-Id`, a CloudEvent id, an
    /// `idempotency-key`); the source's `dedupe` header, when set and present, wins.
    pub dedupe_key: Option<String>,
}

/// Why an inbound event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    EventType(#[from] EventTypeError),
    /// A verify plugin refused it; the sender gets this status and code.
    #[error("rejected with {}: {}", .0.status, .0.message)]
    Rejected(Rejection),
    /// A plugin asked for a retry, failed closed, or every plugin thread was busy.
    #[error(transparent)]
    Plugin(#[from] StageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why no event type could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTypeError {
    #[error("header `{0}` is missing or empty; this source takes the event type from it")]
    MissingHeader(String),
    #[error(
        "the body has no string at JSON pointer `{0}`; this source takes the event type from it"
    )]
    MissingJson(String),
    /// The type found breaks [`EventType`]'s rule.
    #[error(transparent)]
    Invalid(#[from] InvalidEventType),
}

/// Decides an event's type: the source's `event_type` rule, or else the body's top-level
/// `"type"` string when the body is a JSON object with one, or else the source id.
pub fn event_type(
    rule: Option<&EventTypeRule>,
    source_id: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<String, EventTypeError> {
    let event_type = match rule {
        Some(EventTypeRule::Header { name, prefix }) => match header_value(headers, name) {
            Some(value) if !value.trim().is_empty() => format!("{prefix}{}", value.trim()),
            _ => return Err(EventTypeError::MissingHeader(name.clone())),
        },
        Some(EventTypeRule::JsonPointer(pointer)) => {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|value| {
                    value.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned)
                })
                .filter(|value| !value.is_empty())
                .ok_or_else(|| EventTypeError::MissingJson(pointer.clone()))?
        }
        Some(EventTypeRule::Constant(value)) => value.clone(),
        None => top_level_type(body).unwrap_or_else(|| source_id.to_owned()),
    };
    checked_type(event_type)
}

fn checked_type(text: String) -> Result<String, EventTypeError> {
    Ok(EventType::new(text)?.into_string())
}

/// The top-level `"type"` string of a JSON object body, without building the whole document.
fn top_level_type(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct TypeField<'a> {
        #[serde(borrow, rename = "type")]
        event_type: Option<Cow<'a, str>>,
    }
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let field: TypeField<'_> = serde_json::from_slice(body).ok()?;
    field.event_type.filter(|value| !value.is_empty()).map(Cow::into_owned)
}

/// Runs the stages before acknowledgement and makes the event durable.
#[derive(Debug, Clone)]
pub struct Ingestor {
    store: Store,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
}

impl Ingestor {
    pub fn new(store: Store, pipeline: Pipeline, metrics: Arc<Metrics>) -> Self {
        Self { store, pipeline, metrics }
    }

    /// Accepts `inbound` for `source`: resolves once the event is committed (or known as a
    /// duplicate, or dropped by a verify plugin), which is the only moment an ingress may
    /// acknowledge it.
    pub async fn accept(
        &self,
        source: &Source,
        inbound: Inbound,
    ) -> Result<IngestReceipt, IngestError> {
        let trace = crate::traces::IngestTrace::begin(source, &inbound);
        let accepting = self.accept_inner(source, inbound);
        let result = crate::traces::IngestTrace::record(trace, accepting).await;
        let outcome = match &result {
            Ok(IngestReceipt::Stored(_)) => IngestOutcome::Accepted,
            Ok(IngestReceipt::Duplicate(_)) => IngestOutcome::Duplicate,
            Ok(IngestReceipt::Dropped(_)) => IngestOutcome::Dropped,
            Err(IngestError::EventType(_) | IngestError::Rejected(_)) => IngestOutcome::Rejected,
            Err(IngestError::Plugin(_) | IngestError::Store(_)) => IngestOutcome::Error,
        };
        self.metrics.count_ingest(&source.id, outcome);
        result
    }

    async fn accept_inner(
        &self,
        source: &Source,
        inbound: Inbound,
    ) -> Result<IngestReceipt, IngestError> {
        // Every way of finding the type ends in `EventType`'s rule, a declared one too.
        let event_type = match (inbound.event_type, &source.event_type, &inbound.subject) {
            (Some(declared), _, _) => checked_type(declared),
            // Without a rule, a message's subject names what it is (NATS sources).
            (None, None, Some(subject)) => checked_type(subject.clone()),
            (None, rule, _) => {
                event_type(rule.as_ref(), &source.id, &inbound.headers, &inbound.body)
            }
        };
        let dedupe_key = source
            .dedupe
            .as_ref()
            .and_then(|rule| {
                header_value(&inbound.headers, &rule.header)
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned)
            })
            .or(inbound.dedupe_key);
        // Until verify plugins have run, a type that cannot be found stands as the source
        // id: the sender learns about a bad signature before it learns about a missing type.
        let placeholder_type = event_type.clone().unwrap_or_else(|_| source.id.clone());
        let mut event = Event {
            id: EventId::generate(),
            source: source.id.clone(),
            event_type: placeholder_type.clone(),
            subject: inbound.subject,
            headers: inbound.headers,
            body: inbound.body,
            received_at: now_millis(),
            dedupe_key,
            metadata: Vec::new(),
        };
        let mut dead_letter = None;
        if !source.verify.is_empty() {
            let id = event.id;
            match self.pipeline.verify(&source.verify, event).await? {
                Verified::Accept(verified) => event = verified,
                Verified::Drop => return Ok(IngestReceipt::Dropped(id)),
                Verified::Reject(rejection) => return Err(IngestError::Rejected(rejection)),
                Verified::DeadLetter(failed, reason) => {
                    event = failed;
                    dead_letter = Some(reason);
                }
            }
        }
        if let Err(error) = event_type
            && event.event_type == placeholder_type
        {
            return Err(error.into());
        }
        if let Some((_, key)) = event.metadata.iter().find(|(key, _)| key == DEDUPE_KEY_METADATA) {
            event.dedupe_key = Some(key.clone()).filter(|key| !key.is_empty());
        }
        let dedupe_window = event
            .dedupe_key
            .as_ref()
            .map(|_| source.dedupe.as_ref().map_or(DEFAULT_DEDUPE_WINDOW, |rule| rule.window));
        let fan_out = match &dead_letter {
            Some(reason) => self.pipeline.dead_letters(&event, reason),
            None => self.pipeline.fan_out(&event, None).await?,
        };
        let unrouted = fan_out.routes_matched == 0;
        let notice = crate::tail::Accepted {
            id: event.id,
            source: event.source.clone(),
            event_type: event.event_type.clone(),
            received_at: event.received_at,
            body_size: event.body.len() as u64,
            deliveries: fan_out.deliveries.len(),
        };
        let new = NewEvent {
            event,
            dedupe_window,
            derived: fan_out.derived,
            deliveries: fan_out.deliveries,
        };
        let receipt = crate::traces::commit(new, |new| self.store.ingest(new)).await?;
        if matches!(receipt, IngestReceipt::Stored(_)) {
            if unrouted {
                self.metrics.events_unrouted.inc();
            }
            self.store.tail().publish(notice);
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn event_type_rules() {
        let github =
            EventTypeRule::Header { name: "x-github-event".into(), prefix: "github.".into() };
        let pointer = EventTypeRule::JsonPointer("/data/kind".into());
        let constant = EventTypeRule::Constant("shop.order".into());
        let push = headers(&[("x-github-event", "push")]);
        let none = headers(&[]);
        type Case<'a> = (
            Option<&'a EventTypeRule>,
            &'a [(String, String)],
            &'a [u8],
            Result<&'a str, EventTypeError>,
        );
        let table: Vec<Case<'_>> = vec![
            (Some(&github), &push, b"{}", Ok("github.push")),
            (
                Some(&github),
                &none,
                b"{}",
                Err(EventTypeError::MissingHeader("x-github-event".into())),
            ),
            (Some(&pointer), &none, br#"{"data":{"kind":"a.b"}}"#, Ok("a.b")),
            (
                Some(&pointer),
                &none,
                br#"{"data":{"kind":7}}"#,
                Err(EventTypeError::MissingJson("/data/kind".into())),
            ),
            (
                Some(&pointer),
                &none,
                b"not json",
                Err(EventTypeError::MissingJson("/data/kind".into())),
            ),
            (Some(&constant), &none, b"", Ok("shop.order")),
            (
                None,
                &none,
                br#" {"type":"invoice.paid","data":{"type":"inner"}}"#,
                Ok("invoice.paid"),
            ),
            (None, &none, br#"{"type":""}"#, Ok("src")),
            (None, &none, br#"{"type":5}"#, Ok("src")),
            (None, &none, br#"["type"]"#, Ok("src")),
            (None, &none, b"", Ok("src")),
            (None, &none, b"\xff\xfe", Ok("src")),
        ];
        for (rule, headers, body, expected) in table {
            let actual = event_type(rule, "src", headers, body);
            assert_eq!(actual.as_deref().map_err(Clone::clone), expected, "{rule:?} {body:?}");
        }
        let long = format!(r#"{{"type":"{}"}}"#, "a".repeat(300));
        assert_eq!(
            event_type(None, "src", &none, long.as_bytes()),
            Err(EventTypeError::Invalid(InvalidEventType::TooLong))
        );
    }
}
