//! Wiring: builds the running router from a [`Topology`] and runs it until a signal.
//!
//! What serves a topology (plugins' pipeline, HTTP and admin routers, NATS sources) is built by
//! [`crate::reload`], at start and again on SIGHUP or `POST /v1/admin/reload`.
//!
//! Owns the start order (plugins, NATS connection, store, pending deliveries, delivery
//! workers, NATS sources, then listener, then ready) and the drain order on SIGTERM or SIGINT (not ready, stop accepting, finish
//! in-flight requests within a bound, stop NATS sources, let attempts under way finish and be recorded, flush
//! the store writer). Holds no logic of its own.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::admin::registry;
use crate::config::Topology;
use crate::delivery::DeliveryService;
use crate::nats::NatsConnection;
use crate::reload::{self, Reloader};
use crate::store::Store;
use crate::telemetry::Metrics;

/// How long in-flight requests may take to finish once a drain starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `topology`, read from `config_path` (read again on reload), until SIGTERM or
/// SIGINT, then drains and returns.
pub async fn run(topology: Topology, config_path: PathBuf) -> anyhow::Result<()> {
    for warning in &topology.warnings {
        tracing::warn!("{warning}");
    }
    let metrics = Metrics::new();
    let traces = crate::traces::install(&topology.telemetry)?;
    let plugins = reload::load_plugins(&topology).await?;
    let nats = match &topology.nats {
        Some(config) => Some(NatsConnection::connect(config, &metrics).await?),
        None => None,
    };
    let server = &topology.server;
    let store =
        Store::open_configured(server, &topology.store, nats.as_ref(), metrics.clone()).await?;
    let disabled = store.disabled_endpoints().await?;
    let stored_endpoints = store.endpoints().await?;
    let dynamic = registry::load(stored_endpoints);
    let config_routes: Vec<_> = topology.routes.values().map(|route| route.spec.clone()).collect();
    let routes = Arc::new(ArcSwap::from_pointee(registry::route_table(&config_routes, &dynamic)));
    let disabled = disabled.into_keys().collect();
    let deliveries = Arc::new(DeliveryService::start(
        &topology,
        registry::runtimes(&dynamic),
        store.clone(),
        metrics.clone(),
        nats.clone(),
        &disabled,
    )?);
    let registry = Arc::new(registry::Registry::new(
        store.clone(),
        deliveries.clone(),
        routes.clone(),
        config_routes,
        topology.endpoints.keys().cloned().collect(),
        dynamic,
    ));
    // Cluster mode: endpoints changed through another node reach this one's workers and routes.
    let outside_changes = store.outside_changes().map(|mut changes| {
        let (registry, mut known) = (registry.clone(), disabled.clone());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if let Err(error) = registry.sync_with_store(&mut known).await {
                    tracing::warn!(%error, "cannot take endpoint changes made by another node");
                }
            }
        })
    });
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
    // The serving side (pipeline, HTTP and admin routers, NATS sources) is built by the
    // reloader, at start as at every reload.
    let shared = reload::Shared {
        store: store.clone(),
        metrics,
        deliveries: deliveries.clone(),
        registry,
        routes,
        nats: nats.clone(),
        ready: ready.clone(),
    };
    let reloader = Reloader::start(config_path, topology, plugins, shared);
    let hangups = tokio::spawn(reload::on_sighup(reloader.clone()));
    let router = reloader.service();
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
    hangups.abort();
    if let Some(task) = outside_changes {
        task.abort();
    }
    reloader.stop_nats_sources().await;
    deliveries.stop().await;
    let _ = stop_retention.send(true);
    let _ = retention.await;
    if let Some(connection) = &nats {
        connection.flush().await;
    }
    tokio::task::spawn_blocking(move || store.shutdown()).await.context("store shutdown")?;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
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
