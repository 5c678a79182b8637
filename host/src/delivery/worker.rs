//! One endpoint's worker: its due-queue, its concurrency limit, its attempts.
//!
//! Owns the in-memory queue of one endpoint's pending deliveries, ordered by due time, and
//! keeps at most `max_in_flight` requests to the endpoint under way at once: an attempt holds
//! one of the endpoint's slots until its exchange is over (`http::with_send_slot`), then
//! records its outcome without one, so the commit it waits for never idles the endpoint.
//! Endpoints never share a queue or a limit, so a hanging or failing endpoint only ever delays
//! itself. The store stays the source of truth: every attempt is recorded before its delivery
//! is rescheduled or dropped from memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::attempt::{Attempt, AttemptContext};
use super::http::with_send_slot;
use crate::event::now_millis;
use crate::store::{DeliveryJob, NextStep};

/// Attempts alive at once per in-flight slot, those recording their outcome included: bounds
/// the memory a slow store can make a fast endpoint hold.
const ATTEMPTS_PER_SLOT: usize = 4;

/// Queued deliveries that keep their body in memory; those queued behind them are read from
/// the store when due.
const BODIES_KEPT_QUEUED: usize = 1024;

/// What a finished attempt tells the worker.
pub(super) struct Finished {
    pub job: DeliveryJob,
    pub next: NextStep,
}

pub(super) struct Worker {
    pub endpoint: Arc<super::EndpointRuntime>,
    pub context: Arc<AttemptContext>,
    pub jobs: mpsc::UnboundedReceiver<DeliveryJob>,
    /// Settings changes, disable and enable, from the admin API.
    pub controls: mpsc::UnboundedReceiver<super::Control>,
    pub stop: watch::Receiver<bool>,
    pub disabled: bool,
}

impl Worker {
    pub async fn run(mut self) {
        let mut due: BinaryHeap<Reverse<(u64, i64)>> = BinaryHeap::new();
        let mut waiting: HashMap<i64, DeliveryJob> = HashMap::new();
        let mut attempts: JoinSet<Finished> = JoinSet::new();
        // Deliveries with an attempt under way, by the attempt's task: a job for one of them
        // (its endpoint disabled and re-enabled meanwhile) waits for that attempt's outcome,
        // which decides what comes next, instead of sending the delivery a second time.
        let mut in_flight_tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut in_flight: HashSet<i64> = HashSet::new();
        let mut slots = Arc::new(Semaphore::new(self.endpoint.max_in_flight as usize));
        let mut most_attempts =
            (self.endpoint.max_in_flight as usize).saturating_mul(ATTEMPTS_PER_SLOT);
        let metrics = self.context.metrics.clone();
        loop {
            if !self.disabled {
                let now = now_millis();
                while attempts.len() < most_attempts {
                    let Some(Reverse((due_at, id))) = due.peek().copied() else { break };
                    if due_at > now {
                        break;
                    }
                    // An entry left behind when its job was queued again for another time.
                    if waiting.get(&id).is_none_or(|job| job.due_at != due_at) {
                        due.pop();
                        continue;
                    }
                    let Ok(slot) = slots.clone().try_acquire_owned() else { break };
                    due.pop();
                    if let Some(job) = waiting.remove(&id) {
                        let attempt = Attempt { job, endpoint: self.endpoint.clone() };
                        let run = with_send_slot(slot, attempt.run(self.context.clone()));
                        in_flight_tasks.insert(attempts.spawn(run).id(), id);
                        in_flight.insert(id);
                    }
                }
            }
            metrics.set_pending(&self.endpoint.id, (waiting.len() + attempts.len()) as i64);
            let next_due = due.peek().map(|Reverse((due_at, _))| *due_at);
            let can_start = attempts.len() < most_attempts && !self.disabled;
            let slot_free = slots.available_permits() > 0;
            let wake = next_due
                .filter(|_| can_start && slot_free)
                .map(|due_at| Duration::from_millis(due_at.saturating_sub(now_millis())));
            // Every slot busy with a job waiting: wake when an exchange gives one back.
            let wait_for_slot = next_due.is_some() && can_start && !slot_free;
            let mut new_limit = None;
            tokio::select! {
                job = self.jobs.recv() => match job {
                    Some(job) if in_flight.contains(&job.delivery_id) => {
                        tracing::debug!(delivery = job.delivery_id, "already under way; its outcome decides");
                    }
                    Some(mut job) => {
                        // A long queue keeps no bodies: they are read again when due, so an
                        // endpoint that falls behind costs a few bytes per delivery, not its body.
                        if waiting.len() >= BODIES_KEPT_QUEUED {
                            job.payload = None;
                        }
                        due.push(Reverse((job.due_at, job.delivery_id)));
                        waiting.insert(job.delivery_id, job);
                    }
                    None => break,
                },
                Some(finished) = attempts.join_next_with_id() => match finished.map(|(task, finished)| {
                    if let Some(id) = in_flight_tasks.remove(&task) {
                        in_flight.remove(&id);
                    }
                    finished
                }) {
                    // Disabled meanwhile: the store has parked it.
                    Ok(Finished { next: NextStep::RetryAt(_), .. }) if self.disabled => {}
                    Ok(Finished { mut job, next: NextStep::RetryAt(at) }) => {
                        job.attempts += 1;
                        job.due_at = at;
                        // Bodies of deliveries that wait are read again when due.
                        job.payload = None;
                        due.push(Reverse((at, job.delivery_id)));
                        waiting.insert(job.delivery_id, job);
                    }
                    Ok(Finished { next: NextStep::DisableEndpoint, .. }) => {
                        tracing::warn!(endpoint = %self.endpoint.id, "endpoint answered 410 Gone: disabled, its deliveries parked");
                        self.disabled = true;
                        due.clear();
                        waiting.clear();
                    }
                    Ok(_) => {}
                    Err(error) => {
                        if let Some(id) = in_flight_tasks.remove(&error.id()) {
                            in_flight.remove(&id);
                        }
                        tracing::error!(%error, endpoint = %self.endpoint.id, "delivery attempt task failed");
                    }
                },
                Some(control) = self.controls.recv() => match control {
                    super::Control::Update(endpoint) => {
                        new_limit = (endpoint.max_in_flight != self.endpoint.max_in_flight)
                            .then_some(endpoint.max_in_flight as usize);
                        self.endpoint = endpoint;
                    }
                    super::Control::Disable => {
                        self.disabled = true;
                        due.clear();
                        waiting.clear();
                    }
                    super::Control::Enable => self.disabled = false,
                },
                () = sleep_for(wake) => {}
                _ = slots.acquire(), if wait_for_slot => {}
                _ = self.stop.changed() => break,
            }
            if let Some(limit) = new_limit {
                // Attempts under way keep their slots of the old limit.
                slots = Arc::new(Semaphore::new(limit));
                most_attempts = limit.saturating_mul(ATTEMPTS_PER_SLOT);
            }
        }
        // Drain: attempts already under way finish and are recorded; queued ones stay
        // pending in the store for the next start.
        while attempts.join_next().await.is_some() {}
    }
}

async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
