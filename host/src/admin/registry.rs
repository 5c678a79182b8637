//! Dynamic endpoints at run time: the store, the delivery workers and the route table kept in
//! step.
//!
//! Owns the order of every change, so that nothing is lost in between: a new endpoint gets its
//! worker before its route is swapped in (no event is routed to an endpoint that cannot take
//! it); a deleted one loses its route first, then its worker (attempts under way are
//! recorded), then its queued deliveries become dead letters in the store. Changes are
//! serialised by one lock and run on their own task (a dropped request cannot stop one
//! half-way); reads and routing never wait for it (both are snapshots, swapped whole).
//!
//! A change costs the same with ten endpoints as with ten thousand, near enough: each endpoint
//! is held with its route compiled once ([`Entry`]), so the snapshot and the route table that
//! a change swaps in share every other endpoint's entry and route (a pointer each), and taking
//! another node's changes (cluster mode) reads again only the records that changed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError};

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

/// A dynamic endpoint with what routing needs of it, built once per change of its record.
#[derive(Debug)]
struct Entry {
    endpoint: DynamicEndpoint,
    /// `None`: the record has no valid route (a bug or a store edited by hand); it gets none.
    route: Option<Arc<RouteSpec>>,
    /// The record as the store holds it (sealed or not), when known: a stored row equal to it
    /// is this endpoint unchanged, and is not read again.
    stored: Option<StoredEndpoint>,
}

/// An endpoint checked and stored, ready to be given its worker and route.
#[derive(Debug)]
struct Prepared {
    runtime: EndpointRuntime,
    route: Arc<RouteSpec>,
    stored: StoredEndpoint,
}

/// The dynamic endpoints by id, each shared between successive snapshots.
type Entries = BTreeMap<Arc<str>, Arc<Entry>>;

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
    snapshot: ArcSwap<Entries>,
    /// Held by a change from start to end: changes never interleave.
    changes: Mutex<()>,
    /// Ids this node stored or deleted since the last [`Registry::sync_with_store`] began
    /// reading the store (each noted after its write, under the change lock): that read may
    /// predate them, so the sync keeps them as they are here.
    changed_here: std::sync::Mutex<HashSet<String>>,
    /// Whether other processes change the store too (cluster mode): only then are changes
    /// made here noted for the sync.
    shared_store: bool,
    /// New endpoints stored whose workers and routes are not in place yet.
    waiting: std::sync::Mutex<Vec<(DynamicEndpoint, Prepared)>>,
}

/// What the config contributes: its routes, and the ids of its endpoints (they can be disabled
/// and enabled through the admin API, not changed).
#[derive(Debug, Default)]
struct ConfigPart {
    routes: Vec<Arc<RouteSpec>>,
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
    let entries: Vec<Entry> =
        endpoints.iter().cloned().map(|endpoint| Entry::new(endpoint, None)).collect();
    let config_routes: Vec<Arc<RouteSpec>> = config_routes.iter().cloned().map(Arc::new).collect();
    table_of(&config_routes, entries.iter())
}

/// The route table of the config's routes and these entries' (shared, not compiled again).
fn table_of<'a>(
    config_routes: &[Arc<RouteSpec>],
    entries: impl Iterator<Item = &'a Entry>,
) -> RouteTable {
    let mut routes = config_routes.to_vec();
    let mut orderings = HashMap::new();
    for entry in entries {
        routes.extend(entry.route.clone());
        if let Some(ordered_by) = &entry.endpoint.record.settings.ordered_by {
            orderings.insert(entry.endpoint.id.clone(), ordered_by.clone());
        }
    }
    RouteTable::shared(routes).with_orderings(orderings)
}

// === impl Entry ===

impl Entry {
    fn new(endpoint: DynamicEndpoint, stored: Option<StoredEndpoint>) -> Self {
        let route = endpoint.record.route(&endpoint.id).ok().map(Arc::new);
        Self { endpoint, route, stored }
    }
}

// === impl Registry ===

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
        let dynamic = endpoints.into_iter().map(|endpoint| {
            (Arc::from(endpoint.id.as_str()), Arc::new(Entry::new(endpoint, None)))
        });
        let shared_store = store.outside_changes().is_some();
        Self {
            store,
            store_key,
            deliveries,
            routes,
            config: ArcSwap::from_pointee(ConfigPart {
                routes: config_routes.into_iter().map(Arc::new).collect(),
                endpoints: config_endpoints,
            }),
            snapshot: ArcSwap::from_pointee(dynamic.collect()),
            changes: Mutex::new(()),
            changed_here: std::sync::Mutex::default(),
            shared_store,
            waiting: std::sync::Mutex::default(),
        }
    }

    /// Dynamic endpoints, oldest first.
    pub fn list(&self) -> Vec<DynamicEndpoint> {
        self.snapshot.load().values().map(|entry| entry.endpoint.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<DynamicEndpoint> {
        self.snapshot.load().get(id).map(|entry| entry.endpoint.clone())
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
    ///
    /// A new id is stored without the change lock, so that creates wait for the store side by
    /// side (in cluster mode a write waits for a quorum of servers to fsync it); no other
    /// change can name the endpoint before its route is swapped in, and that last step takes
    /// the lock.
    pub async fn create(self: &Arc<Self>, endpoint: DynamicEndpoint) -> Result<(), RegistryError> {
        self.change(move |registry| async move {
            let held = if registry.knows(&endpoint.id) {
                Some(registry.changes.lock().await)
            } else {
                None
            };
            if endpoint.record.awaits_owner() {
                let reason = super::ownership::PENDING_REASON.to_owned();
                registry.store.set_endpoint_enabled(endpoint.id.clone(), false, reason).await?;
            }
            let prepared = registry.store_record(&endpoint).await?;
            match held {
                Some(_held) => registry.install(endpoint, prepared),
                None => {
                    // Creates stored meanwhile are swapped in together, by whichever takes
                    // the lock first: one route table for all of them.
                    registry.waiting(endpoint, prepared);
                    let _change = registry.changes.lock().await;
                    registry.install_waiting();
                }
            }
            Ok(())
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
            registry.publish(|dynamic| drop(dynamic.remove(id.as_str())));
            registry.deliveries.remove(&id).await;
            let reason = format!("endpoint `{id}` was deleted");
            let deleted = registry.store.delete_endpoint(id.clone(), reason).await;
            registry.note_changed_here(&id);
            match deleted {
                Ok(dead) => Ok(Some(dead)),
                Err(error) => {
                    // Not deleted on disk: put it back as it was, so memory matches the store.
                    if let Ok(runtime) = removed.record.runtime(&id) {
                        registry.deliveries.upsert(runtime, false);
                    }
                    let entry = Arc::new(Entry::new(removed, None));
                    registry.publish(|dynamic| drop(dynamic.insert(Arc::from(id.as_str()), entry)));
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
        // Every record is read without holding the change lock, so that this node's own
        // changes go on meanwhile (a read of ten thousand records takes a while); those are
        // noted and kept as they are here.
        self.take_changed_here();
        let stored = self.store.endpoints().await?;
        let _change = self.changes.lock().await;
        let changed_here = self.take_changed_here();
        let now_disabled: HashSet<String> =
            self.store.disabled_endpoints().await?.into_keys().collect();
        let current = self.snapshot.load_full();
        let mut next = Entries::new();
        let mut changed = Vec::new();
        // Stored or deleted here since the read began: this node's view is the newer one
        // (another node's later change to them is applied after and signals again).
        for id in &changed_here {
            if let Some((id, entry)) = current.get_key_value(id.as_str()) {
                next.insert(id.clone(), entry.clone());
            }
        }
        for row in stored {
            if changed_here.contains(&row.id) {
                continue;
            }
            // A row as this node last stored or read it is the endpoint unchanged: neither
            // parsed nor compiled again.
            if let Some((id, entry)) = current.get_key_value(row.id.as_str())
                && entry.stored.as_ref() == Some(&row)
            {
                next.insert(id.clone(), entry.clone());
                continue;
            }
            changed.push(row);
        }
        for row in changed {
            let kept = row.clone();
            // A record sealed under `server.store_key` is opened first, as at start.
            let opened = match super::sealed::open_row(self.store_key.as_ref(), row) {
                Ok(opened) => opened,
                Err(error) => {
                    tracing::error!(%error, "stored dynamic endpoint cannot be opened; left out");
                    continue;
                }
            };
            let Some(endpoint) = load(vec![opened]).pop() else { continue };
            if current.get(endpoint.id.as_str()).map(|entry| &entry.endpoint) != Some(&endpoint)
                && let Ok(runtime) = endpoint.record.runtime(&endpoint.id)
            {
                self.deliveries.upsert(runtime, now_disabled.contains(&endpoint.id));
            }
            let id = Arc::from(endpoint.id.as_str());
            next.insert(id, Arc::new(Entry::new(endpoint, Some(kept))));
        }
        let gone: Vec<Arc<str>> =
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

    /// The ids changed here since the last call.
    fn take_changed_here(&self) -> HashSet<String> {
        std::mem::take(&mut *self.changed_here.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Notes that this node stored or deleted `id`: after the store write, under the change
    /// lock.
    fn note_changed_here(&self, id: &str) {
        if !self.shared_store {
            return;
        }
        self.changed_here.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned());
    }

    /// Takes a reloaded config's routes and endpoint ids, and swaps in the route table they
    /// make with the dynamic endpoints'.
    pub async fn set_config(&self, routes: Vec<RouteSpec>, endpoints: HashSet<String>) {
        let _change = self.changes.lock().await;
        let routes = routes.into_iter().map(Arc::new).collect();
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
        let prepared = self.store_record(&endpoint).await?;
        let answer = endpoint.clone();
        self.install(endpoint, prepared);
        Ok(answer)
    }

    /// Checks that `endpoint` can run and stores its record (sealed when the store has a key).
    async fn store_record(&self, endpoint: &DynamicEndpoint) -> Result<Prepared, RegistryError> {
        let invalid = |reason| RegistryError::Invalid { id: endpoint.id.clone(), reason };
        let runtime = endpoint.record.runtime(&endpoint.id).map_err(invalid)?;
        let route = endpoint.record.route(&endpoint.id).map_err(invalid)?;
        let spec = serde_json::to_string(&endpoint.record).expect("records always serialize");
        let spec = super::sealed::seal_spec(self.store_key.as_ref(), &endpoint.id, spec)?;
        let stored = StoredEndpoint {
            id: endpoint.id.clone(),
            kind: endpoint.kind.as_str().to_owned(),
            spec,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        };
        self.store.put_endpoint(stored.clone()).await?;
        Ok(Prepared { runtime, route: Arc::new(route), stored })
    }

    /// Gives a stored endpoint its worker (or its worker the new settings), then swaps in its
    /// route. The caller holds the change lock.
    fn install(&self, endpoint: DynamicEndpoint, prepared: Prepared) {
        let entry = self.start_worker(endpoint, prepared);
        self.note_changed_here(&entry.endpoint.id);
        let id = Arc::from(entry.endpoint.id.as_str());
        self.publish(|dynamic| drop(dynamic.insert(id, entry)));
    }

    /// Queues a new endpoint, stored, for [`Self::install_waiting`].
    fn waiting(&self, endpoint: DynamicEndpoint, prepared: Prepared) {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).push((endpoint, prepared));
    }

    /// Gives every new endpoint waiting its worker, then swaps in their routes in one table.
    /// The caller holds the change lock (workers are only ever started under it: two starts
    /// of one endpoint's worker at once would leave one without its queue).
    fn install_waiting(&self) {
        let waiting =
            std::mem::take(&mut *self.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        if waiting.is_empty() {
            return;
        }
        let mut entries = Vec::with_capacity(waiting.len());
        for (endpoint, prepared) in waiting {
            let entry = self.start_worker(endpoint, prepared);
            // Noted once stored and under the lock: a sync that read the store before the
            // write keeps this endpoint as it is here.
            self.note_changed_here(&entry.endpoint.id);
            entries.push(entry);
        }
        self.publish(|dynamic| {
            for entry in entries {
                dynamic.insert(Arc::from(entry.endpoint.id.as_str()), entry);
            }
        });
    }

    /// Gives a stored endpoint its worker (or its worker the new settings): a new endpoint
    /// starts enabled unless it must prove ownership first, an existing one keeps its state.
    fn start_worker(&self, endpoint: DynamicEndpoint, prepared: Prepared) -> Arc<Entry> {
        self.deliveries.upsert(prepared.runtime, endpoint.record.awaits_owner());
        Arc::new(Entry { endpoint, route: Some(prepared.route), stored: Some(prepared.stored) })
    }

    /// Applies `edit` to a copy of the endpoints, then makes it what readers and routing see.
    /// The copy shares every entry, so this costs a pointer or two per endpoint.
    fn publish(&self, edit: impl FnOnce(&mut Entries)) {
        let mut dynamic = Entries::clone(&self.snapshot.load());
        edit(&mut dynamic);
        let table = table_of(&self.config.load().routes, dynamic.values().map(|entry| &**entry));
        self.routes.store(Arc::new(table));
        self.snapshot.store(Arc::new(dynamic));
    }
}
