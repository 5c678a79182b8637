//! The publish API, `POST /v1/events`: events from services that do not speak NATS.
//!
//! Owns the request format and its mapping onto the accept path. Two bodies are accepted:
//! - `{"type": "…", "source"?: "…", "subject"?: "…", "data": <any JSON>}`: the event's body is
//!   `data` as JSON;
//! - a structured CloudEvent (`content-type: application/cloudevents+json`): kept whole, as
//!   NATS sources keep them; its `type` is the event type and its `id` the dedupe key; the
//!   Switchyard source is named by `?source=<id>` (a CloudEvent's own `source` is a URI).
//!
//! Decisions the design leaves open: the API is behind its own bearer token
//! (`server.publish_token`; absent ⇒ 404), since anyone able to publish can make Switchyard
//! sign and deliver; events must name a source of `type = "api"` (routes name it in `from`,
//! and its `event_type`, `dedupe`, `verify` and `max_body` apply), and `source` may be left
//! out when exactly one such source exists; the `authorization` header is never stored;
//! `idempotency-key` is the dedupe key (the source's window, else 24 h), winning over a
//! CloudEvent id.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{ApiError, HttpState, header_list, read_body, require_bearer};
use crate::config::{Source, SourceKind};
use crate::ingest::Inbound;
use crate::nats::mapping::{self, NatsMessage};

const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The plain request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    #[serde(rename = "type")]
    event_type: String,
    source: Option<String>,
    subject: Option<String>,
    data: Value,
}

pub async fn publish(
    State(state): State<HttpState>,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(token) = &state.topology.server.publish_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "the publish API is off"));
    };
    let (parts, body) = request.into_parts();
    require_bearer(token, &parts.headers)?;
    // Limited by the largest api source's `max_body` until the source is known.
    let api_sources: Vec<&Source> = state
        .topology
        .sources
        .values()
        .filter(|source| matches!(source.kind, SourceKind::Api))
        .collect();
    if api_sources.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_source",
            "no source has `type = \"api\"`; add one to publish to it",
        ));
    }
    let limit = api_sources.iter().map(|source| source.max_body).max().unwrap_or_default();
    let body = read_body(&parts.headers, body, limit).await?;
    let mut headers: Vec<(String, String)> = header_list(&parts.headers)
        .into_iter()
        .filter(|(name, _)| name != "authorization")
        .collect();
    let idempotency_key = headers
        .iter()
        .find(|(name, _)| name == IDEMPOTENCY_HEADER)
        .map(|(_, value)| value.clone())
        .filter(|value| !value.is_empty());
    let structured =
        NatsMessage { subject: String::new(), headers: headers.clone(), payload: body.clone() };
    let is_cloudevent = headers.iter().any(|(name, value)| {
        name == "content-type"
            && value.to_ascii_lowercase().starts_with("application/cloudevents+json")
    });
    let (source_id, inbound) = if is_cloudevent {
        let declared = mapping::declared(&structured).map_err(|malformed| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_cloudevent",
                malformed.to_string(),
            )
        })?;
        let inbound = Inbound {
            headers,
            body,
            subject: None,
            event_type: declared.event_type,
            dedupe_key: idempotency_key.or(declared.dedupe_key),
        };
        (query_source(parts.uri.query()), inbound)
    } else {
        let request: PublishRequest = serde_json::from_slice(&body).map_err(|error| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("expected {{\"type\", \"source\"?, \"subject\"?, \"data\"}}: {error}"),
            )
        })?;
        if request.event_type.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "`type` is empty",
            ));
        }
        headers.retain(|(name, _)| name != "content-type" && name != "content-length");
        headers.push(("content-type".into(), "application/json".into()));
        let inbound = Inbound {
            headers,
            body: Bytes::from(request.data.to_string()),
            subject: request.subject,
            event_type: Some(request.event_type),
            dedupe_key: idempotency_key,
        };
        (request.source.or_else(|| query_source(parts.uri.query())), inbound)
    };
    let source = match (source_id, api_sources.as_slice()) {
        (Some(id), _) => {
            api_sources.iter().find(|source| source.id == id).copied().ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_source",
                    format!("`{id}` is not a source of `type = \"api\"`"),
                )
            })?
        }
        (None, [only]) => *only,
        (None, _) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_source",
                "name the source: there is not exactly one source of `type = \"api\"`",
            ));
        }
    };
    if inbound.body.len() as u64 > source.max_body {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than this source's limit of {} bytes", source.max_body),
        ));
    }
    let receipt = state.ingestor.accept(source, inbound).await.map_err(ApiError::from)?;
    let answer = Json(json!({"id": receipt.id().to_string()}));
    Ok((StatusCode::ACCEPTED, [(header::CACHE_CONTROL, "no-store")], answer).into_response())
}

/// `?source=<id>`: how a CloudEvent (whose own `source` is a URI reference, not ours) names
/// the Switchyard source.
fn query_source(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| pair.strip_prefix("source=")).map(str::to_owned)
}
