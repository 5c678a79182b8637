//! Wiring: builds the running router from a [`Topology`] and runs it until a signal.
//!
//! Owns the start order (plugins, NATS connection, store, pending deliveries, delivery
//! workers, NATS sources, then listener, then ready) and the drain order on SIGTERM or SIGINT (not ready, stop accepting, finish
//! in-flight requests within a bound, stop NATS sources, let attempts under way finish and be recorded, flush
//! the store writer). Holds no logic of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::admin::registry;
use crate::config::Topology;
use crate::delivery::DeliveryService;
use crate::ingest::Ingestor;
use crate::ingress::http::{self, HttpState, NatsReadiness};
use crate::ingress::nats::NatsSources;
use crate::nats::NatsConnection;
use crate::pipeline::Pipeline;
use crate::plugin::{PluginHost, RuntimeOptions};
use crate::store::Store;
use crate::telemetry::Metrics;

/// How long in-flight requests may take to finish once a drain starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `topology` until SIGTERM or SIGINT, then drains and returns.
pub async fn run(topology: Topology) -> anyhow::Result<()> {
    for warning in &topology.warnings {
        tracing::warn!("{warning}");
    }
    let metrics = Metrics::new();
    let plugins = load_plugins(&topology).await?;
    let nats = match &topology.nats {
        Some(config) => Some(NatsConnection::connect(config, &metrics).await?),
        None => None,
    };
    let server = &topology.server;
    let (scheduler, jobs) = tokio::sync::mpsc::unbounded_channel();
    let store = Store::open(&server.data_dir, server.durability, metrics.clone(), scheduler)?;
    // Loaded before the ingress opens: every later delivery reaches the workers through
    // `jobs`, so none is scheduled twice.
    let (pending, disabled, stored_endpoints) = {
        let reader = store.reader()?;
        (reader.pending_deliveries()?, reader.disabled_endpoints()?, reader.endpoints()?)
    };
    tracing::info!(pending = pending.len(), "loaded pending deliveries");
    let dynamic = registry::load(stored_endpoints);
    let config_routes: Vec<_> = topology.routes.values().map(|route| route.spec.clone()).collect();
    let routes = Arc::new(ArcSwap::from_pointee(registry::route_table(&config_routes, &dynamic)));
    let pipeline = Pipeline::new(&topology, routes.clone(), plugins, metrics.clone());
    let disabled = disabled.into_keys().collect();
    let deliveries = Arc::new(DeliveryService::start(
        &topology,
        registry::runtimes(&dynamic),
        store.clone(),
        metrics.clone(),
        nats.clone(),
        jobs,
        pending,
        &disabled,
    )?);
    let registry = Arc::new(registry::Registry::new(
        store.clone(),
        deliveries.clone(),
        routes,
        config_routes,
        topology.endpoints.keys().cloned().collect(),
        dynamic,
    ));
    let (stop_retention, retention_stopped) = tokio::sync::watch::channel(false);
    let retention = tokio::spawn(crate::store::retention::run(
        store.clone(),
        server.retention,
        metrics.clone(),
        retention_stopped,
    ));
    let listener = TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", server.listen))?;
    let address = listener.local_addr().context("cannot read the listening address")?;
    let ready = Arc::new(AtomicBool::new(false));
    let ingestor = Ingestor::new(store.clone(), pipeline.clone(), metrics.clone());
    let nats_sources = nats
        .as_ref()
        .map(|connection| NatsSources::start(&topology, connection, &ingestor, &metrics));
    let nats_readiness = nats.clone().zip(nats_sources.as_ref()).map(|(connection, sources)| {
        NatsReadiness { connection, pending_consumers: sources.consumers_ready() }
    });
    let state = HttpState {
        topology: Arc::new(topology),
        ingestor,
        metrics,
        ready: ready.clone(),
        nats: nats_readiness,
    };
    let admin = state.topology.server.admin_token.clone().map(|token| {
        let admin = crate::admin::AdminState {
            topology: state.topology.clone(),
            store: store.clone(),
            pipeline,
            registry,
            openapi: crate::admin::openapi_value(),
        };
        crate::admin::router(token, admin)
    });
    let router = match admin {
        Some(admin) => http::router(state).merge(admin),
        None => http::router(state),
    };
    let draining = Arc::new(tokio::sync::Notify::new());
    let serve = axum::serve(listener, router).with_graceful_shutdown({
        let (ready, draining) = (ready.clone(), draining.clone());
        async move {
            shutdown_signal().await;
            tracing::info!("draining: no new connections; finishing in-flight requests");
            ready.store(false, Ordering::Release);
            draining.notify_one();
        }
    });
    ready.store(true, Ordering::Release);
    tracing::info!(%address, "listening");
    let drain_deadline = async {
        draining.notified().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        served = serve => served.context("the HTTP server failed")?,
        () = drain_deadline => tracing::warn!("drain timed out; closing remaining connections"),
    }
    if let Some(sources) = nats_sources {
        sources.stop().await;
    }
    deliveries.stop().await;
    let _ = stop_retention.send(true);
    let _ = retention.await;
    if let Some(connection) = &nats {
        connection.flush().await;
    }
    tokio::task::spawn_blocking(move || store.shutdown()).await.context("store shutdown")?;
    tracing::info!("stopped");
    Ok(())
}

/// Compiles (or loads from the cache) every configured plugin, off the async threads; none
/// configured, no runtime.
async fn load_plugins(topology: &Topology) -> anyhow::Result<Option<Arc<PluginHost>>> {
    if topology.plugins.is_empty() {
        return Ok(None);
    }
    let plugins: Vec<_> = topology.plugins.values().cloned().collect();
    let secrets = topology.secrets.clone();
    let options = RuntimeOptions::serving(&topology.server.data_dir);
    let started = std::time::Instant::now();
    let host = tokio::task::spawn_blocking(move || PluginHost::load(&plugins, &secrets, &options))
        .await
        .context("plugin loading stopped")??;
    tracing::info!(
        plugins = topology.plugins.len(),
        pooled = host.pooled_allocator(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "plugins loaded"
    );
    Ok(Some(Arc::new(host)))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => {}
        result = tokio::signal::ctrl_c() => {
            if let Err(error) = result {
                tracing::error!(%error, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        }
    }
}
