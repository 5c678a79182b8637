//! A worker over a real store (in a temporary directory) and a loopback receiver: its concurrency limit, and
//! disabling or enabling its endpoint while an attempt is in flight.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, watch};

use super::Worker;
use crate::delivery::attempt::AttemptContext;
use crate::delivery::http::HttpSender;
use crate::delivery::{Control, EndpointRuntime, Target, retry};
use crate::egress::EgressPolicy;
use crate::event::{Event, EventId};
use crate::store::{DeliveryState, NewDelivery, NewEvent, Payload, Store};
use crate::telemetry::Metrics;
use crate::traffic::endpoint::{EndpointTraffic, TrafficSettings};

const WAIT: Duration = Duration::from_secs(10);

/// A loopback endpoint that holds every request until the test releases it, then answers
/// with the next scripted status (200 once the script is used up).
struct Receiver {
    address: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<()>,
    release: Arc<Semaphore>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct ReceiverState {
    arrivals: mpsc::UnboundedSender<()>,
    release: Arc<Semaphore>,
    script: Arc<Mutex<VecDeque<u16>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let state = ReceiverState {
            arrivals: arrived,
            release: Arc::new(Semaphore::new(0)),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
        };
        let receiver = Self {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            arrivals,
            release: state.release.clone(),
            in_flight: state.in_flight.clone(),
            most_in_flight: state.most_in_flight.clone(),
        };
        let router = axum::Router::new().route("/", axum::routing::post(answer)).with_state(state);
        let listener = tokio::net::TcpListener::bind(receiver.address).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { address, ..receiver }
    }

    /// Waits for the next request to arrive; `None` if none does within `within`.
    async fn arrival(&mut self, within: Duration) -> Option<()> {
        tokio::time::timeout(within, self.arrivals.recv()).await.ok().flatten()
    }
}

async fn answer(axum::extract::State(state): axum::extract::State<ReceiverState>) -> StatusCode {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let _ = state.arrivals.send(());
    if let Ok(permit) = state.release.acquire().await {
        permit.forget();
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// A worker for endpoint `hook` at `receiver`, running, and what drives it.
struct Running {
    _directory: tempfile::TempDir,
    store: Store,
    controls: mpsc::UnboundedSender<Control>,
    _stop: watch::Sender<bool>,
}

fn start(receiver: &Receiver, max_in_flight: u32) -> Running {
    let directory = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let store =
        Store::open(directory.path(), crate::config::Durability::Os, metrics.clone()).unwrap();
    let policy = EgressPolicy {
        allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
        https_only: false,
        proxy: None,
    };
    let context = Arc::new(AttemptContext {
        store: store.clone(),
        sender: HttpSender::new(policy, "switchyard-test".into()).unwrap(),
        publisher: None,
        announce_outcomes: false,
        metrics,
        notifier: None,
    });
    let endpoint = EndpointRuntime {
        id: "hook".into(),
        target: Target::Http(format!("http://{}/", receiver.address).parse().unwrap()),
        timeout: WAIT,
        max_in_flight,
        schedule: retry::RetrySchedule::custom(vec![Duration::from_millis(50); 3]),
        headers: Vec::new(),
        signing_keys: Vec::new(),
        traffic: TrafficSettings::default(),
        tls: None,
    };
    let (controls, control_receiver) = mpsc::unbounded_channel();
    let (stop, stopped) = watch::channel(false);
    let worker = Worker {
        endpoint: Arc::new(endpoint),
        queue: store.due_queue("hook"),
        context,
        controls: control_receiver,
        stop: stopped,
        disabled: false,
        traffic: Arc::new(Mutex::new(EndpointTraffic::new(
            TrafficSettings::default(),
            max_in_flight,
            Instant::now(),
        ))),
    };
    tokio::spawn(worker.run());
    Running { _directory: directory, store, controls, _stop: stop }
}

/// Stores an event with one delivery to `hook`; answers the event's id.
async fn ingest(store: &Store) -> EventId {
    let body = Bytes::from_static(b"{}");
    let event = Event {
        id: EventId::generate(),
        source: "app".into(),
        event_type: "a".into(),
        subject: None,
        headers: Vec::new(),
        body: body.clone(),
        received_at: 1,
        dedupe_key: None,
        metadata: Vec::new(),
    };
    let id = event.id;
    let payload = Payload { body, content_type: None, subject: None };
    let delivery = NewDelivery {
        endpoint: "hook".into(),
        event: id,
        payload,
        dead_letter: None,
        order_key: None,
    };
    let new =
        NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] };
    store.ingest(new).await.unwrap();
    id
}

/// Waits until `count` deliveries are in `state`.
async fn wait_for(store: &Store, state: DeliveryState, count: u64) {
    let deadline = Instant::now() + WAIT;
    while store.count_deliveries(state, None).await.unwrap() != count {
        assert!(Instant::now() < deadline, "never {count} deliveries {state:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_requests_than_the_endpoint_allows_are_under_way_at_once() {
    let mut receiver = Receiver::start(&[]).await;
    let running = start(&receiver, 2);
    for _ in 0..5 {
        ingest(&running.store).await;
    }
    receiver.arrival(WAIT).await.expect("a first request");
    receiver.arrival(WAIT).await.expect("a second request, beside it");
    assert!(
        receiver.arrival(Duration::from_millis(300)).await.is_none(),
        "a third request while two are under way"
    );
    // Each answer frees a slot for the next delivery.
    receiver.release.add_permits(1);
    receiver.arrival(WAIT).await.expect("the third request, once a slot is free");
    receiver.release.add_permits(10);
    wait_for(&running.store, DeliveryState::Delivered, 5).await;
    assert_eq!(receiver.most_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(receiver.in_flight.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_when_its_endpoint_is_disabled_parks_and_resumes_on_enable() {
    let mut receiver = Receiver::start(&[500]).await;
    let running = start(&receiver, 1);
    let event = ingest(&running.store).await;
    receiver.arrival(WAIT).await.expect("the first attempt");
    let store = &running.store;
    assert_eq!(store.set_endpoint_enabled("hook".into(), false, "paused".into()).await.unwrap(), 1);
    running.controls.send(Control::Disable).unwrap();
    // It fails while the endpoint is disabled: recorded, parked, not tried again.
    receiver.release.add_permits(1);
    let delivery = delivery_of(store, event).await;
    let deadline = Instant::now() + WAIT;
    while store.attempts(delivery).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the attempt was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.delivery(delivery).await.unwrap().unwrap().state, DeliveryState::Parked);
    assert!(receiver.arrival(Duration::from_millis(300)).await.is_none(), "sent while disabled");
    // Enabled again: sent once more, and delivered.
    assert_eq!(store.set_endpoint_enabled("hook".into(), true, String::new()).await.unwrap(), 1);
    running.controls.send(Control::Enable).unwrap();
    receiver.arrival(WAIT).await.expect("the resumed attempt");
    receiver.release.add_permits(1);
    wait_for(store, DeliveryState::Delivered, 1).await;
    let summary = store.delivery(delivery).await.unwrap().unwrap();
    assert_eq!(summary.attempts, 2, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_enabled_again_during_an_attempt_it_is_not_sent_twice() {
    let mut receiver = Receiver::start(&[500]).await;
    let running = start(&receiver, 1);
    ingest(&running.store).await;
    receiver.arrival(WAIT).await.expect("the first attempt");
    let store = &running.store;
    store.set_endpoint_enabled("hook".into(), false, String::new()).await.unwrap();
    running.controls.send(Control::Disable).unwrap();
    // Enabling hands the delivery over again while its attempt is under way: that attempt's
    // outcome decides, the delivery is not sent a second time beside it.
    store.set_endpoint_enabled("hook".into(), true, String::new()).await.unwrap();
    running.controls.send(Control::Enable).unwrap();
    assert!(receiver.arrival(Duration::from_millis(300)).await.is_none(), "sent twice at once");
    // Its 500 asks for a retry: one more request, then delivered; no third.
    receiver.release.add_permits(1);
    receiver.arrival(WAIT).await.expect("the retry");
    receiver.release.add_permits(1);
    wait_for(store, DeliveryState::Delivered, 1).await;
    assert!(receiver.arrival(Duration::from_millis(300)).await.is_none(), "a third request");
}

async fn delivery_of(store: &Store, event: EventId) -> crate::store::DeliveryId {
    let query = crate::store::DeliveryQuery { event: Some(event), limit: 1, ..Default::default() };
    store.list_deliveries(query).await.unwrap()[0].id
}

#[tokio::test]
async fn slots_follow_a_lowered_limit_once_the_slots_taken_come_back() {
    let mut slots = super::Slots::new(4);
    let mut taken = Vec::new();
    for _ in 0..4 {
        taken.push(slots.acquire().await.unwrap());
    }
    // Down to 1 while all four are out: three of them are forgotten when given back.
    slots.set_limit(1);
    taken.truncate(1);
    assert_eq!(slots.semaphore.available_permits(), 0);
    drop(taken);
    assert_eq!(slots.semaphore.available_permits(), 1);
    // Up to 3, then down to 2 with none out: the spare one is forgotten at once.
    slots.set_limit(3);
    assert_eq!(slots.semaphore.available_permits(), 3);
    slots.set_limit(2);
    assert_eq!(slots.semaphore.available_permits(), 2);
    // Down to 1 with both out, then up to 2 before either is back: the debt is paid, not
    // doubled.
    let (first, second) = (slots.acquire().await.unwrap(), slots.acquire().await.unwrap());
    slots.set_limit(1);
    slots.set_limit(2);
    drop((first, second));
    assert_eq!(slots.semaphore.available_permits(), 2);
}
