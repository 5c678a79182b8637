//! The webhook ingress and the operational endpoints: health, readiness and metrics.
//!
//! Owns the mapping between a webhook request and the accept path (request → [`Inbound`]);
//! the shared HTTP conventions (errors, body limits, header lists) come from
//! [`crate::http_api`]. Nothing here decides about events.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::HttpState;
use crate::config::SourceKind;
use crate::http_api::{ApiError, header_list, read_body};
use crate::ingest::Inbound;

pub(super) async fn readiness(State(state): State<HttpState>) -> Response {
    let waiting_for = if !state.ready.load(Ordering::Acquire) {
        Some("starting or draining")
    } else {
        match &state.nats {
            Some(nats) if !nats.connection.is_connected() => Some("nats is not connected"),
            Some(nats) if nats.pending_consumers.load(Ordering::Acquire) > 0 => {
                Some("jetstream consumers are not created yet")
            }
            _ => None,
        }
    };
    let projection = &state.metrics.store_projection;
    let waiting_for = match waiting_for {
        Some(detail) => Some(detail.to_owned()),
        None => state.metrics.store_health.problem().or_else(|| projection.problem()),
    };
    let mut body = match &waiting_for {
        None => json!({"status": "ready"}),
        Some(detail) => json!({"status": "unavailable", "detail": detail}),
    };
    // Cluster mode: how far this node's view (its admin API) is behind the cluster's writes.
    if let Some(lag) = projection.lag() {
        body["store_log_lag"] = json!(lag);
    }
    match waiting_for {
        None => Json(body).into_response(),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response(),
    }
}

pub(super) async fn metrics(State(state): State<HttpState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

pub(super) async fn receive_webhook(
    State(state): State<HttpState>,
    Path(source_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let source = state
        .topology
        .sources
        .get(&source_id)
        .filter(|source| matches!(source.kind, SourceKind::Http))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_source",
                format!("no http source `{source_id}` is configured"),
            )
        })?;
    let (parts, body) = request.into_parts();
    super::client_cert::check(source, &parts.extensions)?;
    // Before the body is read: a sender past its limit costs as little as possible.
    super::limit::admit(&state, source, &parts.headers, &parts.extensions)?;
    let body = read_body(&parts.headers, body, source.max_body).await?;
    let inbound = Inbound {
        headers: header_list(&parts.headers),
        body,
        subject: None,
        event_type: None,
        dedupe_key: None,
    };
    let receipt = state.ingestor.accept(source, inbound).await.map_err(ApiError::from)?;
    let answer = Json(json!({"id": receipt.id().to_string()}));
    Ok((StatusCode::ACCEPTED, answer).into_response())
}
