//! The publish API, `POST /v1/events`, through the real binary: bearer token, the plain and
//! CloudEvent bodies, idempotency keys, and what is refused.

use std::time::Duration;

use switchyard_e2e::{TestHost, TestReceiver};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "publish-token";

async fn publish(
    host: &TestHost,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().post(host.url("/v1/events")).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_publish_events_with_a_token_and_an_idempotency_key() {
    let mut receiver = TestReceiver::start().await;
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n[sources.github]\n\n\
         [sources.billing-service]\ntype = \"api\"\n\n[sources.shipping]\ntype = \"api\"\n\n\
         [endpoints.sink]\nurl = \"{}\"\n\n\
         [routes.services]\nfrom = [\"billing-service\", \"shipping\"]\nto = [\"sink\"]\n",
        receiver.url("/"),
    );
    let host = TestHost::start(&format!("publish_token = {{ value = \"{TOKEN}\" }}"), &config)
        .await
        .unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("authorization", bearer.as_str());
    let plain = r#"{"type":"invoice.paid","source":"billing-service","data":{"invoice":42}}"#;

    let (status, body) = publish(&host, &[], plain).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    let keyed = [auth, ("idempotency-key", "invoice-42-paid")];
    let (status, first) = publish(&host, &keyed, plain).await;
    assert_eq!(status, 202, "{first}");
    let delivered = receiver.next(WAIT).await.unwrap();
    assert_eq!(delivered.body.as_ref(), br#"{"invoice":42}"#);
    assert_eq!(delivered.header("content-type"), Some("application/json"));
    assert_eq!(delivered.header("webhook-id"), first["id"].as_str());
    // The same idempotency key: the same event, not a second one.
    let (status, again) = publish(&host, &keyed, plain).await;
    assert_eq!((status, &again["id"]), (202, &first["id"]));
    // The bearer token is not kept with the event.
    let id = first["id"].as_str().unwrap().parse().unwrap();
    let stored = host.event(id).await.unwrap().unwrap();
    assert_eq!(stored.source, "billing-service");
    assert_eq!(stored.event_type, "invoice.paid");
    assert!(stored.headers.iter().all(|(name, _)| name != "authorization"), "{:?}", stored.headers);

    // A structured CloudEvent is kept whole; `?source=` names the Switchyard source, and is
    // percent-decoded like any query (`%69` is `i`).
    let cloudevent =
        r#"{"specversion":"1.0","id":"c-1","source":"/shipping","type":"parcel.sent","data":{}}"#;
    let response = reqwest::Client::new()
        .post(host.url("/v1/events?trace=1&source=shipp%69ng"))
        .header("authorization", &bearer)
        .header("content-type", "application/cloudevents+json")
        .body(cloudevent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(receiver.next(WAIT).await.unwrap().body.as_ref(), cloudevent.as_bytes());

    for (body, code) in [
        // An http source: the publish API cannot speak for a webhook sender.
        (r#"{"type":"x","source":"github","data":1}"#, "invalid_source"),
        // Two api sources exist: the request must say which.
        (r#"{"type":"x","data":1}"#, "invalid_source"),
        (r#"{"source":"shipping","data":1}"#, "invalid_request"),
        (r#"{"type":"","source":"shipping","data":1}"#, "invalid_request"),
    ] {
        let (status, answer) = publish(&host, &[auth], body).await;
        assert_eq!((status, answer["code"].as_str()), (422, Some(code)), "{body}");
    }
    let (status, answer) = publish(
        &host,
        &[auth, ("content-type", "application/cloudevents+json")],
        r#"{"specversion":"1.0","source":"/s","type":"t"}"#,
    )
    .await;
    assert_eq!((status, answer["code"].as_str()), (422, Some("invalid_cloudevent")));
    // A declared type is held to the same length rule as any other.
    let long_type = format!(r#"{{"type":"{}","source":"shipping","data":1}}"#, "t".repeat(257));
    let (status, answer) = publish(&host, &[auth], &long_type).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("invalid_event_type")), "{answer}");
    assert!(
        receiver.next(Duration::from_millis(300)).await.is_none(),
        "nothing refused is delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_api_is_off_without_a_token() {
    let host = TestHost::start("", "[sources.github]\n").await.unwrap();
    let (status, _) =
        publish(&host, &[("authorization", "Bearer x")], r#"{"type":"t","data":1}"#).await;
    assert_eq!(status, 404);
}
