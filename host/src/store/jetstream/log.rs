//! The replicated command log: one R-replicated JetStream stream, appended to by every node
//! and applied in order by every node to its projection.
//!
//! Owns the stream's name and settings, appending a command and waiting until this node's
//! projection has applied it (its answer is what the projection answered), the follower task
//! that applies every entry in stream order, and catching up (waiting until the projection has
//! applied everything the stream held at some instant).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::command::{self, Entry};
use crate::event::now_millis;
use crate::store::StoreError;
use crate::store::sqlite::{Command, Outcome, SqliteStore};
use crate::telemetry::Metrics;

/// How long an append waits for the stream's acknowledgement and then for this node's
/// projection before it answers an error.
const APPEND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a follower behind the log may go without applying an entry before it reads again.
const STALL_TIME: Duration = Duration::from_secs(2);
/// How often an idle follower reads where the stream ends.
const STREAM_POLL: Duration = Duration::from_secs(5);
/// How long one publish waits for the stream's acknowledgement at least.
const PUBLISH_ATTEMPT: Duration = Duration::from_secs(2);
/// The pause before publishing again after a refusal.
const PUBLISH_RETRY: Duration = Duration::from_millis(100);
/// How long a starting node (or a store command) retries creating the stream, and the reads
/// it cannot go on without, while the cluster elects leaders or is loaded.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries decoded and handed to the projection, not yet applied, at most.
const APPLY_PIPELINE: usize = 1024;

type Waiters = Mutex<HashMap<String, oneshot::Sender<Result<Outcome, StoreError>>>>;

/// The log stream's settings for `prefix`, with `replicas` copies.
pub(in crate::store) fn stream_config(prefix: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("{prefix}_log"),
        subjects: vec![format!("{prefix}.log")],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        ..stream::Config::default()
    }
}

/// The log, as one node sees it.
pub(in crate::store) struct Log {
    jetstream: jetstream::Context,
    stream: String,
    subject: String,
    projection: Arc<SqliteStore>,
    waiters: Waiters,
    /// The last sequence the projection applied (or skipped as undecodable).
    applied: watch::Sender<u64>,
    /// Moves after each entry from another node that changed endpoints.
    endpoint_changes: watch::Sender<u64>,
    /// The highest sequence known to be in the stream (this node's acknowledgements, and the
    /// stream's state read now and then): a follower behind it that makes no progress is
    /// stuck, and reads again.
    known_last: AtomicU64,
    /// Where the log ended when this node opened it.
    last_at_open: u64,
    metrics: Arc<Metrics>,
}

impl Log {
    /// Creates the stream if it does not exist (retrying while the cluster has no leader),
    /// and answers the log for a projection that has applied up to `applied`.
    pub(in crate::store) async fn open(
        jetstream: jetstream::Context,
        prefix: &str,
        replicas: usize,
        projection: Arc<SqliteStore>,
        applied: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let config = stream_config(prefix, replicas);
        let (stream, subject) = (config.name.clone(), config.subjects[0].clone());
        let created =
            retry_setup("create the log stream", || jetstream.get_or_create_stream(config.clone()))
                .await?;
        // Entries this projection needs were trimmed: applying the rest would miss them.
        let first = created.cached_info().state.first_sequence;
        if applied + 1 < first {
            return Err(StoreError::Write(format!(
                "the store's log starts at entry {first} but this node's projection has applied \
                 only up to {applied}: restart it to restore a snapshot"
            )));
        }
        // Where the log ends now: this node is not ready before its projection gets there.
        let last = created.cached_info().state.last_sequence;
        metrics.store_projection.track(last);
        metrics.store_projection.applied(applied, last);
        metrics.set_store_log_lag(last.saturating_sub(applied));
        Ok(Self {
            jetstream,
            stream,
            subject,
            projection,
            waiters: Mutex::new(HashMap::new()),
            applied: watch::Sender::new(applied),
            endpoint_changes: watch::Sender::new(0),
            known_last: AtomicU64::new(last),
            last_at_open: last,
            metrics,
        })
    }

    fn waiters(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Result<Outcome, StoreError>>>>
    {
        // Each change under the lock is one insert or remove.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `command` (trying again for up to `budget` while the stream cannot take it),
    /// then waits until this node's projection has applied it: answers what applying it
    /// answered. An error before the stream acknowledged means nothing may have been stored
    /// (the caller answers 503; its retry is safe).
    pub async fn append(&self, command: Command, budget: Duration) -> Result<Outcome, StoreError> {
        let id = ulid::Ulid::new().to_string();
        let (answer, outcome) = oneshot::channel();
        self.waiters().insert(id.clone(), answer);
        let entry = Entry { id: id.clone(), now: now_millis(), command };
        let published = self.publish(&id, Bytes::from(command::encode(&entry)), budget).await;
        if let Err(error) = published {
            self.waiters().remove(&id);
            return Err(error);
        }
        match tokio::time::timeout(APPEND_TIMEOUT, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => {
                self.waiters().remove(&id);
                Err(StoreError::Write(
                    "the command is stored in the log, but this node's projection has not \
                     applied it yet"
                        .into(),
                ))
            }
        }
    }

    /// Publishes until the stream acknowledges or `budget` has passed: a stream without a
    /// leader (an election, a cluster just started) refuses at once, and a retry is safe,
    /// since the stream keeps a command id once (`Nats-Msg-Id`, two-minute window).
    async fn publish(&self, id: &str, payload: Bytes, budget: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let message =
                jetstream::message::PublishMessage::build().message_id(id).payload(payload.clone());
            let acknowledged =
                async { self.jetstream.send_publish(self.subject.clone(), message).await?.await };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let error = match tokio::time::timeout(left.max(PUBLISH_ATTEMPT), acknowledged).await {
                Ok(Ok(acknowledgement)) => {
                    self.known_last.fetch_max(acknowledgement.sequence, Ordering::AcqRel);
                    return Ok(());
                }
                Ok(Err(error)) => format!("the log stream refused the command: {error}"),
                Err(_) => "the log stream did not acknowledge in time".to_owned(),
            };
            if tokio::time::Instant::now() + PUBLISH_RETRY >= deadline {
                return Err(StoreError::Write(error));
            }
            tracing::debug!(%error, "appending to the log again");
            tokio::time::sleep(PUBLISH_RETRY).await;
        }
    }

    /// A signal moving after each entry from another node that changed endpoints.
    pub fn endpoint_changes(&self) -> watch::Receiver<u64> {
        self.endpoint_changes.subscribe()
    }

    /// The last sequence the projection applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Whether the projection had applied the whole log as it stood when it was opened.
    pub fn began_caught_up(&self) -> bool {
        self.applied() >= self.last_at_open
    }

    /// Waits until the projection has applied everything the stream holds now.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        // Tried once: the lease loop calls this and takes the partition again at a later tick.
        let stream = self.jetstream.get_stream(&self.stream).await.map_err(read_error)?;
        let last = stream.cached_info().state.last_sequence;
        let mut applied = self.applied.subscribe();
        let reached = applied.wait_for(|applied| *applied >= last);
        match tokio::time::timeout(APPEND_TIMEOUT, reached).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Write(format!(
                "the projection did not reach log entry {last} in time"
            ))),
        }
    }

    /// Applies every entry after the projection's last, in order, forever: reads them with an
    /// ordered consumer (re-created from the last applied entry when it fails).
    pub async fn follow(self: Arc<Self>) {
        let (pipeline, answers) = mpsc::channel(APPLY_PIPELINE);
        let answering = tokio::spawn(self.clone().answer(answers));
        loop {
            tokio::select! {
                read = self.read_from(self.applied() + 1, &pipeline) => {
                    match read {
                        Ok(Read::Ended) => {}
                        Ok(Read::Trimmed { wanted, first }) => {
                            // Never apply the log with a hole in it: stop, and say why.
                            tracing::error!(
                                wanted,
                                first,
                                "entries this node has not applied were trimmed from the \
                                 store's log; it stops applying until restarted (which restores \
                                 the newest snapshot)"
                            );
                            self.metrics.store_projection.trimmed(wanted, first);
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "reading the store's log failed; reading again");
                        }
                    }
                }
                () = self.stalled() => {
                    tracing::warn!(applied = self.applied(), "the log follower is stuck; reading again");
                }
            }
            if pipeline.is_closed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        answering.abort();
    }

    /// Answers once the projection has been behind the known end of the log for
    /// [`STALL_TIME`] without applying anything (a consumer lost with its server, say).
    async fn stalled(&self) {
        let mut last_applied = self.applied();
        let mut since = tokio::time::Instant::now();
        let mut polled = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if polled.elapsed() >= STREAM_POLL {
                polled = tokio::time::Instant::now();
                if let Ok(stream) = self.jetstream.get_stream(&self.stream).await {
                    let last = stream.cached_info().state.last_sequence;
                    self.known_last.fetch_max(last, Ordering::AcqRel);
                }
            }
            let applied = self.applied();
            let known_last = self.known_last.load(Ordering::Acquire);
            self.metrics.set_store_log_lag(known_last.saturating_sub(applied));
            if applied != last_applied || applied >= self.known_last.load(Ordering::Acquire) {
                last_applied = applied;
                since = tokio::time::Instant::now();
            } else if since.elapsed() >= STALL_TIME {
                return;
            }
        }
    }

    async fn read_from(
        &self,
        start: u64,
        pipeline: &mpsc::Sender<Pending>,
    ) -> Result<Read, async_nats::Error> {
        let stream = self.jetstream.get_stream(&self.stream).await?;
        let config = consumer::pull::OrderedConfig {
            filter_subject: self.subject.clone(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
            ..consumer::pull::OrderedConfig::default()
        };
        let consumer = stream.create_consumer(config).await?;
        let mut messages = consumer.messages().await?;
        // The ordered consumer delivers each sequence once, in order, from `start`; after a
        // reset it may start over lower: those are skipped here (and by the projection).
        let mut next = start;
        while let Some(message) = messages.next().await {
            let message = message?;
            let sequence = message.info()?.stream_sequence;
            if sequence < next {
                continue;
            }
            if sequence > next {
                // The stream has no holes of its own: entries before `sequence` were trimmed.
                return Ok(Read::Trimmed { wanted: next, first: sequence });
            }
            next = sequence + 1;
            let applying = match command::decode(&message.payload) {
                Ok(entry) => {
                    let touches_endpoints = touches_endpoints(&entry.command);
                    let applying =
                        self.projection.submit_logged(sequence, entry.now, entry.command).await?;
                    Some((entry.id, Box::pin(applying) as Applying, touches_endpoints))
                }
                Err(error) => {
                    tracing::error!(%error, sequence, "a log entry cannot be read; skipped");
                    None
                }
            };
            if pipeline.send(Pending { sequence, applying }).await.is_err() {
                break;
            }
        }
        Ok(Read::Ended)
    }

    /// Answers each entry's issuer (when it is this node) once applied, in log order.
    async fn answer(self: Arc<Self>, mut answers: mpsc::Receiver<Pending>) {
        while let Some(Pending { sequence, applying }) = answers.recv().await {
            if let Some((id, applying, touches_endpoints)) = applying {
                let outcome = applying.await;
                if let Err(error) = &outcome {
                    tracing::debug!(%error, sequence, "a log entry failed to apply");
                }
                let waiter = self.waiters().remove(&id);
                let from_elsewhere = waiter.is_none();
                if let Some(waiter) = waiter {
                    let _ = waiter.send(outcome);
                }
                if touches_endpoints && from_elsewhere {
                    self.endpoint_changes.send_modify(|version| *version += 1);
                }
            }
            self.applied.send_if_modified(|applied| {
                let moved = sequence > *applied;
                *applied = (*applied).max(sequence);
                moved
            });
            let known_last = self.known_last.fetch_max(sequence, Ordering::AcqRel).max(sequence);
            self.metrics.store_projection.applied(self.applied(), known_last);
        }
    }
}

/// How a read of the log ended (other than by an error).
enum Read {
    /// The consumer ended (or the pipeline closed): read again.
    Ended,
    /// The entry wanted next was trimmed; the log now starts at `first`.
    Trimmed { wanted: u64, first: u64 },
}

type Applying =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, StoreError>> + Send>>;

/// An entry handed to the projection: its issuer's command id, the answer to come, and
/// whether it changes endpoints.
struct Pending {
    sequence: u64,
    applying: Option<(String, Applying, bool)>,
}

/// Whether `command` changes the dynamic endpoints or which endpoints are disabled.
fn touches_endpoints(command: &Command) -> bool {
    match command {
        Command::PutEndpoint(_)
        | Command::DeleteEndpoint { .. }
        | Command::SetEndpointEnabled { .. } => true,
        Command::RecordAttempt(record) => record.next == crate::store::NextStep::DisableEndpoint,
        Command::Ingest(_)
        | Command::Replay(_)
        | Command::Prune(_)
        | Command::AppendAudit(_)
        | Command::PruneAudit { .. } => false,
    }
}

fn read_error(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Read(Box::new(error))
}

/// Runs `attempt` until it succeeds or [`SETUP_TIMEOUT`] passes (a cluster that just started
/// has no leaders for a few seconds).
pub async fn retry_setup<T, E, F>(what: &str, attempt: impl FnMut() -> F) -> Result<T, StoreError>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    // Quiet: a cluster that just started has no leaders for a few seconds, as expected.
    retry(what, attempt, false)
        .await
        .map_err(|error| StoreError::Write(format!("cannot {what}: {error}")))
}

/// Runs the read `attempt` until it succeeds or [`SETUP_TIMEOUT`] passes. For the reads a
/// node's start or a store command makes once and cannot go on without: a JetStream API
/// request times out while its stream's leader is elected or its servers are loaded, and the
/// same request a moment later is answered.
pub async fn retry_read<T, E, F>(what: &str, attempt: impl FnMut() -> F) -> Result<T, StoreError>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    retry(what, attempt, true)
        .await
        .map_err(|error| StoreError::Read(format!("{what}: {error}").into()))
}

/// Runs `attempt` until it succeeds or [`SETUP_TIMEOUT`] passes; answers the last error. With
/// `tell`, the first failure is logged as a warning, so that a command waiting on it says why.
async fn retry<T, E, F>(what: &str, mut attempt: impl FnMut() -> F, tell: bool) -> Result<T, E>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    let mut told = !tell;
    loop {
        match attempt().await {
            Err(error) if tokio::time::Instant::now() < deadline => {
                if told {
                    tracing::debug!(%error, what, "failed; trying again");
                } else {
                    tracing::warn!(%error, what, "failed; trying again for up to 30 s");
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            answer => return answer,
        }
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Log").finish_non_exhaustive()
    }
}
