//! `verify-shopify`: authenticates Shopify webhooks by their `x-shopify-hmac-sha256` header.
//!
//! Shopify signs the raw body with HMAC-SHA256 keyed with the app's client secret and sends the
//! MAC base64-encoded in `x-shopify-hmac-sha256`. The signature carries no timestamp, so there
//! is no tolerance; replays are caught by the dedupe key instead. It answers:
//!
//! - `reject` 401 `missing_signature` when the header is absent or not the base64 of 32 bytes;
//! - `reject` 401 `bad_signature` when the MAC does not match the body;
//! - `modify` setting the metadata key `dedupe-key` to `x-shopify-webhook-id` when the MAC
//!   matches and that header is present, `pass` when it is absent;
//! - `failure::fatal` when the config key `secret` is missing or the host cannot use the secret.
//!
//! Must not: parse or re-serialise the body, or put the expected MAC in any message.

use switchyard_sdk::{Event, Failure, Rejection, Verification, crypto, encoding, host};

const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";
const WEBHOOK_ID_HEADER: &str = "x-shopify-webhook-id";

#[switchyard_sdk::verify]
fn verify_shopify(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let Some(mac) = event.header(SIGNATURE_HEADER).and_then(parse_signature) else {
        return Ok(Rejection::missing_signature(
            "missing or malformed `x-shopify-hmac-sha256` header: expected the base64 of a \
             32-byte HMAC-SHA256",
        )
        .into());
    };
    if !crypto::hmac_sha256_verify(&secret, &event.body, &mac)? {
        return Ok(
            Rejection::bad_signature("`x-shopify-hmac-sha256` does not match the body").into()
        );
    }
    Ok(match event.header(WEBHOOK_ID_HEADER).filter(|id| !id.is_empty()) {
        Some(id) => Verification::accept_with_dedupe_key(id),
        None => Verification::accept(),
    })
}

/// The 32 MAC bytes of a base64 header value, or `None` when it is anything else.
fn parse_signature(value: &str) -> Option<Vec<u8>> {
    let mac = encoding::decode_base64(value.trim()).ok()?;
    (mac.len() == 32).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base64_of_32_bytes_only() {
        let valid = "dXPQy1J0V4Lid5yCrDzM8Lq+8DE3VmWmL+kdNOldS6g=";
        assert_eq!(parse_signature(valid).map(|mac| mac.len()), Some(32));
        for value in ["", "!!!", "AAAA", "dXPQy1J0V4Lid5yCrDzM8Lq+8DE3VmWmL+kdNOldS6gA"] {
            assert_eq!(parse_signature(value), None, "{value}");
        }
    }
}
