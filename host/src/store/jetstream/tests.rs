//! Tests of the log's wire format: every command comes back as it was sent, shared bodies
//! travel once, damaged entries are refused with their reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::command::{Entry, decode, encode};
use crate::event::{Event, EventId};
use crate::store::sqlite::Command;
use crate::store::{
    AttemptRecord, DeliveryId, NewDelivery, NewEvent, NextStep, Payload, ReplaySelection,
    ReplayedEvent, Retention, StoredEndpoint,
};

fn event(body: &'static [u8]) -> Event {
    Event {
        id: EventId::generate(),
        source: "app".into(),
        event_type: "a".into(),
        subject: Some("s".into()),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(body),
        received_at: 7,
        dedupe_key: Some("k".into()),
        metadata: vec![("tenant".into(), "acme".into())],
    }
}

#[test]
fn every_command_comes_back_as_it_was_sent() {
    let parent = event(b"{\"a\":1}");
    let child = event(b"\x00\xff");
    let delivery = NewDelivery {
        endpoint: "hook".into(),
        event: child.id,
        payload: Payload {
            body: Bytes::from_static(b"<x/>"),
            content_type: Some("text/xml".into()),
            subject: Some("a.b".into()),
        },
        dead_letter: Some("plugin failed".into()),
        order_key: Some("customer-7".into()),
    };
    let commands = vec![
        Command::Ingest(NewEvent {
            event: parent.clone(),
            dedupe_window: Some(std::time::Duration::from_secs(60)),
            derived: vec![child.clone()],
            deliveries: vec![delivery.clone()],
        }),
        Command::RecordAttempt(AttemptRecord {
            delivery_id: DeliveryId::new(9),
            endpoint: "hook".into(),
            attempted_at: 11,
            duration: std::time::Duration::from_micros(1_500),
            status: Some(503),
            error: Some("HTTP 503".into()),
            response_excerpt: Bytes::from_static(b"busy"),
            next: NextStep::RetryAt(99),
        }),
        Command::Replay(ReplaySelection::DeadLetters { endpoint: Some("hook".into()) }),
        Command::Replay(ReplaySelection::Events(vec![ReplayedEvent {
            event: parent.id,
            derived: vec![child],
            deliveries: vec![delivery],
        }])),
        Command::Replay(ReplaySelection::Delivery(DeliveryId::new(3))),
        Command::Prune(Retention { delivered_before: 5, dead_before: 4, batch: 100 }),
        Command::AppendAudit(crate::store::AuditEntry {
            at: 12,
            role: "admin".into(),
            credential: "server.admin_token".into(),
            remote: Some("127.0.0.1:5000".into()),
            action: "endpoint.rotate".into(),
            resource: "endpoint/ep_1".into(),
            outcome: "success".into(),
            status: 200,
        }),
        Command::PruneAudit { before: 13, batch: 50 },
        Command::PutEndpoint(StoredEndpoint {
            id: "ep_1".into(),
            kind: "endpoint".into(),
            spec: "{}".into(),
            created_at: 1,
            updated_at: 2,
        }),
        Command::DeleteEndpoint { id: "ep_1".into(), reason: "gone".into() },
        Command::SetEndpointEnabled {
            endpoint: "hook".into(),
            enabled: false,
            reason: "410 Gone".into(),
        },
    ];
    for command in commands {
        let entry = Entry { id: "c-1".into(), now: 42, command };
        let decoded = decode(&encode(&entry)).unwrap();
        assert_eq!((decoded.id.as_str(), decoded.now), ("c-1", 42));
        assert_eq!(format!("{:?}", decoded.command), format!("{:?}", entry.command));
    }
}

#[test]
fn a_body_shared_by_an_event_and_its_deliveries_travels_once() {
    let event = event(b"0123456789abcdef0123456789abcdef");
    let delivery = |endpoint: &str| NewDelivery {
        endpoint: endpoint.into(),
        event: event.id,
        payload: Payload { body: event.body.clone(), content_type: None, subject: None },
        dead_letter: None,
        order_key: None,
    };
    let new = NewEvent {
        event: event.clone(),
        dedupe_window: None,
        derived: Vec::new(),
        deliveries: vec![delivery("a"), delivery("b"), delivery("c")],
    };
    let entry = Entry { id: "c-2".into(), now: 1, command: Command::Ingest(new.clone()) };
    let bytes = encode(&entry);
    let encoded_body = STANDARD.encode(&event.body);
    assert_eq!(String::from_utf8_lossy(&bytes).matches(&encoded_body).count(), 1);
    let Command::Ingest(decoded) = decode(&bytes).unwrap().command else { panic!() };
    assert_eq!(decoded.deliveries, new.deliveries);
}

#[test]
fn a_damaged_entry_is_refused_with_its_reason() {
    let error = decode(b"{\"id\":\"x\",\"now\":1,\"command\":{\"op\":\"resend_delivery\"}}");
    assert!(error.unwrap_err().to_string().contains("missing field `delivery`"));
}
