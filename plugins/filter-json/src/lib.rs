//! `filter-json`: passes the events whose JSON body holds a given value at a JSON pointer.
//!
//! The example filter. Config keys:
//!
//! - `pointer` (required): a JSON pointer (RFC 6901), e.g. `/repository/private`;
//! - `equals` (required): a JSON literal written as text, e.g. `false`, `42` or `"main"` (with
//!   the quotes: a JSON string).
//!
//! It answers `pass` when the body is JSON and the value at `pointer` equals `equals` (as JSON
//! values: numbers compare as written, so `1.0` is not `1` nor `1.50` `1.5`; key order in objects
//! does not matter), `drop` otherwise, including
//! when the body is not JSON or the pointer does not exist; `failure::fatal` when a config key
//! is missing or does not parse.

use serde_json::Value;
use switchyard_sdk::{Event, Failure, host};

#[switchyard_sdk::filter]
fn filter_json(event: &Event) -> Result<bool, Failure> {
    let pointer = host::require_config("pointer")?;
    let expected = parse_equals(&host::require_config("equals")?)?;
    check_pointer(&pointer)?;
    Ok(matches(&event.body, &pointer, &expected))
}

/// Whether `body` is JSON holding `expected` at `pointer`.
fn matches(body: &[u8], pointer: &str, expected: &Value) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|document| document.pointer(pointer) == Some(expected))
}

fn parse_equals(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| {
        Failure::fatal(format!(
            "config key `equals`: `{text}` is not a JSON literal ({error}), e.g. `false` or \
             `\"main\"`"
        ))
    })
}

fn check_pointer(pointer: &str) -> Result<(), Failure> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(Failure::fatal(format!(
            "config key `pointer`: `{pointer}` is not a JSON pointer, e.g. `/repository/private`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_json_values_at_the_pointer() {
        let body = br#"{"ref": "refs/heads/main", "repository": {"private": false, "stars": 1}}"#;
        let is =
            |pointer: &str, literal: &str| matches(body, pointer, &parse_equals(literal).unwrap());
        assert!(is("/ref", r#""refs/heads/main""#));
        assert!(is("/repository/private", "false"));
        assert!(is("/repository", r#"{"stars": 1, "private": false}"#));
        assert!(!is("/repository/private", r#""false""#));
        assert!(!is("/repository/stars", "1.0"));
        assert!(!matches(br#"{"price": 1.50}"#, "/price", &parse_equals("1.5").unwrap()));
        assert!(!is("/missing", "null"));
        assert!(!matches(b"ref=main", "/ref", &Value::from("main")));
    }

    #[test]
    fn config_errors_are_fatal_and_name_the_key() {
        assert!(matches!(parse_equals("main"), Err(Failure::Fatal(m)) if m.contains("`equals`")));
        assert!(matches!(check_pointer("ref"), Err(Failure::Fatal(m)) if m.contains("`pointer`")));
        assert_eq!(check_pointer(""), Ok(()));
    }
}
