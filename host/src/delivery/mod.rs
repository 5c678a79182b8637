//! Delivery: from committed deliveries to attempts against endpoints.
//!
//! Owns the runtime side of endpoints (target, signing keys, retry schedule) and the fan-in
//! of jobs from the store to one [`worker::Worker`] per endpoint. The pure parts live in
//! [`retry`] (timing and outcome classes) and [`crate::signing`]; the only HTTP client is
//! [`http`], the only NATS publisher [`nats`]. Pending deliveries are loaded before the
//! ingress opens, so no job arrives twice.

mod attempt;
pub mod http;
pub mod nats;
pub mod retry;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use url::Url;

use crate::config::{EndpointTarget, Topology};
use crate::nats::NatsConnection;
use crate::signing::SigningKey;
use crate::store::{DeliveryJob, Store};
use crate::telemetry::Metrics;

/// `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("Switchyard/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("endpoint `{endpoint}`: secret `{secret}` is not a signing key: {reason}")]
    SigningKey { endpoint: String, secret: String, reason: String },
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
    pub signing_keys: Vec<SigningKey>,
}

/// The running workers; [`DeliveryService::stop`] lets in-flight attempts finish.
#[derive(Debug)]
pub struct DeliveryService {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Builds every endpoint's runtime from the topology.
pub fn endpoints(topology: &Topology) -> Result<Vec<EndpointRuntime>, DeliveryError> {
    let mut runtimes = Vec::new();
    for endpoint in topology.endpoints.values() {
        let target = match &endpoint.target {
            EndpointTarget::Http { url } => Target::Http(url.clone()),
            EndpointTarget::Nats { jetstream, .. } => Target::Nats { jetstream: *jetstream },
        };
        let mut signing_keys = Vec::new();
        for name in &endpoint.secrets {
            let secret =
                topology.secrets.get(name).map(|secret| secret.expose()).unwrap_or_default();
            let key = std::str::from_utf8(secret)
                .map_err(|error| error.to_string())
                .and_then(|text| SigningKey::parse(text).map_err(|error| error.to_string()))
                .map_err(|reason| DeliveryError::SigningKey {
                    endpoint: endpoint.id.clone(),
                    secret: name.clone(),
                    reason,
                })?;
            signing_keys.push(key);
        }
        runtimes.push(EndpointRuntime {
            id: endpoint.id.clone(),
            target,
            timeout: endpoint.timeout,
            max_in_flight: endpoint.max_in_flight,
            schedule: retry::RetrySchedule::custom(endpoint.retry_delays.clone()),
            headers: endpoint.headers.clone(),
            signing_keys,
        });
    }
    Ok(runtimes)
}

impl DeliveryService {
    /// Starts one worker per endpoint, seeds them with the `pending` deliveries loaded from
    /// the store, and forwards every new job from `jobs` to its endpoint's worker.
    pub fn start(
        topology: &Topology,
        store: Store,
        metrics: Arc<Metrics>,
        nats: Option<NatsConnection>,
        mut jobs: mpsc::UnboundedReceiver<DeliveryJob>,
        pending: Vec<DeliveryJob>,
        disabled: &HashSet<String>,
    ) -> Result<Self, DeliveryError> {
        let endpoints = endpoints(topology)?;
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
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut inboxes = HashMap::new();
        for endpoint in endpoints {
            let (inbox, receiver) = mpsc::unbounded_channel();
            let worker = worker::Worker {
                disabled: disabled.contains(&endpoint.id),
                endpoint: Arc::new(endpoint),
                context: context.clone(),
                jobs: receiver,
                stop: stopped.clone(),
            };
            inboxes.insert(worker.endpoint.id.clone(), inbox);
            tasks.spawn(worker.run());
        }
        let forward = move |job: DeliveryJob| match inboxes.get(&job.endpoint) {
            Some(inbox) => drop(inbox.send(job)),
            // Kept pending in the store: it resumes if the endpoint comes back to the config.
            None => {
                tracing::warn!(endpoint = %job.endpoint, delivery = job.delivery_id, "delivery for an endpoint that is not configured")
            }
        };
        pending.into_iter().for_each(&forward);
        let mut stopped_router = stopped;
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    job = jobs.recv() => match job {
                        Some(job) => forward(job),
                        None => break,
                    },
                    _ = stopped_router.changed() => break,
                }
            }
        });
        Ok(Self { stop, tasks })
    }

    /// Stops dispatching and waits for attempts under way to finish and be recorded.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
