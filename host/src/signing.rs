//! Standard Webhooks signatures: `v1` (HMAC-SHA256) and `v1a` (ed25519).
//!
//! Pure functions over raw bytes: the signed content is exactly `{id}.{timestamp}.{body}`.
//! Owns key parsing (`whsec_`, `whsk_`, `whpk_`) and the `webhook-signature` header value.
//! Keys never appear in `Debug` output. There is no I/O and no clock here: callers pass time in.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, Verifier};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SYMMETRIC_PREFIX: &str = "whsec_";
const SECRET_KEY_PREFIX: &str = "whsk_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error("a key must start with `whsec_` (HMAC) or `whsk_` (ed25519)")]
    UnknownPrefix,
    #[error("the key after its prefix is not valid base64")]
    Base64,
    #[error("the key is empty")]
    Empty,
    #[error("an ed25519 key is 32 bytes (or a 64-byte key pair), found {0}")]
    Length(usize),
}

/// A key that signs deliveries.
#[derive(Clone)]
pub enum SigningKey {
    /// `whsec_<base64>`: the decoded bytes are the HMAC key.
    Symmetric(Vec<u8>),
    /// `whsk_<base64>`: a 32-byte ed25519 seed, or a 64-byte seed + public key pair.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Symmetric(_) => "SigningKey::Symmetric(<redacted>)",
            Self::Ed25519(_) => "SigningKey::Ed25519(<redacted>)",
        })
    }
}

fn decode(encoded: &str) -> Result<Vec<u8>, SigningKeyError> {
    let bytes = STANDARD.decode(encoded.trim()).map_err(|_| SigningKeyError::Base64)?;
    if bytes.is_empty() { Err(SigningKeyError::Empty) } else { Ok(bytes) }
}

impl SigningKey {
    pub fn parse(text: &str) -> Result<Self, SigningKeyError> {
        if let Some(encoded) = text.strip_prefix(SYMMETRIC_PREFIX) {
            return decode(encoded).map(Self::Symmetric);
        }
        let encoded = text.strip_prefix(SECRET_KEY_PREFIX).ok_or(SigningKeyError::UnknownPrefix)?;
        let bytes = decode(encoded)?;
        let key = match bytes.len() {
            32 => ed25519_dalek::SigningKey::from_bytes(
                &bytes.try_into().map_err(|_| SigningKeyError::Length(32))?,
            ),
            64 => {
                let pair: [u8; 64] = bytes.try_into().map_err(|_| SigningKeyError::Length(64))?;
                ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
                    .map_err(|_| SigningKeyError::Length(64))?
            }
            other => return Err(SigningKeyError::Length(other)),
        };
        Ok(Self::Ed25519(Box::new(key)))
    }

    /// The `whpk_…` public key of an ed25519 key; `None` for HMAC keys.
    pub fn public_key(&self) -> Option<String> {
        match self {
            Self::Symmetric(_) => None,
            Self::Ed25519(key) => Some(format!(
                "{PUBLIC_KEY_PREFIX}{}",
                STANDARD.encode(key.verifying_key().as_bytes())
            )),
        }
    }

    fn sign(&self, content: &[u8]) -> String {
        match self {
            Self::Symmetric(key) => format!("v1,{}", STANDARD.encode(hmac_sha256(key, content))),
            Self::Ed25519(key) => format!("v1a,{}", STANDARD.encode(key.sign(content).to_bytes())),
        }
    }
}

fn hmac_sha256(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

fn signed_content(message_id: &str, timestamp_seconds: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(message_id.len() + body.len() + 24);
    content.extend_from_slice(message_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp_seconds.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` header value: one space-separated entry per key, in key order.
pub fn signature_header(
    keys: &[SigningKey],
    message_id: &str,
    timestamp_seconds: i64,
    body: &[u8],
) -> String {
    let content = signed_content(message_id, timestamp_seconds, body);
    keys.iter().map(|key| key.sign(&content)).collect::<Vec<_>>().join(" ")
}

/// A key that verifies signatures: `whsec_` (HMAC) or `whpk_` (ed25519 public key).
#[derive(Clone)]
pub enum VerifyingKey {
    Symmetric(Vec<u8>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("VerifyingKey(<redacted>)")
    }
}

impl VerifyingKey {
    pub fn parse(text: &str) -> Result<Self, SigningKeyError> {
        if let Some(encoded) = text.strip_prefix(SYMMETRIC_PREFIX) {
            return decode(encoded).map(Self::Symmetric);
        }
        let encoded = text.strip_prefix(PUBLIC_KEY_PREFIX).ok_or(SigningKeyError::UnknownPrefix)?;
        let bytes: [u8; 32] = decode(encoded)?
            .try_into()
            .map_err(|bytes: Vec<u8>| SigningKeyError::Length(bytes.len()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(Self::Ed25519)
            .map_err(|_| SigningKeyError::Length(32))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is empty or malformed")]
    Malformed,
    #[error("the timestamp is outside the tolerance")]
    StaleTimestamp,
    #[error("no signature matches")]
    NoMatch,
}

/// Checks a `webhook-signature` value: the timestamp within `tolerance_seconds` of `now`
/// (both directions), and at least one entry made by one of `keys`.
pub fn verify(
    keys: &[VerifyingKey],
    message_id: &str,
    timestamp_seconds: i64,
    body: &[u8],
    header_value: &str,
    now_seconds: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    if header_value.trim().is_empty() {
        return Err(VerifyError::Malformed);
    }
    if (now_seconds - timestamp_seconds).abs() > tolerance_seconds {
        return Err(VerifyError::StaleTimestamp);
    }
    let content = signed_content(message_id, timestamp_seconds, body);
    for entry in header_value.split(' ').filter(|entry| !entry.is_empty()) {
        let Some((version, encoded)) = entry.split_once(',') else {
            return Err(VerifyError::Malformed);
        };
        let Ok(signature) = STANDARD.decode(encoded) else { continue };
        let matched = keys.iter().any(|key| match (version, key) {
            ("v1", VerifyingKey::Symmetric(secret)) => {
                let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
                mac.update(&content);
                mac.verify_slice(&signature).is_ok()
            }
            ("v1a", VerifyingKey::Ed25519(public)) => {
                ed25519_dalek::Signature::from_slice(&signature)
                    .is_ok_and(|signature| public.verify(&content, &signature).is_ok())
            }
            _ => false,
        });
        if matched {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        let table = [
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                r#"{"email":"test@example.com","username":"test_user"}"#,
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        for (secret, id, timestamp, body, expected) in table {
            let key = SigningKey::parse(secret).unwrap();
            assert_eq!(signature_header(&[key], id, timestamp, body.as_bytes()), expected);
            let verifying = VerifyingKey::parse(secret).unwrap();
            assert_eq!(
                verify(&[verifying], id, timestamp, body.as_bytes(), expected, timestamp, 300),
                Ok(())
            );
        }
    }

    #[test]
    fn rotation_signs_with_every_key() {
        let keys = [
            SigningKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap(),
            SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        ];
        let header = signature_header(&keys, "evt_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        let second = VerifyingKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(verify(&[second], "evt_1", 10, b"{}", &header, 10, 300), Ok(()));
    }

    #[test]
    fn ed25519_round_trip() {
        let seed = STANDARD.encode([7u8; 32]);
        let key = SigningKey::parse(&format!("whsk_{seed}")).unwrap();
        let public = VerifyingKey::parse(&key.public_key().unwrap()).unwrap();
        let header = signature_header(std::slice::from_ref(&key), "evt_1", 100, b"body");
        assert!(header.starts_with("v1a,"));
        assert_eq!(
            verify(std::slice::from_ref(&public), "evt_1", 100, b"body", &header, 100, 300),
            Ok(())
        );
        assert_eq!(
            verify(&[public], "evt_1", 100, b"bodY", &header, 100, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(format!("{key:?}"), "SigningKey::Ed25519(<redacted>)");
    }

    #[test]
    fn tolerance_edges() {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let key = [SigningKey::parse(secret).unwrap()];
        let verifying = [VerifyingKey::parse(secret).unwrap()];
        let header = signature_header(&key, "id", 1000, b"x");
        for (now, expected) in [
            (1300, Ok(())),
            (700, Ok(())),
            (1301, Err(VerifyError::StaleTimestamp)),
            (699, Err(VerifyError::StaleTimestamp)),
        ] {
            assert_eq!(verify(&verifying, "id", 1000, b"x", &header, now, 300), expected, "{now}");
        }
        assert_eq!(
            verify(&verifying, "id", 1000, b"x", "", 1000, 300),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(SigningKey::parse("secret").unwrap_err(), SigningKeyError::UnknownPrefix);
        assert_eq!(SigningKey::parse("whsec_***").unwrap_err(), SigningKeyError::Base64);
        assert_eq!(SigningKey::parse("whsec_").unwrap_err(), SigningKeyError::Empty);
        assert_eq!(SigningKey::parse("whsk_AAAA").unwrap_err(), SigningKeyError::Length(3));
    }
}
