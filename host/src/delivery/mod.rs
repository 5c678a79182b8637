//! Delivery: from committed deliveries to attempts against endpoints.
//!
//! Owns the runtime side of endpoints (target, signing keys, retry schedule) and one
//! [`worker::Worker`] per endpoint, config-defined or created through the admin API (added,
//! changed, disabled and removed at run time), each running the jobs of its endpoint's due-queue
//! in the store. The pure parts live in [`retry`] (timing and outcome classes) and
//! [`crate::signing`]; the only HTTP client is [`http`], the only NATS publisher [`nats`].

mod attempt;
pub mod http;
pub mod nats;
pub mod retry;
mod worker;

pub use attempt::outbound_headers;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use url::Url;

use crate::config::{EndpointTarget, Topology};
use crate::event::now_millis;
use crate::nats::NatsConnection;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::traffic::endpoint::{EndpointTraffic, TrafficSettings, TrafficView};

/// `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("Switchyard/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Where an endpoint's deliveries go.
#[derive(Debug, Clone)]
pub enum Target {
    Http(Url),
    /// The subject is rendered per delivery when it is created (it travels in the payload).
    Nats {
        jetstream: bool,
    },
}

/// An endpoint, ready to deliver to.
#[derive(Debug)]
pub struct EndpointRuntime {
    pub id: String,
    pub target: Target,
    pub timeout: Duration,
    pub max_in_flight: u32,
    pub schedule: retry::RetrySchedule,
    pub headers: Vec<(String, String)>,
    pub signing_keys: Vec<EndpointKey>,
    /// Rate, breaker, adaptive concurrency and auto-disable.
    pub traffic: TrafficSettings,
    /// HTTP endpoints' own TLS settings (a private CA, a client certificate).
    pub tls: Option<http::EndpointTls>,
}

/// A signing key of an endpoint, with the end of its rotation overlap if it was rotated out.
#[derive(Clone)]
pub struct EndpointKey {
    pub key: SigningKey,
    /// Unix milliseconds after which it no longer signs; `None` signs for good.
    pub expires_at: Option<u64>,
}

impl fmt::Debug for EndpointKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key itself never reaches a log.
        formatter.debug_struct("EndpointKey").field("expires_at", &self.expires_at).finish()
    }
}

impl EndpointKey {
    /// Whether it signs a delivery attempted at `now` (unix ms).
    pub fn signs_at(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

/// What the delivery service is told about an endpoint at run time.
#[derive(Debug)]
enum Control {
    /// New settings (URL, keys, limits…): attempts from now on use them.
    Update(Arc<EndpointRuntime>),
    /// Stop starting attempts; what is queued is parked in the store.
    Disable,
    /// Start attempts again; the store hands the resumed deliveries over as new jobs.
    Enable,
}

/// One endpoint's worker as the service holds it.
#[derive(Debug)]
struct WorkerHandle {
    /// Dropping it ends the worker once its attempts under way are recorded.
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
    /// Its traffic controls, to show them.
    traffic: worker::SharedTraffic,
}

/// The running workers, one per endpoint; endpoints can be added, changed, disabled and
/// removed while it runs (the admin API). [`DeliveryService::stop`] lets in-flight attempts
/// finish.
pub struct DeliveryService {
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
    context: Arc<attempt::AttemptContext>,
    workers: Mutex<HashMap<String, WorkerHandle>>,
}

/// Builds every config endpoint's runtime from the topology (whose keys are already parsed).
pub fn endpoints(topology: &Topology) -> Vec<EndpointRuntime> {
    let mut runtimes = Vec::new();
    for endpoint in topology.endpoints.values() {
        let target = match &endpoint.target {
            EndpointTarget::Http { url } => Target::Http(url.clone()),
            EndpointTarget::Nats { jetstream, .. } => Target::Nats { jetstream: *jetstream },
        };
        let signing_keys = endpoint
            .signing_keys
            .iter()
            .map(|key| EndpointKey { key: key.clone(), expires_at: None })
            .collect();
        runtimes.push(EndpointRuntime {
            id: endpoint.id.clone(),
            target,
            timeout: endpoint.timeout,
            max_in_flight: endpoint.max_in_flight,
            schedule: retry::RetrySchedule::custom(endpoint.retry_delays.clone()),
            headers: endpoint.headers.clone(),
            signing_keys,
            traffic: endpoint.traffic,
            tls: endpoint.tls.clone(),
        });
    }
    runtimes
}

impl DeliveryService {
    /// Starts one worker per endpoint (config-defined and `dynamic`), each on its endpoint's
    /// due-queue in `store`.
    pub fn start(
        topology: &Topology,
        dynamic: Vec<EndpointRuntime>,
        store: Store,
        metrics: Arc<Metrics>,
        nats: Option<NatsConnection>,
        disabled: &HashSet<String>,
        notifier: Option<crate::notify::Notifier>,
    ) -> Result<Self, DeliveryError> {
        let sender = http::HttpSender::new(topology.egress.clone(), USER_AGENT.to_owned())
            .map_err(|error| DeliveryError::Client(error.to_string()))?;
        let publisher = nats.map(nats::NatsPublisher::new);
        let announce_outcomes = topology.nats.as_ref().is_some_and(|nats| nats.outcomes);
        let context = Arc::new(attempt::AttemptContext {
            store,
            sender,
            publisher,
            announce_outcomes,
            metrics,
            notifier,
        });
        let (stop, stopped) = watch::channel(false);
        let service = Self { stop, stopped, context, workers: Mutex::new(HashMap::new()) };
        for endpoint in endpoints(topology).into_iter().chain(dynamic) {
            let is_disabled = disabled.contains(&endpoint.id);
            service.add(endpoint, is_disabled);
        }
        Ok(service)
    }

    /// Starts a worker for a new endpoint, or gives an existing one its new settings.
    pub fn upsert(&self, endpoint: EndpointRuntime, disabled: bool) {
        let existing = self.lock().get(&endpoint.id).map(|worker| worker.control.clone());
        match existing {
            Some(control) => drop(control.send(Control::Update(Arc::new(endpoint)))),
            None => self.add(endpoint, disabled),
        }
    }

    fn add(&self, endpoint: EndpointRuntime, disabled: bool) {
        let (control, controls) = mpsc::unbounded_channel();
        let id = endpoint.id.clone();
        let traffic = Arc::new(Mutex::new(EndpointTraffic::new(
            endpoint.traffic,
            endpoint.max_in_flight,
            std::time::Instant::now(),
        )));
        let worker = worker::Worker {
            traffic: traffic.clone(),
            disabled,
            queue: self.context.store.due_queue(&id),
            endpoint: Arc::new(endpoint),
            context: self.context.clone(),
            controls,
            stop: self.stopped.clone(),
        };
        let task = tokio::spawn(worker.run());
        self.lock().insert(id, WorkerHandle { control, task, traffic });
    }

    /// Stops an endpoint's worker and waits for its attempts under way to be recorded.
    /// Deliveries still queued stay as they are in the store.
    pub async fn remove(&self, id: &str) {
        let Some(worker) = self.lock().remove(id) else { return };
        // Closing its controls ends the worker once its attempts finish.
        drop(worker.control);
        let _ = worker.task.await;
    }

    /// Stops (or resumes) starting attempts for an endpoint. The store parks and resumes the
    /// deliveries; this only tells the worker.
    pub fn set_disabled(&self, id: &str, disabled: bool) {
        if let Some(worker) = self.lock().get(id) {
            let _ = worker.control.send(if disabled { Control::Disable } else { Control::Enable });
        }
    }

    /// An endpoint's traffic control as the admin API shows it; `None` for an unknown
    /// endpoint.
    pub fn traffic(&self, id: &str) -> Option<TrafficView> {
        let traffic = self.lock().get(id).map(|worker| worker.traffic.clone())?;
        let view = worker::lock(&traffic).view(std::time::Instant::now(), now_millis());
        Some(view)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkerHandle>> {
        // A worker map is never left half-updated by a panic: insert and remove are single calls.
        self.workers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops dispatching and waits for attempts under way to finish and be recorded.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let workers: Vec<WorkerHandle> = self.lock().drain().map(|(_, worker)| worker).collect();
        for worker in workers {
            let _ = worker.task.await;
        }
    }
}

impl fmt::Debug for DeliveryService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: Vec<String> = self.lock().keys().cloned().collect();
        formatter.debug_struct("DeliveryService").field("endpoints", &endpoints).finish()
    }
}
