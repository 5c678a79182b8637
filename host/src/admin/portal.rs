//! `POST /v1/admin/endpoints/{id}/portal`: a link that shows one endpoint to its owner (the
//! consumer who subscribed): its deliveries and attempts, retry, a test event, and rotating
//! its secret; nothing else is reachable with it, and it expires.
//!
//! The link's token is signed with the dashboard's session key (derived from the configured
//! tokens), so any node with the same config honours it, and changing a token ends every link.
//! Must not: store anything (the token is the grant).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::access::AccessTokens;
use super::api::{Body, ErrorBody, invalid, not_found};
use super::model::FieldError;
use crate::config::values::parse_duration;
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::ui::session::SessionKey;

/// A link's lifetime when the request does not say, and the longest allowed.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(create_portal))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalInput {
    /// How long the link works: `"1h"` by default, at most `"30d"`.
    pub ttl: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalLink {
    /// `/portal/<token>` on this router's admin listener.
    pub url: String,
    /// Unix ms after which the link no longer works.
    pub expires_at: u64,
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/portal", tag = "endpoints",
    description = "A link showing one endpoint to its owner: its deliveries and attempts, \
                   retry, a test event, rotating its secret. Nothing else is reachable with it; \
                   it expires.",
    params(("id" = String, Path, description = "Endpoint id")),
    request_body = PortalInput,
    responses(
        (status = 200, body = PortalLink),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn create_portal(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(input): Body<PortalInput>,
) -> Result<Json<PortalLink>, ApiError> {
    if !state.registry.knows(&id) {
        return Err(not_found("endpoint", &id));
    }
    let ttl = match input.ttl.as_deref().map(parse_duration) {
        None => DEFAULT_TTL,
        Some(Ok(ttl)) if ttl >= Duration::from_secs(1) && ttl <= MAX_TTL => ttl,
        Some(Ok(_)) => {
            return Err(invalid(vec![FieldError::new("ttl", "must be from `1s` to `30d`")]));
        }
        Some(Err(detail)) => return Err(invalid(vec![FieldError::new("ttl", detail)])),
    };
    let tokens = AccessTokens::of(&state.topology.server)
        .expect("the admin API runs only with an admin token");
    let expires_at = now_millis() + ttl.as_millis() as u64;
    let token = SessionKey::derive(&tokens).issue_portal(&id, expires_at);
    Ok(Json(PortalLink { url: format!("/portal/{token}"), expires_at }))
}
