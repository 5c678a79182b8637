//! The dashboard at `/ui/`: server-rendered pages over the admin API, beside it on the same
//! listener (mounted by [`crate::admin::router`], so it exists only with an admin token).
//!
//! Owns the routes, the session guard (login with a token → signed cookie, [`session`]), the
//! same-origin rule for every change, the security headers and gzip. Pages read and act only
//! through the admin API, called in-process with the session's own token ([`Ui::api`]), so a
//! viewer's page shows exactly what the API shows a viewer and its actions meet the same 403.
//! Must not: read the store's tables, render anything unescaped, or load a script from
//! elsewhere (the CSP says `'self'`; every asset is compiled in, [`assets`]).

mod assets;
mod endpoint_edit;
mod live;
mod pages;
mod plugins;
mod portal;
mod replay;
pub mod session;
mod signatures;
mod sparkline;
mod view;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;

use self::session::{Session, SessionKey};
use crate::admin::AdminState;
use crate::admin::access::{AccessTokens, Role, is_read};
use crate::event::now_millis;
use crate::http_api::OverTls;

/// What every page handler shares.
#[derive(Clone)]
pub struct Ui {
    /// The admin API, behind its own token check.
    api: Router,
    tokens: AccessTokens,
    key: SessionKey,
    state: AdminState,
    /// Live streams open now (bounded, see [`live::MAX_STREAMS`]).
    streams: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Ui").finish_non_exhaustive()
    }
}

/// A failed page: its status and what to say.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        pages::error_page(self.status, &self.message)
    }
}

impl Ui {
    /// Calls the admin API as `role`: the status and the JSON answer (`null` when there is
    /// none).
    pub async fn api(
        &self,
        role: Role,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), PageError> {
        self.api_as(role, None, method, uri, body).await
    }

    /// [`Self::api`], recorded in the audit log as `credential` instead of `role`'s token
    /// (the portal acts with the admin token, as its link).
    pub async fn api_as(
        &self,
        role: Role,
        credential: Option<crate::admin::audit::Credential>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), PageError> {
        let token = match role {
            Role::Admin => Some(&self.tokens.admin),
            Role::Viewer => self.tokens.viewer.as_ref(),
        };
        let Some(token) = token.and_then(|token| std::str::from_utf8(token.expose()).ok()) else {
            return Err(PageError::new(StatusCode::FORBIDDEN, "this session may not do that"));
        };
        let bytes = body.map(|body| body.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .map_err(|error| PageError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
        if let Some(credential) = credential {
            request.extensions_mut().insert(credential);
        }
        let response =
            self.api.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|_| PageError::new(StatusCode::BAD_GATEWAY, "the admin API answer was cut"))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// [`Self::api`] for a read that must succeed: any other answer becomes the page's error.
    pub async fn read(&self, role: Role, uri: &str) -> Result<Value, PageError> {
        let (status, value) = self.api(role, Method::GET, uri, None).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(PageError::new(status, api_detail(&value)))
        }
    }
}

/// The `detail` of an admin API error answer.
pub fn api_detail(value: &Value) -> String {
    value.get("detail").and_then(Value::as_str).unwrap_or("the admin API refused").to_owned()
}

/// The dashboard's routes. `api` is the admin API router with its token check.
pub fn router(tokens: AccessTokens, api: Router, state: AdminState) -> Router {
    let ui = Ui { api, key: SessionKey::derive(&tokens), tokens, state, streams: Arc::default() };
    let guarded = Router::new()
        .route("/ui/", get(pages::overview))
        .route("/ui/events", get(pages::events))
        .route("/ui/events/{id}", get(pages::event))
        .route("/ui/events/{id}/trace", get(pages::trace))
        .route("/ui/test-event", post(pages::test_event))
        .route("/ui/deliveries/{id}", get(pages::delivery))
        .route("/ui/deliveries/{id}/retry", post(pages::retry))
        .route("/ui/deliveries/{id}/curl", post(pages::curl))
        .route("/ui/endpoints", get(pages::endpoints))
        .route("/ui/endpoints/{id}", get(pages::endpoint))
        .route("/ui/endpoints/{id}/disable", post(pages::disable))
        .route("/ui/endpoints/{id}/enable", post(pages::enable))
        .route("/ui/endpoints/{id}/rotate", post(pages::rotate))
        .route("/ui/endpoints/{id}/test", post(pages::send_test))
        .route("/ui/endpoints/{id}/edit", get(endpoint_edit::edit_form).post(endpoint_edit::edit))
        .route(
            "/ui/endpoints/{id}/delete",
            get(endpoint_edit::delete_form).post(endpoint_edit::delete),
        )
        .route("/ui/dead-letters", get(pages::dead_letters))
        .route("/ui/dead-letters/redrive", post(pages::redrive))
        .route("/ui/plugins", get(plugins::plugins))
        .route("/ui/plugins/rerun", post(plugins::rerun))
        .route("/ui/signatures", get(signatures::form_page).post(signatures::check))
        .route("/ui/replay", get(replay::form_page).post(replay::replay))
        .route("/ui/live", get(live::page))
        .route("/ui/live/recent", get(live::recent))
        .route("/ui/stream", get(live::stream))
        .route("/ui/logout", post(pages::logout))
        .layer(axum::middleware::from_fn_with_state(ui.clone(), guard));
    let open = Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/portal/{token}", get(portal::home))
        .route("/portal/{token}/rotate", post(portal::rotate))
        .route("/portal/{token}/test", post(portal::send_test))
        .route("/portal/{token}/deliveries/{id}", get(portal::delivery))
        .route("/portal/{token}/deliveries/{id}/retry", post(portal::retry));
    guarded
        .merge(open)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(CompressionLayer::new())
        .with_state(ui)
}

/// Whether the request came over TLS.
pub fn is_secure(request: &Request) -> bool {
    request.extensions().get::<OverTls>().is_some() || request.uri().scheme_str() == Some("https")
}

/// Every guarded page needs a session; a change also needs the admin role and a same-origin
/// `Origin` (403 otherwise). Without a session a read goes to the login page.
async fn guard(State(ui): State<Ui>, mut request: Request, next: Next) -> Response {
    let session = session::cookie_value(request.headers())
        .and_then(|value| ui.key.check(value, now_millis()));
    let reading = is_read(request.method());
    let Some(session) = session else {
        if reading {
            return Redirect::to("/ui/login").into_response();
        }
        return PageError::new(StatusCode::FORBIDDEN, "sign in first").into_response();
    };
    if !reading {
        let logout = request.uri().path() == "/ui/logout";
        if !session::same_origin(request.headers(), is_secure(&request)) {
            let message = "refused: this request did not come from a page of this dashboard";
            return PageError::new(StatusCode::FORBIDDEN, message).into_response();
        }
        if !logout && !session.role.may(request.method()) {
            let message = "the viewer role may look but not act";
            return PageError::new(StatusCode::FORBIDDEN, message).into_response();
        }
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Pages are never cached, never framed, and run only this origin's scripts.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers: &mut HeaderMap = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The session a guarded handler runs under.
pub type CurrentSession = axum::Extension<Session>;
