//! Failure notifications as ordinary events: the built-in source `switchyard`.
//!
//! Owns [`Notifier`]: it hears every recorded attempt ([`Notifier::attempted`], one call from
//! the delivery side) and every condition other parts raise ([`Notifier::raise`]: breakers,
//! rate limits), asks the pure [`guard`] whether a notification is due, and ingests it
//! through the same durable path as a webhook ([`Ingestor::accept`]), as an event of source
//! [`SOURCE`] whose type is one of [`NoticeKind`]'s. From there routes, plugins, signing and
//! retries treat it like any other event.
//!
//! The loop guard lives here: attempts at delivering an operational event never count
//! towards an endpoint's health and raise nothing, so a failing endpoint that receives
//! notifications cannot generate notifications about itself without end. It must not decide
//! what an attempt's outcome is (the delivery side does) nor where notifications go (routes do).

pub mod guard;
pub mod notice;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::{Source, SourceKind};
use crate::event::{EventId, now_millis};
use crate::ingest::{Inbound, Ingestor};
use crate::store::{AttemptRecord, DeliveryJob, IngestReceipt, NextStep, Store};

pub use guard::FAILING_AFTER;
pub use notice::{Details, Notice, NoticeKind};

/// The id of the built-in source of operational events. A config may not declare it.
pub const SOURCE: &str = "switchyard";

/// `server.notify_every` when the config does not set it.
pub const DEFAULT_NOTIFY_EVERY: Duration = Duration::from_secs(15 * 60);

/// Ids of operational events this process stored, remembered so that the loop guard seldom
/// needs the store.
const REMEMBERED_EVENTS: usize = 4096;

/// Messages waiting for the notifier's task. Past it (a failure storm faster than the task
/// reads events' sources), outcomes are dropped: health counts come out low, nothing grows.
const QUEUED_MESSAGES: usize = 8192;

/// The built-in source as ingest sees it: no verify plugins, no dedupe, its type declared.
pub fn source() -> Source {
    Source {
        id: SOURCE.to_owned(),
        kind: SourceKind::Api,
        verify: Vec::new(),
        event_type: None,
        dedupe: None,
        max_body: u64::MAX,
        // Only the router posts as this source, never a client.
        client_subjects: None,
        rate_limit: None,
    }
}

/// What the notifier's task is told.
enum Message {
    Attempted(guard::Outcome, Observed),
    Raise {
        kind: NoticeKind,
        about: String,
        details: Details,
    },
    /// The current topology's ingest path and `notify_every` (start and every reload).
    Configure {
        ingestor: Ingestor,
        every: Duration,
    },
}

/// An attempt, owned, as it travels to the notifier's task.
struct Observed {
    endpoint: String,
    event: EventId,
    delivery: u64,
    status: Option<u16>,
    error: Option<String>,
    attempts: u32,
}

/// Hears delivery outcomes and raised conditions; ingests the notifications due.
#[derive(Debug, Clone)]
pub struct Notifier {
    messages: mpsc::Sender<Message>,
    /// Endpoints whose next success matters (they have failed since their last one).
    unhealthy: Arc<Mutex<HashSet<String>>>,
    unhealthy_count: Arc<AtomicUsize>,
}

impl Notifier {
    /// Starts the notifier's task; it ingests nothing until [`Notifier::configure`] gives it
    /// the ingest path (notifications raised before are ingested then).
    pub fn start(store: Store) -> Self {
        let (messages, receiver) = mpsc::channel(QUEUED_MESSAGES);
        let notifier =
            Self { messages, unhealthy: Arc::default(), unhealthy_count: Arc::default() };
        let task = Task {
            store,
            guard: guard::Guard::new(DEFAULT_NOTIFY_EVERY),
            ingestor: None,
            waiting: Vec::new(),
            remembered: Remembered::default(),
            unhealthy: notifier.unhealthy.clone(),
            unhealthy_count: notifier.unhealthy_count.clone(),
        };
        tokio::spawn(task.run(receiver));
        notifier
    }

    /// The ingest path of the topology being served and its `server.notify_every`.
    pub fn configure(&self, ingestor: Ingestor, every: Duration) {
        let message = Message::Configure { ingestor, every };
        // Never dropped: a full queue is waited for.
        if let Err(mpsc::error::TrySendError::Full(message)) = self.messages.try_send(message) {
            let messages = self.messages.clone();
            tokio::spawn(async move { messages.send(message).await });
        }
    }

    /// One recorded attempt at `job`. Cheap when nothing can come of it (a success at a
    /// healthy endpoint); the rest happens on the notifier's task.
    pub fn attempted(&self, job: &DeliveryJob, record: &AttemptRecord) {
        let outcome = match record.next {
            NextStep::Delivered => guard::Outcome::Delivered,
            NextStep::RetryAt(_) => guard::Outcome::Failed,
            NextStep::DeadLetter => guard::Outcome::DeadLettered,
            NextStep::DisableEndpoint => guard::Outcome::Disabled,
        };
        if outcome == guard::Outcome::Delivered
            && (self.unhealthy_count.load(Ordering::Acquire) == 0
                || !lock(&self.unhealthy).contains(&record.endpoint))
        {
            return;
        }
        let observed = Observed {
            endpoint: record.endpoint.clone(),
            event: job.event_id,
            delivery: record.delivery_id.get(),
            status: record.status,
            error: record.error.clone(),
            attempts: job.attempts.saturating_add(1),
        };
        self.send(Message::Attempted(outcome, observed));
    }

    /// A condition about an endpoint (or, for [`NoticeKind::SourceRateLimited`], a source):
    /// notified unless the storm guard holds it back. Breakers and rate limits call this.
    pub fn raise(&self, kind: NoticeKind, about: &str, details: Details) {
        let about = about.to_owned();
        self.send(Message::Raise { kind, about, details });
    }

    fn send(&self, message: Message) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.messages.try_send(message) {
            tracing::debug!("notifier queue full: an outcome is not counted");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one call on a plain value: a panic cannot leave it half-changed.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The notifier's task: the only owner of the guard, so outcomes are taken in order.
struct Task {
    store: Store,
    guard: guard::Guard,
    ingestor: Option<Ingestor>,
    /// Notifications due before the ingest path was given.
    waiting: Vec<Notice>,
    remembered: Remembered,
    unhealthy: Arc<Mutex<HashSet<String>>>,
    unhealthy_count: Arc<AtomicUsize>,
}

impl Task {
    async fn run(mut self, mut messages: mpsc::Receiver<Message>) {
        let source = source();
        while let Some(message) = messages.recv().await {
            let due = match message {
                Message::Configure { ingestor, every } => {
                    self.ingestor = Some(ingestor);
                    self.guard.set_every(every);
                    std::mem::take(&mut self.waiting)
                }
                Message::Raise { kind, about, details } => {
                    self.guard.raise(kind, &about, &details, now_millis()).into_iter().collect()
                }
                Message::Attempted(outcome, observed) => self.attempted(outcome, observed).await,
            };
            for notice in due {
                self.ingest(&source, notice).await;
            }
        }
    }

    async fn attempted(&mut self, outcome: guard::Outcome, observed: Observed) -> Vec<Notice> {
        if self.is_operational(observed.event).await {
            return Vec::new();
        }
        let attempt = guard::Attempted {
            endpoint: &observed.endpoint,
            outcome,
            status: observed.status,
            error: observed.error.as_deref(),
            delivery: observed.delivery,
            event: observed.event.to_string(),
            attempts: observed.attempts,
        };
        let due = self.guard.attempted(&attempt, now_millis());
        let mut unhealthy = lock(&self.unhealthy);
        if self.guard.is_healthy(&observed.endpoint) {
            unhealthy.remove(&observed.endpoint);
        } else {
            unhealthy.insert(observed.endpoint.clone());
        }
        self.unhealthy_count.store(unhealthy.len(), Ordering::Release);
        due
    }

    /// The loop guard: whether `event` is an operational event. When the store cannot say,
    /// it counts as one (no notification rather than a possible loop).
    async fn is_operational(&self, event: EventId) -> bool {
        if self.remembered.contains(event) {
            return true;
        }
        match self.store.event(event).await {
            Ok(Some(stored)) => stored.source == SOURCE,
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, %event, "cannot read an event's source; no notification");
                true
            }
        }
    }

    async fn ingest(&mut self, source: &Source, notice: Notice) {
        let Some(ingestor) = &self.ingestor else {
            self.waiting.push(notice);
            return;
        };
        let event_type = notice.kind.event_type();
        let inbound = Inbound {
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: Bytes::from(notice.body.to_string()),
            subject: None,
            event_type: Some(event_type.to_owned()),
            dedupe_key: None,
        };
        match ingestor.accept(source, inbound).await {
            Ok(IngestReceipt::Stored(id)) => {
                tracing::info!(event = %id, r#type = event_type, about = %notice.about, "operational event stored");
                self.remembered.insert(id);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, r#type = event_type, about = %notice.about, "operational event not stored");
            }
        }
    }
}

/// The newest operational event ids, at most [`REMEMBERED_EVENTS`].
#[derive(Debug, Default)]
struct Remembered {
    order: VecDeque<EventId>,
    ids: HashSet<EventId>,
}

impl Remembered {
    fn contains(&self, id: EventId) -> bool {
        self.ids.contains(&id)
    }

    fn insert(&mut self, id: EventId) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBERED_EVENTS {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }
}
