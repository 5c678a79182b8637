//! `POST /v1/admin/deliveries/{id}/curl`: a delivery as a `curl` command that sends the same
//! bytes to the same URL with the same headers, signed afresh now (so the receiver's
//! timestamp tolerance accepts it). Admin only, though it changes nothing: a fresh signature
//! lets whoever holds it deliver to the endpoint, so the viewer token gets 403 (it is a
//! `POST` for that reason).
//!
//! [`command`] is pure: URL, headers and body in, shell text out; the body travels as base64
//! so that any bytes, a missing final newline included, arrive exactly.

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{ErrorBody, conflict, not_found, store_failure};
use crate::delivery::{EndpointRuntime, Target, outbound_headers};
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::store::DeliveryId;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(delivery_curl))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CurlCommand {
    /// A POSIX shell command line (`printf … | base64 -d | curl …`).
    pub command: String,
    /// When it was signed (unix ms); receivers accept it within their tolerance (Standard
    /// Webhooks: 5 minutes).
    pub signed_at: u64,
}

/// Text in single quotes for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The command that POSTs `body` to `url` with `headers` (and the router's user agent).
pub fn command(url: &str, headers: &[(String, String)], body: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(body);
    let mut command = format!(
        "printf '%s' {} | base64 -d | curl -sS -X POST {} \\\n  -A {}",
        quoted(&body),
        quoted(url),
        quoted(&format!("Switchyard/{}", env!("CARGO_PKG_VERSION")))
    );
    for (name, value) in headers {
        command.push_str(&format!(" \\\n  -H {}", quoted(&format!("{name}: {value}"))));
    }
    command.push_str(" \\\n  --data-binary @-");
    command
}

#[utoipa::path(
    post, path = "/v1/admin/deliveries/{id}/curl", tag = "log",
    description = "The delivery as a `curl` command: same URL, headers and body bytes, signed \
                   afresh now. Changes nothing; admin token only (a fresh signature is a \
                   credential for the endpoint).",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, body = CurlCommand),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A NATS endpoint, or its endpoint is gone"),
    ),
)]
async fn delivery_curl(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<CurlCommand>, ApiError> {
    let delivery_id = DeliveryId::parse(&id).ok_or_else(|| not_found("delivery", &id))?;
    let store = &state.store;
    let delivery = store.delivery(delivery_id).await.map_err(store_failure)?;
    let delivery = delivery.ok_or_else(|| not_found("delivery", &id))?;
    let payload = store.payload(delivery_id).await.map_err(store_failure)?;
    let payload = payload.ok_or_else(|| not_found("delivery", &id))?;
    let Some(endpoint) = runtime(&state, &delivery.endpoint) else {
        let detail =
            format!("its endpoint `{}` was deleted (or left the config)", delivery.endpoint);
        return Err(conflict("endpoint_gone", detail));
    };
    let Target::Http(url) = &endpoint.target else {
        let detail = format!("`{}` is a NATS endpoint; curl sends HTTP", endpoint.id);
        return Err(conflict("not_http", detail));
    };
    let signed_at = now_millis();
    let headers = outbound_headers(&endpoint, delivery.event_id, signed_at, &payload);
    let command = command(url.as_str(), &headers, &payload.body);
    Ok(Json(CurlCommand { command, signed_at }))
}

/// The endpoint as deliveries see it now: a config endpoint of the running topology, or a
/// dynamic one of the registry.
fn runtime(state: &AdminState, id: &str) -> Option<EndpointRuntime> {
    if let Some(dynamic) = state.registry.get(id) {
        return dynamic.record.runtime(&dynamic.id).ok();
    }
    crate::delivery::endpoints(&state.topology).into_iter().find(|endpoint| endpoint.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_survive_and_bodies_travel_as_base64() {
        let headers = vec![("x-note".to_owned(), "it's".to_owned())];
        let text = command("http://127.0.0.1:9/h?a=1&b=2", &headers, b"{\"a\":1}");
        assert!(text.starts_with("printf '%s' 'eyJhIjoxfQ==' | base64 -d | curl -sS -X POST "));
        assert!(text.contains("'http://127.0.0.1:9/h?a=1&b=2'"), "{text}");
        assert!(text.contains(r"-H 'x-note: it'\''s'"), "{text}");
        assert!(text.ends_with("--data-binary @-"), "{text}");
    }
}
