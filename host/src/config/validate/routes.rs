//! `[routes.<id>]`: references, type and subject patterns, and the CEL filter.

use super::{Ids, Validator};
use crate::config::raw;
use crate::config::topology::*;
use crate::routing::{Filter, RouteSpec, SubjectPattern, TypePattern};

impl Validator<'_> {
    pub(super) fn route(&mut self, id: &str, route: raw::RouteConfig, ids: &Ids) -> Route {
        let at = |key: &str| format!("routes.{id}.{key}");
        // The built-in source of operational events is routed like a declared one.
        let declared: Vec<String> =
            route.from.iter().filter(|id| *id != crate::notify::SOURCE).cloned().collect();
        self.references(&at("from"), &declared, &ids.sources, "source");
        self.references(&at("plugins"), &route.plugins, &ids.plugins, "plugin");
        if route.to.is_empty() {
            self.error(at("to"), "a route needs at least one endpoint", "to = [\"billing\"]");
        }
        self.references(&at("to"), &route.to, &ids.endpoints, "endpoint");
        let mut types = Vec::new();
        for (index, pattern) in route.types.iter().enumerate() {
            match TypePattern::parse(pattern) {
                Ok(pattern) => types.push(pattern),
                Err(error) => self.error(
                    format!("{}[{index}]", at("types")),
                    error.to_string(),
                    "types = [\"github.*\"]",
                ),
            }
        }
        let mut subjects = Vec::new();
        for (index, pattern) in route.subjects.iter().enumerate() {
            match SubjectPattern::parse(pattern) {
                Ok(pattern) => subjects.push(pattern),
                Err(error) => self.error(
                    format!("{}[{index}]", at("subjects")),
                    error.to_string(),
                    "subjects = [\"orders.*.created\"]",
                ),
            }
        }
        let filter = route.filter.as_deref().and_then(|source| match Filter::compile(source) {
            Ok(filter) => Some(filter),
            Err(error) => {
                self.error(
                    at("filter"),
                    format!("invalid CEL expression:\n{error}"),
                    "filter = 'body.repository.private == false'",
                );
                None
            }
        });
        Route {
            spec: RouteSpec {
                id: id.to_owned(),
                sources: route.from,
                types,
                subjects,
                filter,
                plugins: route.plugins,
                endpoints: route.to,
            },
        }
    }
}
