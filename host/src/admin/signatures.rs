//! `POST /v1/admin/signatures/check`: the signature helper. A received request (headers and
//! body) and a secret in, which part of its Standard Webhooks, GitHub or Stripe signature
//! differs out ([`crate::signing::diagnose`] is the core).
//!
//! The key is pasted (`whsec_`, or `whpk_`/`whsk_` for `v1a`; never stored, never logged: the
//! audit log keeps no bodies) or taken from the router: a config endpoint's signing secrets, a
//! dynamic endpoint's current and previous keys (each tried; the answer names which one
//! matched, or that none did, never the key), or a source's verify plugin's secret and scheme
//! (as the test event finds them). Admin only: it is a `POST`, and with a named secret it is
//! an oracle for that secret.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{Body, ErrorBody, invalid, not_found};
use super::model::FieldError;
use super::test_event;
use crate::config::Topology;
use crate::event::now_millis;
use crate::http_api::ApiError;
use crate::signing::diagnose::{self, DEFAULT_TOLERANCE_SECONDS, Diagnosis, Received, Scheme};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(check_signature))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureCheck {
    /// Required with `secret`; with `endpoint` it is `standard-webhooks`, with `source` the
    /// scheme its verify plugin names.
    pub scheme: Option<Scheme>,
    /// The secret, as configured on both sides (`whsec_…` for Standard Webhooks).
    pub secret: Option<String>,
    /// Instead of `secret`: an endpoint whose signing keys are tried (a dynamic endpoint's
    /// current and previous keys; the answer's `key` says which matched).
    pub endpoint: Option<String>,
    /// Instead of `secret`: a source whose first verify plugin's secret is used.
    pub source: Option<String>,
    /// The headers as received.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as received, as text; or `body_base64` for other bytes.
    pub body: Option<String>,
    pub body_base64: Option<String>,
    /// Seconds a timestamp may be away from now (default 300).
    pub tolerance_seconds: Option<u64>,
}

fn field_error(field: &str, detail: impl Into<String>) -> ApiError {
    invalid(vec![FieldError::new(field, detail)])
}

/// A dynamic endpoint's keys that still sign (newest first), each with what to call it.
fn dynamic_keys(endpoint: &super::registry::DynamicEndpoint, now: u64) -> Vec<(String, String)> {
    endpoint
        .record
        .keys
        .iter()
        .filter(|key| key.expires_at.is_none_or(|expires_at| expires_at > now))
        .enumerate()
        .map(|(index, key)| {
            let created = httpdate_of(key.created_at);
            let label = match (index, key.expires_at) {
                (0, _) => format!("the current key (created {created})"),
                (_, Some(until)) => {
                    format!(
                        "a previous key (created {created}, signs until {})",
                        httpdate_of(until)
                    )
                }
                (_, None) => format!("a previous key (created {created})"),
            };
            (key.secret.0.clone(), label)
        })
        .collect()
}

fn httpdate_of(unix_ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(unix_ms))
}

/// The scheme and the secrets to try; for a dynamic endpoint, what to call each key.
struct KeysToTry {
    scheme: Scheme,
    secrets: Vec<String>,
    labels: Option<Vec<String>>,
}

/// The keys to try, from the request, the config and the dynamic endpoints.
fn secrets_of(state: &AdminState, request: &SignatureCheck) -> Result<KeysToTry, ApiError> {
    let topology: &Topology = &state.topology;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match (&request.secret, &request.endpoint, &request.source) {
        (Some(secret), None, None) => {
            let scheme =
                request.scheme.ok_or_else(|| field_error("scheme", "required with `secret`"))?;
            Ok(KeysToTry { scheme, secrets: vec![secret.clone()], labels: None })
        }
        (None, Some(id), None) if !topology.endpoints.contains_key(id) => {
            let endpoint = state.registry.get(id).ok_or_else(|| not_found("endpoint", id))?;
            let (secrets, labels) = dynamic_keys(&endpoint, now_millis()).into_iter().unzip();
            Ok(KeysToTry { scheme: Scheme::StandardWebhooks, secrets, labels: Some(labels) })
        }
        (None, Some(id), None) => {
            let endpoint = topology.endpoints.get(id).ok_or_else(|| not_found("endpoint", id))?;
            let secrets: Vec<String> = endpoint
                .secrets
                .iter()
                .filter_map(|name| topology.secrets.get(name))
                .map(|secret| text(secret.expose()))
                .collect();
            if secrets.is_empty() {
                return Err(field_error("endpoint", format!("endpoint `{id}` signs nothing")));
            }
            Ok(KeysToTry { scheme: Scheme::StandardWebhooks, secrets, labels: None })
        }
        (None, None, Some(id)) => {
            if !topology.sources.contains_key(id) {
                return Err(not_found("source", id));
            }
            let (provider, secret_name) = test_event::provider_of(topology, id);
            let scheme =
                request.scheme.or_else(|| Scheme::parse(provider.name())).ok_or_else(|| {
                    field_error(
                        "source",
                        format!(
                            "source `{id}` verifies as `{}`, which this helper does not check",
                            provider.name()
                        ),
                    )
                })?;
            let secret =
                secret_name.and_then(|name| topology.secrets.get(&name)).ok_or_else(|| {
                    field_error("source", format!("source `{id}` has no verify secret"))
                })?;
            Ok(KeysToTry { scheme, secrets: vec![text(secret.expose())], labels: None })
        }
        _ => Err(field_error("secret", "give exactly one of `secret`, `endpoint` and `source`")),
    }
}

#[utoipa::path(
    post, path = "/v1/admin/signatures/check", tag = "log",
    description = "Recomputes the signature of a received request (Standard Webhooks, GitHub \
                   or Stripe) and says which part differs: a header missing or malformed, the \
                   timestamp beyond the tolerance, the secret, or the body. The secret is \
                   pasted or taken from a config endpoint or source; it is never stored.",
    request_body = SignatureCheck,
    responses(
        (status = 200, body = Diagnosis),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such endpoint or source"),
        (status = 422, body = ErrorBody),
    ),
)]
async fn check_signature(
    State(state): State<AdminState>,
    Body(request): Body<SignatureCheck>,
) -> Result<Json<Diagnosis>, ApiError> {
    let KeysToTry { scheme, secrets, labels } = secrets_of(&state, &request)?;
    if secrets.is_empty() {
        return Err(field_error("endpoint", "the endpoint has no key that signs now"));
    }
    let body =
        match (&request.body, &request.body_base64) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|error| field_error("body_base64", format!("not base64: {error}")))?,
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => {
                return Err(field_error("body", "give at most one of `body` and `body_base64`"));
            }
        };
    let headers: Vec<(String, String)> = request.headers.into_iter().collect();
    let received = Received {
        headers: &headers,
        body: &body,
        now_seconds: (now_millis() / 1000) as i64,
        tolerance_seconds: request.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS),
    };
    let diagnoses: Vec<Diagnosis> =
        secrets.iter().map(|secret| diagnose::diagnose(scheme, secret, &received)).collect();
    // The matching key's answer; else the first key of the header's version (a key of the
    // other version only says so).
    let other_version = |diagnosis: &Diagnosis| {
        diagnosis
            .findings
            .first()
            .is_some_and(|finding| finding.detail.starts_with("`webhook-signature` has only"))
    };
    let best = diagnoses
        .iter()
        .position(|diagnosis| diagnosis.signature_matches)
        .or_else(|| diagnoses.iter().position(|diagnosis| !other_version(diagnosis)))
        .unwrap_or_default();
    let matched = diagnoses.iter().any(|diagnosis| diagnosis.signature_matches);
    let Some(mut diagnosis) = diagnoses.into_iter().nth(best) else {
        return Err(field_error("endpoint", "no key to try"));
    };
    if let Some(labels) = labels {
        diagnosis.key = Some(if matched {
            labels.get(best).cloned().unwrap_or_default()
        } else {
            format!("none of the endpoint's {} keys in use (current and previous)", labels.len())
        });
    }
    Ok(Json(diagnosis))
}
