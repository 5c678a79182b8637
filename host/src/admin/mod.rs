//! The admin API under `/v1/admin/*`, behind `server.admin_token`.
//!
//! Owns bearer-token checking and the operator actions. Today that is replay (dead letters,
//! or every event of a time range routed again); the rest of the admin surface grows here.
//! The API is not mounted at all when no token is configured.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::event::now_millis;
use crate::ingress::http::ApiError;
use crate::routing::{EventView, RouteTable};
use crate::store::{DeliveryState, ReplaySelection, Store, StoreError};

#[derive(Debug, Clone)]
pub struct AdminState {
    pub token: Secret,
    pub store: Store,
    pub routes: Arc<RouteTable>,
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
    authorize(&state.token, &headers)?;
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
            let (store, routes) = (state.store.clone(), state.routes.clone());
            let request = request.clone();
            let pairs = tokio::task::spawn_blocking(move || {
                let events = store.reader()?.events_received_between(since, until)?;
                Ok::<_, StoreError>(route_again(&routes, &events, &request))
            })
            .await
            .map_err(|_| unavailable())?
            .map_err(store_failure)?;
            ReplaySelection::Events(pairs)
        }
    };
    let deliveries = if request.dry_run {
        match &selection {
            ReplaySelection::Events(pairs) => pairs.len(),
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

/// The (event position, endpoint) pairs the current routes give, filtered by the request.
fn route_again(
    routes: &RouteTable,
    events: &[crate::store::StoredEvent],
    request: &ReplayRequest,
) -> Vec<(i64, String)> {
    let mut pairs = Vec::new();
    for stored in events {
        let event = &stored.event;
        let id = event.id.to_string();
        let view = EventView {
            id: &id,
            source: &event.source,
            event_type: &event.event_type,
            subject: event.subject.as_deref(),
            headers: &event.headers,
            body: &event.body,
        };
        let decision = routes.evaluate(&view);
        let endpoints = match &request.route {
            Some(route) => routes.endpoints_of(&decision, route),
            None => decision.endpoints.clone(),
        };
        for endpoint in endpoints {
            if request.endpoint.as_ref().is_none_or(|wanted| *wanted == endpoint) {
                pairs.push((stored.seq, endpoint));
            }
        }
    }
    pairs
}

fn authorize(token: &Secret, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if constant_time_equal(given.as_bytes(), token.expose()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        ))
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry")
}

fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "replay failed");
    unavailable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_equal(b"secret", b"secret"));
        assert!(!constant_time_equal(b"secret", b"secreT"));
        assert!(!constant_time_equal(b"secret", b"secrets"));
        assert!(!constant_time_equal(b"", b"secret"));
    }
}
