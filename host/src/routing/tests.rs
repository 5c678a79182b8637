//! Tests for routing: glob and subject tables, pattern validation, CEL filters, the route table.
//!
//! Owns the unit and property tests of `routing`; it must not be compiled outside `cfg(test)`
//! nor reach anything outside `routing`.

use proptest::prelude::*;

use super::filter::EventBindings;
use super::*;

/// An owned event for tests to borrow an [`EventView`] from.
struct TestEvent {
    source: &'static str,
    event_type: &'static str,
    subject: Option<&'static str>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestEvent {
    fn new(source: &'static str, event_type: &'static str) -> Self {
        Self { source, event_type, subject: None, headers: Vec::new(), body: b"{}".to_vec() }
    }

    fn subject(mut self, subject: &'static str) -> Self {
        self.subject = Some(subject);
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn body(mut self, body: &str) -> Self {
        self.body = body.as_bytes().to_vec();
        self
    }

    fn view(&self) -> EventView<'_> {
        EventView {
            id: "evt_01J0000000000000000000000",
            source: self.source,
            event_type: self.event_type,
            subject: self.subject,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

fn github_push() -> TestEvent {
    TestEvent::new("github", "github.push")
        .header("x-github-event", "push")
        .header("x-tenant", "acme")
        .body(
            r#"{"repository": {"private": false, "name": "switchyard", "topics": ["rust", "nats"]},
                "commits": 3, "ratio": 0.5, "big": 18446744073709551615}"#,
        )
}

/// A route with no criteria: it matches everything.
fn route(id: &str, endpoints: &[&str]) -> RouteSpec {
    RouteSpec {
        id: id.to_owned(),
        sources: Vec::new(),
        types: Vec::new(),
        subjects: Vec::new(),
        filter: None,
        plugins: Vec::new(),
        endpoints: endpoints.iter().map(|endpoint| endpoint.to_string()).collect(),
    }
}

fn filtered(id: &str, expression: &str, endpoints: &[&str]) -> RouteSpec {
    RouteSpec { filter: Some(Filter::compile(expression).unwrap()), ..route(id, endpoints) }
}

// --- event-type globs ---

#[test]
fn type_globs() {
    let table = [
        ("github.*", "github.push", true),
        ("github.*", "github.pull_request.opened", true),
        ("github.*", "github.", true),
        ("github.*", "github", false),
        ("github.*", "gitlab.push", false),
        ("*", "anything.at.all", true),
        ("*", "", true),
        ("**", "x", true),
        ("github.push", "github.push", true),
        ("github.push", "github.pushed", false),
        ("github.push", "xgithub.push", false),
        ("github.pus?", "github.push", true),
        ("github.pus?", "github.pus", false),
        ("github.pus?", "github.pushh", false),
        ("github.?*", "github.", false),
        ("?", "é", true),
        ("?", "ab", false),
        ("*.created", "orders.eu.created", true),
        ("*.created", "created", false),
        ("*push*", "github.push.forced", true),
        ("a*b*c", "abc", true),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbYcZ", false),
        ("a*b*c", "acb", false),
        ("*ab", "aab", true),
        ("*a?c", "xxabcabc", true),
        ("*a?c", "xxabcabd", false),
        ("a*a*a", "aaaa", true),
        ("a*a*a", "aa", false),
    ];
    for (pattern, event_type, expected) in table {
        let parsed = TypePattern::parse(pattern).unwrap();
        assert_eq!(parsed.matches(event_type), expected, "`{pattern}` against `{event_type}`");
    }
}

#[test]
fn type_glob_validation() {
    assert_eq!(TypePattern::parse(""), Err(PatternError::EmptyTypePattern));
    let glob = TypePattern::parse("github.*").unwrap();
    assert_eq!(glob.as_str(), "github.*");
    assert_eq!(glob.to_string(), "github.*");
    assert_eq!(
        PatternError::EmptyTypePattern.to_string(),
        "an event-type pattern must not be empty, e.g. `github.*`"
    );
}

// --- NATS subject patterns ---

#[test]
fn subject_wildcards() {
    let table = [
        ("orders.*.created", "orders.eu.created", true),
        ("orders.*.created", "orders.created", false),
        ("orders.*.created", "orders.eu.west.created", false),
        ("orders.*.created", "orders..created", false),
        ("orders.>", "orders.eu", true),
        ("orders.>", "orders.eu.west.created", true),
        ("orders.>", "orders", false),
        ("orders.>", "orders.", false),
        ("orders.>", "orders.eu..created", false),
        ("orders.>", "shipping.eu", false),
        (">", "orders", true),
        (">", "orders.eu.created", true),
        (">", "", false),
        (">", ".orders", false),
        ("*", "orders", true),
        ("*", "orders.eu", false),
        ("*", "", false),
        ("*.>", "orders", false),
        ("*.>", "orders.eu", true),
        ("*.*", "orders.eu", true),
        ("*.*", "orders.eu.created", false),
        ("orders", "orders", true),
        ("orders", "orders.eu", false),
        ("orders", "order", false),
        ("orders.eu", "orders", false),
        ("orders.eu", "orders.eu.", false),
        ("orders.eu", "", false),
    ];
    for (pattern, subject, expected) in table {
        let parsed = SubjectPattern::parse(pattern).unwrap();
        assert_eq!(parsed.matches(subject), expected, "`{pattern}` against `{subject}`");
    }
}

#[test]
fn subject_pattern_validation() {
    let empty_token = |pattern: &str, position| PatternError::EmptyToken {
        pattern: pattern.to_owned(),
        position,
    };
    let tail = |pattern: &str| PatternError::TailWildcardNotLast { pattern: pattern.to_owned() };
    let mixed = |pattern: &str, token: &str| PatternError::MixedWildcard {
        pattern: pattern.to_owned(),
        token: token.to_owned(),
    };
    let table = [
        ("", PatternError::EmptySubjectPattern),
        ("orders..created", empty_token("orders..created", 2)),
        (".orders", empty_token(".orders", 1)),
        ("orders.", empty_token("orders.", 2)),
        (".", empty_token(".", 1)),
        ("orders.>.created", tail("orders.>.created")),
        (">.>", tail(">.>")),
        ("foo*", mixed("foo*", "foo*")),
        ("orders.eu>", mixed("orders.eu>", "eu>")),
        ("orders.*>", mixed("orders.*>", "*>")),
        ("orders.**", mixed("orders.**", "**")),
        ("orders. eu", PatternError::Whitespace { pattern: "orders. eu".to_owned() }),
    ];
    for (pattern, expected) in table {
        assert_eq!(SubjectPattern::parse(pattern), Err(expected), "`{pattern}`");
    }
    for valid in ["orders", "orders.>", ">", "*", "a.*.b.>", "orders.eu-west_1.created"] {
        let parsed = SubjectPattern::parse(valid).unwrap();
        assert_eq!(parsed.as_str(), valid);
    }
    assert_eq!(
        empty_token("orders..created", 2).to_string(),
        "subject pattern `orders..created`: token 2 is empty; tokens are separated by single \
         dots, e.g. `orders.*.created`"
    );
    assert_eq!(
        mixed("foo*", "foo*").to_string(),
        "subject pattern `foo*`: token `foo*` mixes a wildcard with other characters; `*` and \
         `>` must stand alone between dots, e.g. `orders.*`"
    );
}

// --- CEL filters ---

#[test]
fn filters_over_event_fields() {
    use FilterOutcome::{Match, NoMatch};
    let event = github_push();
    let table = [
        ("body.repository.private == false", Match),
        ("body.repository.private", NoMatch),
        ("body.repository.name == 'switchyard'", Match),
        ("has(body.repository)", Match),
        ("has(body.repository.private)", Match),
        ("has(body.sender)", NoMatch),
        ("has(body.repository.owner)", NoMatch),
        ("body.commits == 3 && body.commits == 3.0", Match),
        ("body.commits > 2 && body.ratio < 1.0", Match),
        ("body.big == 18446744073709551615u", Match),
        ("'rust' in body.repository.topics", Match),
        ("body.repository.topics.exists(topic, topic == 'nats')", Match),
        ("size(body.repository.topics) == 2", Match),
        ("headers['x-github-event'] == 'push'", Match),
        ("headers['x-github-event'] == 'ping'", NoMatch),
        ("'x-tenant' in headers", Match),
        ("'x-missing' in headers", NoMatch),
        ("type == 'github.push'", Match),
        ("type == \"github.pull_request\"", NoMatch),
        ("type.startsWith('github.')", Match),
        ("type.endsWith('.push')", Match),
        ("type.matches('^github[.]p')", Match),
        ("type(type) == string && type(body.commits) == int", Match),
        ("source == 'github'", Match),
        ("id.startsWith('evt_')", Match),
        ("subject == null", Match),
        (".type == 'github.push' && .body.commits == 3", Match),
    ];
    for (expression, expected) in table {
        let filter = Filter::compile(expression).unwrap();
        assert_eq!(filter.evaluate(&event.view()), expected, "`{expression}`");
    }
}

#[test]
fn filters_over_subject() {
    let event = TestEvent::new("orders", "orders.created").subject("orders.eu.created");
    let filter = Filter::compile("subject.startsWith('orders.') && subject != null").unwrap();
    assert_eq!(filter.evaluate(&event.view()), FilterOutcome::Match);
    let filter = Filter::compile("subject.split('.').size() == 3").unwrap();
    assert!(matches!(filter.evaluate(&event.view()), FilterOutcome::Error(_)), "no extensions");
}

#[test]
fn repeated_headers_are_joined_and_names_lower_cased() {
    let event = TestEvent::new("shop", "shop.order").header("x-tag", "a").header("X-Tag", "b");
    let filter = Filter::compile("headers['x-tag'] == 'a, b' && size(headers) == 1").unwrap();
    assert_eq!(filter.evaluate(&event.view()), FilterOutcome::Match);
}

#[test]
fn filter_evaluation_errors_are_their_own_outcome() {
    let failed = |message: &str| {
        FilterOutcome::Error(EvaluationError::Failed { message: message.to_owned() })
    };
    let not_boolean =
        |found: &str| FilterOutcome::Error(EvaluationError::NotBoolean { found: found.to_owned() });
    let event = github_push();
    let table = [
        ("body.sender.login == 'octocat'", failed("no such key: sender")),
        ("headers['x-missing'] == 'x'", failed("no such key: x-missing")),
        ("unknown == 1", failed("undeclared reference to 'unknown'")),
        ("body.repository.name", not_boolean("string")),
        ("body.ratio", not_boolean("double")),
        ("body.commits", not_boolean("int")),
        ("subject", not_boolean("null_type")),
    ];
    for (expression, expected) in table {
        let filter = Filter::compile(expression).unwrap();
        assert_eq!(filter.evaluate(&event.view()), expected, "`{expression}`");
    }
    let filter = Filter::compile("subject.startsWith('orders.')").unwrap();
    assert!(matches!(filter.evaluate(&event.view()), FilterOutcome::Error(_)));
    assert_eq!(
        EvaluationError::NotBoolean { found: "string".to_owned() }.to_string(),
        "filter evaluated to a `string`, expected a `bool`"
    );
}

#[test]
fn a_body_that_is_not_json_is_null() {
    let event = TestEvent::new("github", "github.push").body("not json {");
    let is_null = Filter::compile("body == null").unwrap();
    assert_eq!(is_null.evaluate(&event.view()), FilterOutcome::Match);
    let field = Filter::compile("has(body.repository)").unwrap();
    assert!(matches!(field.evaluate(&event.view()), FilterOutcome::Error(_)));
    let empty = TestEvent::new("github", "github.push").body("");
    assert_eq!(is_null.evaluate(&empty.view()), FilterOutcome::Match);
}

#[test]
fn syntax_errors_carry_their_position() {
    let Err(FilterError::Syntax { problems, .. }) = Filter::compile("body.repository.private ==")
    else {
        panic!("a dangling `==` must not compile");
    };
    assert_eq!((problems[0].line, problems[0].column), (1, 27));
    assert!(problems[0].message.starts_with("syntax error: "), "{}", problems[0].message);

    let error = Filter::compile("type == 'github.push' &&\n  (body.x ||").unwrap_err();
    let rendered = error.to_string();
    let mut lines = rendered.lines();
    assert!(lines.next().unwrap().starts_with("line 2, column 13: syntax error: "), "{rendered}");
    assert_eq!(lines.next(), Some("  |   (body.x ||"));
    assert_eq!(lines.next(), Some("  |             ^"));

    // Columns count characters, not bytes.
    let Err(FilterError::Syntax { problems, .. }) = Filter::compile("'é' ==") else {
        panic!("a dangling `==` must not compile");
    };
    assert_eq!((problems[0].line, problems[0].column), (1, 7));

    assert_eq!(Filter::compile("").unwrap_err(), FilterError::Empty);
    assert_eq!(Filter::compile(" \n").unwrap_err(), FilterError::Empty);
}

#[test]
fn deep_expressions_are_refused_before_they_can_overflow_the_stack() {
    let nested = format!("{}1{} == 1", "(".repeat(200), ")".repeat(200));
    let Err(FilterError::Syntax { problems, .. }) = Filter::compile(&nested) else {
        panic!("200 nested parentheses must not compile");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.starts_with("the expression nests too deeply"));

    let too_long = format!("{}1 > 0", "1+".repeat(MAX_FILTER_LENGTH / 2));
    let error = Filter::compile(&too_long).unwrap_err();
    assert_eq!(error, FilterError::TooLong { length: MAX_FILTER_LENGTH + 5, maximum: 2048 });
    assert_eq!(
        error.to_string(),
        "a filter may be at most 2048 characters long; this one has 2053"
    );

    // The deepest chains that still fit compile and evaluate on a 2 MiB stack, Tokio's default
    // for its workers; deep conditionals meet the parser's nesting limit first.
    let chains = [
        (format!("{}1 > 0", "1+".repeat((MAX_FILTER_LENGTH - 5) / 2)), true),
        (format!("{}1", "1==".repeat((MAX_FILTER_LENGTH - 1) / 3)), true),
        (format!("body{} == 1", "[0]".repeat((MAX_FILTER_LENGTH - 9) / 3)), true),
        (format!("{}true", "true?true:".repeat((MAX_FILTER_LENGTH - 4) / 10)), false),
    ];
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let event = github_push();
            for (chain, compiles) in chains {
                assert!(chain.chars().count() <= MAX_FILTER_LENGTH);
                match Filter::compile(&chain) {
                    Ok(filter) => {
                        assert!(compiles, "{chain}");
                        let _ = filter.evaluate(&event.view());
                    }
                    Err(error) => {
                        assert!(!compiles, "{chain}: {error}");
                        assert!(error.to_string().contains("nests too deeply"), "{error}");
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn filters_know_whether_they_read_the_body() {
    let table = [
        ("body.repository.private == false", true),
        ("has(body.x)", true),
        (".body.commits == 3", true),
        ("source == 'github' || body.kind == 'x'", true),
        ("source == 'github'", false),
        ("headers.body == 'x'", false),
        ("'body' in headers", false),
        ("type.startsWith('body')", false),
    ];
    for (expression, expected) in table {
        assert_eq!(Filter::compile(expression).unwrap().uses_body(), expected, "`{expression}`");
    }
}

// --- route table ---

#[test]
fn the_body_is_parsed_only_for_filters_that_read_it() {
    let event = TestEvent::new("github", "github.push").body("not json {");
    let table = RouteTable::new(vec![
        filtered("by-source", "source == 'github'", &["audit"]),
        RouteSpec { sources: vec!["stripe".into()], ..filtered("other", "body == null", &["x"]) },
    ]);
    let decision = table.evaluate(&event.view());
    assert_eq!(decision.routes, ["by-source"]);
    assert!(!decision.body_parsed, "no filter that ran reads `body`");

    let table = RouteTable::new(vec![filtered("by-body", "body == null", &["audit"])]);
    let decision = table.evaluate(&event.view());
    assert_eq!(decision.routes, ["by-body"]);
    assert!(decision.body_parsed);
}

#[test]
fn the_body_is_parsed_once_per_event() {
    let event = github_push();
    let view = event.view();
    let mut bindings = EventBindings::new(&view);
    for expression in ["source == 'github'", "has(body.repository)", "body.commits == 3"] {
        let filter = Filter::compile(expression).unwrap();
        assert_eq!(filter.evaluate_with(&mut bindings), FilterOutcome::Match, "`{expression}`");
    }
    assert_eq!(bindings.body_parses(), 1);
}

#[test]
fn endpoints_are_delivered_once_in_first_seen_order() {
    let table = RouteTable::new(vec![
        route("first", &["billing", "audit"]),
        RouteSpec { sources: vec!["stripe".into()], ..route("skipped", &["crm", "billing"]) },
        route("second", &["audit", "crm"]),
        route("third", &["billing"]),
    ]);
    let decision = table.evaluate(&github_push().view());
    assert_eq!(decision.routes, ["first", "second", "third"]);
    assert_eq!(decision.endpoints, ["billing", "audit", "crm"]);
    assert_eq!(table.endpoints_of(&decision, "second"), ["audit", "crm"]);
    assert!(table.endpoints_of(&decision, "skipped").is_empty());
    assert!(table.endpoints_of(&decision, "missing").is_empty());
}

#[test]
fn criteria_are_anded_and_list_entries_ored() {
    let patterns = |globs: &[&str]| -> Vec<TypePattern> {
        globs.iter().map(|glob| TypePattern::parse(glob).unwrap()).collect()
    };
    let subjects = |patterns: &[&str]| -> Vec<SubjectPattern> {
        patterns.iter().map(|pattern| SubjectPattern::parse(pattern).unwrap()).collect()
    };
    let table = RouteTable::new(vec![
        RouteSpec { sources: vec!["gitlab".into(), "github".into()], ..route("sources", &[]) },
        RouteSpec { types: patterns(&["stripe.*", "github.p*"]), ..route("types", &[]) },
        RouteSpec {
            sources: vec!["github".into()],
            types: patterns(&["github.issues"]),
            ..route("source-and-type", &[])
        },
        RouteSpec { subjects: subjects(&["orders.>"]), ..route("subjects", &[]) },
        RouteSpec {
            sources: vec!["orders".into()],
            subjects: subjects(&["orders.*.created", "orders.us.>"]),
            ..filtered("everything", "headers['x-region'] == 'eu'", &[])
        },
    ]);
    let routes_for = |event: &TestEvent| table.evaluate(&event.view()).routes;
    assert_eq!(routes_for(&github_push()), ["sources", "types"]);
    assert_eq!(
        routes_for(&TestEvent::new("github", "github.issues")),
        ["sources", "source-and-type"]
    );
    assert_eq!(routes_for(&TestEvent::new("orders", "orders.created")), Vec::<String>::new());
    let order = TestEvent::new("orders", "orders.created").subject("orders.eu.created");
    assert_eq!(routes_for(&order), ["subjects"]);
    assert_eq!(routes_for(&order.header("x-region", "eu")), ["subjects", "everything"]);
}

#[test]
fn filter_failures_are_reported_and_do_not_match() {
    let table = RouteTable::new(vec![
        filtered("broken", "body.sender.login == 'octocat'", &["crm"]),
        filtered("fine", "body.repository.private == false", &["audit"]),
    ]);
    let decision = table.evaluate(&github_push().view());
    assert_eq!(decision.routes, ["fine"]);
    assert_eq!(decision.endpoints, ["audit"]);
    assert_eq!(
        decision.filter_failures,
        [FilterFailure {
            route: "broken".to_owned(),
            error: EvaluationError::Failed { message: "no such key: sender".to_owned() },
        }]
    );
}

#[test]
fn route_tables_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RouteTable>();
}

fn typed(id: &str, globs: &[&str], endpoints: &[&str]) -> RouteSpec {
    RouteSpec {
        types: globs.iter().map(|glob| TypePattern::parse(glob).unwrap()).collect(),
        ..route(id, endpoints)
    }
}

#[test]
fn an_event_consults_only_the_routes_its_type_can_match() {
    // Thousands of routes on types no event has (idle endpoints) beside the one in use.
    let mut routes: Vec<RouteSpec> = (0..10_000)
        .map(|n| typed(&format!("idle-{n}"), &[&format!("idle.{n}")], &[&format!("idle-{n}")]))
        .collect();
    routes.insert(5_000, typed("busy", &["github.push"], &["busy"]));
    routes.push(typed("glob", &["github.*"], &["audit"]));
    let table = RouteTable::new(routes);

    assert_eq!(table.candidates("github.push"), [5_000, 10_001]);
    assert_eq!(table.candidates("idle.7"), [7, 10_001]);
    assert_eq!(table.candidates("stripe.charge"), [10_001]);
    let event = github_push();
    let (decision, matching) = table.evaluate_matching(&event.view());
    assert_eq!(decision.routes, ["busy", "glob"]);
    assert_eq!(decision.endpoints, ["busy", "audit"]);
    let matching: Vec<&str> = matching.iter().map(|route| route.id.as_str()).collect();
    assert_eq!(matching, ["busy", "glob"]);
}

#[test]
fn routes_found_by_exact_type_keep_their_table_order() {
    let table = RouteTable::new(vec![
        typed("glob-first", &["github.*"], &["a"]),
        typed("exact", &["github.push", "github.push", "stripe.charge"], &["b"]),
        route("any-type", &["c"]),
        typed("mixed", &["stripe.charge", "github.p?sh"], &["d"]),
        typed("exact-last", &["github.push"], &["a"]),
        typed("other", &["github.release"], &["e"]),
    ]);
    let decision = table.evaluate(&github_push().view());
    assert_eq!(decision.routes, ["glob-first", "exact", "any-type", "mixed", "exact-last"]);
    assert_eq!(decision.endpoints, ["a", "b", "c", "d"]);
    // A type named twice by one route makes it a candidate once.
    assert_eq!(table.candidates("github.push"), [0, 1, 2, 3, 4]);
}

// --- properties ---

fn token() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,6}"
}

fn tokens() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(token(), 1..6)
}

/// Glob matching by definition, one character at a time, to compare the matcher against.
fn glob_reference(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| glob_reference(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && glob_reference(rest, &text[1..]),
        Some((literal, rest)) => text.first() == Some(literal) && glob_reference(rest, &text[1..]),
    }
}

/// Fragments of CEL, glued at random into mostly-invalid and sometimes-valid expressions.
const CEL_PIECES: &[&str] = &[
    "body",
    "type",
    "source",
    "subject",
    "headers",
    "id",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "?",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "in",
    "has",
    "size",
    "exists",
    "all",
    "map",
    "filter",
    "x",
    "startsWith",
    "matches",
    "int",
    "string",
    "dyn",
    "null",
    "true",
    "1",
    "-9223372036854775808",
    "18446744073709551615u",
    "2.5",
    "'a'",
    "b'a'",
    "\"",
    "'",
    "repository",
    "private",
    "commits",
];

/// Types and globs for tables whose index is compared with matching every route.
const INDEX_TYPES: &[&str] = &["a.x", "a.y", "b.x", "a.*", "*.x", "?.y", "*"];

proptest! {
    #[test]
    fn the_type_index_matches_what_every_route_would(
        tables in prop::collection::vec(prop::collection::vec(0..INDEX_TYPES.len(), 0..3), 0..12),
        event_type in prop::sample::select(&["a.x", "a.y", "b.x", "b.y", "c"][..]),
    ) {
        let routes: Vec<RouteSpec> = tables
            .iter()
            .enumerate()
            .map(|(n, types)| {
                let globs: Vec<&str> = types.iter().map(|&t| INDEX_TYPES[t]).collect();
                typed(&format!("r{n}"), &globs, &[&format!("e{}", n % 3)])
            })
            .collect();
        let expected: Vec<String> = routes
            .iter()
            .filter(|route| {
                route.types.is_empty() || route.types.iter().any(|glob| glob.matches(event_type))
            })
            .map(|route| route.id.clone())
            .collect();
        let table = RouteTable::new(routes);
        prop_assert_eq!(table.evaluate(&TestEvent::new("s", event_type).view()).routes, expected);
    }

    #[test]
    fn stars_in_place_of_tokens_still_match(
        (subject, mask) in tokens().prop_flat_map(|tokens| {
            let length = tokens.len();
            (Just(tokens), prop::collection::vec(any::<bool>(), length))
        })
    ) {
        let pattern: Vec<&str> = subject
            .iter()
            .zip(&mask)
            .map(|(token, starred)| if *starred { "*" } else { token.as_str() })
            .collect();
        let pattern = SubjectPattern::parse(&pattern.join(".")).unwrap();
        prop_assert!(pattern.matches(&subject.join(".")));
    }

    #[test]
    fn a_tail_matches_every_extension_but_not_its_prefix(
        prefix in tokens(),
        extension in tokens(),
    ) {
        let pattern = SubjectPattern::parse(&format!("{}.>", prefix.join("."))).unwrap();
        let extended = format!("{}.{}", prefix.join("."), extension.join("."));
        prop_assert!(pattern.matches(&extended));
        prop_assert!(!pattern.matches(&prefix.join(".")));
    }

    #[test]
    fn a_star_matches_exactly_one_token(stars in 1usize..5, subject in tokens()) {
        let pattern = SubjectPattern::parse(&vec!["*"; stars].join(".")).unwrap();
        prop_assert_eq!(pattern.matches(&subject.join(".")), subject.len() == stars);
    }

    #[test]
    fn a_literal_subject_pattern_matches_only_itself(
        first in prop::collection::vec("[ab]{1,2}", 1..4),
        second in prop::collection::vec("[ab]{1,2}", 1..4),
    ) {
        let pattern = SubjectPattern::parse(&first.join(".")).unwrap();
        prop_assert_eq!(pattern.matches(&second.join(".")), first == second);
        prop_assert!(pattern.matches(&first.join(".")));
    }

    #[test]
    fn globs_agree_with_their_definition(pattern in "[ab.*?é]{1,8}", text in "[ab.é]{0,10}") {
        let parsed = TypePattern::parse(&pattern).unwrap();
        let pattern: Vec<char> = pattern.chars().collect();
        let text_characters: Vec<char> = text.chars().collect();
        prop_assert_eq!(parsed.matches(&text), glob_reference(&pattern, &text_characters));
    }

    #[test]
    fn a_glob_made_from_a_type_matches_it(
        (event_type, edits) in "[a-z._]{1,12}".prop_flat_map(|event_type| {
            let length = event_type.len();
            (Just(event_type), prop::collection::vec(0u8..4, length))
        })
    ) {
        // 0 keeps a character, 1 makes it `?`, 2 makes it `*`, 3 keeps it with a `*` after.
        let mut glob = String::new();
        for (character, edit) in event_type.chars().zip(&edits) {
            match edit {
                0 => glob.push(character),
                1 => glob.push('?'),
                2 => glob.push('*'),
                _ => {
                    glob.push(character);
                    glob.push('*');
                }
            }
        }
        prop_assert!(TypePattern::parse(&glob).unwrap().matches(&event_type));
    }

    #[test]
    fn a_literal_glob_matches_only_itself(pattern in "[ab.]{1,4}", text in "[ab.]{0,4}") {
        let parsed = TypePattern::parse(&pattern).unwrap();
        prop_assert_eq!(parsed.matches(&text), pattern == text);
    }

    #[test]
    fn compiling_and_evaluating_never_panics(
        pieces in prop::collection::vec(prop::sample::select(CEL_PIECES), 0..16),
        glued in any::<bool>(),
    ) {
        let expression = pieces.join(if glued { "" } else { " " });
        let event = github_push();
        if let Ok(filter) = Filter::compile(&expression) {
            let _ = filter.evaluate(&event.view());
        }
    }

    #[test]
    fn compiling_any_text_never_panics(expression in any::<String>()) {
        let _ = Filter::compile(&expression);
    }
}
