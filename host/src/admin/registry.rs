//! Dynamic endpoints at run time: the store, the delivery workers and the route table kept in
//! step.
//!
//! Owns the order of every change, so that nothing is lost in between: a new endpoint gets its
//! worker before its route is swapped in (no event is routed to an endpoint that cannot take
//! it); a deleted one loses its route first, then its worker (attempts under way are
//! recorded), then its queued deliveries become dead letters in the store. Changes are
//! serialised by one lock; routing never waits for it (the table is swapped whole).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::model::{EndpointKind, EndpointRecord};
use crate::delivery::{DeliveryService, EndpointRuntime};
use crate::pipeline::LiveRoutes;
use crate::routing::{RouteSpec, RouteTable};
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
    /// The record cannot run (a stored key or filter no longer parses): a bug or a store edited
    /// by hand.
    #[error("endpoint `{id}` cannot run: {reason}")]
    Invalid { id: String, reason: String },
}

#[derive(Debug)]
pub struct Registry {
    store: Store,
    deliveries: Arc<DeliveryService>,
    routes: LiveRoutes,
    config_routes: Vec<RouteSpec>,
    /// By id, which sorts by creation (ids are ULIDs).
    dynamic: Mutex<BTreeMap<String, DynamicEndpoint>>,
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
    RouteTable::new(config_routes.iter().cloned().chain(dynamic).collect())
}

impl Registry {
    pub fn new(
        store: Store,
        deliveries: Arc<DeliveryService>,
        routes: LiveRoutes,
        config_routes: Vec<RouteSpec>,
        endpoints: Vec<DynamicEndpoint>,
    ) -> Self {
        let dynamic = endpoints.into_iter().map(|endpoint| (endpoint.id.clone(), endpoint));
        Self { store, deliveries, routes, config_routes, dynamic: Mutex::new(dynamic.collect()) }
    }

    pub async fn list(&self) -> Vec<DynamicEndpoint> {
        self.dynamic.lock().await.values().cloned().collect()
    }

    pub async fn get(&self, id: &str) -> Option<DynamicEndpoint> {
        self.dynamic.lock().await.get(id).cloned()
    }

    /// Stores `endpoint` (new or changed), then gives it a worker (or its worker the new
    /// settings), then swaps in its route.
    pub async fn put(&self, endpoint: DynamicEndpoint) -> Result<(), RegistryError> {
        let invalid = |reason| RegistryError::Invalid { id: endpoint.id.clone(), reason };
        let runtime = endpoint.record.runtime(&endpoint.id).map_err(invalid)?;
        endpoint.record.route(&endpoint.id).map_err(invalid)?;
        let mut dynamic = self.dynamic.lock().await;
        let spec = serde_json::to_string(&endpoint.record).expect("records always serialize");
        self.store
            .put_endpoint(StoredEndpoint {
                id: endpoint.id.clone(),
                kind: endpoint.kind.as_str().to_owned(),
                spec,
                created_at: endpoint.created_at,
                updated_at: endpoint.updated_at,
            })
            .await?;
        // A new endpoint starts enabled; an existing one keeps its state.
        self.deliveries.upsert(runtime, false);
        dynamic.insert(endpoint.id.clone(), endpoint);
        self.swap_routes(&dynamic);
        Ok(())
    }

    /// Removes `id`: its route, its worker (attempts under way are recorded), then its queued
    /// deliveries become dead letters. Answers how many, or `None` if there is no such endpoint.
    pub async fn delete(&self, id: &str) -> Result<Option<usize>, RegistryError> {
        let mut dynamic = self.dynamic.lock().await;
        let Some(removed) = dynamic.remove(id) else { return Ok(None) };
        self.swap_routes(&dynamic);
        self.deliveries.remove(id).await;
        let reason = format!("endpoint `{id}` was deleted");
        match self.store.delete_endpoint(id.to_owned(), reason).await {
            Ok(dead) => Ok(Some(dead)),
            Err(error) => {
                // Not deleted on disk: put it back as it was, so memory matches the store.
                if let Ok(runtime) = removed.record.runtime(id) {
                    self.deliveries.upsert(runtime, false);
                }
                dynamic.insert(id.to_owned(), removed);
                self.swap_routes(&dynamic);
                Err(error.into())
            }
        }
    }

    /// Disables or re-enables any endpoint, config-defined or dynamic: the store parks (or
    /// resumes) its deliveries, then the worker is told. Answers how many deliveries moved.
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<usize, RegistryError> {
        let _changes = self.dynamic.lock().await;
        let reason = "disabled through the admin API".to_owned();
        let moved = self.store.set_endpoint_enabled(id.to_owned(), enabled, reason).await?;
        self.deliveries.set_disabled(id, !enabled);
        Ok(moved)
    }

    fn swap_routes(&self, dynamic: &BTreeMap<String, DynamicEndpoint>) {
        let endpoints: Vec<DynamicEndpoint> = dynamic.values().cloned().collect();
        self.routes.store(Arc::new(route_table(&self.config_routes, &endpoints)));
    }
}
