//! CEL route filters: any expression compiles or is refused with its problems, and a
//! compiled one evaluates against any event (first line: the expression; the rest: the body)
//! to a match, no match or an error, never a panic.

use switchyard::routing::{EventView, Filter, FilterOutcome};

use crate::{Target, hash_of, outcome_of};

pub const TARGET: Target = Target {
    name: "filter",
    run,
    dictionary: &[
        "body.",
        "type",
        "source",
        "subject",
        "headers[\"x\"]",
        "id",
        "==",
        "!=",
        "&&",
        "||",
        "!",
        " in ",
        ".startsWith(\"",
        ".endsWith(\"",
        ".contains(\"",
        ".matches(\"",
        "size(",
        "has(",
        ".all(x, ",
        ".exists(x, ",
        ".map(x, ",
        "int(",
        "double(",
        "string(",
        "[1, 2]",
        "{\"a\": 1}",
        "1 / 0",
        "9223372036854775807 + 1",
        "\"a\" + ",
        "? 1 : 2",
        "(",
        ")",
        "\n",
        "{\"amount\": 5}",
    ],
    max_len: 2048,
};

fn run(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let (expression, body) = text.split_once('\n').unwrap_or((&text, ""));
    let filter = match Filter::compile(expression) {
        Ok(filter) => filter,
        Err(error) => return hash_of(("refused", outcome_of(&error.to_string()))),
    };
    let headers = vec![("x".to_owned(), "1".to_owned())];
    let event = EventView {
        id: "evt_01J0000000000000000000000",
        source: "app",
        event_type: "order.created",
        subject: Some("orders/1"),
        headers: &headers,
        body: body.as_bytes(),
    };
    match filter.evaluate(&event) {
        FilterOutcome::Match => hash_of("match"),
        FilterOutcome::NoMatch => hash_of("no match"),
        FilterOutcome::Error(error) => hash_of(("error", outcome_of(&error.to_string()))),
    }
}
