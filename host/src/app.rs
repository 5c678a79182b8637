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
use crate::listener;
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
    let server = topology.server.clone();
    let store =
        Store::open_configured(&server, &topology.store, nats.as_ref(), metrics.clone()).await?;
    let disabled = store.disabled_endpoints().await?;
    let stored_endpoints =
        crate::admin::sealed::open_at_start(&store, server.store_key.as_ref()).await?;
    let dynamic = registry::load(stored_endpoints);
    let config_routes: Vec<_> = topology.routes.values().map(|route| route.spec.clone()).collect();
    let routes = Arc::new(ArcSwap::from_pointee(registry::route_table(&config_routes, &dynamic)));
    let disabled = disabled.into_keys().collect();
    let notifier = crate::notify::Notifier::start(store.clone());
    let deliveries = Arc::new(DeliveryService::start(
        &topology,
        registry::runtimes(&dynamic),
        store.clone(),
        metrics.clone(),
        nats.clone(),
        &disabled,
        Some(notifier.clone()),
    )?);
    let registry = Arc::new(registry::Registry::new(
        store.clone(),
        server.store_key.clone(),
        deliveries.clone(),
        routes.clone(),
        config_routes,
        topology.endpoints.keys().cloned().collect(),
        dynamic,
    ));
    let ownership = crate::admin::ownership::OwnershipService::new(topology.egress.clone())
        .context("cannot build the client that challenges endpoints")?;
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
    let expiry = tokio::spawn(
        ownership.clone().expire_unanswered(registry.clone(), retention_stopped.clone()),
    );
    let retention = tokio::spawn(crate::store::retention::run(
        store.clone(),
        server.retention,
        server.audit_retention,
        metrics.clone(),
        retention_stopped,
    ));
    open_files_check(&topology);
    let socket = TcpListener::bind(server.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", server.listen))?;
    let address = socket.local_addr().context("cannot read the listening address")?;
    let admin_socket = match server.admin_listen {
        Some(admin_listen) => Some(
            TcpListener::bind(admin_listen)
                .await
                .with_context(|| format!("cannot listen on `{admin_listen}` (admin)"))?,
        ),
        None => None,
    };
    let tls = server.tls.as_ref().map(listener::tls::Certificates::load).transpose()?;
    let ready = Arc::new(AtomicBool::new(false));
    // The serving side (pipeline, HTTP and admin routers, NATS sources) is built by the
    // reloader, at start as at every reload.
    let shared = reload::Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        notifier,
        deliveries: deliveries.clone(),
        registry,
        ownership,
        routes,
        nats: nats.clone(),
        ready: ready.clone(),
        tls: tls.clone(),
        limits: Arc::default(),
    };
    let reloader = Reloader::start(config_path, topology, plugins, shared);
    let hangups = tokio::spawn(reload::on_sighup(reloader.clone()));
    let router = reloader.service();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let draining = Arc::new(tokio::sync::Notify::new());
    let signals = tokio::spawn({
        let (ready, draining) = (ready.clone(), draining.clone());
        async move {
            shutdown_signal().await;
            tracing::info!("draining: no new connections; finishing in-flight requests");
            ready.store(false, Ordering::Release);
            let _ = stop.send(true);
            draining.notify_one();
        }
    });
    // The admin listener (`server.admin_listen`) has the same limits and TLS, its own budget.
    let admin_serve = admin_socket.map(|socket| {
        let admin_address = socket.local_addr().ok();
        let admin =
            listener::Listener { name: "admin", socket, limits: server.limits, tls: tls.clone() };
        (
            admin_address,
            listener::serve(admin, reloader.admin_service(), metrics.clone(), stopping.clone()),
        )
    });
    let main = listener::Listener { name: "main", socket, limits: server.limits, tls };
    let main_serve = listener::serve(main, router, metrics.clone(), stopping);
    ready.store(true, Ordering::Release);
    tracing::info!(%address, "listening");
    let serve = async move {
        match admin_serve {
            Some((admin_address, admin_serve)) => {
                if let Some(admin_address) = admin_address {
                    tracing::info!(%admin_address, "admin API listening on its own address");
                }
                tokio::join!(main_serve, admin_serve);
            }
            None => main_serve.await,
        }
    };
    let drain_deadline = async {
        draining.notified().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        () = serve => {}
        () = drain_deadline => tracing::warn!("drain timed out; closing remaining connections"),
    }
    signals.abort();
    hangups.abort();
    if let Some(task) = outside_changes {
        task.abort();
    }
    reloader.stop_nats_sources().await;
    deliveries.stop().await;
    let _ = stop_retention.send(true);
    let _ = retention.await;
    let _ = expiry.await;
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

/// Raises the open files limit and warns when the listeners' connection limits do not fit.
fn open_files_check(topology: &Topology) {
    /// Files the process keeps besides client connections: store, plugins, NATS, endpoints.
    const RESERVED: u64 = 256;
    let Some(open_files) = listener::raise_open_files_limit() else { return };
    let connections = topology.server.limits.connections as u64;
    if connections + RESERVED > open_files {
        tracing::warn!(
            connections,
            open_files,
            "`server.limits.connections` does not fit in the open files limit; \
             raise it (ulimit -n, LimitNOFILE) or lower the limit"
        );
    }
}

/// `switchyard store rotate-key`: seals every stored dynamic endpoint under `to`, refusing
/// while something answers on `server.listen` (a running router keeps sealing with the key it
/// started with).
pub async fn rotate_store_key(
    topology: &Topology,
    to: &crate::seal::StoreKey,
) -> anyhow::Result<crate::admin::sealed::Rotation> {
    let server = &topology.server;
    if let crate::config::StoreSettings::JetStream(cluster) = &topology.store {
        return rotate_cluster_key(topology, cluster, to).await;
    }
    let mut probe = server.listen;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let connect = tokio::net::TcpStream::connect(probe);
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
        anyhow::bail!(
            "something answers on `server.listen` (`{}`): stop the router before rotating the \
             store key",
            server.listen
        );
    }
    let store = Store::open(&server.data_dir, server.durability, Metrics::new())?;
    let rotation = crate::admin::sealed::rotate(&store, server.store_key.as_ref(), to).await;
    tokio::task::spawn_blocking(move || store.shutdown()).await.context("store shutdown")?;
    Ok(rotation?)
}

/// `store rotate-key` on the cluster store: refused while any node heartbeats (every router
/// sealing with the old key must be stopped); the new records go through the log like any
/// write, then the old entries and snapshots are purged (the store's scrub), so every node
/// starting with the new key restores the new snapshot. Running it again finishes an
/// interrupted run (the scrub runs again even when every record is already re-sealed).
async fn rotate_cluster_key(
    topology: &Topology,
    cluster: &crate::config::JetStreamStore,
    to: &crate::seal::StoreKey,
) -> anyhow::Result<crate::admin::sealed::Rotation> {
    let Some(config) = &topology.nats else {
        anyhow::bail!("the `jetstream` store needs a `[nats]` connection");
    };
    let metrics = Metrics::new();
    let nats = crate::nats::NatsConnection::connect(config, &metrics).await?;
    let context = async_nats::jetstream::new(nats.client().clone());
    let running = crate::store::jetstream::ownership::live_nodes(&context, &cluster.prefix).await?;
    if !running.is_empty() {
        anyhow::bail!(
            "{} of the cluster `{}` still running (`{}`): stop every router before rotating the \
             store key (a node killed without a clean stop counts for 10 s more)",
            if running.len() == 1 {
                "a node is".to_owned()
            } else {
                format!("{} nodes are", running.len())
            },
            cluster.prefix,
            running.join("`, `"),
        );
    }
    let server = &topology.server;
    let store = Store::open_configured(server, &topology.store, Some(&nats), metrics).await?;
    let rotation = crate::admin::sealed::rotate(&store, server.store_key.as_ref(), to).await;
    let scrubbed = match &rotation {
        // Already re-sealed (a run again): what an interrupted run left is purged now.
        Ok(rotation) if rotation.resealed == 0 => store.scrub().await.map_err(anyhow::Error::from),
        _ => Ok(()),
    };
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.shutdown()).await.context("store shutdown")?;
    nats.flush().await;
    scrubbed?;
    Ok(rotation?)
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
