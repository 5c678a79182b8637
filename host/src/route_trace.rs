//! What the router would do with one event, explained: the core of `switchyard routes test`.
//!
//! Owns [`trace`], a function from a validated [`Topology`] and one [`Event`] to a [`Trace`]:
//! the verify stage's verdicts, for every route whether it matched and, if not, which
//! criterion said no (source, type glob, subject wildcard, CEL filter), each route plugin's
//! verdicts in order, and the deliveries that would be stored with their payloads. It applies
//! the same rules as the pipeline (`on_error` policies, an endpoint named by several matching
//! routes gets one delivery per event and the first route decides its payload, split events
//! beside the original).
//!
//! Pure: plugins are reached through the [`PluginCaller`] the caller passes (the CLI runs them
//! in the sandbox on its own thread), nothing is stored, nothing is sent, no clock is read.
//! Split parts get ids derived from the event's own, so a trace is reproducible. It must not
//! print: rendering is the caller's (the CLI's text and JSON today, a dashboard page later).

use base64::Engine as _;
use serde::Serialize;

use crate::config::{EndpointTarget, OnError, Topology};
use crate::event::{Event, EventId};
use crate::nats::template::SubjectFields;
use crate::routing::{EventView, FilterOutcome, RouteSpec};
use crate::verdict::{GuestFailure, Stage, Verdict};

/// A plugin's answer to one call: its verdict or failure, or why the call gave none (a trap,
/// a timeout, a plugin that cannot be loaded).
pub type PluginAnswer = Result<Result<Verdict, GuestFailure>, String>;

/// Runs one plugin on one event.
pub trait PluginCaller {
    fn call(&mut self, plugin: &str, event: &Event) -> PluginAnswer;
}

/// Everything one event would go through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub event: TracedEvent,
    /// The source's verify plugins, in order, as far as they ran.
    pub verify: Vec<PluginStep>,
    pub outcome: Outcome,
    /// Every route in config order; empty when the event was not accepted.
    pub routes: Vec<RouteTrace>,
    /// What would be stored for delivery, in the order the pipeline would store it.
    pub deliveries: Vec<DeliveryTrace>,
}

/// The fields of an event that a trace shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TracedEvent {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: Option<String>,
}

/// How the event ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored with its deliveries; the sender gets 202.
    Accepted,
    /// A verify plugin dropped it: 202, nothing stored.
    Dropped { plugin: String },
    /// A verify plugin refused it: the sender gets this status.
    Rejected { plugin: String, status: u16, code: String, message: String },
    /// A plugin asked for a retry or failed closed: 503, nothing stored.
    Retry { plugin: String, reason: String },
}

/// One plugin call and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginStep {
    pub plugin: String,
    /// `verify`, `route` (a route's plugin) or `endpoint` (an endpoint's transform).
    pub stage: &'static str,
    /// The id of the event the plugin was given.
    pub event: String,
    /// `pass`, `drop`, `modify`, `replace`, `split into 2`, `reject 401 code: message`, or the
    /// failure with the policy that applied to it.
    pub verdict: String,
}

/// One route: whether it matched, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTrace {
    pub route: String,
    pub matched: bool,
    /// Each criterion the route sets, in the order routing checks them, up to the first that
    /// says no.
    pub checks: Vec<Check>,
    /// The route's plugin calls, in order (only when it matched).
    pub plugins: Vec<PluginStep>,
    pub endpoints: Vec<String>,
}

/// One criterion of a route against the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `source`, `type`, `subject` or `filter`.
    pub criterion: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// A delivery the event would get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryTrace {
    pub endpoint: String,
    /// The route that decided its payload.
    pub route: String,
    /// The id of the event delivered (the original, or a split part).
    pub event: String,
    pub content_type: Option<String>,
    /// The NATS subject, for NATS endpoints.
    pub subject: Option<String>,
    /// The payload as UTF-8 text when it is, else absent (see `body_base64`).
    pub body: Option<String>,
    pub body_base64: Option<String>,
    /// Set when the delivery would be stored as a dead letter, with the reason.
    pub dead_letter: Option<String>,
}

/// Traces `event` through `topology`'s verify stage, routes, route plugins and endpoint
/// transforms. The event's source must be one of the topology's (the caller checks).
pub fn trace(topology: &Topology, event: Event, plugins: &mut dyn PluginCaller) -> Trace {
    let mut tracer = Tracer { topology, plugins, derived: 0 };
    let traced = TracedEvent::of(&event);
    let verify_plugins =
        topology.sources.get(&event.source).map(|source| source.verify.clone()).unwrap_or_default();
    let mut verify = Vec::new();
    let mut event = event;
    let mut dead_reason = None;
    for plugin in &verify_plugins {
        match tracer.stage(plugin, event.clone(), Stage::Verify, &mut verify) {
            StepResult::Continue(mut events) => match events.pop() {
                Some(next) => event = next,
                None => {
                    let outcome = Outcome::Dropped { plugin: plugin.clone() };
                    return Trace { event: traced, verify, outcome, ..Trace::empty() };
                }
            },
            StepResult::Rejected { status, code, message } => {
                let outcome = Outcome::Rejected { plugin: plugin.clone(), status, code, message };
                return Trace { event: traced, verify, outcome, ..Trace::empty() };
            }
            StepResult::Retry(reason) => {
                let outcome = Outcome::Retry { plugin: plugin.clone(), reason };
                return Trace { event: traced, verify, outcome, ..Trace::empty() };
            }
            StepResult::DeadLetter(_, reason) => {
                dead_reason = Some(reason);
                break;
            }
        }
    }
    let mut routes = Vec::new();
    let mut deliveries = Vec::new();
    for route in topology.routes.values().map(|route| &route.spec) {
        let (matched, checks) = route_checks(route, &event);
        let mut route_trace = RouteTrace {
            route: route.id.clone(),
            matched,
            checks,
            plugins: Vec::new(),
            endpoints: route.endpoints.clone(),
        };
        if matched {
            if let Some(reason) = &dead_reason {
                for endpoint in &route.endpoints {
                    tracer.push(&mut deliveries, endpoint, &route.id, &event, Some(reason.clone()));
                }
            } else if let Err(outcome) =
                tracer.fan_out(route, &event, &mut route_trace.plugins, &mut deliveries)
            {
                routes.push(route_trace);
                return Trace { event: traced, verify, outcome, routes, deliveries: Vec::new() };
            }
        }
        routes.push(route_trace);
    }
    Trace { event: traced, verify, outcome: Outcome::Accepted, routes, deliveries }
}

/// Whether `route` matches `event`, with every criterion it sets checked up to the first that
/// fails (the order routing uses: source, type, subject, then the filter).
pub fn route_checks(route: &RouteSpec, event: &Event) -> (bool, Vec<Check>) {
    let mut checks = Vec::new();
    if !route.sources.is_empty() {
        let passed = route.sources.contains(&event.source);
        let listed = quoted(route.sources.iter().map(String::as_str));
        let detail = if passed {
            format!("source `{}` is in {listed}", event.source)
        } else {
            format!("source `{}` is not in {listed}", event.source)
        };
        checks.push(Check { criterion: "source", passed, detail });
        if !passed {
            return (false, checks);
        }
    }
    if !route.types.is_empty() {
        let found = route.types.iter().find(|pattern| pattern.matches(&event.event_type));
        let detail = match found {
            Some(pattern) => format!("type `{}` matches `{pattern}`", event.event_type),
            None => format!(
                "type `{}` matches none of {}",
                event.event_type,
                quoted(route.types.iter().map(|pattern| pattern.as_str()))
            ),
        };
        checks.push(Check { criterion: "type", passed: found.is_some(), detail });
        if found.is_none() {
            return (false, checks);
        }
    }
    if !route.subjects.is_empty() {
        let patterns = quoted(route.subjects.iter().map(|pattern| pattern.as_str()));
        let (passed, detail) = match &event.subject {
            None => (false, format!("the event has no subject; the route wants {patterns}")),
            Some(subject) => match route.subjects.iter().find(|pattern| pattern.matches(subject)) {
                Some(pattern) => (true, format!("subject `{subject}` matches `{pattern}`")),
                None => (false, format!("subject `{subject}` matches none of {patterns}")),
            },
        };
        checks.push(Check { criterion: "subject", passed, detail });
        if !passed {
            return (false, checks);
        }
    }
    if let Some(filter) = &route.filter {
        let id = event.id.to_string();
        let view = EventView {
            id: &id,
            source: &event.source,
            event_type: &event.event_type,
            subject: event.subject.as_deref(),
            headers: &event.headers,
            body: &event.body,
        };
        let expression = filter.as_str();
        let (passed, detail) = match filter.evaluate(&view) {
            FilterOutcome::Match => (true, format!("`{expression}` is true")),
            FilterOutcome::NoMatch => (false, format!("`{expression}` is false")),
            FilterOutcome::Error(error) => (false, format!("`{expression}`: {error}")),
        };
        checks.push(Check { criterion: "filter", passed, detail });
        if !passed {
            return (false, checks);
        }
    }
    (true, checks)
}

/// How one plugin call ended for the trace.
enum StepResult {
    /// The events that go on (none for a drop, several for a split).
    Continue(Vec<Event>),
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The sender would be asked to retry (a `retry` failure, or `fail-closed`).
    Retry(String),
    /// `dead-letter`: this event's deliveries on this path are stored dead.
    DeadLetter(Box<Event>, String),
}

struct Tracer<'a> {
    topology: &'a Topology,
    plugins: &'a mut dyn PluginCaller,
    /// How many split parts were made, for their ids.
    derived: u128,
}

// === impl Tracer ===

impl Tracer<'_> {
    /// One route's plugins, then each of its endpoints' transforms; `Err` when the sender
    /// would be asked to retry.
    fn fan_out(
        &mut self,
        route: &RouteSpec,
        event: &Event,
        steps: &mut Vec<PluginStep>,
        deliveries: &mut Vec<DeliveryTrace>,
    ) -> Result<(), Outcome> {
        let mut events = vec![event.clone()];
        for plugin in &route.plugins {
            let mut next = Vec::with_capacity(events.len());
            for current in events {
                match self.stage(plugin, current, Stage::Route, steps) {
                    StepResult::Continue(produced) => next.extend(produced),
                    StepResult::DeadLetter(failed, reason) => {
                        for endpoint in &route.endpoints {
                            self.push(
                                deliveries,
                                endpoint,
                                &route.id,
                                &failed,
                                Some(reason.clone()),
                            );
                        }
                    }
                    StepResult::Retry(reason) => {
                        return Err(Outcome::Retry { plugin: plugin.clone(), reason });
                    }
                    StepResult::Rejected { .. } => {
                        unreachable!("a reject is refused outside the verify stage")
                    }
                }
            }
            events = next;
        }
        for routed in &events {
            for endpoint in &route.endpoints {
                if has(deliveries, endpoint, routed.id) {
                    continue;
                }
                let transform =
                    self.topology.endpoints.get(endpoint).and_then(|spec| spec.transform.clone());
                let Some(transform) = transform else {
                    self.push(deliveries, endpoint, &route.id, routed, None);
                    continue;
                };
                match self.stage(&transform, routed.clone(), Stage::Endpoint, steps) {
                    StepResult::Continue(shaped) => {
                        for delivered in &shaped {
                            self.push(deliveries, endpoint, &route.id, delivered, None);
                        }
                    }
                    StepResult::DeadLetter(failed, reason) => {
                        self.push(deliveries, endpoint, &route.id, &failed, Some(reason));
                    }
                    StepResult::Retry(reason) => {
                        return Err(Outcome::Retry { plugin: transform, reason });
                    }
                    StepResult::Rejected { .. } => {
                        unreachable!("a reject is refused outside the verify stage")
                    }
                }
            }
        }
        Ok(())
    }

    /// Calls `plugin` on `event` in `stage`, records the step, and applies the verdict or the
    /// plugin's `on_error` policy.
    fn stage(
        &mut self,
        plugin: &str,
        event: Event,
        stage: Stage,
        steps: &mut Vec<PluginStep>,
    ) -> StepResult {
        let stage_name = match stage {
            Stage::Verify => "verify",
            Stage::Route => "route",
            Stage::Endpoint => "endpoint",
        };
        let mut step = PluginStep {
            plugin: plugin.to_owned(),
            stage: stage_name,
            event: event.id.to_string(),
            verdict: String::new(),
        };
        let answer = self.plugins.call(plugin, &event).and_then(|answer| match answer {
            Ok(verdict) => match verdict.validate(stage) {
                Ok(()) => Ok(Ok(verdict)),
                Err(invalid) => Err(format!("invalid verdict: {invalid}")),
            },
            Err(GuestFailure::Fatal(message)) => Err(format!("fatal: {message}")),
            Err(GuestFailure::Retry(message)) => Ok(Err(message)),
        });
        let result = match answer {
            Ok(Ok(verdict)) => {
                step.verdict = describe(&verdict);
                self.apply(verdict, event)
            }
            Ok(Err(message)) => {
                step.verdict = format!("retry: {message}");
                StepResult::Retry(format!("plugin `{plugin}` asked for a retry: {message}"))
            }
            Err(reason) => {
                let policy = self
                    .topology
                    .plugins
                    .get(plugin)
                    .map_or(OnError::FailClosed, |binding| binding.on_error);
                let (name, result) = match policy {
                    OnError::FailClosed => (
                        "fail-closed",
                        StepResult::Retry(format!(
                            "plugin `{plugin}` failed and fails closed: {reason}"
                        )),
                    ),
                    OnError::FailOpen => ("fail-open", StepResult::Continue(vec![event])),
                    OnError::DeadLetter => (
                        "dead-letter",
                        StepResult::DeadLetter(
                            Box::new(event),
                            format!("plugin `{plugin}` failed: {reason}"),
                        ),
                    ),
                };
                step.verdict = format!("failed ({name}): {reason}");
                result
            }
        };
        steps.push(step);
        result
    }

    fn apply(&mut self, verdict: Verdict, event: Event) -> StepResult {
        match verdict {
            Verdict::Drop => StepResult::Continue(Vec::new()),
            Verdict::Pass => StepResult::Continue(vec![event]),
            Verdict::Modify(patch) => {
                let mut modified = event;
                patch.apply(&mut modified);
                StepResult::Continue(vec![modified])
            }
            Verdict::Replace(replacement) => {
                StepResult::Continue(vec![replacement.replacing(&event)])
            }
            Verdict::Split(parts) => StepResult::Continue(
                parts
                    .into_iter()
                    .map(|part| {
                        self.derived += 1;
                        let id =
                            u128::from_be_bytes(event.id.to_bytes()).wrapping_add(self.derived);
                        part.split_from(&event, EventId::from_bytes(id.to_be_bytes()))
                    })
                    .collect(),
            ),
            Verdict::Reject(rejection) => StepResult::Rejected {
                status: rejection.status,
                code: rejection.code,
                message: rejection.message,
            },
        }
    }

    fn push(
        &self,
        deliveries: &mut Vec<DeliveryTrace>,
        endpoint: &str,
        route: &str,
        event: &Event,
        dead_letter: Option<String>,
    ) {
        if has(deliveries, endpoint, event.id) {
            return;
        }
        let subject = match self.topology.endpoints.get(endpoint).map(|spec| &spec.target) {
            Some(EndpointTarget::Nats { subject, .. }) => Some(subject.render(&SubjectFields {
                source: &event.source,
                event_type: &event.event_type,
                subject: event.subject.as_deref(),
                metadata: &event.metadata,
            })),
            _ => None,
        };
        let (body, body_base64) = match std::str::from_utf8(&event.body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(base64::engine::general_purpose::STANDARD.encode(&event.body))),
        };
        deliveries.push(DeliveryTrace {
            endpoint: endpoint.to_owned(),
            route: route.to_owned(),
            event: event.id.to_string(),
            content_type: event.header("content-type").map(str::to_owned),
            subject,
            body,
            body_base64,
            dead_letter,
        });
    }
}

fn has(deliveries: &[DeliveryTrace], endpoint: &str, event: EventId) -> bool {
    let event = event.to_string();
    deliveries.iter().any(|delivery| delivery.endpoint == endpoint && delivery.event == event)
}

/// A verdict in a few words.
fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Drop => "drop".into(),
        Verdict::Pass => "pass".into(),
        Verdict::Modify(_) => "modify".into(),
        Verdict::Replace(_) => "replace".into(),
        Verdict::Split(parts) => format!("split into {}", parts.len()),
        Verdict::Reject(rejection) => {
            format!("reject {} `{}`: {}", rejection.status, rejection.code, rejection.message)
        }
    }
}

fn quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

// === impl TracedEvent ===

impl TracedEvent {
    fn of(event: &Event) -> Self {
        Self {
            id: event.id.to_string(),
            source: event.source.clone(),
            event_type: event.event_type.clone(),
            subject: event.subject.clone(),
        }
    }
}

// === impl Trace ===

impl Trace {
    fn empty() -> Self {
        Self {
            event: TracedEvent {
                id: String::new(),
                source: String::new(),
                event_type: String::new(),
                subject: None,
            },
            verify: Vec::new(),
            outcome: Outcome::Accepted,
            routes: Vec::new(),
            deliveries: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
