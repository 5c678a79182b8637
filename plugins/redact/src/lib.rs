//! `redact`: masks the values at configured JSON pointers in a JSON body.
//!
//! Config keys:
//!
//! - `pointers` (required): comma-separated JSON pointers (RFC 6901), e.g.
//!   `/card/number,/customer/email`; spaces around each are ignored;
//! - `mask` (default `[redacted]`): the string that replaces each value found.
//!
//! Each pointer that exists in the body has its value (of any JSON type, objects and arrays
//! included) replaced with the mask string; pointers that do not exist are skipped. It answers:
//!
//! - `modify` with the re-serialised body (compact JSON, object keys in their original order,
//!   numbers as written) when at least one pointer matched;
//! - `pass` when none did (the body is left byte for byte as received);
//! - `failure::fatal` when the body is not JSON (a redactor must not let unknown data through
//!   silently: the binding's `on_error` decides), or when `pointers` is missing or holds
//!   something that is not a JSON pointer.
//!
//! Must not: change anything but the masked values, or log the values it masks.

use serde_json::Value;
use switchyard_sdk::{Event, Failure, host};

const DEFAULT_MASK: &str = "[redacted]";

#[switchyard_sdk::transform]
fn redact(mut event: Event) -> Result<Event, Failure> {
    let pointers = host::require_config("pointers")?;
    let pointers = parse_pointers(&pointers)?;
    let mask = host::config("mask").unwrap_or_else(|| DEFAULT_MASK.to_string());
    let mut body: Value = event.body_json()?;
    if mask_values(&mut body, &pointers, &mask) > 0 {
        event.set_body_json(&body)?;
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

/// Replaces the value at each pointer that exists with `mask`; answers how many did.
fn mask_values(body: &mut Value, pointers: &[&str], mask: &str) -> usize {
    let mut masked = 0;
    for pointer in pointers {
        if let Some(value) = body.pointer_mut(pointer) {
            *value = Value::String(mask.to_string());
            masked += 1;
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use switchyard_sdk::{Patch, Verdict, entry};

    use super::*;

    const POINTERS: [&str; 3] = ["/card/number", "/customer/email", "/payments/0/iban"];

    /// The verdict `redact` answers for `body`, with the default mask and [`POINTERS`].
    fn verdict(body: &str) -> Result<Verdict, Failure> {
        entry::transform(Event::new("s", "t").with_body(body), |mut event| {
            let mut body: Value = event.body_json()?;
            if mask_values(&mut body, &POINTERS, DEFAULT_MASK) > 0 {
                event.set_body_json(&body)?;
            }
            Ok::<_, Failure>(event)
        })
    }

    #[test]
    fn masks_what_exists_and_keeps_order_and_numbers() {
        let body = r#"{"zeta": 1.50, "card": {"number": "4242", "exp": "12/30"},
            "payments": [{"iban": {"country": "DE"}, "amount": 12345678901234567890123}]}"#;
        let expected = concat!(
            r#"{"zeta":1.50,"card":{"number":"[redacted]","exp":"12/30"},"#,
            r#""payments":[{"iban":"[redacted]","amount":12345678901234567890123}]}"#,
        );
        assert_eq!(verdict(body), Ok(Verdict::Modify(Patch::new().with_body(expected))));
    }

    #[test]
    fn passes_when_nothing_matches() {
        assert_eq!(verdict(r#"{"card": "none", "payments": []}"#), Ok(Verdict::Pass));
        assert_eq!(verdict("[1, 2]"), Ok(Verdict::Pass));
    }

    #[test]
    fn a_body_that_is_not_json_is_fatal() {
        let Err(Failure::Fatal(message)) = verdict("card=4242") else { panic!("not fatal") };
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
    fn pointer_escapes_are_honoured() {
        let mut body: Value = serde_json::from_str(r#"{"a/b": 1, "m~n": 2}"#).unwrap();
        assert_eq!(mask_values(&mut body, &["/a~1b", "/m~0n"], "x"), 2);
        assert_eq!(body.to_string(), r#"{"a/b":"x","m~n":"x"}"#);
    }
}
