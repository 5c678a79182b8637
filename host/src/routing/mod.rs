//! Routing: which routes an event matches and which endpoints it is delivered to.
//!
//! Owns the route table and its semantics. A route matches when every criterion it sets holds
//! (AND): its source ids, its event-type globs, its NATS subject patterns and its CEL filter;
//! within one list any entry will do (OR), and an empty list means "any". A route with subject
//! patterns never matches an event without a subject. Cheap criteria are checked first, so a
//! filter only runs for events that already passed them; a filter that cannot give a boolean
//! counts as no match and is reported in the [`RoutingDecision`].
//!
//! Pure and synchronous: no I/O, no logging, no clocks. It must not know about plugins,
//! endpoints' targets or the store; it deals in ids only. The body is parsed as JSON only when a
//! filter that has to run reads `body`, and at most once per event.

mod filter;
mod pattern;
#[cfg(test)]
mod tests;

pub use filter::{
    EvaluationError, Filter, FilterError, FilterOutcome, MAX_FILTER_LENGTH, SyntaxProblem,
};
pub use pattern::{PatternError, SubjectPattern, TypePattern};

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use filter::EventBindings;

/// One route, validated: patterns parsed, filter compiled, references resolved to ids.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub id: String,
    /// Source ids; empty means any source.
    pub sources: Vec<String>,
    /// Event-type globs; empty means every type.
    pub types: Vec<TypePattern>,
    /// NATS subject patterns; empty means any subject, or none.
    pub subjects: Vec<SubjectPattern>,
    pub filter: Option<Filter>,
    /// Plugin ids of the route pipeline, in order. Routing only carries them.
    pub plugins: Vec<String>,
    /// Endpoint ids, in order.
    pub endpoints: Vec<String>,
}

/// The fields of an event that routing reads. Header names are expected in lower case.
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
    /// Ids of the matching routes, in table order.
    pub routes: Vec<String>,
    /// Endpoint ids to deliver to: the matching routes' endpoints, each once, in first-seen
    /// order. An endpoint named by several matching routes gets one delivery.
    pub endpoints: Vec<String>,
    /// Routes whose filter ran but could not give a boolean; they did not match.
    pub filter_failures: Vec<FilterFailure>,
    /// Whether the body was parsed as JSON for a filter.
    pub body_parsed: bool,
}

/// A route whose filter failed for this event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterFailure {
    pub route: String,
    pub error: EvaluationError,
}

/// Every route, in config order.
///
/// Routes are shared (`Arc`): a table rebuilt after one dynamic endpoint changed reuses every
/// other route as compiled, so building it costs a pointer per route, not a compile.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Arc<RouteSpec>>,
    /// Dynamic endpoints' `ordered_by`, swapped with their routes.
    orderings: std::collections::HashMap<String, crate::traffic::ordering::OrderedBy>,
    /// Which routes an event type can match, built at the first event the table routes (a
    /// table rebuilt after every change of a burst is indexed once, when it is used).
    by_type: OnceLock<TypeIndex>,
}

/// Routes by event type: an event only consults the routes naming its type exactly and the
/// routes with a type glob or no type at all, so thousands of routes on other types cost it
/// one hash lookup instead of a match each.
#[derive(Debug, Clone, Default)]
struct TypeIndex {
    /// Exact type → indexes of the routes whose every type is exact and one of them is it.
    exact: HashMap<Box<str>, Vec<usize>>,
    /// Indexes of the routes with a wildcard type or no type: consulted for every event.
    any: Vec<usize>,
}

impl TypeIndex {
    fn of(routes: &[Arc<RouteSpec>]) -> Self {
        let mut index = Self::default();
        for (position, route) in routes.iter().enumerate() {
            let exact: Option<Vec<&str>> = route.types.iter().map(TypePattern::exact).collect();
            match exact {
                Some(types) if !types.is_empty() => {
                    for event_type in types {
                        let positions = index.exact.entry(event_type.into()).or_default();
                        // The same type named twice by one route lists the route once.
                        if positions.last() != Some(&position) {
                            positions.push(position);
                        }
                    }
                }
                _ => index.any.push(position),
            }
        }
        index
    }

    /// Indexes of the routes `event_type` can match, in table order.
    fn candidates(&self, event_type: &str) -> Vec<usize> {
        let exact = self.exact.get(event_type).map_or(&[][..], Vec::as_slice);
        let mut candidates: Vec<usize> = exact.iter().chain(&self.any).copied().collect();
        if !exact.is_empty() && !self.any.is_empty() {
            candidates.sort_unstable();
        }
        candidates
    }
}

// === impl RouteSpec ===

impl RouteSpec {
    /// Sources, types and subjects: every criterion but the filter.
    fn matches_criteria(&self, event: &EventView<'_>) -> bool {
        let source = self.sources.is_empty() || self.sources.iter().any(|id| id == event.source);
        let event_type = self.types.is_empty()
            || self.types.iter().any(|pattern| pattern.matches(event.event_type));
        let subject = self.subjects.is_empty()
            || event.subject.is_some_and(|subject| {
                self.subjects.iter().any(|pattern| pattern.matches(subject))
            });
        source && event_type && subject
    }
}

// === impl RouteTable ===

impl RouteTable {
    pub fn new(routes: Vec<RouteSpec>) -> Self {
        Self::shared(routes.into_iter().map(Arc::new).collect())
    }

    /// A table of routes already compiled and shared with another table.
    pub fn shared(routes: Vec<Arc<RouteSpec>>) -> Self {
        Self { routes, orderings: HashMap::new(), by_type: OnceLock::new() }
    }

    /// The table with what these endpoints' deliveries are ordered by.
    pub fn with_orderings(
        mut self,
        orderings: std::collections::HashMap<String, crate::traffic::ordering::OrderedBy>,
    ) -> Self {
        self.orderings = orderings;
        self
    }

    /// What `endpoint`'s deliveries are ordered by, when the table knows it.
    pub fn ordered_by(&self, endpoint: &str) -> Option<&crate::traffic::ordering::OrderedBy> {
        self.orderings.get(endpoint)
    }

    /// The routes, in config order.
    pub fn routes(&self) -> impl Iterator<Item = &RouteSpec> {
        self.routes.iter().map(|route| &**route)
    }

    /// Indexes of the routes an event of `event_type` is checked against, in table order.
    fn candidates(&self, event_type: &str) -> Vec<usize> {
        self.by_type.get_or_init(|| TypeIndex::of(&self.routes)).candidates(event_type)
    }

    /// Runs every route that can match `event`'s type against it, in table order.
    pub fn evaluate(&self, event: &EventView<'_>) -> RoutingDecision {
        self.evaluate_matching(event).0
    }

    /// [`Self::evaluate`], with the matching routes themselves, in table order: what a caller
    /// needs beyond their ids without looking each one up in the whole table.
    pub fn evaluate_matching(&self, event: &EventView<'_>) -> (RoutingDecision, Vec<&RouteSpec>) {
        let mut matching = Vec::new();
        let mut decision = RoutingDecision::default();
        let mut bindings = EventBindings::new(event);
        for position in self.candidates(event.event_type) {
            let route = &self.routes[position];
            if !route.matches_criteria(event) {
                continue;
            }
            if let Some(filter) = &route.filter {
                match filter.evaluate_with(&mut bindings) {
                    FilterOutcome::Match => {}
                    FilterOutcome::NoMatch => continue,
                    FilterOutcome::Error(error) => {
                        decision
                            .filter_failures
                            .push(FilterFailure { route: route.id.clone(), error });
                        continue;
                    }
                }
            }
            decision.routes.push(route.id.clone());
            matching.push(&**route);
            for endpoint in &route.endpoints {
                // Routes name a handful of endpoints: a linear scan beats hashing here.
                if !decision.endpoints.contains(endpoint) {
                    decision.endpoints.push(endpoint.clone());
                }
            }
        }
        decision.body_parsed = bindings.body_parses() > 0;
        (decision, matching)
    }

    /// The endpoints of `route` if it is among the decision's matching routes, else none.
    pub fn endpoints_of(&self, decision: &RoutingDecision, route: &str) -> Vec<String> {
        match self.routes.iter().find(|spec| spec.id == route) {
            Some(spec) if decision.routes.contains(&spec.id) => spec.endpoints.clone(),
            _ => Vec::new(),
        }
    }
}
