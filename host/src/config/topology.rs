//! The validated, typed configuration: what the rest of Switchyard runs on.
//!
//! Every reference here is resolved (ids exist, secrets are loaded, paths are absolute), so
//! downstream code never re-parses strings or re-checks the config.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::secret::Secret;
use crate::egress::EgressPolicy;
use crate::nats::template::SubjectTemplate;
use crate::signing::SigningKey;

/// Default body limit when neither the source nor `server.max_body` sets one.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// How long delivered events are kept by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default dedupe window for sources that set `dedupe` without `window`.
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The `"standard"` retry schedule, declared once by the retry policy that runs it.
pub use crate::delivery::retry::STANDARD_DELAYS as STANDARD_RETRY_DELAYS;

#[derive(Debug, Clone)]
pub struct Topology {
    pub server: Server,
    pub store: StoreSettings,
    pub egress: EgressPolicy,
    pub nats: Option<Nats>,
    pub secrets: BTreeMap<String, Secret>,
    pub plugins: BTreeMap<String, Plugin>,
    pub sources: BTreeMap<String, Source>,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub routes: BTreeMap<String, Route>,
    pub telemetry: Telemetry,
    /// Things that are allowed but worth a line in the log at start (inline secrets).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub retention: Duration,
    pub admin_token: Option<Secret>,
    /// Bearer token for the publish API (`POST /v1/events`); absent ⇒ the API is off.
    pub publish_token: Option<Secret>,
    pub max_body: u64,
}

/// What a commit waits for before an event is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced: survives power loss.
    Fsync,
    /// Commits reach the OS page cache: survives a process crash, not a power loss.
    Os,
}

/// `[store]`: which backend keeps the state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSettings {
    /// The embedded database in `server.data_dir`.
    #[default]
    Sqlite,
    /// A NATS JetStream cluster, reached through `[nats]`.
    JetStream(JetStreamStore),
}

/// The JetStream store's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamStore {
    /// Servers keeping each stream and bucket.
    pub replicas: usize,
    /// The start of every stream and bucket name.
    pub prefix: String,
    /// The servers' monitoring URLs, whose `/varz` says whether they fsync every write.
    pub monitor_urls: Vec<Url>,
}

/// Default `store.replicas`.
pub const DEFAULT_STORE_REPLICAS: usize = 3;
/// Default `store.prefix`.
pub const DEFAULT_STORE_PREFIX: &str = "switchyard";

#[derive(Debug, Clone)]
pub struct Nats {
    /// The first server; `urls` holds every one.
    pub url: String,
    /// Every server configured (`url` first, then `urls`), tried in turn.
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    /// Publish delivery outcomes on `switchyard.outcomes.<endpoint>`.
    pub outcomes: bool,
}

#[derive(Debug, Clone)]
pub enum NatsAuth {
    None,
    Credentials(Secret),
    Nkey(Secret),
    Token(Secret),
    UserPassword { user: String, password: Secret },
}

#[derive(Debug, Clone)]
pub struct Plugin {
    pub id: String,
    pub path: PathBuf,
    pub secrets: Vec<String>,
    pub config: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory: u64,
    pub instances: Instances,
    pub on_error: OnError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instances {
    Fresh,
    Warm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    FailClosed,
    FailOpen,
    DeadLetter,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub kind: SourceKind,
    pub verify: Vec<String>,
    pub event_type: Option<EventTypeRule>,
    pub dedupe: Option<DedupeRule>,
    pub max_body: u64,
}

#[derive(Debug, Clone)]
pub enum SourceKind {
    /// Webhooks at `POST /webhooks/{id}`.
    Http,
    /// Services publishing through `POST /v1/events` with `"source": "<id>"`.
    Api,
    Nats {
        subject: String,
        queue_group: Option<String>,
        jetstream: Option<JetStreamConsumer>,
    },
}

#[derive(Debug, Clone)]
pub struct JetStreamConsumer {
    pub stream: String,
    pub durable: String,
    pub ack_wait: Duration,
    pub max_ack_pending: u32,
}

/// Where an event's type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypeRule {
    /// A header's value (name lower-cased), with an optional prefix such as `github.`.
    Header { name: String, prefix: String },
    /// A JSON pointer into the body, e.g. `/type`.
    JsonPointer(String),
    /// The same type for every event of the source.
    Constant(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeRule {
    /// Lower-cased header name whose value is the dedupe key.
    pub header: String,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub target: EndpointTarget,
    /// Names of signing secrets, all of which sign (rotation).
    pub secrets: Vec<String>,
    /// The keys those secrets hold, parsed once at validation, in the same order.
    pub signing_keys: Vec<SigningKey>,
    pub timeout: Duration,
    pub max_in_flight: u32,
    /// Delays between attempts; the first attempt is immediate.
    pub retry_delays: Vec<Duration>,
    pub headers: Vec<(String, String)>,
    pub transform: Option<String>,
}

#[derive(Debug, Clone)]
pub enum EndpointTarget {
    Http { url: Url },
    Nats { subject: SubjectTemplate, jetstream: bool },
}

/// A route, compiled: glob and subject patterns parsed, CEL filter compiled.
#[derive(Debug, Clone)]
pub struct Route {
    pub spec: crate::routing::RouteSpec,
}

/// `[telemetry]`: exports besides `GET /metrics`.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// OpenTelemetry traces; `None` ⇒ none are recorded.
    pub otlp: Option<Otlp>,
}

/// Where and how traces are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Otlp {
    pub endpoint: Url,
    pub protocol: OtlpProtocol,
    /// Share of traces kept when the sender did not decide, 0 to 1.
    pub sample: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies, `POST <endpoint>/v1/traces`.
    Http,
    /// OTLP/gRPC.
    Grpc,
}
