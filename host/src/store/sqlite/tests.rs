//! Tests of what only the SQLite backend has: group commit, the read pool, the body budget,
//! the WAL's bound, body-row counts, and the schema's migrations and query plans. What every
//! backend must do is in `store/conformance.rs`.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, params};
use sha2::Digest;

use super::batch::{Message, Queued, Request, Waiter, WriteOp, WriterState, commit_batch};
use super::due::Dispatch;
use super::{code, ops, schema};
use crate::event::{Event, EventId};
use crate::store::{
    Backend, DeliveryState, DueQueue, IngestReceipt, NewDelivery, NewEvent, Payload, StoreError,
};
use crate::telemetry::Metrics;

fn new_event(id: EventId) -> NewEvent {
    let body = Bytes::from_static(br#"{"type":"test"}"#);
    let event = Event {
        id,
        source: "app".into(),
        event_type: "test".into(),
        subject: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.clone(),
        received_at: 1,
        dedupe_key: None,
        metadata: Vec::new(),
    };
    let payload = Payload { body, content_type: None, subject: None };
    let delivery = NewDelivery {
        endpoint: "hook".into(),
        event: id,
        payload,
        dead_letter: None,
        order_key: None,
    };
    NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] }
}

/// A migrated in-memory database, a writer state on it, and the queue of endpoint `hook`.
fn writer() -> (Connection, WriterState, Box<dyn DueQueue>) {
    let mut connection = Connection::open_in_memory().unwrap();
    schema::migrate(&mut connection).unwrap();
    let dispatch = Arc::new(Dispatch::new(None));
    let queue = Box::new(dispatch.claim("hook"));
    let state = WriterState {
        metrics: Metrics::new(),
        dispatch,
        disabled: HashSet::new(),
        deleted: HashSet::new(),
        now: 0,
        jobs: Vec::new(),
        stored_events: 0,
        write_error: None,
    };
    (connection, state, queue)
}

/// `op` as a queued request, and where its answer arrives.
fn request<W: WriteOp>(op: W) -> (Box<dyn Queued>, Waiter<W::Output>) {
    match Request::message(op) {
        (Message::Write(request), answer) => (request, answer),
        (Message::Shutdown, _) => unreachable!("a request is a write"),
    }
}

fn count(connection: &Connection, table: &str) -> i64 {
    connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).unwrap()
}

fn state_of_event(connection: &Connection, id: EventId) -> i64 {
    connection
        .query_row(
            "SELECT d.state FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.id = ?1",
            params![id.to_bytes()],
            |row| row.get(0),
        )
        .unwrap()
}

fn queued(queue: &mut Box<dyn DueQueue>) -> Vec<EventId> {
    std::iter::from_fn(|| queue.try_next()).map(|job| job.event_id).collect()
}

#[test]
fn a_failing_request_fails_alone_and_the_rest_of_its_batch_commits() {
    let (mut connection, mut state, mut queue) = writer();
    let (first, second) = (EventId::generate(), EventId::generate());
    let mut answers = Vec::new();
    let mut batch = Vec::new();
    // The middle request reuses the first one's event id: the store refuses it.
    for id in [first, first, second] {
        let (request, answer) = request(ops::Ingest(new_event(id)));
        batch.push(request);
        answers.push(answer);
    }
    commit_batch(&mut connection, &mut batch, &mut state);
    let answers: Vec<_> =
        answers.into_iter().map(|mut answer| answer.try_recv().unwrap()).collect();
    assert!(matches!(answers[0], Ok(IngestReceipt::Stored(id)) if id == first));
    assert!(matches!(answers[1], Err(StoreError::Write(_))), "{:?}", answers[1]);
    assert!(matches!(answers[2], Ok(IngestReceipt::Stored(id)) if id == second));
    assert_eq!(count(&connection, "events"), 2);
    assert_eq!(count(&connection, "deliveries"), 2);
    // One body per stored event (not shared across events); every delivery is queued once,
    // the refused one's never.
    assert_eq!(count(&connection, "payloads"), 2);
    assert_eq!(queued(&mut queue), [first, second]);
}

#[test]
fn a_disable_in_a_batch_that_starts_over_is_applied_once_and_parks_the_whole_batch() {
    let (mut connection, mut state, mut queue) = writer();
    let (first, second) = (EventId::generate(), EventId::generate());
    let (mut batch, mut answers) = (Vec::new(), Vec::new());
    let (request_one, answer) = request(ops::Ingest(new_event(first)));
    batch.push(request_one);
    answers.push(answer);
    let disable = ops::SetEndpointEnabled {
        endpoint: "hook".into(),
        enabled: false,
        reason: "paused".into(),
    };
    let (disable, mut disabled) = request(disable);
    batch.push(disable);
    // Refused (the event id is taken): the batch is applied again, one savepoint each.
    for id in [first, second] {
        let (request, answer) = request(ops::Ingest(new_event(id)));
        batch.push(request);
        answers.push(answer);
    }
    commit_batch(&mut connection, &mut batch, &mut state);
    assert_eq!(disabled.try_recv().unwrap().unwrap(), 1, "the first delivery was parked");
    let answers: Vec<_> =
        answers.into_iter().map(|mut answer| answer.try_recv().unwrap()).collect();
    assert!(matches!(answers[1], Err(StoreError::Write(_))), "{:?}", answers[1]);
    assert_eq!(state.disabled, HashSet::from(["hook".to_owned()]));
    let parked = code(DeliveryState::Parked);
    assert_eq!(state_of_event(&connection, first), parked);
    assert_eq!(state_of_event(&connection, second), parked);
    // Nothing of a parked endpoint is queued, not even the delivery made before the disable
    // in the same commit.
    assert!(queued(&mut queue).is_empty());
}

#[test]
fn a_delivery_disabled_and_enabled_again_within_one_commit_is_queued_once() {
    let (mut connection, mut state, mut queue) = writer();
    let id = EventId::generate();
    let (ingest, _ingested) = request(ops::Ingest(new_event(id)));
    let mut batch = vec![ingest];
    let mut answers = Vec::new();
    for enabled in [false, true] {
        let op =
            ops::SetEndpointEnabled { endpoint: "hook".into(), enabled, reason: String::new() };
        let (request, answer) = request(op);
        batch.push(request);
        answers.push(answer);
    }
    commit_batch(&mut connection, &mut batch, &mut state);
    let moved: Vec<usize> =
        answers.into_iter().map(|mut answer| answer.try_recv().unwrap().unwrap()).collect();
    assert_eq!(moved, [1, 1], "parked, then resumed");
    assert_eq!(state_of_event(&connection, id), code(DeliveryState::Pending));
    assert_eq!(queued(&mut queue), [id]);
    assert!(state.disabled.is_empty());
}

#[tokio::test]
async fn a_pooled_read_connection_is_reused_and_sees_every_later_commit() {
    let directory = tempfile::tempdir().unwrap();
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    let first = EventId::generate();
    store.ingest(new_event(first)).await.unwrap();
    assert!(store.event(first).await.unwrap().is_some());
    assert_eq!(store.idle_readers(), 1, "given back");
    // Reused after more commits: it reads them, no stale snapshot.
    let second = EventId::generate();
    store.ingest(new_event(second)).await.unwrap();
    assert!(store.event(second).await.unwrap().is_some());
    assert_eq!(store.idle_readers(), 1, "the same one, reused");
    // Two at once: the second is a new connection; both go back.
    let (one, two) = tokio::join!(store.count_events(), store.count_events());
    assert_eq!((one.unwrap(), two.unwrap()), (2, 2));
    assert!((1..=2).contains(&store.idle_readers()));
}

#[tokio::test]
async fn a_scrub_leaves_no_replaced_record_in_the_files() {
    let directory = tempfile::tempdir().unwrap();
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    let endpoint = |spec: &str| crate::store::StoredEndpoint {
        id: "ep_1".into(),
        kind: "endpoint".into(),
        spec: spec.into(),
        created_at: 1,
        updated_at: 1,
    };
    let files_hold = |needle: &[u8]| {
        std::fs::read_dir(directory.path()).unwrap().any(|entry| {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            bytes.windows(needle.len()).any(|window| window == needle)
        })
    };
    store.put_endpoint(endpoint("in-clear-0123456789")).await.unwrap();
    store.put_endpoint(endpoint("sealed-abcdefghij")).await.unwrap();
    assert!(files_hold(b"in-clear-0123456789"), "the replaced record is still in the files");
    store.scrub().await.unwrap();
    assert!(!files_hold(b"in-clear-0123456789"));
    assert!(files_hold(b"sealed-abcdefghij"));
    assert_eq!(store.endpoint("ep_1".into()).await.unwrap().unwrap().spec, "sealed-abcdefghij");
}

/// A job of `endpoint` due at once, carrying `body`.
fn job_with_body(id: u64, endpoint: &str, body: &Bytes) -> crate::store::DeliveryJob {
    crate::store::DeliveryJob {
        delivery_id: crate::store::DeliveryId::new(id),
        event_id: EventId::generate(),
        endpoint: endpoint.into(),
        attempts: 0,
        due_at: 0,
        payload: Some(Payload { body: body.clone(), content_type: None, subject: None }),
        order_key: None,
    }
}

#[test]
fn a_shared_body_is_charged_whole_to_the_only_queue_that_takes_it() {
    let dispatch = Arc::new(Dispatch::new(None));
    dispatch.expect_unclaimed();
    let mut first = dispatch.claim("first");
    let body = Bytes::from(vec![b'x'; 1000]);
    // One body for three deliveries; the endpoint of the other two has no queue here.
    let mut jobs = vec![
        job_with_body(1, "first", &body),
        job_with_body(2, "elsewhere", &body),
        job_with_body(3, "elsewhere", &body),
    ];
    dispatch.queue_all(&mut jobs);
    assert_eq!(dispatch.kept_body_bytes(), body.len());
    assert!(first.try_next().is_some_and(|job| job.payload.is_some()));
    assert_eq!(dispatch.kept_body_bytes(), 0);
}

#[test]
fn queued_deliveries_keep_their_bodies_within_one_budget_for_every_queue_and_give_it_back() {
    let dispatch = Arc::new(Dispatch::new(None));
    let mut first = dispatch.claim("first");
    let mut second = dispatch.claim("second");
    let budget = super::due::KEPT_BODY_BYTES;
    // A fan-out: each event's body goes to both endpoints, one allocation for the two, so each
    // of its deliveries is charged half of it.
    let mut jobs = Vec::new();
    for id in 0..10 {
        let body = Bytes::from(vec![b'x'; budget / 8]);
        jobs.push(job_with_body(2 * id + 1, "first", &body));
        jobs.push(job_with_body(2 * id + 2, "second", &body));
    }
    dispatch.queue_all(&mut jobs);
    // The budget is taken as the jobs are handed over, in their order, whether or not their
    // queue takes them in yet (a worker whose breaker is open asks for none): the first eight
    // events fitted, and the two past the budget are read from the store when due.
    assert_eq!(dispatch.kept_body_bytes(), budget);
    let taken_first: Vec<_> = std::iter::from_fn(|| first.try_next()).collect();
    let taken_second: Vec<_> = std::iter::from_fn(|| second.try_next()).collect();
    assert_eq!((taken_first.len(), taken_second.len()), (10, 10));
    let kept = |jobs: &[crate::store::DeliveryJob]| {
        jobs.iter().filter(|job| job.payload.is_some()).count()
    };
    assert_eq!(kept(&taken_first), 8);
    assert_eq!(kept(&taken_second), 8);
    let body = Bytes::from(vec![b'x'; budget / 8]);
    // Once taken, a job's body no longer counts: a new one keeps its body again.
    assert_eq!(dispatch.kept_body_bytes(), 0);
    let mut more = vec![job_with_body(100, "first", &body)];
    dispatch.queue_all(&mut more);
    assert!(first.try_next().is_some_and(|job| job.payload.is_some()));
    // Queued jobs give their budget back when their queue is paused or dropped.
    let mut queued = vec![job_with_body(101, "first", &body), job_with_body(102, "second", &body)];
    dispatch.queue_all(&mut queued);
    first.pause();
    second.resume();
    assert_eq!(second.len(), 1, "handed over: counted while still in its feed");
    assert!(second.try_next().is_some_and(|job| job.payload.is_some()));
    second.finished(job_with_body(102, "second", &body), crate::store::NextStep::Delivered);
    drop(second);
    assert_eq!(dispatch.kept_body_bytes(), 0);
    // So do jobs handed over that their queue never took in.
    let mut untaken = vec![job_with_body(103, "first", &body)];
    dispatch.queue_all(&mut untaken);
    assert_eq!(dispatch.kept_body_bytes(), body.len());
    drop(first);
    assert_eq!(dispatch.kept_body_bytes(), 0);
}

#[tokio::test]
async fn the_wal_file_stays_bounded_through_many_commits_and_loses_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    store.expect_unclaimed_jobs();
    let wal = directory.path().join(format!("{}-wal", super::DATABASE_FILE));
    let page_size: i64 = Connection::open(directory.path().join(super::DATABASE_FILE))
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    let page_size = u64::try_from(page_size).unwrap();
    // Each commit adds a frame (a page and its 24-byte header) per page it changes.
    let padding = "x".repeat(8 * 1024);
    let events = 5000;
    let mut largest = 0;
    for number in 0..events {
        // Each event stores its own body row; the padding makes every commit write several
        // pages.
        let body = Bytes::from(format!(r#"{{"number":{number},"padding":"{padding}"}}"#));
        let mut event = new_event(EventId::generate());
        event.event.body = body.clone();
        event.deliveries[0].payload.body = body;
        store.ingest(event).await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).map(|file| file.len()).unwrap_or(0));
    }
    // Twice the pages past which a commit checkpoints, and the WAL's header.
    let pages = u64::try_from(super::WAL_CHECKPOINT_BYTES).unwrap() / page_size;
    let bound = 2 * pages * (page_size + 24) + 32;
    // Everything stored went through the WAL: far more than it ever held at once.
    let stored = std::fs::metadata(directory.path().join(super::DATABASE_FILE)).unwrap().len();
    assert!(stored > 2 * bound, "{stored} bytes stored: the test writes too little");
    assert!(largest > 0, "the store writes through its WAL");
    assert!(largest <= bound, "the WAL reached {largest} bytes, more than {bound}");
    assert_eq!(store.count_events().await.unwrap(), events);
}

#[test]
fn a_replayed_event_sends_its_stored_body_without_storing_it_again() {
    let (mut connection, mut state, _queue) = writer();
    let id = EventId::generate();
    let new = new_event(id);
    let replayed = crate::store::ReplayedEvent {
        event: id,
        derived: Vec::new(),
        deliveries: new.deliveries.clone(),
    };
    let (ingest, _ingested) = request(ops::Ingest(new));
    commit_batch(&mut connection, &mut vec![ingest], &mut state);
    let selection = crate::store::ReplaySelection::Events(vec![replayed]);
    let (replay, mut replayed) = request(ops::Replay(selection));
    commit_batch(&mut connection, &mut vec![replay], &mut state);
    assert_eq!(replayed.try_recv().unwrap().unwrap(), 1);
    assert_eq!(count(&connection, "deliveries"), 2);
    assert_eq!(count(&connection, "payloads"), 1, "the event's body row, shared");
    assert_eq!(refs(&connection), [3], "the event and both deliveries");
}

/// Each body row's count of the rows that use it, in row order.
fn refs(connection: &Connection) -> Vec<i64> {
    connection
        .prepare("SELECT refs FROM payloads ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A delivery that sends a sibling split event's body uses that event's row: the row stays
/// when retention deletes that event, and goes with the last row that uses it. An event that
/// was split stays while one of its splits does.
#[test]
fn retention_deletes_a_body_with_the_last_row_that_uses_it() {
    let (mut connection, mut state, _queue) = writer();
    let mut new = new_event(EventId::generate());
    let split = |body: &'static [u8]| {
        let mut event = new.event.clone();
        event.id = EventId::generate();
        event.body = Bytes::from_static(body);
        event
    };
    let (first, second) = (split(br#"{"item":1}"#), split(br#"{"item":1}"#));
    new.deliveries[0].event = second.id;
    new.deliveries[0].payload.body = second.body.clone();
    new.derived = vec![first, second];
    let (ingest, mut ingested) = request(ops::Ingest(new));
    commit_batch(&mut connection, &mut vec![ingest], &mut state);
    assert!(matches!(ingested.try_recv().unwrap(), Ok(IngestReceipt::Stored(_))));
    assert_eq!(refs(&connection), [1, 2, 1], "the second split's delivery uses the first's row");

    let retention = crate::store::Retention { delivered_before: 500, dead_before: 500, batch: 10 };
    let prune = |connection: &mut Connection, state: &mut WriterState| {
        let (prune, mut pruned) = request(ops::Prune(retention));
        commit_batch(connection, &mut vec![prune], state);
        pruned.try_recv().unwrap().unwrap().events
    };
    assert_eq!(prune(&mut connection, &mut state), 1, "the first split, with no delivery");
    assert_eq!(refs(&connection), [1, 1, 1], "its body row stays for the second's delivery");
    assert_eq!(count(&connection, "events"), 2, "the origin stays with its second split");

    connection
        .execute("UPDATE deliveries SET state = ?1", [code(DeliveryState::Delivered)])
        .unwrap();
    assert_eq!(prune(&mut connection, &mut state), 1, "the second split, delivered");
    assert_eq!(refs(&connection), [1], "no row uses either split's body");
    assert_eq!(prune(&mut connection, &mut state), 1, "then the origin");
    assert_eq!(count(&connection, "payloads"), 0);
}

fn page_size(path: &std::path::Path) -> i64 {
    let connection = Connection::open(path).unwrap();
    connection.pragma_query_value(None, "page_size", |row| row.get(0)).unwrap()
}

#[tokio::test]
async fn a_new_database_takes_the_larger_page_size() {
    let directory = tempfile::tempdir().unwrap();
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    assert_eq!(store.count_events().await.unwrap(), 0);
    assert_eq!(page_size(&directory.path().join(super::DATABASE_FILE)), super::PAGE_SIZE);
}

/// A database written by schema version 7 (bodies shared across events by their SHA-256)
/// opens under this build with every event, body, delivery and attempt readable, keeps its
/// page size, and takes new events.
#[tokio::test]
async fn a_version_7_database_keeps_its_events_bodies_and_deliveries_through_migration() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join(super::DATABASE_FILE);
    let (first, second) = (EventId::generate(), EventId::generate());
    let shared = br#"{"order":1}"#;
    let transformed = br#"{"order":"one"}"#;
    {
        let mut connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        schema::migrate_to(&mut connection, 7).unwrap();
        connection
            .execute_batch(&format!(
                "INSERT INTO payloads (id, hash, body) VALUES \
                   (1, x'{hash_shared}', x'{body_shared}'), \
                   (2, x'{hash_transformed}', x'{body_transformed}'); \
                 INSERT INTO events (seq, id, source, type, headers, payload_id, received_at) \
                   VALUES (1, x'{first}', 'shop', 'order.created', '[]', 1, 1000), \
                          (2, x'{second}', 'shop', 'order.created', '[]', 1, 2000); \
                 INSERT INTO deliveries (id, event_seq, endpoint, payload_id, state, attempts, \
                   next_attempt_at, content_type) VALUES \
                   (1, 1, 'billing', 1, {delivered}, 1, 1000, NULL), \
                   (2, 2, 'billing', 2, {pending}, 0, 2000, 'application/json'); \
                 INSERT INTO attempts (delivery_id, attempted_at, duration_us, status, response) \
                   VALUES (1, 1500, 250, 200, x'6f6b');",
                hash_shared = hex(&sha2::Sha256::digest(shared)),
                body_shared = hex(shared),
                hash_transformed = hex(&sha2::Sha256::digest(transformed)),
                body_transformed = hex(transformed),
                first = hex(&first.to_bytes()),
                second = hex(&second.to_bytes()),
                delivered = code(DeliveryState::Delivered),
                pending = code(DeliveryState::Pending),
            ))
            .unwrap();
    }
    assert_eq!(page_size(&path), 4096, "SQLite's default, as earlier builds made it");

    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    for id in [first, second] {
        let event = store.event(id).await.unwrap().expect("the event survives the migration");
        assert_eq!(event.body.as_ref(), shared);
    }
    let delivered = store.payload(crate::store::DeliveryId::new(1)).await.unwrap().unwrap();
    assert_eq!(delivered.body.as_ref(), shared);
    let pending = store.payload(crate::store::DeliveryId::new(2)).await.unwrap().unwrap();
    assert_eq!(pending.body.as_ref(), transformed);
    assert_eq!(pending.content_type.as_deref(), Some("application/json"));
    let attempts = store.attempts(crate::store::DeliveryId::new(1)).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        (attempts[0].status, attempts[0].response_excerpt.as_slice()),
        (Some(200), &b"ok"[..])
    );
    assert_eq!(store.count_deliveries(DeliveryState::Pending, None).await.unwrap(), 1);

    // A new event with a body equal to an old one gets a row of its own, after the old ones.
    let third = EventId::generate();
    let mut new = new_event(third);
    new.event.body = Bytes::from_static(shared);
    new.deliveries[0].payload.body = new.event.body.clone();
    assert!(matches!(store.ingest(new).await.unwrap(), IngestReceipt::Stored(id) if id == third));
    assert_eq!(store.event(third).await.unwrap().unwrap().body.as_ref(), shared);

    let connection = Connection::open(&path).unwrap();
    let version: i64 =
        connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
    assert_eq!(version as usize, schema::CURRENT_VERSION);
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('payloads') ORDER BY cid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(columns, ["id", "body", "refs"]);
    assert_eq!(count(&connection, "payloads"), 3);
    // Counted by the migration: two events and a delivery; a delivery; the new event and its
    // delivery.
    assert_eq!(refs(&connection), [3, 1, 2]);
    let newest: i64 = connection
        .query_row(
            "SELECT payload_id FROM events WHERE id = ?1",
            params![third.to_bytes()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(newest, 3);
    drop(connection);
    assert_eq!(page_size(&path), 4096, "an existing database keeps its page size");
}

/// Migration 10 rewrites every body row: opening a store of version 9 leaves its bodies
/// counted and its WAL file empty, not as large as the rows the migration rewrote.
#[tokio::test]
async fn a_migration_that_rewrites_the_bodies_leaves_no_large_wal_behind() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join(super::DATABASE_FILE);
    let rows = 2_000;
    {
        let mut connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        schema::migrate_to(&mut connection, 9).unwrap();
        connection
            .execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
                 INSERT INTO payloads (id, body) SELECT i, randomblob(4096) FROM n; \
                 INSERT INTO events (seq, id, source, type, headers, payload_id, received_at) \
                   SELECT id, randomblob(16), 'app', 'a', '[]', id, id FROM payloads; \
                 INSERT INTO deliveries (event_seq, endpoint, payload_id, state, next_attempt_at) \
                   SELECT seq, 'hook', payload_id, {delivered}, 0 FROM events; \
                 PRAGMA wal_checkpoint(TRUNCATE);",
                delivered = code(DeliveryState::Delivered),
            ))
            .unwrap();
    }
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    assert_eq!(store.count_events().await.unwrap(), rows);
    let wal = std::fs::metadata(directory.path().join(format!("{}-wal", super::DATABASE_FILE)))
        .map(|file| file.len())
        .unwrap_or(0);
    // The rewritten bodies alone are 8 MB; the WAL holds at most the writes made since.
    assert!(wal < 1 << 20, "the WAL file is {wal} bytes after the migration");
    let connection = Connection::open(&path).unwrap();
    let counted: i64 = connection
        .query_row("SELECT count(*) FROM payloads WHERE refs = 2", [], |row| row.get(0))
        .unwrap();
    assert_eq!(counted, rows as i64, "each body: its event and its delivery");
}

/// Migration 11 rebuilds `events` and `deliveries` without their references to `payloads`:
/// every row and every index comes through as it was, and every other reference stays.
#[tokio::test]
async fn rebuilding_events_and_deliveries_keeps_every_row_and_every_other_reference() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join(super::DATABASE_FILE);
    // Every index of the database, as SQLite keeps it (an automatic one has no SQL).
    let indexes = |connection: &Connection| -> Vec<(String, String, Option<String>)> {
        connection
            .prepare(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let dump = |connection: &Connection, table: &str| -> Vec<String> {
        let sql = format!("SELECT * FROM {table} ORDER BY rowid");
        let mut statement = connection.prepare(&sql).unwrap();
        let columns = statement.column_count();
        statement
            .query_map([], |row| {
                let values: Vec<rusqlite::types::Value> =
                    (0..columns).map(|index| row.get(index)).collect::<Result<_, _>>()?;
                Ok(format!("{values:?}"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = {
        let mut connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        schema::migrate_to(&mut connection, 10).unwrap();
        connection
            .execute_batch(&format!(
                "INSERT INTO payloads (id, body, refs) VALUES (1, x'7b7d', 2), (2, x'5b5d', 2); \
                 INSERT INTO events (seq, id, source, type, subject, headers, payload_id, \
                   received_at, dedupe_key, metadata, parent_seq) VALUES \
                   (1, randomblob(16), 'shop', 'order', 'o-1', '[[\"a\",\"b\"]]', 1, 10, 'k', \
                    '[[\"tenant\",\"acme\"]]', NULL), \
                   (2, randomblob(16), 'shop', 'order.line', NULL, '[]', 2, 11, NULL, NULL, 1); \
                 INSERT INTO deliveries (id, event_seq, endpoint, payload_id, state, attempts, \
                   next_attempt_at, last_error, content_type, subject, order_key) VALUES \
                   (5, 1, 'billing', 1, {dead}, 3, 0, 'HTTP 500', 'text/plain', 'a.b', 'c-1'), \
                   (9, 2, 'billing', 2, {pending}, 0, 20, NULL, NULL, NULL, NULL); \
                 INSERT INTO attempts (delivery_id, attempted_at, duration_us, status, response) \
                   VALUES (5, 15, 250, 500, x'6e6f');",
                dead = code(DeliveryState::Dead),
                pending = code(DeliveryState::Pending),
            ))
            .unwrap();
        let tables = ["events", "deliveries", "attempts"].map(|table| dump(&connection, table));
        (tables, indexes(&connection))
    };
    let store =
        super::SqliteStore::open(directory.path(), crate::config::Durability::Os, Metrics::new())
            .unwrap();
    assert_eq!(store.count_deliveries(DeliveryState::Pending, None).await.unwrap(), 1);

    let connection = Connection::open(&path).unwrap();
    let tables = ["events", "deliveries", "attempts"].map(|table| dump(&connection, table));
    assert_eq!((tables, indexes(&connection)), before);
    let references = |table: &str| -> Vec<String> {
        connection
            .prepare("SELECT \"from\" || ' -> ' || \"table\" FROM pragma_foreign_key_list(?1)")
            .unwrap()
            .query_map([table], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(references("events"), ["parent_seq -> events"]);
    assert_eq!(references("deliveries"), ["event_seq -> events"]);
    assert_eq!(references("attempts"), ["delivery_id -> deliveries"]);
    // Still enforced: a delivery of an event that is not there is refused.
    connection.pragma_update(None, "foreign_keys", true).unwrap();
    let orphan = connection.execute(
        "INSERT INTO deliveries (event_seq, endpoint, payload_id, state, next_attempt_at) \
         VALUES (99, 'billing', 1, 0, 0)",
        [],
    );
    assert!(orphan.is_err(), "{orphan:?}");
}

/// Deleting a row that others refer to makes SQLite look for the rows that still do; without
/// an index on the referring column that is a scan of the whole table for each row deleted,
/// and retention deletes thousands. So every reference in the schema has one (a partial
/// index that leaves out NULLs serves as well).
#[test]
fn every_reference_is_looked_up_through_an_index() {
    let mut connection = Connection::open_in_memory().unwrap();
    schema::migrate(&mut connection).unwrap();
    let strings = |sql: &str, argument: &str| -> Vec<(String, String)> {
        connection
            .prepare(sql)
            .unwrap()
            .query_map([argument], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let tables = strings("SELECT name, sql FROM sqlite_master WHERE type = ?1", "table");
    let mut unindexed = Vec::new();
    for (table, _) in &tables {
        let references =
            strings("SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?1)", table);
        for (column, parent) in references {
            let indexes = strings(
                "SELECT l.name, coalesce(m.sql, '') FROM pragma_index_list(?1) AS l \
                 LEFT JOIN sqlite_master AS m ON m.name = l.name",
                table,
            );
            let usable = indexes.iter().any(|(index, sql)| {
                let first =
                    // An expression's column has no name.
                    strings(
                        "SELECT coalesce(name, ''), '' FROM pragma_index_info(?1) ORDER BY seqno",
                        index,
                    );
                let leads = first.first().is_some_and(|(name, _)| *name == column);
                let partial = sql.contains(" WHERE ");
                leads && (!partial || sql.ends_with(&format!("WHERE {column} IS NOT NULL")))
            });
            if !usable {
                unindexed.push(format!("{table}.{column} -> {parent}"));
            }
        }
    }
    assert!(unindexed.is_empty(), "references without an index: {unindexed:?}");
}

/// A retention pass reads only the events (or audit entries) past its cutoff, oldest first,
/// and stops at its batch: with nothing past the cutoff it reads nothing, however many the
/// store holds.
#[test]
fn a_retention_pass_walks_only_the_rows_past_its_cutoff() {
    let mut connection = Connection::open_in_memory().unwrap();
    schema::migrate(&mut connection).unwrap();
    for (sql, walk) in [
        (ops::PRUNE_CANDIDATES, "SEARCH e USING INDEX events_by_received_at (received_at<?)"),
        (super::audit::PRUNE_AUDIT, "SEARCH audit USING COVERING INDEX audit_by_at (at<?)"),
    ] {
        let plan = super::reader::tests::plan(&connection, sql);
        assert!(plan.contains(walk), "{plan}");
        assert!(!plan.contains("TEMP B-TREE") && !plan.contains("SCAN"), "{plan}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
