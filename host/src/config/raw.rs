//! The config file's serde schema, exactly as written by users.
//!
//! Owns the shape of `switchyard.toml` and nothing else: every struct denies unknown fields,
//! and values that need checking (durations, sizes, URLs, ids, references) stay strings here
//! so that `validate` can report every problem at once with its path. Nothing outside
//! `config` sees these types. [`super::schema`] derives the published JSON Schema from them:
//! the `///` comments below are what editors show for each key, and a new key here must be
//! followed by `switchyard config schema > docs/config.schema.json` (a test checks).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::schema::{
    Durability, DurationText, EndpointKind, Id, Instances, OnError, OtlpProtocol, RetryPolicy,
    SizeText, SourceKind, StoreBackend,
};

/// `[server]`: listening address, storage and limits shared by every source.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for webhook ingress, the publish API, the admin API, health and metrics
    /// [default: `127.0.0.1:8080`].
    #[schemars(example = &"127.0.0.1:8080")]
    pub listen: Option<String>,
    /// The store's directory, relative to the config file [default: `switchyard-data`].
    #[schemars(example = &"./switchyard-data")]
    pub data_dir: Option<String>,
    /// When a commit counts as durable [default: `fsync`].
    #[schemars(with = "Option<Durability>")]
    pub durability: Option<String>,
    /// How long delivered events and their attempts are kept; dead letters keep 30 days
    /// [default: `7d`].
    #[schemars(with = "Option<DurationText>")]
    pub retention: Option<String>,
    /// Bearer token for `/v1/admin/*`; absent, the admin API is off.
    pub admin_token: Option<SecretConfig>,
    /// Bearer token for `POST /v1/events`; absent, the publish API is off.
    pub publish_token: Option<SecretConfig>,
    /// Largest accepted request body, unless a source says otherwise [default: `1MiB`].
    #[schemars(with = "Option<SizeText>")]
    pub max_body: Option<String>,
}

/// `[store]`: where Switchyard keeps its state: an embedded SQLite database in `data_dir`, or
/// a NATS JetStream cluster shared by several nodes (cluster mode, see `docs/cluster.md`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` or `jetstream` [default: `sqlite`].
    #[schemars(with = "Option<StoreBackend>")]
    pub backend: Option<String>,
    /// JetStream: how many servers keep each stream and bucket [default: 3].
    #[schemars(range(min = 1, max = 5))]
    pub replicas: Option<i64>,
    /// JetStream: the start of every stream and bucket name [default: `switchyard`].
    #[schemars(example = &"switchyard")]
    pub prefix: Option<String>,
    /// JetStream: the servers' monitoring URLs, read at start to check that every server
    /// fsyncs each write (`sync_interval: always`) when `server.durability = "fsync"`.
    #[serde(default)]
    #[schemars(example = ["http://127.0.0.1:8222"])]
    pub monitor_urls: Vec<String>,
}

/// `[egress]`: the SSRF guard for HTTP endpoints (only public addresses by default).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Networks that endpoints may reach although they are not public, e.g. `127.0.0.0/8`.
    #[serde(default)]
    #[schemars(example = ["127.0.0.0/8"])]
    pub allow_networks: Vec<String>,
    /// Refuse `http://` endpoint URLs.
    #[serde(default)]
    pub https_only: bool,
}

/// `[nats]`: the NATS connection used by nats sources, nats endpoints and the JetStream store.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The server's URL.
    #[schemars(example = &"nats://127.0.0.1:4222")]
    pub url: Option<String>,
    /// Several servers of one cluster, tried in turn (with or instead of `url`).
    #[serde(default)]
    #[schemars(example = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])]
    pub urls: Vec<String>,
    /// A NATS `.creds` file (user JWT and nkey seed).
    pub credentials: Option<SecretConfig>,
    /// An nkey seed (`SU…`).
    pub nkey: Option<SecretConfig>,
    /// A token for token authentication.
    pub token: Option<SecretConfig>,
    /// User name for user and password authentication (with `password`).
    pub user: Option<String>,
    /// Password for user and password authentication (with `user`).
    pub password: Option<SecretConfig>,
    /// Publish every delivery attempt's outcome on `switchyard.outcomes.<endpoint>`.
    #[serde(default)]
    pub outcomes: bool,
}

/// `[telemetry]`: what Switchyard exports besides `GET /metrics`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OpenTelemetry traces over OTLP; absent, no traces are recorded.
    pub otlp: Option<OtlpConfig>,
}

/// `otlp = { endpoint = "http://127.0.0.1:4318", protocol = "http", sample = 0.1 }`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's base URL; `/v1/traces` is added for `http` when the URL has no path.
    /// Default `http://127.0.0.1:4318` (`http`) or `http://127.0.0.1:4317` (`grpc`).
    #[schemars(example = &"http://127.0.0.1:4318")]
    pub endpoint: Option<String>,
    /// `"http"` (OTLP/HTTP, protobuf; the default) or `"grpc"`.
    #[schemars(with = "Option<OtlpProtocol>")]
    pub protocol: Option<String>,
    /// Share of traces kept when the sender did not decide, from 0 to 1; default 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample: Option<f64>,
}

/// Where a secret's bytes come from: exactly one of the three.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct SecretConfig {
    /// An environment variable holding the secret.
    #[schemars(example = &"GITHUB_WEBHOOK_SECRET")]
    pub env: Option<String>,
    /// A file holding the secret, relative to the config file; one trailing newline is ignored.
    #[schemars(example = &"/run/secrets/github")]
    pub file: Option<String>,
    /// Inline; accepted for local development only, with a warning at start.
    pub value: Option<String>,
}

/// `[plugins.<id>]`: a Wasm component and how it runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component's `.wasm` file, relative to the config file.
    #[schemars(example = &"plugins/verify_github.wasm")]
    pub path: String,
    /// The only secret names this plugin may reference.
    #[serde(default)]
    #[schemars(with = "Vec<Id>")]
    pub secrets: Vec<String>,
    /// String map the plugin reads through `host.config`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Wall-clock limit per call [default: `100ms`].
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<String>,
    /// Linear memory limit [default: `64MiB`].
    #[schemars(with = "Option<SizeText>")]
    pub memory: Option<String>,
    /// A new instance per event, or a recycled pool [default: `fresh`].
    #[schemars(with = "Option<Instances>")]
    pub instances: Option<String>,
    /// What a trap, timeout or `fatal` failure does [default: `fail-closed`].
    #[schemars(with = "Option<OnError>")]
    pub on_error: Option<String>,
}

/// `[sources.<id>]`: where events come in.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `http` is served at `POST /webhooks/<id>` [default: `http`].
    #[serde(rename = "type")]
    #[schemars(with = "Option<SourceKind>")]
    pub kind: Option<String>,
    /// Plugins that run, in order, before the event is accepted.
    #[serde(default)]
    #[schemars(with = "Vec<Id>")]
    pub verify: Vec<String>,
    /// Where the event type comes from; without it, the body's top-level `type`, else the
    /// source id (or CloudEvents fields and the subject for nats sources).
    pub event_type: Option<EventTypeConfig>,
    /// Duplicate detection: a repeated key answers the same 202 and stores nothing.
    pub dedupe: Option<DedupeConfig>,
    /// Largest accepted body for this source [default: `server.max_body`].
    #[schemars(with = "Option<SizeText>")]
    pub max_body: Option<String>,
    /// NATS subject to subscribe to (nats sources), wildcards allowed.
    #[schemars(example = &"orders.>")]
    pub subject: Option<String>,
    /// NATS queue group for core subscriptions (nats sources).
    pub queue_group: Option<String>,
    /// Consume through a JetStream durable consumer (nats sources); omit for core NATS.
    pub jetstream: Option<JetStreamSourceConfig>,
}

/// One way to find an event's type: `header` (with an optional `prefix`), `json` or `value`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeConfig {
    /// A request header holding the type.
    #[schemars(example = &"x-github-event")]
    pub header: Option<String>,
    /// Prepended to the header's value.
    #[schemars(example = &"github.")]
    pub prefix: Option<String>,
    /// A JSON pointer into the body.
    #[schemars(example = &"/type")]
    pub json: Option<String>,
    /// A fixed type.
    pub value: Option<String>,
}

/// Duplicate detection by a header's value.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// The header holding the sender's delivery id.
    #[schemars(example = &"x-github-delivery")]
    pub header: String,
    /// How long a key is remembered [default: `24h`].
    #[schemars(with = "Option<DurationText>")]
    pub window: Option<String>,
}

/// A JetStream durable pull consumer on an existing stream.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSourceConfig {
    /// The stream; it belongs to the publishers and must exist.
    #[schemars(example = &"ORDERS")]
    pub stream: String,
    /// The durable consumer's name; Switchyard creates it.
    #[schemars(example = &"switchyard")]
    pub durable: String,
    /// How long the server waits for an ack before redelivering [default: `30s`].
    #[schemars(with = "Option<DurationText>")]
    pub ack_wait: Option<String>,
    /// Messages in flight without an ack [default: 1024].
    #[schemars(range(min = 1, max = 65_536))]
    pub max_ack_pending: Option<i64>,
}

/// `[endpoints.<id>]`: where deliveries go, an HTTP URL or a NATS subject.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// [default: `http`]
    #[serde(rename = "type")]
    #[schemars(with = "Option<EndpointKind>")]
    pub kind: Option<String>,
    /// The HTTP endpoint's absolute URL.
    #[schemars(example = &"https://billing.example.com/webhooks")]
    pub url: Option<String>,
    /// The signing secret (`whsec_…` or `whsk_…`), by name from `[secrets]`.
    #[schemars(with = "Option<Id>")]
    pub secret: Option<String>,
    /// Several signing secrets during a rotation; every one signs.
    #[schemars(with = "Option<Vec<Id>>")]
    pub secrets: Option<Vec<String>>,
    /// Limit per attempt [default: `15s`].
    #[schemars(with = "Option<DurationText>")]
    pub timeout: Option<String>,
    /// Attempts in flight at once [default: 16].
    #[schemars(range(min = 1, max = 4096))]
    pub max_in_flight: Option<i64>,
    /// `"standard"` or `{ schedule = ["5s", …] }`; kept loose so both shapes get good errors.
    #[schemars(with = "Option<RetryPolicy>")]
    pub retry: Option<toml::Value>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A plugin shaping the payload for this endpoint only.
    #[schemars(with = "Option<Id>")]
    pub transform: Option<String>,
    /// NATS subject template (nats endpoints), e.g. `audit.{source}.{type}`.
    #[schemars(example = &"audit.{source}.{type}")]
    pub subject: Option<String>,
    /// Wait for the JetStream PubAck (nats endpoints).
    pub jetstream: Option<bool>,
}

/// `[routes.<id>]`: which events go to which endpoints, through which plugins.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Source ids [default: every source].
    #[serde(default)]
    #[schemars(with = "Vec<Id>")]
    pub from: Vec<String>,
    /// Globs on the event type [default: every type].
    #[serde(default)]
    #[schemars(example = ["github.push", "github.pull_request"])]
    pub types: Vec<String>,
    /// NATS-style wildcards on the subject, for nats sources.
    #[serde(default)]
    #[schemars(example = ["orders.*.created"])]
    pub subjects: Vec<String>,
    /// A CEL expression over `id`, `source`, `type`, `subject`, `headers` and `body`.
    #[schemars(example = &"body.repository.private == false")]
    pub filter: Option<String>,
    /// Plugins that run in order: filter, transform or split.
    #[serde(default)]
    #[schemars(with = "Vec<Id>")]
    pub plugins: Vec<String>,
    /// Endpoint ids; at least one.
    #[serde(default)]
    #[schemars(with = "Vec<Id>")]
    pub to: Vec<String>,
}
