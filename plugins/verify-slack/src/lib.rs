//! `verify-slack`: authenticates Slack requests (Events API, interactivity, slash commands) by
//! their `x-slack-signature` header.
//!
//! Slack signs `v0:{x-slack-request-timestamp}:{raw body}` with HMAC-SHA256 keyed with the app's
//! signing secret, and sends `x-slack-signature: v0=<lowercase hex>` beside
//! `x-slack-request-timestamp: <unix seconds>`. Config keys:
//!
//! - `secret` (required): the name of the secret holding the signing secret;
//! - `tolerance` (default `"5m"`): how far the timestamp may be from now, in either direction.
//!
//! It answers, checking in this order:
//!
//! - `reject` 401 `missing_signature` when a header is absent, the timestamp is not unix
//!   seconds, or the signature is not `v0=` followed by 64 hex digits;
//! - `reject` 401 `stale_timestamp` when the timestamp is further from the host's clock than the
//!   tolerance;
//! - `pass` when the signature matches (Slack sends no delivery id, so there is no dedupe key);
//! - `reject` 401 `bad_signature` otherwise;
//! - `failure::fatal` when `secret` is missing, `tolerance` does not parse, or the host cannot
//!   use the secret.
//!
//! Must not: parse or re-serialise the body (form-encoded or JSON), or put an expected
//! signature in any message.

use std::time::Duration;

use switchyard_sdk::{Event, Failure, Rejection, Verification, crypto, encoding, host};

const SIGNATURE_HEADER: &str = "x-slack-signature";
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[switchyard_sdk::verify]
fn verify_slack(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let tolerance = host::config_duration("tolerance", DEFAULT_TOLERANCE)?;
    let Some(timestamp) = event.header(TIMESTAMP_HEADER).filter(|value| !value.is_empty()) else {
        return Ok(
            Rejection::missing_signature("missing `x-slack-request-timestamp` header").into()
        );
    };
    let Some(seconds) = parse_seconds(timestamp) else {
        return Ok(Rejection::missing_signature(
            "malformed `x-slack-request-timestamp` header: expected unix seconds",
        )
        .into());
    };
    let Some(mac) = event.header(SIGNATURE_HEADER).and_then(parse_signature) else {
        return Ok(Rejection::missing_signature(
            "missing or malformed `x-slack-signature` header: expected `v0=<64 hex digits>`",
        )
        .into());
    };
    if !is_fresh(seconds, host::now_ms(), tolerance) {
        return Ok(Rejection::stale_timestamp(format!(
            "`x-slack-request-timestamp` is more than {} s away from the current time",
            tolerance.as_secs()
        ))
        .into());
    }
    if !crypto::hmac_sha256_verify(&secret, &signed_content(timestamp, &event.body), &mac)? {
        return Ok(Rejection::bad_signature("`x-slack-signature` does not match the body").into());
    }
    Ok(Verification::accept())
}

/// `v0:{timestamp}:{body}`, the bytes the signature covers.
fn signed_content(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(4 + timestamp.len() + body.len());
    content.extend_from_slice(b"v0:");
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b':');
    content.extend_from_slice(body);
    content
}

/// The 32 MAC bytes of a `v0=<hex>` header value, or `None` when it is anything else.
fn parse_signature(value: &str) -> Option<Vec<u8>> {
    let mac = encoding::decode_hex(value.strip_prefix("v0=")?).ok()?;
    (mac.len() == 32).then_some(mac)
}

/// Unix seconds written as ASCII digits only (no sign, no spaces).
fn parse_seconds(text: &str) -> Option<u64> {
    if text.bytes().all(|byte| byte.is_ascii_digit()) { text.parse().ok() } else { None }
}

/// Whether `seconds` is within `tolerance` of `now_ms`, in the past or the future.
fn is_fresh(seconds: u64, now_ms: u64, tolerance: Duration) -> bool {
    seconds
        .checked_mul(1000)
        .is_some_and(|signed_ms| u128::from(now_ms.abs_diff(signed_ms)) <= tolerance.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_content_is_version_timestamp_body() {
        assert_eq!(signed_content("1531420618", b"token=x"), b"v0:1531420618:token=x".to_vec());
    }

    #[test]
    fn parses_v0_signatures_only() {
        let hex = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(parse_signature(&format!("v0={hex}")).map(|mac| mac.len()), Some(32));
        for value in ["", "v0=", hex, &format!("v1={hex}"), &format!("v0={}", &hex[2..])] {
            assert_eq!(parse_signature(value), None, "{value}");
        }
    }

    #[test]
    fn timestamps_are_plain_digits_within_the_tolerance() {
        assert_eq!(parse_seconds("1531420618"), Some(1_531_420_618));
        for text in ["", "-1", " 1", "1.5"] {
            assert_eq!(parse_seconds(text), None, "{text:?}");
        }
        let tolerance = Duration::from_secs(300);
        assert!(is_fresh(1_700, 2_000_000, tolerance));
        assert!(!is_fresh(1_699, 2_000_000, tolerance));
        assert!(is_fresh(2_300, 2_000_000, tolerance));
        assert!(!is_fresh(2_301, 2_000_000, tolerance));
    }
}
