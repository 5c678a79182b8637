//! The NATS publisher for NATS endpoints: one attempt, core or JetStream.
//!
//! Owns async-nats publishing for deliveries. Core publishes succeed once the client has taken
//! the message (at most once past that point); JetStream publishes succeed only on the
//! stream's PubAck, and carry `Nats-Msg-Id: <event id>` so the stream drops the repeats a
//! retry may cause. It also announces delivery outcomes (`switchyard.outcomes.<endpoint>`)
//! when configured. It decides nothing about retries (that is `delivery::retry`).

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::nats::NatsConnection;

/// How a publish ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    Published,
    /// No PubAck (or no taker) in time.
    Timeout,
    /// Refused or failed: no stream for the subject, disconnected, bad header.
    Failed(String),
}

/// One publish to make.
#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub jetstream: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct NatsPublisher {
    connection: NatsConnection,
    jetstream: async_nats::jetstream::Context,
}

impl NatsPublisher {
    pub fn new(connection: NatsConnection) -> Self {
        let jetstream = async_nats::jetstream::new(connection.client().clone());
        Self { connection, jetstream }
    }

    /// Publishes and answers how it went and how long it took.
    pub async fn publish(&self, message: OutboundMessage) -> (PublishOutcome, Duration) {
        let started = Instant::now();
        let mut headers = HeaderMap::new();
        for (name, value) in &message.headers {
            headers.append(name.as_str(), value.as_str());
        }
        let subject = message.subject.clone();
        let sending = async {
            if message.jetstream {
                let acknowledgement = self
                    .jetstream
                    .publish_with_headers(subject, headers, message.body)
                    .await
                    .map_err(|error| error.to_string())?;
                acknowledgement.await.map(|_| ()).map_err(|error| error.to_string())
            } else {
                self.connection
                    .client()
                    .publish_with_headers(subject, headers, message.body)
                    .await
                    .map_err(|error| error.to_string())
            }
        };
        let outcome = match tokio::time::timeout(message.timeout, sending).await {
            Ok(Ok(())) => PublishOutcome::Published,
            Ok(Err(reason)) => PublishOutcome::Failed(reason),
            Err(_) => PublishOutcome::Timeout,
        };
        (outcome, started.elapsed())
    }
}

impl NatsPublisher {
    /// Publishes a notice on core NATS, fire and forget (delivery outcomes): a subscriber that
    /// is not there misses it, and a failure is only logged.
    pub async fn announce(&self, subject: String, body: Bytes) {
        if let Err(error) = self.connection.client().publish(subject, body).await {
            tracing::debug!(%error, "cannot publish a delivery outcome");
        }
    }
}
