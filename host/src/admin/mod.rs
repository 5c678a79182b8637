//! The admin API under `/v1/admin/*`, behind `server.admin_token`.
//!
//! Owns the operator surface: dynamic endpoints and subscriptions ([`endpoints`], kept in step
//! with the store, the workers and the routes by [`registry`]), the delivery log with retry and
//! dead letters ([`log`]), replay ([`replay`]), re-running stored events through a candidate plugin ([`rerun`]), dynamic endpoints' records sealed at rest
//! ([`sealed`]), and the OpenAPI 3.1 document generated from the
//! handlers (served at `/v1/admin/openapi.json`; a copy is committed at
//! `docs/admin-openapi.json` and a test fails when it drifts). The API is not mounted at all
//! when no token is configured; every route, the document included, needs the token, and the
//! viewer token ([`access`]) reads only. Every state-changing request a token lets through is
//! recorded in the audit log ([`audit`]). Mounts the dashboard (`crate::ui`) beside the API.

pub mod access;
mod api;
pub mod audit;
mod curl;
mod endpoints;
mod log;
pub mod model;
pub mod ownership;
mod plugins;
mod portal;
pub mod registry;
mod replay;
mod rerun;
pub mod sealed;
mod signatures;
pub mod stats;
pub mod test_event;

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDocument, SecurityRequirement};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use api::ErrorBody;
pub use replay::{ReplayAnswer, ReplayRequest};

use crate::config::{Secret, Topology};
use crate::pipeline::Pipeline;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct AdminState {
    pub topology: Arc<Topology>,
    pub store: Store,
    pub pipeline: Pipeline,
    pub registry: Arc<registry::Registry>,
    /// For ingest by the admin side (test events).
    pub metrics: Arc<crate::telemetry::Metrics>,
    pub ownership: Arc<ownership::OwnershipService>,
    /// The document, built once.
    pub openapi: Arc<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard admin API",
        description = "Endpoints, subscriptions, the delivery log, retry, replay and dead \
                       letters. Every operation needs `authorization: Bearer <token>`: the \
                       admin token (`server.admin_token`), or for reads (`GET`) the viewer \
                       token (`server.viewer_token`), which any other method answers with 403.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    paths(crate::reload::reload_handler),
    tags(
        (name = "endpoints", description = "Config-defined (read-only) and dynamic endpoints"),
        (name = "subscriptions", description = "Callback URLs subscribed to event types"),
        (name = "log", description = "Events, deliveries, attempts, retry, replay, dead letters"),
        (name = "plugins", description = "Configured plugins: re-run stored events through a candidate"),
        (name = "audit", description = "State-changing admin actions: who, from where, what, outcome"),
        (name = "config", description = "Reloading the config file"),
    ),
)]
struct ApiDoc;

/// Every operation needs the bearer token.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, document: &mut OpenApiDocument) {
        let components = document.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
        document.security =
            Some(vec![SecurityRequirement::new("admin_token", Vec::<String>::new())]);
    }
}

/// Answers any operation may give, documented once here: 503 when the store (or a plugin) is
/// unavailable, 413 for a body over the limit where there is a body, and 403 for the viewer
/// token on every operation that is not a read.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, document: &mut OpenApiDocument) {
        use utoipa::openapi::{RefOr, ResponseBuilder};
        let error = |description: &str| {
            let content = utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                .build();
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content("application/json", content)
                    .build(),
            )
        };
        for item in document.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, writes) in operations {
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                if writes {
                    responses
                        .entry("403".to_owned())
                        .or_insert_with(|| error("The viewer token may only read"));
                }
                responses
                    .entry("503".to_owned())
                    .or_insert_with(|| error("Unavailable for now (the store); retry"));
                if operation.request_body.is_some() {
                    responses
                        .entry("413".to_owned())
                        .or_insert_with(|| error("The body is over the size limit"));
                }
            }
        }
    }
}

fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(endpoints::router())
        .merge(log::router())
        .merge(replay::router())
        .merge(stats::router())
        .merge(curl::router())
        .merge(test_event::router())
        .merge(portal::router())
        .merge(plugins::router())
        .merge(rerun::router())
        .merge(signatures::router())
        .merge(audit::router())
}

/// The OpenAPI document of the admin API, as served and as committed.
pub fn openapi() -> OpenApiDocument {
    let (_, mut document) = routes().split_for_parts();
    // After the merge: the derive's modifiers run before the handlers' paths are in.
    CommonAnswers.modify(&mut document);
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document
}

/// The document as pretty JSON with a final newline: the committed file's exact bytes.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().expect("the document always serializes");
    text.push('\n');
    text
}

/// The admin routes, each behind the token (the viewer token reads), their actions recorded,
/// and the dashboard at `/ui/` beside them (its own sessions, made from the same tokens).
pub fn router(token: Secret, state: AdminState) -> axum::Router {
    let tokens = access_tokens(token, &state.topology);
    let (router, _) = routes().split_for_parts();
    let store = state.store.clone();
    let api = router
        .route("/v1/admin/openapi.json", axum::routing::get(serve_openapi))
        .layer(axum::middleware::from_fn_with_state(store, audit::record_admin_actions))
        .layer(axum::middleware::from_fn_with_state(tokens.clone(), api::require_admin))
        .with_state(state.clone());
    let ui = crate::ui::router(tokens, api.clone(), state);
    api.merge(ui)
}

/// `router` behind the admin token, its actions recorded in `store`'s audit log, as every
/// admin route (the reload route lives elsewhere); the viewer token of `topology` reads.
pub fn behind_token(
    token: Secret,
    topology: &Topology,
    store: Store,
    router: axum::Router,
) -> axum::Router {
    let tokens = access_tokens(token, topology);
    router
        .layer(axum::middleware::from_fn_with_state(store, audit::record_admin_actions))
        .layer(axum::middleware::from_fn_with_state(tokens, api::require_admin))
}

fn access_tokens(admin: Secret, topology: &Topology) -> access::AccessTokens {
    access::AccessTokens { admin, viewer: topology.server.viewer_token.clone() }
}

async fn serve_openapi(State(state): State<AdminState>) -> Json<serde_json::Value> {
    Json((*state.openapi).clone())
}

/// Builds the document once, for [`AdminState::openapi`].
pub fn openapi_value() -> Arc<serde_json::Value> {
    Arc::new(serde_json::to_value(openapi()).expect("the document always serializes"))
}
