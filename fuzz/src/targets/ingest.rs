//! Webhook ingest and the publish API through the real HTTP router on a real (temporary)
//! store: any headers, any body sent in chunks of any size, against sources with a body limit,
//! a dedupe header and event types from a header or a JSON pointer. Never a 500, never an
//! event accepted over its source's limit, and every 202 names the event it stored.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use bytes::Bytes;
use switchyard::admin::registry::route_table;
use switchyard::config::{self, Durability, ProcessEnvironment};
use switchyard::ingest::Ingestor;
use switchyard::ingress::{self, HttpState};
use switchyard::pipeline::Pipeline;
use switchyard::store::Store;
use switchyard::telemetry::Metrics;
use tower::ServiceExt;

use super::split_request;
use crate::{Target, hash_of, outcome_of};

pub const TARGET: Target = Target {
    name: "ingest",
    run,
    dictionary: &[
        "content-type: application/json\n",
        "content-type: application/cloudevents+json\n",
        "x-delivery: d1\n",
        "x-event-type: push\n",
        "authorization: Bearer fuzz-publish-token\n",
        "idempotency-key: k\n",
        "ce-specversion: 1.0\n",
        "ce-type: a.b\n",
        "ce-id: 1\n",
        "ce-source: s\n",
        "content-length: 0\n",
        "transfer-encoding: chunked\n",
        "\n\n",
        "{\"type\":\"order.created\",\"amount\":5}",
        "{\"kind\":\"x\"}",
        "{\"type\":",
        "\"",
        "{",
        "}",
    ],
    max_len: 2048,
};

/// The body limit of source `app`.
const APP_LIMIT: usize = 512;

const CONFIG: &str = r#"
[server]
publish_token = { value = "fuzz-publish-token" }

[egress]
allow_networks = ["127.0.0.0/8"]

[sources.app]
type = "http"
max_body = "512B"
dedupe = { header = "x-delivery" }

[sources.typed]
type = "http"
event_type = { header = "x-event-type", prefix = "gh." }

[sources.pointer]
type = "http"
event_type = { json = "/kind" }

[endpoints.sink]
url = "http://127.0.0.1:9/hook"

[routes.orders]
from = ["app", "pointer"]
to = ["sink"]
filter = "body.amount > 1"
"#;

struct Ingest {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// Holds the store's directory for the life of the process.
    _directory: tempfile::TempDir,
}

fn ingest() -> &'static Ingest {
    static INGEST: OnceLock<Ingest> = OnceLock::new();
    INGEST.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime starts");
        let directory = tempfile::tempdir().expect("a temporary directory");
        let topology = config::parse(CONFIG, Path::new("."), &ProcessEnvironment)
            .expect("the fuzz config is valid");
        let topology = Arc::new(topology);
        let metrics = Metrics::new();
        let store = Store::open(directory.path(), Durability::Os, metrics.clone())
            .expect("the store opens");
        let config_routes: Vec<_> =
            topology.routes.values().map(|route| route.spec.clone()).collect();
        let routes = Arc::new(ArcSwap::from_pointee(route_table(&config_routes, &[])));
        let pipeline = Pipeline::new(&topology, routes, None, metrics.clone());
        // The notifier's task lives on the fuzz runtime, driven by each run's `block_on`.
        let notifier = {
            let _entered = runtime.enter();
            switchyard::notify::Notifier::start(store.clone())
        };
        let state = HttpState {
            topology: topology.clone(),
            ingestor: Ingestor::new(store, pipeline, metrics.clone()),
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            nats: None,
            limits: Arc::default(),
            notifier,
        };
        Ingest { runtime, router: ingress::router(state), _directory: directory }
    })
}

/// Input: a byte picking the path, a byte picking the chunk size, header lines, an empty
/// line, the body.
fn run(input: &[u8]) -> u64 {
    let (path_choice, chunk_choice, rest) = match input {
        [path, chunk, rest @ ..] => (*path, *chunk, rest),
        _ => (0, 0, &[][..]),
    };
    let paths =
        ["/webhooks/app", "/webhooks/typed", "/webhooks/pointer", "/webhooks/none", "/v1/events"];
    let path = paths[usize::from(path_choice) % paths.len()];
    let (headers, body) = split_request(rest);
    let mut request = Request::post(path);
    for (name, value) in &headers {
        let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        else {
            continue;
        };
        // The listener frames the body; a handler never sees these as given.
        if name == "content-length" || name == "transfer-encoding" || name == "host" {
            continue;
        }
        request = request.header(name, value);
    }
    let chunk = 1 + usize::from(chunk_choice) % 64;
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(chunk).map(|part| Ok(Bytes::copy_from_slice(part))).collect();
    let request = request
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("the request is well formed");
    let ingest = ingest();
    let (status, answer) = ingest.runtime.block_on(async {
        let response = ingest.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "a 500 for {path}: {answer}");
    if status == StatusCode::ACCEPTED {
        let id = answer["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("evt_"), "a 202 without the event's id: {answer}");
        assert!(
            path != "/webhooks/app" || body.len() <= APP_LIMIT,
            "{} bytes accepted over the {APP_LIMIT}-byte limit",
            body.len()
        );
    }
    let code = answer["code"].as_str().unwrap_or_default();
    hash_of((path, status.as_u16(), outcome_of(code)))
}
