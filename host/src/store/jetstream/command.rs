//! The log's wire format: one write command per message, as JSON.
//!
//! Owns how a [`Command`] and the time it was issued become bytes and come back; pure, no
//! I/O. Bodies travel as base64. Every node decodes the same bytes into the same command,
//! which is what keeps the projections identical.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventId};
use crate::store::sqlite::Command;
use crate::store::{
    AttemptRecord, AuditEntry, DeliveryId, NewDelivery, NewEvent, NextStep, Payload,
    ReplaySelection, ReplayedEvent, Retention, StoredEndpoint,
};

/// A log entry: a command, who issued it (so that its issuer can be answered), and when.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique per command: the issuer waits for the outcome of this id.
    pub id: String,
    /// Unix milliseconds: the time every node applies the command at.
    pub now: u64,
    pub command: Command,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the log entry is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the log entry names an invalid event id `{0}`")]
    EventId(String),
    #[error("a delivery of event `{0}` has no body, and its event is not in the entry")]
    MissingBody(String),
    #[error("the log entry has invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

pub fn encode(entry: &Entry) -> Vec<u8> {
    let wire = WireEntry { id: entry.id.clone(), now: entry.now, command: to_wire(&entry.command) };
    serde_json::to_vec(&wire).expect("a command always serializes")
}

pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let wire: WireEntry = serde_json::from_slice(bytes)?;
    Ok(Entry { id: wire.id, now: wire.now, command: from_wire(wire.command)? })
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    id: String,
    now: u64,
    command: Wire,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Wire {
    Ingest {
        event: WireEvent,
        dedupe_window_ms: Option<u64>,
        derived: Vec<WireEvent>,
        deliveries: Vec<WireDelivery>,
    },
    RecordAttempt {
        delivery: u64,
        endpoint: String,
        attempted_at: u64,
        duration_us: u64,
        status: Option<u16>,
        error: Option<String>,
        response: String,
        next: WireNext,
    },
    RedriveDeadLetters {
        endpoint: Option<String>,
    },
    ReplayEvents {
        events: Vec<WireReplayed>,
    },
    ResendDelivery {
        delivery: u64,
    },
    Prune {
        delivered_before: u64,
        dead_before: u64,
        batch: usize,
    },
    PutEndpoint {
        id: String,
        kind: String,
        spec: String,
        created_at: u64,
        updated_at: u64,
    },
    DeleteEndpoint {
        id: String,
        reason: String,
    },
    SetEndpointEnabled {
        endpoint: String,
        enabled: bool,
        reason: String,
    },
    AppendAudit {
        at: u64,
        role: String,
        credential: String,
        remote: Option<String>,
        action: String,
        resource: String,
        outcome: String,
        status: u16,
    },
    PruneAudit {
        before: u64,
        batch: usize,
    },
}

#[derive(Serialize, Deserialize)]
struct WireEvent {
    id: String,
    source: String,
    event_type: String,
    subject: Option<String>,
    headers: Vec<(String, String)>,
    body: String,
    received_at: u64,
    dedupe_key: Option<String>,
    metadata: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct WireDelivery {
    endpoint: String,
    event: String,
    /// Absent when it sends its event's own body (carried once, with the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    content_type: Option<String>,
    subject: Option<String>,
    dead_letter: Option<String>,
    /// Absent for unordered deliveries, and in entries written before ordering existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireReplayed {
    event: String,
    derived: Vec<WireEvent>,
    deliveries: Vec<WireDelivery>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireNext {
    Delivered,
    RetryAt(u64),
    DeadLetter,
    DisableEndpoint,
}

fn to_wire(command: &Command) -> Wire {
    match command {
        Command::Ingest(new) => Wire::Ingest {
            event: wire_event(&new.event),
            dedupe_window_ms: new.dedupe_window.map(|window| window.as_millis() as u64),
            derived: new.derived.iter().map(wire_event).collect(),
            deliveries: new
                .deliveries
                .iter()
                .map(|delivery| {
                    let events = std::iter::once(&new.event).chain(&new.derived);
                    wire_delivery(delivery, events)
                })
                .collect(),
        },
        Command::RecordAttempt(record) => Wire::RecordAttempt {
            delivery: record.delivery_id.get(),
            endpoint: record.endpoint.clone(),
            attempted_at: record.attempted_at,
            duration_us: record.duration.as_micros() as u64,
            status: record.status,
            error: record.error.clone(),
            response: STANDARD.encode(&record.response_excerpt),
            next: match record.next {
                NextStep::Delivered => WireNext::Delivered,
                NextStep::RetryAt(at) => WireNext::RetryAt(at),
                NextStep::DeadLetter => WireNext::DeadLetter,
                NextStep::DisableEndpoint => WireNext::DisableEndpoint,
            },
        },
        Command::Replay(ReplaySelection::DeadLetters { endpoint }) => {
            Wire::RedriveDeadLetters { endpoint: endpoint.clone() }
        }
        Command::Replay(ReplaySelection::Events(events)) => Wire::ReplayEvents {
            events: events
                .iter()
                .map(|replayed| WireReplayed {
                    event: replayed.event.to_string(),
                    derived: replayed.derived.iter().map(wire_event).collect(),
                    deliveries: replayed
                        .deliveries
                        .iter()
                        .map(|delivery| wire_delivery(delivery, replayed.derived.iter()))
                        .collect(),
                })
                .collect(),
        },
        Command::Replay(ReplaySelection::Delivery(id)) => {
            Wire::ResendDelivery { delivery: id.get() }
        }
        Command::Prune(retention) => Wire::Prune {
            delivered_before: retention.delivered_before,
            dead_before: retention.dead_before,
            batch: retention.batch,
        },
        Command::PutEndpoint(endpoint) => Wire::PutEndpoint {
            id: endpoint.id.clone(),
            kind: endpoint.kind.clone(),
            spec: endpoint.spec.clone(),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        },
        Command::DeleteEndpoint { id, reason } => {
            Wire::DeleteEndpoint { id: id.clone(), reason: reason.clone() }
        }
        Command::SetEndpointEnabled { endpoint, enabled, reason } => Wire::SetEndpointEnabled {
            endpoint: endpoint.clone(),
            enabled: *enabled,
            reason: reason.clone(),
        },
        Command::AppendAudit(entry) => Wire::AppendAudit {
            at: entry.at,
            role: entry.role.clone(),
            credential: entry.credential.clone(),
            remote: entry.remote.clone(),
            action: entry.action.clone(),
            resource: entry.resource.clone(),
            outcome: entry.outcome.clone(),
            status: entry.status,
        },
        Command::PruneAudit { before, batch } => {
            Wire::PruneAudit { before: *before, batch: *batch }
        }
    }
}

fn from_wire(wire: Wire) -> Result<Command, DecodeError> {
    Ok(match wire {
        Wire::Ingest { event, dedupe_window_ms, derived, deliveries } => {
            let event = event_of(event)?;
            let derived: Vec<Event> =
                derived.into_iter().map(event_of).collect::<Result<_, _>>()?;
            let deliveries = deliveries
                .into_iter()
                .map(|delivery| delivery_of(delivery, std::iter::once(&event).chain(&derived)))
                .collect::<Result<_, _>>()?;
            Command::Ingest(NewEvent {
                event,
                dedupe_window: dedupe_window_ms.map(std::time::Duration::from_millis),
                derived,
                deliveries,
            })
        }
        Wire::RecordAttempt {
            delivery,
            endpoint,
            attempted_at,
            duration_us,
            status,
            error,
            response,
            next,
        } => Command::RecordAttempt(AttemptRecord {
            delivery_id: DeliveryId::new(delivery),
            endpoint,
            attempted_at,
            duration: std::time::Duration::from_micros(duration_us),
            status,
            error,
            response_excerpt: Bytes::from(STANDARD.decode(response)?),
            next: match next {
                WireNext::Delivered => NextStep::Delivered,
                WireNext::RetryAt(at) => NextStep::RetryAt(at),
                WireNext::DeadLetter => NextStep::DeadLetter,
                WireNext::DisableEndpoint => NextStep::DisableEndpoint,
            },
        }),
        Wire::RedriveDeadLetters { endpoint } => {
            Command::Replay(ReplaySelection::DeadLetters { endpoint })
        }
        Wire::ReplayEvents { events } => Command::Replay(ReplaySelection::Events(
            events
                .into_iter()
                .map(|replayed| {
                    let derived: Vec<Event> = replayed
                        .derived
                        .into_iter()
                        .map(event_of)
                        .collect::<Result<_, DecodeError>>()?;
                    let deliveries = replayed
                        .deliveries
                        .into_iter()
                        .map(|delivery| delivery_of(delivery, derived.iter()))
                        .collect::<Result<_, DecodeError>>()?;
                    Ok(ReplayedEvent { event: event_id(&replayed.event)?, derived, deliveries })
                })
                .collect::<Result<_, DecodeError>>()?,
        )),
        Wire::ResendDelivery { delivery } => {
            Command::Replay(ReplaySelection::Delivery(DeliveryId::new(delivery)))
        }
        Wire::Prune { delivered_before, dead_before, batch } => {
            Command::Prune(Retention { delivered_before, dead_before, batch })
        }
        Wire::PutEndpoint { id, kind, spec, created_at, updated_at } => {
            Command::PutEndpoint(StoredEndpoint { id, kind, spec, created_at, updated_at })
        }
        Wire::DeleteEndpoint { id, reason } => Command::DeleteEndpoint { id, reason },
        Wire::SetEndpointEnabled { endpoint, enabled, reason } => {
            Command::SetEndpointEnabled { endpoint, enabled, reason }
        }
        Wire::AppendAudit { at, role, credential, remote, action, resource, outcome, status } => {
            Command::AppendAudit(AuditEntry {
                at,
                role,
                credential,
                remote,
                action,
                resource,
                outcome,
                status,
            })
        }
        Wire::PruneAudit { before, batch } => Command::PruneAudit { before, batch },
    })
}

fn wire_event(event: &Event) -> WireEvent {
    WireEvent {
        id: event.id.to_string(),
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        subject: event.subject.clone(),
        headers: event.headers.clone(),
        body: STANDARD.encode(&event.body),
        received_at: event.received_at,
        dedupe_key: event.dedupe_key.clone(),
        metadata: event.metadata.clone(),
    }
}

fn event_of(wire: WireEvent) -> Result<Event, DecodeError> {
    Ok(Event {
        id: event_id(&wire.id)?,
        source: wire.source,
        event_type: wire.event_type,
        subject: wire.subject,
        headers: wire.headers,
        body: Bytes::from(STANDARD.decode(wire.body)?),
        received_at: wire.received_at,
        dedupe_key: wire.dedupe_key,
        metadata: wire.metadata,
    })
}

/// `delivery` on the wire; its body is left out when it is that of its event, found among
/// `events` (carried in the same entry).
fn wire_delivery<'a>(
    delivery: &NewDelivery,
    mut events: impl Iterator<Item = &'a Event>,
) -> WireDelivery {
    let own_body = events
        .find(|event| event.id == delivery.event)
        .is_none_or(|event| event.body != delivery.payload.body);
    WireDelivery {
        endpoint: delivery.endpoint.clone(),
        event: delivery.event.to_string(),
        body: own_body.then(|| STANDARD.encode(&delivery.payload.body)),
        content_type: delivery.payload.content_type.clone(),
        subject: delivery.payload.subject.clone(),
        dead_letter: delivery.dead_letter.clone(),
        order_key: delivery.order_key.clone(),
    }
}

/// The delivery `wire` names; without a body of its own, it sends its event's, found among
/// `events`.
fn delivery_of<'a>(
    wire: WireDelivery,
    mut events: impl Iterator<Item = &'a Event>,
) -> Result<NewDelivery, DecodeError> {
    let event = event_id(&wire.event)?;
    let body = match wire.body {
        Some(body) => Bytes::from(STANDARD.decode(body)?),
        None => match events.find(|known| known.id == event) {
            Some(known) => known.body.clone(),
            None => return Err(DecodeError::MissingBody(wire.event)),
        },
    };
    Ok(NewDelivery {
        endpoint: wire.endpoint,
        event,
        payload: Payload { body, content_type: wire.content_type, subject: wire.subject },
        dead_letter: wire.dead_letter,
        order_key: wire.order_key,
    })
}

fn event_id(text: &str) -> Result<EventId, DecodeError> {
    text.parse().map_err(|_| DecodeError::EventId(text.to_owned()))
}
