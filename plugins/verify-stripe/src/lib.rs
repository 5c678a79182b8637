//! `verify-stripe`: authenticates Stripe webhooks by their `stripe-signature` header.
//!
//! Stripe signs `{t}.{raw body}` with HMAC-SHA256 keyed with the endpoint's whole `whsec_…`
//! string as bytes (it is not base64-decoded), and sends
//! `stripe-signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]` (several `v1` entries
//! while a secret is being rolled). Config keys:
//!
//! - `secret` (required): the name of the secret holding the `whsec_…` string;
//! - `tolerance` (default `"5m"`): how far `t` may be from now, in either direction.
//!
//! It answers, checking in this order:
//!
//! - `reject` 401 `missing_signature` when the header is absent, has no `t=` that is unix
//!   seconds, or has no `v1=` entry;
//! - `reject` 401 `stale_timestamp` when `t` is further from the host's clock than the tolerance
//!   (so a replayed request is reported as stale whatever its signatures);
//! - `pass` when any `v1` entry verifies (Stripe sends no delivery id header, so there is no
//!   dedupe key; the event id is inside the body);
//! - `reject` 401 `bad_signature` otherwise (`v0` and unknown entries never verify);
//! - `failure::fatal` when `secret` is missing, `tolerance` does not parse, or the host cannot
//!   use the secret.
//!
//! Must not: parse or re-serialise the body, or put an expected signature in any message.

use std::time::Duration;

use switchyard_sdk::{Event, Failure, Rejection, Verification, crypto, encoding, host};

const SIGNATURE_HEADER: &str = "stripe-signature";
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[switchyard_sdk::verify]
fn verify_stripe(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let tolerance = host::config_duration("tolerance", DEFAULT_TOLERANCE)?;
    let header = match event.header(SIGNATURE_HEADER).map(parse_header) {
        Some(Ok(header)) => header,
        Some(Err(rejection)) => return Ok(rejection.into()),
        None => {
            return Ok(Rejection::missing_signature("missing `stripe-signature` header").into());
        }
    };
    if !is_fresh(header.seconds, host::now_ms(), tolerance) {
        return Ok(Rejection::stale_timestamp(format!(
            "the `stripe-signature` timestamp is more than {} s away from the current time",
            tolerance.as_secs()
        ))
        .into());
    }
    let content = header.signed_content(&event.body);
    for mac in &header.macs {
        if crypto::hmac_sha256_verify(&secret, &content, mac)? {
            return Ok(Verification::accept());
        }
    }
    Ok(Rejection::bad_signature("no `v1` signature in `stripe-signature` matches the body").into())
}

/// The parts of a well-formed `stripe-signature` header.
#[derive(Debug, PartialEq)]
struct Header {
    /// `t` as received: the signed content uses this text.
    timestamp: String,
    seconds: u64,
    /// The decodable 32-byte `v1` MACs; malformed ones are skipped, since they cannot match.
    macs: Vec<Vec<u8>>,
}

impl Header {
    /// `{t}.{body}`, the bytes every `v1` MAC covers.
    fn signed_content(&self, body: &[u8]) -> Vec<u8> {
        let mut content = Vec::with_capacity(self.timestamp.len() + 1 + body.len());
        content.extend_from_slice(self.timestamp.as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        content
    }
}

/// Parses `t=…,v1=…,…`; a header without a usable `t` or without any `v1` entry is a
/// `missing_signature` rejection.
fn parse_header(value: &str) -> Result<Header, Rejection> {
    let mut timestamp = None;
    let mut has_v1 = false;
    let mut macs = Vec::new();
    for item in value.split(',') {
        let Some((key, text)) = item.trim().split_once('=') else { continue };
        match key {
            "t" if timestamp.is_none() => timestamp = Some(text),
            "v1" => {
                has_v1 = true;
                if let Ok(mac) = encoding::decode_hex(text)
                    && mac.len() == 32
                {
                    macs.push(mac);
                }
            }
            _ => {}
        }
    }
    let Some((timestamp, seconds)) = timestamp.and_then(|text| Some((text, parse_seconds(text)?)))
    else {
        return Err(Rejection::missing_signature(
            "malformed `stripe-signature` header: expected `t=<unix seconds>,v1=<hex>`",
        ));
    };
    if !has_v1 {
        return Err(Rejection::missing_signature("`stripe-signature` has no `v1` signature"));
    }
    Ok(Header { timestamp: timestamp.to_owned(), seconds, macs })
}

/// Unix seconds written as ASCII digits only (no sign, no spaces).
fn parse_seconds(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
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

    const MAC: &str = "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";

    #[test]
    fn parses_timestamp_and_every_v1_entry() {
        let header = parse_header(&format!("t=1492774577,v1={MAC},v0=00,v1={MAC},x=y")).unwrap();
        assert_eq!(header.timestamp, "1492774577");
        assert_eq!(header.seconds, 1_492_774_577);
        assert_eq!(header.macs.len(), 2);
        assert_eq!(header.signed_content(b"{}"), b"1492774577.{}".to_vec());
    }

    #[test]
    fn malformed_v1_entries_are_skipped_but_count_as_present() {
        let header = parse_header("t=1,v1=zz,v1=abcd").unwrap();
        assert!(header.macs.is_empty());
    }

    #[test]
    fn headers_without_a_timestamp_or_a_v1_are_missing_signatures() {
        for value in ["", "garbage", &format!("v1={MAC}"), "t=1492774577", "t=-1,v1=00", "t=,v1=00"]
        {
            let rejection = parse_header(value).expect_err(value);
            assert_eq!(rejection.code, "missing_signature", "{value}");
        }
        assert!(parse_header(&format!("t=1492774577,v0={MAC}")).is_err());
    }

    #[test]
    fn the_tolerance_applies_both_ways_and_includes_its_bound() {
        let now = 1_000_000_000;
        let tolerance = Duration::from_secs(300);
        assert!(is_fresh(999_700, now, tolerance));
        assert!(!is_fresh(999_699, now, tolerance));
        assert!(is_fresh(1_000_300, now, tolerance));
        assert!(!is_fresh(1_000_301, now, tolerance));
        assert!(!is_fresh(u64::MAX / 10, now, tolerance));
    }
}
