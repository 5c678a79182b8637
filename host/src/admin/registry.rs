//! Dynamic endpoints at run time: the store, the delivery workers and the route table kept in
//! step.
//!
//! Owns the order of every change, so that nothing is lost in between: a new endpoint gets its
//! worker before its route is swapped in (no event is routed to an endpoint that cannot take
//! it); a deleted one loses its route first, then its worker (attempts under way are
//! recorded), then its queued deliveries become dead letters in the store. Changes are
//! serialised by one lock and run on their own task (a dropped request cannot stop one
//! half-way); reads and routing never wait for it (both are snapshots, swapped whole).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use super::model::{EndpointKind, EndpointRecord};
use crate::delivery::{DeliveryService, EndpointRuntime};
use crate::pipeline::LiveRoutes;
use crate::routing::{RouteSpec, RouteTable};
use crate::seal::StoreKey;
use crate::store::{Store, StoreError, StoredEndpoint};

/// A dynamic endpoint as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicEndpoint {
    pub id: String,
    pub kind: EndpointKind,
    pub record: EndpointRecord,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Why a change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record could not be sealed (no randomness for a nonce).
    #[error(transparent)]
    Sealed(#[from] super::sealed::SealedError),
    /// The record cannot run (a stored key or filter no longer parses): a bug or a store edited
    /// by hand.
    #[error("endpoint `{id}` cannot run: {reason}")]
    Invalid { id: String, reason: String },
    /// The task making the change stopped (the router is shutting down).
    #[error("the change stopped: {0}")]
    Stopped(String),
}

#[derive(Debug)]
pub struct Registry {
    store: Store,
    /// Seals every record written (`server.store_key`); `None`: records are stored in clear.
    store_key: Option<StoreKey>,
    deliveries: Arc<DeliveryService>,
    routes: LiveRoutes,
    /// The config's routes and endpoint ids: replaced by a reload.
    config: ArcSwap<ConfigPart>,
    /// What readers see: swapped whole after each change, so reads never wait for one.
    snapshot: ArcSwap<BTreeMap<String, DynamicEndpoint>>,
    /// Held by a change from start to end: changes never interleave.
    changes: Mutex<()>,
}

/// What the config contributes: its routes, and the ids of its endpoints (they can be disabled
/// and enabled through the admin API, not changed).
#[derive(Debug, Default)]
struct ConfigPart {
    routes: Vec<RouteSpec>,
    endpoints: HashSet<String>,
}

/// Reads the stored dynamic endpoints; one that cannot be read is logged and left out (it stays
/// in the store).
pub fn load(stored: Vec<StoredEndpoint>) -> Vec<DynamicEndpoint> {
    let mut loaded = Vec::with_capacity(stored.len());
    for row in stored {
        let record = serde_json::from_str::<EndpointRecord>(&row.spec);
        let kind = EndpointKind::parse(&row.kind);
        match (record, kind) {
            (Ok(record), Some(kind)) if record.runtime(&row.id).is_ok() => {
                loaded.push(DynamicEndpoint {
                    id: row.id,
                    kind,
                    record,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                });
            }
            _ => {
                tracing::error!(endpoint = %row.id, "stored dynamic endpoint cannot be read; left out")
            }
        }
    }
    loaded
}

/// The runtimes of `endpoints`, for the delivery service's start.
pub fn runtimes(endpoints: &[DynamicEndpoint]) -> Vec<EndpointRuntime> {
    endpoints.iter().filter_map(|endpoint| endpoint.record.runtime(&endpoint.id).ok()).collect()
}

/// Config routes first, in config order, then each dynamic endpoint's route.
pub fn route_table(config_routes: &[RouteSpec], endpoints: &[DynamicEndpoint]) -> RouteTable {
    let dynamic = endpoints.iter().filter_map(|endpoint| endpoint.record.route(&endpoint.id).ok());
    let orderings = endpoints
        .iter()
        .filter_map(|endpoint| {
            Some((endpoint.id.clone(), endpoint.record.settings.ordered_by.clone()?))
        })
        .collect();
    RouteTable::new(config_routes.iter().cloned().chain(dynamic).collect())
        .with_orderings(orderings)
}

impl Registry {
    pub fn new(
        store: Store,
        store_key: Option<StoreKey>,
        deliveries: Arc<DeliveryService>,
        routes: LiveRoutes,
        config_routes: Vec<RouteSpec>,
        config_endpoints: HashSet<String>,
        endpoints: Vec<DynamicEndpoint>,
    ) -> Self {
        let dynamic = endpoints.into_iter().map(|endpoint| (endpoint.id.clone(), endpoint));
        Self {
            store,
            store_key,
            deliveries,
            routes,
            config: ArcSwap::from_pointee(ConfigPart {
                routes: config_routes,
                endpoints: config_endpoints,
            }),
            snapshot: ArcSwap::from_pointee(dynamic.collect()),
            changes: Mutex::new(()),
        }
    }

    /// Dynamic endpoints, oldest first.
    pub fn list(&self) -> Vec<DynamicEndpoint> {
        self.snapshot.load().values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<DynamicEndpoint> {
        self.snapshot.load().get(id).cloned()
    }

    /// An endpoint's traffic control, live from its worker.
    pub fn traffic(&self, id: &str) -> Option<crate::traffic::endpoint::TrafficView> {
        self.deliveries.traffic(id)
    }

    /// Whether `id` names an endpoint, config-defined or dynamic.
    pub fn knows(&self, id: &str) -> bool {
        self.config.load().endpoints.contains(id) || self.snapshot.load().contains_key(id)
    }

    /// Adds a new endpoint: stored, then given a worker, then its route swapped in. One that
    /// must prove ownership first is disabled in the store before anything can be routed to
    /// it, so its deliveries are created parked.
    pub async fn create(self: &Arc<Self>, endpoint: DynamicEndpoint) -> Result<(), RegistryError> {
        self.change(move |registry| async move {
            let _change = registry.changes.lock().await;
            if endpoint.record.awaits_owner() {
                let reason = super::ownership::PENDING_REASON.to_owned();
                registry.store.set_endpoint_enabled(endpoint.id.clone(), false, reason).await?;
            }
            registry.put(endpoint).await.map(drop)
        })
        .await
    }

    /// Changes endpoint `id` with `edit`, reading and writing under the change lock so that
    /// concurrent changes (a rotation and a replacement) never undo each other. Answers the
    /// endpoint as changed, or `None` if there is no such endpoint (deleted meanwhile).
    pub async fn update(
        self: &Arc<Self>,
        id: &str,
        edit: impl FnOnce(&mut DynamicEndpoint) + Send + 'static,
    ) -> Result<Option<DynamicEndpoint>, RegistryError> {
        let id = id.to_owned();
        self.change(move |registry| async move {
            let _change = registry.changes.lock().await;
            let Some(mut endpoint) = registry.get(&id) else { return Ok(None) };
            edit(&mut endpoint);
            registry.put(endpoint).await.map(Some)
        })
        .await
    }

    /// Removes `id`: its route, its worker (attempts under way are recorded), then its queued
    /// deliveries become dead letters. Answers how many, or `None` if there is no such endpoint.
    pub async fn delete(self: &Arc<Self>, id: &str) -> Result<Option<usize>, RegistryError> {
        let id = id.to_owned();
        self.change(move |registry| async move {
            let _change = registry.changes.lock().await;
            let Some(removed) = registry.get(&id) else { return Ok(None) };
            registry.publish(|dynamic| drop(dynamic.remove(&id)));
            registry.deliveries.remove(&id).await;
            let reason = format!("endpoint `{id}` was deleted");
            match registry.store.delete_endpoint(id.clone(), reason).await {
                Ok(dead) => Ok(Some(dead)),
                Err(error) => {
                    // Not deleted on disk: put it back as it was, so memory matches the store.
                    if let Ok(runtime) = removed.record.runtime(&id) {
                        registry.deliveries.upsert(runtime, false);
                    }
                    registry.publish(|dynamic| drop(dynamic.insert(id, removed)));
                    Err(error.into())
                }
            }
        })
        .await
    }

    /// Disables or re-enables any endpoint, config-defined or dynamic: the store parks (or
    /// resumes) its deliveries, then the worker is told. Answers how many deliveries moved, or
    /// `None` if there is no such endpoint.
    pub async fn set_enabled(
        self: &Arc<Self>,
        id: &str,
        enabled: bool,
    ) -> Result<Option<usize>, RegistryError> {
        let id = id.to_owned();
        self.change(move |registry| async move {
            let _change = registry.changes.lock().await;
            if !registry.knows(&id) {
                return Ok(None);
            }
            let reason = "disabled through the admin API".to_owned();
            let moved = registry.store.set_endpoint_enabled(id.clone(), enabled, reason).await?;
            // Told after the commit: should the commit fail, the worker keeps its queue. An
            // attempt the worker starts in between is a real send, recorded as usual.
            registry.deliveries.set_disabled(&id, !enabled);
            Ok(Some(moved))
        })
        .await
    }

    /// Changes endpoint `id`'s ownership check with `edit` and, in the same change, parks or
    /// resumes its deliveries as its ownership now says: one that waits for its owner is
    /// disabled in the store and its worker told before its new settings are stored (a new URL
    /// gets nothing unverified); one that became verified is stored, then enabled. Answers
    /// the endpoint as changed, or `None` if there is no such endpoint.
    pub async fn update_ownership(
        self: &Arc<Self>,
        id: &str,
        edit: impl FnOnce(&mut DynamicEndpoint) + Send + 'static,
    ) -> Result<Option<DynamicEndpoint>, RegistryError> {
        use super::ownership::{EXPIRED_REASON, PENDING_REASON};
        use crate::store::lifecycle::Ownership;
        let id = id.to_owned();
        self.change(move |registry| async move {
            let _change = registry.changes.lock().await;
            let Some(mut endpoint) = registry.get(&id) else { return Ok(None) };
            let was_waiting = endpoint.record.awaits_owner();
            edit(&mut endpoint);
            let reason = match endpoint.record.ownership() {
                Ownership::Verified => {
                    let endpoint = registry.put(endpoint).await?;
                    if was_waiting {
                        registry
                            .store
                            .set_endpoint_enabled(id.clone(), true, String::new())
                            .await?;
                        registry.deliveries.set_disabled(&id, false);
                    }
                    return Ok(Some(endpoint));
                }
                Ownership::PendingVerification => PENDING_REASON,
                Ownership::Expired => EXPIRED_REASON,
            };
            registry.store.set_endpoint_enabled(id.clone(), false, reason.to_owned()).await?;
            registry.deliveries.set_disabled(&id, true);
            registry.put(endpoint).await.map(Some)
        })
        .await
    }

    /// Brings the dynamic endpoints (their workers, then the route table, then the workers of
    /// those gone) and the workers' enabled state in line with the store, after another
    /// process sharing it changed them (cluster mode). `disabled` is what the workers were
    /// last told; it becomes what the store says.
    pub async fn sync_with_store(
        &self,
        disabled: &mut HashSet<String>,
    ) -> Result<(), RegistryError> {
        let _change = self.changes.lock().await;
        let stored = load(self.store.endpoints().await?);
        let now_disabled: HashSet<String> =
            self.store.disabled_endpoints().await?.into_keys().collect();
        let current = self.snapshot.load_full();
        let mut next = BTreeMap::new();
        for endpoint in stored {
            if current.get(&endpoint.id) != Some(&endpoint)
                && let Ok(runtime) = endpoint.record.runtime(&endpoint.id)
            {
                self.deliveries.upsert(runtime, now_disabled.contains(&endpoint.id));
            }
            next.insert(endpoint.id.clone(), endpoint);
        }
        let gone: Vec<String> =
            current.keys().filter(|id| !next.contains_key(*id)).cloned().collect();
        self.publish(|dynamic| *dynamic = next);
        for id in gone {
            self.deliveries.remove(&id).await;
        }
        for id in now_disabled.symmetric_difference(disabled) {
            self.deliveries.set_disabled(id, now_disabled.contains(id));
        }
        *disabled = now_disabled;
        Ok(())
    }

    /// Takes a reloaded config's routes and endpoint ids, and swaps in the route table they
    /// make with the dynamic endpoints'.
    pub async fn set_config(&self, routes: Vec<RouteSpec>, endpoints: HashSet<String>) {
        let _change = self.changes.lock().await;
        self.config.store(Arc::new(ConfigPart { routes, endpoints }));
        self.publish(|_| {});
    }

    /// Runs a change on its own task: a client that goes away mid-change (its request dropped)
    /// cannot leave the store, the workers and the routes out of step.
    async fn change<T, F>(
        self: &Arc<Self>,
        change: impl FnOnce(Arc<Self>) -> F,
    ) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RegistryError>> + Send + 'static,
    {
        match tokio::spawn(change(self.clone())).await {
            Ok(result) => result,
            Err(error) => Err(RegistryError::Stopped(error.to_string())),
        }
    }

    /// Stores `endpoint` (new or changed), then gives it a worker (or its worker the new
    /// settings), then swaps in its route. The caller holds the change lock.
    async fn put(&self, endpoint: DynamicEndpoint) -> Result<DynamicEndpoint, RegistryError> {
        let invalid = |reason| RegistryError::Invalid { id: endpoint.id.clone(), reason };
        let runtime = endpoint.record.runtime(&endpoint.id).map_err(invalid)?;
        endpoint.record.route(&endpoint.id).map_err(invalid)?;
        let spec = serde_json::to_string(&endpoint.record).expect("records always serialize");
        let spec = super::sealed::seal_spec(self.store_key.as_ref(), &endpoint.id, spec)?;
        self.store
            .put_endpoint(StoredEndpoint {
                id: endpoint.id.clone(),
                kind: endpoint.kind.as_str().to_owned(),
                spec,
                created_at: endpoint.created_at,
                updated_at: endpoint.updated_at,
            })
            .await?;
        // A new endpoint starts enabled unless it must prove ownership first; an existing one
        // keeps its state.
        self.deliveries.upsert(runtime, endpoint.record.awaits_owner());
        let stored = endpoint.clone();
        self.publish(|dynamic| drop(dynamic.insert(endpoint.id.clone(), endpoint)));
        Ok(stored)
    }

    /// Applies `edit` to a copy of the endpoints, then makes it what readers and routing see.
    fn publish(&self, edit: impl FnOnce(&mut BTreeMap<String, DynamicEndpoint>)) {
        let mut dynamic = BTreeMap::clone(&self.snapshot.load());
        edit(&mut dynamic);
        let endpoints: Vec<DynamicEndpoint> = dynamic.values().cloned().collect();
        self.routes.store(Arc::new(route_table(&self.config.load().routes, &endpoints)));
        self.snapshot.store(Arc::new(dynamic));
    }
}
