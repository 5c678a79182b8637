//! One endpoint's worker: its concurrency limit and its attempts.
//!
//! Owns at most `max_in_flight` requests to one endpoint under way at once: it takes a slot,
//! then the next job its store's [`DueQueue`] says is due, and runs the attempt, which holds
//! the slot until its exchange is over ([`Attempt::slot`]) and then records its outcome without
//! one, so the commit it waits for never idles the endpoint. The outcome goes back to the
//! queue. Endpoints never share a queue or a limit, so a hanging or failing endpoint only ever
//! delays itself. When a job is due and what becomes of it is the store's business, not this.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::attempt::{Attempt, AttemptContext, Finished};
use crate::store::{DeliveryId, DueQueue, NextStep};

/// Attempts alive at once per in-flight slot, those recording their outcome included: bounds
/// the memory a slow store can make a fast endpoint hold.
const ATTEMPTS_PER_SLOT: usize = 4;

pub(super) struct Worker {
    pub endpoint: Arc<super::EndpointRuntime>,
    pub context: Arc<AttemptContext>,
    pub queue: Box<dyn DueQueue>,
    /// Settings changes, disable and enable; closed when the endpoint is removed.
    pub controls: mpsc::UnboundedReceiver<super::Control>,
    pub stop: watch::Receiver<bool>,
    pub disabled: bool,
}

impl Worker {
    pub async fn run(mut self) {
        let mut attempts: JoinSet<Finished> = JoinSet::new();
        // Which delivery each attempt's task is for, should the task fail without an outcome.
        let mut under_way: HashMap<tokio::task::Id, DeliveryId> = HashMap::new();
        let mut slots = Arc::new(Semaphore::new(self.endpoint.max_in_flight as usize));
        let mut most_attempts =
            (self.endpoint.max_in_flight as usize).saturating_mul(ATTEMPTS_PER_SLOT);
        // A slot taken, waiting for the next due job.
        let mut slot: Option<OwnedSemaphorePermit> = None;
        if self.disabled {
            self.queue.pause();
        }
        let metrics = self.context.metrics.clone();
        loop {
            metrics.set_pending(&self.endpoint.id, (self.queue.len() + attempts.len()) as i64);
            let can_start = attempts.len() < most_attempts;
            let mut new_limit = None;
            tokio::select! {
                taken = slots.clone().acquire_owned(), if can_start && slot.is_none() => {
                    slot = taken.ok();
                }
                // In an `async` block so that the queue's boxed future is made only when this
                // branch is polled, not on every turn of the loop.
                job = async { self.queue.next().await }, if slot.is_some() => match job {
                    Some(job) => {
                        let delivery = job.delivery_id;
                        let attempt =
                            Attempt { job, endpoint: self.endpoint.clone(), slot: slot.take() };
                        let task = attempts.spawn(attempt.run(self.context.clone())).id();
                        under_way.insert(task, delivery);
                    }
                    // The store is gone or gave the queue to another worker.
                    None => break,
                },
                Some(finished) = attempts.join_next_with_id() => match finished {
                    Ok((task, Finished { job, next })) => {
                        under_way.remove(&task);
                        if next == NextStep::DisableEndpoint {
                            tracing::warn!(endpoint = %self.endpoint.id, "endpoint answered 410 Gone: disabled, its deliveries parked");
                        }
                        self.queue.finished(job, next);
                    }
                    Err(error) => {
                        if let Some(delivery) = under_way.remove(&error.id()) {
                            self.queue.abandoned(delivery);
                        }
                        tracing::error!(%error, endpoint = %self.endpoint.id, "delivery attempt task failed");
                    }
                },
                control = self.controls.recv() => match control {
                    Some(super::Control::Update(endpoint)) => {
                        new_limit = (endpoint.max_in_flight != self.endpoint.max_in_flight)
                            .then_some(endpoint.max_in_flight as usize);
                        self.endpoint = endpoint;
                    }
                    Some(super::Control::Disable) => self.queue.pause(),
                    Some(super::Control::Enable) => self.queue.resume(),
                    None => break,
                },
                _ = self.stop.changed() => break,
            }
            if let Some(limit) = new_limit {
                // Attempts under way keep their slots of the old limit.
                slots = Arc::new(Semaphore::new(limit));
                slot = None;
                most_attempts = limit.saturating_mul(ATTEMPTS_PER_SLOT);
            }
        }
        // Drain: attempts already under way finish and are recorded; queued ones stay
        // pending in the store for the next start.
        while attempts.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests;
