//! `store migrate`'s copy between two SQLite stores: what is copied, in which state, and that
//! a second run copies nothing. The cluster target is covered end to end in
//! `tests/tests/cluster.rs`.

use std::time::Duration;

use bytes::Bytes;

use super::{MigrationReport, copy};
use crate::config::Durability;
use crate::event::{Event, EventId, now_millis};
use crate::store::sqlite::SqliteStore;
use crate::store::{
    Backend, DeliveryQuery, IngestReceipt, NewDelivery, NewEvent, Payload, StoredEndpoint,
};
use crate::telemetry::Metrics;

fn event(dedupe_key: Option<&str>) -> Event {
    Event {
        id: EventId::generate(),
        source: "app".into(),
        event_type: "order.created".into(),
        subject: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(br#"{"order":1}"#),
        received_at: now_millis(),
        dedupe_key: dedupe_key.map(str::to_owned),
        metadata: Vec::new(),
    }
}

fn new_event(endpoint: &str, dead_letter: Option<&str>) -> NewEvent {
    let event = event(None);
    let payload = Payload {
        body: Bytes::from_static(b"shaped"),
        content_type: Some("text/plain".into()),
        subject: None,
    };
    let delivery = NewDelivery {
        endpoint: endpoint.into(),
        event: event.id,
        payload,
        dead_letter: dead_letter.map(str::to_owned),
        order_key: None,
    };
    NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] }
}

async fn states(store: &SqliteStore) -> Vec<(String, String, Option<String>)> {
    let query = DeliveryQuery { limit: 100, ..Default::default() };
    let mut rows: Vec<_> = store
        .list_deliveries(query)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| (delivery.endpoint, format!("{:?}", delivery.state), delivery.last_error))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn copies_what_is_left_to_do_once() {
    let directories = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = SqliteStore::open(directories.0.path(), Durability::Os, Metrics::new()).unwrap();
    let target = SqliteStore::open(directories.1.path(), Durability::Os, Metrics::new()).unwrap();

    let endpoint = StoredEndpoint {
        id: "billing".into(),
        kind: "endpoint".into(),
        spec: r#"{"sealed":"opaque"}"#.into(),
        created_at: 5,
        updated_at: 6,
    };
    source.put_endpoint(endpoint.clone()).await.unwrap();
    source.set_endpoint_enabled("gone".into(), false, "410 Gone".into()).await.unwrap();
    let pending = new_event("billing", None);
    source.ingest(pending.clone()).await.unwrap();
    source.ingest(new_event("gone", None)).await.unwrap();
    source.ingest(new_event("billing", Some("500 after 8 attempts"))).await.unwrap();
    let claimed = NewEvent {
        event: event(Some("order-1")),
        dedupe_window: Some(Duration::from_secs(3600)),
        derived: Vec::new(),
        deliveries: Vec::new(),
    };
    source.ingest(claimed.clone()).await.unwrap();
    // An expired key is not copied (its event has nothing left to do either).
    let expired = NewEvent {
        event: event(Some("order-0")),
        dedupe_window: Some(Duration::from_millis(1)),
        derived: Vec::new(),
        deliveries: Vec::new(),
    };
    source.ingest(expired.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let report = copy(&source, &target).await.unwrap();
    assert_eq!(
        report,
        MigrationReport {
            endpoints: 1,
            disabled: 1,
            events: 4,
            pending: 1,
            parked: 1,
            dead: 1,
            dedupe_keys: 1,
            already: 0,
        }
    );
    assert_eq!(target.endpoint("billing".into()).await.unwrap(), Some(endpoint));
    assert!(target.disabled_endpoints().await.unwrap().contains_key("gone"));
    assert_eq!(states(&target).await, states(&source).await);
    let copied = target.event(pending.event.id).await.unwrap().unwrap();
    assert_eq!(copied.body, pending.event.body);
    let delivery = target.list_deliveries(DeliveryQuery { limit: 10, ..Default::default() });
    let shaped = delivery.await.unwrap().into_iter().find(|row| row.event_id == pending.event.id);
    let payload = target.payload(shaped.unwrap().id).await.unwrap().unwrap();
    assert_eq!(payload.body, Bytes::from_static(b"shaped"));
    assert_eq!(payload.content_type.as_deref(), Some("text/plain"));
    assert!(target.event(expired.event.id).await.unwrap().is_none());
    // The claimed key answers a retry as a duplicate in the target.
    let mut retry = claimed.clone();
    retry.event.id = EventId::generate();
    assert_eq!(target.ingest(retry).await.unwrap(), IngestReceipt::Duplicate(claimed.event.id));

    let again = copy(&source, &target).await.unwrap();
    assert_eq!(again, MigrationReport { already: 4, ..MigrationReport::default() });
    assert_eq!(states(&target).await, states(&source).await);
}

#[tokio::test]
async fn keeps_each_delivery_order_key_and_order() {
    let directories = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = SqliteStore::open(directories.0.path(), Durability::Os, Metrics::new()).unwrap();
    let target = SqliteStore::open(directories.1.path(), Durability::Os, Metrics::new()).unwrap();
    let keyed = |key: Option<&str>| {
        let mut new = new_event("billing", None);
        new.deliveries[0].order_key = key.map(str::to_owned);
        new
    };
    let sent = [keyed(Some("customer-7")), keyed(None), keyed(Some("customer-7"))];
    for new in &sent {
        source.ingest(new.clone()).await.unwrap();
    }
    // The worker's queue, as a running router holds it: it receives what the copy commits.
    let mut queue = target.due_queue("billing");

    let report = copy(&source, &target).await.unwrap();
    assert_eq!(report.pending, 3);
    let query = DeliveryQuery { limit: 10, ..Default::default() };
    let mut copied = target.list_deliveries(query).await.unwrap();
    copied.sort_by_key(|delivery| delivery.id);
    let mut keys = Vec::new();
    for delivery in &copied {
        keys.push((delivery.event_id, target.order_key(delivery.id).await.unwrap()));
    }
    let expected: Vec<_> =
        sent.iter().map(|new| (new.event.id, new.deliveries[0].order_key.clone())).collect();
    assert_eq!(keys, expected, "each copy keeps its key, in the source's order");
    // The target's due-queue holds the second `customer-7` delivery behind the first.
    let mut handed = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(Duration::from_secs(10), queue.next()).await.unwrap();
        handed.push(next.unwrap().event_id);
    }
    assert_eq!(handed, vec![sent[0].event.id, sent[1].event.id]);
    assert!(queue.try_next().is_none(), "the second `customer-7` delivery waits for the first");
}
