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
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::HttpState;
use crate::cloudevents::{self, CloudEvent};
use crate::config::{Source, SourceKind, Topology};
use crate::http_api::{ApiError, header_list, read_body, require_bearer};
use crate::ingest::Inbound;

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

/// The query string: `?source=<id>` names the source (percent-decoded); the rest is ignored.
#[derive(Debug, Deserialize)]
pub struct PublishQuery {
    source: Option<String>,
}

pub async fn publish(
    State(state): State<HttpState>,
    query: Result<Query<PublishQuery>, QueryRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(token) = &state.topology.server.publish_token else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "the publish API is off"));
    };
    let (parts, body) = request.into_parts();
    require_bearer(token, &parts.headers)?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    })?;
    let api_sources = api_sources(&state.topology)?;
    // Limited by the largest api source's `max_body` until the source is known.
    let limit = api_sources.iter().map(|source| source.max_body).max().unwrap_or_default();
    let body = read_body(&parts.headers, body, limit).await?;
    let headers = kept_headers(&parts.headers);
    let cloudevent = cloudevents::structured(&headers, &body).map_err(|malformed| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_cloudevent", malformed.to_string())
    })?;
    let (source_id, inbound) = match cloudevent {
        Some(cloudevent) => (query.source, cloudevent_inbound(cloudevent, headers, body)),
        None => plain_inbound(headers, &body, query.source)?,
    };
    let source = chosen_source(source_id, &api_sources)?;
    super::client_cert::check(source, &parts.extensions)?;
    super::limit::admit(&state, source, &parts.headers, &parts.extensions)?;
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

/// The sources of `type = "api"`; 422 when there is none.
fn api_sources(topology: &Topology) -> Result<Vec<&Source>, ApiError> {
    let sources: Vec<&Source> =
        topology.sources.values().filter(|source| matches!(source.kind, SourceKind::Api)).collect();
    if sources.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_source",
            "no source has `type = \"api\"`; add one to publish to it",
        ));
    }
    Ok(sources)
}

/// The request's headers as the event keeps them: all but `authorization`.
fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    header_list(headers).into_iter().filter(|(name, _)| name != "authorization").collect()
}

/// The non-empty `idempotency-key`, which wins over any other dedupe key.
fn idempotency_key(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .find(|(name, value)| name == IDEMPOTENCY_HEADER && !value.is_empty())
        .map(|(_, value)| value.clone())
}

/// A structured CloudEvent, kept whole.
fn cloudevent_inbound(
    cloudevent: CloudEvent,
    headers: Vec<(String, String)>,
    body: Bytes,
) -> Inbound {
    let dedupe_key = idempotency_key(&headers).or(Some(cloudevent.id));
    Inbound { headers, body, subject: None, event_type: Some(cloudevent.event_type), dedupe_key }
}

/// A plain request: the event's body is `data` as JSON; the body's `source` wins over the
/// query's.
fn plain_inbound(
    mut headers: Vec<(String, String)>,
    body: &[u8],
    query_source: Option<String>,
) -> Result<(Option<String>, Inbound), ApiError> {
    let request: PublishRequest = serde_json::from_slice(body).map_err(|error| {
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
    let dedupe_key = idempotency_key(&headers);
    headers.retain(|(name, _)| name != "content-type" && name != "content-length");
    headers.push(("content-type".into(), "application/json".into()));
    let inbound = Inbound {
        headers,
        body: Bytes::from(request.data.to_string()),
        subject: request.subject,
        event_type: Some(request.event_type),
        dedupe_key,
    };
    Ok((request.source.or(query_source), inbound))
}

/// The named api source, or the only one when none is named.
fn chosen_source<'a>(
    source_id: Option<String>,
    api_sources: &[&'a Source],
) -> Result<&'a Source, ApiError> {
    match (source_id, api_sources) {
        (Some(id), _) => {
            api_sources.iter().find(|source| source.id == id).copied().ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_source",
                    format!("`{id}` is not a source of `type = \"api\"`"),
                )
            })
        }
        (None, [only]) => Ok(*only),
        (None, _) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_source",
            "name the source: there is not exactly one source of `type = \"api\"`",
        )),
    }
}
