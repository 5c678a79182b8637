//! [`OtlpReceiver`]: a local OTLP collector that decodes every exported span, for trace tests.
//!
//! Over HTTP it serves `POST /v1/traces` on a loopback port and decodes the protobuf body with
//! the `opentelemetry-proto` types; over gRPC it serves the collector's `TraceService` with
//! the same crate's tonic server. Either way it hands each span over in arrival order. Over
//! HTTP, any other path or a body that does not decode answers an error and is recorded as a
//! failure, so a test sees an exporter that speaks the protocol wrongly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use tokio::sync::mpsc;

/// One span as the collector received it; ids in lower-case hex, empty when absent.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    /// Attribute values as text (`42`, `true`, `text`).
    pub attributes: BTreeMap<String, String>,
    /// The status message when the span ended in error.
    pub error: Option<String>,
    /// `service.name` of the resource that sent it.
    pub service: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
}

impl ReceivedSpan {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Debug)]
struct Shared {
    spans: mpsc::UnboundedSender<ReceivedSpan>,
    failures: Mutex<Vec<String>>,
}

#[derive(Debug)]
pub struct OtlpReceiver {
    pub address: SocketAddr,
    spans: mpsc::UnboundedReceiver<ReceivedSpan>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (sender, spans) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { spans: sender, failures: Mutex::default() });
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .fallback(|uri: axum::http::Uri, State(shared): State<Arc<Shared>>| async move {
                shared.failures.lock().unwrap().push(format!("request to `{uri}`"));
                StatusCode::NOT_FOUND
            })
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, spans, shared, server }
    }

    /// An OTLP/gRPC collector (`TraceService/Export` over plain-text HTTP/2).
    pub async fn start_grpc() -> Self {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("a bound address");
        let (sender, spans) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { spans: sender, failures: Mutex::default() });
        let service = TraceServiceServer::new(GrpcCollector(shared.clone()));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self { address, spans, shared, server }
    }

    /// The collector's base URL, as `[telemetry] otlp.endpoint` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The next span, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<ReceivedSpan> {
        tokio::time::timeout(timeout, self.spans.recv()).await.ok().flatten()
    }

    /// Spans as they arrive until `done` holds for all received so far, or `timeout` passes;
    /// answers everything received either way.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let mut received = Vec::new();
        while !done(&received) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            match self.next(left).await {
                Some(span) => received.push(span),
                None => break,
            }
        }
        received
    }

    /// Requests that were not valid OTLP/HTTP trace exports.
    pub fn failures(&self) -> Vec<String> {
        self.shared.failures.lock().unwrap().clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn export(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    if content_type != Some("application/x-protobuf") {
        let failure = format!("content-type {content_type:?}, expected application/x-protobuf");
        shared.failures.lock().unwrap().push(failure);
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => {
            shared.failures.lock().unwrap().push(format!("undecodable body: {error}"));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    hand_over(&shared, request);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    ([(header::CONTENT_TYPE, "application/x-protobuf")], answer).into_response()
}

/// The gRPC `TraceService`, handing spans to the same queue.
#[derive(Debug)]
struct GrpcCollector(Arc<Shared>);

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        hand_over(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hand_over(shared: &Shared, request: ExportTraceServiceRequest) {
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|resource| &resource.attributes)
            .find(|attribute| attribute.key == "service.name")
            .map(|attribute| text(attribute.value.as_ref()))
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let error = span
                    .status
                    .as_ref()
                    .filter(|status| status.code == SpanStatus::Error as i32)
                    .map(|status| status.message.clone());
                let received = ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    attributes: attributes(&span.attributes),
                    error,
                    service: service.clone(),
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                };
                let _ = shared.spans.send(received);
            }
        }
    }
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter().map(|pair| (pair.key.clone(), text(pair.value.as_ref()))).collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
