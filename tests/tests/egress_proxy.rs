//! `egress.proxy` through the real binary: a delivery to an allowed loopback target goes through
//! a CONNECT proxy written here (on 127.0.0.1, counting what it is asked), mutual TLS included;
//! a target whose name resolves to an address the rules refuse is refused with the SSRF reason,
//! and the proxy never hears of it. All traffic stays on loopback.

mod egress_support;

use std::net::Ipv4Addr;
use std::time::Duration;

use egress_support::{ConnectProxy, TestPki, TlsReceiver};
use switchyard::event::EventId;
use switchyard::store::DeliveryState;
use switchyard_e2e::{StoredDelivery, TestHost, eventually_async, post_webhook};

const WAIT: Duration = Duration::from_secs(20);

async fn delivery_of(host: &TestHost, event: &str, endpoint: &str) -> StoredDelivery {
    let id: EventId = event.parse().unwrap();
    eventually_async(WAIT, || async move {
        let deliveries = host.deliveries_of(id).await.ok()?;
        deliveries.into_iter().find(|delivery| {
            delivery.endpoint == endpoint && delivery.state != DeliveryState::Pending
        })
    })
    .await
    .unwrap_or_else(|| panic!("the delivery to `{endpoint}` never settled"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_through_the_proxy_and_the_rules_hold_before_it_is_asked() {
    let pki = TestPki::new();
    // Only 127.0.0.2 is allowed; `localhost` resolves to 127.0.0.1 (and maybe ::1): refused.
    let mut receiver = TlsReceiver::start_on(&pki, Ipv4Addr::new(127, 0, 0, 2)).await;
    let proxy = ConnectProxy::start().await;
    let port = receiver.address.port();
    let tls = format!(
        "tls = {{ ca = \"{}\", client_cert = \"{}\", client_key = {{ file = \"{}\" }} }}",
        pki.path("ca.pem").display(),
        pki.path("client.pem").display(),
        pki.path("client.key").display(),
    );
    let config = format!(
        "[egress]\nallow_networks = [\"127.0.0.2/32\"]\nproxy = \"{proxy}\"\n\n\
         [sources.app]\ntype = \"http\"\n\n\
         [endpoints.through]\nurl = \"https://127.0.0.2:{port}/hook\"\n{tls}\n\n\
         [endpoints.denied]\nurl = \"https://localhost:{port}/hook\"\n{tls}\n\n\
         [routes.all]\nfrom = [\"app\"]\nto = [\"through\", \"denied\"]\n",
        proxy = proxy.url(),
    );
    let host = TestHost::start("", &config).await.unwrap();
    let client = reqwest::Client::new();
    let event = post_webhook(&client, &host, "app", &[("content-type", "application/json")], "{}")
        .await
        .unwrap();

    let request = receiver.next(WAIT).await.expect("the delivery arrives through the proxy");
    assert!(request.head.contains(&format!("webhook-id: {event}")), "{}", request.head);
    let delivered = delivery_of(&host, &event, "through").await;
    assert_eq!(delivered.state, DeliveryState::Delivered);

    // Refused by the rules, as a permanent failure with the SSRF reason; no attempt reached
    // the proxy.
    let denied = delivery_of(&host, &event, "denied").await;
    assert_eq!(denied.state, DeliveryState::Dead, "{denied:?}");
    let reason = denied.last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("host `localhost`")
            && reason.contains("is not a public address (loopback)")
            && reason.contains("outside `egress.allow_networks`"),
        "{reason}"
    );
    assert_eq!(proxy.asked(), vec![format!("CONNECT 127.0.0.2:{port} HTTP/1.1")]);
    assert_eq!(proxy.connects(), 1);
}
