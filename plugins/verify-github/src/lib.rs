//! `verify-github`: authenticates GitHub webhooks by their `x-hub-signature-256` header.
//!
//! GitHub signs the raw body with HMAC-SHA256 keyed with the webhook secret's bytes and sends
//! `x-hub-signature-256: sha256=<lowercase hex>`. This plugin hands the MAC to the host, which
//! compares it in constant time with the secret named by the config key `secret`; the secret
//! never enters the sandbox. It answers:
//!
//! - `reject` 401 `missing_signature` when the header is absent or not `sha256=` followed by
//!   64 hex digits;
//! - `reject` 401 `bad_signature` when the MAC does not match the body;
//! - `modify` setting the metadata key `dedupe-key` to the `x-github-delivery` header when the
//!   signature matches and the header is present, `pass` when it is absent;
//! - `failure::fatal` when the config key `secret` is missing or the host cannot use the secret.
//!
//! Must not: parse or re-serialise the body (the MAC covers the raw bytes), or put the expected
//! MAC in any message.

use switchyard_sdk::{Event, Failure, Rejection, Verification, crypto, encoding, host};

const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const DELIVERY_HEADER: &str = "x-github-delivery";

#[switchyard_sdk::verify]
fn verify_github(event: &Event) -> Result<Verification, Failure> {
    let secret = host::require_config("secret")?;
    let Some(mac) = event.header(SIGNATURE_HEADER).and_then(parse_signature) else {
        return Ok(Rejection::missing_signature(
            "missing or malformed `x-hub-signature-256` header: expected `sha256=<64 hex digits>`",
        )
        .into());
    };
    if !crypto::hmac_sha256_verify(&secret, &event.body, &mac)? {
        return Ok(Rejection::bad_signature("`x-hub-signature-256` does not match the body").into());
    }
    Ok(match event.header(DELIVERY_HEADER).filter(|delivery| !delivery.is_empty()) {
        Some(delivery) => Verification::accept_with_dedupe_key(delivery),
        None => Verification::accept(),
    })
}

/// The 32 MAC bytes of a `sha256=<hex>` header value, or `None` when it is anything else.
fn parse_signature(value: &str) -> Option<Vec<u8>> {
    let mac = encoding::decode_hex(value.strip_prefix("sha256=")?).ok()?;
    (mac.len() == 32).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn parses_the_documented_header() {
        let mac = parse_signature(VECTOR).expect("the vector parses");
        assert_eq!(encoding::encode_hex(&mac), &VECTOR["sha256=".len()..]);
    }

    #[test]
    fn refuses_malformed_headers() {
        for value in [
            "",
            "sha256=",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17ff",
            "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ] {
            assert_eq!(parse_signature(value), None, "{value}");
        }
    }
}
