//! The plugin stages around routing: verify, route plugins, endpoint transforms (DESIGN §7.2).
//!
//! Owns what each verdict and each failure means for an event and its deliveries, and the
//! `on_error` policies:
//! - `fail-closed`: the sender is asked to retry (HTTP 503 / NATS nak); nothing is stored.
//! - `fail-open`: the stage is skipped; the event goes on as the stage received it.
//! - `dead-letter`: the deliveries the failed stage would have fed are stored as dead letters
//!   carrying the error and the event as that stage received it; `replay` sends them as they
//!   are. A failed verify stage dead-letters every delivery routing gives the event (route
//!   plugins and transforms do not run), so nothing unverified is sent unless an operator
//!   replays it.
//!
//! `failure::retry` always asks the sender to retry, whatever the policy. An endpoint named by
//! several matching routes gets one delivery per event id: the first route, in config order,
//! decides its payload. Split events get new ids and are stored beside the original.
//! The plugin runtime does the calls; this module decides, and never names wasmtime.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{EndpointTarget, OnError, Topology};
use crate::event::{Event, EventId};
use crate::nats::template::{SubjectFields, SubjectTemplate};
use crate::plugin::{CallError, PluginHost};
use crate::routing::{EventView, RouteSpec, RouteTable};
use crate::store::{NewDelivery, Payload};
use crate::telemetry::{Metrics, PluginOutcome};
use crate::traffic::ordering::OrderedBy;
use crate::verdict::{GuestFailure, Rejection, Stage, Verdict};

/// Why the sender must retry: nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error("plugin `{plugin}` asked for a retry: {message}")]
    Retry { plugin: String, message: String },
    #[error("plugin `{plugin}` failed and fails closed: {reason}")]
    Closed { plugin: String, reason: String },
    #[error("every plugin thread is busy")]
    Busy,
}

/// What the verify stage decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Go on with this event.
    Accept(Event),
    /// Answer 202, store nothing.
    Drop,
    /// Answer the sender with this refusal, store nothing.
    Reject(Rejection),
    /// A plugin failed under `dead-letter`: store the event with its deliveries dead.
    DeadLetter(Event, String),
}

/// Every event and delivery that one accepted event produces.
#[derive(Debug, Clone)]
pub struct FanOut {
    /// The id of the event the fan-out started from; it is stored already.
    origin: EventId,
    subjects: Arc<HashMap<String, SubjectTemplate>>,
    /// Endpoint id → what its deliveries are ordered by.
    orderings: Orderings,
    /// Events made by splits, stored beside the original.
    pub derived: Vec<Event>,
    pub deliveries: Vec<NewDelivery>,
    /// How many routes matched (plugins may still have dropped everything).
    pub routes_matched: usize,
}

/// How one plugin stage ended for one event.
enum StageResult {
    /// The events that go on (none for a drop, several for a split).
    Continue(Vec<Event>),
    /// Dead-letter this event's deliveries on this path.
    DeadLetter(Box<Event>, String),
}

/// The route table in use, swapped whole when the admin API adds, changes or removes an
/// endpoint's route: an event is always routed by one table, old or new, never a mix.
pub type LiveRoutes = Arc<arc_swap::ArcSwap<RouteTable>>;

/// The stages, with the plugins they call.
#[derive(Debug, Clone)]
pub struct Pipeline {
    plugins: Option<Arc<PluginHost>>,
    routes: LiveRoutes,
    policies: HashMap<String, OnError>,
    /// Endpoint id → its transform plugin.
    transforms: HashMap<String, String>,
    /// NATS endpoint id → its subject template.
    subjects: Arc<HashMap<String, SubjectTemplate>>,
    /// Config endpoint id → what its deliveries are ordered by (dynamic endpoints' are in
    /// the route table).
    orderings: Arc<HashMap<String, OrderedBy>>,
    metrics: Arc<Metrics>,
}

/// Where the order key of a delivery comes from: config endpoints' `ordered_by`, then the
/// route table's (dynamic endpoints).
#[derive(Debug, Clone, Default)]
struct Orderings {
    config: Arc<HashMap<String, OrderedBy>>,
    table: Arc<RouteTable>,
}

impl Orderings {
    fn of(&self, endpoint: &str) -> Option<&OrderedBy> {
        self.config.get(endpoint).or_else(|| self.table.ordered_by(endpoint))
    }
}

impl Pipeline {
    pub fn new(
        topology: &Topology,
        routes: LiveRoutes,
        plugins: Option<Arc<PluginHost>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let policies =
            topology.plugins.values().map(|plugin| (plugin.id.clone(), plugin.on_error)).collect();
        let transforms = topology
            .endpoints
            .values()
            .filter_map(|endpoint| Some((endpoint.id.clone(), endpoint.transform.clone()?)))
            .collect();
        let subjects = topology
            .endpoints
            .values()
            .filter_map(|endpoint| match &endpoint.target {
                EndpointTarget::Nats { subject, .. } => {
                    Some((endpoint.id.clone(), subject.clone()))
                }
                EndpointTarget::Http { .. } => None,
            })
            .collect();
        let orderings = topology
            .endpoints
            .values()
            .filter_map(|endpoint| Some((endpoint.id.clone(), endpoint.ordered_by.clone()?)))
            .collect();
        Self {
            plugins,
            routes,
            policies,
            transforms,
            subjects: Arc::new(subjects),
            orderings: Arc::new(orderings),
            metrics,
        }
    }

    /// The route table events are routed by now.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.routes.load_full()
    }

    /// Runs the source's verify plugins in order.
    pub async fn verify(
        &self,
        plugins: &[String],
        mut event: Event,
    ) -> Result<Verified, StageError> {
        for plugin in plugins {
            let verdict = match self.call(plugin, &event, Stage::Verify).await {
                Ok(verdict) => verdict,
                Err(Failure::Stop(error)) => return Err(error),
                Err(Failure::Policy(reason)) => match self.policy(plugin) {
                    OnError::FailClosed => return Err(closed(plugin, reason)),
                    OnError::FailOpen => continue,
                    OnError::DeadLetter => {
                        return Ok(Verified::DeadLetter(event, failed(plugin, &reason)));
                    }
                },
            };
            match verdict {
                Verdict::Drop => return Ok(Verified::Drop),
                Verdict::Pass => {}
                Verdict::Modify(patch) => patch.apply(&mut event),
                Verdict::Replace(replacement) => event = replacement.replacing(&event),
                Verdict::Reject(rejection) => return Ok(Verified::Reject(rejection)),
                // Refused by `Verdict::validate` for this stage.
                Verdict::Split(_) => unreachable!("split is invalid in the verify stage"),
            }
        }
        Ok(Verified::Accept(event))
    }

    /// Routes `event`, runs each matching route's plugins and each endpoint's transform, and
    /// answers the deliveries. With `only_route`, the other routes are ignored (replay).
    pub async fn fan_out(
        &self,
        event: &Event,
        only_route: Option<&str>,
    ) -> Result<FanOut, StageError> {
        let table = self.routes.load_full();
        let orderings = Orderings { config: self.orderings.clone(), table: table.clone() };
        let mut fan_out = FanOut::new(event.id, self.subjects.clone(), orderings);
        for route in matching_routes(&table, event, only_route) {
            fan_out.routes_matched += 1;
            let mut events = vec![event.clone()];
            for plugin in &route.plugins {
                let mut next = Vec::with_capacity(events.len());
                for current in events {
                    match self.stage(plugin, current, Stage::Route).await? {
                        StageResult::Continue(produced) => next.extend(produced),
                        StageResult::DeadLetter(failed_event, reason) => {
                            let failed_event = *failed_event;
                            for endpoint in &route.endpoints {
                                fan_out.push(endpoint, &failed_event, Some(reason.clone()));
                            }
                        }
                    }
                }
                events = next;
            }
            for routed in &events {
                for endpoint in &route.endpoints {
                    if fan_out.has(endpoint, routed.id) {
                        continue;
                    }
                    let Some(transform) = self.transforms.get(endpoint) else {
                        fan_out.push(endpoint, routed, None);
                        continue;
                    };
                    match self.stage(transform, routed.clone(), Stage::Endpoint).await? {
                        StageResult::Continue(shaped) => {
                            for delivered in &shaped {
                                fan_out.push_keyed(endpoint, delivered, routed, None);
                            }
                        }
                        StageResult::DeadLetter(failed_event, reason) => {
                            fan_out.push_keyed(endpoint, &failed_event, routed, Some(reason));
                        }
                    }
                }
            }
        }
        Ok(fan_out)
    }

    /// One delivery of `event` to `endpoint`, made without routing and without plugins (an
    /// endpoint's test event): its subject and order key as routing would give them.
    pub fn direct(&self, event: &Event, endpoint: &str) -> NewDelivery {
        let table = self.routes.load_full();
        let orderings = Orderings { config: self.orderings.clone(), table };
        let mut fan_out = FanOut::new(event.id, self.subjects.clone(), orderings);
        fan_out.push(endpoint, event, None);
        fan_out.deliveries.remove(0)
    }

    /// Every delivery routing gives `event`, dead with `reason` (a verify plugin failed under
    /// `dead-letter`); no plugin runs.
    pub fn dead_letters(&self, event: &Event, reason: &str) -> FanOut {
        let table = self.routes.load_full();
        let orderings = Orderings { config: self.orderings.clone(), table: table.clone() };
        let mut fan_out = FanOut::new(event.id, self.subjects.clone(), orderings);
        for route in matching_routes(&table, event, None) {
            fan_out.routes_matched += 1;
            for endpoint in &route.endpoints {
                if !fan_out.has(endpoint, event.id) {
                    fan_out.push(endpoint, event, Some(reason.to_owned()));
                }
            }
        }
        fan_out
    }

    /// One plugin on one event in a route or endpoint stage, with its policy applied.
    async fn stage(
        &self,
        plugin: &str,
        event: Event,
        stage: Stage,
    ) -> Result<StageResult, StageError> {
        let verdict = match self.call(plugin, &event, stage).await {
            Ok(verdict) => verdict,
            Err(Failure::Stop(error)) => return Err(error),
            Err(Failure::Policy(reason)) => {
                return match self.policy(plugin) {
                    OnError::FailClosed => Err(closed(plugin, reason)),
                    OnError::FailOpen => Ok(StageResult::Continue(vec![event])),
                    OnError::DeadLetter => {
                        Ok(StageResult::DeadLetter(Box::new(event), failed(plugin, &reason)))
                    }
                };
            }
        };
        let events = match verdict {
            Verdict::Drop => Vec::new(),
            Verdict::Pass => vec![event],
            Verdict::Modify(patch) => {
                let mut modified = event;
                patch.apply(&mut modified);
                vec![modified]
            }
            Verdict::Replace(replacement) => vec![replacement.replacing(&event)],
            Verdict::Split(parts) => {
                parts.into_iter().map(|part| part.split_from(&event, EventId::generate())).collect()
            }
            Verdict::Reject(_) => unreachable!("reject is invalid outside the verify stage"),
        };
        Ok(StageResult::Continue(events))
    }

    /// Calls `plugin`, validating its verdict for `stage`, and counts the outcome.
    async fn call(&self, plugin: &str, event: &Event, stage: Stage) -> Result<Verdict, Failure> {
        let Some(host) = &self.plugins else {
            return Err(Failure::Policy(format!("plugin `{plugin}` is not loaded")));
        };
        let report = host.call(plugin, event).await;
        let outcome = match report.answer {
            Ok(Ok(verdict)) => match verdict.validate(stage) {
                Ok(()) => Ok(verdict),
                Err(invalid) => Err(Failure::Policy(format!("invalid verdict: {invalid}"))),
            },
            Ok(Err(GuestFailure::Retry(message))) => {
                Err(Failure::Stop(StageError::Retry { plugin: plugin.to_owned(), message }))
            }
            Ok(Err(GuestFailure::Fatal(message))) => {
                Err(Failure::Policy(format!("fatal: {message}")))
            }
            Err(CallError::Busy) => Err(Failure::Stop(StageError::Busy)),
            Err(error) => Err(Failure::Policy(error.to_string())),
        };
        let counted = match &outcome {
            Ok(_) => PluginOutcome::Ok,
            Err(Failure::Stop(StageError::Busy)) => PluginOutcome::Busy,
            Err(Failure::Stop(_)) => PluginOutcome::Retry,
            Err(Failure::Policy(reason)) => {
                tracing::warn!(%plugin, event = %event.id, ?stage, %reason, "plugin failed");
                self.metrics.record_plugin_failure(plugin, reason, crate::event::now_millis());
                PluginOutcome::Failed
            }
        };
        self.metrics.count_plugin_call(plugin, counted, report.elapsed.as_secs_f64());
        crate::traces::plugin_call(plugin, stage, report.elapsed, counted);
        outcome
    }

    fn policy(&self, plugin: &str) -> OnError {
        self.policies.get(plugin).copied().unwrap_or(OnError::FailClosed)
    }
}

/// How a call failed: a stop (retry or backpressure) ignores `on_error`; the rest obey it.
enum Failure {
    Stop(StageError),
    Policy(String),
}

fn closed(plugin: &str, reason: String) -> StageError {
    StageError::Closed { plugin: plugin.to_owned(), reason }
}

fn failed(plugin: &str, reason: &str) -> String {
    format!("plugin `{plugin}` failed: {reason}")
}

// === impl FanOut ===

impl FanOut {
    fn new(
        origin: EventId,
        subjects: Arc<HashMap<String, SubjectTemplate>>,
        orderings: Orderings,
    ) -> Self {
        Self {
            origin,
            subjects,
            orderings,
            derived: Vec::new(),
            deliveries: Vec::new(),
            routes_matched: 0,
        }
    }

    fn has(&self, endpoint: &str, event: EventId) -> bool {
        self.deliveries
            .iter()
            .any(|delivery| delivery.event == event && delivery.endpoint == endpoint)
    }

    fn push(&mut self, endpoint: &str, event: &Event, dead_letter: Option<String>) {
        self.push_keyed(endpoint, event, event, dead_letter);
    }

    /// Pushes a delivery of `event` whose order key comes from `keyed`: the event as routed,
    /// before the endpoint's transform reshaped it (`ordered_by` names the incoming shape).
    fn push_keyed(
        &mut self,
        endpoint: &str,
        event: &Event,
        keyed: &Event,
        dead_letter: Option<String>,
    ) {
        if self.has(endpoint, event.id) {
            return;
        }
        if event.id != self.origin && !self.derived.iter().any(|derived| derived.id == event.id) {
            self.derived.push(event.clone());
        }
        self.deliveries.push(NewDelivery {
            endpoint: endpoint.to_owned(),
            event: event.id,
            payload: Payload {
                body: event.body.clone(),
                content_type: event.header("content-type").map(str::to_owned),
                subject: self.subjects.get(endpoint).map(|template| {
                    template.render(&SubjectFields {
                        source: &event.source,
                        event_type: &event.event_type,
                        subject: event.subject.as_deref(),
                        metadata: &event.metadata,
                    })
                }),
            },
            dead_letter,
            order_key: self
                .orderings
                .of(endpoint)
                .and_then(|ordered_by| ordered_by.key_of(&keyed.body, &keyed.headers)),
        });
    }
}

/// The routes of `table` that match `event`, in table order; only `only_route` if given.
fn matching_routes<'a>(
    table: &'a RouteTable,
    event: &Event,
    only_route: Option<&'a str>,
) -> impl Iterator<Item = &'a RouteSpec> + 'a {
    let id = event.id.to_string();
    let (decision, matching) = table.evaluate_matching(&EventView {
        id: &id,
        source: &event.source,
        event_type: &event.event_type,
        subject: event.subject.as_deref(),
        headers: &event.headers,
        body: &event.body,
    });
    for failure in &decision.filter_failures {
        tracing::debug!(route = %failure.route, event = %event.id, error = %failure.error, "route filter failed; no match");
    }
    matching.into_iter().filter(move |route| only_route.is_none_or(|only| only == route.id))
}

#[cfg(test)]
mod tests;
