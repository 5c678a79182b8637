use proptest::prelude::*;

use super::*;

fn spec(
    id: &str,
    sources: &[&str],
    types: &[&str],
    subjects: &[&str],
    filter: Option<&str>,
    endpoints: &[&str],
) -> RouteSpec {
    RouteSpec {
        id: id.into(),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        types: types.iter().map(|t| TypePattern::parse(t).unwrap()).collect(),
        subjects: subjects.iter().map(|s| SubjectPattern::parse(s).unwrap()).collect(),
        filter: filter.map(|f| Filter::compile(f).unwrap()),
        plugins: Vec::new(),
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
    }
}

fn view<'a>(
    source: &'a str,
    event_type: &'a str,
    subject: Option<&'a str>,
    headers: &'a [(String, String)],
    body: &'a [u8],
) -> EventView<'a> {
    EventView { id: "evt_1", source, event_type, subject, headers, body }
}

#[test]
fn type_globs() {
    let table = [
        ("*", "anything.at.all", true),
        ("github.*", "github.push", true),
        ("github.*", "github.pull_request.opened", true),
        ("github.*", "github", false),
        ("github.*", "gitlab.push", false),
        ("*.created", "order.created", true),
        ("*.created", "order.updated", false),
        ("order.?", "order.a", true),
        ("order.?", "order.ab", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("invoice.paid", "invoice.paid", true),
        ("invoice.paid", "invoice.paid2", false),
    ];
    for (pattern, event_type, expected) in table {
        assert_eq!(
            TypePattern::parse(pattern).unwrap().matches(event_type),
            expected,
            "{pattern} {event_type}"
        );
    }
    assert_eq!(TypePattern::parse(""), Err(PatternError::EmptyType));
}

#[test]
fn subject_wildcards() {
    let table = [
        ("orders.>", "orders.eu.created", true),
        ("orders.>", "orders.x", true),
        ("orders.>", "orders", false),
        ("orders.*.created", "orders.eu.created", true),
        ("orders.*.created", "orders.eu.west.created", false),
        ("orders.*", "orders", false),
        ("orders.*", "orders.a.b", false),
        ("*", "a", true),
        (">", "a.b.c", true),
        ("a.b", "a.b", true),
        ("a.b", "a.b.c", false),
        ("a.*", "a.", false),
    ];
    for (pattern, subject, expected) in table {
        assert_eq!(
            SubjectPattern::parse(pattern).unwrap().matches(subject),
            expected,
            "{pattern} {subject}"
        );
    }
    for bad in ["", "a..b", "a.>.b", "a.b*", "a.>b", "a b"] {
        assert!(SubjectPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn routes_combine_criteria_and_dedupe_endpoints() {
    let table = RouteTable::new(vec![
        spec("pushes", &["github"], &["github.push"], &[], None, &["billing", "audit"]),
        spec("all-github", &["github"], &[], &[], None, &["audit"]),
        spec("orders", &[], &[], &["orders.*.created"], None, &["orders"]),
    ]);
    let none: Vec<(String, String)> = Vec::new();
    let decision = table.evaluate(&view("github", "github.push", None, &none, b"{}"));
    assert_eq!(decision.routes, ["pushes", "all-github"]);
    assert_eq!(decision.endpoints, ["billing", "audit"]);
    let decision = table.evaluate(&view("github", "github.issues", None, &none, b"{}"));
    assert_eq!(decision.endpoints, ["audit"]);
    let decision = table.evaluate(&view("nats", "x", Some("orders.eu.created"), &none, b"{}"));
    assert_eq!(decision.endpoints, ["orders"]);
    let decision = table.evaluate(&view("nats", "x", None, &none, b"{}"));
    assert!(decision.endpoints.is_empty(), "subjects set, event without subject: no match");
}

#[test]
fn cel_filters() {
    let headers = vec![
        ("x-tenant".to_string(), "acme".to_string()),
        ("x-tenant".to_string(), "beta".to_string()),
    ];
    let body = br#"{"repository":{"private":false},"amount":120}"#;
    let table = [
        ("body.repository.private == false", true),
        ("body.amount > 100", true),
        ("has(body.repository)", true),
        ("has(body.missing)", false),
        ("type.startsWith('github.')", true),
        ("source == 'github' && subject == null", true),
        ("headers['x-tenant'] == 'acme, beta'", true),
        ("id == 'evt_1'", true),
    ];
    for (expression, expected) in table {
        let table = RouteTable::new(vec![spec("r", &[], &[], &[], Some(expression), &["e"])]);
        let decision = table.evaluate(&view("github", "github.push", None, &headers, body));
        assert_eq!(!decision.endpoints.is_empty(), expected, "{expression}: {decision:?}");
        assert!(decision.filter_errors.is_empty(), "{expression}: {decision:?}");
    }
}

#[test]
fn filter_errors_do_not_match_and_are_reported() {
    let table = RouteTable::new(vec![
        spec("broken", &[], &[], &[], Some("body.missing.deeper == 1"), &["a"]),
        spec("not-bool", &[], &[], &[], Some("source"), &["b"]),
    ]);
    let decision = table.evaluate(&view("s", "t", None, &[], b"{}"));
    assert!(decision.endpoints.is_empty());
    let errored: Vec<_> = decision.filter_errors.iter().map(|(route, _)| route.as_str()).collect();
    assert_eq!(errored, ["broken", "not-bool"]);
}

#[test]
fn syntax_errors_name_their_position() {
    let error = Filter::compile("body.x ==").unwrap_err();
    assert!(error.0.contains("filter:1:10"), "{error}");
}

#[test]
fn the_body_is_parsed_only_when_a_filter_needs_it() {
    let table = RouteTable::new(vec![spec("r", &[], &[], &[], Some("source == 'github'"), &["e"])]);
    let decision = table.evaluate(&view("github", "t", None, &[], b"not json at all"));
    assert_eq!(decision.endpoints, ["e"]);
    assert!(!decision.body_parsed);
    let table = RouteTable::new(vec![
        spec("a", &[], &[], &[], Some("source == 'github'"), &["a"]),
        spec("b", &[], &[], &[], Some("body == null"), &["b"]),
        spec("c", &[], &[], &[], Some("body == null"), &["c"]),
    ]);
    let decision = table.evaluate(&view("github", "t", None, &[], b"not json"));
    assert_eq!(decision.endpoints, ["a", "b", "c"], "an invalid JSON body is null");
    assert!(decision.body_parsed);
}

fn token() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,5}"
}

proptest! {
    #[test]
    fn star_tokens_match_their_subject(tokens in prop::collection::vec(token(), 1..6), mask in prop::collection::vec(any::<bool>(), 6)) {
        let subject = tokens.join(".");
        let pattern: Vec<String> = tokens.iter().zip(&mask).map(|(t, star)| if *star { "*".into() } else { t.clone() }).collect();
        prop_assert!(SubjectPattern::parse(&pattern.join(".")).unwrap().matches(&subject));
    }

    #[test]
    fn tail_wildcard_matches_any_extension(prefix in prop::collection::vec(token(), 0..4), rest in prop::collection::vec(token(), 1..4)) {
        let mut pattern = prefix.clone();
        pattern.push(">".into());
        let subject = prefix.iter().chain(&rest).cloned().collect::<Vec<_>>().join(".");
        prop_assert!(SubjectPattern::parse(&pattern.join(".")).unwrap().matches(&subject));
        if !prefix.is_empty() {
            prop_assert!(!SubjectPattern::parse(&pattern.join(".")).unwrap().matches(&prefix.join(".")));
        }
    }

    #[test]
    fn literals_match_only_themselves(a in prop::collection::vec(token(), 1..5), b in prop::collection::vec(token(), 1..5)) {
        let pattern = SubjectPattern::parse(&a.join(".")).unwrap();
        prop_assert_eq!(pattern.matches(&b.join(".")), a == b);
        let glob = TypePattern::parse(&a.join(".")).unwrap();
        prop_assert_eq!(glob.matches(&b.join(".")), a == b);
    }

    #[test]
    fn a_star_glob_matches_every_type(event_type in "[a-z._]{0,20}") {
        prop_assert!(TypePattern::parse("*").unwrap().matches(&event_type));
    }
}
