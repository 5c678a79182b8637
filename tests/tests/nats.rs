//! NATS through the real binary and a real `nats-server`: webhook in → NATS out, NATS in →
//! signed webhook out, a JetStream source surviving SIGKILL, the server restarting under the
//! router, and malformed CloudEvents.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures_core::Stream;
use switchyard_e2e::{
    NatsServer, TestHost, TestReceiver, eventually_async, post_webhook,
    verify_with_standardwebhooks,
};
use tokio_stream::StreamExt;

const WAIT: Duration = Duration::from_secs(30);
const SIGNING: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn base(nats: &NatsServer) -> String {
    format!(
        "[nats]\nurl = \"{}\"\n\n[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n\
         [secrets]\nsigning = {{ value = \"{SIGNING}\" }}\n\n",
        nats.url()
    )
}

async fn create_stream(
    client: &async_nats::Client,
    name: &str,
    subjects: &[&str],
) -> stream::Stream {
    jetstream::new(client.clone())
        .create_stream(stream::Config {
            name: name.to_owned(),
            subjects: subjects.iter().map(|subject| subject.to_string()).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn ready(host: &TestHost, client: &reqwest::Client) -> Option<u16> {
    let response = client.get(host.url("/readyz")).send().await.ok()?;
    Some(response.status().as_u16())
}

/// Waits until `/readyz` answers `status`, polling (readiness has no push signal).
async fn wait_ready(host: &TestHost, status: u16) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while ready(host, &client).await != Some(status) {
        assert!(tokio::time::Instant::now() < deadline, "/readyz never answered {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `/metrics` shows `switchyard_nats_connected` at `value`, polling.
async fn wait_connected_metric(host: &TestHost, value: u8) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    let expected = format!("\nswitchyard_nats_connected{{}} {value}\n");
    loop {
        let text = client.get(host.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if text.contains(&expected) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no `{}` in:\n{text}", expected.trim());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(message: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    message.headers.as_ref()?.get(name).map(|value| value.as_str())
}

async fn next_message(
    subscriber: &mut (impl Stream<Item = async_nats::Message> + Unpin),
) -> async_nats::Message {
    tokio::time::timeout(WAIT, subscriber.next()).await.expect("a message in time").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_go_out_on_nats_and_nats_events_go_out_as_signed_webhooks() {
    let nats = NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    let audit = create_stream(&client, "AUDIT", &["audit.>"]).await;
    let mut notifications = client.subscribe("notify.>").await.unwrap();
    let mut outcomes = client.subscribe("switchyard.outcomes.billing").await.unwrap();
    client.flush().await.unwrap();
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}[sources.github]\nevent_type = {{ header = \"x-github-event\", prefix = \"github.\" }}\n\n\
         [sources.orders]\ntype = \"nats\"\nsubject = \"orders.>\"\n\n\
         [endpoints.audit]\ntype = \"nats\"\nsubject = \"audit.{{source}}.{{type}}\"\njetstream = true\nsecret = \"signing\"\n\n\
         [endpoints.notify]\ntype = \"nats\"\nsubject = \"notify.{{type}}\"\n\n\
         [endpoints.billing]\nurl = \"{}\"\nsecret = \"signing\"\n\n\
         [routes.webhooks]\nfrom = [\"github\"]\nto = [\"audit\", \"notify\"]\n\n\
         [routes.orders]\nfrom = [\"orders\"]\ntypes = [\"order.created\"]\nsubjects = [\"orders.*.created\"]\nto = [\"billing\"]\n",
        base(&nats).replace("[egress]", "outcomes = true\n\n[egress]"),
        receiver.url("/billing"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    wait_ready(&host, 200).await;

    // Webhook in → NATS out: core and JetStream, both signed, with the event id as message id.
    let body = r#"{"ref":"refs/heads/main"}"#;
    let http = reqwest::Client::new();
    let id =
        post_webhook(&http, &host, "github", &[("x-github-event", "push")], body).await.unwrap();
    let notification = next_message(&mut notifications).await;
    assert_eq!(notification.subject.as_str(), "notify.github.push");
    assert_eq!(notification.payload.as_ref(), body.as_bytes());
    assert_eq!(header(&notification, "Nats-Msg-Id"), Some(id.as_str()));
    assert_eq!(header(&notification, "webhook-id"), Some(id.as_str()));
    let consumer =
        audit.create_consumer(jetstream::consumer::pull::Config::default()).await.unwrap();
    let mut batch = consumer.fetch().max_messages(1).expires(WAIT).messages().await.unwrap();
    let audited = batch.next().await.expect("a message in the AUDIT stream").unwrap();
    assert_eq!(audited.subject.as_str(), "audit.github.github.push");
    assert_eq!(header(&audited, "Nats-Msg-Id"), Some(id.as_str()));
    assert!(header(&audited, "webhook-signature").is_some_and(|value| value.starts_with("v1,")));

    // NATS in → signed webhook out: a binary-mode CloudEvent, routed by its type and subject.
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "order-1"),
        ("ce-source", "/shop"),
        ("ce-type", "order.created"),
        ("content-type", "application/json"),
    ] {
        headers.insert(name, value);
    }
    let data = r#"{"order":1,"total":"9.90"}"#;
    client.publish_with_headers("orders.eu.created", headers.clone(), data.into()).await.unwrap();
    // Another type on another subject is not routed to billing.
    headers.insert("ce-type", "order.cancelled");
    headers.insert("ce-id", "order-2");
    client.publish_with_headers("orders.eu.cancelled", headers, "{}".into()).await.unwrap();
    client.flush().await.unwrap();
    let delivered = receiver.next(WAIT).await.expect("the order reaches billing");
    assert_eq!(delivered.body.as_ref(), data.as_bytes());
    assert_eq!(delivered.header("content-type"), Some("application/json"));
    assert_eq!(
        verify_with_standardwebhooks(SIGNING, std::slice::from_ref(&delivered)),
        vec![Ok(())]
    );
    let event = delivered.header("webhook-id").unwrap().parse().unwrap();
    let stored = host.event(event).await.unwrap().unwrap();
    assert_eq!(stored.event_type, "order.created");
    assert_eq!(stored.subject.as_deref(), Some("orders.eu.created"));
    assert!(stored.headers.contains(&("ce-source".to_owned(), "/shop".to_owned())));
    assert!(
        receiver.next(Duration::from_millis(300)).await.is_none(),
        "the cancellation is not routed"
    );
    // Outcomes are announced once recorded, for services that react to failures.
    let notice = next_message(&mut outcomes).await;
    let notice: serde_json::Value = serde_json::from_slice(&notice.payload).unwrap();
    assert_eq!(notice["outcome"], "delivered", "{notice}");
    assert_eq!(notice["event"], delivered.header("webhook-id").unwrap());
    assert_eq!((notice["status"].as_u64(), notice["attempt"].as_u64()), (Some(200), Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_jetstream_source_loses_nothing_across_sigkill() {
    const MESSAGES: usize = 10_000;
    let nats = NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    let orders = create_stream(&client, "ORDERS", &["orders.>"]).await;
    let publisher = jetstream::new(client.clone());
    // Acks are awaited in batches: the client bounds how many may be outstanding.
    let mut acks = Vec::new();
    for sequence in 0..MESSAGES {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("order-{sequence}").as_str());
        let body = format!(r#"{{"type":"order.created","sequence":{sequence}}}"#);
        acks.push(
            publisher.publish_with_headers("orders.created", headers, body.into()).await.unwrap(),
        );
        if acks.len() == 256 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}[sources.orders]\ntype = \"nats\"\nsubject = \"orders.>\"\n\
         jetstream = {{ stream = \"ORDERS\", durable = \"switchyard\", ack_wait = \"2s\" }}\n\
         event_type = {{ json = \"/type\" }}\n\n\
         [endpoints.sink]\nurl = \"{}\"\nmax_in_flight = 64\n\n\
         [routes.all]\nfrom = [\"orders\"]\nto = [\"sink\"]\n",
        base(&nats),
        receiver.url("/"),
    );
    let mut host = TestHost::start("", &config).await.unwrap();
    let sequence_of = |body: &[u8]| -> u64 {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["sequence"].as_u64().unwrap()
    };
    let mut seen = HashSet::new();
    let mut deliveries = 0;
    while seen.len() < MESSAGES / 3 {
        let request = receiver.next(WAIT).await.expect("deliveries before the kill");
        deliveries += 1;
        seen.insert(sequence_of(&request.body));
    }
    host.kill();
    host.restart().await.unwrap();
    while seen.len() < MESSAGES {
        let Some(request) = receiver.next(WAIT).await else {
            panic!("only {} of {MESSAGES} messages delivered after the restart", seen.len());
        };
        deliveries += 1;
        seen.insert(sequence_of(&request.body));
    }
    let duplicates = deliveries - MESSAGES;
    eprintln!("{MESSAGES} messages, {deliveries} deliveries, {duplicates} duplicates");
    // Every message is stored once (its `Nats-Msg-Id` is the dedupe key) and, in the end,
    // acked: nothing is left pending on the consumer.
    let stored = eventually_async(WAIT, || async {
        host.count_events().await.ok().filter(|count| *count == MESSAGES as u64)
    })
    .await;
    assert_eq!(stored, Some(MESSAGES as u64));
    let mut consumer: jetstream::consumer::PullConsumer =
        orders.get_consumer("switchyard").await.unwrap();
    let mut settled = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !settled && tokio::time::Instant::now() < deadline {
        let info = consumer.info().await.unwrap();
        settled = info.num_ack_pending == 0 && info.num_pending == 0;
        if !settled {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(settled, "messages left unacked: {:?}", consumer.info().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_rides_out_a_nats_restart() {
    let mut nats = NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    create_stream(&client, "EVENTS", &["events.>"]).await;
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}[sources.events]\ntype = \"nats\"\nsubject = \"events.>\"\n\
         jetstream = {{ stream = \"EVENTS\", durable = \"switchyard\", ack_wait = \"2s\" }}\n\n\
         [endpoints.sink]\nurl = \"{}\"\n\n[routes.all]\nfrom = [\"events\"]\nto = [\"sink\"]\n",
        base(&nats),
        receiver.url("/"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    wait_ready(&host, 200).await;
    wait_connected_metric(&host, 1).await;
    let publish = |client: async_nats::Client, range: std::ops::Range<u32>| async move {
        let publisher = jetstream::new(client);
        for index in range {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("e-{index}").as_str());
            publisher
                .publish_with_headers("events.tick", headers, format!("{{\"n\":{index}}}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    publish(client, 0..100).await;
    nats.stop();
    wait_ready(&host, 503).await;
    wait_connected_metric(&host, 0).await;
    nats.restart().unwrap();
    wait_ready(&host, 200).await;
    wait_connected_metric(&host, 1).await;
    publish(nats.client().await.unwrap(), 100..200).await;
    let mut seen = HashSet::new();
    while seen.len() < 200 {
        let request = receiver
            .next(WAIT)
            .await
            .unwrap_or_else(|| panic!("only {} of 200 delivered across the restart", seen.len()));
        let value: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        seen.insert(value["n"].as_u64().unwrap());
    }
    assert!(host.logs.contains("nats disconnected"), "the disconnection is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_cloudevents_are_terminated_not_redelivered() {
    let nats = NatsServer::start().unwrap();
    let client = nats.client().await.unwrap();
    let stream = create_stream(&client, "SHOP", &["shop.>"]).await;
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "{}[sources.shop]\ntype = \"nats\"\nsubject = \"shop.>\"\n\
         jetstream = {{ stream = \"SHOP\", durable = \"switchyard\", ack_wait = \"1s\" }}\n\n\
         [endpoints.sink]\nurl = \"{}\"\n\n[routes.all]\nfrom = [\"shop\"]\nto = [\"sink\"]\n",
        base(&nats),
        receiver.url("/"),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let publisher = jetstream::new(client.clone());
    let structured = |body: &'static str| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("content-type", "application/cloudevents+json");
        (headers, body)
    };
    for (headers, body) in [
        structured("{not json"),
        structured(r#"{"specversion":"1.0","id":"x1","source":"/shop"}"#),
        structured(
            r#"{"specversion":"1.0","id":"x2","source":"/shop","type":"order.paid","data":{"ok":true}}"#,
        ),
    ] {
        publisher
            .publish_with_headers("shop.orders", headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    // Only the valid CloudEvent is delivered, as the whole structured document.
    let delivered = receiver.next(WAIT).await.unwrap();
    assert!(delivered.body.starts_with(br#"{"specversion":"1.0","id":"x2""#));
    let terminated = "switchyard_nats_messages_total{source=\"shop\",outcome=\"terminated\"}";
    let deadline = tokio::time::Instant::now() + WAIT;
    while host.metric(terminated).await.unwrap_or(0.0) < 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the malformed messages were not terminated"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(host.metric(terminated).await.unwrap(), 2.0);
    let logs = host.logs.snapshot().join("\n");
    assert!(logs.contains("cloudevent_not_json"), "{logs}");
    assert!(logs.contains("lacks the required attribute `type`"), "{logs}");
    // Terminated, not redelivered. An absence can only be shown by waiting: past two ack
    // waits (1 s each), a message that had not been settled would have come back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut consumer: jetstream::consumer::PullConsumer =
        stream.get_consumer("switchyard").await.unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        (info.num_ack_pending, info.num_redelivered, info.num_pending),
        (0, 0, 0),
        "{info:?}"
    );
    assert!(receiver.next(Duration::from_millis(200)).await.is_none());
    assert_eq!(host.count_events().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_orders_example_runs() {
    let nats = NatsServer::start().unwrap();
    let mut receiver = TestReceiver::start().await;
    let example = switchyard_e2e::workspace_root().join("examples/nats-orders");
    // The example's own config, pointed at this test's server and receiver; the harness writes
    // `[server]` itself.
    let text = std::fs::read_to_string(example.join("switchyard.toml")).unwrap();
    let server_section = text.find("[server]").unwrap();
    let after_server = server_section + text[server_section..].find("\n\n").unwrap();
    let config = format!("{}{}", &text[..server_section], &text[after_server..])
        .replace("nats://127.0.0.1:4222", &nats.url())
        .replace("http://127.0.0.1:9000/webhooks/orders", &receiver.url("/webhooks/orders"));
    let client = nats.client().await.unwrap();
    let host = TestHost::start("", &config).await.unwrap();
    // The service creates the stream (it owns it); Switchyard's consumer follows.
    let service = switchyard_e2e::switchyard_binary().with_file_name("nats-orders-service");
    let output = std::process::Command::new(&service).arg(nats.url()).arg("3").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    create_stream(&client, "AUDIT", &["audit.>"]).await;
    let python = switchyard_e2e::tools_python();
    let output = std::process::Command::new(python)
        .arg(example.join("publish.py"))
        .arg(nats.url())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    wait_ready(&host, 200).await;
    let mut types = Vec::new();
    for _ in 0..4 {
        let request = receiver.next(WAIT).await.expect("every order reaches billing");
        assert_eq!(request.path, "/webhooks/orders");
        assert_eq!(
            verify_with_standardwebhooks(SIGNING, std::slice::from_ref(&request)),
            vec![Ok(())]
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        // Binary-mode events deliver their data; the structured one is delivered whole.
        types.push(body["type"].as_str().unwrap_or("data").to_owned());
    }
    types.sort();
    assert_eq!(types, ["data", "data", "data", "order.created"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_secret_references() {
    let nats = NatsServer::start_with(&["--auth", "s3cret-token"]).unwrap();
    let mut receiver = TestReceiver::start().await;
    let sink = format!(
        "[sources.events]\ntype = \"nats\"\nsubject = \"events.>\"\n\n\
         [endpoints.sink]\nurl = \"{}\"\n\n[routes.all]\nfrom = [\"events\"]\nto = [\"sink\"]\n",
        receiver.url("/")
    );
    let with_token =
        base(&nats).replace("[egress]", "token = { value = \"s3cret-token\" }\n\n[egress]");
    let host = TestHost::start("", &format!("{with_token}{sink}")).await.unwrap();
    wait_ready(&host, 200).await;
    let client = async_nats::ConnectOptions::with_token("s3cret-token".into())
        .connect(nats.url())
        .await
        .unwrap();
    client.publish("events.hello", "{}".into()).await.unwrap();
    client.flush().await.unwrap();
    assert!(receiver.next(WAIT).await.is_some(), "the authenticated source consumes");
    // The wrong token never connects: readiness says so.
    let wrong = base(&nats).replace("[egress]", "token = { value = \"wrong\" }\n\n[egress]");
    let refused = TestHost::start("", &format!("{wrong}{sink}")).await.unwrap();
    let logs = refused.logs.clone();
    let refusal = tokio::task::spawn_blocking(move || {
        logs.wait_for(WAIT, |line| {
            line.to_ascii_lowercase().contains("authorization").then_some(())
        })
    })
    .await
    .unwrap();
    assert!(refusal.is_some(), "{}", refused.logs.snapshot().join("\n"));
    let client = reqwest::Client::new();
    assert_eq!(ready(&refused, &client).await, Some(503));
}
