//! One endpoint's worker: its concurrency limit, its traffic controls and its attempts.
//!
//! Owns the attempts to one endpoint under way at once: it takes a slot, asks the endpoint's
//! traffic controls ([`EndpointTraffic`]: rate, a `Retry-After` pause, the circuit breaker)
//! whether an attempt may start, then takes the next job its store's [`DueQueue`] says is
//! due, and runs the attempt, which holds the slot until its exchange is over
//! ([`Attempt::slot`]) and then records its outcome without one, so the commit it waits for
//! never idles the endpoint. A delivery that may not start yet stays in the queue, spending
//! no attempt. The outcome goes back to the queue and to the traffic controls, which may
//! pause the endpoint, open or close its breaker, move its in-flight limit (adaptive
//! concurrency: [`Slots`] follows it between 1 and `max_in_flight`) or disable it
//! (`disable_after`). Endpoints never share a queue, a limit or controls, so a hanging or
//! failing endpoint only ever delays itself. When a job is due and what becomes of it is the
//! store's business, not this: ordering per key (`ordered_by`) included, since the due-queue
//! hands out a keyed delivery only once its key's earlier ones are finished
//! ([`crate::traffic::ordering::KeyGate`]), so a held delivery takes no slot here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::attempt::{Attempt, AttemptContext, Exchanged, Finished};
use crate::notify::{Details, NoticeKind};
use crate::store::{DeliveryId, DueQueue, NextStep};
use crate::telemetry::{
    EndpointGauge, EndpointLabels, EndpointWaitLabels, Metrics, SecondsCounter,
};
use crate::traffic::breaker::{BreakerState, Transition};
use crate::traffic::endpoint::{EndpointTraffic, Gate, Outcome, WaitReason};

/// Attempts alive at once per in-flight slot, those recording their outcome included: bounds
/// the memory a slow store can make a fast endpoint hold.
const ATTEMPTS_PER_SLOT: usize = 4;

/// An endpoint's traffic controls, shared by its worker and whoever shows them.
pub(super) type SharedTraffic = Arc<Mutex<EndpointTraffic>>;

pub(super) fn lock(traffic: &SharedTraffic) -> MutexGuard<'_, EndpointTraffic> {
    // Every update is one call on a plain value: a panic cannot leave it half-changed.
    traffic.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) struct Worker {
    pub endpoint: Arc<super::EndpointRuntime>,
    pub context: Arc<AttemptContext>,
    pub queue: Box<dyn DueQueue>,
    /// Settings changes, disable and enable; closed when the endpoint is removed.
    pub controls: mpsc::UnboundedReceiver<super::Control>,
    pub stop: watch::Receiver<bool>,
    pub disabled: bool,
    pub traffic: SharedTraffic,
}

/// An attempt under way, as its worker remembers it.
struct UnderWay {
    delivery: DeliveryId,
    /// The breaker's probe.
    probe: bool,
    started_at: Instant,
    /// Its exchange's outcome reached the traffic controls.
    reported: bool,
}

impl Worker {
    pub async fn run(mut self) {
        let mut attempts: JoinSet<Finished> = JoinSet::new();
        // Which delivery each attempt's task is for, should the task fail without an outcome.
        let mut under_way: HashMap<tokio::task::Id, UnderWay> = HashMap::new();
        let mut slots = Slots::new(lock(&self.traffic).in_flight_limit() as usize);
        let mut most_attempts =
            (self.endpoint.max_in_flight as usize).saturating_mul(ATTEMPTS_PER_SLOT);
        // A slot taken, waiting for the next due job.
        let mut slot: Option<Slot> = None;
        if self.disabled {
            self.queue.pause();
        }
        let mut shown = Shown::new(&self.context.metrics, &self.endpoint.id);
        let series = Arc::new(self.context.metrics.attempt_series(&self.endpoint.id));
        // Outcomes of exchanges, sent before their slot is given back.
        let (report, mut reports) = mpsc::unbounded_channel::<Exchanged>();
        loop {
            self.show(&mut shown, attempts.len());
            let can_start = attempts.len() < most_attempts;
            let gate = match slot {
                Some(_) => lock(&self.traffic).gate(Instant::now(), !self.queue.is_empty()),
                None => Gate::Open { probe: false },
            };
            let (open, probe, wake) = match gate {
                Gate::Open { probe } => (true, probe, None),
                Gate::Until(until, _) => (false, false, Some(until)),
                Gate::AfterProbe => (false, false, None),
            };
            let wake_at = tokio::time::Instant::from_std(wake.unwrap_or_else(Instant::now));
            let mut new_limit = None;
            tokio::select! {
                // First: an outcome is taken into account before another attempt starts.
                biased;
                Some(exchanged) = reports.recv() => {
                    self.reported(&mut under_way, &mut slots, exchanged).await;
                }
                taken = slots.acquire(), if can_start && slot.is_none() => slot = taken,
                // In an `async` block so that the queue's boxed future is made only when this
                // branch is polled, not on every turn of the loop.
                job = async { self.queue.next().await }, if slot.is_some() && open => match job {
                    Some(job) => {
                        let delivery = job.delivery_id;
                        let started_at = Instant::now();
                        lock(&self.traffic).started(probe, started_at);
                        let attempt = Attempt {
                            job,
                            endpoint: self.endpoint.clone(),
                            series: series.clone(),
                            slot: slot.take(),
                            report: report.clone(),
                        };
                        let task = attempts.spawn(attempt.run(self.context.clone())).id();
                        let attempt = UnderWay { delivery, probe, started_at, reported: false };
                        under_way.insert(task, attempt);
                    }
                    // The store is gone or gave the queue to another worker.
                    None => break,
                },
                () = tokio::time::sleep_until(wake_at), if wake.is_some() => {}
                Some(finished) = attempts.join_next_with_id() => match finished {
                    Ok((task, Finished { job, next, sent })) => {
                        // Its report was sent before it ended: reports first.
                        while let Ok(exchanged) = reports.try_recv() {
                            self.reported(&mut under_way, &mut slots, exchanged).await;
                        }
                        let attempt = under_way.remove(&task);
                        if next == NextStep::DisableEndpoint {
                            tracing::warn!(endpoint = %self.endpoint.id, "endpoint answered 410 Gone: disabled, its deliveries parked");
                        }
                        self.queue.finished(job, next);
                        // Nothing sent, nothing learnt; a probe's place is free again.
                        if let Some(attempt) = attempt.filter(|attempt| !attempt.reported) {
                            if sent {
                                tracing::error!(endpoint = %self.endpoint.id, "an attempt's outcome was not reported");
                            }
                            lock(&self.traffic).abandoned(attempt.probe);
                        }
                    }
                    Err(error) => {
                        if let Some(attempt) = under_way.remove(&error.id()) {
                            self.queue.abandoned(attempt.delivery);
                            if !attempt.reported {
                                lock(&self.traffic).abandoned(attempt.probe);
                            }
                        }
                        tracing::error!(%error, endpoint = %self.endpoint.id, "delivery attempt task failed");
                    }
                },
                control = self.controls.recv() => match control {
                    Some(super::Control::Update(endpoint)) => {
                        new_limit = (endpoint.max_in_flight != self.endpoint.max_in_flight)
                            .then_some(endpoint.max_in_flight as usize);
                        let now = Instant::now();
                        lock(&self.traffic).update(endpoint.traffic, endpoint.max_in_flight, now);
                        self.endpoint = endpoint;
                    }
                    Some(super::Control::Disable) => self.queue.pause(),
                    Some(super::Control::Enable) => {
                        lock(&self.traffic).enabled();
                        self.queue.resume();
                    }
                    None => break,
                },
                _ = self.stop.changed() => break,
            }
            if let Some(maximum) = new_limit {
                // Attempts under way keep their slots of the old limit.
                slots = Slots::new(lock(&self.traffic).in_flight_limit() as usize);
                slot = None;
                most_attempts = maximum.saturating_mul(ATTEMPTS_PER_SLOT);
            }
        }
        // Drain: attempts already under way finish and are recorded; queued ones stay
        // pending in the store for the next start.
        while attempts.join_next().await.is_some() {}
    }

    /// An attempt's exchange ended: its outcome goes to the traffic controls, and the slots
    /// follow the in-flight limit they answer.
    async fn reported(
        &mut self,
        under_way: &mut HashMap<tokio::task::Id, UnderWay>,
        slots: &mut Slots,
        exchanged: Exchanged,
    ) {
        let attempt = under_way
            .values_mut()
            .find(|attempt| attempt.delivery == exchanged.delivery && !attempt.reported);
        if let Some(attempt) = attempt {
            attempt.reported = true;
            let (probe, started_at) = (attempt.probe, attempt.started_at);
            self.ended(probe, started_at, exchanged.outcome).await;
            slots.set_limit(lock(&self.traffic).in_flight_limit() as usize);
        }
    }

    /// Tells the traffic controls how an attempt ended, and acts on what they decide.
    async fn ended(&mut self, probe: bool, started_at: Instant, outcome: Outcome) {
        let id = &self.endpoint.id;
        let now = Instant::now();
        let consequences = lock(&self.traffic).finished(probe, started_at, outcome, now);
        let metrics = &self.context.metrics.traffic;
        let labels = EndpointLabels { endpoint: id.clone() };
        match consequences.breaker {
            Some(Transition::Opened { cooldown }) => {
                metrics.breaker_opened.get_or_create(&labels).inc();
                tracing::warn!(endpoint = %id, ?cooldown, "circuit breaker opened: no attempts until the cooldown ends, then one probe");
                let mut extra = serde_json::Map::new();
                extra.insert("cooldown_ms".to_owned(), (cooldown.as_millis() as u64).into());
                self.notify(NoticeKind::BreakerOpened, Details { extra, ..Details::default() });
            }
            Some(Transition::Closed) => {
                tracing::info!(endpoint = %id, "circuit breaker closed: the probe succeeded");
                self.notify(NoticeKind::BreakerClosed, Details::default());
            }
            None => {}
        }
        if let Some(until) = consequences.paused_until {
            let pause = until.saturating_duration_since(now);
            tracing::info!(endpoint = %id, ?pause, "endpoint asked to wait (Retry-After): every delivery to it waits");
        }
        if let Some(reason) = consequences.disable {
            tracing::warn!(endpoint = %id, %reason, "endpoint disabled: its deliveries are parked");
            let details = Details { last_error: Some(reason.clone()), ..Details::default() };
            match self.context.store.set_endpoint_enabled(id.clone(), false, reason).await {
                Ok(_) => {
                    self.queue.pause();
                    metrics.auto_disabled.get_or_create(&labels).inc();
                    self.notify(NoticeKind::EndpointDisabled, details);
                }
                Err(error) => {
                    tracing::error!(endpoint = %id, %error, "endpoint not disabled; it is tried again at the next failure")
                }
            }
        }
    }

    /// Raises an operational event about this endpoint (the notifier's storm guard bounds
    /// them). The breaker of an endpoint that receives only operational events may announce
    /// itself too: at most once per `server.notify_every`, so it cannot loop.
    fn notify(&self, kind: NoticeKind, details: Details) {
        if let Some(notifier) = &self.context.notifier {
            notifier.raise(kind, &self.endpoint.id, details);
        }
    }

    /// Updates the endpoint's series in `/metrics`.
    fn show(&self, shown: &mut Shown, attempts: usize) {
        shown.pending.set((self.queue.len() + attempts) as i64);
        let traffic = lock(&self.traffic);
        shown.in_flight_limit.set(i64::from(traffic.in_flight_limit()));
        if let Some(state) = traffic.breaker_state() {
            let code = match state {
                BreakerState::Closed => 0,
                BreakerState::Open { .. } => 1,
                BreakerState::HalfOpen { .. } => 2,
            };
            shown.breaker_state.set(code);
        }
        if let Some(failures) = traffic.breaker_failures() {
            shown.breaker_failures.set(i64::from(failures));
        }
        for (index, reason) in WaitReason::ALL.into_iter().enumerate() {
            let waited = traffic.waited(reason);
            let added = waited.saturating_sub(shown.waited[index]);
            if !added.is_zero() {
                shown.wait_seconds[index].inc_by(added.as_secs_f64());
                shown.waited[index] = waited;
            }
        }
    }
}

/// The endpoint's series in `/metrics`, looked up once, and what they already show.
struct Shown {
    pending: EndpointGauge,
    in_flight_limit: EndpointGauge,
    breaker_state: EndpointGauge,
    breaker_failures: EndpointGauge,
    wait_seconds: [SecondsCounter; 3],
    waited: [Duration; 3],
}

impl Shown {
    fn new(all: &Metrics, endpoint: &str) -> Self {
        let metrics = &all.traffic;
        let labels = EndpointLabels { endpoint: endpoint.to_owned() };
        let wait = |reason: WaitReason| {
            let labels =
                EndpointWaitLabels { endpoint: endpoint.to_owned(), reason: reason.as_str() };
            metrics.wait_seconds.get_or_create_owned(&labels)
        };
        Self {
            pending: all.pending_gauge(endpoint),
            in_flight_limit: metrics.in_flight_limit.get_or_create_owned(&labels),
            breaker_state: metrics.breaker_state.get_or_create_owned(&labels),
            breaker_failures: metrics.breaker_failures.get_or_create_owned(&labels),
            wait_seconds: WaitReason::ALL.map(wait),
            waited: [Duration::ZERO; 3],
        }
    }
}

/// The in-flight slots of one endpoint: a semaphore whose size follows the in-flight limit.
/// A limit lowered below the slots taken is a debt: slots given back while it lasts are
/// forgotten instead of freed.
struct Slots {
    semaphore: Arc<Semaphore>,
    debt: Arc<AtomicUsize>,
    limit: usize,
}

/// One in-flight slot, given back (or forgotten, to pay a debt) when dropped.
pub(in crate::delivery) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    debt: Arc<AtomicUsize>,
}

impl Slots {
    fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self { semaphore: Arc::new(Semaphore::new(limit)), debt: Arc::default(), limit }
    }

    async fn acquire(&self) -> Option<Slot> {
        let permit = self.semaphore.clone().acquire_owned().await.ok()?;
        Some(Slot { permit: Some(permit), debt: self.debt.clone() })
    }

    fn set_limit(&mut self, limit: usize) {
        let limit = limit.max(1);
        if limit > self.limit {
            let mut grow = limit - self.limit;
            // Paying the debt first: those slots were never freed.
            let _ = self.debt.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |debt| {
                let paid = debt.min(grow);
                grow = limit - self.limit - paid;
                Some(debt - paid)
            });
            self.semaphore.add_permits(grow);
        } else if limit < self.limit {
            let shrink = self.limit - limit;
            let forgotten = self.semaphore.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::SeqCst);
        }
        self.limit = limit;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let paid =
            self.debt.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |debt| debt.checked_sub(1));
        if paid.is_ok() {
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests;
