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
    BreakerPolicy, DisableAfter, Durability, DurationText, EndpointKind, Id, Instances, OnError,
    OrderedByPolicy, OtlpProtocol, RateLimitPer, RateText, RetryPolicy, SizeText, SourceKind,
    StoreBackend,
};

/// `[server]`: listening address, storage and limits shared by every source.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for webhook ingress, the publish API, the admin API, health and metrics
    /// [default: `127.0.0.1:8080`].
    #[schemars(example = &"127.0.0.1:8080")]
    pub listen: Option<String>,
    /// A second address serving the admin API (`/v1/admin/*`) and the dashboard (`/ui/`)
    /// alone; they then answer 404 on `listen`. Absent, they share `listen`.
    #[schemars(example = &"127.0.0.1:8081")]
    pub admin_listen: Option<String>,
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
    /// How long the audit log keeps admin actions [default: `90d`].
    #[schemars(with = "Option<DurationText>")]
    pub audit_retention: Option<String>,
    /// Dynamic endpoints and subscriptions must prove ownership (answer a signed challenge)
    /// before they get deliveries [default: `false`]. Recommended for any subscription API
    /// open to customers; never applies to config endpoints.
    pub verify_endpoints: Option<bool>,
    /// How long a dynamic endpoint has to answer its challenge before it is disabled
    /// [default: `24h`].
    #[schemars(with = "Option<DurationText>")]
    pub verify_timeout: Option<String>,
    /// At most one operational event (source `switchyard`) per kind and endpoint in this
    /// long [default: `15m`].
    #[schemars(with = "Option<DurationText>")]
    pub notify_every: Option<String>,
    /// Bearer token for `/v1/admin/*`; absent, the admin API is off.
    pub admin_token: Option<SecretConfig>,
    /// Read-only token for the admin API and the dashboard: every page and `GET`, no action,
    /// never a secret. Needs `admin_token`.
    pub viewer_token: Option<SecretConfig>,
    /// Bearer token for `POST /v1/events`; absent, the publish API is off.
    pub publish_token: Option<SecretConfig>,
    /// Largest accepted request body, unless a source says otherwise [default: `1MiB`].
    #[schemars(with = "Option<SizeText>")]
    pub max_body: Option<String>,
    /// What every listener allows a client: connections, read timeouts, body rate, streams.
    pub limits: Option<LimitsConfig>,
    /// TLS on every listener; the files are read again on reload.
    pub tls: Option<TlsConfig>,
    /// Proxies whose `x-forwarded-for` is believed, as networks in CIDR notation: a request
    /// from one of them comes from the first address of that header, read from the right,
    /// that is not one of them (rate limits `per = "client"`).
    #[serde(default)]
    #[schemars(example = ["10.0.0.0/8"])]
    pub trusted_proxies: Vec<String>,
    /// The `[secrets]` entry (32 random bytes in base64) that seals dynamic endpoints' signing
    /// secrets and client keys in the store; absent, they are stored in clear (with a warning).
    /// Change it with `switchyard store rotate-key`.
    #[schemars(with = "Option<Id>", example = &"store-key")]
    pub store_key: Option<String>,
}

/// `tls = { cert = "cert.pem", key = "key.pem", client_ca = "ca.pem", client_auth = "optional" }`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first, relative to the config file.
    #[schemars(example = &"cert.pem")]
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), relative to the config file.
    #[schemars(example = &"key.pem")]
    pub key: String,
    /// PEM certificates of the CAs that client certificates must chain to.
    #[schemars(example = &"ca.pem")]
    pub client_ca: Option<String>,
    /// With `client_ca`: `optional` (a client may present none) or `required`
    /// [default: `optional`].
    #[schemars(with = "Option<ClientAuthText>")]
    pub client_auth: Option<String>,
}

/// `optional` or `required`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthText {
    Optional,
    Required,
}

/// `limits = { connections = 10000, header_timeout = "10s", body_timeout = "30s",
/// min_body_rate = "1KiB/s", http2_streams = 100 }`: the listener's defences against clients
/// that hold connections open without sending.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open connections per listener; past it, new connections wait in the kernel's queue
    /// until one closes [default: 10000].
    #[schemars(range(min = 1, max = 1_000_000))]
    pub connections: Option<i64>,
    /// Longest wait for a request's head, counted from the connection's start or from the end
    /// of its previous request (idle keep-alive connections close then too) [default: `10s`].
    #[schemars(with = "Option<DurationText>")]
    pub header_timeout: Option<String>,
    /// Longest wait for the next bytes of a request body [default: `30s`].
    #[schemars(with = "Option<DurationText>")]
    pub body_timeout: Option<String>,
    /// Slowest average body rate accepted, e.g. `1KiB/s`, checked once a body has been read for
    /// 5 s (or `body_timeout`, when shorter) [default: `1KiB/s`].
    #[schemars(example = &"1KiB/s")]
    pub min_body_rate: Option<String>,
    /// Concurrent streams per HTTP/2 connection [default: 100].
    #[schemars(range(min = 1, max = 10_000))]
    pub http2_streams: Option<i64>,
}

/// `rate_limit = { rate = "100/s", burst = 200, per = "source" }`: the most requests a source
/// accepts; past it, `429` with `Retry-After` (HTTP and the publish API) or slower pulls (NATS).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests refilled per unit of time.
    #[schemars(with = "RateText")]
    pub rate: String,
    /// Requests accepted at once after a quiet spell [default: one second's worth of `rate`,
    /// at least 1].
    #[schemars(range(min = 1, max = 1_000_000))]
    pub burst: Option<i64>,
    /// `source` (every sender together) or `client` (each client address apart; see
    /// `server.trusted_proxies`) [default: `source`].
    #[schemars(with = "Option<RateLimitPer>")]
    pub per: Option<String>,
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
    /// JetStream: how often the node owning partition 0 writes a snapshot of its projection
    /// (when the log has grown since the last one), after which the log is trimmed below the
    /// older of the two snapshots kept [default: `10m`; at least `1s`].
    #[schemars(with = "Option<DurationText>")]
    pub snapshot_every: Option<String>,
    /// JetStream: a snapshot is also written once this many log entries were appended since
    /// the last one, before `snapshot_every` has passed [default: 100000].
    #[schemars(range(min = 1))]
    pub snapshot_entries: Option<i64>,
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
    /// An HTTP proxy every delivery goes through (`CONNECT` for `https` targets); the rules
    /// above still apply to each target name, checked before the proxy is asked.
    #[schemars(example = &"http://proxy.internal:3128")]
    pub proxy: Option<String>,
    /// Targets reached directly, not through `proxy`: host names (`example.com` or
    /// `.example.com`: the domain and its subdomains), IP addresses and networks.
    #[serde(default)]
    #[schemars(example = ["billing.internal", "10.0.0.0/8"])]
    pub no_proxy: Vec<String>,
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
    /// Accept only requests whose verified TLS client certificate has one of these subjects
    /// (needs `server.tls.client_ca`); http and api sources.
    pub client_cert: Option<ClientCertConfig>,
    /// NATS subject to subscribe to (nats sources), wildcards allowed.
    #[schemars(example = &"orders.>")]
    pub subject: Option<String>,
    /// NATS queue group for core subscriptions (nats sources).
    pub queue_group: Option<String>,
    /// Consume through a JetStream durable consumer (nats sources); omit for core NATS.
    pub jetstream: Option<JetStreamSourceConfig>,
    /// The most events this source accepts per unit of time.
    pub rate_limit: Option<RateLimitConfig>,
}

/// `client_cert = { subjects = ["CN=billing"] }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertConfig {
    /// Subject patterns, `TYPE=value` pairs joined by commas (CN, O, OU, C, L, ST, DC); a
    /// certificate matches one when its subject holds every pair listed.
    #[schemars(example = ["CN=billing"])]
    pub subjects: Vec<String>,
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
    /// Attempts started per unit of time, spaced evenly; deliveries past it wait, they do
    /// not fail [default: unlimited].
    #[schemars(with = "Option<RateText>")]
    pub rate: Option<String>,
    /// Attempts that may start at once after a quiet spell, with `rate` [default: 1].
    #[schemars(range(min = 1, max = 10_000))]
    pub burst: Option<i64>,
    /// The circuit breaker: after `failures` consecutive failed attempts, none for `cooldown`,
    /// then one probe; `"off"` disables it [default: `{ failures = 20, cooldown = "30s",
    /// max_cooldown = "10m" }`].
    #[schemars(with = "Option<BreakerPolicy>")]
    pub breaker: Option<toml::Value>,
    /// Adapt the in-flight limit between 1 and `max_in_flight` to 429/503, timeouts and
    /// connection errors [default: `true`].
    pub adaptive: Option<bool>,
    /// Disable the endpoint (its deliveries parked) after this long without a successful
    /// attempt while attempts kept failing; `"off"` never does [default: `5d`].
    #[schemars(with = "Option<DisableAfter>")]
    pub disable_after: Option<String>,
    /// Ordering per key: for one key, a delivery starts only after the previous one was
    /// delivered or became a dead letter; `{ json = "/customer/id" }` (a JSON pointer into
    /// the body), `{ header = "x-order-key" }` or `"all"` [default: unordered].
    #[schemars(with = "Option<OrderedByPolicy>")]
    pub ordered_by: Option<toml::Value>,
    /// TLS settings of this `https` endpoint: a private CA, a client certificate.
    pub tls: Option<EndpointTlsConfig>,
}

/// `tls = { ca = "ca.pem", client_cert = "client.pem", client_key = { file = "client.key" } }`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointTlsConfig {
    /// PEM file of the CA certificates to trust for this endpoint, relative to the config
    /// file; only these are trusted (not the system's roots).
    #[schemars(example = &"ca.pem")]
    pub ca: Option<String>,
    /// PEM file of the client certificate (and its chain) to present, relative to the config
    /// file; needs `client_key`.
    #[schemars(example = &"client.pem")]
    pub client_cert: Option<String>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1), a secret.
    pub client_key: Option<SecretConfig>,
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
