//! An order service, as a user of Switchyard would write it: it publishes order events as
//! binary-mode CloudEvents to JetStream, with `Nats-Msg-Id` set so a retried publish is not
//! stored twice (by the stream, and by Switchyard, which uses it as the dedupe key).
//!
//! `cargo run -p nats-orders-service -- [NATS_URL] [COUNT]` creates the `ORDERS` stream if it
//! is missing, publishes COUNT (default 3) events and waits for each acknowledgement.

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use serde_json::json;

const STREAM: &str = "ORDERS";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let url = arguments.next().unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let count: u32 = arguments.next().map(|text| text.parse()).transpose()?.unwrap_or(3);
    let client = async_nats::connect(&url).await?;
    let jetstream = jetstream::new(client);
    // The publishers own the stream; Switchyard only adds its durable consumer.
    jetstream
        .get_or_create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["orders.>".to_owned()],
            ..Default::default()
        })
        .await?;
    for number in 1..=count {
        let id = ulid::Ulid::new().to_string();
        let (subject, event_type) = if number % 2 == 0 {
            ("orders.eu.paid", "order.paid")
        } else {
            ("orders.eu.created", "order.created")
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert("ce-specversion", "1.0");
        headers.insert("ce-id", id.as_str());
        headers.insert("ce-source", "/services/orders");
        headers.insert("ce-type", event_type);
        headers.insert("content-type", "application/json");
        let data = json!({"order": number, "total": "19.90", "currency": "EUR"});
        let acknowledgement = jetstream
            .publish_with_headers(subject, headers, data.to_string().into())
            .await?
            .await?;
        println!("published {event_type} {id} (stream sequence {})", acknowledgement.sequence);
    }
    Ok(())
}
