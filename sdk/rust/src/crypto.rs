//! Verification with secrets the plugin never sees: wrappers over the host's `crypto` imports.
//!
//! Owns the plugin-facing names of the host's verification functions and the wording of
//! [`CryptoError`] messages. Secrets are named, never held: the host looks the name up among
//! the secrets the plugin's binding lists, and compares in constant time. There is deliberately
//! no signing function. Every function here calls the host, so it works only inside a component
//! (natively it panics).

use crate::bindings::switchyard::plugin::crypto as imports;
pub use crate::bindings::switchyard::plugin::crypto::{CryptoError, KeyEncoding};

/// Whether `mac` is the HMAC-SHA256 of `data` keyed with the bytes of the secret named `secret`
/// (as they are: GitHub, Stripe, Slack, Shopify).
///
/// ```no_run
/// use switchyard_sdk::{crypto, encoding};
///
/// let hex = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
/// let mac = encoding::decode_hex(hex)?;
/// let valid = crypto::hmac_sha256_verify("github", b"Hello, World!", &mac)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hmac_sha256_verify(secret: &str, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
    imports::hmac_sha256_verify(secret, data, mac)
}

/// Whether `mac` is the HMAC-SHA1 of `data` keyed with the bytes of the secret named `secret`.
pub fn hmac_sha1_verify(secret: &str, data: &[u8], mac: &[u8]) -> Result<bool, CryptoError> {
    imports::hmac_sha1_verify(secret, data, mac)
}

/// Whether `mac` is the HMAC-SHA256 of `data` keyed with the secret named `secret`, decoded per
/// `encoding` ([`KeyEncoding::StandardWebhooks`] for `whsec_…` secrets).
pub fn hmac_sha256_verify_with(
    secret: &str,
    encoding: KeyEncoding,
    data: &[u8],
    mac: &[u8],
) -> Result<bool, CryptoError> {
    imports::hmac_sha256_verify_with(secret, encoding, data, mac)
}

/// Whether `signature` is an ed25519 signature of `data` by the public key held in the secret
/// named `public_key` (`whpk_` + base64, or bare base64 of the 32 key bytes).
pub fn ed25519_verify(
    public_key: &str,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    imports::ed25519_verify(public_key, data, signature)
}

/// The SHA-256 digest of `data`, computed by the host.
pub fn sha256(data: &[u8]) -> Vec<u8> {
    imports::sha256(data)
}

/// A sentence for logs and failures, e.g. ``unknown secret `github` ``.
///
/// ```
/// use switchyard_sdk::crypto::{CryptoError, describe};
///
/// assert_eq!(describe(&CryptoError::NotAllowed("github".into())),
///            "secret `github` is not listed in this plugin's `secrets`");
/// ```
pub fn describe(error: &CryptoError) -> String {
    match error {
        CryptoError::UnknownSecret(name) => format!("unknown secret `{name}`"),
        CryptoError::NotAllowed(name) => {
            format!("secret `{name}` is not listed in this plugin's `secrets`")
        }
        CryptoError::BadInput(detail) => format!("bad crypto input: {detail}"),
    }
}
