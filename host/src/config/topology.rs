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
/// How long a dynamic endpoint has to answer its challenge when `server.verify_timeout` is
/// not set.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long the audit log keeps admin actions when `server.audit_retention` is not set.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
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
    /// The admin API's (and dashboard's) own address; `None`: they share `listen`.
    pub admin_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub retention: Duration,
    /// How long audit entries are kept (`server.audit_retention`).
    pub audit_retention: Duration,
    /// Dynamic endpoints must answer a challenge before they get deliveries.
    pub verify_endpoints: bool,
    /// How long they have to answer it.
    pub verify_timeout: Duration,
    /// The storm guard of operational events: at most one per kind and endpoint this often.
    pub notify_every: Duration,
    pub admin_token: Option<Secret>,
    /// Read-only token for the admin API and the dashboard; only with `admin_token`.
    pub viewer_token: Option<Secret>,
    /// Bearer token for the publish API (`POST /v1/events`); absent ⇒ the API is off.
    pub publish_token: Option<Secret>,
    pub max_body: u64,
    /// Enforced by every listener (`crate::listener`).
    pub limits: Limits,
    /// TLS on every listener.
    pub tls: Option<Tls>,
    /// Proxies whose `x-forwarded-for` is believed (`client` rate limits).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Seals dynamic endpoints' secrets in the store (`server.store_key`); `None`: in clear.
    pub store_key: Option<crate::seal::StoreKey>,
}

/// `server.tls`, its paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// Whether a client must present a certificate (only with `client_ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Optional,
    Required,
}

/// `server.limits`: what one listener allows its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per listener; past it the listener stops accepting.
    pub connections: usize,
    /// Longest wait for a request head (and longest idle time between requests).
    pub header_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Slowest average body rate, in bytes per second.
    pub min_body_rate: u64,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 10_000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            min_body_rate: 1024,
            http2_streams: 100,
        }
    }
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
    /// How often a snapshot of the projection is written (when the log has grown).
    pub snapshot_every: Duration,
    /// Entries appended since the last snapshot that call for the next one sooner.
    pub snapshot_entries: u64,
}

/// Default `store.snapshot_every`.
pub const DEFAULT_SNAPSHOT_EVERY: Duration = Duration::from_secs(600);
/// Default `store.snapshot_entries`.
pub const DEFAULT_SNAPSHOT_ENTRIES: u64 = 100_000;

/// Default `store.replicas`.
pub const DEFAULT_STORE_REPLICAS: usize = 3;
/// Default `store.prefix`.
pub const DEFAULT_STORE_PREFIX: &str = "switchyard";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nats {
    /// The first server; `urls` holds every one.
    pub url: String,
    /// Every server configured (`url` first, then `urls`), tried in turn.
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    /// Publish delivery outcomes on `switchyard.outcomes.<endpoint>`.
    pub outcomes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `client_cert.subjects`: a request must carry a verified client certificate matching
    /// one; `None` accepts any client.
    pub client_subjects: Option<Vec<crate::listener::subject::SubjectPattern>>,
    /// `rate_limit`: HTTP and api sources refuse past it, nats sources pull slower.
    pub rate_limit: Option<crate::traffic::ingest::IngestRule>,
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
    /// Rate, breaker, adaptive concurrency and auto-disable.
    pub traffic: crate::traffic::endpoint::TrafficSettings,
    /// Ordering per key (`ordered_by`); `None`: unordered.
    pub ordered_by: Option<crate::traffic::ordering::OrderedBy>,
    /// HTTP endpoints' own TLS settings, read and checked.
    pub tls: Option<crate::delivery::http::EndpointTls>,
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
