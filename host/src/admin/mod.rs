//! The admin API under `/v1/admin/*`, behind `server.admin_token`.
//!
//! Owns bearer-token checking and the operator actions. Today that is replay (dead letters,
//! or every event of a time range routed again); the rest of the admin surface grows here.
//! The API is not mounted at all when no token is configured.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::event::now_millis;
use crate::ingress::http::{ApiError, require_bearer};
use crate::pipeline::Pipeline;
use crate::store::{DeliveryState, ReplaySelection, ReplayedEvent, Store, StoreError};

#[derive(Debug, Clone)]
pub struct AdminState {
    pub token: Secret,
    pub store: Store,
    pub pipeline: Pipeline,
}

pub fn router(state: AdminState) -> Router {
    Router::new().route("/v1/admin/replay", post(replay)).with_state(state)
}

/// `POST /v1/admin/replay`. Without `since`: dead letters (optionally of one endpoint) are
/// sent again. With `since`: every event received in `[since, until)` is routed again by the
/// current routes (optionally only `route`, only `endpoint`) and gets new deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Unix milliseconds.
    pub since: Option<u64>,
    /// Unix milliseconds; default now.
    pub until: Option<u64>,
    pub endpoint: Option<String>,
    pub route: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayAnswer {
    pub deliveries: usize,
    pub dry_run: bool,
}

async fn replay(
    State(state): State<AdminState>,
    headers: HeaderMap,
    request: Result<Json<ReplayRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    require_bearer(&state.token, &headers)?;
    let Json(request) = request.map_err(|rejection| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", rejection.body_text())
    })?;
    let selection = match request.since {
        None if request.route.is_some() => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "`route` selects events by time: give `since` too",
            ));
        }
        None => ReplaySelection::DeadLetters { endpoint: request.endpoint.clone() },
        Some(since) => {
            let until = request.until.unwrap_or_else(|| now_millis() + 1);
            let store = state.store.clone();
            let events = tokio::task::spawn_blocking(move || {
                store.reader()?.events_received_between(since, until)
            })
            .await
            .map_err(|_| unavailable())?
            .map_err(store_failure)?;
            ReplaySelection::Events(route_again(&state.pipeline, &events, &request).await?)
        }
    };
    let deliveries = if request.dry_run {
        match &selection {
            ReplaySelection::Events(replayed) => {
                replayed.iter().map(|event| event.deliveries.len()).sum()
            }
            ReplaySelection::DeadLetters { endpoint } => {
                let (store, endpoint) = (state.store.clone(), endpoint.clone());
                tokio::task::spawn_blocking(move || {
                    store.reader()?.deliveries_in_state(DeliveryState::Dead, endpoint.as_deref())
                })
                .await
                .map_err(|_| unavailable())?
                .map_err(store_failure)?
                .len()
            }
        }
    } else {
        state.store.replay(selection).await.map_err(store_failure)?
    };
    Ok(Json(ReplayAnswer { deliveries, dry_run: request.dry_run }).into_response())
}

/// The deliveries the current routes, route plugins and transforms give each event, limited
/// to the request's route and endpoint.
async fn route_again(
    pipeline: &Pipeline,
    events: &[crate::store::StoredEvent],
    request: &ReplayRequest,
) -> Result<Vec<ReplayedEvent>, ApiError> {
    let mut replayed = Vec::new();
    for stored in events {
        let fan_out =
            pipeline.fan_out(&stored.event, request.route.as_deref()).await.map_err(|error| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "plugin_unavailable",
                    format!("nothing was replayed: {error}"),
                )
            })?;
        let mut deliveries = fan_out.deliveries;
        if let Some(wanted) = &request.endpoint {
            deliveries.retain(|delivery| delivery.endpoint == *wanted);
        }
        let mut derived = fan_out.derived;
        derived.retain(|event| deliveries.iter().any(|delivery| delivery.event == event.id));
        if !deliveries.is_empty() {
            replayed.push(ReplayedEvent { seq: stored.seq, derived, deliveries });
        }
    }
    Ok(replayed)
}

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry")
}

fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "replay failed");
    unavailable()
}
