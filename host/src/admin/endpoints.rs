//! `/v1/admin/endpoints` and `/v1/admin/subscriptions`: dynamic endpoints created, changed,
//! rotated and deleted at run time; every endpoint (config-defined ones read-only) listed,
//! disabled and re-enabled.
//!
//! A subscription is a dynamic endpoint created from a callback URL and the event types it
//! wants; it is listed under both paths. The signing secret is answered once, at creation
//! (and at rotation, the new one); it is never listed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tokio::net::lookup_host;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{
    Body, ErrorBody, Query, conflict, decode_id_cursor, invalid, not_found, page_after, page_limit,
    store_failure,
};
use super::audit::AuditResource;
use super::model::{
    self, CheckContext, DEFAULT_ROTATION_OVERLAP, EndpointInput, EndpointKind, EndpointRecord,
    FieldError, KeyRecord, MAX_ROTATION_OVERLAP, SecretText, SubscriptionInput,
};
use super::registry::{DynamicEndpoint, RegistryError};
use crate::config::endpoint_rules::{UrlHost, url_host};
use crate::config::values::parse_duration;
use crate::config::{Endpoint, EndpointTarget};
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::signing::SigningKey;
use crate::store::lifecycle::Ownership;
use crate::traffic::endpoint::TrafficView;

/// How long creating an endpoint waits for its host name to resolve (SSRF check).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, replace_endpoint, edit_endpoint, delete_endpoint))
        .routes(routes!(disable_endpoint))
        .routes(routes!(enable_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(verify_endpoint))
        .routes(routes!(list_subscriptions, create_subscription))
        .routes(routes!(get_subscription, delete_subscription))
}

/// Where an endpoint comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `switchyard.toml`: read-only here.
    Config,
    /// Created through this API; stored, survives restarts.
    Dynamic,
}

/// An endpoint as the API shows it. Secrets are never shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub origin: Origin,
    /// How a dynamic endpoint was created; absent for config endpoints.
    pub kind: Option<EndpointKind>,
    /// `http` or `nats`.
    pub target: String,
    pub url: Option<String>,
    /// The subject template of a NATS endpoint.
    pub subject: Option<String>,
    pub description: Option<String>,
    /// Dynamic endpoints: the source ids they receive (empty: all).
    pub sources: Vec<String>,
    /// Dynamic endpoints: the event-type globs they receive (empty: all).
    pub types: Vec<String>,
    pub filter: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub timeout: String,
    pub max_in_flight: u32,
    /// Delays between attempts.
    pub retry_schedule: Vec<String>,
    /// Signing keys in use: how many, and when rotated-out ones stop signing.
    pub signing_keys: Vec<KeyView>,
    /// Which TLS settings an `https` endpoint has of its own; absent: none.
    pub tls: Option<TlsView>,
    pub disabled: bool,
    pub disabled_at: Option<u64>,
    pub disabled_reason: Option<String>,
    /// Dynamic endpoints created while `server.verify_endpoints` is on: whether the endpoint
    /// has proven ownership. Until it is `verified`, its deliveries are parked.
    pub verification: Option<VerificationState>,
    pub created_at: Option<u64>,
    pub updated_at: Option<u64>,
    /// Rate, `Retry-After` pause, breaker, in-flight limit and auto-disable: settings and
    /// live state (since the router started); absent while the endpoint has no worker.
    pub traffic: Option<TrafficView>,
}

/// What TLS settings an endpoint has, without their text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TlsView {
    /// A private CA is trusted instead of the system's roots.
    pub ca: bool,
    /// A client certificate is presented.
    pub client_cert: bool,
}

impl TlsView {
    fn of(tls: &crate::delivery::http::EndpointTls) -> Self {
        Self { ca: tls.has_ca(), client_cert: tls.has_client_cert() }
    }
}

/// Where an endpoint stands in proving ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationState {
    /// Its challenge is not answered yet; deliveries are parked.
    PendingVerification,
    Verified,
    /// Not answered within `server.verify_timeout`: disabled. `POST …/verify` resends it.
    Expired,
}

impl From<Ownership> for VerificationState {
    fn from(ownership: Ownership) -> Self {
        match ownership {
            Ownership::PendingVerification => Self::PendingVerification,
            Ownership::Verified => Self::Verified,
            Ownership::Expired => Self::Expired,
        }
    }
}

/// What a challenge sent by `POST …/verify` got back.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verified {
    pub endpoint: EndpointView,
    /// Whether the endpoint has proven ownership.
    pub verified: bool,
    /// What it answered, e.g. `HTTP 200 without the challenge` or `timeout`.
    pub detail: String,
}

/// A signing key, without the key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    /// Unix ms; absent for config endpoints' keys.
    pub created_at: Option<u64>,
    /// Unix ms after which it stops signing; absent: it signs until rotated out.
    pub expires_at: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointView>,
    /// Give it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Paging of endpoint and subscription lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListPage {
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointCreated {
    pub endpoint: EndpointView,
    /// `whsec_<base64>`: the receiver verifies deliveries with it.
    pub secret: SecretText,
}

/// A state change and how many deliveries it parked or resumed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointChanged {
    pub endpoint: EndpointView,
    pub deliveries: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    /// Its queued deliveries, now dead letters.
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// The new key, `whsec_<base64>`; generated when absent.
    pub secret: Option<SecretText>,
    /// How long the keys in use keep signing beside the new one (default `"24h"`, at most
    /// `"30d"`; `"0s"` retires them now).
    pub overlap: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    pub endpoint: EndpointView,
    /// The new key, shown this once.
    pub secret: SecretText,
    /// Unix ms: until then the previous keys sign too.
    pub previous_expire_at: u64,
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub types: Vec<String>,
    pub filter: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    pub disabled: bool,
    /// Present when created while `server.verify_endpoints` is on; deliveries wait until
    /// `verified`.
    pub verification: Option<VerificationState>,
    pub created_at: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<SubscriptionView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionCreated {
    pub subscription: SubscriptionView,
    /// `whsec_<base64>`, shown this once.
    pub secret: SecretText,
}

/// Disabled endpoints: when and why.
type DisabledMap = HashMap<String, (u64, String)>;

#[utoipa::path(
    get, path = "/v1/admin/endpoints", tag = "endpoints",
    description = "Every endpoint: config-defined ones (read-only) first, then dynamic ones, oldest first.",
    params(ListPage),
    responses(
        (status = 200, body = EndpointList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_endpoints(
    State(state): State<AdminState>,
    Query(paging): Query<ListPage>,
) -> Result<Json<EndpointList>, ApiError> {
    let limit = page_limit(paging.limit)?;
    let after = decode_id_cursor(paging.cursor.as_deref())?;
    let disabled = disabled(&state).await?;
    let mut data: Vec<EndpointView> = state
        .topology
        .endpoints
        .values()
        .map(|endpoint| config_view(&state, endpoint, &disabled))
        .collect();
    let dynamic = state.registry.list();
    data.extend(dynamic.iter().map(|endpoint| dynamic_view(&state, endpoint, &disabled)));
    let (data, next_cursor) = page_after(data, |view| &view.id, after.as_deref(), limit);
    Ok(Json(EndpointList { data, next_cursor }))
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints", tag = "endpoints",
    description = "Creates a dynamic endpoint with its own route (sources, types, filter). \
                   The signing secret is answered once.",
    request_body = EndpointInput,
    responses(
        (status = 201, body = EndpointCreated),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn create_endpoint(
    State(state): State<AdminState>,
    Body(input): Body<EndpointInput>,
) -> Result<(StatusCode, Extension<AuditResource>, Json<EndpointCreated>), ApiError> {
    let (endpoint, secret) = create(&state, input, EndpointKind::Endpoint).await?;
    let disabled = disabled(&state).await?;
    let endpoint = dynamic_view(&state, &endpoint, &disabled);
    let audited = Extension(AuditResource(format!("endpoint/{}", endpoint.id)));
    Ok((StatusCode::CREATED, audited, Json(EndpointCreated { endpoint, secret })))
}

#[utoipa::path(
    get, path = "/v1/admin/endpoints/{id}", tag = "endpoints",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn get_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let disabled = disabled(&state).await?;
    find_view(&state, &id, &disabled).map(Json)
}

#[utoipa::path(
    put, path = "/v1/admin/endpoints/{id}", tag = "endpoints",
    description = "Replaces a dynamic endpoint's settings (its keys stay; rotate them with \
                   `secret/rotate`). Deliveries from now on use the new settings.",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointInput,
    responses(
        (status = 200, body = EndpointView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A config-defined endpoint"),
        (status = 422, body = ErrorBody),
    ),
)]
async fn replace_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(input): Body<EndpointInput>,
) -> Result<Json<EndpointView>, ApiError> {
    let current = find_dynamic(&state, &id)?;
    if input.secret.is_some() {
        let detail = "the secret is not replaced here: rotate it with POST …/secret/rotate";
        return Err(invalid(vec![FieldError::new("secret", detail)]));
    }
    let settings = check(&state, &input).await?;
    store_settings(&state, &id, &current, settings).await.map(Json)
}

/// The fields of a dynamic endpoint that `PATCH` changes; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointEdit {
    pub url: Option<String>,
    /// `""` removes it.
    pub description: Option<String>,
    pub sources: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
    pub timeout: Option<String>,
}

#[utoipa::path(
    patch, path = "/v1/admin/endpoints/{id}", tag = "endpoints",
    description = "Changes some of a dynamic endpoint's settings and keeps the others (its keys, \
                   traffic, TLS and ordering settings stay). Queued deliveries go to the new \
                   URL from their next attempt; with `server.verify_endpoints` on, a new URL \
                   must prove ownership first and they wait meanwhile.",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = EndpointEdit,
    responses(
        (status = 200, body = EndpointView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A config-defined endpoint"),
        (status = 422, body = ErrorBody),
    ),
)]
async fn edit_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(edit): Body<EndpointEdit>,
) -> Result<Json<EndpointView>, ApiError> {
    let current = find_dynamic(&state, &id)?;
    let mut settings = current.record.settings.clone();
    // The changed fields are checked as a creation would check them.
    let input = EndpointInput {
        url: edit.url.clone().unwrap_or_else(|| settings.url.clone()),
        description: edit.description.clone().filter(|text| !text.is_empty()),
        sources: edit.sources.clone().unwrap_or_default(),
        types: edit.types.clone().unwrap_or_default(),
        timeout: edit.timeout.clone(),
        ..EndpointInput::default()
    };
    let checked = check(&state, &input).await?;
    settings.url = checked.url;
    if edit.description.is_some() {
        settings.description = checked.description;
    }
    if edit.sources.is_some() {
        settings.sources = checked.sources;
    }
    if edit.types.is_some() {
        settings.types = checked.types;
    }
    if edit.timeout.is_some() {
        settings.timeout_ms = checked.timeout_ms;
    }
    store_settings(&state, &id, &current, settings).await.map(Json)
}

/// Stores `settings` as endpoint `id`'s; a new URL must prove ownership again when
/// `server.verify_endpoints` is on.
async fn store_settings(
    state: &AdminState,
    id: &str,
    current: &DynamicEndpoint,
    settings: model::EndpointSettings,
) -> Result<EndpointView, ApiError> {
    let now = now_millis();
    // A new URL must prove ownership again (its deliveries wait meanwhile).
    let check_again = current.record.settings.url != settings.url;
    let verification = if check_again { new_verification(state, now)? } else { None };
    let recheck = verification.is_some();
    let replace = move |endpoint: &mut DynamicEndpoint| {
        endpoint.record.settings = settings;
        if verification.is_some() {
            endpoint.record.verification = verification;
        }
        endpoint.updated_at = now;
    };
    let updated = if recheck {
        state.registry.update_ownership(id, replace).await
    } else {
        state.registry.update(id, replace).await
    };
    let endpoint = updated.map_err(registry_failure)?.ok_or_else(|| not_found("endpoint", id))?;
    if recheck {
        send_challenge_later(state, id);
    }
    let disabled = disabled(state).await?;
    Ok(dynamic_view(state, &endpoint, &disabled))
}

#[utoipa::path(
    delete, path = "/v1/admin/endpoints/{id}", tag = "endpoints",
    description = "Deletes a dynamic endpoint. Its queued deliveries become dead letters.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = Deleted),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A config-defined endpoint"),
    ),
)]
async fn delete_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    find_dynamic(&state, &id)?;
    delete(&state, &id, "endpoint").await.map(Json)
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/disable", tag = "endpoints",
    description = "Stops deliveries to any endpoint; its pending deliveries are parked.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointChanged),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn disable_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointChanged>, ApiError> {
    set_enabled(&state, &id, false).await.map(Json)
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/enable", tag = "endpoints",
    description = "Re-enables an endpoint (disabled here or by a 410 Gone); its parked \
                   deliveries are sent.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointChanged),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`unverified`: a dynamic endpoint that \
                                                        has not proven ownership yet"),
    ),
)]
async fn enable_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<EndpointChanged>, ApiError> {
    if state.registry.get(&id).is_some_and(|endpoint| endpoint.record.awaits_owner()) {
        let detail = format!(
            "endpoint `{id}` has not proven ownership: it must answer its challenge \
             (`POST /v1/admin/endpoints/{id}/verify` sends it again)"
        );
        return Err(conflict("unverified", detail));
    }
    set_enabled(&state, &id, true).await.map(Json)
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/verify", tag = "endpoints",
    description = "Sends a dynamic endpoint its ownership challenge again (a signed \
                   `switchyard.endpoint.verification` event holding `challenge`) and waits for \
                   the answer: a 2xx whose body is the challenge (bare, or \
                   `{\"challenge\":\"…\"}`) verifies it, and its parked deliveries go out.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = Verified),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A config-defined endpoint"),
    ),
)]
async fn verify_endpoint(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Verified>, ApiError> {
    find_dynamic(&state, &id)?;
    let challenged = state.ownership.challenge(&state.registry, &id).await;
    let challenged = challenged.map_err(registry_failure)?;
    let challenged = challenged.ok_or_else(|| not_found("endpoint", &id))?;
    let disabled = disabled(&state).await?;
    let endpoint = find_view(&state, &id, &disabled)?;
    Ok(Json(Verified { endpoint, verified: challenged.verified, detail: challenged.detail }))
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/secret/rotate", tag = "endpoints",
    description = "Adds a new signing key. Until the overlap ends, deliveries carry a \
                   signature by the new key and one by each previous key; after it, only the \
                   new one.",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = RotateInput,
    responses(
        (status = 200, body = Rotated),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A config-defined endpoint"),
        (status = 422, body = ErrorBody),
    ),
)]
async fn rotate_secret(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(input): Body<RotateInput>,
) -> Result<Json<Rotated>, ApiError> {
    find_dynamic(&state, &id)?;
    let mut errors = Vec::new();
    let overlap = match input.overlap.as_deref().map(parse_duration) {
        None => DEFAULT_ROTATION_OVERLAP,
        Some(Ok(overlap)) if overlap <= MAX_ROTATION_OVERLAP => overlap,
        Some(Ok(_)) => {
            errors.push(FieldError::new("overlap", "longer than 30d"));
            DEFAULT_ROTATION_OVERLAP
        }
        Some(Err(message)) => {
            errors.push(FieldError::new("overlap", message));
            DEFAULT_ROTATION_OVERLAP
        }
    };
    if let Some(Err(error)) = input.secret.as_ref().map(|secret| SigningKey::parse(&secret.0)) {
        errors.push(FieldError::new("secret", error.to_string()));
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    let secret = new_secret(input.secret)?;
    let now = now_millis();
    let previous_expire_at = now.saturating_add(overlap.as_millis() as u64);
    let new_key = KeyRecord { secret: secret.clone(), created_at: now, expires_at: None };
    let rotate = move |endpoint: &mut DynamicEndpoint| {
        let keys = &mut endpoint.record.keys;
        // Keys past their overlap are dropped; live ones end no later than this overlap, and
        // beyond MAX_LIVE_KEYS the oldest go now.
        keys.retain(|key| key.expires_at.is_none_or(|at| now < at));
        for key in keys.iter_mut() {
            key.expires_at =
                Some(key.expires_at.map_or(previous_expire_at, |at| at.min(previous_expire_at)));
        }
        keys.insert(0, new_key);
        keys.truncate(model::MAX_LIVE_KEYS);
        endpoint.updated_at = now;
    };
    let updated = state.registry.update(&id, rotate).await.map_err(registry_failure)?;
    let endpoint = updated.ok_or_else(|| not_found("endpoint", &id))?;
    let disabled = disabled(&state).await?;
    let endpoint = dynamic_view(&state, &endpoint, &disabled);
    Ok(Json(Rotated { endpoint, secret, previous_expire_at }))
}

#[utoipa::path(
    get, path = "/v1/admin/subscriptions", tag = "subscriptions",
    description = "Subscriptions, oldest first.",
    params(ListPage),
    responses(
        (status = 200, body = SubscriptionList),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_subscriptions(
    State(state): State<AdminState>,
    Query(paging): Query<ListPage>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let limit = page_limit(paging.limit)?;
    let after = decode_id_cursor(paging.cursor.as_deref())?;
    let disabled = disabled(&state).await?;
    let data = state
        .registry
        .list()
        .iter()
        .filter(|endpoint| endpoint.kind == EndpointKind::Subscription)
        .map(|endpoint| subscription_view(endpoint, &disabled))
        .collect();
    let (data, next_cursor) = page_after(data, |view| &view.id, after.as_deref(), limit);
    Ok(Json(SubscriptionList { data, next_cursor }))
}

#[utoipa::path(
    post, path = "/v1/admin/subscriptions", tag = "subscriptions",
    description = "Subscribes a callback URL to event types: creates an endpoint and its route \
                   in one call. The signing secret is answered once.",
    request_body = SubscriptionInput,
    responses(
        (status = 201, body = SubscriptionCreated),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn create_subscription(
    State(state): State<AdminState>,
    Body(input): Body<SubscriptionInput>,
) -> Result<(StatusCode, Extension<AuditResource>, Json<SubscriptionCreated>), ApiError> {
    let (endpoint, secret) = create(&state, input.into(), EndpointKind::Subscription).await?;
    let disabled = disabled(&state).await?;
    let subscription = subscription_view(&endpoint, &disabled);
    let audited = Extension(AuditResource(format!("subscription/{}", subscription.id)));
    Ok((StatusCode::CREATED, audited, Json(SubscriptionCreated { subscription, secret })))
}

#[utoipa::path(
    get, path = "/v1/admin/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, body = SubscriptionView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn get_subscription(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let endpoint = find_subscription(&state, &id)?;
    let disabled = disabled(&state).await?;
    Ok(Json(subscription_view(&endpoint, &disabled)))
}

#[utoipa::path(
    delete, path = "/v1/admin/subscriptions/{id}", tag = "subscriptions",
    description = "Deletes a subscription and its endpoint; queued deliveries become dead letters.",
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, body = Deleted),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn delete_subscription(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    find_subscription(&state, &id)?;
    delete(&state, &id, "subscription").await.map(Json)
}

// --- the operations behind the handlers ---

async fn create(
    state: &AdminState,
    input: EndpointInput,
    kind: EndpointKind,
) -> Result<(DynamicEndpoint, SecretText), ApiError> {
    let settings = check(state, &input).await?;
    let secret = new_secret(input.secret)?;
    let now = now_millis();
    let endpoint = DynamicEndpoint {
        id: model::new_endpoint_id(),
        kind,
        record: EndpointRecord {
            settings,
            keys: vec![KeyRecord { secret: secret.clone(), created_at: now, expires_at: None }],
            verification: new_verification(state, now)?,
        },
        created_at: now,
        updated_at: now,
    };
    state.registry.create(endpoint.clone()).await.map_err(registry_failure)?;
    if endpoint.record.verification.is_some() {
        send_challenge_later(state, &endpoint.id);
    }
    Ok((endpoint, secret))
}

/// A pending ownership check when `server.verify_endpoints` is on.
fn new_verification(
    state: &AdminState,
    now: u64,
) -> Result<Option<model::VerificationRecord>, ApiError> {
    let server = &state.topology.server;
    if !server.verify_endpoints {
        return Ok(None);
    }
    model::new_verification(now, server.verify_timeout).map(Some).map_err(|error| {
        tracing::error!(%error, "no randomness for a verification challenge");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "retry")
    })
}

/// Sends endpoint `id` its challenge on its own task: the admin request does not wait for the
/// endpoint's answer (`POST …/verify` does).
fn send_challenge_later(state: &AdminState, id: &str) {
    state.ownership.started();
    let (ownership, registry, id) =
        (state.ownership.clone(), state.registry.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(error) = ownership.challenge(&registry, &id).await {
            tracing::warn!(endpoint = %id, %error, "challenge not sent; resend it with POST …/verify");
        }
    });
}

/// The field checks, then the SSRF rule for host names: every address the name resolves to
/// now must be allowed (delivery checks again at connect time, against DNS rebinding). A name
/// that does not resolve yet is accepted; its deliveries fail with the reason until it does.
async fn check(
    state: &AdminState,
    input: &EndpointInput,
) -> Result<model::EndpointSettings, ApiError> {
    let context = CheckContext { topology: &state.topology };
    let settings = model::check_endpoint(input, context).map_err(invalid)?;
    let url = url::Url::parse(&settings.url).map_err(|_| unparsable_url())?;
    if let UrlHost::Name(host) = url_host(&url) {
        let port = url.port_or_known_default().unwrap_or(443);
        let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, lookup_host((host, port))).await;
        if let Ok(Ok(addresses)) = resolved {
            for address in addresses {
                if let Err(blocked) = state.topology.egress.check(address.ip()) {
                    let detail = format!("`{host}` resolves to {blocked}");
                    return Err(invalid(vec![FieldError::new("url", detail)]));
                }
            }
        }
    }
    Ok(settings)
}

fn unparsable_url() -> ApiError {
    invalid(vec![FieldError::new("url", "not an absolute URL")])
}

fn new_secret(given: Option<SecretText>) -> Result<SecretText, ApiError> {
    match given {
        Some(secret) => Ok(secret),
        None => model::generate_secret().map_err(|error| {
            tracing::error!(%error, "no randomness for a signing key");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "retry")
        }),
    }
}

async fn delete(state: &AdminState, id: &str, what: &str) -> Result<Deleted, ApiError> {
    match state.registry.delete(id).await.map_err(registry_failure)? {
        Some(dead) => Ok(Deleted { id: id.to_owned(), dead_lettered: dead as u64 }),
        None => Err(not_found(what, id)),
    }
}

async fn set_enabled(
    state: &AdminState,
    id: &str,
    enabled: bool,
) -> Result<EndpointChanged, ApiError> {
    let moved = state.registry.set_enabled(id, enabled).await.map_err(registry_failure)?;
    let moved = moved.ok_or_else(|| not_found("endpoint", id))?;
    let disabled = disabled(state).await?;
    let endpoint = find_view(state, id, &disabled)?;
    Ok(EndpointChanged { endpoint, deliveries: moved as u64 })
}

async fn disabled(state: &AdminState) -> Result<DisabledMap, ApiError> {
    state.store.disabled_endpoints().await.map_err(store_failure)
}

fn find_view(
    state: &AdminState,
    id: &str,
    disabled: &DisabledMap,
) -> Result<EndpointView, ApiError> {
    if let Some(endpoint) = state.topology.endpoints.get(id) {
        return Ok(config_view(state, endpoint, disabled));
    }
    match state.registry.get(id) {
        Some(endpoint) => Ok(dynamic_view(state, &endpoint, disabled)),
        None => Err(not_found("endpoint", id)),
    }
}

fn find_dynamic(state: &AdminState, id: &str) -> Result<DynamicEndpoint, ApiError> {
    if state.topology.endpoints.contains_key(id) {
        let detail = format!("endpoint `{id}` is defined in the config file; change it there");
        return Err(conflict("read_only", detail));
    }
    state.registry.get(id).ok_or_else(|| not_found("endpoint", id))
}

fn find_subscription(state: &AdminState, id: &str) -> Result<DynamicEndpoint, ApiError> {
    match state.registry.get(id) {
        Some(endpoint) if endpoint.kind == EndpointKind::Subscription => Ok(endpoint),
        _ => Err(not_found("subscription", id)),
    }
}

fn registry_failure(error: RegistryError) -> ApiError {
    match error {
        RegistryError::Store(error) => store_failure(error),
        // Not the client's doing, and nothing of it is theirs to read: logged, answered 503.
        error @ (RegistryError::Invalid { .. }
        | RegistryError::Stopped(_)
        | RegistryError::Sealed(_)) => {
            tracing::error!(%error, "admin change not made");
            super::api::unavailable()
        }
    }
}

// --- views ---

fn config_view(state: &AdminState, endpoint: &Endpoint, disabled: &DisabledMap) -> EndpointView {
    let (target, url, subject) = match &endpoint.target {
        EndpointTarget::Http { url } => ("http", Some(url.to_string()), None),
        EndpointTarget::Nats { subject, .. } => ("nats", None, Some(subject.to_string())),
    };
    let traffic = state.registry.traffic(&endpoint.id);
    let state = disabled.get(&endpoint.id);
    EndpointView {
        traffic,
        id: endpoint.id.clone(),
        origin: Origin::Config,
        kind: None,
        target: target.to_owned(),
        url,
        subject,
        description: None,
        sources: Vec::new(),
        types: Vec::new(),
        filter: None,
        headers: model::shown_headers(endpoint.headers.iter().map(|(name, value)| (name, value))),
        timeout: model::format_duration(endpoint.timeout),
        max_in_flight: endpoint.max_in_flight,
        retry_schedule: endpoint.retry_delays.iter().copied().map(model::format_duration).collect(),
        signing_keys: endpoint
            .secrets
            .iter()
            .map(|_| KeyView { created_at: None, expires_at: None })
            .collect(),
        tls: endpoint.tls.as_ref().map(TlsView::of),
        disabled: state.is_some(),
        disabled_at: state.map(|(at, _)| *at),
        disabled_reason: state.map(|(_, reason)| reason.clone()),
        verification: None,
        created_at: None,
        updated_at: None,
    }
}

fn dynamic_view(
    state: &AdminState,
    endpoint: &DynamicEndpoint,
    disabled: &DisabledMap,
) -> EndpointView {
    let settings = &endpoint.record.settings;
    let traffic = state.registry.traffic(&endpoint.id);
    let state = disabled.get(&endpoint.id);
    let retry_schedule = match &settings.retry_ms {
        None => crate::config::STANDARD_RETRY_DELAYS.to_vec(),
        Some(delays) => delays.iter().copied().map(Duration::from_millis).collect(),
    };
    let now = now_millis();
    EndpointView {
        traffic,
        id: endpoint.id.clone(),
        origin: Origin::Dynamic,
        kind: Some(endpoint.kind),
        target: "http".to_owned(),
        url: Some(settings.url.clone()),
        subject: None,
        description: settings.description.clone(),
        sources: settings.sources.clone(),
        types: settings.types.clone(),
        filter: settings.filter.clone(),
        headers: model::shown_headers(&settings.headers),
        timeout: model::format_duration(Duration::from_millis(settings.timeout_ms)),
        max_in_flight: settings.max_in_flight,
        retry_schedule: retry_schedule.into_iter().map(model::format_duration).collect(),
        signing_keys: endpoint
            .record
            .live_keys(now)
            .map(|key| KeyView { created_at: Some(key.created_at), expires_at: key.expires_at })
            .collect(),
        tls: settings
            .tls
            .as_ref()
            .map(|tls| TlsView { ca: tls.ca.is_some(), client_cert: tls.client_cert.is_some() }),
        disabled: state.is_some(),
        disabled_at: state.map(|(at, _)| *at),
        disabled_reason: state.map(|(_, reason)| reason.clone()),
        verification: verification_of(endpoint),
        created_at: Some(endpoint.created_at),
        updated_at: Some(endpoint.updated_at),
    }
}

fn subscription_view(endpoint: &DynamicEndpoint, disabled: &DisabledMap) -> SubscriptionView {
    let settings = &endpoint.record.settings;
    SubscriptionView {
        id: endpoint.id.clone(),
        url: settings.url.clone(),
        types: settings.types.clone(),
        filter: settings.filter.clone(),
        headers: model::shown_headers(&settings.headers),
        description: settings.description.clone(),
        disabled: disabled.contains_key(&endpoint.id),
        verification: verification_of(endpoint),
        created_at: endpoint.created_at,
    }
}

fn verification_of(endpoint: &DynamicEndpoint) -> Option<VerificationState> {
    endpoint.record.verification.as_ref().map(|check| check.state.into())
}
