//! The config file's serde schema, exactly as written by users.
//!
//! Owns the shape of `switchyard.toml` and nothing else: every struct denies unknown fields,
//! and values that need checking (durations, sizes, URLs, ids, references) stay strings here
//! so that `validate` can report every problem at once with its path. Nothing outside
//! `config` sees these types.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub durability: Option<String>,
    pub retention: Option<String>,
    pub admin_token: Option<SecretConfig>,
    /// Bearer token for `POST /v1/events`; absent, the publish API is off.
    pub publish_token: Option<SecretConfig>,
    pub max_body: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    #[serde(default)]
    pub allow_networks: Vec<String>,
    #[serde(default)]
    pub https_only: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub url: Option<String>,
    /// A NATS `.creds` file (user JWT and nkey seed).
    pub credentials: Option<SecretConfig>,
    /// An nkey seed (`SU…`).
    pub nkey: Option<SecretConfig>,
    pub token: Option<SecretConfig>,
    pub user: Option<String>,
    pub password: Option<SecretConfig>,
    /// Publish every delivery attempt's outcome on `switchyard.outcomes.<endpoint>`.
    #[serde(default)]
    pub outcomes: bool,
}

/// `[telemetry]`: what Switchyard exports besides `GET /metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OpenTelemetry traces over OTLP; absent, no traces are recorded.
    pub otlp: Option<OtlpConfig>,
}

/// `otlp = { endpoint = "http://127.0.0.1:4318", protocol = "http", sample = 0.1 }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's base URL; `/v1/traces` is added for `http` when the URL has no path.
    /// Default `http://127.0.0.1:4318` (`http`) or `http://127.0.0.1:4317` (`grpc`).
    pub endpoint: Option<String>,
    /// `"http"` (OTLP/HTTP, protobuf; the default) or `"grpc"`.
    pub protocol: Option<String>,
    /// Share of traces kept when the sender did not decide, from 0 to 1; default 1.
    pub sample: Option<f64>,
}

/// Where a secret's bytes come from: exactly one of the three.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    pub env: Option<String>,
    pub file: Option<String>,
    /// Inline; accepted for local development only, with a warning at start.
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub path: String,
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    pub timeout: Option<String>,
    pub memory: Option<String>,
    pub instances: Option<String>,
    pub on_error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub verify: Vec<String>,
    pub event_type: Option<EventTypeConfig>,
    pub dedupe: Option<DedupeConfig>,
    pub max_body: Option<String>,
    pub subject: Option<String>,
    pub queue_group: Option<String>,
    pub jetstream: Option<JetStreamSourceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTypeConfig {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub json: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    pub header: String,
    pub window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSourceConfig {
    pub stream: String,
    pub durable: String,
    pub ack_wait: Option<String>,
    pub max_ack_pending: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub secrets: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub max_in_flight: Option<i64>,
    /// `"standard"` or `{ schedule = ["5s", …] }`; kept loose so both shapes get good errors.
    pub retry: Option<toml::Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub transform: Option<String>,
    pub subject: Option<String>,
    pub jetstream: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub from: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    pub filter: Option<String>,
    #[serde(default)]
    pub plugins: Vec<String>,
    #[serde(default)]
    pub to: Vec<String>,
}
