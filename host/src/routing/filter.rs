//! CEL route filters: compiled once from config, evaluated against one event at a time.
//!
//! Owns [`Filter`] (a compiled expression that knows whether it reads `body`), its compile
//! error [`FilterError`] (with line and column), the per-event outcome [`FilterOutcome`], and
//! the per-event variable bindings shared by every route's filter, which parse the body at most
//! once and only for a filter that names `body`. It is the only module that names `cel` types;
//! it must not leak them, log, or do any I/O.
//!
//! Variables a filter sees:
//! - `id`, `source`, `type`: strings. `type` is an ordinary identifier to the parser, so
//!   `type == "github.push"` and `type.startsWith("github.")` work; `type(x)` as a call still
//!   means CEL's type function.
//! - `subject`: a string, or `null` when the event has none.
//! - `headers`: a map from lower-case header name to value. A header sent several times is one
//!   entry, its values joined by `", "` in the order received, as HTTP combines field lines.
//! - `body`: the body parsed as JSON, or `null` when it is not JSON. JSON integers become CEL
//!   `int` (`uint` beyond the `int` range), other numbers `double`; the interpreter compares
//!   numbers across these types, so `body.count == 3` holds for a body of `{"count": 3.0}`.
//!
//! Evaluation: `true` is a match, `false` is not, and anything else (another type, a missing
//! key, an unknown identifier, a function failing) is [`FilterOutcome::Error`], which callers
//! count as no match and report separately.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock};

use cel::common::value::Val;
use cel::objects::{Key, ValueType};
use cel::{Context, Env, Program, Value};

use super::EventView;

/// A compiled CEL filter. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Filter {
    expression: Arc<str>,
    program: Arc<Program>,
    uses_body: bool,
}

/// Why a filter expression could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("a filter must not be empty, e.g. `body.repository.private == false`")]
    Empty,
    #[error("a filter may be at most {maximum} characters long; this one has {length}")]
    TooLong { length: usize, maximum: usize },
    #[error("{}", render_problems(.expression, .problems))]
    Syntax { expression: String, problems: Vec<SyntaxProblem> },
}

/// One problem the CEL parser found, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What one filter said about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOutcome {
    Match,
    NoMatch,
    /// The filter could not give a boolean; the route does not match.
    Error(EvaluationError),
}

/// Why a filter failed to evaluate to a boolean for an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluationError {
    #[error("filter evaluated to a `{found}`, expected a `bool`")]
    NotBoolean { found: String },
    #[error("filter failed: {message}")]
    Failed { message: String },
}

/// The variables of one event, built when the first filter runs and shared by the rest.
pub(super) struct EventBindings<'event> {
    event: &'event EventView<'event>,
    context: Option<Context<'static, 'static>>,
    body_parses: usize,
}

/// The longest filter accepted, in characters. The interpreter parses and evaluates chains such
/// as `1 + 1 + …` or `a == b == …` recursively, without a depth limit, so a long enough chain
/// overflows the stack of the thread evaluating it and aborts the process. At this length the
/// deepest chain still fits in 2 MiB, Tokio's default worker stack. Real filters are far shorter.
pub const MAX_FILTER_LENGTH: usize = 2048;

/// One standard CEL environment for every program and context: building it costs tens of
/// microseconds, far more than evaluating a typical filter.
static ENVIRONMENT: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

// === impl Filter ===

impl Filter {
    /// Compiles `expression`, reporting every syntax problem with its line and column.
    pub fn compile(expression: &str) -> Result<Self, FilterError> {
        if expression.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let length = expression.chars().count();
        if length > MAX_FILTER_LENGTH {
            return Err(FilterError::TooLong { length, maximum: MAX_FILTER_LENGTH });
        }
        let program = ENVIRONMENT.compile(expression).map_err(|errors| FilterError::Syntax {
            expression: expression.to_owned(),
            problems: syntax_problems(&errors.errors),
        })?;
        // Comprehension variables are listed too, so `items.all(body, …)` counts as reading the
        // body: a harmless extra parse. A leading dot names the same top-level variable.
        let references = program.references();
        let uses_body = references.has_variable("body") || references.has_variable(".body");
        Ok(Self { expression: Arc::from(expression), program: Arc::new(program), uses_body })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// Whether the expression reads `body`, so the body must be parsed to evaluate it.
    pub fn uses_body(&self) -> bool {
        self.uses_body
    }

    /// Evaluates against one event on its own. A [`RouteTable`](super::RouteTable) shares the
    /// bindings between routes instead, so the body is parsed once per event.
    pub fn evaluate(&self, event: &EventView<'_>) -> FilterOutcome {
        self.evaluate_with(&mut EventBindings::new(event))
    }

    pub(super) fn evaluate_with(&self, bindings: &mut EventBindings<'_>) -> FilterOutcome {
        match self.program.execute(bindings.context(self.uses_body)) {
            Ok(Value::Bool(true)) => FilterOutcome::Match,
            Ok(Value::Bool(false)) => FilterOutcome::NoMatch,
            Ok(other) => {
                FilterOutcome::Error(EvaluationError::NotBoolean { found: cel_type_name(&other) })
            }
            Err(error) => FilterOutcome::Error(EvaluationError::Failed {
                message: lowercase_first(&error.to_string()),
            }),
        }
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Filter")
            .field("expression", &self.expression)
            .field("uses_body", &self.uses_body)
            .finish()
    }
}

// === impl EventBindings ===

impl<'event> EventBindings<'event> {
    pub(super) fn new(event: &'event EventView<'event>) -> Self {
        Self { event, context: None, body_parses: 0 }
    }

    /// How many times the body was parsed: 0 or 1.
    pub(super) fn body_parses(&self) -> usize {
        self.body_parses
    }

    fn context(&mut self, with_body: bool) -> &Context<'static, 'static> {
        let event = self.event;
        let context = self.context.get_or_insert_with(|| {
            let mut context = Context::with_env(Arc::clone(&ENVIRONMENT));
            bind(&mut context, "id", Value::from(event.id));
            bind(&mut context, "source", Value::from(event.source));
            bind(&mut context, "type", Value::from(event.event_type));
            bind(&mut context, "subject", event.subject.map_or(Value::Null, Value::from));
            bind(&mut context, "headers", headers_value(event.headers));
            context
        });
        if with_body && self.body_parses == 0 {
            self.body_parses += 1;
            let body = serde_json::from_slice(event.body).map_or(Value::Null, json_value);
            bind(context, "body", body);
        }
        context
    }
}

/// Adds a variable. The conversion only fails for function and opaque values, which are never
/// built here; were it to fail, the variable stays unbound and filters naming it report an
/// evaluation error rather than bringing the process down.
fn bind(context: &mut Context<'static, 'static>, name: &str, value: Value) {
    if let Ok(value) = Box::<dyn Val>::try_from(value) {
        context.add_variable_as_val(name, value);
    }
}

fn headers_value(headers: &[(String, String)]) -> Value {
    let mut combined: HashMap<String, String> = HashMap::with_capacity(headers.len());
    for (name, value) in headers {
        combined
            .entry(name.to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    Value::from(combined)
}

fn json_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(flag) => Value::Bool(flag),
        serde_json::Value::Number(number) => match (number.as_i64(), number.as_u64()) {
            (Some(integer), _) => Value::Int(integer),
            (None, Some(unsigned)) => Value::UInt(unsigned),
            (None, None) => number.as_f64().map_or(Value::Null, Value::Float),
        },
        serde_json::Value::String(text) => Value::String(Arc::new(text)),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.into_iter().map(json_value).collect()))
        }
        serde_json::Value::Object(members) => Value::from(
            members
                .into_iter()
                .map(|(name, member)| (Key::from(name), json_value(member)))
                .collect::<HashMap<Key, Value>>(),
        ),
    }
}

/// The parser's problems, in its order. Its nesting limit comes back as a debug dump of an
/// inner error followed by confused follow-ups; that case becomes one plain problem.
fn syntax_problems(errors: &[cel::ParseError]) -> Vec<SyntaxProblem> {
    let position = |error: &cel::ParseError| {
        (usize::try_from(error.pos.0).unwrap_or(0), usize::try_from(error.pos.1).unwrap_or(0))
    };
    if let Some(error) = errors.iter().find(|error| error.msg.contains("Recursion limit")) {
        let (line, column) = position(error);
        let message = "the expression nests too deeply; use fewer levels of parentheses, lists, \
                       maps or conditionals"
            .to_owned();
        return vec![SyntaxProblem { line, column, message }];
    }
    errors
        .iter()
        .map(|error| {
            let (line, column) = position(error);
            SyntaxProblem { line, column, message: lowercase_first(&error.msg) }
        })
        .collect()
}

/// The type's name as CEL writes it.
fn cel_type_name(value: &Value) -> String {
    match value.type_of() {
        ValueType::Float => "double".to_owned(),
        ValueType::Null => "null_type".to_owned(),
        other => other.to_string(),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

/// `line 1, column 4: syntax error: …` for each problem, followed by the offending line and a
/// caret under the column.
fn render_problems(expression: &str, problems: &[SyntaxProblem]) -> String {
    let mut rendered = String::new();
    for (index, problem) in problems.iter().enumerate() {
        if index > 0 {
            rendered.push('\n');
        }
        let _ = write!(
            rendered,
            "line {}, column {}: {}",
            problem.line, problem.column, problem.message
        );
        let source_line = problem.line.checked_sub(1).and_then(|line| expression.lines().nth(line));
        if let (Some(source_line), Some(before)) = (source_line, problem.column.checked_sub(1)) {
            // Keep tabs so the caret lines up under the same column as the source line.
            // A column past the end (an unexpected end of input) gets plain spaces.
            let padding: String = source_line
                .chars()
                .map(|character| if character == '\t' { '\t' } else { ' ' })
                .chain(std::iter::repeat(' '))
                .take(before)
                .collect();
            let _ = write!(rendered, "\n  | {source_line}\n  | {padding}^");
        }
    }
    rendered
}
