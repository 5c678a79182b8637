//! The OTLP export of finished spans: a bounded queue and one task that sends batches.
//!
//! Owns the `opentelemetry-otlp` exporter (OTLP/HTTP with protobuf bodies over the workspace's
//! reqwest, or OTLP/gRPC over tonic, plain-text HTTP/2 only) and its batching: spans wait at most [`FLUSH_INTERVAL`] or until
//! [`MAX_BATCH`] are queued. Recording never waits for the exporter: a full queue drops the
//! span and counts it. A collector that is down costs a warning a minute, never an event.
//! Nothing here decides which spans exist; `traces` does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Otlp, OtlpProtocol};

/// Spans waiting for export; past this, new spans are dropped (and counted).
pub(super) const QUEUE_CAPACITY: usize = 8_192;
/// Spans per export request.
const MAX_BATCH: usize = 512;
/// The longest a finished span waits before it is sent.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// One export request, answer included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last batch.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one warning about failed exports per this interval.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot build the OTLP exporter for `{endpoint}`: {reason}")]
    Build { endpoint: String, reason: String },
    #[error("tracing is already set up in this process")]
    AlreadyInstalled,
}

/// The running export task; [`Self::shutdown`] sends what is queued and stops it.
#[derive(Debug)]
pub struct ExportHandle {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ExportHandle {
    /// Sends every span already queued (bounded by a timeout), then stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, self.task).await.is_err() {
            tracing::warn!("the last spans were not exported in time");
        }
    }
}

/// Builds the exporter for `config` and starts the task that feeds it from the returned
/// queue. Must run inside the Tokio runtime.
pub(super) fn start(
    config: &Otlp,
    dropped: Arc<AtomicU64>,
) -> Result<(mpsc::Sender<SpanData>, ExportHandle), ExportError> {
    let mut exporter = build(config)?;
    // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK's detectors;
    // without a service name of the operator's, spans come from `switchyard`.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("switchyard");
    }
    exporter.set_resource(&resource.build());
    let (queue, spans) = mpsc::channel(QUEUE_CAPACITY);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(exporter, spans, stopped, dropped));
    Ok((queue, ExportHandle { stop, task }))
}

/// The OTLP/HTTP URL: the configured base plus `/v1/traces`, unless the URL names a path
/// of its own (then it is used as written, as `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is).
pub(super) fn http_traces_url(endpoint: &url::Url) -> String {
    if endpoint.path() == "/" || endpoint.path().is_empty() {
        format!("{}v1/traces", endpoint.as_str().trim_end_matches('/').to_owned() + "/")
    } else {
        endpoint.as_str().to_owned()
    }
}

fn build(config: &Otlp) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    let failed =
        |reason: String| ExportError::Build { endpoint: config.endpoint.to_string(), reason };
    match config.protocol {
        OtlpProtocol::Http => {
            let client = reqwest::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|error| failed(error.to_string()))?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(http_traces_url(&config.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|error| failed(error.to_string()))
        }
        // Plain-text HTTP/2 (validation refuses `https://` for gRPC): a local collector or
        // agent; remote collectors over TLS take `protocol = "http"`.
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|error| failed(error.to_string())),
    }
}

async fn run(
    exporter: opentelemetry_otlp::SpanExporter,
    mut spans: mpsc::Receiver<SpanData>,
    mut stop: oneshot::Receiver<()>,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut warnings = Warnings { last: None, dropped, dropped_reported: 0 };
    let mut flush = tokio::time::interval(FLUSH_INTERVAL);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = spans.recv() => match received {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= MAX_BATCH {
                        send(&exporter, &mut batch, &mut warnings).await;
                    }
                }
                None => break,
            },
            _ = flush.tick() => send(&exporter, &mut batch, &mut warnings).await,
            _ = &mut stop => break,
        }
    }
    while let Ok(span) = spans.try_recv() {
        batch.push(span);
        if batch.len() >= MAX_BATCH {
            send(&exporter, &mut batch, &mut warnings).await;
        }
    }
    send(&exporter, &mut batch, &mut warnings).await;
    let _ = exporter.shutdown();
}

/// Throttled reporting of export failures and dropped spans.
struct Warnings {
    last: Option<Instant>,
    dropped: Arc<AtomicU64>,
    dropped_reported: u64,
}

impl Warnings {
    fn due(&mut self) -> bool {
        let due = self.last.is_none_or(|last| last.elapsed() >= WARNING_INTERVAL);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }
}

async fn send(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<SpanData>,
    warnings: &mut Warnings,
) {
    let dropped = warnings.dropped.load(Ordering::Relaxed);
    if dropped > warnings.dropped_reported && warnings.due() {
        tracing::warn!(dropped, "spans dropped: the export queue was full");
        warnings.dropped_reported = dropped;
    }
    if batch.is_empty() {
        return;
    }
    let spans = batch.len();
    let sending = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    if let Err(error) = exporter.export(sending).await
        && warnings.due()
    {
        tracing::warn!(%error, spans, "cannot export spans to the OTLP collector");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_url_gains_the_traces_path_unless_it_has_one() {
        let url = |text: &str| url::Url::parse(text).unwrap();
        assert_eq!(
            http_traces_url(&url("http://127.0.0.1:4318")),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url(&url("http://127.0.0.1:4318/")),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url(&url("https://collector.example.com/otlp/v1/traces")),
            "https://collector.example.com/otlp/v1/traces"
        );
    }
}
