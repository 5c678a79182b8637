//! `POST /v1/admin/sources/{id}/test`: a sample event sent to a source through the real
//! ingest path, signed as its provider would sign it (GitHub, Stripe, Slack, Shopify,
//! Standard Webhooks), with the secret its verify plugin checks. A misconfigured secret or
//! plugin shows up here, as the rejection a provider would get, before production traffic.
//!
//! `POST /v1/admin/endpoints/{id}/test`: an event of the built-in source `switchyard`, type
//! [`ENDPOINT_TEST_TYPE`], stored with one delivery to that endpoint and no other (routes and
//! plugins are not consulted), so it goes out as any delivery does: signed, retried, listed
//! with the endpoint's deliveries. A disabled endpoint gets it parked, like every delivery
//! made while it is disabled, and the answer says so.
//!
//! [`signed_headers`] is pure (secret, body, id and time in; the provider's headers out). The
//! scheme is the one asked for, else guessed from the source's first verify plugin (its id or
//! file name naming the provider). The secret is read from the config and never answered.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AdminState;
use super::api::{Body, ErrorBody, invalid, not_found, store_failure};
use super::model::FieldError;
use crate::config::{SourceKind, Topology};
use crate::event::{Event, EventId, now_millis};
use crate::http_api::ApiError;
use crate::ingest::{Inbound, IngestError, Ingestor};
use crate::signing::SigningKey;
use crate::store::{DeliveryQuery, DeliveryState, IngestReceipt, NewEvent};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(send_test_event)).routes(routes!(send_endpoint_test))
}

/// The event type of an endpoint's test event.
pub const ENDPOINT_TEST_TYPE: &str = "switchyard.endpoint.test";

/// How a provider signs its webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Github,
    Stripe,
    Slack,
    Shopify,
    StandardWebhooks,
    /// Unsigned (a source without a verify plugin).
    None,
}

impl Scheme {
    pub const ALL: [Self; 6] = [
        Self::Github,
        Self::Stripe,
        Self::Slack,
        Self::Shopify,
        Self::StandardWebhooks,
        Self::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::StandardWebhooks => "standard-webhooks",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.name() == text)
    }

    /// The scheme a plugin named `text` (its id or file name) verifies, if it names one.
    fn named_in(text: &str) -> Option<Self> {
        let text = text.to_ascii_lowercase().replace('_', "-");
        [Self::StandardWebhooks, Self::Github, Self::Stripe, Self::Slack, Self::Shopify]
            .into_iter()
            .find(|scheme| text.contains(scheme.name()))
    }

    /// A sample body, as the provider might send.
    fn sample_body(self, id: &str) -> String {
        match self {
            Self::Github => {
                format!(r#"{{"zen":"Switchyard test event","hook_id":0,"test_id":"{id}"}}"#)
            }
            Self::Stripe => format!(r#"{{"id":"{id}","object":"event","type":"switchyard.test"}}"#),
            Self::Slack => format!(r#"{{"type":"switchyard.test","event_id":"{id}"}}"#),
            Self::Shopify => format!(r#"{{"test":true,"type":"switchyard.test","id":"{id}"}}"#),
            Self::StandardWebhooks | Self::None => {
                format!(r#"{{"type":"switchyard.test","data":{{"id":"{id}"}}}}"#)
            }
        }
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The headers `scheme` sends with `body`, signed with `secret` at `now_seconds`; `id` is the
/// delivery id where the provider sends one. A Standard Webhooks secret that is not a valid
/// key is an error naming it.
pub fn signed_headers(
    scheme: Scheme,
    secret: &[u8],
    body: &[u8],
    id: &str,
    now_seconds: i64,
) -> Result<Vec<(String, String)>, String> {
    let base64 = base64::engine::general_purpose::STANDARD;
    let timestamp = now_seconds.to_string();
    let headers = match scheme {
        Scheme::Github => vec![
            ("x-github-event", "ping".to_owned()),
            ("x-github-delivery", id.to_owned()),
            (
                "x-hub-signature-256",
                format!("sha256={}", hex::encode(hmac_sha256(secret, &[body]))),
            ),
        ],
        Scheme::Stripe => {
            let mac = hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]);
            vec![("stripe-signature", format!("t={timestamp},v1={}", hex::encode(mac)))]
        }
        Scheme::Slack => {
            let mac = hmac_sha256(secret, &[b"v0:", timestamp.as_bytes(), b":", body]);
            vec![
                ("x-slack-request-timestamp", timestamp.clone()),
                ("x-slack-signature", format!("v0={}", hex::encode(mac))),
            ]
        }
        Scheme::Shopify => vec![
            ("x-shopify-topic", "switchyard/test".to_owned()),
            ("x-shopify-webhook-id", id.to_owned()),
            ("x-shopify-hmac-sha256", base64.encode(hmac_sha256(secret, &[body]))),
        ],
        Scheme::StandardWebhooks => {
            let text = std::str::from_utf8(secret).map_err(|_| "the secret is not text")?;
            let key = SigningKey::parse(text).map_err(|error| error.to_string())?;
            let signature = crate::signing::signature_header([&key], id, now_seconds, body);
            vec![
                ("webhook-id", id.to_owned()),
                ("webhook-timestamp", timestamp.clone()),
                ("webhook-signature", signature),
            ]
        }
        Scheme::None => Vec::new(),
    };
    let mut headers: Vec<(String, String)> =
        headers.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    headers.insert(0, ("content-type".to_owned(), "application/json".to_owned()));
    Ok(headers)
}

/// The scheme and secret of `source`'s first verify plugin: the scheme its name says and the
/// secret its `secret` config key names.
pub fn provider_of(topology: &Topology, source: &str) -> (Scheme, Option<String>) {
    let plugin = topology
        .sources
        .get(source)
        .and_then(|source| source.verify.first())
        .and_then(|id| topology.plugins.get(id));
    let Some(plugin) = plugin else { return (Scheme::None, None) };
    let file = plugin.path.file_name().map(|name| name.to_string_lossy().into_owned());
    let scheme = Scheme::named_in(&plugin.id)
        .or_else(|| file.as_deref().and_then(Scheme::named_in))
        .unwrap_or(Scheme::StandardWebhooks);
    (scheme, plugin.config.get("secret").cloned())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEventInput {
    /// How to sign it; default: the provider the source's first verify plugin names.
    pub scheme: Option<Scheme>,
    /// The body to send; default: a small sample of the provider's kind.
    pub body: Option<String>,
}

/// What the source did with the test event, as the provider would have seen it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestEventOutcome {
    /// `accepted`, `duplicate`, `dropped`, `rejected` or `failed`.
    pub outcome: String,
    /// The HTTP status a provider would have got.
    pub status: u16,
    /// The event id (accepted, duplicate, dropped).
    pub event: Option<String>,
    pub scheme: Scheme,
    /// Why it was refused, in the router's words (`bad_signature: …`).
    pub detail: Option<String>,
    /// The headers sent, signature included (the secret is not).
    pub headers: BTreeMap<String, String>,
}

#[utoipa::path(
    post, path = "/v1/admin/sources/{id}/test", tag = "log",
    description = "Sends a sample event to an HTTP source through the real ingest path (verify \
                   plugins, routes, store), signed as the provider of its verify plugin signs \
                   (GitHub, Stripe, Slack, Shopify, Standard Webhooks) with the configured \
                   secret. Answers what a provider would have got.",
    params(("id" = String, Path, description = "Source id")),
    request_body = TestEventInput,
    responses(
        (status = 200, body = TestEventOutcome),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
)]
async fn send_test_event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Body(input): Body<TestEventInput>,
) -> Result<Json<TestEventOutcome>, ApiError> {
    let topology = &state.topology;
    let source = topology.sources.get(&id).ok_or_else(|| not_found("source", &id))?;
    if !matches!(source.kind, SourceKind::Http) {
        let detail = format!("source `{id}` is a NATS source; test events go to HTTP sources");
        return Err(invalid(vec![FieldError::new("id", detail)]));
    }
    let (guessed, secret_name) = provider_of(topology, &id);
    let scheme = input.scheme.unwrap_or(guessed);
    let secret = match (scheme, &secret_name) {
        (Scheme::None, _) => Vec::new(),
        (_, Some(name)) => match topology.secrets.get(name) {
            Some(secret) => secret.expose().to_vec(),
            None => {
                return Err(invalid(vec![FieldError::new(
                    "scheme",
                    format!("no secret `{name}`"),
                )]));
            }
        },
        (_, None) => {
            let detail = "the source has no verify plugin with a `secret`: use scheme `none`";
            return Err(invalid(vec![FieldError::new("scheme", detail)]));
        }
    };
    let delivery_id =
        format!("test_{}", EventId::generate().to_string().trim_start_matches("evt_"));
    let body = input.body.unwrap_or_else(|| scheme.sample_body(&delivery_id));
    let now_seconds = (now_millis() / 1000) as i64;
    let headers = signed_headers(scheme, &secret, body.as_bytes(), &delivery_id, now_seconds)
        .map_err(|detail| invalid(vec![FieldError::new("scheme", detail)]))?;
    let shown = headers.iter().cloned().collect();
    let inbound = Inbound {
        headers,
        body: Bytes::from(body),
        subject: None,
        event_type: None,
        dedupe_key: None,
    };
    let ingestor =
        Ingestor::new(state.store.clone(), state.pipeline.clone(), state.metrics.clone());
    let answer = |outcome: &str, status: u16, event: Option<EventId>, detail: Option<String>| {
        Json(TestEventOutcome {
            outcome: outcome.to_owned(),
            status,
            event: event.map(|id| id.to_string()),
            scheme,
            detail,
            headers: shown,
        })
    };
    Ok(match ingestor.accept(source, inbound).await {
        Ok(IngestReceipt::Stored(event)) => answer("accepted", 202, Some(event), None),
        Ok(IngestReceipt::Duplicate(event)) => answer("duplicate", 202, Some(event), None),
        Ok(IngestReceipt::Dropped(event)) => answer("dropped", 202, Some(event), None),
        Err(IngestError::Rejected(rejection)) => answer(
            "rejected",
            rejection.status,
            None,
            Some(format!("{}: {}", rejection.code, rejection.message)),
        ),
        Err(error) => answer("failed", 503, None, Some(error.to_string())),
    })
}

/// The test event sent to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointTestSent {
    /// The stored event (source `switchyard`, type `switchyard.endpoint.test`).
    pub event: String,
    /// Its one delivery, to this endpoint.
    pub delivery: i64,
    /// `pending` (it goes out now), `parked` (the endpoint is disabled: it goes out once
    /// the endpoint is enabled) or `dead` (the endpoint was deleted meanwhile).
    pub status: String,
    pub detail: String,
}

#[utoipa::path(
    post, path = "/v1/admin/endpoints/{id}/test", tag = "endpoints",
    description = "Stores a small event of the built-in source `switchyard`, type \
                   `switchyard.endpoint.test`, with one delivery to this endpoint only: no \
                   route or plugin is consulted. The delivery goes out as any other (signed, \
                   retried, listed with the endpoint's deliveries). A disabled endpoint gets \
                   it parked (`status: parked`) until it is enabled.",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 202, body = EndpointTestSent),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
)]
async fn send_endpoint_test(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<EndpointTestSent>), ApiError> {
    if !state.registry.knows(&id) {
        return Err(not_found("endpoint", &id));
    }
    let sent_at = now_millis();
    let body =
        serde_json::json!({ "type": ENDPOINT_TEST_TYPE, "endpoint": id, "sent_at": sent_at });
    let event = Event {
        id: EventId::generate(),
        source: crate::notify::SOURCE.to_owned(),
        event_type: ENDPOINT_TEST_TYPE.to_owned(),
        subject: None,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Bytes::from(body.to_string()),
        received_at: sent_at,
        dedupe_key: None,
        metadata: Vec::new(),
    };
    let notice = crate::tail::Accepted {
        id: event.id,
        source: event.source.clone(),
        event_type: event.event_type.clone(),
        received_at: event.received_at,
        body_size: event.body.len() as u64,
        deliveries: 1,
    };
    let delivery = state.pipeline.direct(&event, &id);
    let new =
        NewEvent { event, dedupe_window: None, derived: Vec::new(), deliveries: vec![delivery] };
    let event = match state.store.ingest(new).await.map_err(store_failure)? {
        IngestReceipt::Stored(event) => event,
        // No dedupe key and no verify plugin: neither can happen.
        IngestReceipt::Duplicate(event) | IngestReceipt::Dropped(event) => event,
    };
    state.store.tail().publish(notice);
    let query = DeliveryQuery {
        endpoint: Some(id.clone()),
        state: None,
        event: Some(event),
        since: None,
        until: None,
        before: None,
        limit: 1,
    };
    let listed = state.store.list_deliveries(query).await.map_err(store_failure)?;
    let delivery =
        listed.first().ok_or_else(|| not_found("delivery of event", &event.to_string()))?;
    // What the store made of it: parked when the endpoint is disabled, as every delivery.
    let (status, detail) = match delivery.state {
        DeliveryState::Parked => (
            "parked",
            format!(
                "endpoint `{id}` is disabled: the test delivery is parked and goes out once it \
                 is enabled"
            ),
        ),
        DeliveryState::Dead => ("dead", format!("endpoint `{id}` is being deleted")),
        DeliveryState::Pending | DeliveryState::Delivered => {
            ("pending", format!("the test delivery to `{id}` goes out now"))
        }
    };
    let answer = EndpointTestSent {
        event: event.to_string(),
        delivery: delivery.id.get() as i64,
        status: status.to_owned(),
        detail,
    };
    Ok((axum::http::StatusCode::ACCEPTED, Json(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_sign_as_documented() {
        let body = b"{}";
        let github = signed_headers(Scheme::Github, b"s", body, "d1", 1_700_000_000).unwrap();
        let expected = hex::encode(hmac_sha256(b"s", &[b"{}"]));
        assert!(github.contains(&("x-hub-signature-256".into(), format!("sha256={expected}"))));
        let stripe = signed_headers(Scheme::Stripe, b"whsec_x", body, "d1", 1_700_000_000).unwrap();
        let mac = hex::encode(hmac_sha256(b"whsec_x", &[b"1700000000.{}"]));
        assert!(stripe.contains(&("stripe-signature".into(), format!("t=1700000000,v1={mac}"))));
        let slack = signed_headers(Scheme::Slack, b"s", body, "d1", 1_700_000_000).unwrap();
        let mac = hex::encode(hmac_sha256(b"s", &[b"v0:1700000000:{}"]));
        assert!(slack.contains(&("x-slack-signature".into(), format!("v0={mac}"))));
        let shopify = signed_headers(Scheme::Shopify, b"s", body, "d1", 1_700_000_000).unwrap();
        let mac = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(b"s", &[b"{}"]));
        assert!(shopify.contains(&("x-shopify-hmac-sha256".into(), mac)));
        let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let standard =
            signed_headers(Scheme::StandardWebhooks, key.as_bytes(), body, "msg_1", 1_700_000_000)
                .unwrap();
        let signature = &standard.iter().find(|(name, _)| name == "webhook-signature").unwrap().1;
        assert!(signature.starts_with("v1,"), "{signature}");
        assert!(signed_headers(Scheme::StandardWebhooks, b"plain", body, "m", 1).is_err());
        assert_eq!(signed_headers(Scheme::None, b"", body, "m", 1).unwrap().len(), 1);
    }

    #[test]
    fn schemes_are_named_by_plugins() {
        assert_eq!(Scheme::named_in("verify-github"), Some(Scheme::Github));
        assert_eq!(
            Scheme::named_in("verify_standard_webhooks.wasm"),
            Some(Scheme::StandardWebhooks)
        );
        assert_eq!(Scheme::named_in("my-checker"), None);
        for scheme in Scheme::ALL {
            assert_eq!(Scheme::parse(scheme.name()), Some(scheme));
        }
    }
}
