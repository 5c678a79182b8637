//! `verify-standard-webhooks`: authenticates webhooks signed per the Standard Webhooks spec.
//!
//! The sender signs `{webhook-id}.{webhook-timestamp}.{raw body}` and sends the headers
//! `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`: space-separated
//! `v1,<base64 HMAC-SHA256>` and `v1a,<base64 ed25519 signature>` entries, several during a key
//! rotation. Config keys:
//!
//! - `secret` (required): the name of the secret holding the `whsec_…` key for `v1` entries;
//! - `public-key` (optional): the name of the secret holding the `whpk_…` key for `v1a`
//!   entries; without it `v1a` entries are skipped;
//! - `tolerance` (default `"5m"`): how far the timestamp may be from now, in either direction.
//!
//! It answers, checking in this order:
//!
//! - `reject` 401 `missing_signature` when a header is absent, the timestamp is not a whole
//!   number of seconds, or no signature entry has the `version,signature` form;
//! - `reject` 401 `stale_timestamp` when the timestamp is further from the host's clock than
//!   the tolerance (so a replay is reported as stale whatever its signatures);
//! - `modify` setting the metadata key `dedupe-key` to `webhook-id` when any `v1` or `v1a`
//!   entry verifies (entries of other versions are skipped, as the spec asks);
//! - `reject` 401 `bad_signature` otherwise;
//! - `failure::fatal` when `secret` is missing, `tolerance` does not parse, or the host cannot
//!   use a secret.
//!
//! The keys never enter the sandbox: the host decodes them and compares in constant time.
//! Must not: parse or re-serialise the body, or put an expected signature in any message.

use std::time::Duration;

use switchyard_sdk::crypto::{self, KeyEncoding};
use switchyard_sdk::{Event, Failure, Rejection, Verification, encoding, host};

const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

#[switchyard_sdk::verify]
fn verify_standard_webhooks(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let public_key = host::config("public-key");
    let tolerance = host::config_duration("tolerance", DEFAULT_TOLERANCE)?;
    let message = match Message::from_event(event, host::now_ms(), tolerance) {
        Ok(message) => message,
        Err(rejection) => return Ok(rejection.into()),
    };
    let content = message.signed_content(&event.body);
    for signature in &message.signatures {
        let valid = match (signature, &public_key) {
            (Signature::V1(mac), _) => crypto::hmac_sha256_verify_with(
                &secret,
                KeyEncoding::StandardWebhooks,
                &content,
                mac,
            )?,
            (Signature::V1a(signature), Some(public_key)) => {
                crypto::ed25519_verify(public_key, &content, signature)?
            }
            (Signature::V1a(_), None) => false,
        };
        if valid {
            return Ok(Verification::accept_with_dedupe_key(message.id));
        }
    }
    Ok(Rejection::bad_signature("no `webhook-signature` entry matches the body").into())
}

/// The signed parts of a request whose headers are present, well formed and fresh.
#[derive(Debug, PartialEq)]
struct Message {
    id: String,
    /// As received: the signed content uses this text, not a re-formatted number.
    timestamp: String,
    signatures: Vec<Signature>,
}

/// A signature entry this plugin can check.
#[derive(Debug, PartialEq)]
enum Signature {
    /// `v1`: a 32-byte HMAC-SHA256.
    V1(Vec<u8>),
    /// `v1a`: a 64-byte ed25519 signature.
    V1a(Vec<u8>),
}

impl Message {
    /// The message of `event`, or the rejection its headers or timestamp earn.
    fn from_event(event: &Event, now_ms: u64, tolerance: Duration) -> Result<Message, Rejection> {
        let header = |name: &str| {
            event
                .header(name)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| Rejection::missing_signature(format!("missing `{name}` header")))
        };
        let id = header("webhook-id")?;
        let timestamp = header("webhook-timestamp")?;
        let signature = header("webhook-signature")?;

        let Some(seconds) = parse_seconds(timestamp) else {
            return Err(Rejection::missing_signature(
                "malformed `webhook-timestamp` header: expected unix seconds",
            ));
        };
        let fresh = seconds.checked_mul(1000).is_some_and(|signed_ms| {
            u128::from(now_ms.abs_diff(signed_ms)) <= tolerance.as_millis()
        });
        if !fresh {
            return Err(Rejection::stale_timestamp(format!(
                "`webhook-timestamp` is more than {} s away from the current time",
                tolerance.as_secs()
            )));
        }

        let Some(signatures) = parse_signatures(signature) else {
            return Err(Rejection::missing_signature(
                "malformed `webhook-signature` header: expected space-separated `v1,<base64>` \
                 entries",
            ));
        };
        Ok(Message { id: id.to_string(), timestamp: timestamp.to_string(), signatures })
    }

    /// `{id}.{timestamp}.{body}`, the bytes every signature covers.
    fn signed_content(&self, body: &[u8]) -> Vec<u8> {
        let mut content = Vec::with_capacity(self.id.len() + self.timestamp.len() + 2 + body.len());
        content.extend_from_slice(self.id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(self.timestamp.as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        content
    }
}

/// Unix seconds written as ASCII digits only (no sign, no spaces).
fn parse_seconds(text: &str) -> Option<u64> {
    if text.bytes().all(|byte| byte.is_ascii_digit()) { text.parse().ok() } else { None }
}

/// The checkable entries of a `webhook-signature` value, or `None` when no entry has the
/// `version,signature` form. Entries of unknown versions, undecodable base64 or the wrong
/// length are skipped: they cannot match, and they must not hide a good entry beside them.
fn parse_signatures(value: &str) -> Option<Vec<Signature>> {
    let mut well_formed = false;
    let mut signatures = Vec::new();
    for entry in value.split_ascii_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else { continue };
        if version.is_empty() || encoded.is_empty() {
            continue;
        }
        well_formed = true;
        let Ok(bytes) = encoding::decode_base64(encoded) else { continue };
        match (version, bytes.len()) {
            ("v1", 32) => signatures.push(Signature::V1(bytes)),
            ("v1a", 64) => signatures.push(Signature::V1a(bytes)),
            _ => {}
        }
    }
    well_formed.then_some(signatures)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_649_367_600_000;
    const SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn event(timestamp: &str) -> Event {
        Event::new("s", "t")
            .with_header("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk")
            .with_header("webhook-timestamp", timestamp)
            .with_header("webhook-signature", SIGNATURE)
            .with_body(r#"{"email":"test@example.com","username":"test_user"}"#)
    }

    fn code(result: Result<Message, Rejection>) -> String {
        result.expect_err("a rejection").code
    }

    #[test]
    fn the_signed_content_is_id_timestamp_body() {
        let message = Message::from_event(&event("1649367553"), NOW_MS, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(message.signatures.len(), 1);
        assert_eq!(
            message.signed_content(b"{}"),
            b"msg_27UH4WbU6Z5A5EzD8u03UvzRbpk.1649367553.{}".to_vec()
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_missing_signatures() {
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut request = event("1649367553");
            request.remove_header(name);
            assert_eq!(
                code(Message::from_event(&request, NOW_MS, DEFAULT_TOLERANCE)),
                "missing_signature"
            );
        }
        for timestamp in ["", "-1649367553", " 1649367553", "1649367553.5", "soon"] {
            let result = Message::from_event(&event(timestamp), NOW_MS, DEFAULT_TOLERANCE);
            assert_eq!(code(result), "missing_signature", "{timestamp:?}");
        }
    }

    #[test]
    fn the_tolerance_applies_both_ways_and_includes_its_bound() {
        let tolerance = Duration::from_secs(300);
        for (timestamp, fresh) in [
            ("1649367300", true),
            ("1649367299", false),
            ("1649367900", true),
            ("1649367901", false),
            ("18446744073709552", false), // overflows as milliseconds
        ] {
            let result = Message::from_event(&event(timestamp), NOW_MS, tolerance);
            match fresh {
                true => assert!(result.is_ok(), "{timestamp}"),
                false => assert_eq!(code(result), "stale_timestamp", "{timestamp}"),
            }
        }
    }

    #[test]
    fn signature_entries() {
        let v1 = "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";
        let v1a = "A".repeat(86) + "==";
        let parsed = parse_signatures(&format!("v2,abc v1,{v1}  v1a,{v1a} v1,AAAA v1,!!"));
        assert_eq!(
            parsed,
            Some(vec![
                Signature::V1(encoding::decode_base64(v1).unwrap()),
                Signature::V1a(vec![0; 64]),
            ])
        );
        assert_eq!(parse_signatures("v1,AAAA"), Some(vec![]));
        assert_eq!(parse_signatures("garbage"), None);
        assert_eq!(parse_signatures("v1, ,x"), None);
    }
}
