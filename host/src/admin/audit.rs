//! The audit log of state-changing admin actions: what is recorded, and `GET /v1/admin/audit`.
//!
//! Owns [`Credential`] (who acted, put on the request by the authentication layer), the one
//! function every surface calls to record an action ([`record`]), the layer that records each
//! state-changing admin request ([`record_admin_actions`]), the names of actions ([`describe`],
//! a pure table) and the listing. An entry names a credential, never holds one, and keeps no
//! request or response body: nothing that passes through here can leak a secret into the log.
//! It must not decide whether an action is allowed; that is the authentication layer's job.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{ErrorBody, Query, decode_cursor, next_cursor, page_limit, store_failure};
use crate::event::now_millis;
use crate::http_api::{ApiError, ErrorCode};
use crate::store::{AuditEntry, AuditQuery, AuditRecord, LogPosition, Store};

/// The outcome of an action that succeeded.
pub const SUCCESS: &str = "success";

/// Who made a request: the role its credential grants and which credential it was. Put on the
/// request (as an extension) by the layer that checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// `admin`, or another role a credential may grant.
    pub role: String,
    /// The credential's name (the config key of a token, a session's id), never its value.
    pub id: String,
}

impl Credential {
    /// The bearer token of `server.admin_token`.
    pub fn admin_token() -> Self {
        Self { role: "admin".to_owned(), id: "server.admin_token".to_owned() }
    }

    /// The bearer token that grants `role`: `server.admin_token` or `server.viewer_token`.
    pub fn of_role(role: super::access::Role) -> Self {
        match role {
            super::access::Role::Admin => Self::admin_token(),
            super::access::Role::Viewer => {
                Self { role: "viewer".to_owned(), id: "server.viewer_token".to_owned() }
            }
        }
    }
}

/// What a handler names as the resource it acted on, when the path does not (a created
/// endpoint's new id): returned as a response extension, read by [`record_admin_actions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditResource(pub String);

/// One action to record, as every surface (admin API, UI, portal) describes it.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    pub credential: &'a Credential,
    pub remote: Option<SocketAddr>,
    /// e.g. `endpoint.rotate`.
    pub action: &'a str,
    /// e.g. `endpoint/ep_01H…`.
    pub resource: &'a str,
    /// [`SUCCESS`] or the error code answered.
    pub outcome: &'a str,
    /// The HTTP status answered.
    pub status: u16,
}

/// Records `action` durably: the one function every surface calls. A store that fails is
/// logged, not answered: the action itself already happened.
pub async fn record(store: &Store, action: Action<'_>) {
    let entry = AuditEntry {
        at: now_millis(),
        role: action.credential.role.clone(),
        credential: action.credential.id.clone(),
        remote: action.remote.map(|address| address.to_string()),
        action: action.action.to_owned(),
        resource: action.resource.to_owned(),
        outcome: action.outcome.to_owned(),
        status: action.status,
    };
    if let Err(error) = store.append_audit(entry).await {
        tracing::error!(
            %error,
            action = action.action,
            resource = action.resource,
            "admin action not recorded in the audit log"
        );
    }
}

/// Layer (inside the authentication layer): records every state-changing request it lets
/// through, after its answer and before the client gets it. Reads are not recorded.
pub async fn record_admin_actions(
    State(store): State<Store>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.method(), &Method::GET | &Method::HEAD | &Method::OPTIONS) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let extensions = request.extensions();
    let credential = extensions.get::<Credential>().cloned();
    let remote = extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    let path = match extensions.get::<MatchedPath>() {
        Some(matched) => matched.as_str().to_owned(),
        None => request.uri().path().to_owned(),
    };
    let id = params.ok().and_then(|params| {
        params.iter().find(|(name, _)| *name == "id").map(|(_, value)| value.to_owned())
    });
    let response = next.run(request).await;
    // A request no credential let through is not an admin action (and cannot flood the log).
    let Some(credential) = credential else { return response };
    let (action, mut resource) = describe(&method, &path, id.as_deref());
    if let Some(named) = response.extensions().get::<AuditResource>() {
        resource.clone_from(&named.0);
    }
    let status = response.status();
    let outcome = match response.extensions().get::<ErrorCode>() {
        _ if status.is_success() => SUCCESS.to_owned(),
        Some(code) => code.0.to_string(),
        None => format!("http_{}", status.as_u16()),
    };
    let action = Action {
        credential: &credential,
        remote,
        action: &action,
        resource: &resource,
        outcome: &outcome,
        status: status.as_u16(),
    };
    record(&store, action).await;
    response
}

/// The action and resource of a state-changing admin request, from its method, its route
/// (`/v1/admin/endpoints/{id}`) and its `id`. A route not in the table is still recorded, as
/// its method and route.
pub fn describe(method: &Method, route: &str, id: Option<&str>) -> (String, String) {
    let id = id.unwrap_or_default();
    let named = |action: &str, kind: &str| (action.to_owned(), format!("{kind}/{id}"));
    let fixed = |action: &str, resource: &str| (action.to_owned(), resource.to_owned());
    let rest = route.strip_prefix("/v1/admin").unwrap_or(route);
    match (method.as_str(), rest) {
        ("POST", "/endpoints") => fixed("endpoint.create", "endpoints"),
        ("PUT", "/endpoints/{id}") => named("endpoint.update", "endpoint"),
        ("DELETE", "/endpoints/{id}") => named("endpoint.delete", "endpoint"),
        ("POST", "/endpoints/{id}/disable") => named("endpoint.disable", "endpoint"),
        ("POST", "/endpoints/{id}/enable") => named("endpoint.enable", "endpoint"),
        ("POST", "/endpoints/{id}/secret/rotate") => named("endpoint.rotate", "endpoint"),
        ("POST", "/endpoints/{id}/verify") => named("endpoint.verify", "endpoint"),
        ("POST", "/endpoints/{id}/test") => named("endpoint.test", "endpoint"),
        ("POST", "/subscriptions") => fixed("subscription.create", "subscriptions"),
        ("DELETE", "/subscriptions/{id}") => named("subscription.delete", "subscription"),
        ("POST", "/deliveries/{id}/retry") => named("delivery.retry", "delivery"),
        ("POST", "/dead-letters/redrive") => fixed("dead_letters.redrive", "dead-letters"),
        ("POST", "/replay") => fixed("events.replay", "events"),
        ("POST", "/reload") => fixed("config.reload", "config"),
        (method, _) => {
            let resource = if id.is_empty() { route.to_owned() } else { route.replace("{id}", id) };
            (format!("{} {route}", method.to_ascii_lowercase()), resource)
        }
    }
}

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Filters and paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only this action, e.g. `endpoint.rotate`.
    action: Option<String>,
    /// Only this resource, e.g. `endpoint/ep_01J…`.
    resource: Option<String>,
    /// At or after (unix ms).
    since: Option<u64>,
    /// Before (unix ms).
    until: Option<u64>,
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
}

/// One recorded admin action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Unix ms.
    pub at: u64,
    /// The role of the credential used: `admin`, or another role.
    pub role: String,
    /// Which credential (its name, never its value), e.g. `server.admin_token`.
    pub credential: String,
    /// The client's address and port, when known.
    pub remote: Option<String>,
    /// e.g. `endpoint.create`, `delivery.retry`, `config.reload`.
    pub action: String,
    /// e.g. `endpoint/ep_01J…`, `delivery/42`, `dead-letters`.
    pub resource: String,
    /// `success`, or the error code answered (`not_found`, `invalid_field`…).
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditView>,
    /// Give it as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/admin/audit", tag = "audit",
    description = "State-changing admin actions, newest first: who (role and credential name, \
                   never a secret), from where, what, on which resource, and the outcome.",
    params(AuditFilter),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn list_audit(
    State(state): State<AdminState>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(filter.limit)?;
    let query = AuditQuery {
        action: filter.action,
        resource: filter.resource,
        since: filter.since,
        until: filter.until,
        before: decode_cursor(filter.cursor.as_deref(), LogPosition::decode)?,
        limit,
    };
    let records = state.store.list_audit(query).await.map_err(store_failure)?;
    let last = records.last().map(|record| record.position.encode());
    let next_cursor = next_cursor(records.len(), limit, last);
    Ok(Json(AuditPage { data: records.into_iter().map(view).collect(), next_cursor }))
}

fn view(record: AuditRecord) -> AuditView {
    let entry = record.entry;
    AuditView {
        at: entry.at,
        role: entry.role,
        credential: entry.credential,
        remote: entry.remote,
        action: entry.action,
        resource: entry.resource,
        outcome: entry.outcome,
        status: entry.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_admin_route_names_its_action_and_resource() {
        let cases = [
            (Method::POST, "/v1/admin/endpoints", None, "endpoint.create", "endpoints"),
            (
                Method::PUT,
                "/v1/admin/endpoints/{id}",
                Some("ep_1"),
                "endpoint.update",
                "endpoint/ep_1",
            ),
            (
                Method::DELETE,
                "/v1/admin/endpoints/{id}",
                Some("ep_1"),
                "endpoint.delete",
                "endpoint/ep_1",
            ),
            (
                Method::POST,
                "/v1/admin/endpoints/{id}/disable",
                Some("a"),
                "endpoint.disable",
                "endpoint/a",
            ),
            (
                Method::POST,
                "/v1/admin/endpoints/{id}/enable",
                Some("a"),
                "endpoint.enable",
                "endpoint/a",
            ),
            (
                Method::POST,
                "/v1/admin/endpoints/{id}/secret/rotate",
                Some("a"),
                "endpoint.rotate",
                "endpoint/a",
            ),
            (Method::POST, "/v1/admin/subscriptions", None, "subscription.create", "subscriptions"),
            (
                Method::DELETE,
                "/v1/admin/subscriptions/{id}",
                Some("s"),
                "subscription.delete",
                "subscription/s",
            ),
            (
                Method::POST,
                "/v1/admin/deliveries/{id}/retry",
                Some("7"),
                "delivery.retry",
                "delivery/7",
            ),
            (
                Method::POST,
                "/v1/admin/dead-letters/redrive",
                None,
                "dead_letters.redrive",
                "dead-letters",
            ),
            (Method::POST, "/v1/admin/replay", None, "events.replay", "events"),
            (
                Method::POST,
                "/v1/admin/endpoints/{id}/test",
                Some("shop"),
                "endpoint.test",
                "endpoint/shop",
            ),
            (Method::POST, "/v1/admin/reload", None, "config.reload", "config"),
            // A route added later is recorded all the same, by method and route.
            (
                Method::PATCH,
                "/v1/admin/things/{id}",
                Some("x"),
                "patch /v1/admin/things/{id}",
                "/v1/admin/things/x",
            ),
        ];
        for (method, route, id, action, resource) in cases {
            assert_eq!(
                describe(&method, route, id),
                (action.to_owned(), resource.to_owned()),
                "{method} {route}"
            );
        }
    }

    #[test]
    fn the_admin_token_is_named_never_given() {
        let credential = Credential::admin_token();
        assert_eq!(
            (credential.role.as_str(), credential.id.as_str()),
            ("admin", "server.admin_token")
        );
    }
}
