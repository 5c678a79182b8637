//! What every admin handler shares: the bearer check (admin or viewer), JSON bodies and query strings read
//! with errors that name the field, cursors, and the error schema of the OpenAPI document.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::access::AccessTokens;
use super::audit::Credential;
use super::model::FieldError;
use crate::http_api::ApiError;
use crate::store::StoreError;

/// Items per page when `limit` is not given, and the most a page holds.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// The error answer of every admin operation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable, snake_case: `unauthorized`, `not_found`, `invalid_field`…
    pub code: String,
    pub detail: String,
    /// The first field at fault (422 only).
    pub field: Option<String>,
    /// Every field at fault (422 only).
    pub errors: Option<Vec<FieldError>>,
}

/// Layer: every admin route needs `authorization: Bearer <token>`: the admin token for
/// anything, the viewer token for reads (`GET`, `HEAD`; 403 otherwise). The role is left in
/// the request's extensions for handlers that show less to a viewer.
pub async fn require_admin(
    State(tokens): State<AccessTokens>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(role) = tokens.role_of(given.as_bytes()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        ));
    };
    if !role.may(request.method()) {
        return Err(forbidden());
    }
    request.extensions_mut().insert(role);
    // An in-process caller (the portal) may have named the credential it acts as already;
    // extensions never come from the network.
    if request.extensions().get::<Credential>().is_none() {
        request.extensions_mut().insert(Credential::of_role(role));
    }
    Ok(next.run(request).await)
}

/// 403: the viewer token reads only.
pub fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the viewer token may only read")
}

/// A JSON request body. Unlike axum's `Json`, any content type is read as JSON, and a body
/// that does not fit the schema is a 422 naming the field.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            ApiError::new(rejection.status(), "invalid_body", rejection.body_text())
        })?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes };
        let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(value) => Ok(Self(value)),
            Err(error) if !error.inner().is_data() => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_json",
                format!("the body is not JSON: {}", error.inner()),
            )),
            Err(error) => {
                let detail = error.inner().to_string();
                let path = error.path().to_string();
                let field = match path.as_str() {
                    // A missing or unknown field is reported at its parent: name it.
                    "." => named_field(&detail).unwrap_or_default(),
                    _ => path,
                };
                Err(invalid(vec![FieldError::new(field, detail)]))
            }
        }
    }
}

/// The field serde names in "missing field `x`" or "unknown field `x`, expected …".
fn named_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// A query string; one that does not fit is a 422 naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Self).map_err(|error| {
            let field = error.path().to_string();
            invalid(vec![FieldError::new(field, error.inner().to_string())])
        })
    }
}

/// 422 with every field at fault.
pub fn invalid(errors: Vec<FieldError>) -> ApiError {
    let detail = errors
        .iter()
        .map(|error| {
            if error.field.is_empty() {
                error.detail.clone()
            } else {
                format!("{}: {}", error.field, error.detail)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let fields = errors.into_iter().map(|error| (error.field, error.detail)).collect();
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail).with_fields(fields)
}

pub fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what} `{id}`"))
}

pub fn conflict(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, detail)
}

pub fn unavailable() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store is unavailable; retry")
}

/// Logged here, once; the client only learns that it may retry.
pub fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "admin request failed in the store");
    unavailable()
}

/// `limit`, checked: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(invalid(vec![FieldError::new(
            "limit",
            format!("`{limit}` is not in 1..={MAX_LIMIT}"),
        )])),
    }
}

/// A cursor is the position of the last item of the previous page (`c` and the position's
/// text); pages run newest first, so items inserted meanwhile never shift a page. Opaque to
/// clients.
pub fn decode_cursor<T>(
    cursor: Option<&str>,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    let Some(text) = cursor else { return Ok(None) };
    match text.strip_prefix('c').and_then(decode) {
        Some(position) => Ok(Some(position)),
        None => Err(invalid(vec![FieldError::new("cursor", "not a cursor this API gave out")])),
    }
}

/// The cursor naming `position` (see [`decode_cursor`]).
pub fn encode_cursor(position: impl std::fmt::Display) -> String {
    format!("c{position}")
}

/// Endpoints are listed oldest first and new ones only ever come last, so a cursor naming the
/// last id seen is stable too. Ids are `[a-z0-9_-]`, safe in a query string.
pub fn decode_id_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(text) = cursor else { return Ok(None) };
    match text.strip_prefix("i").filter(|id| !id.is_empty()) {
        Some(id) => Ok(Some(id.to_owned())),
        None => Err(invalid(vec![FieldError::new("cursor", "not a cursor this API gave out")])),
    }
}

/// One page of endpoints (listed config-defined first, then dynamic, each by id: the order of
/// [`list_order`]) after the id `after`, and the cursor of the next page. The cursor need not
/// name an item still there: the page starts at the first item past it.
pub fn page_after<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: u32,
) -> (Vec<T>, Option<String>) {
    let mut page: Vec<T> = items
        .into_iter()
        .filter(|item| after.is_none_or(|after| list_order(id(item)) > list_order(after)))
        .collect();
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next = more.then(|| page.last().map(|item| format!("i{}", id(item)))).flatten();
    (page, next)
}

/// Endpoints' list order: config-defined ones (kebab-case ids) first, then dynamic ones
/// (`ep_<ulid>`, by creation), each by id.
pub fn list_order(id: &str) -> (bool, &str) {
    (id.starts_with(super::model::ENDPOINT_ID_PREFIX), id)
}

/// The cursor of the next page: present when this page is full.
pub fn next_cursor(
    page_len: usize,
    limit: u32,
    last_position: Option<impl std::fmt::Display>,
) -> Option<String> {
    (page_len == limit as usize).then_some(last_position).flatten().map(encode_cursor)
}
