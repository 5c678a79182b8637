//! CEL filters: compiled once at config load, evaluated per event.
//!
//! Variables: `id`, `source`, `type`, `subject` (string or null), `headers` (a map; a
//! repeated header's values are joined with `", "`, as HTTP does), `body` (the body parsed as
//! JSON, null when it is not JSON). A filter that does not mention `body` never parses it.

use std::collections::HashMap;

use cel::{Context, Program, Value};

/// A compiled filter expression.
#[derive(Debug)]
pub struct Filter {
    source: String,
    program: Program,
    uses_body: bool,
}

impl Clone for Filter {
    fn clone(&self) -> Self {
        Self::compile(&self.source).expect("it compiled before")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// What evaluating a filter gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOutcome {
    Match,
    NoMatch,
    /// An evaluation error or a non-boolean result; counted as no match.
    Error(String),
}

/// The values a filter sees, built at most once per event.
pub(super) struct Bindings<'a> {
    pub context: Context<'a, 'a>,
    pub has_body: bool,
}

impl Filter {
    pub fn compile(source: &str) -> Result<Self, FilterError> {
        let program = Program::compile(source).map_err(|error| {
            let message = error.to_string().replace("<input>", "filter");
            FilterError(message.trim_start_matches("ERROR: ").trim_end().to_owned())
        })?;
        let uses_body = program.references().has_variable("body");
        Ok(Self { source: source.to_owned(), program, uses_body })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub(super) fn uses_body(&self) -> bool {
        self.uses_body
    }

    pub(super) fn evaluate(&self, bindings: &Bindings<'_>) -> FilterOutcome {
        match self.program.execute(&bindings.context) {
            Ok(Value::Bool(true)) => FilterOutcome::Match,
            Ok(Value::Bool(false)) => FilterOutcome::NoMatch,
            Ok(other) => FilterOutcome::Error(format!("the filter gave {other:?}, not a boolean")),
            Err(error) => FilterOutcome::Error(error.to_string()),
        }
    }
}

/// Binds the event's fields; `body` only when `parse_body` (JSON parse happens here).
pub(super) fn bind<'a>(event: &super::EventView<'_>, parse_body: bool) -> Bindings<'a> {
    let mut context = Context::default();
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in event.headers {
        headers
            .entry(name.clone())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    // Adding plain strings and maps cannot fail; a failure would only hide a variable.
    let _ = context.add_variable("id", event.id);
    let _ = context.add_variable("source", event.source);
    let _ = context.add_variable("type", event.event_type);
    let _ = context.add_variable("subject", event.subject);
    let _ = context.add_variable("headers", headers);
    if parse_body {
        let body: serde_json::Value =
            serde_json::from_slice(event.body).unwrap_or(serde_json::Value::Null);
        let _ = context.add_variable("body", body);
    }
    Bindings { context, has_body: parse_body }
}
