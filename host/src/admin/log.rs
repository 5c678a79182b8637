//! The delivery log: events, deliveries and their attempts, listed newest first with cursor
//! pagination; manual retry of one delivery; dead letters listed and redriven.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::access::Role;
use super::api::{
    Body, ErrorBody, Query, conflict, decode_cursor, encode_cursor, next_cursor, not_found,
    page_limit, store_failure,
};
use super::audit::AuditResource;
use crate::event::EventId;
use crate::http_api::ApiError;
use crate::store::{
    AttemptRow, DeliveryId, DeliveryQuery, DeliveryState, DeliverySummary, EventQuery,
    EventSummary, LogPosition, ReplaySelection,
};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(list_attempts))
        .routes(routes!(retry_delivery))
        .routes(routes!(list_dead_letters))
        .routes(routes!(redrive_dead_letters))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Retries exhausted or a permanent failure; redrive or retry it.
    Dead,
    /// Its endpoint is disabled; re-enabling it resumes the delivery.
    Parked,
}

impl From<DeliveryState> for Status {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Dead => Self::Dead,
            DeliveryState::Parked => Self::Parked,
        }
    }
}

impl From<Status> for DeliveryState {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Delivered => Self::Delivered,
            Status::Dead => Self::Dead,
            Status::Parked => Self::Parked,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only events of this source id.
    source: Option<String>,
    /// Only events of this exact type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Received at or after (unix ms).
    since: Option<u64>,
    /// Received before (unix ms).
    until: Option<u64>,
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

/// An event without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub event_type: String,
    pub subject: Option<String>,
    /// Unix ms.
    pub received_at: u64,
    pub dedupe_key: Option<String>,
    /// The event a plugin split this one from (given in listings).
    pub parent: Option<String>,
    pub body_size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    /// Give it as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventOptions {
    /// Include the headers and the body.
    #[serde(default)]
    body: bool,
}

/// An event with, on request, its headers and body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    /// `[name, value]` pairs in received order.
    pub headers: Option<Vec<Vec<String>>>,
    /// The body as text when it is UTF-8, else base64 (see `body_encoding`).
    pub body: Option<String>,
    /// `utf8` or `base64`.
    pub body_encoding: Option<String>,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// Only deliveries to this endpoint id.
    endpoint: Option<String>,
    status: Option<Status>,
    /// Only deliveries of this event id.
    event: Option<String>,
    /// Event received at or after (unix ms).
    since: Option<u64>,
    /// Event received before (unix ms).
    until: Option<u64>,
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterFilter {
    endpoint: Option<String>,
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event: String,
    pub endpoint: String,
    pub status: Status,
    pub attempts: u32,
    /// Unix ms of the next attempt (pending), else of the last change.
    pub next_attempt_at: u64,
    pub last_error: Option<String>,
    /// When its event was received (unix ms).
    pub received_at: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: i64,
    /// Unix ms.
    pub attempted_at: u64,
    pub duration_ms: f64,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The first 1 KiB of the answer, as text when it is UTF-8, else base64.
    pub response: String,
    /// `utf8` or `base64`.
    pub response_encoding: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    pub data: Vec<AttemptView>,
    /// Give it as `cursor` for the next (newer) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptPage {
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveInput {
    /// Only this endpoint's dead letters.
    pub endpoint: Option<String>,
    /// Only these dead letters (delivery ids, at most 500; those not dead now are skipped).
    #[serde(default)]
    pub ids: Vec<String>,
    /// Count the dead letters that would be redriven; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redriven {
    /// Dead letters made pending again (with `dry_run`: that would be).
    pub deliveries: u64,
    pub dry_run: bool,
}

#[utoipa::path(
    get, path = "/v1/admin/events", tag = "log",
    description = "Events, newest first.",
    params(EventFilter),
    responses(
        (status = 200, body = EventPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_events(
    State(state): State<AdminState>,
    Query(filter): Query<EventFilter>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = page_limit(filter.limit)?;
    let query = EventQuery {
        source: filter.source,
        event_type: filter.event_type,
        since: filter.since,
        until: filter.until,
        before: decode_cursor(filter.cursor.as_deref(), LogPosition::decode)?,
        limit,
    };
    let events = state.store.list_events(query).await.map_err(store_failure)?;
    let last = events.last().map(|event| event.position.encode());
    let next_cursor = next_cursor(events.len(), limit, last);
    Ok(Json(EventPage { data: events.into_iter().map(event_view).collect(), next_cursor }))
}

#[utoipa::path(
    get, path = "/v1/admin/events/{id}", tag = "log",
    description = "An event; with `body=true` its headers and body too (to the viewer token, \
                   credential-like headers are `[redacted]`).",
    params(("id" = String, Path, description = "Event id (`evt_…`)"), EventOptions),
    responses(
        (status = 200, body = EventDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn get_event(
    State(state): State<AdminState>,
    role: Option<Extension<Role>>,
    Path(id): Path<String>,
    Query(options): Query<EventOptions>,
) -> Result<Json<EventDetail>, ApiError> {
    // A viewer never sees a secret: credential-like headers of the event are redacted.
    let redact = !matches!(role, Some(Extension(Role::Admin)));
    let event_id: EventId = id.parse().map_err(|_| not_found("event", &id))?;
    let event = state.store.event(event_id).await.map_err(store_failure)?;
    let Some(event) = event else { return Err(not_found("event", &id)) };
    let query = DeliveryQuery { event: Some(event_id), limit: 1000, ..DeliveryQuery::default() };
    let deliveries = state.store.list_deliveries(query).await.map_err(store_failure)?;
    let (body, body_encoding) = if options.body {
        let (text, encoding) = text_or_base64(&event.body);
        (Some(text), Some(encoding))
    } else {
        (None, None)
    };
    let headers = options.body.then(|| {
        let shown = |name: &String, value: &String| {
            if redact && super::model::is_sensitive_header(name) {
                "[redacted]".to_owned()
            } else {
                value.clone()
            }
        };
        event.headers.iter().map(|(name, value)| vec![name.clone(), shown(name, value)]).collect()
    });
    let view = EventView {
        id: event.id.to_string(),
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        subject: event.subject.clone(),
        received_at: event.received_at,
        dedupe_key: event.dedupe_key.clone(),
        parent: None,
        body_size: event.body.len() as u64,
    };
    let deliveries = deliveries.into_iter().map(delivery_view).collect();
    Ok(Json(EventDetail { event: view, headers, body, body_encoding, deliveries }))
}

#[utoipa::path(
    get, path = "/v1/admin/deliveries", tag = "log",
    description = "Deliveries, newest first.",
    params(DeliveryFilter),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_deliveries(
    State(state): State<AdminState>,
    Query(filter): Query<DeliveryFilter>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let event = match filter.event.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<EventId>().map_err(|_| {
            super::api::invalid(vec![super::model::FieldError::new("event", "not an event id")])
        })?),
    };
    let limit = page_limit(filter.limit)?;
    let query = DeliveryQuery {
        endpoint: filter.endpoint,
        state: filter.status.map(DeliveryState::from),
        event,
        since: filter.since,
        until: filter.until,
        before: decode_cursor(filter.cursor.as_deref(), DeliveryId::parse)?,
        limit,
    };
    deliveries_page(&state, query).await.map(Json)
}

#[utoipa::path(
    get, path = "/v1/admin/deliveries/{id}", tag = "log",
    description = "A delivery and every attempt at it, oldest first.",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, body = DeliveryDetail),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn get_delivery(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let delivery_id = parse_delivery_id(&id)?;
    let delivery = state.store.delivery(delivery_id).await.map_err(store_failure)?;
    let Some(delivery) = delivery else { return Err(not_found("delivery", &id)) };
    let attempts = state.store.attempts(delivery_id).await.map_err(store_failure)?;
    let attempt_log = attempts.into_iter().map(attempt_view).collect();
    Ok(Json(DeliveryDetail { delivery: delivery_view(delivery), attempt_log }))
}

#[utoipa::path(
    get, path = "/v1/admin/deliveries/{id}/attempts", tag = "log",
    description = "A delivery's attempts, oldest first (new attempts only ever come last).",
    params(("id" = String, Path, description = "Delivery id"), AttemptPage),
    responses(
        (status = 200, body = AttemptList),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_attempts(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(paging): Query<AttemptPage>,
) -> Result<Json<AttemptList>, ApiError> {
    let delivery_id = parse_delivery_id(&id)?;
    let limit = page_limit(paging.limit)?;
    let after = decode_cursor(paging.cursor.as_deref(), |text| {
        text.parse::<i64>().ok().filter(|id| *id > 0).map(|id| id as u64)
    })?
    .unwrap_or(0);
    if state.store.delivery(delivery_id).await.map_err(store_failure)?.is_none() {
        return Err(not_found("delivery", &id));
    }
    let attempts = state.store.attempts(delivery_id).await.map_err(store_failure)?;
    let mut page: Vec<AttemptRow> =
        attempts.into_iter().filter(|attempt| attempt.id > after).collect();
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = more.then(|| page.last().map(|attempt| encode_cursor(attempt.id))).flatten();
    Ok(Json(AttemptList { data: page.into_iter().map(attempt_view).collect(), next_cursor }))
}

#[utoipa::path(
    post, path = "/v1/admin/deliveries/{id}/retry", tag = "log",
    description = "Sends a dead or delivered delivery again, now.",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 202, body = DeliveryView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Pending already, parked (enable its endpoint), or its endpoint is gone"),
    ),
)]
async fn retry_delivery(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), ApiError> {
    let delivery_id = parse_delivery_id(&id)?;
    let delivery = state.store.delivery(delivery_id).await.map_err(store_failure)?;
    let Some(delivery) = delivery else {
        return Err(not_found("delivery", &id));
    };
    match delivery.state {
        DeliveryState::Pending => {
            return Err(conflict("already_pending", "it is waiting for its next attempt already"));
        }
        DeliveryState::Parked => {
            return Err(conflict(
                "endpoint_disabled",
                format!("its endpoint `{}` is disabled; enable it to resume", delivery.endpoint),
            ));
        }
        DeliveryState::Dead | DeliveryState::Delivered => {}
    }
    if !state.registry.knows(&delivery.endpoint) {
        let detail =
            format!("its endpoint `{}` was deleted (or left the config)", delivery.endpoint);
        return Err(conflict("endpoint_gone", detail));
    }
    let retried =
        state.store.replay(ReplaySelection::Delivery(delivery_id)).await.map_err(store_failure)?;
    if retried == 0 {
        return Err(conflict("already_pending", "its state changed meanwhile; look again"));
    }
    let delivery = state.store.delivery(delivery_id).await.map_err(store_failure)?;
    let delivery = delivery.ok_or_else(|| not_found("delivery", &id))?;
    Ok((StatusCode::ACCEPTED, Json(delivery_view(delivery))))
}

#[utoipa::path(
    get, path = "/v1/admin/dead-letters", tag = "log",
    description = "Dead letters, newest first.",
    params(DeadLetterFilter),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_dead_letters(
    State(state): State<AdminState>,
    Query(filter): Query<DeadLetterFilter>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = page_limit(filter.limit)?;
    let query = DeliveryQuery {
        endpoint: filter.endpoint,
        state: Some(DeliveryState::Dead),
        before: decode_cursor(filter.cursor.as_deref(), DeliveryId::parse)?,
        limit,
        ..DeliveryQuery::default()
    };
    deliveries_page(&state, query).await.map(Json)
}

#[utoipa::path(
    post, path = "/v1/admin/dead-letters/redrive", tag = "log",
    description = "Makes dead letters (optionally of one endpoint, or only the given ids) \
                   pending again; they are sent now. With `dry_run`, only counts them.",
    request_body = RedriveInput,
    responses(
        (status = 200, body = Redriven),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn redrive_dead_letters(
    State(state): State<AdminState>,
    Body(input): Body<RedriveInput>,
) -> Result<(Extension<AuditResource>, Json<Redriven>), ApiError> {
    let resource = Extension(AuditResource(match &input.endpoint {
        Some(endpoint) => format!("endpoint/{endpoint}"),
        None => "dead-letters".to_owned(),
    }));
    if !input.ids.is_empty() {
        let selected = dead_among(&state, &input).await?;
        if input.dry_run {
            return Ok((
                resource,
                Json(Redriven { deliveries: selected.len() as u64, dry_run: true }),
            ));
        }
        let mut deliveries = 0;
        for id in selected {
            let replay = state.store.replay(ReplaySelection::Delivery(id)).await;
            deliveries += replay.map_err(store_failure)? as u64;
        }
        return Ok((resource, Json(Redriven { deliveries, dry_run: false })));
    }
    if input.dry_run {
        let store = &state.store;
        let count = store.count_deliveries(DeliveryState::Dead, input.endpoint).await;
        let deliveries = count.map_err(store_failure)?;
        return Ok((resource, Json(Redriven { deliveries, dry_run: true })));
    }
    let selection = ReplaySelection::DeadLetters { endpoint: input.endpoint };
    let deliveries = state.store.replay(selection).await.map_err(store_failure)?;
    Ok((resource, Json(Redriven { deliveries: deliveries as u64, dry_run: false })))
}

/// Dead letters to redrive by selection: those of `input.ids` that are dead now (and of
/// `input.endpoint`, if given).
async fn dead_among(state: &AdminState, input: &RedriveInput) -> Result<Vec<DeliveryId>, ApiError> {
    const MAX_IDS: usize = 500;
    if input.ids.len() > MAX_IDS {
        let detail = format!("{} ids; at most {MAX_IDS}", input.ids.len());
        return Err(super::api::invalid(vec![super::model::FieldError::new("ids", detail)]));
    }
    let mut dead = Vec::new();
    for text in &input.ids {
        let Some(id) = DeliveryId::parse(text) else { continue };
        let delivery = state.store.delivery(id).await.map_err(store_failure)?;
        let wanted = delivery.is_some_and(|delivery| {
            delivery.state == DeliveryState::Dead
                && input.endpoint.as_ref().is_none_or(|endpoint| *endpoint == delivery.endpoint)
        });
        if wanted && !dead.contains(&id) {
            dead.push(id);
        }
    }
    Ok(dead)
}

async fn deliveries_page(
    state: &AdminState,
    query: DeliveryQuery,
) -> Result<DeliveryPage, ApiError> {
    let limit = query.limit;
    let deliveries = state.store.list_deliveries(query).await.map_err(store_failure)?;
    let next_cursor = next_cursor(deliveries.len(), limit, deliveries.last().map(|d| d.id));
    Ok(DeliveryPage { data: deliveries.into_iter().map(delivery_view).collect(), next_cursor })
}

/// Delivery ids are positive integers; anything else names no delivery.
fn parse_delivery_id(id: &str) -> Result<DeliveryId, ApiError> {
    DeliveryId::parse(id).ok_or_else(|| not_found("delivery", id))
}

fn event_view(event: EventSummary) -> EventView {
    EventView {
        id: event.id.to_string(),
        source: event.source,
        event_type: event.event_type,
        subject: event.subject,
        received_at: event.received_at,
        dedupe_key: event.dedupe_key,
        parent: event.parent.map(|parent| parent.to_string()),
        body_size: event.body_size,
    }
}

fn delivery_view(delivery: DeliverySummary) -> DeliveryView {
    DeliveryView {
        // Shown as the signed 64-bit integer it always was (the OpenAPI document says so).
        id: delivery.id.get() as i64,
        event: delivery.event_id.to_string(),
        endpoint: delivery.endpoint,
        status: delivery.state.into(),
        attempts: delivery.attempts,
        next_attempt_at: delivery.next_attempt_at,
        last_error: delivery.last_error,
        received_at: delivery.received_at,
    }
}

fn attempt_view(attempt: AttemptRow) -> AttemptView {
    let (response, response_encoding) = text_or_base64(&attempt.response_excerpt);
    AttemptView {
        id: attempt.id as i64,
        attempted_at: attempt.attempted_at,
        duration_ms: attempt.duration_micros as f64 / 1000.0,
        status: attempt.status,
        error: attempt.error,
        response,
        response_encoding,
    }
}

/// Bytes as UTF-8 text when they are, else base64; with which it is.
fn text_or_base64(bytes: &[u8]) -> (String, String) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf8".to_owned()),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(bytes), "base64".to_owned()),
    }
}
