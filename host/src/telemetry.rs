//! Logging setup and the Prometheus metrics every module reports into.
//!
//! Owns metric names (declared once, here) and the registry rendered at `GET /metrics`.
//! Modules receive an `Arc<Metrics>` and only increment; they never register metrics.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Log output format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global `tracing` subscriber: stderr, `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .with_env_filter(filter);
    // A second initialisation (tests) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// What happened to an inbound request or message.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum IngestOutcome {
    Accepted,
    Duplicate,
    /// Dropped by a verify plugin: acknowledged, not stored.
    Dropped,
    Rejected,
    /// Refused by the source's `rate_limit`: answered 429, not stored.
    RateLimited,
    Error,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Dropped => "dropped",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Error => "error",
        }
    }
}

impl EncodeLabelValue for IngestOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IngestLabels {
    pub source: String,
    pub outcome: IngestOutcome,
}

/// How one delivery attempt ended, as counted.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    Retrying,
    DeadLetter,
    EndpointDisabled,
}

impl AttemptOutcome {
    pub const ALL: [Self; 4] =
        [Self::Delivered, Self::Retrying, Self::DeadLetter, Self::EndpointDisabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::DeadLetter => "dead_letter",
            Self::EndpointDisabled => "endpoint_disabled",
        }
    }
}

impl EncodeLabelValue for AttemptOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub endpoint: String,
    pub outcome: AttemptOutcome,
}

/// How one plugin call ended, as counted.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PluginOutcome {
    /// A valid verdict.
    Ok,
    /// The plugin asked the sender to retry.
    Retry,
    /// Every plugin thread was busy; the sender was asked to retry.
    Busy,
    /// Trap, timeout, memory limit, invalid verdict or `fatal`: `on_error` applied.
    Failed,
}

impl PluginOutcome {
    pub const ALL: [Self; 4] = [Self::Ok, Self::Retry, Self::Busy, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::Busy => "busy",
            Self::Failed => "failed",
        }
    }
}

impl EncodeLabelValue for PluginOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Default)]
struct PluginLedger {
    seconds: f64,
    calls: u64,
    times: crate::plugin::call_times::CallTimes,
    last_error: Option<(u64, String)>,
}

/// What this node's metrics say of one plugin's calls since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginCalls {
    /// Calls by outcome (`ok`, `retry`, `busy`, `failed`), every outcome listed.
    pub by_outcome: Vec<(&'static str, u64)>,
    /// Mean wall time of a call, in seconds (`None` before the first).
    pub mean_seconds: Option<f64>,
    /// Median and 95th-percentile wall time in milliseconds, from a fixed-bucket histogram
    /// (see [`crate::plugin::call_times`]).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// The last failure: when (unix ms) and why.
    pub last_error: Option<(u64, String)>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
    pub outcome: PluginOutcome,
}

/// What became of a NATS message.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum NatsOutcome {
    /// Stored (or a known duplicate, or dropped by a plugin), then acked.
    Acked,
    /// Not stored yet; JetStream redelivers it after a delay.
    Nacked,
    /// Refused for good (malformed CloudEvent, rejected by a plugin, no event type).
    Terminated,
    /// A core-NATS message that could not be stored; core NATS cannot redeliver it.
    Lost,
}

impl EncodeLabelValue for NatsOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let text = match self {
            Self::Acked => "acked",
            Self::Nacked => "nacked",
            Self::Terminated => "terminated",
            Self::Lost => "lost",
        };
        std::fmt::Write::write_str(encoder, text)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NatsLabels {
    pub source: String,
    pub outcome: NatsOutcome,
}

/// How a config reload ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied,
    Refused,
}

impl EncodeLabelValue for ReloadOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        let text = match self {
            Self::Applied => "applied",
            Self::Refused => "refused",
        };
        std::fmt::Write::write_str(encoder, text)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub outcome: ReloadOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginIdLabels {
    pub plugin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

/// Why a listener closed a connection (or, on HTTP/2, a stream) itself.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request head within `header_timeout` (a slow or half-sent head).
    HeaderTimeout,
    /// A keep-alive connection idle for `header_timeout` without a byte of a new request.
    Idle,
    /// No body bytes for `body_timeout`.
    BodyTimeout,
    /// A body arriving slower than `min_body_rate`.
    MinBodyRate,
}

impl CloseReason {
    pub const ALL: [Self; 4] =
        [Self::HeaderTimeout, Self::Idle, Self::BodyTimeout, Self::MinBodyRate];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::Idle => "idle",
            Self::BodyTimeout => "body_timeout",
            Self::MinBodyRate => "min_body_rate",
        }
    }
}

impl EncodeLabelValue for CloseReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `main` (`server.listen`) or `admin` (`server.admin_listen`).
    pub listener: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerCloseLabels {
    pub listener: String,
    pub reason: CloseReason,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointWaitLabels {
    pub endpoint: String,
    /// `rate`, `paused` or `breaker`.
    pub reason: &'static str,
}

/// One endpoint's attempt series (`switchyard_delivery_attempts_total` by outcome and
/// `switchyard_delivery_attempt_seconds`), each looked up on its first use and kept: a lookup
/// hashes an owned copy of the endpoint's name, which cost ~1.4 % of the router's CPU under
/// ten endpoints when it was done at every attempt.
#[derive(Debug)]
pub struct AttemptSeries {
    endpoint: String,
    attempts: Family<AttemptLabels, Counter>,
    seconds: Family<EndpointLabels, Histogram>,
    by_outcome: [OnceLock<Counter>; AttemptOutcome::ALL.len()],
    duration: OnceLock<Histogram>,
}

impl AttemptSeries {
    pub fn count(&self, outcome: AttemptOutcome, seconds: f64) {
        let endpoint = || self.endpoint.clone();
        self.duration
            .get_or_init(|| {
                self.seconds.get_or_create_owned(&EndpointLabels { endpoint: endpoint() })
            })
            .observe(seconds);
        self.by_outcome[outcome as usize]
            .get_or_init(|| {
                self.attempts.get_or_create_owned(&AttemptLabels { endpoint: endpoint(), outcome })
            })
            .inc();
    }
}

/// One endpoint's gauge, looked up once by its worker.
pub type EndpointGauge = Gauge;
/// A counter of seconds.
pub type SecondsCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// What traffic control shows of each endpoint.
#[derive(Debug, Default)]
pub struct TrafficMetrics {
    /// `switchyard_endpoint_wait_seconds_total{endpoint, reason}`: time deliveries waited
    /// for the endpoint's rate, a `Retry-After` pause or its breaker.
    pub wait_seconds: Family<EndpointWaitLabels, SecondsCounter>,
    /// `switchyard_endpoint_in_flight_limit{endpoint}`: attempts allowed under way at once
    /// (adaptive concurrency moves it between 1 and `max_in_flight`).
    pub in_flight_limit: Family<EndpointLabels, Gauge>,
    /// `switchyard_endpoint_breaker_state{endpoint}`: 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<EndpointLabels, Gauge>,
    /// `switchyard_endpoint_breaker_consecutive_failures{endpoint}`
    pub breaker_failures: Family<EndpointLabels, Gauge>,
    /// `switchyard_endpoint_breaker_opened_total{endpoint}`
    pub breaker_opened: Family<EndpointLabels, Counter>,
    /// `switchyard_endpoint_auto_disabled_total{endpoint}`: disabled by `disable_after`.
    pub auto_disabled: Family<EndpointLabels, Counter>,
}

impl TrafficMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_endpoint_wait_seconds",
            "Time deliveries waited for an endpoint's rate, a Retry-After pause or its breaker",
            self.wait_seconds.clone(),
        );
        registry.register(
            "switchyard_endpoint_in_flight_limit",
            "Attempts an endpoint may have under way at once",
            self.in_flight_limit.clone(),
        );
        registry.register(
            "switchyard_endpoint_breaker_state",
            "Circuit breaker: 0 closed, 1 open, 2 half-open",
            self.breaker_state.clone(),
        );
        registry.register(
            "switchyard_endpoint_breaker_consecutive_failures",
            "Consecutive failed attempts the breaker counts",
            self.breaker_failures.clone(),
        );
        registry.register(
            "switchyard_endpoint_breaker_opened",
            "Times an endpoint's breaker opened",
            self.breaker_opened.clone(),
        );
        registry.register(
            "switchyard_endpoint_auto_disabled",
            "Endpoints disabled for failing too long (disable_after)",
            self.auto_disabled.clone(),
        );
    }
}

/// Every metric Switchyard exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `switchyard_ingest_events_total{source, outcome}`
    pub ingest_events: Family<IngestLabels, Counter>,
    /// `switchyard_events_unrouted_total`: accepted events that matched no route.
    pub events_unrouted: Counter,
    /// `switchyard_delivery_attempts_total{endpoint, outcome}`
    pub delivery_attempts: Family<AttemptLabels, Counter>,
    /// `switchyard_delivery_attempt_seconds{endpoint}`: request duration, answer or not.
    pub delivery_attempt_seconds: Family<EndpointLabels, Histogram>,
    /// `switchyard_deliveries_pending{endpoint}`: queued or in flight, in memory.
    pub deliveries_pending: Family<EndpointLabels, Gauge>,
    /// `switchyard_delivery_body_reads_total`: attempts whose body was read from the store
    /// (a retry, or a delivery queued past the bodies kept in memory).
    pub delivery_body_reads: Counter,
    /// `switchyard_store_commits_total`
    pub store_commits: Counter,
    /// `switchyard_store_committed_events_total`: events made durable.
    pub store_committed_events: Counter,
    /// `switchyard_store_commit_batch_size`: requests per commit (group commit at work).
    pub store_commit_batch_size: Histogram,
    /// `switchyard_store_commit_seconds`: transaction + fsync time.
    pub store_commit_seconds: Histogram,
    /// `switchyard_store_pruned_events_total`: events deleted by retention.
    pub store_pruned_events: Counter,
    /// `switchyard_plugin_calls_total{plugin, outcome}`
    pub plugin_calls: Family<PluginLabels, Counter>,
    /// `switchyard_plugin_call_seconds{plugin}`: wall time, instantiation included.
    pub plugin_call_seconds: Family<PluginIdLabels, Histogram>,
    /// `switchyard_nats_messages_total{source, outcome}`
    pub nats_messages: Family<NatsLabels, Counter>,
    /// `switchyard_config_reloads_total{outcome}`
    pub config_reloads: Family<ReloadLabels, Counter>,
    /// `switchyard_listener_connections_open{listener}`
    pub connections_open: Family<ListenerLabels, Gauge>,
    /// `switchyard_listener_closed_total{listener, reason}`: connections (HTTP/2: streams)
    /// closed by a limit.
    pub connections_closed: Family<ListenerCloseLabels, Counter>,
    /// `switchyard_listener_saturated_total{listener}`: times the listener stopped accepting
    /// because `connections` were open.
    pub listener_saturated: Family<ListenerLabels, Counter>,
    /// Whether the store can commit (not a metric: `/readyz` reads it).
    pub store_health: crate::health::StoreHealth,
    /// Cluster mode: the projection's lag and start catch-up (not a metric: `/readyz` reads
    /// it; the gauge is `switchyard_store_log_lag`).
    pub store_projection: crate::health::ProjectionProgress,
    /// Per plugin, for the dashboard: total call time and calls (the histogram keeps no
    /// readable sum), and the last failure.
    plugin_ledgers: std::sync::Mutex<std::collections::BTreeMap<String, PluginLedger>>,
    /// `switchyard_nats_connected`: 1 while the NATS connection is up. A family without labels
    /// so that routers without a `[nats]` section export no sample at all.
    nats_connected: Family<Vec<(String, String)>, Gauge>,
    /// Endpoint traffic control: waits, in-flight limits, breakers.
    pub traffic: TrafficMetrics,
    /// `switchyard_store_log_lag`: cluster mode only: entries of the store's log known to be
    /// there that this node's projection has not applied yet (what its queries lag by).
    store_log_lag: Family<Vec<(String, String)>, Gauge>,
    /// `switchyard_store_partitions_owned`: cluster mode only: delivery partitions this node
    /// holds the lease of.
    store_partitions_owned: Family<Vec<(String, String)>, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let ingest_events = Family::<IngestLabels, Counter>::default();
        registry.register(
            "switchyard_ingest_events",
            "Inbound events by source and outcome",
            ingest_events.clone(),
        );
        let events_unrouted = Counter::default();
        registry.register(
            "switchyard_events_unrouted",
            "Accepted events that matched no route",
            events_unrouted.clone(),
        );
        let delivery_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "switchyard_delivery_attempts",
            "Delivery attempts by endpoint and outcome",
            delivery_attempts.clone(),
        );
        let delivery_attempt_seconds = Family::<EndpointLabels, Histogram>::new_with_constructor(
            attempt_histogram as fn() -> Histogram,
        );
        registry.register(
            "switchyard_delivery_attempt_seconds",
            "Duration of delivery attempts",
            delivery_attempt_seconds.clone(),
        );
        let deliveries_pending = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "switchyard_deliveries_pending",
            "Deliveries queued or in flight per endpoint",
            deliveries_pending.clone(),
        );
        let delivery_body_reads = Counter::default();
        registry.register(
            "switchyard_delivery_body_reads",
            "Delivery attempts whose body was read back from the store",
            delivery_body_reads.clone(),
        );
        let store_commits = Counter::default();
        registry.register(
            "switchyard_store_commits",
            "Store transactions committed",
            store_commits.clone(),
        );
        let store_committed_events = Counter::default();
        registry.register(
            "switchyard_store_committed_events",
            "Events made durable by store commits",
            store_committed_events.clone(),
        );
        let store_commit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "switchyard_store_commit_batch_size",
            "Requests grouped into one store commit",
            store_commit_batch_size.clone(),
        );
        let store_commit_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "switchyard_store_commit_seconds",
            "Time to commit (and fsync) one store transaction",
            store_commit_seconds.clone(),
        );
        let plugin_calls = Family::<PluginLabels, Counter>::default();
        registry.register(
            "switchyard_plugin_calls",
            "Plugin calls by outcome",
            plugin_calls.clone(),
        );
        let plugin_call_seconds = Family::<PluginIdLabels, Histogram>::new_with_constructor(
            plugin_histogram as fn() -> Histogram,
        );
        registry.register(
            "switchyard_plugin_call_seconds",
            "Wall time of plugin calls, instantiation included",
            plugin_call_seconds.clone(),
        );
        let nats_messages = Family::<NatsLabels, Counter>::default();
        registry.register(
            "switchyard_nats_messages",
            "NATS messages by source and what became of them",
            nats_messages.clone(),
        );
        let nats_connected = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "switchyard_nats_connected",
            "1 while the NATS connection is up, 0 while the client reconnects",
            nats_connected.clone(),
        );
        let store_log_lag = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "switchyard_store_log_lag",
            "Cluster mode: log entries this node has not applied to its projection yet",
            store_log_lag.clone(),
        );
        let store_partitions_owned = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register(
            "switchyard_store_partitions_owned",
            "Cluster mode: delivery partitions this node holds the lease of",
            store_partitions_owned.clone(),
        );
        let store_pruned_events = Counter::default();
        registry.register(
            "switchyard_store_pruned_events",
            "Events deleted by retention",
            store_pruned_events.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "switchyard_config_reloads",
            "Config reloads by outcome",
            config_reloads.clone(),
        );
        // Both series exist from the start, at zero.
        for outcome in [ReloadOutcome::Applied, ReloadOutcome::Refused] {
            drop(config_reloads.get_or_create(&ReloadLabels { outcome }));
        }
        let connections_open = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "switchyard_listener_connections_open",
            "Open client connections per listener",
            connections_open.clone(),
        );
        let connections_closed = Family::<ListenerCloseLabels, Counter>::default();
        registry.register(
            "switchyard_listener_closed",
            "Connections (HTTP/2: streams) the listener closed, by the limit that closed them",
            connections_closed.clone(),
        );
        let listener_saturated = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "switchyard_listener_saturated",
            "Times a listener stopped accepting because its connection limit was reached",
            listener_saturated.clone(),
        );
        let traffic = TrafficMetrics::default();
        traffic.register(&mut registry);
        Arc::new(Self {
            traffic,
            registry,
            connections_open,
            connections_closed,
            listener_saturated,
            config_reloads,
            store_pruned_events,
            nats_messages,
            nats_connected,
            store_log_lag,
            store_partitions_owned,
            plugin_calls,
            plugin_call_seconds,
            ingest_events,
            events_unrouted,
            delivery_attempts,
            delivery_attempt_seconds,
            deliveries_pending,
            delivery_body_reads,
            store_commits,
            store_committed_events,
            store_commit_batch_size,
            store_commit_seconds,
            store_health: crate::health::StoreHealth::default(),
            store_projection: crate::health::ProjectionProgress::default(),
            plugin_ledgers: std::sync::Mutex::default(),
        })
    }

    /// Makes a listener's series appear at zero.
    pub fn register_listener(&self, listener: &str) {
        let labels = ListenerLabels { listener: listener.to_owned() };
        self.connections_open.get_or_create(&labels).set(0);
        drop(self.listener_saturated.get_or_create(&labels));
        for reason in CloseReason::ALL {
            drop(
                self.connections_closed
                    .get_or_create(&ListenerCloseLabels { listener: listener.to_owned(), reason }),
            );
        }
    }

    pub fn count_listener_close(&self, listener: &str, reason: CloseReason) {
        let labels = ListenerCloseLabels { listener: listener.to_owned(), reason };
        self.connections_closed.get_or_create(&labels).inc();
    }

    pub fn count_reload(&self, outcome: ReloadOutcome) {
        self.config_reloads.get_or_create(&ReloadLabels { outcome }).inc();
    }

    pub fn count_ingest(&self, source: &str, outcome: IngestOutcome) {
        self.ingest_events
            .get_or_create(&IngestLabels { source: source.to_owned(), outcome })
            .inc();
    }

    pub fn count_attempt(&self, endpoint: &str, outcome: AttemptOutcome, seconds: f64) {
        self.attempt_series(endpoint).count(outcome, seconds);
    }

    /// `endpoint`'s attempt series, for its worker to keep.
    pub fn attempt_series(&self, endpoint: &str) -> AttemptSeries {
        AttemptSeries {
            endpoint: endpoint.to_owned(),
            attempts: self.delivery_attempts.clone(),
            seconds: self.delivery_attempt_seconds.clone(),
            by_outcome: Default::default(),
            duration: OnceLock::new(),
        }
    }

    /// `endpoint`'s `switchyard_deliveries_pending` gauge, for its worker to keep.
    pub fn pending_gauge(&self, endpoint: &str) -> Gauge {
        self.deliveries_pending
            .get_or_create_owned(&EndpointLabels { endpoint: endpoint.to_owned() })
    }

    pub fn set_pending(&self, endpoint: &str, count: i64) {
        self.deliveries_pending
            .get_or_create(&EndpointLabels { endpoint: endpoint.to_owned() })
            .set(count);
    }

    pub fn count_plugin_call(&self, plugin: &str, outcome: PluginOutcome, seconds: f64) {
        if let Ok(mut ledgers) = self.plugin_ledgers.lock() {
            let ledger = ledgers.entry(plugin.to_owned()).or_default();
            ledger.seconds += seconds;
            ledger.calls += 1;
            ledger.times.record(seconds);
        }
        let plugin = plugin.to_owned();
        self.plugin_call_seconds
            .get_or_create(&PluginIdLabels { plugin: plugin.clone() })
            .observe(seconds);
        self.plugin_calls.get_or_create(&PluginLabels { plugin, outcome }).inc();
    }

    /// Keeps `reason` as `plugin`'s last failure.
    pub fn record_plugin_failure(&self, plugin: &str, reason: &str, at_ms: u64) {
        if let Ok(mut ledgers) = self.plugin_ledgers.lock() {
            ledgers.entry(plugin.to_owned()).or_default().last_error =
                Some((at_ms, reason.to_owned()));
        }
    }

    /// `plugin`'s calls since start, read from the metrics (no series is created).
    pub fn plugin_calls(&self, plugin: &str) -> PluginCalls {
        let by_outcome = PluginOutcome::ALL
            .into_iter()
            .map(|outcome| {
                let labels = PluginLabels { plugin: plugin.to_owned(), outcome };
                (
                    outcome.as_str(),
                    self.plugin_calls.get(&labels).map_or(0, |counter| counter.get()),
                )
            })
            .collect();
        let ledgers = self.plugin_ledgers.lock().ok();
        let ledger = ledgers.as_ref().and_then(|ledgers| ledgers.get(plugin));
        let mean_seconds = ledger
            .filter(|ledger| ledger.calls > 0)
            .map(|ledger| ledger.seconds / ledger.calls as f64);
        let last_error = ledger.and_then(|ledger| ledger.last_error.clone());
        let p50_ms = ledger.and_then(|ledger| ledger.times.percentile_ms(50.0));
        let p95_ms = ledger.and_then(|ledger| ledger.times.percentile_ms(95.0));
        PluginCalls { by_outcome, mean_seconds, p50_ms, p95_ms, last_error }
    }

    pub fn count_nats_message(&self, source: &str, outcome: NatsOutcome) {
        self.nats_messages.get_or_create(&NatsLabels { source: source.to_owned(), outcome }).inc();
    }

    /// Records the NATS connection's state; the first call makes the metric appear.
    pub fn set_nats_connected(&self, connected: bool) {
        self.nats_connected.get_or_create(&Vec::new()).set(i64::from(connected));
    }

    /// Cluster mode: how many log entries the projection has still to apply.
    pub fn set_store_log_lag(&self, lag: u64) {
        self.store_log_lag.get_or_create(&Vec::new()).set(i64::try_from(lag).unwrap_or(i64::MAX));
    }

    /// Cluster mode: how many delivery partitions this node owns.
    pub fn set_store_partitions_owned(&self, partitions: usize) {
        let partitions = i64::try_from(partitions).unwrap_or(i64::MAX);
        self.store_partitions_owned.get_or_create(&Vec::new()).set(partitions);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

fn attempt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 18))
}

fn plugin_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_005, 2.0, 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nats_connection_appears_only_once_recorded() {
        let metrics = Metrics::new();
        assert!(!metrics.render().contains("\nswitchyard_nats_connected{"));
        metrics.set_nats_connected(true);
        let text = metrics.render();
        assert!(text.contains("\nswitchyard_nats_connected{} 1\n"), "{text}");
        metrics.set_nats_connected(false);
        assert!(metrics.render().contains("\nswitchyard_nats_connected{} 0\n"));
    }
}
