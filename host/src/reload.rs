//! Live reload (DESIGN §3): the config file read again, validated completely, and applied
//! through the same code path as start, on SIGHUP, `POST /v1/admin/reload` or
//! `switchyard reload`.
//!
//! Owns [`Reloader`]: it builds the serving side of a topology (plugins, pipeline, HTTP and
//! admin routers, NATS sources) at start and again at each reload, and swaps it in whole. The
//! listener serves whatever router is current, so a request is handled by one topology, old or
//! new, never a mix; requests and attempts under way finish on the one they started with.
//!
//! The order of a reload keeps every event and delivery: nothing is applied until the whole
//! file validates, its plugins load and its endpoints can run (else nothing changes and every
//! error is logged); then new and changed endpoints get their workers, then NATS sources and the
//! HTTP side restart on the new pipeline (the old NATS sources stop first: a core NATS message
//! arriving in between is missed, as at most once allows; a JetStream one waits in its stream),
//! then the new routes are swapped in, and only then are removed endpoints taken out: their pending deliveries parked in the store (not lost), their
//! worker stopped once its attempts under way are recorded. An endpoint that comes back in a
//! later reload gets its parked deliveries resumed.
//!
//! The listeners' TLS certificate files (`server.tls`) are read again and used by new
//! handshakes; open connections keep their session. Settings that only a restart can change
//! (`server.listen`, `data_dir`, `durability`, `retention`, `limits`, TLS on or off,
//! `[egress]`, `[nats]`) are not applied; a reload that changes them says so in
//! the log and in its answer. It must not decide what a config means: that is validation's.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

use crate::admin::registry::Registry;
use crate::config::{self, ProcessEnvironment, Topology};
use crate::delivery::{self, DeliveryService};
use crate::ingest::Ingestor;
use crate::ingress::nats::NatsSources;
use crate::ingress::{self, HttpState, NatsReadiness};
use crate::nats::NatsConnection;
use crate::pipeline::{LiveRoutes, Pipeline};
use crate::plugin::{PluginHost, RuntimeOptions};
use crate::store::Store;
use crate::telemetry::{Metrics, ReloadOutcome};

/// Why an endpoint's deliveries are parked when a reload removes it.
const REMOVED_REASON: &str = "removed from the config by a reload";

/// What a reload did, as logged and as answered by `POST /v1/admin/reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reloaded {
    Applied {
        endpoints_added: Vec<String>,
        endpoints_removed: Vec<String>,
        routes: usize,
        plugins: usize,
        /// Changes that take effect at the next restart only.
        warnings: Vec<String>,
    },
    /// Nothing changed; every reason is here and in the log.
    Refused { errors: Vec<String> },
}

/// What every topology's serving side shares: built once at start.
#[derive(Debug, Clone)]
pub struct Shared {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Ingests operational events through the current topology's ingest path.
    pub notifier: crate::notify::Notifier,
    pub deliveries: Arc<DeliveryService>,
    pub registry: Arc<Registry>,
    /// Challenges dynamic endpoints to prove ownership (`server.verify_endpoints`).
    pub ownership: Arc<crate::admin::ownership::OwnershipService>,
    pub routes: LiveRoutes,
    pub nats: Option<NatsConnection>,
    /// False while starting and draining.
    pub ready: Arc<AtomicBool>,
    /// The listeners' TLS certificates (`server.tls`): read again at every reload.
    pub tls: Option<Arc<crate::listener::tls::Certificates>>,
    /// Sources' `rate_limit` buckets: a reload keeps what senders have used.
    pub limits: Arc<crate::traffic::ingest::IngestLimits>,
}

/// The current topology and what serves it.
struct Current {
    topology: Arc<Topology>,
    nats_sources: Option<NatsSources>,
    /// Endpoints a reload removed (their deliveries parked): resumed if they come back.
    parked: HashSet<String>,
}

/// Serves a topology and replaces it on reload.
pub struct Reloader {
    config_path: PathBuf,
    shared: Shared,
    /// For the routers it builds: their reload route reaches it.
    myself: Weak<Reloader>,
    /// What the listener serves: swapped whole.
    router: ArcSwap<axum::Router>,
    /// What `server.admin_listen` serves (empty without it): swapped with `router`.
    admin_router: ArcSwap<axum::Router>,
    /// Held by a reload from start to end: reloads never interleave.
    current: tokio::sync::Mutex<Current>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Reloader").field("config_path", &self.config_path).finish()
    }
}

// === impl Reloader ===

impl Reloader {
    /// Builds the serving side of `topology` (its plugins already loaded) and starts its NATS
    /// sources: the start of the router and every reload go through here.
    pub fn start(
        config_path: PathBuf,
        topology: Topology,
        plugins: Option<Arc<PluginHost>>,
        shared: Shared,
    ) -> Arc<Self> {
        let topology = Arc::new(topology);
        Arc::new_cyclic(|reloader| {
            let (routers, nats_sources) = serve(&topology, plugins, &shared, reloader.clone());
            Self {
                config_path,
                shared,
                myself: reloader.clone(),
                router: ArcSwap::from_pointee(routers.main),
                admin_router: ArcSwap::from_pointee(routers.admin),
                current: tokio::sync::Mutex::new(Current {
                    topology,
                    nats_sources,
                    parked: HashSet::new(),
                }),
            }
        })
    }

    /// The service the listener runs: each request goes to the router current when it
    /// arrives.
    pub fn service(self: &Arc<Self>) -> axum::Router {
        let reloader = self.clone();
        let live = tower::service_fn(move |request: Request| {
            let router = reloader.router.load_full();
            async move { axum::Router::clone(&router).oneshot(request).await }
        });
        axum::Router::new().fallback_service(live)
    }

    /// The service `server.admin_listen` runs, like [`Self::service`].
    pub fn admin_service(self: &Arc<Self>) -> axum::Router {
        let reloader = self.clone();
        let live = tower::service_fn(move |request: Request| {
            let router = reloader.admin_router.load_full();
            async move { axum::Router::clone(&router).oneshot(request).await }
        });
        axum::Router::new().fallback_service(live)
    }

    /// Stops the NATS sources (drain): messages being stored finish and are settled.
    pub async fn stop_nats_sources(&self) {
        let sources = self.current.lock().await.nats_sources.take();
        if let Some(sources) = sources {
            sources.stop().await;
        }
    }

    /// Reads the config file again and applies it, or changes nothing and logs why.
    pub async fn reload(&self) -> Reloaded {
        let mut current = self.current.lock().await;
        let outcome = match self.prepare(&current).await {
            Ok(prepared) => self.apply(&mut current, prepared).await,
            Err(errors) => Reloaded::Refused { errors },
        };
        match &outcome {
            Reloaded::Applied { endpoints_added, endpoints_removed, routes, plugins, warnings } => {
                for warning in warnings {
                    tracing::warn!("config reload: {warning}");
                }
                tracing::info!(
                    path = %self.config_path.display(),
                    added = ?endpoints_added,
                    removed = ?endpoints_removed,
                    routes,
                    plugins,
                    "config reloaded"
                );
                self.shared.metrics.count_reload(ReloadOutcome::Applied);
            }
            Reloaded::Refused { errors } => {
                for error in errors {
                    tracing::error!("config reload refused: {error}");
                }
                tracing::error!(
                    path = %self.config_path.display(),
                    errors = errors.len(),
                    "config reload refused; the running config stays"
                );
                self.shared.metrics.count_reload(ReloadOutcome::Refused);
            }
        }
        outcome
    }

    /// Everything that can fail, before anything changes: the file, its validation, endpoint
    /// ids taken by dynamic endpoints, the endpoints' runtimes, the plugins.
    async fn prepare(&self, current: &Current) -> Result<Prepared, Vec<String>> {
        let path = self.config_path.clone();
        let loaded =
            tokio::task::spawn_blocking(move || config::load(&path, &ProcessEnvironment)).await;
        let topology = match loaded {
            Ok(Ok(topology)) => topology,
            Ok(Err(errors)) => return Err(errors.0.iter().map(ToString::to_string).collect()),
            Err(error) => return Err(vec![format!("the reload stopped: {error}")]),
        };
        let mut errors = Vec::new();
        for id in topology.endpoints.keys() {
            if self.shared.registry.get(id).is_some() {
                errors.push(format!(
                    "endpoints.{id}: an endpoint `{id}` was created through the admin API; \
                     give the config's another id"
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // The certificate files are read again; a listener started without TLS stays so.
        let tls = match (&self.shared.tls, &topology.server.tls) {
            (Some(_), Some(settings)) => Some(
                crate::listener::tls::server_config(settings)
                    .map_err(|error| vec![error.to_string()])?,
            ),
            _ => None,
        };
        let plugins = load_plugins(&topology).await.map_err(|error| vec![format!("{error:#}")])?;
        let warnings = restart_only_changes(&current.topology, &topology);
        let runtimes = delivery::endpoints(&topology);
        Ok(Prepared { topology: Arc::new(topology), runtimes, plugins, warnings, tls })
    }

    async fn apply(&self, current: &mut Current, prepared: Prepared) -> Reloaded {
        let Prepared { topology, runtimes, plugins, warnings, tls } = prepared;
        let shared = &self.shared;
        if let (Some(certificates), Some(config)) = (&shared.tls, tls) {
            certificates.replace(config);
        }
        let old: BTreeSet<String> = current.topology.endpoints.keys().cloned().collect();
        let new: BTreeSet<String> = topology.endpoints.keys().cloned().collect();
        // New and changed endpoints first: no event is routed to an endpoint without a worker.
        for runtime in runtimes {
            shared.deliveries.upsert(runtime, false);
        }
        let added: Vec<String> = new.difference(&old).cloned().collect();
        for id in &added {
            if current.parked.remove(id) {
                match shared.store.set_endpoint_enabled(id.clone(), true, String::new()).await {
                    Ok(resumed) => {
                        tracing::info!(endpoint = %id, resumed, "endpoint back in the config; its parked deliveries resume")
                    }
                    Err(error) => {
                        tracing::error!(endpoint = %id, %error, "parked deliveries not resumed; resume them through the admin API")
                    }
                }
            }
        }
        // The old NATS sources stop before the new ones start: two core subscriptions at once
        // would take a message twice. Messages being stored finish and are settled first.
        if let Some(old_sources) = current.nats_sources.take() {
            old_sources.stop().await;
        }
        let (routers, nats_sources) = serve(&topology, plugins, shared, self.myself.clone());
        self.router.store(Arc::new(routers.main));
        self.admin_router.store(Arc::new(routers.admin));
        current.nats_sources = nats_sources;
        // Routes last: an event routed by the new table meets the new pipeline's transforms
        // (one that entered the old pipeline just before may still meet the old ones).
        let config_routes: Vec<_> =
            topology.routes.values().map(|route| route.spec.clone()).collect();
        shared.registry.set_config(config_routes, new.iter().cloned().collect()).await;
        let removed: Vec<String> = old.difference(&new).cloned().collect();
        for id in &removed {
            let parked =
                shared.store.set_endpoint_enabled(id.clone(), false, REMOVED_REASON.into()).await;
            match parked {
                Ok(parked) => {
                    tracing::info!(endpoint = %id, parked, "endpoint removed from the config; its pending deliveries are parked")
                }
                Err(error) => {
                    tracing::error!(endpoint = %id, %error, "pending deliveries of a removed endpoint not parked; they stay pending")
                }
            }
            shared.deliveries.remove(id).await;
            current.parked.insert(id.clone());
        }
        let outcome = Reloaded::Applied {
            endpoints_added: added,
            endpoints_removed: removed,
            routes: topology.routes.len(),
            plugins: topology.plugins.len(),
            warnings,
        };
        current.topology = topology;
        outcome
    }
}

/// A validated topology with everything it needs to run, not applied yet.
struct Prepared {
    topology: Arc<Topology>,
    runtimes: Vec<delivery::EndpointRuntime>,
    plugins: Option<Arc<PluginHost>>,
    warnings: Vec<String>,
    /// The listeners' TLS config, its files read again.
    tls: Option<tokio_rustls::rustls::ServerConfig>,
}

/// What the listeners serve.
struct Routers {
    /// `server.listen`: ingress, health, metrics, and the admin side without `admin_listen`.
    main: axum::Router,
    /// `server.admin_listen`: the admin side alone (everything 404 without it).
    admin: axum::Router,
}

/// The HTTP routers of `topology` and its NATS sources, on the shared store, workers and
/// routes.
fn serve(
    topology: &Arc<Topology>,
    plugins: Option<Arc<PluginHost>>,
    shared: &Shared,
    reloader: Weak<Reloader>,
) -> (Routers, Option<NatsSources>) {
    let pipeline = Pipeline::new(topology, shared.routes.clone(), plugins, shared.metrics.clone());
    let ingestor = Ingestor::new(shared.store.clone(), pipeline.clone(), shared.metrics.clone());
    shared.notifier.configure(ingestor.clone(), topology.server.notify_every);
    let nats_sources = shared
        .nats
        .as_ref()
        .map(|connection| NatsSources::start(topology, connection, &ingestor, &shared.metrics));
    let nats = shared.nats.clone().zip(nats_sources.as_ref()).map(|(connection, sources)| {
        NatsReadiness { connection, pending_consumers: sources.consumers_ready() }
    });
    let state = HttpState {
        topology: topology.clone(),
        ingestor,
        metrics: shared.metrics.clone(),
        ready: shared.ready.clone(),
        nats,
        limits: shared.limits.clone(),
        notifier: shared.notifier.clone(),
    };
    let admin = admin_side(topology, pipeline, shared, reloader);
    let routers = match (admin, topology.server.admin_listen) {
        (Some(admin), None) => {
            Routers { main: ingress::router(state).merge(admin), admin: not_found() }
        }
        (Some(admin), Some(_)) => {
            Routers { main: ingress::router(state), admin: admin.fallback(not_found_handler) }
        }
        (None, _) => Routers { main: ingress::router(state), admin: not_found() },
    };
    (routers, nats_sources)
}

/// The admin side: `/v1/admin/*` (the API and its reload route) behind the admin token, and
/// the place to mount what else belongs to operators (the dashboard's `/ui/`). `None`
/// without an admin token: nothing of it is served. It goes on `server.admin_listen` when
/// that is set, else beside the ingress on `server.listen`.
fn admin_side(
    topology: &Arc<Topology>,
    pipeline: Pipeline,
    shared: &Shared,
    reloader: Weak<Reloader>,
) -> Option<axum::Router> {
    let token = topology.server.admin_token.clone()?;
    let admin = crate::admin::AdminState {
        topology: topology.clone(),
        store: shared.store.clone(),
        pipeline,
        registry: shared.registry.clone(),
        metrics: shared.metrics.clone(),
        ownership: shared.ownership.clone(),
        openapi: crate::admin::openapi_value(),
    };
    let reload = axum::Router::new()
        .route("/v1/admin/reload", axum::routing::post(reload_handler))
        .with_state(reloader);
    Some(crate::admin::router(token.clone(), admin).merge(crate::admin::behind_token(
        token,
        topology,
        shared.store.clone(),
        reload,
    )))
}

/// A router answering every request `404 not_found`, as the ingress does.
fn not_found() -> axum::Router {
    axum::Router::new().fallback(not_found_handler)
}

async fn not_found_handler(request: Request) -> crate::http_api::ApiError {
    crate::http_api::ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for `{} {}`", request.method(), request.uri().path()),
    )
}

/// Compiles (or loads from the cache) every configured plugin, off the async threads; none
/// configured, no runtime.
pub async fn load_plugins(topology: &Topology) -> anyhow::Result<Option<Arc<PluginHost>>> {
    use anyhow::Context;
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

/// What changed in `new` that only a restart applies.
fn restart_only_changes(old: &Topology, new: &Topology) -> Vec<String> {
    let (old_server, new_server) = (&old.server, &new.server);
    let changed = [
        ("server.listen", old_server.listen != new_server.listen),
        ("server.admin_listen", old_server.admin_listen != new_server.admin_listen),
        ("server.data_dir", old_server.data_dir != new_server.data_dir),
        ("server.durability", old_server.durability != new_server.durability),
        ("server.retention", old_server.retention != new_server.retention),
        ("server.limits", old_server.limits != new_server.limits),
        ("server.tls", old_server.tls.is_some() != new_server.tls.is_some()),
        ("server.store_key", old_server.store_key != new_server.store_key),
        ("server.audit_retention", old_server.audit_retention != new_server.audit_retention),
        ("store", old.store != new.store),
        ("egress", old.egress != new.egress),
        ("telemetry", old.telemetry.otlp != new.telemetry.otlp),
        // One connection, made at start, serves every NATS source and target.
        ("nats", old.nats != new.nats),
    ];
    changed
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(key, _)| format!("`{key}` changed; it takes effect at the next restart"))
        .collect()
}

/// Reloads on every SIGHUP until the process ends.
pub async fn on_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; reload through the admin API");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the config");
        reloader.reload().await;
    }
}

// `POST /v1/admin/reload`, behind the admin token: 200 with what changed, or 422 with every
// error (nothing changed). Mounted beside the admin router (its state is the reloader) and
// documented with it (`crate::admin::openapi`); plain comments, as a doc comment would become
// the operation's summary there.
#[utoipa::path(
    post, path = "/v1/admin/reload", tag = "config",
    description = "Reads the config file again and applies it, as SIGHUP does: `applied` with \
                   what changed (settings only a restart applies are named in `warnings`), \
                   or `refused` with every error, the running config kept.",
    responses(
        (status = 200, body = Reloaded, description = "Applied"),
        (status = 401, body = crate::admin::ErrorBody),
        (status = 422, body = Reloaded, description = "Refused; nothing changed"),
    ),
)]
pub(crate) async fn reload_handler(State(reloader): State<Weak<Reloader>>) -> Response {
    let Some(reloader) = reloader.upgrade() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // On its own task: a client that goes away cannot stop a reload half-way.
    let reloaded = match tokio::spawn(async move { reloader.reload().await }).await {
        Ok(reloaded) => reloaded,
        Err(error) => Reloaded::Refused { errors: vec![format!("the reload stopped: {error}")] },
    };
    let status = match reloaded {
        Reloaded::Applied { .. } => StatusCode::OK,
        Reloaded::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, axum::Json(reloaded)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(extra: &str) -> Topology {
        let text = format!("[server]\nlisten = \"127.0.0.1:8080\"\n{extra}\n[sources.hooks]\n");
        config::parse(&text, std::path::Path::new("."), &ProcessEnvironment)
            .expect("the test config is valid")
    }

    #[test]
    fn settings_only_a_restart_applies_are_named() {
        let old = topology("");
        assert_eq!(restart_only_changes(&old, &topology("")), Vec::<String>::new());
        let new = topology("retention = \"1d\"\n[egress]\nallow_networks = [\"127.0.0.0/8\"]");
        assert_eq!(
            restart_only_changes(&old, &new),
            [
                "`server.retention` changed; it takes effect at the next restart",
                "`egress` changed; it takes effect at the next restart",
            ]
        );
        let nats = |token: &str| {
            topology(&format!(
                "[nats]\nurl = \"nats://127.0.0.1:4222\"\ntoken = {{ value = \"{token}\" }}"
            ))
        };
        assert_eq!(restart_only_changes(&nats("a"), &nats("a")), Vec::<String>::new());
        assert_eq!(
            restart_only_changes(&nats("a"), &nats("b")),
            ["`nats` changed; it takes effect at the next restart"],
            "a new credential is applied by a restart only"
        );
    }

    #[test]
    fn the_answer_reads_back_as_written() {
        let refused = Reloaded::Refused { errors: vec!["routes.a.to: no endpoint `b`".into()] };
        let text = serde_json::to_string(&refused).expect("serializes");
        assert_eq!(text, r#"{"outcome":"refused","errors":["routes.a.to: no endpoint `b`"]}"#);
        assert_eq!(serde_json::from_str::<Reloaded>(&text).expect("parses"), refused);
    }
}
