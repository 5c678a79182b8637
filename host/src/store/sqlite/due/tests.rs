//! A due-queue that keeps only its next jobs in memory, on a real database: what it hands
//! out, and when, must not change.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;

use super::SqliteDueQueue;
use crate::config::Durability;
use crate::event::{Event, EventId, now_millis};
use crate::store::sqlite::SqliteStore;
use crate::store::{
    AttemptRecord, Backend, DeliveryJob, DeliveryState, DueQueue, IngestReceipt, NewDelivery,
    NewEvent, NextStep, Payload,
};
use crate::telemetry::Metrics;

fn open(directory: &Path, kept_jobs: usize) -> SqliteStore {
    SqliteStore::open_keeping(directory, Durability::Os, Metrics::new(), Some(kept_jobs)).unwrap()
}

/// Stores `count` events, each with one delivery to `hook`, ordered by `key` when given.
async fn ingest(store: &SqliteStore, count: usize, key: Option<&str>) {
    for _ in 0..count {
        ingest_one(store, key).await;
    }
}

async fn ingest_one(store: &SqliteStore, key: Option<&str>) {
    let id = EventId::generate();
    let body = Bytes::from_static(b"{}");
    let event = Event {
        id,
        source: "app".into(),
        event_type: "test".into(),
        subject: None,
        headers: Vec::new(),
        body: body.clone(),
        received_at: now_millis(),
        dedupe_key: None,
        metadata: Vec::new(),
    };
    let delivery = NewDelivery {
        endpoint: "hook".into(),
        event: id,
        payload: Payload { body, content_type: None, subject: None },
        dead_letter: None,
        order_key: key.map(str::to_owned),
    };
    let new =
        NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] };
    assert_eq!(store.ingest(new).await.unwrap(), IngestReceipt::Stored(id));
}

/// Records `next` for `job`, then tells the queue, as a worker does.
async fn settle(store: &SqliteStore, queue: &mut SqliteDueQueue, job: DeliveryJob, next: NextStep) {
    let record = AttemptRecord {
        delivery_id: job.delivery_id,
        endpoint: "hook".into(),
        attempted_at: now_millis(),
        duration: Duration::from_millis(1),
        status: Some(if next == NextStep::Delivered { 200 } else { 503 }),
        error: None,
        response_excerpt: Bytes::new(),
        next,
    };
    store.record_attempt(record).await.unwrap();
    queue.finished(job, next);
}

async fn next(queue: &mut SqliteDueQueue) -> DeliveryJob {
    tokio::time::timeout(Duration::from_secs(5), queue.next())
        .await
        .expect("a due job is handed out")
        .expect("the queue is open")
}

/// Takes `count` jobs one at a time, delivering each, and answers them in the order given.
async fn deliver(
    store: &SqliteStore,
    queue: &mut SqliteDueQueue,
    count: usize,
    kept_jobs: usize,
) -> Vec<DeliveryJob> {
    let mut handed_out = Vec::new();
    for _ in 0..count {
        let job = next(queue).await;
        assert!(queue.in_memory() <= kept_jobs, "{} jobs in memory", queue.in_memory());
        handed_out.push(job.clone());
        settle(store, queue, job, NextStep::Delivered).await;
    }
    handed_out
}

fn assert_each_once_in_order(jobs: &[DeliveryJob]) {
    let ids: Vec<u64> = jobs.iter().map(|job| job.delivery_id.get()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "in ingest order: {ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "once each");
}

async fn pending(store: &SqliteStore) -> u64 {
    store.count_deliveries(DeliveryState::Pending, None).await.unwrap()
}

#[tokio::test]
async fn an_endpoint_that_takes_nothing_holds_a_bounded_queue_and_then_gets_every_delivery_once() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path(), 8);
    let mut queue = store.dispatch.claim("hook");
    // Its worker asks for nothing (a breaker open): the writer keeps handing jobs over.
    ingest(&store, 40, None).await;
    assert_eq!(queue.in_memory(), 8, "only the first eight are kept");
    assert_eq!(queue.len(), 40, "the rest are counted as queued");
    let handed_out = deliver(&store, &mut queue, 40, 8).await;
    assert_each_once_in_order(&handed_out);
    assert!(queue.try_next().is_none());
    assert_eq!(queue.len(), 0);
    assert_eq!(pending(&store).await, 0);
}

#[tokio::test]
async fn a_backlog_past_the_bound_at_open_is_read_back_in_order() {
    let directory = tempfile::tempdir().unwrap();
    {
        let store = open(directory.path(), 8);
        store.expect_unclaimed_jobs();
        ingest(&store, 30, None).await;
        tokio::task::spawn_blocking(move || store.shutdown()).await.unwrap();
    }
    let store = open(directory.path(), 8);
    let mut queue = store.dispatch.claim("hook");
    assert_eq!(queue.in_memory(), 8);
    assert_eq!(queue.len(), 30);
    let handed_out = deliver(&store, &mut queue, 30, 8).await;
    assert_each_once_in_order(&handed_out);
    assert_eq!(pending(&store).await, 0);
}

#[tokio::test]
async fn retries_waiting_far_off_do_not_hold_back_new_deliveries_left_in_the_database() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path(), 4);
    let mut queue = store.dispatch.claim("hook");
    ingest(&store, 4, None).await;
    // Four attempts fail: their retries, an hour away, fill what the queue keeps.
    let later = now_millis() + 3_600_000;
    for _ in 0..4 {
        let job = next(&mut queue).await;
        settle(&store, &mut queue, job, NextStep::RetryAt(later)).await;
    }
    assert_eq!(queue.in_memory(), 4);
    // New deliveries arrive past the bound: they wait in the database, yet are due first.
    ingest(&store, 3, None).await;
    assert_eq!(queue.in_memory(), 4);
    let fresh = deliver(&store, &mut queue, 3, 4).await;
    assert_each_once_in_order(&fresh);
    assert!(fresh.iter().all(|job| job.attempts == 0), "the new ones, not the retries");
    // The retries are not due: none is handed out, none is lost.
    assert!(queue.try_next().is_none());
    assert_eq!(pending(&store).await, 4);
    assert_eq!(queue.len(), 4);
}

#[tokio::test]
async fn ordered_deliveries_are_all_kept_and_go_one_at_a_time_in_order() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path(), 2);
    let mut queue = store.dispatch.claim("hook");
    ingest(&store, 5, Some("a")).await;
    // Their key's line needs every one of them: none is left in the database.
    assert_eq!(queue.in_memory(), 5);
    let mut handed_out = Vec::new();
    for _ in 0..5 {
        let job = next(&mut queue).await;
        assert!(queue.try_next().is_none(), "the next one waits for this one's outcome");
        handed_out.push(job.clone());
        settle(&store, &mut queue, job, NextStep::Delivered).await;
    }
    assert_each_once_in_order(&handed_out);
}

#[tokio::test]
async fn an_endpoint_disabled_and_enabled_while_its_backlog_waits_in_the_database_gets_it_all_once()
{
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path(), 8);
    let mut queue = store.dispatch.claim("hook");
    ingest(&store, 30, None).await;
    // Disabled: every pending delivery is parked, those in memory and those in the database.
    assert_eq!(store.set_endpoint_enabled("hook".into(), false, "test".into()).await.unwrap(), 30);
    queue.pause();
    assert_eq!(queue.len(), 0, "nothing waits for a read back");
    // Enabled: the store hands them over again, and the queue keeps only the first eight.
    assert_eq!(store.set_endpoint_enabled("hook".into(), true, String::new()).await.unwrap(), 30);
    queue.resume();
    assert!(queue.in_memory() <= 8);
    let handed_out = deliver(&store, &mut queue, 30, 8).await;
    assert_each_once_in_order(&handed_out);
    assert_eq!(pending(&store).await, 0);
}

#[tokio::test]
async fn a_worker_that_gives_up_waiting_mid_read_back_loses_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let store = open(directory.path(), 8);
    let mut queue = store.dispatch.claim("hook");
    ingest(&store, 40, None).await;
    // A worker's `select!` drops the queue's future whenever another branch wins. Jobs are
    // taken as fast as they come, so the queue runs dry while its read back is under way, and
    // every wait for it is cut short at once.
    let mut handed_out = Vec::new();
    let mut cut_short = 0;
    while handed_out.len() < 40 {
        // Polled once, then dropped if it is not ready.
        match queue.next().now_or_never() {
            Some(job) => handed_out.push(job.expect("the queue is open")),
            None => {
                cut_short += 1;
                assert!(cut_short < 100_000, "{} of 40 handed out", handed_out.len());
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
        }
    }
    assert!(cut_short > 0, "some waits were cut short");
    assert_each_once_in_order(&handed_out);
    for job in handed_out {
        settle(&store, &mut queue, job, NextStep::Delivered).await;
    }
    assert!(queue.try_next().is_none());
    assert_eq!(pending(&store).await, 0);
}
