//! `redact`: masks the values at configured JSON pointers in a JSON body.
//!
//! Config keys:
//!
//! - `pointers` (required): comma-separated JSON pointers (RFC 6901), e.g.
//!   `/card/number,/customer/email`; spaces around each are ignored;
//! - `mask` (default `[redacted]`): the string that replaces each value found.
//!
//! Each pointer that exists in the body has its value (of any JSON type, objects and arrays
//! included) replaced with the mask string; pointers that do not exist are skipped. An object
//! with the same key twice has each of them masked (parsers disagree on which one counts). It
//! answers:
//!
//! - `modify` when at least one pointer matched, with the body as received except for the
//!   masked values' text (whitespace, key order, numbers and escapes untouched);
//! - `pass` when none did;
//! - `failure::fatal` when the body is not JSON (a redactor must not let unknown data through
//!   silently: the binding's `on_error` decides), or when `pointers` is missing or holds
//!   something that is not a JSON pointer.
//!
//! Must not: change anything but the masked values, or log the values it masks.
//!
//! The body is never parsed into a tree: one pass checks that it is JSON, then each pointer
//! walks down through the objects and arrays on its way only, and the masks are spliced into
//! the text at the byte ranges found. Parsing the whole body into values and writing it out
//! again cost three times as much, and rewrote every byte.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use switchyard_sdk::{Event, Failure, host};

const DEFAULT_MASK: &str = "[redacted]";

#[switchyard_sdk::transform]
fn redact(mut event: Event) -> Result<Event, Failure> {
    let pointers = host::require_config("pointers")?;
    let pointers = parse_pointers(&pointers)?;
    let mask = host::config("mask").unwrap_or_else(|| DEFAULT_MASK.to_string());
    if let Some(body) = masked(&event.body, &pointers, &mask)? {
        event.set_body(body);
    }
    Ok(event)
}

/// The pointers of the `pointers` config value; empty entries (a trailing comma) are skipped.
fn parse_pointers(value: &str) -> Result<Vec<&str>, Failure> {
    let pointers: Vec<&str> =
        value.split(',').map(str::trim).filter(|pointer| !pointer.is_empty()).collect();
    if let Some(bad) = pointers.iter().find(|pointer| !pointer.starts_with('/')) {
        return Err(Failure::fatal(format!(
            "config key `pointers`: `{bad}` is not a JSON pointer, e.g. `/card/number`"
        )));
    }
    if pointers.is_empty() {
        return Err(Failure::fatal(
            "config key `pointers` is empty: expected JSON pointers, e.g. `/card/number`",
        ));
    }
    Ok(pointers)
}

/// `body` with the value at each pointer that exists replaced by `mask`; `None` when no
/// pointer exists.
fn masked(body: &[u8], pointers: &[&str], mask: &str) -> Result<Option<Vec<u8>>, Failure> {
    let not_json =
        |reason: &dyn fmt::Display| Failure::fatal(format!("body is not JSON: {reason}"));
    let text = std::str::from_utf8(body).map_err(|error| not_json(&error))?;
    // Parsing the top level reads the whole body: it is the check that the body is JSON.
    let root = Level::parse(text).map_err(|error| not_json(&error))?;
    let mut found = Vec::new();
    for pointer in pointers {
        let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
        root.find(&tokens, &mut found);
    }
    if found.is_empty() {
        return Ok(None);
    }
    let ranges: Vec<Range<usize>> = found.iter().map(|value| range_in(text, value.get())).collect();
    let mask = serde_json::to_string(mask).map_err(|error| Failure::fatal(error.to_string()))?;
    Ok(Some(splice(text, ranges, &mask).into_bytes()))
}

/// A pointer's reference token as the key or index it names (RFC 6901: `~1` is `/`, then `~0`
/// is `~`).
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// One JSON value's children, their own text unparsed: what a pointer's next token picks from.
enum Level<'a> {
    /// Members in order, duplicates included.
    Object(Vec<(Cow<'a, str>, &'a RawValue)>),
    Array(Vec<&'a RawValue>),
    Scalar,
}

impl<'a> Level<'a> {
    /// Parses `text`, one whole JSON value (whitespace around it allowed).
    fn parse(text: &'a str) -> serde_json::Result<Self> {
        Ok(match text.trim_start().as_bytes().first() {
            Some(b'{') => Level::Object(serde_json::from_str::<Members<'a>>(text)?.0),
            Some(b'[') => Level::Array(serde_json::from_str(text)?),
            _ => {
                serde_json::from_str::<&RawValue>(text)?;
                Level::Scalar
            }
        })
    }

    /// Adds to `found` every value that `tokens` (at least one) lead to from here.
    fn find(&self, tokens: &[String], found: &mut Vec<&'a RawValue>) {
        let Some((token, rest)) = tokens.split_first() else { return };
        let mut reached = |value: &'a RawValue| {
            if rest.is_empty() {
                found.push(value);
            } else if let Ok(level) = Level::parse(value.get()) {
                level.find(rest, found);
            }
        };
        match self {
            Level::Object(members) => {
                members
                    .iter()
                    .filter(|(key, _)| key == token)
                    .for_each(|(_, value)| reached(value));
            }
            Level::Array(items) => {
                if let Some(item) = array_index(token).and_then(|index| items.get(index)) {
                    reached(item);
                }
            }
            Level::Scalar => {}
        }
    }
}

/// The index a token names in an array: digits without a leading zero (`-`, the element past
/// the end, never exists).
fn array_index(token: &str) -> Option<usize> {
    let digits = token.bytes().all(|byte| byte.is_ascii_digit());
    let leading_zero = token.len() > 1 && token.starts_with('0');
    (digits && !leading_zero).then(|| token.parse().ok()).flatten()
}

/// Where `part`, a slice of `text`, lies in it.
fn range_in(text: &str, part: &str) -> Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    start..start + part.len()
}

/// `text` with each range replaced by `mask`; a range inside another one is masked with it.
fn splice(text: &str, mut ranges: Vec<Range<usize>>, mask: &str) -> String {
    ranges.sort_by_key(|range| (range.start, std::cmp::Reverse(range.end)));
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        if range.start < copied {
            continue;
        }
        out.push_str(&text[copied..range.start]);
        out.push_str(mask);
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// An object's members, as [`Level::Object`] holds them.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// An object's key: borrowed from the body unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_sdk::{Patch, Verdict, entry};

    use super::*;

    const POINTERS: [&str; 3] = ["/card/number", "/customer/email", "/payments/0/iban"];

    /// The verdict `redact` answers for `body`, with the default mask and [`POINTERS`].
    fn verdict(body: &str) -> Result<Verdict, Failure> {
        entry::transform(Event::new("s", "t").with_body(body), |mut event| {
            if let Some(body) = masked(&event.body, &POINTERS, DEFAULT_MASK)? {
                event.set_body(body);
            }
            Ok::<_, Failure>(event)
        })
    }

    fn masked_text(body: &str, pointers: &[&str], mask: &str) -> Option<String> {
        let masked = masked(body.as_bytes(), pointers, mask).expect("JSON");
        masked.map(|bytes| String::from_utf8(bytes).expect("UTF-8"))
    }

    #[test]
    fn masks_what_exists_and_keeps_every_other_byte() {
        let body = r#"{"zeta": 1.50, "card": {"number": "4242", "exp": "12/30"},
            "payments": [{"iban": {"country": "DE"}, "amount": 12345678901234567890123}]}"#;
        let expected = r#"{"zeta": 1.50, "card": {"number": "[redacted]", "exp": "12/30"},
            "payments": [{"iban": "[redacted]", "amount": 12345678901234567890123}]}"#;
        assert_eq!(verdict(body), Ok(Verdict::Modify(Patch::new().with_body(expected))));
    }

    #[test]
    fn passes_when_nothing_matches() {
        assert_eq!(verdict(r#"{"card": "none", "payments": []}"#), Ok(Verdict::Pass));
        assert_eq!(verdict("[1, 2]"), Ok(Verdict::Pass));
        assert_eq!(verdict(r#"{"card": "4242", "customer": [{"email": 1}]}"#), Ok(Verdict::Pass));
    }

    #[test]
    fn a_body_that_is_not_json_is_fatal() {
        for body in ["card=4242", r#"{"card": {"number": "4242"}"#, "{} {}"] {
            let Err(Failure::Fatal(message)) = verdict(body) else { panic!("not fatal: {body}") };
            assert!(message.starts_with("body is not JSON"), "{message}");
        }
        let Err(Failure::Fatal(message)) = masked(b"{\"a\": \"\xff\"}", &["/a"], "x") else {
            panic!("not fatal")
        };
        assert!(message.starts_with("body is not JSON"), "{message}");
    }

    #[test]
    fn pointers_config() {
        assert_eq!(parse_pointers(" /a , /b/0,,"), Ok(vec!["/a", "/b/0"]));
        assert!(
            matches!(parse_pointers("/a,card"), Err(Failure::Fatal(m)) if m.contains("`card`"))
        );
        assert!(parse_pointers(" , ").is_err());
    }

    #[test]
    fn pointer_escapes_are_honoured_in_pointers_and_keys() {
        let body = r#"{"a/b": 1, "m~n": 2, "q\"uote": 3, "\u0063ard": 4}"#;
        let masked = masked_text(body, &["/a~1b", "/m~0n", "/q\"uote", "/card"], "x");
        assert_eq!(
            masked.as_deref(),
            Some(r#"{"a/b": "x", "m~n": "x", "q\"uote": "x", "\u0063ard": "x"}"#)
        );
    }

    #[test]
    fn array_indexes_are_plain_decimals() {
        let body = r#"{"a": [10, 11, 12]}"#;
        assert_eq!(masked_text(body, &["/a/2"], "x").as_deref(), Some(r#"{"a": [10, 11, "x"]}"#));
        for pointer in ["/a/01", "/a/-", "/a/3", "/a/+1", "/a/"] {
            assert_eq!(masked_text(body, &[pointer], "x"), None, "{pointer}");
        }
    }

    #[test]
    fn every_duplicate_key_is_masked_and_nested_pointers_mask_once() {
        let body = r#"{"k": 1, "o": {"p": 2}, "k": 3}"#;
        let masked = masked_text(body, &["/k", "/o/p", "/o"], "x");
        assert_eq!(masked.as_deref(), Some(r#"{"k": "x", "o": "x", "k": "x"}"#));
    }

    #[test]
    fn the_mask_is_written_as_a_json_string_and_the_root_can_be_masked() {
        let masked = masked_text(r#" {"a": true} "#, &["/a"], "say \"no\"");
        assert_eq!(masked.as_deref(), Some(r#" {"a": "say \"no\""} "#));
        assert_eq!(masked_text(r#"{"": 1}"#, &["/"], "x").as_deref(), Some(r#"{"": "x"}"#));
    }
}
