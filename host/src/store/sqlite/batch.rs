//! Group commit: the writer thread and its batches.
//!
//! Owns the only write connection. The writer blocks for one request, takes every other request
//! already waiting (up to [`MAX_BATCH`]), applies them in one transaction (should one fail, the
//! batch is applied again with each in its own savepoint, so one bad request fails alone),
//! commits once, and only then queues the new jobs and answers each waiter. It must never
//! answer before the commit. It knows no command: each is a [`WriteOp`] (`ops.rs`) that owns its
//! reply, so a new command touches `ops.rs`, the backend's method, `logged.rs` and the log's
//! wire format (`jetstream/command.rs`); nothing here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::due::Dispatch;
use crate::event::now_millis;
use crate::store::lifecycle::EndpointStatus;
use crate::store::{DeliveryJob, StoreError};
use crate::telemetry::Metrics;

/// The most requests one transaction takes; bounds commit latency under a flood.
const MAX_BATCH: usize = 1024;

/// One write command: its SQL, run inside the writer's transaction.
pub(super) trait WriteOp: Send + 'static {
    type Output: Send + 'static;

    /// Applies the command. It changes `state` (the endpoint sets, the jobs) only once its
    /// writes succeeded; the batch undoes those changes when it undoes the writes.
    fn apply(
        &self,
        connection: &Connection,
        state: &mut WriterState,
    ) -> rusqlite::Result<Self::Output>;
}

/// What the writer thread receives.
pub(super) enum Message {
    Write(Box<dyn Queued>),
    /// Commit what is queued, then stop.
    Shutdown,
}

/// A command with its waiter, its type erased.
pub(super) trait Queued: Send {
    /// Applies it, in its own savepoint when `isolated`, keeping its outcome; answers whether
    /// it succeeded.
    fn apply(
        &mut self,
        transaction: &mut Transaction<'_>,
        isolated: bool,
        state: &mut WriterState,
    ) -> bool;

    /// Sends the kept outcome to the waiter; one that went away needs no answer.
    fn answer(self: Box<Self>);

    fn fail(self: Box<Self>, message: &str);
}

/// A command and the channel its answer goes back on.
pub(super) struct Request<W: WriteOp> {
    op: W,
    reply: oneshot::Sender<Result<W::Output, StoreError>>,
    outcome: Option<Result<W::Output, StoreError>>,
}

/// Where a request's answer arrives, once its batch is committed.
pub(super) type Waiter<T> = oneshot::Receiver<Result<T, StoreError>>;

impl<W: WriteOp> Request<W> {
    /// `op` as a message for the writer, and where its answer arrives.
    pub fn message(op: W) -> (Message, Waiter<W::Output>) {
        let (reply, answer) = oneshot::channel();
        (Message::Write(Box::new(Self { op, reply, outcome: None })), answer)
    }
}

impl<W: WriteOp> Queued for Request<W> {
    fn apply(
        &mut self,
        transaction: &mut Transaction<'_>,
        isolated: bool,
        state: &mut WriterState,
    ) -> bool {
        let jobs_before = state.jobs.len();
        let result = if isolated {
            savepoint(transaction, |connection| self.op.apply(connection, state))
        } else {
            self.op.apply(transaction, state).map_err(|error| StoreError::Write(error.to_string()))
        };
        let succeeded = result.is_ok();
        if !succeeded {
            state.jobs.truncate(jobs_before);
            if let Err(StoreError::Write(message)) = &result {
                state.write_error.get_or_insert_with(|| message.clone());
            }
        }
        self.outcome = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>) {
        // Always set: a request is answered only after it was applied.
        let outcome = self.outcome.unwrap_or(Err(StoreError::Closed));
        let _ = self.reply.send(outcome);
    }

    fn fail(self: Box<Self>, message: &str) {
        let _ = self.reply.send(Err(StoreError::Write(message.to_owned())));
    }
}

/// What the writer keeps between batches, and what one batch collects.
pub(super) struct WriterState {
    pub metrics: Arc<Metrics>,
    pub dispatch: Arc<Dispatch>,
    /// Endpoints disabled (by a 410 or the admin API). Changed only by a command whose writes
    /// succeeded, and restored whenever the batch's writes are undone, so that it always
    /// matches `endpoint_state` on disk.
    pub disabled: HashSet<String>,
    /// Deleted dynamic endpoints (tombstones; their ids never come back). Kept like `disabled`.
    pub deleted: HashSet<String>,
    /// The time of the batch (unix ms).
    pub now: u64,
    /// Jobs the batch made due, queued once it is committed.
    pub jobs: Vec<DeliveryJob>,
    /// Events the batch stored.
    pub stored_events: u64,
    /// The first failed write of the batch's isolated pass (what readiness reports when no
    /// write of a batch could be made).
    pub write_error: Option<String>,
}

impl WriterState {
    pub fn endpoint_status(&self, endpoint: &str) -> EndpointStatus {
        // Both sets are empty nearly always: no hashing on the hot path then.
        if !self.deleted.is_empty() && self.deleted.contains(endpoint) {
            EndpointStatus::Deleted
        } else if !self.disabled.is_empty() && self.disabled.contains(endpoint) {
            EndpointStatus::Disabled
        } else {
            EndpointStatus::Enabled
        }
    }
}

pub(super) fn run(
    mut connection: Connection,
    mut messages: mpsc::Receiver<Message>,
    mut state: WriterState,
) {
    let mut batch: Vec<Box<dyn Queued>> = Vec::with_capacity(MAX_BATCH);
    let mut shutting_down = false;
    while !shutting_down {
        let Some(first) = messages.blocking_recv() else { break };
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Shutdown => {
                    shutting_down = true;
                    break;
                }
                Message::Write(request) => batch.push(request),
            }
            if batch.len() < MAX_BATCH {
                next = messages.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut connection, &mut batch, &mut state);
        }
    }
    tracing::debug!("store writer stopped");
}

pub(super) fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<Box<dyn Queued>>,
    state: &mut WriterState,
) {
    let started = Instant::now();
    state.now = now_millis();
    state.jobs.clear();
    state.stored_events = 0;
    let size = batch.len();
    let disabled = state.disabled.clone();
    let deleted = state.deleted.clone();
    let mut transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => {
            return fail_to_start(batch, state, &error);
        }
    };
    // Optimistic: every request straight in the transaction, no savepoints (each costs a
    // statement pair and a copy of every page it touches). When one fails, the whole batch is
    // rolled back and applied again with each request in its own savepoint, so that request
    // fails alone.
    let mut failed_writes = None;
    let all_applied = batch.iter_mut().all(|request| request.apply(&mut transaction, false, state));
    if !all_applied {
        let _ = transaction.rollback();
        state.disabled = disabled.clone();
        state.deleted = deleted.clone();
        state.jobs.clear();
        state.stored_events = 0;
        transaction = match connection.transaction() {
            Ok(transaction) => transaction,
            Err(error) => {
                return fail_to_start(batch, state, &error);
            }
        };
        state.write_error = None;
        let mut any_applied = false;
        for request in batch.iter_mut() {
            any_applied |= request.apply(&mut transaction, true, state);
        }
        // A batch none of whose writes could be made tells as much as a failed commit.
        if !any_applied {
            failed_writes = state.write_error.take();
        }
    }
    let committed = transaction.commit();
    let metrics = &state.metrics;
    metrics.store_commit_seconds.observe(started.elapsed().as_secs_f64());
    if let Err(error) = committed {
        crate::health::log_store_error("store commit failed", &error);
        metrics.store_health.commit_failed(&error.to_string());
        state.disabled = disabled;
        state.deleted = deleted;
        state.jobs.clear();
        // Nothing of this batch is durable: no job is queued, every waiter hears why.
        return fail_all(batch, &error.to_string());
    }
    match &failed_writes {
        Some(error) => metrics.store_health.commit_failed(error),
        None => metrics.store_health.commit_succeeded(),
    }
    metrics.store_commits.inc();
    metrics.store_commit_batch_size.observe(size as f64);
    metrics.store_committed_events.inc_by(state.stored_events);
    let mut jobs = std::mem::take(&mut state.jobs);
    // Disabled (or deleted) by a later request of this batch: not to be sent.
    if !state.disabled.is_empty() || !state.deleted.is_empty() {
        jobs.retain(|job| state.endpoint_status(&job.endpoint) == EndpointStatus::Enabled);
    }
    state.dispatch.queue_all(&mut jobs);
    // Keeps its capacity for the next batch.
    state.jobs = jobs;
    for request in batch.drain(..) {
        request.answer();
    }
}

/// No transaction could start: every waiter hears why, and readiness hears it too.
fn fail_to_start(batch: &mut Vec<Box<dyn Queued>>, state: &WriterState, error: &rusqlite::Error) {
    crate::health::log_store_error("store transaction could not start", error);
    state.metrics.store_health.commit_failed(&error.to_string());
    fail_all(batch, &error.to_string());
}

fn fail_all(batch: &mut Vec<Box<dyn Queued>>, message: &str) {
    for request in batch.drain(..) {
        request.fail(message);
    }
}

/// Runs `apply` in a savepoint: on error only its own changes are rolled back.
fn savepoint<T>(
    transaction: &mut Transaction<'_>,
    apply: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let result = transaction.savepoint().and_then(|savepoint| {
        let value = apply(&savepoint)?;
        savepoint.commit().map(|()| value)
    });
    result.map_err(|error| {
        crate::health::log_store_error("store rejected a write", &error);
        StoreError::Write(error.to_string())
    })
}
