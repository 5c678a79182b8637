//! `POST /v1/admin/replay`: dead letters sent again, or every event of a time range routed
//! again by the current routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{Body, ErrorBody, invalid, store_failure};
use super::model::FieldError;
use crate::event::Event;
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::pipeline::Pipeline;
use crate::store::{DeliveryState, ReplaySelection, ReplayedEvent};

/// The most events one replay by time range routes again: they are held in memory, routed
/// (plugins included) and committed in one transaction, which holds up ingest meanwhile.
const MAX_REPLAYED_EVENTS: u32 = 10_000;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(replay))
}

/// `POST /v1/admin/replay`. Without `since`: dead letters (optionally of one endpoint) are
/// sent again. With `since`: every event received in `[since, until)` is routed again by the
/// current routes (optionally only `route`, only `endpoint`) and gets new deliveries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
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

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayAnswer {
    pub deliveries: usize,
    pub dry_run: bool,
}

#[utoipa::path(
    post, path = "/v1/admin/replay", tag = "log",
    request_body = ReplayRequest,
    responses(
        (status = 200, body = ReplayAnswer),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "A plugin could not run; nothing was replayed"),
    ),
)]
async fn replay(
    State(state): State<AdminState>,
    Body(request): Body<ReplayRequest>,
) -> Result<Response, ApiError> {
    check(&state, &request)?;
    let selection = match request.since {
        None => ReplaySelection::DeadLetters { endpoint: request.endpoint.clone() },
        Some(since) => {
            let until = request.until.unwrap_or_else(|| now_millis() + 1);
            let events = state
                .store
                .events_received_between(since, until, MAX_REPLAYED_EVENTS + 1)
                .await
                .map_err(store_failure)?;
            if events.len() > MAX_REPLAYED_EVENTS as usize {
                let detail = format!(
                    "more than {MAX_REPLAYED_EVENTS} events in that range: replay a shorter one \
                     (give `until`), one range after the other"
                );
                return Err(invalid(vec![FieldError::new("since", detail)]));
            }
            ReplaySelection::Events(route_again(&state.pipeline, &events, &request).await?)
        }
    };
    let deliveries = if request.dry_run {
        match &selection {
            ReplaySelection::Events(replayed) => {
                replayed.iter().map(|event| event.deliveries.len()).sum()
            }
            ReplaySelection::DeadLetters { endpoint } => {
                let dead = state.store.count_deliveries(DeliveryState::Dead, endpoint.clone());
                dead.await.map_err(store_failure)? as usize
            }
            // Not built by this handler.
            ReplaySelection::Delivery(_) => 1,
        }
    } else {
        state.store.replay(selection).await.map_err(store_failure)?
    };
    Ok(Json(ReplayAnswer { deliveries, dry_run: request.dry_run }).into_response())
}

/// Every problem with `request`, each naming its field.
fn check(state: &AdminState, request: &ReplayRequest) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if request.since.is_none() && request.route.is_some() {
        errors.push(FieldError::new("route", "`route` selects events by time: give `since` too"));
    }
    if request.since.is_none() && request.until.is_some() {
        errors.push(FieldError::new("until", "`until` goes with `since`"));
    }
    if let (Some(since), Some(until)) = (request.since, request.until)
        && until < since
    {
        errors.push(FieldError::new("until", "earlier than `since`"));
    }
    if let Some(route) = &request.route
        && !state.topology.routes.contains_key(route)
    {
        errors.push(FieldError::new("route", format!("no route `{route}` in the config")));
    }
    if let Some(endpoint) = &request.endpoint
        && !state.registry.knows(endpoint)
    {
        errors.push(FieldError::new("endpoint", format!("no endpoint `{endpoint}`")));
    }
    if errors.is_empty() { Ok(()) } else { Err(invalid(errors)) }
}

/// The deliveries the current routes, route plugins and transforms give each event, limited
/// to the request's route and endpoint.
async fn route_again(
    pipeline: &Pipeline,
    events: &[Event],
    request: &ReplayRequest,
) -> Result<Vec<ReplayedEvent>, ApiError> {
    let mut replayed = Vec::new();
    for stored in events {
        let fan_out =
            pipeline.fan_out(stored, request.route.as_deref()).await.map_err(|error| {
                // Plugin ids and reasons are operator business: logged, not answered.
                tracing::warn!(%error, event = %stored.id, "replay stopped: a plugin stage failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "plugin_unavailable",
                    "a plugin could not run; nothing was replayed (the log says why)",
                )
            })?;
        let mut deliveries = fan_out.deliveries;
        if let Some(wanted) = &request.endpoint {
            deliveries.retain(|delivery| delivery.endpoint == *wanted);
        }
        let mut derived = fan_out.derived;
        derived.retain(|event| deliveries.iter().any(|delivery| delivery.event == event.id));
        if !deliveries.is_empty() {
            replayed.push(ReplayedEvent { event: stored.id, derived, deliveries });
        }
    }
    Ok(replayed)
}
