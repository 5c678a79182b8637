//! NATS sources: core subscriptions and JetStream durable pull consumers (DESIGN §8).
//!
//! Owns the mapping between NATS delivery semantics and the accept path:
//! - **JetStream** (at least once): a message is acked only after its event is committed (or
//!   known as a duplicate, or dropped by a verify plugin); naked with a delay when the store
//!   or a plugin asks for a retry; terminated when it can never succeed (malformed CloudEvent,
//!   rejected by a plugin, no event type), with the reason logged and counted. At most
//!   `max_ack_pending` messages are in flight; the server holds the rest (backpressure).
//!   The durable consumer is created (deliver all, explicit ack) before readiness.
//! - **Core** (at most once): what cannot be stored is logged and counted as lost; core NATS
//!   has no redelivery.
//!
//! A source's `rate_limit` paces both kinds ([`Pace`]): the next message is taken only once
//! a token is there, so nothing is refused (JetStream keeps what waits).
//!
//! Message headers become event headers (names lower-cased, sorted, since NATS does not keep
//! their order).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::config::{JetStreamConsumer, Source, SourceKind, Topology};
use crate::ingest::{Inbound, IngestError, Ingestor};
use crate::nats::NatsConnection;
use crate::nats::mapping::{self, NatsMessage};
use crate::telemetry::{Metrics, NatsOutcome};
use crate::traffic::bucket::TokenBucket;

/// How long JetStream waits before redelivering a message we asked to retry.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Core messages being stored at once per source; more wait in the subscription's buffer.
const CORE_IN_FLIGHT: usize = 256;
/// Pause between attempts to create a consumer (no server yet, stream missing).
const CONSUMER_RETRY: Duration = Duration::from_secs(1);

/// The running NATS sources.
#[derive(Debug)]
pub struct NatsSources {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// JetStream consumers not created yet; ready at zero.
    pending_consumers: Arc<AtomicUsize>,
}

/// What one source's task needs.
#[derive(Clone)]
struct SourceContext {
    source: Arc<Source>,
    connection: NatsConnection,
    ingestor: Ingestor,
    metrics: Arc<Metrics>,
}

/// What to tell JetStream about a message.
enum Settle {
    Ack,
    Retry,
    Terminate(String),
}

impl NatsSources {
    /// Starts one task per NATS source.
    pub fn start(
        topology: &Topology,
        connection: &NatsConnection,
        ingestor: &Ingestor,
        metrics: &Arc<Metrics>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let pending_consumers = Arc::new(AtomicUsize::new(0));
        for source in topology.sources.values() {
            let SourceKind::Nats { subject, queue_group, jetstream } = &source.kind else {
                continue;
            };
            let context = SourceContext {
                source: Arc::new(source.clone()),
                connection: connection.clone(),
                ingestor: ingestor.clone(),
                metrics: metrics.clone(),
            };
            match jetstream {
                Some(consumer) => {
                    pending_consumers.fetch_add(1, Ordering::SeqCst);
                    tasks.spawn(run_jetstream(
                        context,
                        subject.clone(),
                        consumer.clone(),
                        pending_consumers.clone(),
                        stopped.clone(),
                    ));
                }
                None => {
                    tasks.spawn(run_core(
                        context,
                        subject.clone(),
                        queue_group.clone(),
                        stopped.clone(),
                    ));
                }
            }
        }
        Self { stop, tasks, pending_consumers }
    }

    /// Whether every JetStream consumer exists.
    pub fn consumers_ready(&self) -> Arc<AtomicUsize> {
        self.pending_consumers.clone()
    }

    /// Stops pulling and subscribing; messages being stored finish and are settled.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn run_core(
    context: SourceContext,
    subject: String,
    queue_group: Option<String>,
    mut stopped: watch::Receiver<bool>,
) {
    let client = context.connection.client().clone();
    let subscribed = match &queue_group {
        Some(group) => client.queue_subscribe(subject.clone(), group.clone()).await,
        None => client.subscribe(subject.clone()).await,
    };
    let mut subscriber = match subscribed {
        Ok(subscriber) => subscriber,
        Err(error) => {
            tracing::error!(source = %context.source.id, %subject, %error, "cannot subscribe");
            return;
        }
    };
    tracing::info!(source = %context.source.id, %subject, "subscribed (core NATS: at most once)");
    let limit = Arc::new(Semaphore::new(CORE_IN_FLIGHT));
    let mut in_flight = JoinSet::new();
    let mut pace = Pace::new(&context.source);
    loop {
        if !pace.ready(&mut stopped).await {
            break;
        }
        tokio::select! {
            message = subscriber.next() => {
                let Some(message) = message else { break };
                pace.took();
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                let context = context.clone();
                in_flight.spawn(async move {
                    let message = reduce(&message.subject, message.headers.as_ref(), message.payload);
                    if let Settle::Retry | Settle::Terminate(_) = accept(&context, message).await {
                        context.metrics.count_nats_message(&context.source.id, NatsOutcome::Lost);
                    }
                    drop(permit);
                });
            }
            _ = stopped.changed() => break,
        }
        while in_flight.try_join_next().is_some() {}
    }
    let _ = subscriber.unsubscribe().await;
    while in_flight.join_next().await.is_some() {}
}

async fn run_jetstream(
    context: SourceContext,
    subject: String,
    settings: JetStreamConsumer,
    pending_consumers: Arc<AtomicUsize>,
    mut stopped: watch::Receiver<bool>,
) {
    let source = context.source.id.clone();
    let jetstream = jetstream::new(context.connection.client().clone());
    let config = pull::Config {
        durable_name: Some(settings.durable.clone()),
        filter_subject: subject.clone(),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: i64::from(settings.max_ack_pending),
        ..Default::default()
    };
    // The stream belongs to the publishers; wait for it (and for the server) rather than fail.
    let consumer = loop {
        let created = async {
            let stream =
                jetstream.get_stream(&settings.stream).await.map_err(|error| error.to_string())?;
            stream
                .get_or_create_consumer::<pull::Config>(&settings.durable, config.clone())
                .await
                .map_err(|error| error.to_string())
        };
        match created.await {
            Ok(consumer) => break consumer,
            Err(error) => {
                tracing::warn!(%source, stream = %settings.stream, %error, "cannot create the JetStream consumer yet; retrying");
                tokio::select! {
                    () = tokio::time::sleep(CONSUMER_RETRY) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    };
    pending_consumers.fetch_sub(1, Ordering::SeqCst);
    tracing::info!(%source, stream = %settings.stream, durable = %settings.durable, "consuming (JetStream: at least once)");
    let limit = Arc::new(Semaphore::new(settings.max_ack_pending.max(1) as usize));
    let mut in_flight = JoinSet::new();
    let mut pace = Pace::new(&context.source);
    'pull: while !*stopped.borrow() {
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%source, %error, "cannot pull from JetStream; retrying");
                tokio::select! {
                    () = tokio::time::sleep(CONSUMER_RETRY) => continue,
                    _ = stopped.changed() => break,
                }
            }
        };
        loop {
            if !pace.ready(&mut stopped).await {
                break 'pull;
            }
            tokio::select! {
                next = messages.next() => {
                    match next {
                        Some(Ok(message)) => {
                            pace.took();
                            let Ok(permit) = limit.clone().acquire_owned().await else { break 'pull };
                            let context = context.clone();
                            in_flight.spawn(async move {
                                settle_jetstream(&context, message).await;
                                drop(permit);
                            });
                        }
                        Some(Err(error)) => {
                            // Heartbeats missed, server gone: the stream is rebuilt.
                            tracing::warn!(%source, %error, "JetStream pull interrupted; resuming");
                            break;
                        }
                        None => break,
                    }
                }
                _ = stopped.changed() => break 'pull,
            }
            while in_flight.try_join_next().is_some() {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// A source's `rate_limit` on NATS: the next message is taken only once a token is there, so
/// a fast publisher is slowed down (JetStream keeps what waits; core NATS drops what the
/// client cannot buffer, as at most once allows) and nothing is refused.
struct Pace {
    bucket: Option<TokenBucket>,
}

impl Pace {
    fn new(source: &Source) -> Self {
        let now = Instant::now();
        Self { bucket: source.rate_limit.map(|rule| TokenBucket::new(rule.rate, rule.burst, now)) }
    }

    /// Waits until a token is there; `false` if the source stops meanwhile.
    async fn ready(&mut self, stopped: &mut watch::Receiver<bool>) -> bool {
        let Some(bucket) = &mut self.bucket else { return true };
        loop {
            let wait = bucket.wait(Instant::now());
            if wait.is_zero() {
                return true;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return false,
            }
        }
    }

    /// A message was taken: its token is spent (there is one: [`Pace::ready`] saw it, and
    /// nothing else takes from this bucket).
    fn took(&mut self) {
        if let Some(bucket) = &mut self.bucket {
            let _ = bucket.take(Instant::now());
        }
    }
}

async fn settle_jetstream(context: &SourceContext, message: jetstream::Message) {
    let reduced = reduce(&message.subject, message.headers.as_ref(), message.payload.clone());
    let (kind, outcome) = match accept(context, reduced).await {
        Settle::Ack => (AckKind::Ack, NatsOutcome::Acked),
        Settle::Retry => (AckKind::Nak(Some(RETRY_DELAY)), NatsOutcome::Nacked),
        Settle::Terminate(reason) => {
            tracing::warn!(source = %context.source.id, subject = %message.subject, %reason, "message terminated");
            (AckKind::Term, NatsOutcome::Terminated)
        }
    };
    if let Err(error) = message.ack_with(kind).await {
        // Not settled: JetStream redelivers it after `ack_wait`; dedupe absorbs the repeat.
        tracing::warn!(source = %context.source.id, %error, "cannot settle a JetStream message");
    }
    context.metrics.count_nats_message(&context.source.id, outcome);
}

/// Runs the accept path on one message and says how to settle it.
async fn accept(context: &SourceContext, message: NatsMessage) -> Settle {
    let declared = match mapping::declared(&message) {
        Ok(declared) => declared,
        Err(malformed) => return Settle::Terminate(format!("{}: {malformed}", malformed.reason())),
    };
    let inbound = Inbound {
        headers: message.headers,
        body: message.payload,
        subject: Some(message.subject),
        event_type: declared.event_type,
        dedupe_key: declared.dedupe_key,
    };
    match context.ingestor.accept(&context.source, inbound).await {
        Ok(_) => Settle::Ack,
        Err(error @ (IngestError::EventType(_) | IngestError::Rejected(_))) => {
            Settle::Terminate(error.to_string())
        }
        Err(error @ (IngestError::Plugin(_) | IngestError::Store(_))) => {
            tracing::debug!(source = %context.source.id, %error, "message not stored; asking for a redelivery");
            Settle::Retry
        }
    }
}

/// The parts of a NATS message Switchyard keeps.
fn reduce(
    subject: &async_nats::Subject,
    headers: Option<&async_nats::HeaderMap>,
    payload: bytes::Bytes,
) -> NatsMessage {
    let mut pairs: Vec<(String, String)> = headers
        .map(|headers| {
            headers
                .iter()
                .flat_map(|(name, values)| {
                    let name = name.to_string().to_ascii_lowercase();
                    values.iter().map(move |value| (name.clone(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    NatsMessage { subject: subject.to_string(), headers: pairs, payload }
}
