//! OpenTelemetry traces: one trace per event, from the inbound request to its last delivery
//! attempt, exported over OTLP (`[telemetry] otlp = { … }`; off by default).
//!
//! Owns the spans Switchyard emits and the hooks the accept and delivery paths call. When
//! tracing is off every hook is one branch on an empty `OnceLock` and allocates nothing; the
//! paths it hooks into never wait for the exporter. It must not decide anything about events:
//! a hook only observes.
//!
//! Design (the decisions behind it):
//! - **A trace per event.** The root span is the inbound request (`POST /webhooks/{source}`,
//!   `POST /v1/events`) or NATS message (`receive <subject>`); its children are each plugin
//!   call (`verify <plugin>`, `route <plugin>`, `transform <plugin>`), the store commit, and
//!   every delivery attempt (`deliver <endpoint>`), however late it happens.
//! - **Durable without a schema change.** The trace id is the sender's (a `traceparent`
//!   header, a `ce-traceparent` header, or a structured CloudEvent's `traceparent`), or else
//!   the event id's 16 ULID bytes; the root span id is the last 8 bytes of the event id. Both
//!   are recomputed from what the store keeps with the event (its id, headers and body), so a
//!   retry hours later, after restarts, lands in the same trace under the same root. Recent
//!   events are remembered in memory, so only attempts of events received before a restart
//!   read the event back from the store.
//! - **Deterministic sampling.** Parent-based: a sender's sampled flag decides; otherwise the
//!   OpenTelemetry trace-id ratio rule at `sample`. All spans of one event share the decision,
//!   across retries and restarts. Deliveries carry a `traceparent` naming the attempt span
//!   (flag `00` when not sampled) to HTTP endpoints and in NATS message headers.
//! - **Spans are built when known.** The accept path records the timings of its stages in a
//!   task-local list and emits the whole tree once the event has an id; the span data goes to
//!   the SDK's OTLP exporter (`export`), batched by one task.
//! - Changing `[telemetry]` needs a restart; `tracestate` is not propagated; an event made by
//!   a split plugin is traced under its origin while the process that accepted it runs, and
//!   under its own id after a restart (its stored headers are the plugin's).

mod context;
mod export;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use tokio::sync::mpsc;

pub use context::{EventTrace, TRACEPARENT, TraceParent, inbound, root_span_id, sampled};
pub use export::{ExportError, ExportHandle};

use crate::config::{Source, SourceKind, Telemetry};
use crate::event::EventId;
use crate::ingest::{Inbound, IngestError};
use crate::store::{DeliveryJob, IngestReceipt, NewEvent, Store, StoreError};
use crate::telemetry::{AttemptOutcome, PluginOutcome};
use crate::verdict::Stage;

/// Events whose trace is remembered in memory; past this the memory starts over (attempts
/// of forgotten events read the event back from the store).
const REMEMBERED_EVENTS: usize = 16_384;

/// Tracing, once installed for the process.
static ACTIVE: OnceLock<Traces> = OnceLock::new();

tokio::task_local! {
    /// The stages of the event being accepted by this task.
    static RECORDING: RefCell<Recording>;
}

/// Starts exporting traces when `[telemetry] otlp` is configured. Call once, inside the
/// runtime; the handle flushes the last spans at shutdown.
pub fn install(telemetry: &Telemetry) -> Result<Option<ExportHandle>, ExportError> {
    let Some(otlp) = &telemetry.otlp else { return Ok(None) };
    if ACTIVE.get().is_some() {
        return Err(ExportError::AlreadyInstalled);
    }
    let dropped = Arc::new(AtomicU64::new(0));
    let (queue, handle) = export::start(otlp, dropped.clone())?;
    let scope =
        InstrumentationScope::builder("switchyard").with_version(env!("CARGO_PKG_VERSION")).build();
    let traces = Traces { ratio: otlp.sample, queue, scope, remembered: Mutex::default(), dropped };
    ACTIVE.set(traces).map_err(|_| ExportError::AlreadyInstalled)?;
    tracing::info!(endpoint = %otlp.endpoint, protocol = ?otlp.protocol, sample = otlp.sample, "exporting traces");
    Ok(Some(handle))
}

/// The installed tracing state.
#[derive(Debug)]
struct Traces {
    ratio: f64,
    queue: mpsc::Sender<SpanData>,
    scope: InstrumentationScope,
    /// Event id → its trace (split events → their origin's).
    remembered: Mutex<HashMap<EventId, EventTrace>>,
    dropped: Arc<AtomicU64>,
}

/// The stages recorded while one event is accepted.
#[derive(Debug, Default)]
struct Recording {
    stages: Vec<StageSpan>,
    /// Events split from the accepted one, traced under it.
    derived: Vec<EventId>,
}

#[derive(Debug)]
struct StageSpan {
    name: String,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

/// One span to emit, before it becomes the SDK's `SpanData`.
struct Emit {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    parent_is_remote: bool,
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    error: Option<String>,
}

// === impl Traces ===

impl Traces {
    fn emit(&self, span: Emit) {
        let status = match span.error {
            Some(message) => Status::error(message),
            None => Status::Unset,
        };
        let data = SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(span.trace_id),
                SpanId::from_bytes(span.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: span.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: span.parent_is_remote,
            span_kind: span.kind,
            name: span.name,
            start_time: span.start,
            end_time: span.end,
            attributes: span.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        };
        if self.queue.try_send(data).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remember(&self, ids: impl IntoIterator<Item = EventId>, trace: EventTrace) {
        let Ok(mut remembered) = self.remembered.lock() else { return };
        for id in ids {
            if remembered.len() >= REMEMBERED_EVENTS {
                remembered.clear();
            }
            remembered.insert(id, trace);
        }
    }

    /// The trace of a stored event: remembered, or recomputed from the stored event.
    async fn event_trace(&self, store: &Store, id: EventId) -> EventTrace {
        if let Some(trace) = self.remembered.lock().ok().and_then(|known| known.get(&id).copied()) {
            return trace;
        }
        let inbound = match store.event(id).await {
            Ok(Some(event)) => context::inbound(&event.headers, &event.body),
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(%error, event = %id, "cannot read the event's trace context");
                None
            }
        };
        let trace = EventTrace::of(id, inbound, self.ratio);
        self.remember([id], trace);
        trace
    }
}

// === accept path ===

/// The inbound request or message being accepted, while tracing is on.
#[derive(Debug)]
pub struct IngestTrace {
    started: SystemTime,
    inbound: Option<TraceParent>,
    name: Cow<'static, str>,
    kind: SpanKind,
    source: String,
    attributes: Vec<KeyValue>,
}

impl IngestTrace {
    /// Notes the start of accepting `inbound` for `source`; `None` when tracing is off.
    pub fn begin(source: &Source, inbound: &Inbound) -> Option<Self> {
        ACTIVE.get()?;
        let (name, kind, attributes): (Cow<'static, str>, _, _) = match &source.kind {
            SourceKind::Http => (
                "POST /webhooks/{source}".into(),
                SpanKind::Server,
                vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("http.route", "/webhooks/{source}"),
                ],
            ),
            SourceKind::Api => (
                "POST /v1/events".into(),
                SpanKind::Server,
                vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("http.route", "/v1/events"),
                ],
            ),
            SourceKind::Nats { subject, .. } => (
                format!("receive {subject}").into(),
                SpanKind::Consumer,
                vec![
                    KeyValue::new("messaging.system", "nats"),
                    KeyValue::new(
                        "messaging.destination.name",
                        inbound.subject.clone().unwrap_or_default(),
                    ),
                ],
            ),
        };
        Some(Self {
            started: SystemTime::now(),
            inbound: context::inbound(&inbound.headers, &inbound.body),
            name,
            kind,
            source: source.id.clone(),
            attributes,
        })
    }

    /// Runs `accepting` (the whole accept path) with its stages recorded, then emits the
    /// event's spans. Without a trace, it only runs `accepting`.
    pub async fn record(
        trace: Option<Self>,
        accepting: impl Future<Output = Result<IngestReceipt, IngestError>>,
    ) -> Result<IngestReceipt, IngestError> {
        let Some(trace) = trace else { return accepting.await };
        let (result, recording) = RECORDING
            .scope(RefCell::new(Recording::default()), async {
                let result = accepting.await;
                (result, RECORDING.with(|recording| recording.take()))
            })
            .await;
        if let Some(traces) = ACTIVE.get() {
            trace.finish(traces, &result, recording);
        }
        result
    }

    fn finish(
        self,
        traces: &Traces,
        result: &Result<IngestReceipt, IngestError>,
        recording: Recording,
    ) {
        let (trace, outcome, error) = match result {
            Ok(IngestReceipt::Stored(id)) => {
                let trace = EventTrace::of(*id, self.inbound, traces.ratio);
                traces.remember(std::iter::once(*id).chain(recording.derived), trace);
                (trace, "accepted", None)
            }
            Ok(IngestReceipt::Dropped(id)) => {
                (EventTrace::of(*id, self.inbound, traces.ratio), "dropped", None)
            }
            // Not an event of its own: a trace for this request alone.
            Ok(IngestReceipt::Duplicate(_)) => (self.request_trace(traces), "duplicate", None),
            Err(error @ (IngestError::EventType(_) | IngestError::Rejected(_))) => {
                (self.request_trace(traces), "rejected", Some(error.to_string()))
            }
            Err(error) => (self.request_trace(traces), "error", Some(error.to_string())),
        };
        if !trace.sampled {
            return;
        }
        let mut attributes = self.attributes;
        attributes.push(KeyValue::new("switchyard.source", self.source));
        attributes.push(KeyValue::new("switchyard.outcome", outcome));
        if let Ok(receipt) = result {
            attributes.push(KeyValue::new("switchyard.event_id", receipt.id().to_string()));
        }
        for stage in recording.stages {
            traces.emit(Emit {
                trace_id: trace.trace_id,
                span_id: random_span_id(),
                parent: Some(trace.root_span_id),
                parent_is_remote: false,
                name: stage.name.into(),
                kind: SpanKind::Internal,
                start: stage.start,
                end: stage.end,
                attributes: stage.attributes,
                error: stage.error,
            });
        }
        traces.emit(Emit {
            trace_id: trace.trace_id,
            span_id: trace.root_span_id,
            parent: trace.remote_parent,
            parent_is_remote: trace.remote_parent.is_some(),
            name: self.name,
            kind: self.kind,
            start: self.started,
            end: SystemTime::now(),
            attributes,
            error,
        });
    }

    /// The trace of a request that made no event: the sender's, or a new random one.
    fn request_trace(&self, traces: &Traces) -> EventTrace {
        let root_span_id = random_span_id();
        match self.inbound {
            Some(parent) => EventTrace {
                trace_id: parent.trace_id,
                root_span_id,
                remote_parent: Some(parent.span_id),
                sampled: parent.sampled,
            },
            None => {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&random_span_id());
                trace_id[8..].copy_from_slice(&random_span_id());
                let sampled = context::sampled(trace_id, traces.ratio);
                EventTrace { trace_id, root_span_id, remote_parent: None, sampled }
            }
        }
    }
}

/// Records one plugin call of the event being accepted (a no-op outside the accept path,
/// e.g. replay, or with tracing off).
pub fn plugin_call(plugin: &str, stage: Stage, elapsed: Duration, outcome: PluginOutcome) {
    if ACTIVE.get().is_none() {
        return;
    }
    let end = SystemTime::now();
    let (verb, stage_name) = match stage {
        Stage::Verify => ("verify", "verify"),
        Stage::Route => ("route", "route"),
        Stage::Endpoint => ("transform", "endpoint"),
    };
    let (outcome, error) = match outcome {
        PluginOutcome::Ok => ("ok", None),
        PluginOutcome::Retry => ("retry", Some("the plugin asked for a retry")),
        PluginOutcome::Busy => ("busy", Some("every plugin thread was busy")),
        PluginOutcome::Failed => ("failed", Some("the plugin failed; its `on_error` applied")),
    };
    let _ = RECORDING.try_with(|recording| {
        recording.borrow_mut().stages.push(StageSpan {
            name: format!("{verb} {plugin}"),
            start: end.checked_sub(elapsed).unwrap_or(end),
            end,
            attributes: vec![
                KeyValue::new("switchyard.plugin", plugin.to_owned()),
                KeyValue::new("switchyard.stage", stage_name),
                KeyValue::new("switchyard.plugin.outcome", outcome),
            ],
            error: error.map(str::to_owned),
        });
    });
}

/// Runs the store commit of the event being accepted (`ingest` calls it with the store's
/// `ingest`), recording it as a span.
pub async fn commit<Committing>(
    new: NewEvent,
    ingest: impl FnOnce(NewEvent) -> Committing,
) -> Result<IngestReceipt, StoreError>
where
    Committing: Future<Output = Result<IngestReceipt, StoreError>>,
{
    if ACTIVE.get().is_none() || RECORDING.try_with(|_| ()).is_err() {
        return ingest(new).await;
    }
    let deliveries = new.deliveries.len();
    let derived: Vec<EventId> = new.derived.iter().map(|event| event.id).collect();
    let start = SystemTime::now();
    let result = ingest(new).await;
    let end = SystemTime::now();
    let outcome = match &result {
        Ok(IngestReceipt::Duplicate(_)) => "duplicate",
        Ok(_) => "committed",
        Err(_) => "failed",
    };
    let error = result.as_ref().err().map(ToString::to_string);
    let _ = RECORDING.try_with(|recording| {
        let mut recording = recording.borrow_mut();
        recording.derived.extend(derived);
        recording.stages.push(StageSpan {
            name: "store commit".to_owned(),
            start,
            end,
            attributes: vec![
                KeyValue::new("switchyard.deliveries", deliveries as i64),
                KeyValue::new("switchyard.commit.outcome", outcome),
            ],
            error,
        });
    });
    result
}

// === delivery path ===

/// One delivery attempt being traced.
#[derive(Debug)]
pub struct AttemptSpan {
    trace: EventTrace,
    span_id: [u8; 8],
    started: SystemTime,
    kind: SpanKind,
    endpoint: String,
    event: EventId,
    attempt: u32,
    traceparent: String,
}

impl AttemptSpan {
    /// Starts the span of the attempt about to be made for `job`; `None` when tracing is
    /// off. `nats` says whether the endpoint is a NATS subject.
    pub async fn start(store: &Store, job: &DeliveryJob, nats: bool) -> Option<Self> {
        let traces = ACTIVE.get()?;
        let trace = traces.event_trace(store, job.event_id).await;
        let span_id = random_span_id();
        let traceparent =
            TraceParent { trace_id: trace.trace_id, span_id, sampled: trace.sampled }.format();
        Some(Self {
            trace,
            span_id,
            started: SystemTime::now(),
            kind: if nats { SpanKind::Producer } else { SpanKind::Client },
            endpoint: job.endpoint.clone(),
            event: job.event_id,
            attempt: job.attempts + 1,
            traceparent,
        })
    }

    /// The `traceparent` the delivery carries: this attempt's span in the event's trace.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// Ends the span with what the attempt got: an HTTP status, an error, the outcome.
    pub fn end(
        span: Option<Self>,
        status: Option<u16>,
        error: Option<&str>,
        outcome: AttemptOutcome,
    ) {
        let (Some(span), Some(traces)) = (span, ACTIVE.get()) else { return };
        if !span.trace.sampled {
            return;
        }
        let mut attributes = vec![
            KeyValue::new("switchyard.endpoint", span.endpoint.clone()),
            KeyValue::new("switchyard.event_id", span.event.to_string()),
            KeyValue::new("switchyard.attempt", i64::from(span.attempt)),
            KeyValue::new("switchyard.outcome", outcome.as_str()),
        ];
        if let Some(status) = status {
            attributes.push(KeyValue::new("http.response.status_code", i64::from(status)));
        }
        traces.emit(Emit {
            trace_id: span.trace.trace_id,
            span_id: span.span_id,
            parent: Some(span.trace.root_span_id),
            parent_is_remote: false,
            name: format!("deliver {}", span.endpoint).into(),
            kind: span.kind,
            start: span.started,
            end: SystemTime::now(),
            attributes,
            error: error.map(str::to_owned),
        });
    }
}

/// A random, non-zero span id.
fn random_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}
