//! Ingresses: the protocols events arrive by. Each maps its protocol onto
//! [`crate::ingest::Ingestor`] and the answer back onto its protocol.
//!
//! This module assembles the HTTP surface ([`router`]): webhooks ([`http`]), the publish API
//! ([`publish`]), health, readiness and metrics. The router is an `axum::Router` that tests can
//! drive without a socket; the handlers do not know each other.

pub mod client_cert;
pub mod http;
pub mod limit;
pub mod nats;
pub mod publish;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::json;

use crate::config::Topology;
use crate::http_api::ApiError;
use crate::ingest::Ingestor;
use crate::nats::NatsConnection;
use crate::telemetry::Metrics;
use crate::traffic::ingest::IngestLimits;

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub topology: Arc<Topology>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
    /// False while starting and while draining: `/readyz` answers 503.
    pub ready: Arc<AtomicBool>,
    /// With NATS in use, `/readyz` also needs the connection up and every consumer created.
    pub nats: Option<NatsReadiness>,
    /// Every source's `rate_limit` buckets; kept across reloads.
    pub limits: Arc<IngestLimits>,
    /// Told when a source refuses senders past its rate limit (`switchyard.source.rate_limited`).
    pub notifier: crate::notify::Notifier,
}

/// What NATS readiness depends on.
#[derive(Debug, Clone)]
pub struct NatsReadiness {
    pub connection: NatsConnection,
    /// JetStream consumers not created yet.
    pub pending_consumers: Arc<AtomicUsize>,
}

pub fn router(state: HttpState) -> axum::Router {
    axum::Router::new()
        .route("/webhooks/{source}", post(http::receive_webhook))
        .route("/v1/events", post(publish::publish))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(http::readiness))
        .route("/metrics", get(http::metrics))
        .fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for `{} {}`", request.method(), request.uri().path()),
            )
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("`{}` is not allowed on `{}`", request.method(), request.uri().path()),
            )
        })
        .with_state(state)
}
