//! The HTTP surface: webhook ingress, health, readiness and metrics.
//!
//! Owns the mapping between HTTP and the accept path: request → [`Inbound`], and
//! [`IngestError`] → status code and JSON error body. [`router`] builds an `axum::Router`
//! that tests can drive without a socket. Nothing here decides about events.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;

use crate::config::{Secret, SourceKind, Topology};
use crate::ingest::{EventTypeError, Inbound, IngestError, Ingestor};
use crate::nats::NatsConnection;
use crate::pipeline::StageError;
use crate::store::StoreError;
use crate::telemetry::Metrics;

/// Seconds a sender should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "1";

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub topology: Arc<Topology>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
    /// False while starting and while draining: `/readyz` answers 503.
    pub ready: Arc<AtomicBool>,
    /// With NATS in use, `/readyz` also needs the connection up and every consumer created.
    pub nats: Option<NatsReadiness>,
}

/// What NATS readiness depends on.
#[derive(Debug, Clone)]
pub struct NatsReadiness {
    pub connection: NatsConnection,
    /// JetStream consumers not created yet.
    pub pending_consumers: Arc<AtomicUsize>,
}

pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/{source}", post(receive_webhook))
        .route("/v1/events", post(super::publish::publish))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for `{} {}`", request.method(), request.uri().path()),
            )
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("`{}` is not allowed on `{}`", request.method(), request.uri().path()),
            )
        })
        .with_state(state)
}

async fn readiness(State(state): State<HttpState>) -> Response {
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
    let waiting_for = match waiting_for {
        Some(detail) => Some(detail.to_owned()),
        None => state.metrics.store_health.problem(),
    };
    match waiting_for {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": detail})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

async fn receive_webhook(
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

/// Reads the whole body, refusing it with 413 as soon as it is known to exceed `limit`:
/// from `content-length` before reading anything, or while reading a chunked body.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than this source's limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "body_read_failed",
            format!("the request body could not be read: {error}"),
        )),
    }
}

/// Header names come lower-cased from the HTTP parser. Values that are not UTF-8 (obs-text
/// bytes, allowed by HTTP) are decoded as ISO-8859-1, which maps every byte to one character,
/// so nothing is lost and the event is still accepted.
pub(super) fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(name, value)| (name.as_str().to_owned(), header_text(value))).collect()
}

fn header_text(value: &HeaderValue) -> String {
    match value.to_str() {
        Ok(text) => text.to_owned(),
        Err(_) => value.as_bytes().iter().map(|&byte| char::from(byte)).collect(),
    }
}

/// Checks `authorization: Bearer <token>`; 401 otherwise.
pub fn require_bearer(token: &Secret, headers: &HeaderMap) -> Result<(), ApiError> {
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

/// A JSON error answer: `{"code": "snake_case", "detail": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: String,
    retry_after: bool,
    /// Problems by field (`[(field, detail)]`), for 422s that name what to fix.
    fields: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            retry_after: false,
            fields: Vec::new(),
        }
    }

    /// The same error, naming the fields at fault: the answer gains `field` (the first one)
    /// and `errors` (every one, `{field, detail}`).
    pub fn with_fields(mut self, fields: Vec<(String, String)>) -> Self {
        self.fields = fields;
        self
    }

    fn unavailable(code: &'static str, detail: &str) -> Self {
        Self { retry_after: true, ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail) }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::EventType(error @ EventTypeError::TooLong) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_event_type", error.to_string())
            }
            IngestError::EventType(error) => {
                Self::new(StatusCode::BAD_REQUEST, "missing_event_type", error.to_string())
            }
            IngestError::Rejected(rejection) => {
                // `Verdict::validate` keeps statuses within 4xx.
                let status =
                    StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
                Self::new(status, rejection.code, rejection.message)
            }
            IngestError::Plugin(StageError::Busy) => {
                Self::unavailable("overloaded", "every plugin thread is busy; retry")
            }
            IngestError::Plugin(error) => {
                // Plugin ids and reasons are operator business; they are logged, not sent.
                tracing::warn!(%error, "event not accepted: a plugin stage asked for a retry");
                Self::unavailable("plugin_unavailable", "the event could not be processed; retry")
            }
            IngestError::Store(StoreError::Busy) => {
                Self::unavailable("overloaded", "too many events are waiting to be stored; retry")
            }
            IngestError::Store(error) => {
                // Logged here, once; the sender only learns that it should retry.
                crate::health::log_store_error("event not stored", &error);
                Self::unavailable("unavailable", "the event could not be stored; retry")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "detail": self.detail});
        if let Some((first, _)) = self.fields.first() {
            body["field"] = json!(first);
            let errors: Vec<_> = self
                .fields
                .iter()
                .map(|(field, detail)| json!({"field": field, "detail": detail}))
                .collect();
            body["errors"] = json!(errors);
        }
        let body = Json(body);
        let mut response = (self.status, body).into_response();
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        response
    }
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
