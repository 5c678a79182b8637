//! Routing: which endpoints an event goes to. Pure and synchronous; no I/O.
//!
//! A route matches when every criterion it sets holds (sources, event-type globs, NATS
//! subject patterns, CEL filter); within a list, any entry will do; an empty list means
//! "any". The [`RouteTable`] evaluates every route and merges their endpoints, each once,
//! in first-seen order. The body is parsed as JSON only if a filter needs it, once per event.

mod filter;
mod pattern;
#[cfg(test)]
mod tests;

pub use filter::{Filter, FilterError, FilterOutcome};
pub use pattern::{PatternError, SubjectPattern, TypePattern};

/// One route, compiled.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub id: String,
    pub sources: Vec<String>,
    pub types: Vec<TypePattern>,
    pub subjects: Vec<SubjectPattern>,
    pub filter: Option<Filter>,
    pub plugins: Vec<String>,
    pub endpoints: Vec<String>,
}

/// The fields routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub id: &'a str,
    pub source: &'a str,
    pub event_type: &'a str,
    pub subject: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What routing decided for one event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingDecision {
    /// Ids of matching routes, in table order.
    pub routes: Vec<String>,
    /// Endpoints to deliver to, each once, in first-seen order.
    pub endpoints: Vec<String>,
    /// Routes whose filter failed to evaluate (counted as not matching), with the reason.
    pub filter_errors: Vec<(String, String)>,
    /// Whether the body was parsed as JSON for a filter.
    pub body_parsed: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<RouteSpec>,
}

impl RouteTable {
    pub fn new(routes: Vec<RouteSpec>) -> Self {
        Self { routes }
    }

    pub fn evaluate(&self, event: &EventView<'_>) -> RoutingDecision {
        let mut decision = RoutingDecision::default();
        let mut bindings: Option<filter::Bindings<'_>> = None;
        for route in &self.routes {
            if !matches_static(route, event) {
                continue;
            }
            if let Some(filter) = &route.filter {
                let needs_body = filter.uses_body();
                if bindings.as_ref().is_none_or(|bound| needs_body && !bound.has_body) {
                    bindings = Some(filter::bind(event, needs_body));
                    decision.body_parsed |= needs_body;
                }
                let bound = bindings.as_ref().expect("bound just above");
                match filter.evaluate(bound) {
                    FilterOutcome::Match => {}
                    FilterOutcome::NoMatch => continue,
                    FilterOutcome::Error(reason) => {
                        decision.filter_errors.push((route.id.clone(), reason));
                        continue;
                    }
                }
            }
            decision.routes.push(route.id.clone());
            for endpoint in &route.endpoints {
                if !decision.endpoints.contains(endpoint) {
                    decision.endpoints.push(endpoint.clone());
                }
            }
        }
        decision
    }

    /// The endpoints of `route`, if it is among the decision's matching routes.
    pub fn endpoints_of(&self, decision: &RoutingDecision, route: &str) -> Vec<String> {
        if !decision.routes.iter().any(|matched| matched == route) {
            return Vec::new();
        }
        self.routes
            .iter()
            .find(|spec| spec.id == route)
            .map(|spec| spec.endpoints.clone())
            .unwrap_or_default()
    }
}

fn matches_static(route: &RouteSpec, event: &EventView<'_>) -> bool {
    let source = route.sources.is_empty() || route.sources.iter().any(|s| s == event.source);
    let event_type =
        route.types.is_empty() || route.types.iter().any(|p| p.matches(event.event_type));
    let subject = route.subjects.is_empty()
        || event.subject.is_some_and(|subject| route.subjects.iter().any(|p| p.matches(subject)));
    source && event_type && subject
}
