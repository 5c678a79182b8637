//! Tests of the store through its public handle: a real SQLite database in a temporary
//! directory, its writer thread, and the scheduler channel it hands jobs to.

use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use tokio::sync::mpsc;

use super::*;
use crate::event::now_millis;

/// A store in its own directory, and what it hands the scheduler.
struct Harness {
    _directory: TempDir,
    store: Store,
    scheduled: mpsc::UnboundedReceiver<DeliveryJob>,
}

impl Harness {
    fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let (scheduler, scheduled) = mpsc::unbounded_channel();
        let store =
            Store::open(directory.path(), Durability::Os, Metrics::new(), scheduler).unwrap();
        Self { _directory: directory, store, scheduled }
    }

    /// Stops the writer and opens the same directory again, as a restart does.
    async fn restart(self) -> Self {
        let Self { _directory: directory, store, .. } = self;
        tokio::task::spawn_blocking(move || store.shutdown()).await.unwrap();
        let (scheduler, scheduled) = mpsc::unbounded_channel();
        let store =
            Store::open(directory.path(), Durability::Os, Metrics::new(), scheduler).unwrap();
        Self { _directory: directory, store, scheduled }
    }

    fn reader(&self) -> Reader {
        self.store.reader().unwrap()
    }

    /// Stores an event from `source` of `event_type` received at `received_at`, with one
    /// delivery to each of `endpoints`; answers its id and its deliveries' ids.
    async fn ingest(
        &self,
        source: &str,
        event_type: &str,
        received_at: u64,
        endpoints: &[&str],
    ) -> (EventId, Vec<i64>) {
        let event = event(source, event_type, received_at, b"{}");
        let id = event.id;
        let deliveries = endpoints.iter().map(|endpoint| delivery(endpoint, &event)).collect();
        let new = NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries };
        assert_eq!(self.store.ingest(new).await.unwrap(), IngestReceipt::Stored(id));
        let mut deliveries: Vec<i64> =
            self.reader().deliveries_of_event(id).unwrap().iter().map(|row| row.id).collect();
        deliveries.sort_unstable();
        (id, deliveries)
    }

    /// Records an attempt on `delivery` (to `endpoint`) that decided `next`.
    async fn attempt(&self, delivery: i64, endpoint: &str, next: NextStep) {
        let record = AttemptRecord {
            delivery_id: delivery,
            endpoint: endpoint.into(),
            attempted_at: now_millis(),
            duration: Duration::from_millis(3),
            status: Some(500),
            error: Some("HTTP 500".into()),
            response_excerpt: Bytes::new(),
            next,
        };
        self.store.record_attempt(record).await.unwrap();
    }

    /// Every job handed to the scheduler so far, as (delivery id, attempts, has a payload).
    fn drain_scheduled(&mut self) -> Vec<(i64, u32, bool)> {
        std::iter::from_fn(|| self.scheduled.try_recv().ok())
            .map(|job| (job.delivery_id, job.attempts, job.payload.is_some()))
            .collect()
    }

    fn delivery(&self, id: i64) -> DeliverySummary {
        self.reader().delivery(id).unwrap().expect("the delivery exists")
    }

    /// The ids of `endpoint`'s deliveries in `state`, oldest first.
    fn in_state(&self, state: DeliveryState, endpoint: &str) -> Vec<i64> {
        let rows = self.reader().deliveries_in_state(state, Some(endpoint)).unwrap();
        rows.iter().map(|row| row.id).collect()
    }
}

fn event(source: &str, event_type: &str, received_at: u64, body: &'static [u8]) -> Event {
    Event {
        id: EventId::generate(),
        source: source.into(),
        event_type: event_type.into(),
        subject: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(body),
        received_at,
        dedupe_key: None,
        metadata: Vec::new(),
    }
}

fn delivery(endpoint: &str, event: &Event) -> NewDelivery {
    let payload = Payload { body: event.body.clone(), content_type: None, subject: None };
    NewDelivery { endpoint: endpoint.into(), event: event.id, payload, dead_letter: None }
}

fn stored_endpoint(id: &str, spec: &str, created_at: u64) -> StoredEndpoint {
    StoredEndpoint {
        id: id.into(),
        kind: "endpoint".into(),
        spec: spec.into(),
        created_at,
        updated_at: created_at,
    }
}

#[tokio::test]
async fn endpoints_are_put_replaced_listed_oldest_first_and_deleted() {
    let harness = Harness::new();
    let store = &harness.store;
    store
        .put_endpoint(stored_endpoint("zeta", r#"{"url":"https://a.example"}"#, 10))
        .await
        .unwrap();
    let mut beta = stored_endpoint("beta", r#"{"url":"https://b.example"}"#, 20);
    beta.kind = "subscription".into();
    store.put_endpoint(beta.clone()).await.unwrap();
    let ids = |reader: &Reader| -> Vec<String> {
        reader.endpoints().unwrap().into_iter().map(|endpoint| endpoint.id).collect()
    };
    assert_eq!(ids(&harness.reader()), ["zeta", "beta"]);
    assert_eq!(harness.reader().endpoint("beta").unwrap(), Some(beta));

    let replaced = StoredEndpoint {
        spec: r#"{"url":"https://c.example"}"#.into(),
        updated_at: 30,
        ..stored_endpoint("zeta", "", 10)
    };
    store.put_endpoint(replaced.clone()).await.unwrap();
    assert_eq!(harness.reader().endpoint("zeta").unwrap(), Some(replaced));
    assert_eq!(ids(&harness.reader()), ["zeta", "beta"]);

    assert_eq!(store.delete_endpoint("zeta".into(), "deleted".into()).await.unwrap(), 0);
    assert_eq!(harness.reader().endpoint("zeta").unwrap(), None);
    assert_eq!(ids(&harness.reader()), ["beta"]);
    // A missing endpoint is not an error.
    assert_eq!(store.delete_endpoint("zeta".into(), "deleted".into()).await.unwrap(), 0);
    assert_eq!(harness.reader().endpoint("missing").unwrap(), None);
}

#[tokio::test]
async fn deleting_an_endpoint_dead_letters_its_pending_and_parked_deliveries() {
    let harness = Harness::new();
    let store = &harness.store;
    let (_, open) = harness.ingest("app", "a", 1, &["open", "other"]).await;
    let (_, more) = harness.ingest("app", "a", 2, &["open"]).await;
    let (_, delivered) = harness.ingest("app", "a", 3, &["open"]).await;
    harness.attempt(delivered[0], "open", NextStep::Delivered).await;
    let (_, parked) = harness.ingest("app", "a", 4, &["closed"]).await;
    let (_, dead) = harness.ingest("app", "a", 5, &["closed"]).await;
    harness.attempt(dead[0], "closed", NextStep::DeadLetter).await;
    assert_eq!(store.set_endpoint_enabled("closed".into(), false, "x".into()).await.unwrap(), 1);

    assert_eq!(store.delete_endpoint("open".into(), "endpoint deleted".into()).await.unwrap(), 2);
    assert_eq!(store.delete_endpoint("closed".into(), "endpoint deleted".into()).await.unwrap(), 1);
    for id in [open[0], more[0], parked[0]] {
        let delivery = harness.delivery(id);
        assert_eq!(delivery.state, DeliveryState::Dead, "{delivery:?}");
        assert_eq!(delivery.last_error.as_deref(), Some("endpoint deleted"));
    }
    assert_eq!(harness.delivery(open[1]).state, DeliveryState::Pending, "another endpoint's");
    assert_eq!(harness.delivery(delivered[0]).state, DeliveryState::Delivered);
    assert_eq!(harness.delivery(dead[0]).last_error.as_deref(), Some("HTTP 500"));
    assert!(harness.reader().disabled_endpoints().unwrap().is_empty());

    // An attempt in flight when its endpoint went does not bring its dead letter back.
    harness.attempt(open[0], "open", NextStep::RetryAt(now_millis() + 5_000)).await;
    assert_eq!(harness.delivery(open[0]).state, DeliveryState::Dead);
    assert_eq!(harness.reader().attempts(open[0]).unwrap().len(), 1, "the attempt is kept");
    harness.attempt(more[0], "open", NextStep::Delivered).await;
    assert_eq!(harness.delivery(more[0]).state, DeliveryState::Delivered);

    // Routed to it after all (an event routed just before the delete): created dead. Its
    // dead letters are never sent again, by redrive or by retry; and a restart keeps all that.
    let mut harness = harness;
    let (_, late) = harness.ingest("app", "a", 6, &["closed"]).await;
    assert_eq!(harness.delivery(late[0]).state, DeliveryState::Dead);
    assert_eq!(harness.delivery(late[0]).last_error.as_deref(), Some("its endpoint was deleted"));
    harness.drain_scheduled();
    let redrive = ReplaySelection::DeadLetters { endpoint: None };
    assert_eq!(harness.store.replay(redrive.clone()).await.unwrap(), 0, "both endpoints are gone");
    assert_eq!(harness.delivery(dead[0]).state, DeliveryState::Dead);
    assert_eq!(harness.store.replay(ReplaySelection::Delivery(late[0])).await.unwrap(), 0);
    let harness = harness.restart().await;
    let (_, after_restart) = harness.ingest("app", "a", 7, &["open"]).await;
    assert_eq!(harness.delivery(after_restart[0]).state, DeliveryState::Dead);
    assert_eq!(harness.store.replay(redrive).await.unwrap(), 0);
    assert!(harness.reader().endpoints().unwrap().is_empty(), "tombstones are not listed");
}

#[tokio::test]
async fn disabling_parks_pending_deliveries_and_new_ones_are_created_parked() {
    let mut harness = Harness::new();
    let (_, first) = harness.ingest("app", "a", 1, &["hook", "other"]).await;
    let (_, second) = harness.ingest("app", "a", 2, &["hook"]).await;
    harness.drain_scheduled();

    let parked =
        harness.store.set_endpoint_enabled("hook".into(), false, "paused by ops".into()).await;
    assert_eq!(parked.unwrap(), 2);
    assert_eq!(harness.in_state(DeliveryState::Parked, "hook"), [first[0], second[0]]);
    assert_eq!(harness.delivery(first[1]).state, DeliveryState::Pending);
    let disabled = harness.reader().disabled_endpoints().unwrap();
    assert_eq!(disabled.get("hook").map(|(_, reason)| reason.as_str()), Some("paused by ops"));

    // New deliveries to it are parked, not scheduled; others go on.
    let (_, third) = harness.ingest("app", "a", 3, &["hook", "other"]).await;
    assert_eq!(harness.delivery(third[0]).state, DeliveryState::Parked);
    assert_eq!(harness.drain_scheduled(), [(third[1], 0, true)]);
    // An attempt that was in flight parks too.
    harness.attempt(first[0], "hook", NextStep::RetryAt(now_millis() + 5_000)).await;
    assert_eq!(harness.delivery(first[0]).state, DeliveryState::Parked);

    // Disabled stays disabled across a restart.
    let mut harness = harness.restart().await;
    let (_, fourth) = harness.ingest("app", "a", 4, &["hook"]).await;
    assert_eq!(harness.delivery(fourth[0]).state, DeliveryState::Parked);
    assert!(harness.drain_scheduled().is_empty());
}

#[tokio::test]
async fn enabling_resumes_parked_deliveries_and_schedules_them() {
    let mut harness = Harness::new();
    let (_, first) = harness.ingest("app", "a", 1, &["hook"]).await;
    let (_, second) = harness.ingest("app", "a", 2, &["hook"]).await;
    // A 410 Gone disables it: the delivery that got it, and the other, are parked.
    harness.attempt(first[0], "hook", NextStep::DisableEndpoint).await;
    let (_, third) = harness.ingest("app", "a", 3, &["hook"]).await;
    harness.drain_scheduled();
    assert_eq!(harness.in_state(DeliveryState::Parked, "hook"), [first[0], second[0], third[0]]);

    let before = now_millis();
    let resumed = harness.store.set_endpoint_enabled("hook".into(), true, String::new()).await;
    assert_eq!(resumed.unwrap(), 3);
    // Scheduled once committed, without a payload, their attempts kept.
    assert_eq!(
        harness.drain_scheduled(),
        [(first[0], 1, false), (second[0], 0, false), (third[0], 0, false)]
    );
    for id in [first[0], second[0], third[0]] {
        let delivery = harness.delivery(id);
        assert_eq!(delivery.state, DeliveryState::Pending);
        assert!(delivery.next_attempt_at >= before, "due now: {delivery:?}");
    }
    assert!(harness.reader().disabled_endpoints().unwrap().is_empty());
    // Enabling an enabled endpoint resumes nothing.
    let resumed = harness.store.set_endpoint_enabled("hook".into(), true, String::new()).await;
    assert_eq!(resumed.unwrap(), 0);

    // New deliveries are pending and scheduled again, also after a restart.
    let (_, fourth) = harness.ingest("app", "a", 4, &["hook"]).await;
    assert_eq!(harness.drain_scheduled(), [(fourth[0], 0, true)]);
    let mut harness = harness.restart().await;
    let (_, fifth) = harness.ingest("app", "a", 5, &["hook"]).await;
    assert_eq!(harness.drain_scheduled(), [(fifth[0], 0, true)]);
}

#[tokio::test]
async fn one_dead_or_delivered_delivery_can_be_sent_again() {
    let mut harness = Harness::new();
    let (_, dead) = harness.ingest("app", "a", 1, &["hook"]).await;
    harness.attempt(dead[0], "hook", NextStep::DeadLetter).await;
    let (_, delivered) = harness.ingest("app", "a", 2, &["hook"]).await;
    harness.attempt(delivered[0], "hook", NextStep::Delivered).await;
    let (_, pending) = harness.ingest("app", "a", 3, &["hook"]).await;
    harness.drain_scheduled();

    let replay = |id| harness.store.replay(ReplaySelection::Delivery(id));
    assert_eq!(replay(dead[0]).await.unwrap(), 1);
    assert_eq!(replay(delivered[0]).await.unwrap(), 1);
    assert_eq!(replay(pending[0]).await.unwrap(), 0);
    assert_eq!(replay(i64::MAX).await.unwrap(), 0);
    assert_eq!(harness.drain_scheduled(), [(dead[0], 0, false), (delivered[0], 0, false)]);
    for id in [dead[0], delivered[0]] {
        let delivery = harness.delivery(id);
        assert_eq!((delivery.state, delivery.attempts), (DeliveryState::Pending, 0));
        assert_eq!(delivery.last_error, None);
        assert_eq!(harness.reader().attempts(id).unwrap().len(), 1, "its history is kept");
    }
    // Once pending it is not sent twice.
    assert_eq!(harness.store.replay(ReplaySelection::Delivery(dead[0])).await.unwrap(), 0);

    // To a disabled endpoint it is parked, and sent once the endpoint is enabled.
    harness.attempt(dead[0], "hook", NextStep::DeadLetter).await;
    harness.store.set_endpoint_enabled("hook".into(), false, "paused".into()).await.unwrap();
    assert_eq!(harness.store.replay(ReplaySelection::Delivery(dead[0])).await.unwrap(), 1);
    assert_eq!(harness.delivery(dead[0]).state, DeliveryState::Parked);
    assert_eq!(harness.store.replay(ReplaySelection::Delivery(dead[0])).await.unwrap(), 0);
    assert!(harness.drain_scheduled().is_empty());
    harness.store.set_endpoint_enabled("hook".into(), true, String::new()).await.unwrap();
    let resumed: Vec<i64> = harness.drain_scheduled().iter().map(|job| job.0).collect();
    assert_eq!(resumed, [dead[0], delivered[0], pending[0]]);
}

#[tokio::test]
async fn events_are_listed_newest_first_with_filters() {
    let harness = Harness::new();
    let (first, _) = harness.ingest("github", "push", 100, &[]).await;
    let (second, _) = harness.ingest("stripe", "invoice.paid", 200, &[]).await;
    let (third, _) = harness.ingest("github", "pull_request", 300, &[]).await;
    let mut parent = event("github", "push", 400, b"[1,2]");
    parent.subject = Some("repo".into());
    parent.dedupe_key = Some("delivery-1".into());
    let child = event("github", "push.item", 400, b"1");
    let new = NewEvent {
        event: parent.clone(),
        dedupe_window: Some(Duration::from_secs(60)),
        derived: vec![child.clone()],
        deliveries: Vec::new(),
    };
    harness.store.ingest(new).await.unwrap();

    let list = |query: EventQuery| -> Vec<EventId> {
        let query = EventQuery { limit: 10, ..query };
        harness.reader().list_events(&query).unwrap().into_iter().map(|event| event.id).collect()
    };
    assert_eq!(list(EventQuery::default()), [child.id, parent.id, third, second, first]);
    let source = |source: &str| Some(source.to_owned());
    assert_eq!(
        list(EventQuery { source: source("github"), ..Default::default() }),
        [child.id, parent.id, third, first]
    );
    assert_eq!(
        list(EventQuery { event_type: Some("push".into()), ..Default::default() }),
        [parent.id, first],
        "the type matches exactly"
    );
    assert_eq!(
        list(EventQuery { since: Some(200), until: Some(400), ..Default::default() }),
        [third, second]
    );
    assert_eq!(
        list(EventQuery { source: source("github"), until: Some(300), ..Default::default() }),
        [first]
    );
    assert!(list(EventQuery { source: source("nobody"), ..Default::default() }).is_empty());
    let limited = harness.reader().list_events(&EventQuery { limit: 2, ..Default::default() });
    assert_eq!(limited.unwrap().len(), 2);

    let summaries = harness.reader().list_events(&EventQuery { limit: 2, ..Default::default() });
    let summaries = summaries.unwrap();
    assert_eq!(
        summaries[1],
        EventSummary {
            seq: summaries[1].seq,
            id: parent.id,
            source: "github".into(),
            event_type: "push".into(),
            subject: Some("repo".into()),
            received_at: 400,
            dedupe_key: Some("delivery-1".into()),
            parent: None,
            body_size: 5,
        }
    );
    assert_eq!((summaries[0].parent, summaries[0].body_size), (Some(parent.id), 1));
    assert!(summaries[0].seq > summaries[1].seq);
}

#[tokio::test]
async fn event_pages_neither_overlap_nor_skip_while_events_arrive() {
    let harness = Harness::new();
    let mut stored = Vec::new();
    for received_at in 0..7 {
        stored.push(harness.ingest("app", "a", received_at, &[]).await.0);
    }
    stored.reverse();
    let mut listed = Vec::new();
    let mut before_seq = None;
    // Bounded, so that a cursor that does not move fails instead of hanging.
    for _ in 0..10 {
        let query = EventQuery { before_seq, limit: 3, ..Default::default() };
        let page = harness.reader().list_events(&query).unwrap();
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        listed.extend(page.iter().map(|event| event.id));
        // Arrivals between pages are newer than the cursor: they never shift a page.
        harness.ingest("app", "a", 100, &[]).await;
    }
    assert_eq!(listed, stored);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_filters_and_pages() {
    let harness = Harness::new();
    let (first, first_deliveries) = harness.ingest("app", "a", 100, &["hook", "other"]).await;
    let (second, second_deliveries) = harness.ingest("app", "a", 200, &["hook"]).await;
    let (_, third_deliveries) = harness.ingest("app", "a", 300, &["hook", "other"]).await;
    harness.attempt(second_deliveries[0], "hook", NextStep::DeadLetter).await;
    let [hook_1, other_1] = first_deliveries[..] else { panic!("two deliveries") };
    let [hook_2] = second_deliveries[..] else { panic!("one delivery") };
    let [hook_3, other_3] = third_deliveries[..] else { panic!("two deliveries") };

    let list = |query: DeliveryQuery| -> Vec<i64> {
        let query = DeliveryQuery { limit: 10, ..query };
        let deliveries = harness.reader().list_deliveries(&query).unwrap();
        deliveries.into_iter().map(|delivery| delivery.id).collect()
    };
    assert_eq!(list(DeliveryQuery::default()), [other_3, hook_3, hook_2, other_1, hook_1]);
    assert_eq!(
        list(DeliveryQuery { endpoint: Some("other".into()), ..Default::default() }),
        [other_3, other_1]
    );
    assert_eq!(
        list(DeliveryQuery { state: Some(DeliveryState::Dead), ..Default::default() }),
        [hook_2]
    );
    assert_eq!(list(DeliveryQuery { event: Some(first), ..Default::default() }), [other_1, hook_1]);
    assert_eq!(
        list(DeliveryQuery {
            event: Some(first),
            endpoint: Some("hook".into()),
            ..Default::default()
        }),
        [hook_1]
    );
    assert!(
        list(DeliveryQuery { event: Some(EventId::generate()), ..Default::default() }).is_empty()
    );
    assert_eq!(
        list(DeliveryQuery { since: Some(200), until: Some(300), ..Default::default() }),
        [hook_2]
    );
    assert_eq!(
        list(DeliveryQuery { before_id: Some(hook_3), ..Default::default() }),
        [hook_2, other_1, hook_1]
    );

    assert_eq!(
        harness.reader().delivery(hook_2).unwrap(),
        Some(DeliverySummary {
            id: hook_2,
            event_id: second,
            endpoint: "hook".into(),
            state: DeliveryState::Dead,
            attempts: 1,
            next_attempt_at: harness.delivery(hook_2).next_attempt_at,
            last_error: Some("HTTP 500".into()),
            received_at: 200,
        })
    );
    assert_eq!(harness.reader().delivery(i64::MAX).unwrap(), None);

    // Pages of two, with deliveries arriving between pages.
    let mut listed = Vec::new();
    let mut before_id = None;
    for _ in 0..10 {
        let query = DeliveryQuery { before_id, limit: 2, ..Default::default() };
        let page = harness.reader().list_deliveries(&query).unwrap();
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        listed.extend(page.iter().map(|delivery| delivery.id));
        harness.ingest("app", "a", 400, &["hook"]).await;
    }
    assert_eq!(listed, [other_3, hook_3, hook_2, other_1, hook_1]);
}

#[tokio::test]
async fn attempts_are_listed_oldest_first_with_their_ids() {
    let harness = Harness::new();
    let (_, deliveries) = harness.ingest("app", "a", 1, &["hook"]).await;
    harness.attempt(deliveries[0], "hook", NextStep::RetryAt(now_millis())).await;
    harness.attempt(deliveries[0], "hook", NextStep::Delivered).await;
    let attempts = harness.reader().attempts(deliveries[0]).unwrap();
    assert_eq!(attempts.len(), 2);
    assert!(attempts[0].id < attempts[1].id, "{attempts:?}");
}

#[tokio::test]
async fn a_pooled_reader_is_reused_and_sees_every_later_commit() {
    let harness = Harness::new();
    let (first, _) = harness.ingest("app", "one", 1, &["hook"]).await;
    {
        let reader = harness.store.pooled_reader().unwrap();
        assert!(reader.event(first).unwrap().is_some());
    }
    assert_eq!(harness.store.inner.readers.lock().unwrap().len(), 1, "given back");
    // Reused after more commits: it reads them, no stale snapshot.
    let (second, _) = harness.ingest("app", "two", 2, &["hook"]).await;
    let reader = harness.store.pooled_reader().unwrap();
    assert_eq!(harness.store.inner.readers.lock().unwrap().len(), 0, "taken from the pool");
    assert!(reader.event(second).unwrap().is_some());
    assert_eq!(reader.count_events().unwrap(), 2);
    // Two at once: the second is a new connection; both go back.
    let other = harness.store.pooled_reader().unwrap();
    assert_eq!(other.count_events().unwrap(), 2);
    drop((reader, other));
    assert_eq!(harness.store.inner.readers.lock().unwrap().len(), 2);
}
