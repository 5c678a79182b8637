//! NATS: the connection, and the pure rules for messages ([`mapping`]) and endpoint subjects
//! ([`template`]).
//!
//! Owns connecting with the configured credentials and watching the connection's state. The
//! client reconnects by itself, forever; while it is away `/readyz` answers 503. NATS sources
//! live in `ingress::nats`, NATS endpoints in `delivery::nats`: they are the only other
//! modules that name async-nats types.

pub mod mapping;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{ConnectOptions, Event};

use crate::config::{Nats, NatsAuth};
use crate::telemetry::Metrics;

/// How long a request to the server (JetStream API, PubAck) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot read the NATS credentials: {0}")]
    Credentials(String),
    #[error("cannot connect to NATS at `{url}`: {reason}")]
    Connect { url: String, reason: String },
}

/// The process's one NATS connection.
#[derive(Debug, Clone)]
pub struct NatsConnection {
    client: async_nats::Client,
}

impl NatsConnection {
    /// Starts connecting; does not wait for the server, which may come up later (the client
    /// keeps trying, and readiness says so meanwhile). `switchyard_nats_connected` follows
    /// the connection's state from now on.
    pub async fn connect(config: &Nats, metrics: &Arc<Metrics>) -> Result<Self, NatsError> {
        let text = |secret: &crate::config::Secret| {
            String::from_utf8(secret.expose().to_vec())
                .map_err(|_| NatsError::Credentials("the secret is not UTF-8".into()))
        };
        let options = match &config.auth {
            NatsAuth::None => ConnectOptions::new(),
            NatsAuth::Credentials(secret) => ConnectOptions::with_credentials(&text(secret)?)
                .map_err(|error| NatsError::Credentials(error.to_string()))?,
            NatsAuth::Nkey(secret) => ConnectOptions::with_nkey(text(secret)?.trim().to_owned()),
            NatsAuth::Token(secret) => ConnectOptions::with_token(text(secret)?),
            NatsAuth::UserPassword { user, password } => {
                ConnectOptions::with_user_and_password(user.clone(), text(password)?)
            }
        };
        let addresses = config
            .urls
            .iter()
            .map(|url| {
                url.parse::<async_nats::ServerAddr>().map_err(|error| NatsError::Connect {
                    url: url.clone(),
                    reason: error.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        metrics.set_nats_connected(false);
        let metrics = Arc::clone(metrics);
        let client = options
            .name("switchyard")
            .retry_on_initial_connect()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(move |event| {
                let metrics = Arc::clone(&metrics);
                async move {
                    match event {
                        Event::Connected => {
                            metrics.set_nats_connected(true);
                            tracing::info!("nats connected");
                        }
                        Event::Disconnected => {
                            metrics.set_nats_connected(false);
                            tracing::warn!("nats disconnected; reconnecting");
                        }
                        other => tracing::info!(event = %other, "nats"),
                    }
                }
            })
            .connect(addresses)
            .await
            .map_err(|error| NatsError::Connect {
                url: config.urls.join(", "),
                reason: error.to_string(),
            })?;
        Ok(Self { client })
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// The client, for NATS sources and endpoints.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Sends what is buffered; called once at shutdown so acks and publishes are not lost.
    pub async fn flush(&self) {
        if let Err(error) = self.client.flush().await {
            tracing::warn!(%error, "nats flush at shutdown failed");
        }
    }
}
