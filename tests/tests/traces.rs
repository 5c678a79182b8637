//! OpenTelemetry traces through the real binary, decoded by a local OTLP/HTTP collector: one
//! trace per event from the inbound request to a retry made by a restarted router, W3C trace
//! context in (webhook header, NATS header) and out (delivery headers), and sampling.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use switchyard::event::EventId;
use switchyard_e2e::{
    NatsServer, OtlpReceiver, ReceivedRequest, ReceivedSpan, Reply, TestHost, TestReceiver,
    eventually_async, plugin_wasm, post_webhook,
};
use tokio_stream::StreamExt;

const WAIT: Duration = Duration::from_secs(30);
const SIGNING: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
/// HMAC-SHA256 of `Hello, World!` under [`GITHUB_SECRET`] (GitHub's documented example).
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
/// The sender's trace and span, as a W3C `traceparent` carries them.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SENDER_SPAN: &str = "00f067aa0ba902b7";

fn telemetry(otlp: &OtlpReceiver, sample: &str) -> String {
    telemetry_over(otlp, "http", sample)
}

fn telemetry_over(otlp: &OtlpReceiver, protocol: &str, sample: &str) -> String {
    format!(
        "[telemetry]\notlp = {{ endpoint = \"{}\", protocol = \"{protocol}\", sample = {sample} }}\n\n",
        otlp.url()
    )
}

fn egress_and_secrets() -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[secrets]\n\
         signing = {{ value = \"{SIGNING}\" }}\ngithub = {{ value = \"{GITHUB_SECRET}\" }}\n\n"
    )
}

/// The `traceparent` of a delivery, split into (trace id, span id, flags).
fn traceparent(request: &ReceivedRequest) -> (String, String, String) {
    let value = request.header("traceparent").expect("the delivery carries a traceparent");
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    (parts[1].to_owned(), parts[2].to_owned(), parts[3].to_owned())
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|span| span.name == name).collect()
}

/// Whether every span name in `names` has arrived (a root span is emitted once the event is
/// accepted, which can be after its first attempt ended: spans arrive in no fixed order).
fn arrived(spans: &[ReceivedSpan], names: &[&str]) -> bool {
    names.iter().all(|name| !named(spans, name).is_empty())
}

fn event_trace_id(id: &str) -> String {
    hex(&id.parse::<EventId>().unwrap().to_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_and_its_retry_after_a_restart_are_one_trace_under_the_senders_span() {
    let mut otlp = OtlpReceiver::start().await;
    let mut receiver = TestReceiver::scripted(vec![Reply::Status(500)], Reply::Status(200)).await;
    // `sample = 0`: the sender sampled this trace, and its decision wins (parent-based).
    let config = format!(
        "{}{}[plugins.verify-github]\npath = \"{}\"\nsecrets = [\"github\"]\n\
         config = {{ secret = \"github\" }}\n\n\
         [sources.github]\nverify = [\"verify-github\"]\n\
         event_type = {{ header = \"x-github-event\", prefix = \"github.\" }}\n\n\
         [endpoints.ci]\nurl = \"{}\"\nsecret = \"signing\"\nretry = {{ schedule = [\"2s\"] }}\n\n\
         [routes.all]\nfrom = [\"github\"]\nto = [\"ci\"]\n",
        egress_and_secrets(),
        telemetry(&otlp, "0"),
        plugin_wasm("verify-github").display(),
        receiver.url("/ci"),
    );
    let mut host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let sent = format!("00-{TRACE}-{SENDER_SPAN}-01");
    let headers = [
        ("x-github-event", "push"),
        ("x-hub-signature-256", GITHUB_SIGNATURE),
        ("traceparent", sent.as_str()),
    ];
    let id = post_webhook(&client, &host, "github", &headers, "Hello, World!").await.unwrap();
    let first = receiver.next(WAIT).await.expect("the first attempt (answered 500)");
    let (first_trace, first_span, first_flags) = traceparent(&first);
    assert_eq!((first_trace.as_str(), first_flags.as_str()), (TRACE, "01"));
    assert_ne!(first_span, SENDER_SPAN, "the delivery names its own attempt span");

    // A clean stop flushes the spans; the retry is made by a new process, from the store.
    let event_id: EventId = id.parse().unwrap();
    let recorded = eventually_async(WAIT, || async {
        let deliveries = host.deliveries_of(event_id).await.ok()?;
        deliveries.first().filter(|delivery| delivery.attempts == 1).map(|_| ())
    })
    .await;
    assert!(recorded.is_some(), "the first attempt is recorded");
    assert!(host.terminate().await.unwrap().success());
    host.restart().await.unwrap();
    let second = receiver.next(WAIT).await.expect("the retry, made after the restart");
    let (second_trace, second_span, second_flags) = traceparent(&second);
    assert_eq!((second_trace.as_str(), second_flags.as_str()), (TRACE, "01"));
    assert_ne!(second_span, first_span);

    let expected = ["POST /webhooks/{source}", "verify verify-github", "store commit"];
    let spans = otlp
        .until(WAIT, |spans| arrived(spans, &expected) && named(spans, "deliver ci").len() == 2)
        .await;
    assert!(otlp.failures().is_empty(), "{:?}", otlp.failures());
    for span in &spans {
        assert_eq!(span.trace_id, TRACE, "{span:?}");
        assert_eq!(span.service, "switchyard");
    }
    let roots = named(&spans, "POST /webhooks/{source}");
    assert_eq!(roots.len(), 1, "{spans:#?}");
    let root = roots[0];
    assert_eq!(root.parent_span_id, SENDER_SPAN, "the sender's span is the parent");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.attribute("switchyard.event_id"), Some(id.as_str()));
    assert_eq!(root.attribute("switchyard.outcome"), Some("accepted"));
    assert_eq!(root.span_id, hex(&switchyard::traces::root_span_id(event_id)));

    let verify = named(&spans, "verify verify-github");
    assert_eq!(verify.len(), 1, "{spans:#?}");
    assert_eq!(verify[0].parent_span_id, root.span_id);
    assert_eq!(verify[0].attribute("switchyard.plugin.outcome"), Some("ok"));
    let commit = named(&spans, "store commit");
    assert_eq!(commit.len(), 1, "{spans:#?}");
    assert_eq!(commit[0].parent_span_id, root.span_id);
    assert_eq!(commit[0].attribute("switchyard.deliveries"), Some("1"));
    assert!(verify[0].end_unix_nanos <= commit[0].start_unix_nanos, "verify runs before commit");

    let attempts = named(&spans, "deliver ci");
    let (failed, delivered) = (attempts[0], attempts[1]);
    for (attempt, number, span_id, status) in
        [(failed, "1", &first_span, "500"), (delivered, "2", &second_span, "200")]
    {
        assert_eq!(attempt.parent_span_id, root.span_id, "{attempt:?}");
        assert_eq!(attempt.kind, SpanKind::Client);
        assert_eq!(attempt.attribute("switchyard.attempt"), Some(number));
        assert_eq!(&attempt.span_id, span_id, "the delivery's traceparent names this span");
        assert_eq!(attempt.attribute("http.response.status_code"), Some(status));
    }
    assert_eq!(failed.attribute("switchyard.outcome"), Some("retrying"));
    assert_eq!(failed.error.as_deref(), Some("HTTP 500"));
    assert_eq!(delivered.attribute("switchyard.outcome"), Some("delivered"));
    assert_eq!(delivered.error, None);
    // The retry waited its schedule (2 s), in another process, and is still in the trace.
    assert!(delivered.start_unix_nanos >= failed.end_unix_nanos + 1_500_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_zero_exports_no_span_of_an_untraced_event_but_still_propagates() {
    let mut otlp = OtlpReceiver::start().await;
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}{}[sources.github]\n\n[endpoints.ci]\nurl = \"{}\"\n\n\
         [routes.all]\nfrom = [\"github\"]\nto = [\"ci\"]\n",
        egress_and_secrets(),
        telemetry(&otlp, "0.0"),
        receiver.url("/ci"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let untraced = post_webhook(&client, &host, "github", &[], "{}").await.unwrap();
    let delivery = receiver.next(WAIT).await.expect("the untraced event is delivered");
    let (trace, _, flags) = traceparent(&delivery);
    assert_eq!(trace, event_trace_id(&untraced), "an untraced event's trace id is its id");
    assert_eq!(flags, "00", "not sampled, and the endpoint is told so");
    let untraced_id: EventId = untraced.parse().unwrap();
    let recorded = eventually_async(WAIT, || async {
        let deliveries = host.deliveries_of(untraced_id).await.ok()?;
        deliveries.first().filter(|delivery| delivery.attempts == 1).map(|_| ())
    })
    .await;
    assert!(recorded.is_some(), "the attempt is recorded (its span, if any, queued before)");

    // A sampled event after it: once its spans arrive, anything exported for the first event
    // (queued earlier, exported in order) would have arrived too.
    let sent = format!("00-{TRACE}-{SENDER_SPAN}-01");
    let headers = [("traceparent", sent.as_str())];
    post_webhook(&client, &host, "github", &headers, "{}").await.unwrap();
    let delivery = receiver.next(WAIT).await.expect("the traced event is delivered");
    assert_eq!(traceparent(&delivery).0, TRACE);
    let expected = ["POST /webhooks/{source}", "deliver ci"];
    let spans = otlp.until(WAIT, |spans| arrived(spans, &expected)).await;
    assert!(arrived(&spans, &expected), "the sampled trace is exported: {spans:#?}");
    for span in &spans {
        assert_eq!(span.trace_id, TRACE, "only the sampled trace is exported: {span:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untraced_event_is_its_own_trace_exported_over_grpc() {
    let mut otlp = OtlpReceiver::start_grpc().await;
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}{}[sources.github]\n\n[endpoints.ci]\nurl = \"{}\"\n\n\
         [routes.all]\nfrom = [\"github\"]\nto = [\"ci\"]\n",
        egress_and_secrets(),
        telemetry_over(&otlp, "grpc", "1"),
        receiver.url("/ci"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let id = post_webhook(&client, &host, "github", &[], "{}").await.unwrap();
    let delivery = receiver.next(WAIT).await.expect("the event is delivered");
    let (trace, attempt_span, flags) = traceparent(&delivery);
    assert_eq!((trace.as_str(), flags.as_str()), (event_trace_id(&id).as_str(), "01"));

    let expected = ["POST /webhooks/{source}", "deliver ci"];
    let spans = otlp.until(WAIT, |spans| arrived(spans, &expected)).await;
    let roots = named(&spans, "POST /webhooks/{source}");
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(roots[0].parent_span_id, "", "Switchyard started this trace");
    assert_eq!(roots[0].trace_id, trace);
    let attempt = named(&spans, "deliver ci");
    assert_eq!(attempt[0].span_id, attempt_span);
    assert_eq!(attempt[0].parent_span_id, roots[0].span_id);
    assert_eq!(attempt[0].trace_id, trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_message_carries_its_trace_through_to_a_nats_delivery() {
    let nats = NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    let jetstream = async_nats::jetstream::new(client.clone());
    // A JetStream source: the message waits in the stream until the router's consumer takes
    // it, so the test does not race the router's subscription.
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "ORDERS".to_owned(),
            subjects: vec!["orders.>".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut delivered = client.subscribe("notify.>").await.unwrap();
    client.flush().await.unwrap();
    let mut otlp = OtlpReceiver::start().await;
    let config = format!(
        "[nats]\nurl = \"{}\"\n\n{}\
         [sources.orders]\ntype = \"nats\"\nsubject = \"orders.>\"\n\
         jetstream = {{ stream = \"ORDERS\", durable = \"switchyard\" }}\n\n\
         [endpoints.notify]\ntype = \"nats\"\nsubject = \"notify.{{type}}\"\n\n\
         [routes.orders]\nfrom = [\"orders\"]\nto = [\"notify\"]\n",
        nats.url(),
        telemetry(&otlp, "1"),
    );
    let _host = TestHost::start("", &config).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("traceparent", format!("00-{TRACE}-{SENDER_SPAN}-01").as_str());
    let acknowledged = jetstream
        .publish_with_headers("orders.eu.created", headers, "{\"order\":1}".into())
        .await
        .unwrap();
    acknowledged.await.unwrap();
    let message =
        tokio::time::timeout(WAIT, delivered.next()).await.expect("a delivery in time").unwrap();
    let value = message.headers.as_ref().and_then(|headers| headers.get("traceparent"));
    let value = value.expect("the NATS delivery carries a traceparent").as_str().to_owned();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!((parts[1], parts[3]), (TRACE, "01"), "{value}");

    let expected = ["receive orders.>", "deliver notify"];
    let spans = otlp.until(WAIT, |spans| arrived(spans, &expected)).await;
    let roots = named(&spans, "receive orders.>");
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(roots[0].kind, SpanKind::Consumer);
    assert_eq!(roots[0].parent_span_id, SENDER_SPAN);
    assert_eq!(roots[0].attribute("messaging.destination.name"), Some("orders.eu.created"));
    let attempt = named(&spans, "deliver notify");
    assert_eq!(attempt[0].kind, SpanKind::Producer);
    assert_eq!(attempt[0].parent_span_id, roots[0].span_id);
    assert_eq!(attempt[0].span_id, parts[2], "the message's traceparent names the attempt");
    assert!(spans.iter().all(|span| span.trace_id == TRACE), "{spans:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_cloudevents_traceparent_attribute_is_the_parent() {
    let mut otlp = OtlpReceiver::start().await;
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}{}[sources.billing]\ntype = \"api\"\n\n[endpoints.ci]\nurl = \"{}\"\n\n\
         [routes.all]\nfrom = [\"billing\"]\nto = [\"ci\"]\n",
        egress_and_secrets(),
        telemetry(&otlp, "0"),
        receiver.url("/ci"),
    );
    let token = "publish-token";
    let host = TestHost::start(&format!("publish_token = {{ value = \"{token}\" }}"), &config)
        .await
        .unwrap();
    let cloudevent = format!(
        r#"{{"specversion":"1.0","id":"invoice-42","source":"/billing","type":"invoice.paid","traceparent":"00-{TRACE}-{SENDER_SPAN}-01","data":{{"invoice":42}}}}"#
    );
    let response = reqwest::Client::new()
        .post(host.url("/v1/events?source=billing"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/cloudevents+json")
        .body(cloudevent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let delivery = receiver.next(WAIT).await.expect("the CloudEvent is delivered");
    assert_eq!(traceparent(&delivery).0, TRACE);
    let expected = ["POST /v1/events", "deliver ci"];
    let spans = otlp.until(WAIT, |spans| arrived(spans, &expected)).await;
    let roots = named(&spans, "POST /v1/events");
    assert_eq!(roots.len(), 1, "{spans:#?}");
    assert_eq!(roots[0].parent_span_id, SENDER_SPAN);
    assert!(spans.iter().all(|span| span.trace_id == TRACE), "{spans:#?}");
}
