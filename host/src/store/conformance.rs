//! The conformance suite: what every store backend must do, checked through [`Store`] alone.
//!
//! Each check opens a store with the backend's `open` function in a fresh directory, drives it
//! the way the router does (ingest, attempts, endpoint changes, replay, retention, the admin
//! queries, each endpoint's due-queue) and answers `Err` with what it saw when a rule is broken:
//! it never panics on a backend's answers, so a test can also prove that a broken backend
//! fails it. [`conformance_tests!`] turns every check into a test for one backend; the SQLite
//! backend runs them below, and so does a deliberately broken one, which must fail.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use tempfile::TempDir;

use super::*;
use crate::event::now_millis;
use sha2::Digest;

/// Opens the store kept in a directory (again, after a restart).
pub type Open = fn(&Path) -> Result<Store, StoreError>;

/// Fails the check, saying what was expected and what was seen.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(, $($context:tt)+)?) => {
        // `match` keeps the temporaries of both sides alive while they are compared.
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    let context: String = String::new() $(+ &format!($($context)+))?;
                    anyhow::bail!(
                        "{} != {}: {left:?} != {right:?} {context}",
                        stringify!($left),
                        stringify!($right)
                    );
                }
            }
        }
    };
}

/// A store in its own directory, and the due-queue of each endpoint the check uses, driven
/// the way the delivery workers drive them.
struct Harness {
    directory: TempDir,
    open: Open,
    store: Store,
    endpoints: Vec<String>,
    queues: HashMap<String, Box<dyn DueQueue>>,
}

impl Harness {
    fn new(open: Open, endpoints: &[&str]) -> Result<Self> {
        let directory = tempfile::tempdir()?;
        let store = open(directory.path())?;
        let endpoints: Vec<String> =
            endpoints.iter().map(|&endpoint| endpoint.to_owned()).collect();
        let mut harness = Self { directory, open, store, endpoints, queues: HashMap::new() };
        harness.claim_queues();
        Ok(harness)
    }

    fn claim_queues(&mut self) {
        self.queues = self
            .endpoints
            .iter()
            .map(|endpoint| (endpoint.clone(), self.store.due_queue(endpoint)))
            .collect();
    }

    /// Stops the store cleanly and opens the same directory again, as a restart does.
    async fn restart(mut self) -> Result<Self> {
        self.queues.clear();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown()).await?;
        self.store = (self.open)(self.directory.path())?;
        self.claim_queues();
        Ok(self)
    }

    /// Drops every handle without a clean shutdown, as a crash does, and opens the directory
    /// again.
    async fn crash(mut self) -> Result<Self> {
        self.queues.clear();
        let Self { directory, open, endpoints, store, .. } = self;
        drop(store);
        let store = open(directory.path())?;
        let mut harness = Self { directory, open, store, endpoints, queues: HashMap::new() };
        harness.claim_queues();
        Ok(harness)
    }

    /// Stores an event from `source` of `event_type` received at `received_at`, with one
    /// delivery to each of `endpoints`; answers its id and its deliveries' ids, oldest first.
    async fn ingest(
        &self,
        source: &str,
        event_type: &str,
        received_at: u64,
        endpoints: &[&str],
    ) -> Result<(EventId, Vec<DeliveryId>)> {
        let event = event(source, event_type, received_at, b"{}");
        let id = event.id;
        let deliveries = endpoints.iter().map(|endpoint| delivery(endpoint, &event)).collect();
        let new = NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries };
        ensure_eq!(self.store.ingest(new).await?, IngestReceipt::Stored(id));
        let deliveries = self.deliveries_of(id).await?.iter().map(|row| row.id).collect();
        Ok((id, deliveries))
    }

    /// The deliveries of event `id`, oldest first.
    async fn deliveries_of(&self, id: EventId) -> Result<Vec<DeliverySummary>> {
        let query = DeliveryQuery { event: Some(id), limit: 100, ..DeliveryQuery::default() };
        let mut deliveries = self.store.list_deliveries(query).await?;
        deliveries.reverse();
        Ok(deliveries)
    }

    /// Records an attempt on `delivery` (to `endpoint`) that decided `next`, and tells its
    /// endpoint's queue, as a worker does.
    async fn attempt(
        &mut self,
        delivery: DeliveryId,
        endpoint: &str,
        next: NextStep,
    ) -> Result<()> {
        let before = self.delivery(delivery).await?;
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
        self.store.record_attempt(record).await?;
        let job = DeliveryJob {
            delivery_id: delivery,
            event_id: before.event_id,
            endpoint: endpoint.into(),
            attempts: before.attempts,
            due_at: before.next_attempt_at,
            payload: None,
            order_key: None,
        };
        self.queue(endpoint)?.finished(job, next);
        Ok(())
    }

    /// Disables or enables `endpoint` as the admin API does: the store, then its worker.
    async fn set_enabled(&mut self, endpoint: &str, enabled: bool, reason: &str) -> Result<usize> {
        let moved =
            self.store.set_endpoint_enabled(endpoint.into(), enabled, reason.into()).await?;
        if let Some(queue) = self.queues.get_mut(endpoint) {
            if enabled { queue.resume() } else { queue.pause() }
        }
        Ok(moved)
    }

    fn queue(&mut self, endpoint: &str) -> Result<&mut Box<dyn DueQueue>> {
        self.queues.get_mut(endpoint).with_context(|| format!("no queue for `{endpoint}`"))
    }

    /// Every job due now, handed out (so under way), of every endpoint, as (delivery id,
    /// attempts, has a payload), by delivery id.
    fn drain_due(&mut self) -> Vec<(DeliveryId, u32, bool)> {
        let mut jobs: Vec<_> = self
            .queues
            .values_mut()
            .flat_map(|queue| std::iter::from_fn(|| queue.try_next()))
            .map(|job| (job.delivery_id, job.attempts, job.payload.is_some()))
            .collect();
        jobs.sort_unstable();
        jobs
    }

    async fn delivery(&self, id: DeliveryId) -> Result<DeliverySummary> {
        self.store.delivery(id).await?.with_context(|| format!("no delivery {id}"))
    }

    async fn state(&self, id: DeliveryId) -> Result<DeliveryState> {
        Ok(self.delivery(id).await?.state)
    }

    /// The ids of `endpoint`'s deliveries in `state`, oldest first.
    async fn in_state(&self, state: DeliveryState, endpoint: &str) -> Result<Vec<DeliveryId>> {
        let query = DeliveryQuery {
            state: Some(state),
            endpoint: Some(endpoint.into()),
            limit: 500,
            ..DeliveryQuery::default()
        };
        let mut ids: Vec<_> =
            self.store.list_deliveries(query).await?.iter().map(|row| row.id).collect();
        ids.reverse();
        Ok(ids)
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
    NewDelivery {
        endpoint: endpoint.into(),
        event: event.id,
        payload,
        dead_letter: None,
        order_key: None,
    }
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

/// Every check, by name.
pub const CHECKS: &[&str] = &[
    "ingest_stores_the_event_its_splits_and_its_deliveries",
    "a_dedupe_key_is_claimed_for_its_window_per_source",
    "a_refused_ingest_stores_nothing_of_its_fan_out",
    "attempts_move_deliveries_and_are_listed_oldest_first",
    "endpoints_are_put_replaced_listed_oldest_first_and_deleted",
    "deleting_an_endpoint_dead_letters_its_deliveries_for_good",
    "disabling_parks_pending_deliveries_and_new_ones_are_created_parked",
    "enabling_resumes_parked_deliveries_and_queues_them",
    "one_dead_or_delivered_delivery_can_be_sent_again",
    "dead_letters_are_redriven_unless_their_endpoint_is_gone",
    "events_routed_again_get_new_deliveries",
    "retention_deletes_what_is_done_and_keeps_what_is_not",
    "events_are_listed_newest_first_with_filters",
    "event_pages_neither_overlap_nor_skip_while_events_arrive",
    "deliveries_are_listed_newest_first_with_filters_and_pages",
    "what_was_acknowledged_survives_a_crash_and_pending_work_is_queued_again",
    "a_due_queue_hands_out_each_delivery_once_until_its_outcome",
    "activity_counts_recent_events_and_attempts_newest_first",
    "endpoint_activity_counts_buckets_and_the_p95_of_the_endpoints_asked",
    "the_audit_log_lists_newest_first_with_filters_pages_and_prunes",
    "ordered_deliveries_keep_their_key_and_wait_for_the_earlier_one",
];

/// Runs the check named `name` against the backend `open` opens.
pub async fn run(name: &str, open: Open) -> Result<()> {
    match name {
        "ingest_stores_the_event_its_splits_and_its_deliveries" => {
            ingest_stores_the_event_its_splits_and_its_deliveries(open).await
        }
        "a_dedupe_key_is_claimed_for_its_window_per_source" => {
            a_dedupe_key_is_claimed_for_its_window_per_source(open).await
        }
        "a_refused_ingest_stores_nothing_of_its_fan_out" => {
            a_refused_ingest_stores_nothing_of_its_fan_out(open).await
        }
        "attempts_move_deliveries_and_are_listed_oldest_first" => {
            attempts_move_deliveries_and_are_listed_oldest_first(open).await
        }
        "endpoints_are_put_replaced_listed_oldest_first_and_deleted" => {
            endpoints_are_put_replaced_listed_oldest_first_and_deleted(open).await
        }
        "deleting_an_endpoint_dead_letters_its_deliveries_for_good" => {
            deleting_an_endpoint_dead_letters_its_deliveries_for_good(open).await
        }
        "disabling_parks_pending_deliveries_and_new_ones_are_created_parked" => {
            disabling_parks_pending_deliveries_and_new_ones_are_created_parked(open).await
        }
        "enabling_resumes_parked_deliveries_and_queues_them" => {
            enabling_resumes_parked_deliveries_and_queues_them(open).await
        }
        "one_dead_or_delivered_delivery_can_be_sent_again" => {
            one_dead_or_delivered_delivery_can_be_sent_again(open).await
        }
        "dead_letters_are_redriven_unless_their_endpoint_is_gone" => {
            dead_letters_are_redriven_unless_their_endpoint_is_gone(open).await
        }
        "events_routed_again_get_new_deliveries" => {
            events_routed_again_get_new_deliveries(open).await
        }
        "retention_deletes_what_is_done_and_keeps_what_is_not" => {
            retention_deletes_what_is_done_and_keeps_what_is_not(open).await
        }
        "events_are_listed_newest_first_with_filters" => {
            events_are_listed_newest_first_with_filters(open).await
        }
        "event_pages_neither_overlap_nor_skip_while_events_arrive" => {
            event_pages_neither_overlap_nor_skip_while_events_arrive(open).await
        }
        "deliveries_are_listed_newest_first_with_filters_and_pages" => {
            deliveries_are_listed_newest_first_with_filters_and_pages(open).await
        }
        "what_was_acknowledged_survives_a_crash_and_pending_work_is_queued_again" => {
            what_was_acknowledged_survives_a_crash_and_pending_work_is_queued_again(open).await
        }
        "a_due_queue_hands_out_each_delivery_once_until_its_outcome" => {
            a_due_queue_hands_out_each_delivery_once_until_its_outcome(open).await
        }
        "activity_counts_recent_events_and_attempts_newest_first" => {
            activity_counts_recent_events_and_attempts_newest_first(open).await
        }
        "endpoint_activity_counts_buckets_and_the_p95_of_the_endpoints_asked" => {
            endpoint_activity_counts_buckets_and_the_p95_of_the_endpoints_asked(open).await
        }
        "the_audit_log_lists_newest_first_with_filters_pages_and_prunes" => {
            the_audit_log_lists_newest_first_with_filters_pages_and_prunes(open).await
        }
        "ordered_deliveries_keep_their_key_and_wait_for_the_earlier_one" => {
            ordered_deliveries_keep_their_key_and_wait_for_the_earlier_one(open).await
        }
        _ => bail!("no check `{name}`"),
    }
}

/// Runs every check; answers the names of those that failed, with why.
pub async fn failures(open: Open) -> Vec<(&'static str, anyhow::Error)> {
    let mut failed = Vec::new();
    for name in CHECKS {
        if let Err(error) = run(name, open).await {
            failed.push((*name, error));
        }
    }
    failed
}

async fn ingest_stores_the_event_its_splits_and_its_deliveries(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "other"])?;
    let mut parent = event("github", "push", 400, b"[1,2]");
    parent.subject = Some("repo".into());
    parent.metadata = vec![("tenant".into(), "acme".into())];
    let child = event("github", "push.item", 400, b"1");
    let mut shaped = delivery("other", &child);
    shaped.payload = Payload {
        body: Bytes::from_static(b"<x/>"),
        content_type: Some("text/xml".into()),
        subject: None,
    };
    let mut dead = delivery("other", &parent);
    dead.dead_letter = Some("plugin `x` failed".into());
    let new = NewEvent {
        event: parent.clone(),
        dedupe_window: None,
        derived: vec![child.clone()],
        deliveries: vec![delivery("hook", &parent), shaped, dead],
    };
    ensure_eq!(harness.store.ingest(new).await?, IngestReceipt::Stored(parent.id));
    ensure_eq!(harness.store.event(parent.id).await?, Some(parent.clone()));
    ensure_eq!(harness.store.event(child.id).await?, Some(child.clone()));
    ensure_eq!(harness.store.event(EventId::generate()).await?, None);
    ensure_eq!(harness.store.count_events().await?, 2);
    let of_parent = harness.deliveries_of(parent.id).await?;
    let states: Vec<_> = of_parent.iter().map(|d| (d.endpoint.as_str(), d.state)).collect();
    ensure_eq!(states, [("hook", DeliveryState::Pending), ("other", DeliveryState::Dead)]);
    ensure_eq!(of_parent[1].last_error.as_deref(), Some("plugin `x` failed"));
    let of_child = harness.deliveries_of(child.id).await?;
    ensure_eq!(of_child.len(), 1);
    // Each delivery sends its own payload; without its own content type, its event's.
    let payload = harness.store.payload(of_child[0].id).await?.context("a payload")?;
    ensure_eq!(payload.body.as_ref(), b"<x/>");
    ensure_eq!(payload.content_type.as_deref(), Some("text/xml"));
    let payload = harness.store.payload(of_parent[0].id).await?.context("a payload")?;
    ensure_eq!(payload.content_type.as_deref(), Some("application/json"));
    // The pending ones are queued once committed, with their body; the dead one is not.
    ensure_eq!(harness.drain_due(), [(of_parent[0].id, 0, true), (of_child[0].id, 0, true)]);
    Ok(())
}

async fn a_dedupe_key_is_claimed_for_its_window_per_source(open: Open) -> Result<()> {
    let harness = Harness::new(open, &["hook"])?;
    let keyed = |source: &str, key: &str, window: Duration| {
        let mut event = event(source, "a", now_millis(), b"{}");
        event.dedupe_key = Some(key.into());
        let deliveries = vec![delivery("hook", &event)];
        NewEvent { event, dedupe_window: Some(window), derived: Vec::new(), deliveries }
    };
    let minute = Duration::from_secs(60);
    let first = keyed("app", "k-1", minute);
    let first_id = first.event.id;
    ensure_eq!(harness.store.ingest(first).await?, IngestReceipt::Stored(first_id));
    let again = keyed("app", "k-1", minute);
    let again_id = again.event.id;
    ensure_eq!(harness.store.ingest(again).await?, IngestReceipt::Duplicate(first_id));
    ensure_eq!(harness.store.event(again_id).await?, None, "a duplicate is not stored");
    ensure_eq!(harness.deliveries_of(first_id).await?.len(), 1, "nor are its deliveries");
    // Another source's key, and a key whose window is over, are new.
    let other = keyed("billing", "k-1", minute);
    let other_id = other.event.id;
    ensure_eq!(harness.store.ingest(other).await?, IngestReceipt::Stored(other_id));
    let brief = keyed("app", "k-2", Duration::ZERO);
    ensure!(matches!(harness.store.ingest(brief).await?, IngestReceipt::Stored(_)));
    let after = keyed("app", "k-2", minute);
    let after_id = after.event.id;
    ensure_eq!(harness.store.ingest(after).await?, IngestReceipt::Stored(after_id));
    // The claim survives a restart.
    let harness = harness.restart().await?;
    ensure_eq!(
        harness.store.ingest(keyed("app", "k-1", minute)).await?,
        IngestReceipt::Duplicate(first_id)
    );
    Ok(())
}

async fn a_refused_ingest_stores_nothing_of_its_fan_out(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let (first, deliveries) = harness.ingest("app", "a", 1, &["hook"]).await?;
    harness.drain_due();
    // The same event id again, with a split and deliveries: refused whole.
    let mut taken = event("app", "a", 2, b"{}");
    taken.id = first;
    let child = event("app", "a.item", 2, b"1");
    let new = NewEvent {
        event: taken.clone(),
        dedupe_window: None,
        derived: vec![child.clone()],
        deliveries: vec![delivery("hook", &taken), delivery("hook", &child)],
    };
    ensure!(harness.store.ingest(new).await.is_err(), "an event id is stored once");
    ensure_eq!(harness.store.event(child.id).await?, None, "its split is not stored");
    ensure_eq!(harness.store.count_events().await?, 1);
    let all = harness.store.list_deliveries(DeliveryQuery { limit: 10, ..Default::default() });
    ensure_eq!(all.await?.iter().map(|d| d.id).collect::<Vec<_>>(), deliveries);
    ensure!(harness.drain_due().is_empty(), "nothing of it is queued");
    // The store goes on.
    harness.ingest("app", "a", 3, &["hook"]).await?;
    ensure_eq!(harness.drain_due().len(), 1);
    Ok(())
}

async fn attempts_move_deliveries_and_are_listed_oldest_first(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let (_, deliveries) = harness.ingest("app", "a", 1, &["hook", "hook", "hook"]).await?;
    let [retried, dead, delivered] = deliveries[..] else { bail!("three deliveries") };
    let later = now_millis() + 60_000;
    harness.attempt(retried, "hook", NextStep::RetryAt(later)).await?;
    harness.attempt(dead, "hook", NextStep::DeadLetter).await?;
    harness.attempt(delivered, "hook", NextStep::RetryAt(now_millis())).await?;
    harness.attempt(delivered, "hook", NextStep::Delivered).await?;
    let retried_row = harness.delivery(retried).await?;
    ensure_eq!((retried_row.state, retried_row.attempts), (DeliveryState::Pending, 1));
    ensure_eq!(retried_row.next_attempt_at, later);
    ensure_eq!(retried_row.last_error.as_deref(), Some("HTTP 500"));
    ensure_eq!(harness.state(dead).await?, DeliveryState::Dead);
    let delivered_row = harness.delivery(delivered).await?;
    ensure_eq!((delivered_row.state, delivered_row.attempts), (DeliveryState::Delivered, 2));
    let attempts = harness.store.attempts(delivered).await?;
    ensure_eq!(attempts.len(), 2);
    ensure!(attempts[0].id < attempts[1].id, "oldest first: {attempts:?}");
    ensure_eq!(attempts[0].status, Some(500));
    ensure_eq!(attempts[0].duration_micros, 3_000);
    ensure!(harness.store.attempts(DeliveryId::new(u64::MAX >> 1)).await?.is_empty());
    // The retry waits for its time; nothing else is due.
    ensure!(harness.drain_due().is_empty(), "{:?}", harness.drain_due());
    ensure_eq!(harness.queue("hook")?.len(), 1, "the retry waits in the queue");
    Ok(())
}

/// The dashboard's statistics: events received since a moment, and the attempts made since
/// then, newest first, bounded, each with its endpoint and whether it succeeded.
async fn activity_counts_recent_events_and_attempts_newest_first(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "other"])?;
    let now = now_millis();
    harness.ingest("app", "old", now - 3_600_000, &[]).await?;
    let (_, deliveries) = harness.ingest("app", "a", now, &["hook", "other"]).await?;
    let [to_hook, to_other] = deliveries[..] else { bail!("two deliveries") };
    harness.attempt(to_hook, "hook", NextStep::DeadLetter).await?;
    let record = AttemptRecord {
        delivery_id: to_other,
        endpoint: "other".into(),
        attempted_at: now_millis(),
        duration: Duration::from_millis(7),
        status: Some(204),
        error: None,
        response_excerpt: Bytes::new(),
        next: NextStep::Delivered,
    };
    harness.store.record_attempt(record).await?;
    let activity = harness.store.activity_since(now - 1_000, 100).await?;
    ensure_eq!(activity.events, 1, "the old event is outside the window");
    ensure!(!activity.truncated);
    let seen: Vec<(&str, bool, u64)> = activity
        .attempts
        .iter()
        .map(|sample| (sample.endpoint.as_str(), sample.succeeded, sample.duration_micros))
        .collect();
    ensure_eq!(seen, [("other", true, 7_000), ("hook", false, 3_000)], "newest first");
    let bounded = harness.store.activity_since(now - 1_000, 1).await?;
    ensure_eq!((bounded.attempts.len(), bounded.truncated), (1, true));
    ensure_eq!(bounded.attempts[0].endpoint, "other");
    let later = harness.store.activity_since(now_millis() + 60_000, 100).await?;
    ensure_eq!((later.events, later.attempts.len()), (0, 0));
    Ok(())
}

/// The endpoints list: per endpoint asked, attempts in time buckets from `since` (with
/// failures) and the nearest-rank 95th-percentile duration; older attempts and other endpoints
/// are left out.
async fn endpoint_activity_counts_buckets_and_the_p95_of_the_endpoints_asked(
    open: Open,
) -> Result<()> {
    let harness = Harness::new(open, &["hook", "other", "quiet"])?;
    let now = now_millis();
    let since = now - 10_000;
    let targets: Vec<&str> = std::iter::repeat_n("hook", 21).chain(["other"]).collect();
    let (_, deliveries) = harness.ingest("app", "a", now, &targets).await?;
    // hook: one attempt before the window, then 20 in it: 1..=20 ms, every 4th failing,
    // the first ten in bucket 0 (since + 0..5 s), the others in bucket 1.
    let attempt =
        |delivery: DeliveryId, endpoint: &str, at: u64, millis: u64, ok: bool| AttemptRecord {
            delivery_id: delivery,
            endpoint: endpoint.into(),
            attempted_at: at,
            duration: Duration::from_millis(millis),
            status: Some(if ok { 200 } else { 503 }),
            error: (!ok).then(|| "HTTP 503".to_owned()),
            response_excerpt: Bytes::new(),
            next: if ok { NextStep::Delivered } else { NextStep::DeadLetter },
        };
    harness.store.record_attempt(attempt(deliveries[0], "hook", since - 1, 900, false)).await?;
    for n in 1..=20u64 {
        let at = since + if n <= 10 { n * 100 } else { 5_000 + n * 100 };
        let record = attempt(deliveries[n as usize], "hook", at, n, n % 4 != 0);
        harness.store.record_attempt(record).await?;
    }
    harness.store.record_attempt(attempt(deliveries[21], "other", now, 7, true)).await?;
    let asked = vec!["hook".to_owned(), "quiet".to_owned()];
    let activity = harness.store.endpoint_activity(asked, since, 5_000).await?;
    ensure_eq!(activity.len(), 1, "only `hook` was asked and has attempts: {activity:?}");
    let hook = &activity[0];
    ensure_eq!(hook.endpoint, "hook");
    let buckets: Vec<(u64, u64, u64)> =
        hook.buckets.iter().map(|bucket| (bucket.index, bucket.attempts, bucket.failed)).collect();
    ensure_eq!(buckets, [(0, 10, 2), (1, 10, 3)], "the attempt before `since` is left out");
    // Rank 19 of 20 durations 1..=20 ms.
    ensure_eq!(hook.p95_micros, Some(19_000));
    ensure!(harness.store.endpoint_activity(Vec::new(), since, 5_000).await?.is_empty());
    Ok(())
}

async fn endpoints_are_put_replaced_listed_oldest_first_and_deleted(open: Open) -> Result<()> {
    let harness = Harness::new(open, &[])?;
    let store = &harness.store;
    store.put_endpoint(stored_endpoint("zeta", r#"{"url":"https://a.example"}"#, 10)).await?;
    let mut beta = stored_endpoint("beta", r#"{"url":"https://b.example"}"#, 20);
    beta.kind = "subscription".into();
    store.put_endpoint(beta.clone()).await?;
    let ids = |endpoints: Vec<StoredEndpoint>| -> Vec<String> {
        endpoints.into_iter().map(|endpoint| endpoint.id).collect()
    };
    ensure_eq!(ids(store.endpoints().await?), ["zeta", "beta"]);
    ensure_eq!(store.endpoint("beta".into()).await?, Some(beta));

    let replaced = StoredEndpoint {
        spec: r#"{"url":"https://c.example"}"#.into(),
        updated_at: 30,
        ..stored_endpoint("zeta", "", 10)
    };
    store.put_endpoint(replaced.clone()).await?;
    ensure_eq!(store.endpoint("zeta".into()).await?, Some(replaced));
    ensure_eq!(ids(store.endpoints().await?), ["zeta", "beta"]);

    ensure_eq!(store.delete_endpoint("zeta".into(), "deleted".into()).await?, 0);
    ensure_eq!(store.endpoint("zeta".into()).await?, None);
    ensure_eq!(ids(store.endpoints().await?), ["beta"]);
    // A missing endpoint is not an error.
    ensure_eq!(store.delete_endpoint("zeta".into(), "deleted".into()).await?, 0);
    ensure_eq!(store.endpoint("missing".into()).await?, None);
    let harness = harness.restart().await?;
    ensure_eq!(ids(harness.store.endpoints().await?), ["beta"], "kept across a restart");
    Ok(())
}

async fn deleting_an_endpoint_dead_letters_its_deliveries_for_good(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["open", "other", "closed"])?;
    let (_, open_deliveries) = harness.ingest("app", "a", 1, &["open", "other"]).await?;
    let (_, more) = harness.ingest("app", "a", 2, &["open"]).await?;
    let (_, delivered) = harness.ingest("app", "a", 3, &["open"]).await?;
    harness.attempt(delivered[0], "open", NextStep::Delivered).await?;
    let (_, parked) = harness.ingest("app", "a", 4, &["closed"]).await?;
    let (_, dead) = harness.ingest("app", "a", 5, &["closed"]).await?;
    harness.attempt(dead[0], "closed", NextStep::DeadLetter).await?;
    ensure_eq!(harness.set_enabled("closed", false, "x").await?, 1);
    harness.drain_due();

    let store = harness.store.clone();
    ensure_eq!(store.delete_endpoint("open".into(), "endpoint deleted".into()).await?, 2);
    ensure_eq!(store.delete_endpoint("closed".into(), "endpoint deleted".into()).await?, 1);
    for id in [open_deliveries[0], more[0], parked[0]] {
        let delivery = harness.delivery(id).await?;
        ensure_eq!(delivery.state, DeliveryState::Dead, "{delivery:?}");
        ensure_eq!(delivery.last_error.as_deref(), Some("endpoint deleted"));
    }
    ensure_eq!(
        harness.state(open_deliveries[1]).await?,
        DeliveryState::Pending,
        "another endpoint's"
    );
    ensure_eq!(harness.state(delivered[0]).await?, DeliveryState::Delivered);
    ensure_eq!(harness.delivery(dead[0]).await?.last_error.as_deref(), Some("HTTP 500"));
    ensure!(store.disabled_endpoints().await?.is_empty(), "a deleted endpoint is not disabled");

    // An attempt in flight when its endpoint went does not bring its dead letter back.
    harness.attempt(open_deliveries[0], "open", NextStep::RetryAt(now_millis() + 5_000)).await?;
    ensure_eq!(harness.state(open_deliveries[0]).await?, DeliveryState::Dead);
    ensure_eq!(store.attempts(open_deliveries[0]).await?.len(), 1, "the attempt is kept");
    harness.attempt(more[0], "open", NextStep::Delivered).await?;
    ensure_eq!(harness.state(more[0]).await?, DeliveryState::Delivered, "a success is one");

    // Routed to it after all (an event routed just before the delete): created dead. Its
    // dead letters are never sent again, by redrive or by retry; and a restart keeps all that.
    let (_, late) = harness.ingest("app", "a", 6, &["closed"]).await?;
    let late_row = harness.delivery(late[0]).await?;
    ensure_eq!(late_row.state, DeliveryState::Dead);
    ensure_eq!(late_row.last_error.as_deref(), Some("its endpoint was deleted"));
    let redrive = ReplaySelection::DeadLetters { endpoint: None };
    ensure_eq!(store.replay(redrive.clone()).await?, 0, "both endpoints are gone");
    ensure_eq!(harness.state(dead[0]).await?, DeliveryState::Dead);
    ensure_eq!(store.replay(ReplaySelection::Delivery(late[0])).await?, 0);
    let mut harness = harness.restart().await?;
    let (_, after_restart) = harness.ingest("app", "a", 7, &["open"]).await?;
    ensure_eq!(harness.state(after_restart[0]).await?, DeliveryState::Dead);
    ensure_eq!(harness.store.replay(redrive).await?, 0);
    // Queued again at open: the other endpoint's pending one, nothing of the deleted ones.
    ensure_eq!(harness.drain_due(), [(open_deliveries[1], 0, false)]);
    Ok(())
}

async fn disabling_parks_pending_deliveries_and_new_ones_are_created_parked(
    open: Open,
) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "other"])?;
    let (_, first) = harness.ingest("app", "a", 1, &["hook", "other"]).await?;
    let (_, second) = harness.ingest("app", "a", 2, &["hook"]).await?;
    harness.drain_due();

    ensure_eq!(harness.set_enabled("hook", false, "paused by ops").await?, 2);
    ensure_eq!(harness.in_state(DeliveryState::Parked, "hook").await?, [first[0], second[0]]);
    ensure_eq!(harness.state(first[1]).await?, DeliveryState::Pending);
    let disabled = harness.store.disabled_endpoints().await?;
    ensure_eq!(disabled.get("hook").map(|(_, reason)| reason.as_str()), Some("paused by ops"));

    // New deliveries to it are parked, not queued; others go on.
    let (_, third) = harness.ingest("app", "a", 3, &["hook", "other"]).await?;
    ensure_eq!(harness.state(third[0]).await?, DeliveryState::Parked);
    ensure_eq!(harness.drain_due(), [(third[1], 0, true)]);
    // An attempt that was in flight parks too.
    harness.attempt(first[0], "hook", NextStep::RetryAt(now_millis() + 5_000)).await?;
    ensure_eq!(harness.state(first[0]).await?, DeliveryState::Parked);

    // Disabled stays disabled across a restart.
    let mut harness = harness.restart().await?;
    let (_, fourth) = harness.ingest("app", "a", 4, &["hook"]).await?;
    ensure_eq!(harness.state(fourth[0]).await?, DeliveryState::Parked);
    ensure!(harness.store.disabled_endpoints().await?.contains_key("hook"));
    let others = [(first[1], 0, false), (third[1], 0, false)];
    ensure_eq!(harness.drain_due(), others, "only the other endpoint's pending ones");
    Ok(())
}

async fn enabling_resumes_parked_deliveries_and_queues_them(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let (_, first) = harness.ingest("app", "a", 1, &["hook"]).await?;
    let (_, second) = harness.ingest("app", "a", 2, &["hook"]).await?;
    harness.drain_due();
    // A 410 Gone disables it: the delivery that got it, and the other, are parked.
    harness.attempt(first[0], "hook", NextStep::DisableEndpoint).await?;
    ensure_eq!(
        harness.store.disabled_endpoints().await?.get("hook").map(|(_, r)| r.as_str()),
        Some("410 Gone")
    );
    harness.attempt(second[0], "hook", NextStep::RetryAt(now_millis())).await?;
    let (_, third) = harness.ingest("app", "a", 3, &["hook"]).await?;
    ensure!(harness.drain_due().is_empty(), "nothing of a disabled endpoint is due");
    ensure_eq!(
        harness.in_state(DeliveryState::Parked, "hook").await?,
        [first[0], second[0], third[0]]
    );

    let before = now_millis();
    ensure_eq!(harness.set_enabled("hook", true, "").await?, 3);
    // Queued once committed, without a payload, their attempts kept.
    ensure_eq!(
        harness.drain_due(),
        [(first[0], 1, false), (second[0], 1, false), (third[0], 0, false)]
    );
    for id in [first[0], second[0], third[0]] {
        let delivery = harness.delivery(id).await?;
        ensure_eq!(delivery.state, DeliveryState::Pending);
        ensure!(delivery.next_attempt_at >= before, "due now: {delivery:?}");
    }
    ensure!(harness.store.disabled_endpoints().await?.is_empty());
    // Enabling an enabled endpoint resumes nothing.
    ensure_eq!(harness.set_enabled("hook", true, "").await?, 0);

    // New deliveries are pending and queued again, also after a restart.
    let (_, fourth) = harness.ingest("app", "a", 4, &["hook"]).await?;
    ensure_eq!(harness.drain_due(), [(fourth[0], 0, true)]);
    let mut harness = harness.restart().await?;
    let pending_before = harness.drain_due();
    ensure_eq!(
        pending_before.len(),
        4,
        "the pending ones, queued again at open: {pending_before:?}"
    );
    let (_, fifth) = harness.ingest("app", "a", 5, &["hook"]).await?;
    ensure_eq!(harness.drain_due(), [(fifth[0], 0, true)]);
    Ok(())
}

async fn one_dead_or_delivered_delivery_can_be_sent_again(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let (_, dead) = harness.ingest("app", "a", 1, &["hook"]).await?;
    harness.attempt(dead[0], "hook", NextStep::DeadLetter).await?;
    let (_, delivered) = harness.ingest("app", "a", 2, &["hook"]).await?;
    harness.attempt(delivered[0], "hook", NextStep::Delivered).await?;
    let (_, pending) = harness.ingest("app", "a", 3, &["hook"]).await?;
    ensure_eq!(harness.drain_due(), [(pending[0], 0, true)]);

    let store = harness.store.clone();
    let replay = |id| store.replay(ReplaySelection::Delivery(id));
    ensure_eq!(replay(dead[0]).await?, 1);
    ensure_eq!(replay(delivered[0]).await?, 1);
    ensure_eq!(replay(pending[0]).await?, 0);
    ensure_eq!(replay(DeliveryId::new(u64::MAX >> 1)).await?, 0);
    ensure_eq!(harness.drain_due(), [(dead[0], 0, false), (delivered[0], 0, false)]);
    for id in [dead[0], delivered[0]] {
        let delivery = harness.delivery(id).await?;
        ensure_eq!((delivery.state, delivery.attempts), (DeliveryState::Pending, 0));
        ensure_eq!(delivery.last_error, None);
        ensure_eq!(store.attempts(id).await?.len(), 1, "its history is kept");
    }
    // Once pending it is not sent twice.
    ensure_eq!(replay(dead[0]).await?, 0);

    // To a disabled endpoint it is parked, and sent once the endpoint is enabled.
    harness.attempt(dead[0], "hook", NextStep::DeadLetter).await?;
    harness.set_enabled("hook", false, "paused").await?;
    ensure_eq!(replay(dead[0]).await?, 1);
    ensure_eq!(harness.state(dead[0]).await?, DeliveryState::Parked);
    ensure_eq!(replay(dead[0]).await?, 0);
    ensure!(harness.drain_due().is_empty());
    harness.set_enabled("hook", true, "").await?;
    let resumed: Vec<DeliveryId> = harness.drain_due().iter().map(|job| job.0).collect();
    // `delivered` and `pending` are under way (handed out, no outcome yet): their attempts
    // decide what comes next, so they are not handed out twice.
    ensure_eq!(resumed, [dead[0]]);
    Ok(())
}

async fn dead_letters_are_redriven_unless_their_endpoint_is_gone(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "paused", "gone"])?;
    let (_, deliveries) =
        harness.ingest("app", "a", 1, &["hook", "paused", "gone", "hook"]).await?;
    let [hook, paused, gone, delivered] = deliveries[..] else { bail!("four deliveries") };
    for (id, endpoint) in [(hook, "hook"), (paused, "paused"), (gone, "gone")] {
        harness.attempt(id, endpoint, NextStep::DeadLetter).await?;
    }
    harness.attempt(delivered, "hook", NextStep::Delivered).await?;
    harness.set_enabled("paused", false, "").await?;
    harness.store.delete_endpoint("gone".into(), "deleted".into()).await?;
    let store = harness.store.clone();
    ensure_eq!(store.count_deliveries(DeliveryState::Dead, None).await?, 3);
    ensure_eq!(store.count_deliveries(DeliveryState::Dead, Some("hook".into())).await?, 1);
    ensure_eq!(store.count_deliveries(DeliveryState::Delivered, None).await?, 1);
    // Counted: the ones made pending. The disabled endpoint's is parked; the deleted one's
    // stays dead.
    let redrive = ReplaySelection::DeadLetters { endpoint: None };
    ensure_eq!(store.replay(redrive).await?, 1);
    ensure_eq!(harness.state(hook).await?, DeliveryState::Pending);
    ensure_eq!(harness.state(paused).await?, DeliveryState::Parked);
    ensure_eq!(harness.state(gone).await?, DeliveryState::Dead);
    ensure_eq!(harness.state(delivered).await?, DeliveryState::Delivered);
    ensure_eq!(harness.delivery(hook).await?.attempts, 0, "it starts over");
    ensure_eq!(harness.drain_due(), [(hook, 0, false)]);
    // One endpoint's only.
    harness.attempt(hook, "hook", NextStep::DeadLetter).await?;
    let only_paused = ReplaySelection::DeadLetters { endpoint: Some("paused".into()) };
    ensure_eq!(store.replay(only_paused).await?, 0);
    ensure_eq!(harness.state(hook).await?, DeliveryState::Dead);
    Ok(())
}

async fn events_routed_again_get_new_deliveries(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "late"])?;
    let (first, original) = harness.ingest("app", "a", 100, &["hook"]).await?;
    let (_, _) = harness.ingest("app", "a", 200, &["hook"]).await?;
    harness.drain_due();
    let between = harness.store.events_received_between(100, 200, 10).await?;
    ensure_eq!(between.iter().map(|event| event.id).collect::<Vec<_>>(), [first]);
    let stored = between[0].clone();
    let split = event("app", "a.item", 100, b"1");
    let replayed = ReplayedEvent {
        event: stored.id,
        derived: vec![split.clone()],
        deliveries: vec![delivery("late", &stored), delivery("late", &split)],
    };
    let gone = ReplayedEvent {
        event: EventId::generate(),
        derived: Vec::new(),
        deliveries: vec![delivery("late", &stored)],
    };
    let selection = ReplaySelection::Events(vec![replayed, gone]);
    ensure_eq!(harness.store.replay(selection).await?, 2, "an event no longer stored is skipped");
    let deliveries = harness.deliveries_of(first).await?;
    ensure_eq!(deliveries.len(), 2);
    ensure_eq!(deliveries[0].id, original[0]);
    let resent = harness.store.payload(deliveries[1].id).await?.context("the replayed body")?;
    ensure_eq!(resent.body, stored.body, "a replayed delivery sends its event's body");
    ensure_eq!(
        harness.store.event(split.id).await?.map(|event| event.event_type),
        Some("a.item".to_owned())
    );
    let queued = harness.drain_due();
    ensure_eq!(queued.len(), 2);
    ensure!(queued.iter().all(|(_, attempts, payload)| *attempts == 0 && *payload), "{queued:?}");
    // Events made by splits are not routed again themselves.
    let all = harness.store.events_received_between(0, 1_000, 10).await?;
    ensure_eq!(all.len(), 2, "{all:?}");
    Ok(())
}

async fn retention_deletes_what_is_done_and_keeps_what_is_not(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "paused"])?;
    let (delivered, delivered_ids) = harness.ingest("app", "a", 1, &["hook"]).await?;
    harness.attempt(delivered_ids[0], "hook", NextStep::Delivered).await?;
    let (quiet, _) = harness.ingest("app", "a", 2, &[]).await?;
    let (dead, dead_ids) = harness.ingest("app", "a", 3, &["hook"]).await?;
    harness.attempt(dead_ids[0], "hook", NextStep::DeadLetter).await?;
    let (pending, _) = harness.ingest("app", "a", 4, &["hook"]).await?;
    let (parked, _) = harness.ingest("app", "a", 5, &["paused"]).await?;
    harness.set_enabled("paused", false, "").await?;
    let (recent, recent_ids) = harness.ingest("app", "a", 1_000, &["hook"]).await?;
    harness.attempt(recent_ids[0], "hook", NextStep::Delivered).await?;
    let store = harness.store.clone();
    let exists = |id| {
        let store = store.clone();
        async move { Ok::<_, anyhow::Error>(store.event(id).await?.is_some()) }
    };
    let pass = Retention { delivered_before: 500, dead_before: 0, batch: 100 };
    let report = store.prune(pass).await?;
    ensure_eq!(report.events, 2, "{report:?}");
    ensure!(!exists(delivered).await? && !exists(quiet).await?, "delivered and quiet ones go");
    ensure!(harness.store.attempts(delivered_ids[0]).await?.is_empty(), "with their attempts");
    ensure!(exists(dead).await?, "dead letters are kept longer");
    ensure!(exists(pending).await? && exists(parked).await?, "open ones are kept");
    ensure!(exists(recent).await?, "newer ones are kept");
    let pass = Retention { delivered_before: 500, dead_before: 500, batch: 100 };
    ensure_eq!(store.prune(pass).await?.events, 1);
    ensure!(!exists(dead).await?);
    ensure!(exists(pending).await? && exists(parked).await?, "open ones are never deleted");
    // A batch bounds a pass.
    for received_at in 10..14 {
        harness.ingest("app", "b", received_at, &[]).await?;
    }
    let pass = Retention { delivered_before: 500, dead_before: 500, batch: 3 };
    ensure_eq!(store.prune(pass).await?.events, 3);
    ensure_eq!(store.prune(pass).await?.events, 1);
    ensure_eq!(store.count_events().await?, 3);
    // An event that was split stays while its split does; both go once the split is done.
    let parent = event("app", "batch", 20, b"[1]");
    let child = event("app", "batch.item", 20, b"1");
    let (parent_id, child_id) = (parent.id, child.id);
    let deliveries = vec![delivery("hook", &child)];
    let new = NewEvent { event: parent, dedupe_window: None, derived: vec![child], deliveries };
    ensure_eq!(store.ingest(new).await?, IngestReceipt::Stored(parent_id));
    ensure_eq!(store.prune(pass).await?.events, 0, "the split's delivery is open");
    ensure!(exists(parent_id).await? && exists(child_id).await?);
    let split_delivery = harness.deliveries_of(child_id).await?[0].id;
    harness.attempt(split_delivery, "hook", NextStep::Delivered).await?;
    ensure_eq!(store.prune(pass).await?.events, 1, "the split");
    ensure_eq!(store.prune(pass).await?.events, 1, "then the event it came from");
    ensure!(!exists(parent_id).await? && !exists(child_id).await?);
    ensure_eq!(store.count_events().await?, 3);
    Ok(())
}

async fn events_are_listed_newest_first_with_filters(open: Open) -> Result<()> {
    let harness = Harness::new(open, &[])?;
    let (first, _) = harness.ingest("github", "push", 100, &[]).await?;
    let (second, _) = harness.ingest("stripe", "invoice.paid", 200, &[]).await?;
    let (third, _) = harness.ingest("github", "pull_request", 300, &[]).await?;
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
    harness.store.ingest(new).await?;

    let store = harness.store.clone();
    let list = |query: EventQuery| {
        let store = store.clone();
        async move {
            let query = EventQuery { limit: 10, ..query };
            let events = store.list_events(query).await?;
            Ok::<_, anyhow::Error>(events.into_iter().map(|event| event.id).collect::<Vec<_>>())
        }
    };
    ensure_eq!(list(EventQuery::default()).await?, [child.id, parent.id, third, second, first]);
    let source = |source: &str| Some(source.to_owned());
    ensure_eq!(
        list(EventQuery { source: source("github"), ..Default::default() }).await?,
        [child.id, parent.id, third, first]
    );
    ensure_eq!(
        list(EventQuery { event_type: Some("push".into()), ..Default::default() }).await?,
        [parent.id, first],
        "the type matches exactly"
    );
    ensure_eq!(
        list(EventQuery { since: Some(200), until: Some(400), ..Default::default() }).await?,
        [third, second]
    );
    ensure_eq!(
        list(EventQuery { source: source("github"), until: Some(300), ..Default::default() })
            .await?,
        [first]
    );
    ensure!(list(EventQuery { source: source("nobody"), ..Default::default() }).await?.is_empty());

    let summaries = store.list_events(EventQuery { limit: 2, ..Default::default() }).await?;
    ensure_eq!(summaries.len(), 2);
    ensure_eq!(
        summaries[1],
        EventSummary {
            position: summaries[1].position,
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
    ensure_eq!((summaries[0].parent, summaries[0].body_size), (Some(parent.id), 1));
    // A cursor's text names its position again.
    let position = summaries[1].position;
    ensure_eq!(LogPosition::decode(&position.encode()), Some(position));
    Ok(())
}

async fn event_pages_neither_overlap_nor_skip_while_events_arrive(open: Open) -> Result<()> {
    let harness = Harness::new(open, &[])?;
    let mut stored = Vec::new();
    for received_at in 0..7 {
        stored.push(harness.ingest("app", "a", received_at, &[]).await?.0);
    }
    stored.reverse();
    let mut listed = Vec::new();
    let mut before = None;
    // Bounded, so that a cursor that does not move fails instead of hanging.
    for _ in 0..10 {
        let query = EventQuery { before, limit: 3, ..Default::default() };
        let page = harness.store.list_events(query).await?;
        let Some(last) = page.last() else { break };
        // The cursor travels as text, as the admin API gives it out.
        before = Some(LogPosition::decode(&last.position.encode()).context("a cursor")?);
        listed.extend(page.iter().map(|event| event.id));
        // Arrivals between pages are newer than the cursor: they never shift a page.
        harness.ingest("app", "a", 100, &[]).await?;
    }
    ensure_eq!(listed, stored);
    Ok(())
}

async fn deliveries_are_listed_newest_first_with_filters_and_pages(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook", "other"])?;
    let (first, first_deliveries) = harness.ingest("app", "a", 100, &["hook", "other"]).await?;
    let (second, second_deliveries) = harness.ingest("app", "a", 200, &["hook"]).await?;
    let (_, third_deliveries) = harness.ingest("app", "a", 300, &["hook", "other"]).await?;
    harness.attempt(second_deliveries[0], "hook", NextStep::DeadLetter).await?;
    let [hook_1, other_1] = first_deliveries[..] else { bail!("two deliveries") };
    let [hook_2] = second_deliveries[..] else { bail!("one delivery") };
    let [hook_3, other_3] = third_deliveries[..] else { bail!("two deliveries") };

    let store = harness.store.clone();
    let list = |query: DeliveryQuery| {
        let store = store.clone();
        async move {
            let query = DeliveryQuery { limit: 10, ..query };
            let deliveries = store.list_deliveries(query).await?;
            Ok::<_, anyhow::Error>(deliveries.into_iter().map(|d| d.id).collect::<Vec<_>>())
        }
    };
    ensure_eq!(list(DeliveryQuery::default()).await?, [other_3, hook_3, hook_2, other_1, hook_1]);
    ensure_eq!(
        list(DeliveryQuery { endpoint: Some("other".into()), ..Default::default() }).await?,
        [other_3, other_1]
    );
    ensure_eq!(
        list(DeliveryQuery { state: Some(DeliveryState::Dead), ..Default::default() }).await?,
        [hook_2]
    );
    ensure_eq!(
        list(DeliveryQuery { event: Some(first), ..Default::default() }).await?,
        [other_1, hook_1]
    );
    ensure_eq!(
        list(DeliveryQuery {
            event: Some(first),
            endpoint: Some("hook".into()),
            ..Default::default()
        })
        .await?,
        [hook_1]
    );
    ensure!(
        list(DeliveryQuery { event: Some(EventId::generate()), ..Default::default() })
            .await?
            .is_empty()
    );
    ensure_eq!(
        list(DeliveryQuery { since: Some(200), until: Some(300), ..Default::default() }).await?,
        [hook_2]
    );
    ensure_eq!(
        list(DeliveryQuery { before: Some(hook_3), ..Default::default() }).await?,
        [hook_2, other_1, hook_1]
    );

    let dead = harness.delivery(hook_2).await?;
    ensure_eq!(
        dead,
        DeliverySummary {
            id: hook_2,
            event_id: second,
            endpoint: "hook".into(),
            state: DeliveryState::Dead,
            attempts: 1,
            next_attempt_at: dead.next_attempt_at,
            last_error: Some("HTTP 500".into()),
            received_at: 200,
        }
    );
    ensure_eq!(store.delivery(DeliveryId::new(u64::MAX >> 1)).await?, None);

    // Pages of two, with deliveries arriving between pages.
    let mut listed = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let query = DeliveryQuery { before, limit: 2, ..Default::default() };
        let page = store.list_deliveries(query).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        listed.extend(page.iter().map(|delivery| delivery.id));
        harness.ingest("app", "a", 400, &["hook"]).await?;
    }
    ensure_eq!(listed, [other_3, hook_3, hook_2, other_1, hook_1]);
    Ok(())
}

async fn what_was_acknowledged_survives_a_crash_and_pending_work_is_queued_again(
    open: Open,
) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let mut acknowledged = Vec::new();
    for received_at in 0..20 {
        acknowledged.push(harness.ingest("app", "a", received_at, &["hook"]).await?);
    }
    let (_, done) = &acknowledged[0];
    harness.attempt(done[0], "hook", NextStep::Delivered).await?;
    let (_, retried) = &acknowledged[1];
    let at = now_millis();
    harness.attempt(retried[0], "hook", NextStep::RetryAt(at)).await?;
    harness.store.put_endpoint(stored_endpoint("ep_1", "{}", 1)).await?;
    harness.set_enabled("other", false, "paused").await?;
    let mut harness = harness.crash().await?;
    for (id, _) in &acknowledged {
        ensure!(harness.store.event(*id).await?.is_some(), "acknowledged event {id} was lost");
    }
    ensure_eq!(harness.store.count_events().await?, 20);
    ensure_eq!(harness.state(done[0]).await?, DeliveryState::Delivered);
    let retried_row = harness.delivery(retried[0]).await?;
    ensure_eq!((retried_row.attempts, retried_row.next_attempt_at), (1, at));
    ensure_eq!(harness.store.endpoints().await?.len(), 1);
    ensure!(harness.store.disabled_endpoints().await?.contains_key("other"));
    // Every pending delivery is queued again, with its attempts so far.
    let queued = harness.drain_due();
    ensure_eq!(queued.len(), 19, "{queued:?}");
    ensure!(queued.contains(&(retried[0], 1, false)), "{queued:?}");
    Ok(())
}

async fn a_due_queue_hands_out_each_delivery_once_until_its_outcome(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let (_, deliveries) = harness.ingest("app", "a", 1, &["hook"]).await?;
    let id = deliveries[0];
    let queue = harness.queue("hook")?;
    let job = tokio::time::timeout(Duration::from_secs(5), queue.next())
        .await
        .context("a due job is handed out at once")?
        .context("the queue is open")?;
    ensure_eq!(job.delivery_id, id);
    ensure!(job.payload.is_some(), "a fresh job keeps its body");
    // Under way (and pending): replaying it gives no second job.
    ensure_eq!(harness.store.replay(ReplaySelection::Delivery(id)).await?, 0);
    ensure!(harness.drain_due().is_empty());
    // Its outcome decides: a retry comes back when due, without its body.
    let soon = now_millis() + 150;
    let record = AttemptRecord {
        delivery_id: id,
        endpoint: "hook".into(),
        attempted_at: now_millis(),
        duration: Duration::from_millis(1),
        status: Some(503),
        error: Some("HTTP 503".into()),
        response_excerpt: Bytes::new(),
        next: NextStep::RetryAt(soon),
    };
    harness.store.record_attempt(record).await?;
    let queue = harness.queue("hook")?;
    queue.finished(job, NextStep::RetryAt(soon));
    ensure!(queue.try_next().is_none(), "not due yet");
    let again = tokio::time::timeout(Duration::from_secs(5), queue.next())
        .await
        .context("the retry is handed out when due")?
        .context("the queue is open")?;
    ensure!(now_millis() >= soon, "not before it is due");
    ensure_eq!((again.delivery_id, again.attempts, again.payload.is_some()), (id, 1, false));
    let payload = harness.store.payload(id).await?.context("its body, read again")?;
    ensure_eq!(payload.body.as_ref(), b"{}");
    Ok(())
}

/// Stores one event with one delivery to `hook` keyed `key`; answers the delivery's id.
async fn ingest_keyed(harness: &Harness, key: Option<&str>) -> Result<DeliveryId> {
    let event = event("app", "a", now_millis(), b"{}");
    let id = event.id;
    let mut delivery = delivery("hook", &event);
    delivery.order_key = key.map(str::to_owned);
    let new =
        NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] };
    ensure_eq!(harness.store.ingest(new).await?, IngestReceipt::Stored(id));
    Ok(harness.deliveries_of(id).await?[0].id)
}

/// Records `next` for `job`, then tells its queue, as a worker does.
async fn settle(harness: &mut Harness, job: DeliveryJob, next: NextStep) -> Result<()> {
    let record = AttemptRecord {
        delivery_id: job.delivery_id,
        endpoint: "hook".into(),
        attempted_at: now_millis(),
        duration: Duration::from_millis(1),
        status: Some(if next == NextStep::Delivered { 200 } else { 500 }),
        error: None,
        response_excerpt: Bytes::new(),
        next,
    };
    harness.store.record_attempt(record).await?;
    harness.queue("hook")?.finished(job, next);
    Ok(())
}

/// Every job of `hook` due now, handed out, as (delivery, its key), by delivery id.
fn due_keyed(harness: &mut Harness) -> Result<Vec<DeliveryJob>> {
    let queue = harness.queue("hook")?;
    let mut jobs: Vec<DeliveryJob> = std::iter::from_fn(|| queue.try_next()).collect();
    jobs.sort_unstable_by_key(|job| job.delivery_id);
    Ok(jobs)
}

fn ids(jobs: &[DeliveryJob]) -> Vec<(DeliveryId, Option<String>)> {
    jobs.iter().map(|job| (job.delivery_id, job.order_key.clone())).collect()
}

async fn ordered_deliveries_keep_their_key_and_wait_for_the_earlier_one(open: Open) -> Result<()> {
    let mut harness = Harness::new(open, &["hook"])?;
    let a1 = ingest_keyed(&harness, Some("a")).await?;
    let a2 = ingest_keyed(&harness, Some("a")).await?;
    let b3 = ingest_keyed(&harness, Some("b")).await?;
    let free = ingest_keyed(&harness, None).await?;
    // Tiny sleeps are not needed: every job is due at once.
    let jobs = due_keyed(&mut harness)?;
    let key = |text: &str| Some(text.to_owned());
    ensure_eq!(ids(&jobs), vec![(a1, key("a")), (b3, key("b")), (free, None)]);
    let mut jobs = jobs.into_iter();
    let (first, second, third) = (jobs.next(), jobs.next(), jobs.next());
    let (Some(first), Some(second), Some(third)) = (first, second, third) else {
        bail!("three jobs expected");
    };
    // A retry holds the key: `a2` still waits, and the retry comes back.
    settle(&mut harness, first, NextStep::RetryAt(now_millis())).await?;
    settle(&mut harness, second, NextStep::Delivered).await?;
    settle(&mut harness, third, NextStep::DeadLetter).await?;
    let retried = due_keyed(&mut harness)?;
    ensure_eq!(ids(&retried), vec![(a1, key("a"))]);
    // Its dead letter releases the next of its key.
    let Some(retried) = retried.into_iter().next() else { bail!("the retry") };
    settle(&mut harness, retried, NextStep::DeadLetter).await?;
    ensure_eq!(ids(&due_keyed(&mut harness)?), vec![(a2, key("a"))]);
    // After a crash, the key comes back from the store and still holds the line.
    let a5 = ingest_keyed(&harness, Some("a")).await?;
    let mut harness = harness.crash().await?;
    let again = due_keyed(&mut harness)?;
    ensure_eq!(ids(&again), vec![(a2, key("a"))]);
    let Some(a2_job) = again.into_iter().next() else { bail!("a2 again") };
    settle(&mut harness, a2_job, NextStep::Delivered).await?;
    ensure_eq!(ids(&due_keyed(&mut harness)?), vec![(a5, key("a"))]);
    Ok(())
}

fn audit_entry(at: u64, action: &str, resource: &str, outcome: &str) -> AuditEntry {
    AuditEntry {
        at,
        role: "admin".into(),
        credential: "server.admin_token".into(),
        remote: Some("127.0.0.1:5000".into()),
        action: action.into(),
        resource: resource.into(),
        outcome: outcome.into(),
        status: if outcome == "success" { 200 } else { 404 },
    }
}

async fn the_audit_log_lists_newest_first_with_filters_pages_and_prunes(open: Open) -> Result<()> {
    let harness = Harness::new(open, &[])?;
    let store = &harness.store;
    let entries = [
        audit_entry(1_000, "endpoint.create", "endpoint/ep_a", "success"),
        audit_entry(2_000, "endpoint.rotate", "endpoint/ep_a", "success"),
        audit_entry(3_000, "endpoint.delete", "endpoint/ep_b", "not_found"),
        audit_entry(4_000, "endpoint.delete", "endpoint/ep_a", "success"),
    ];
    let mut positions = Vec::new();
    for entry in &entries {
        positions.push(store.append_audit(entry.clone()).await?);
    }
    ensure!(positions.windows(2).all(|pair| pair[0] < pair[1]), "positions grow: {positions:?}");
    let all = store.list_audit(AuditQuery { limit: 10, ..AuditQuery::default() }).await?;
    let listed: Vec<&AuditEntry> = all.iter().map(|record| &record.entry).collect();
    let newest_first: Vec<&AuditEntry> = entries.iter().rev().collect();
    ensure_eq!(listed, newest_first, "every entry, newest first, as appended");
    let query = |action: Option<&str>, resource: Option<&str>, since, until| AuditQuery {
        action: action.map(str::to_owned),
        resource: resource.map(str::to_owned),
        since,
        until,
        before: None,
        limit: 10,
    };
    let at = |records: Vec<AuditRecord>| -> Vec<u64> {
        records.iter().map(|record| record.entry.at).collect()
    };
    let deletes = store.list_audit(query(Some("endpoint.delete"), None, None, None)).await?;
    ensure_eq!(at(deletes), vec![4_000, 3_000], "by action");
    let of_a = store.list_audit(query(None, Some("endpoint/ep_a"), None, None)).await?;
    ensure_eq!(at(of_a), vec![4_000, 2_000, 1_000], "by resource");
    let window = store.list_audit(query(None, None, Some(2_000), Some(4_000))).await?;
    ensure_eq!(at(window), vec![3_000, 2_000], "since is inclusive, until is not");
    let first_page = store.list_audit(AuditQuery { limit: 3, ..AuditQuery::default() }).await?;
    // An entry appended between pages never shifts the next one.
    store.append_audit(audit_entry(5_000, "config.reload", "config", "success")).await?;
    let before = first_page.last().map(|record| record.position);
    let second_page = store.list_audit(AuditQuery { before, limit: 3, ..AuditQuery::default() });
    ensure_eq!(at(first_page), vec![4_000, 3_000, 2_000], "the first page");
    ensure_eq!(at(second_page.await?), vec![1_000], "the second page");
    // Pruning goes oldest first, in batches, and keeps what is recent enough.
    ensure_eq!(store.prune_audit(3_500, 1).await?, 1, "one batch of one");
    ensure_eq!(store.prune_audit(3_500, 10).await?, 2, "the rest before the cutoff");
    ensure_eq!(store.prune_audit(3_500, 10).await?, 0, "nothing left to prune");
    let harness = harness.restart().await?;
    let kept = harness.store.list_audit(AuditQuery { limit: 10, ..AuditQuery::default() });
    ensure_eq!(at(kept.await?), vec![5_000, 4_000], "what was kept survives a restart");
    Ok(())
}

/// One test per check, for the backend that `$open` opens.
macro_rules! conformance_tests {
    ($open:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                if let Err(error) = run(stringify!($name), $open).await {
                    panic!("{error:#}");
                }
            }
        )+
    };
}

mod sqlite {
    use super::*;

    conformance_tests!(sqlite_open;
        ingest_stores_the_event_its_splits_and_its_deliveries,
        a_dedupe_key_is_claimed_for_its_window_per_source,
        a_refused_ingest_stores_nothing_of_its_fan_out,
        attempts_move_deliveries_and_are_listed_oldest_first,
        endpoints_are_put_replaced_listed_oldest_first_and_deleted,
        deleting_an_endpoint_dead_letters_its_deliveries_for_good,
        disabling_parks_pending_deliveries_and_new_ones_are_created_parked,
        enabling_resumes_parked_deliveries_and_queues_them,
        one_dead_or_delivered_delivery_can_be_sent_again,
        dead_letters_are_redriven_unless_their_endpoint_is_gone,
        events_routed_again_get_new_deliveries,
        retention_deletes_what_is_done_and_keeps_what_is_not,
        events_are_listed_newest_first_with_filters,
        event_pages_neither_overlap_nor_skip_while_events_arrive,
        deliveries_are_listed_newest_first_with_filters_and_pages,
        what_was_acknowledged_survives_a_crash_and_pending_work_is_queued_again,
        a_due_queue_hands_out_each_delivery_once_until_its_outcome,
        activity_counts_recent_events_and_attempts_newest_first,
        endpoint_activity_counts_buckets_and_the_p95_of_the_endpoints_asked,
        the_audit_log_lists_newest_first_with_filters_pages_and_prunes,
        ordered_deliveries_keep_their_key_and_wait_for_the_earlier_one,
    );

    #[test]
    fn every_check_runs_for_sqlite() {
        // The list above is written out so each check is its own test; it must not miss one.
        let source = include_str!("conformance.rs");
        for name in CHECKS {
            assert!(
                source.matches(&format!("        {name},\n")).count() == 1,
                "`{name}` is not run for SQLite"
            );
        }
    }
}

/// Every check against the JetStream backend on a real 3-server cluster (one cluster for all
/// checks: each check's directory names its own streams and buckets).
mod jetstream {
    use std::sync::{Arc, OnceLock};

    use super::*;
    use crate::store::jetstream::{JetStreamStore, ownership, test_cluster::NatsCluster};

    static URLS: OnceLock<Vec<String>> = OnceLock::new();
    /// Longer than a few lease ticks.
    const OWNERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

    fn open(directory: &Path) -> Result<Store, StoreError> {
        let urls = URLS.get().cloned().unwrap_or_default();
        // The same directory (a restart) opens the same streams.
        let digest = sha2::Sha256::digest(directory.to_string_lossy().as_bytes());
        let prefix = format!("c{}", hex::encode(&digest[..6]));
        let settings = crate::config::JetStreamStore {
            replicas: 3,
            prefix,
            monitor_urls: Vec::new(),
            snapshot_every: crate::config::DEFAULT_SNAPSHOT_EVERY,
            snapshot_entries: crate::config::DEFAULT_SNAPSHOT_ENTRIES,
        };
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let addresses: Vec<async_nats::ServerAddr> =
                    urls.iter().filter_map(|url| url.parse().ok()).collect();
                let client = async_nats::connect(addresses).await.map_err(|error| {
                    StoreError::Open { path: directory.to_path_buf(), source: Box::new(error) }
                })?;
                let metrics = crate::telemetry::Metrics::new();
                let backend = JetStreamStore::open(&settings, client, directory, metrics).await?;
                // The checks speak to a lone node, which owns every partition once its leases
                // are taken. `open` takes them at once only when every lease call succeeds;
                // one that fails (a busy machine) is retried at the next tick. Queues hand
                // out nothing before, so the checks start after.
                let owned = backend.own_every_partition(OWNERSHIP_TIMEOUT).await;
                if owned < usize::from(ownership::PARTITIONS) {
                    let partitions = ownership::PARTITIONS;
                    let source = format!(
                        "the lone node owns {owned} of {partitions} partitions after \
                         {OWNERSHIP_TIMEOUT:?}"
                    );
                    let path = directory.to_path_buf();
                    return Err(StoreError::Open { path, source: source.into() });
                }
                Ok(Store::from_backend(Arc::new(backend)))
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_check_passes_on_a_three_server_cluster() {
        let cluster = tokio::task::spawn_blocking(NatsCluster::start).await.unwrap().unwrap();
        URLS.set(cluster.urls()).unwrap();
        let failed = failures(open).await;
        let report: Vec<String> =
            failed.iter().map(|(name, error)| format!("{name}: {error:#}")).collect();
        assert!(report.is_empty(), "failed on JetStream:\n{}", report.join("\n"));
        // Each check ran on its own replicated log stream.
        let client = async_nats::connect(cluster.urls()[1].as_str()).await.unwrap();
        let context = async_nats::jetstream::new(client);
        let mut names = context.stream_names();
        let mut logs = Vec::new();
        while let Some(name) = futures_util::StreamExt::next(&mut names).await {
            let name = name.unwrap();
            let mut stream = context.get_stream(&name).await.unwrap();
            let info = stream.info().await.unwrap();
            if name.ends_with("_log") {
                logs.push((info.config.num_replicas, info.state.messages > 0));
            }
        }
        assert_eq!(logs.len(), CHECKS.len(), "{logs:?}");
        assert!(logs.iter().all(|&(replicas, used)| replicas == 3 && used), "{logs:?}");
        // A cluster name no node has used has no node bucket: no live node, not an error.
        let unused = ownership::live_nodes(&context, "unused").await;
        assert!(unused.as_ref().is_ok_and(Vec::is_empty), "{unused:?}");
        // The test servers fsync every write, and the start-up check reads it from them.
        let monitors: Vec<url::Url> =
            cluster.monitor_urls().iter().map(|url| url.parse().unwrap()).collect();
        crate::store::jetstream::durability::check_servers_sync_always(&monitors).await.unwrap();
        drop(cluster);
    }
}

/// A backend that breaks one rule: it forgets to disable an endpoint (answers as if nothing
/// was pending), and delegates everything else to SQLite. The suite must reject it.
mod broken {
    use std::sync::Arc;

    use super::*;

    struct ForgetsToDisable(Store);

    impl Backend for ForgetsToDisable {
        fn ingest(&self, event: NewEvent) -> Answer<'_, IngestReceipt> {
            self.0.ingest(event)
        }
        fn record_attempt(&self, record: AttemptRecord) -> Answer<'_, ()> {
            self.0.record_attempt(record)
        }
        fn replay(&self, selection: ReplaySelection) -> Answer<'_, usize> {
            self.0.replay(selection)
        }
        fn prune(&self, retention: Retention) -> Answer<'_, PruneReport> {
            self.0.prune(retention)
        }
        fn put_endpoint(&self, endpoint: StoredEndpoint) -> Answer<'_, ()> {
            self.0.put_endpoint(endpoint)
        }
        fn scrub(&self) -> Answer<'_, ()> {
            self.0.scrub()
        }
        fn delete_endpoint(&self, id: String, reason: String) -> Answer<'_, usize> {
            self.0.delete_endpoint(id, reason)
        }
        fn set_endpoint_enabled(
            &self,
            endpoint: String,
            enabled: bool,
            reason: String,
        ) -> Answer<'_, usize> {
            if enabled {
                return self.0.set_endpoint_enabled(endpoint, enabled, reason);
            }
            // The broken rule: a disable is acknowledged and does nothing.
            Box::pin(async { Ok(0) })
        }
        fn append_audit(&self, entry: AuditEntry) -> Answer<'_, LogPosition> {
            self.0.append_audit(entry)
        }
        fn prune_audit(&self, before: u64, batch: usize) -> Answer<'_, usize> {
            self.0.prune_audit(before, batch)
        }
        fn list_audit(&self, query: AuditQuery) -> Answer<'_, Vec<AuditRecord>> {
            self.0.list_audit(query)
        }
        fn event(&self, id: EventId) -> Answer<'_, Option<Event>> {
            self.0.event(id)
        }
        fn list_events(&self, query: EventQuery) -> Answer<'_, Vec<EventSummary>> {
            self.0.list_events(query)
        }
        fn events_received_between(
            &self,
            since: u64,
            until: u64,
            limit: u32,
        ) -> Answer<'_, Vec<Event>> {
            self.0.events_received_between(since, until, limit)
        }
        fn count_events(&self) -> Answer<'_, u64> {
            self.0.count_events()
        }
        fn activity_since(&self, since: u64, limit: u32) -> Answer<'_, Activity> {
            self.0.activity_since(since, limit)
        }
        fn endpoint_activity(
            &self,
            endpoints: Vec<String>,
            since: u64,
            bucket_millis: u64,
        ) -> Answer<'_, Vec<EndpointActivity>> {
            self.0.endpoint_activity(endpoints, since, bucket_millis)
        }
        fn list_deliveries(&self, query: DeliveryQuery) -> Answer<'_, Vec<DeliverySummary>> {
            self.0.list_deliveries(query)
        }
        fn delivery(&self, id: DeliveryId) -> Answer<'_, Option<DeliverySummary>> {
            self.0.delivery(id)
        }
        fn count_deliveries(
            &self,
            state: DeliveryState,
            endpoint: Option<String>,
        ) -> Answer<'_, u64> {
            self.0.count_deliveries(state, endpoint)
        }
        fn attempts(&self, id: DeliveryId) -> Answer<'_, Vec<AttemptRow>> {
            self.0.attempts(id)
        }
        fn payload(&self, id: DeliveryId) -> Answer<'_, Option<Payload>> {
            self.0.payload(id)
        }
        fn endpoints(&self) -> Answer<'_, Vec<StoredEndpoint>> {
            self.0.endpoints()
        }
        fn endpoint(&self, id: String) -> Answer<'_, Option<StoredEndpoint>> {
            self.0.endpoint(id)
        }
        fn disabled_endpoints(&self) -> Answer<'_, DisabledEndpoints> {
            self.0.disabled_endpoints()
        }
        fn due_queue(&self, endpoint: &str) -> Box<dyn DueQueue> {
            self.0.due_queue(endpoint)
        }

        fn shutdown(&self) {
            self.0.shutdown()
        }
    }

    fn open(directory: &Path) -> Result<Store, StoreError> {
        let store = super::sqlite_open(directory)?;
        Ok(Store::from_backend(Arc::new(ForgetsToDisable(store))))
    }

    #[tokio::test]
    async fn the_suite_rejects_a_backend_that_forgets_to_disable_an_endpoint() {
        let failed = failures(open).await;
        let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
        // Every check that disables an endpoint fails; those that never do pass.
        for name in [
            "disabling_parks_pending_deliveries_and_new_ones_are_created_parked",
            "one_dead_or_delivered_delivery_can_be_sent_again",
            "dead_letters_are_redriven_unless_their_endpoint_is_gone",
        ] {
            assert!(names.contains(&name), "`{name}` passed on a broken backend: {names:?}");
        }
        for name in [
            "events_are_listed_newest_first_with_filters",
            "a_refused_ingest_stores_nothing_of_its_fan_out",
        ] {
            assert!(!names.contains(&name), "`{name}` failed for another reason: {failed:?}");
        }
        let (_, why) = failed.iter().find(|(name, _)| name.starts_with("disabling")).unwrap();
        assert!(format!("{why:#}").contains("!="), "it says what it saw: {why:#}");
    }
}

fn sqlite_open(directory: &Path) -> Result<Store, StoreError> {
    Store::open(directory, crate::config::Durability::Os, crate::telemetry::Metrics::new())
}
