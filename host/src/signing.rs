//! Standard Webhooks signatures: `v1` (HMAC-SHA256) and `v1a` (ed25519) over raw bytes.
//!
//! Owns the key formats (`whsec_`, `whsk_`, `whpk_`), the `webhook-signature` value put on
//! every outbound delivery, and its verification for inbound requests and tests. The signed
//! content is exactly `{message id}.{timestamp}.{body}` over the raw body bytes.
//!
//! Must not: read a clock or draw randomness (times are arguments), do I/O or log, or let key
//! bytes reach `Debug` output or error messages.
//!
//! Key formats, all base64 (standard alphabet; the trailing `=` padding is optional, and
//! whitespace around the whole key is ignored because secret files usually end in a newline):
//! - `whsec_<base64>`: the decoded bytes are the HMAC-SHA256 key. The spec asks for 24 to 64
//!   bytes (192 to 512 bits); shorter or longer keys are refused.
//! - `whsk_<base64>`: an ed25519 secret key. The spec only says "a standard ed25519 key pair",
//!   so we follow the reference implementation (the Standard Webhooks Go library decodes it
//!   with `ed25519.NewKeyFromSeed`): the payload is the 32-byte RFC 8032 seed. The 64-byte
//!   "seed then public key" export of some libraries is refused with a length error rather
//!   than guessed at; a test below checks the Go library's published `v1a` answer.
//! - `whpk_<base64>`: the 32-byte compressed ed25519 public key, for verification only.
//!
//! Verification checks the timestamp first (so a stale replay is reported as stale whatever
//! its signatures), then accepts the header if any `v1` entry matches any symmetric key or any
//! `v1a` entry matches any ed25519 key. Entries with other versions are skipped, as the spec
//! asks for forward compatibility. HMACs are compared in constant time (`Mac::verify_slice`);
//! ed25519 uses `verify_strict`, which refuses weak keys and malleable signatures.

pub mod diagnose;

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of a symmetric (HMAC-SHA256) secret.
pub const SYMMETRIC_PREFIX: &str = "whsec_";
/// Prefix of an ed25519 secret key (the 32-byte seed).
pub const SECRET_KEY_PREFIX: &str = "whsk_";
/// Prefix of an ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// Signature version of HMAC-SHA256 entries.
pub const SYMMETRIC_VERSION: &str = "v1";
/// Signature version of ed25519 entries.
pub const ASYMMETRIC_VERSION: &str = "v1a";

const SYMMETRIC_MINIMUM_BYTES: usize = 24;
const SYMMETRIC_MAXIMUM_BYTES: usize = 64;
const SYMMETRIC_EXPECTED: &str = "24 to 64 bytes";
const ED25519_KEY_BYTES: usize = 32;
const ED25519_SECRET_EXPECTED: &str = "32 bytes (an ed25519 seed)";
const ED25519_PUBLIC_EXPECTED: &str = "32 bytes (an ed25519 public key)";

/// Decodes key material: standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a key is parsed for: signing deliveries, or checking signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// `whsec_` or `whsk_`.
    Signing,
    /// `whsec_` or `whpk_`.
    Verifying,
}

impl KeyRole {
    fn expected(self) -> &'static str {
        match self {
            Self::Signing => "`whsec_<base64>` or `whsk_<base64>`",
            Self::Verifying => "`whsec_<base64>` or `whpk_<base64>`",
        }
    }

    fn prefixes(self) -> &'static str {
        match self {
            Self::Signing => "a key must start with `whsec_` (HMAC) or `whsk_` (ed25519)",
            Self::Verifying => {
                "a verifying key must start with `whsec_` (HMAC) or `whpk_` (ed25519 public key)"
            }
        }
    }

    fn other_half(self) -> &'static str {
        match self {
            Self::Signing => {
                "a `whpk_` key is public and cannot sign; use the matching `whsk_` secret key"
            }
            Self::Verifying => {
                "a `whsk_` key is secret; verify with its `whpk_` public key instead"
            }
        }
    }
}

/// Why a signing or verifying key was refused. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty; expected {}", .role.expected())]
    Empty { role: KeyRole },
    #[error("{}", .role.prefixes())]
    UnknownPrefix { role: KeyRole },
    /// The other half of an ed25519 pair: `whpk_` to sign, or `whsk_` to verify.
    #[error("{}", .role.other_half())]
    OtherHalf { role: KeyRole },
    #[error("the `{prefix}` key has nothing after its prefix")]
    MissingKeyMaterial { prefix: &'static str },
    #[error("the `{prefix}` key is not valid base64 after its prefix")]
    InvalidBase64 { prefix: &'static str },
    #[error("the `{prefix}` key decodes to {actual} bytes; expected {expected}")]
    WrongLength { prefix: &'static str, actual: usize, expected: &'static str },
    #[error("the `whpk_` key is not a valid ed25519 public key")]
    InvalidPublicKey,
}

/// Why an inbound `webhook-signature` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the `webhook-signature` header is missing or empty")]
    MissingSignature,
    #[error(
        "the `webhook-signature` header has no `version,base64` entry, \
         e.g. `v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=`"
    )]
    MalformedSignatureHeader,
    #[error(
        "`webhook-timestamp` is {age_seconds} s old, beyond the tolerance of \
         {tolerance_seconds} s"
    )]
    TimestampTooOld { age_seconds: u64, tolerance_seconds: u64 },
    #[error(
        "`webhook-timestamp` is {ahead_seconds} s in the future, beyond the tolerance of \
         {tolerance_seconds} s"
    )]
    TimestampInFuture { ahead_seconds: u64, tolerance_seconds: u64 },
    #[error("no entry of `webhook-signature` matches a configured key")]
    NoMatchingSignature,
}

/// A key that signs outbound deliveries.
#[derive(Clone)]
pub enum SigningKey {
    /// `whsec_…`: signs `v1` entries.
    Symmetric(SymmetricKey),
    /// `whsk_…`: signs `v1a` entries.
    Ed25519(Ed25519SecretKey),
}

/// A key that checks inbound signatures.
#[derive(Clone)]
pub enum VerifyingKey {
    /// `whsec_…`: checks `v1` entries.
    Symmetric(SymmetricKey),
    /// `whpk_…`: checks `v1a` entries.
    Ed25519(Ed25519PublicKey),
}

/// An HMAC-SHA256 key, held as the keyed MAC state (the raw secret is not kept).
#[derive(Clone)]
pub struct SymmetricKey {
    mac: Hmac<Sha256>,
}

/// An ed25519 secret key.
#[derive(Clone)]
pub struct Ed25519SecretKey {
    key: ed25519_dalek::SigningKey,
}

/// An ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    key: ed25519_dalek::VerifyingKey,
}

/// What went wrong decoding the part after a prefix; mapped into the public errors.
enum MaterialProblem {
    Missing,
    Base64,
    Length(usize),
}

// === impl SigningKey ===

impl SigningKey {
    /// Parses `whsec_<base64>` or `whsk_<base64>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty { role: KeyRole::Signing });
        }
        if let Some(encoded) = text.strip_prefix(SYMMETRIC_PREFIX) {
            let bytes = decode_symmetric(encoded)
                .map_err(|problem| key_error(SYMMETRIC_PREFIX, SYMMETRIC_EXPECTED, problem))?;
            return Self::from_symmetric_bytes(&bytes);
        }
        if let Some(encoded) = text.strip_prefix(SECRET_KEY_PREFIX) {
            let seed = decode_ed25519(encoded).map_err(|problem| {
                key_error(SECRET_KEY_PREFIX, ED25519_SECRET_EXPECTED, problem)
            })?;
            return Ok(Self::from_ed25519_seed(&seed));
        }
        if text.starts_with(PUBLIC_KEY_PREFIX) {
            return Err(KeyError::OtherHalf { role: KeyRole::Signing });
        }
        Err(KeyError::UnknownPrefix { role: KeyRole::Signing })
    }

    /// A symmetric key from raw bytes (24 to 64 of them), e.g. freshly drawn by the caller.
    pub fn from_symmetric_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        SymmetricKey::from_bytes(bytes)
            .map(Self::Symmetric)
            .map_err(|problem| key_error(SYMMETRIC_PREFIX, SYMMETRIC_EXPECTED, problem))
    }

    /// An ed25519 key from its 32-byte seed, e.g. freshly drawn by the caller.
    pub fn from_ed25519_seed(seed: &[u8; ED25519_KEY_BYTES]) -> Self {
        Self::Ed25519(Ed25519SecretKey { key: ed25519_dalek::SigningKey::from_bytes(seed) })
    }

    /// The signature version this key produces: `v1` or `v1a`.
    pub fn version(&self) -> &'static str {
        match self {
            Self::Symmetric(_) => SYMMETRIC_VERSION,
            Self::Ed25519(_) => ASYMMETRIC_VERSION,
        }
    }

    /// The key that checks this key's signatures (the same secret for `whsec_`).
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            Self::Symmetric(key) => VerifyingKey::Symmetric(key.clone()),
            Self::Ed25519(key) => {
                VerifyingKey::Ed25519(Ed25519PublicKey { key: key.key.verifying_key() })
            }
        }
    }

    /// The `whpk_…` public key to hand to receivers; `None` for a symmetric key.
    pub fn public_key(&self) -> Option<String> {
        match self.verifying_key() {
            VerifyingKey::Ed25519(key) => Some(key.encode()),
            VerifyingKey::Symmetric(_) => None,
        }
    }

    /// One header entry, `version,base64`.
    fn sign(&self, content: &SignedContent<'_>) -> String {
        let signature = match self {
            Self::Symmetric(key) => STANDARD.encode(key.tag(content)),
            Self::Ed25519(key) => STANDARD.encode(key.key.sign(&content.to_bytes()).to_bytes()),
        };
        format!("{},{signature}", self.version())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symmetric(_) => formatter.write_str("SigningKey::Symmetric(<redacted>)"),
            Self::Ed25519(_) => formatter.write_str("SigningKey::Ed25519(<redacted>)"),
        }
    }
}

// === impl VerifyingKey ===

impl VerifyingKey {
    /// Parses `whsec_<base64>` or `whpk_<base64>`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty { role: KeyRole::Verifying });
        }
        if let Some(encoded) = text.strip_prefix(SYMMETRIC_PREFIX) {
            return decode_symmetric(encoded)
                .and_then(|bytes| SymmetricKey::from_bytes(&bytes))
                .map(Self::Symmetric)
                .map_err(|problem| key_error(SYMMETRIC_PREFIX, SYMMETRIC_EXPECTED, problem));
        }
        if let Some(encoded) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes = decode_ed25519(encoded).map_err(|problem| {
                key_error(PUBLIC_KEY_PREFIX, ED25519_PUBLIC_EXPECTED, problem)
            })?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| KeyError::InvalidPublicKey)?;
            return Ok(Self::Ed25519(Ed25519PublicKey { key }));
        }
        if text.starts_with(SECRET_KEY_PREFIX) {
            return Err(KeyError::OtherHalf { role: KeyRole::Verifying });
        }
        Err(KeyError::UnknownPrefix { role: KeyRole::Verifying })
    }

    /// The signature version this key checks: `v1` or `v1a`.
    pub fn version(&self) -> &'static str {
        match self {
            Self::Symmetric(_) => SYMMETRIC_VERSION,
            Self::Ed25519(_) => ASYMMETRIC_VERSION,
        }
    }

    /// Whether `signature` is this key's signature of `message` as a whole: an HMAC-SHA256
    /// tag for `whsec_`, an ed25519 signature for `whpk_`. For plugins that verify other
    /// formats with Standard Webhooks keys; compared in constant time.
    pub fn accepts_message(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Symmetric(key) => {
                let mut mac = key.mac.clone();
                mac.update(message);
                mac.verify_slice(signature).is_ok()
            }
            Self::Ed25519(key) => key.accepts(message, signature),
        }
    }

    /// Whether `signature` (decoded from one header entry of this key's version) is valid.
    fn accepts(&self, content: &SignedContent<'_>, signature: &[u8]) -> bool {
        match self {
            Self::Symmetric(key) => key.keyed(content).verify_slice(signature).is_ok(),
            Self::Ed25519(key) => key.accepts(&content.to_bytes(), signature),
        }
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symmetric(_) => formatter.write_str("VerifyingKey::Symmetric(<redacted>)"),
            Self::Ed25519(_) => formatter.write_str("VerifyingKey::Ed25519(<redacted>)"),
        }
    }
}

// === impl SymmetricKey ===

impl SymmetricKey {
    fn from_bytes(bytes: &[u8]) -> Result<Self, MaterialProblem> {
        if !(SYMMETRIC_MINIMUM_BYTES..=SYMMETRIC_MAXIMUM_BYTES).contains(&bytes.len()) {
            return Err(MaterialProblem::Length(bytes.len()));
        }
        // HMAC takes keys of any length, so this error cannot happen; it is mapped anyway.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes)
            .map_err(|_| MaterialProblem::Length(bytes.len()))?;
        Ok(Self { mac })
    }

    /// A MAC that has absorbed `content`, ready to finalize or verify.
    fn keyed(&self, content: &SignedContent<'_>) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(content.message_id.as_bytes());
        mac.update(b".");
        mac.update(content.timestamp.as_bytes());
        mac.update(b".");
        mac.update(content.body);
        mac
    }

    fn tag(&self, content: &SignedContent<'_>) -> Vec<u8> {
        self.keyed(content).finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SymmetricKey(<redacted>)")
    }
}

// === impl Ed25519SecretKey ===

impl fmt::Debug for Ed25519SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Ed25519SecretKey(<redacted>)")
    }
}

// === impl Ed25519PublicKey ===

impl Ed25519PublicKey {
    /// The `whpk_…` form.
    fn encode(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(self.key.as_bytes()))
    }

    fn accepts(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Ed25519PublicKey(<redacted>)")
    }
}

// === signing and verification ===

/// `{message id}.{timestamp}.{body}`, kept in parts so HMAC never copies the body.
struct SignedContent<'a> {
    message_id: &'a str,
    timestamp: String,
    body: &'a [u8],
}

impl<'a> SignedContent<'a> {
    fn new(message_id: &'a str, timestamp_seconds: i64, body: &'a [u8]) -> Self {
        Self { message_id, timestamp: timestamp_seconds.to_string(), body }
    }

    /// The contiguous bytes, for ed25519 (which signs a whole message).
    fn to_bytes(&self) -> Vec<u8> {
        let length = self.message_id.len() + self.timestamp.len() + self.body.len() + 2;
        let mut bytes = Vec::with_capacity(length);
        bytes.extend_from_slice(self.message_id.as_bytes());
        bytes.push(b'.');
        bytes.extend_from_slice(self.timestamp.as_bytes());
        bytes.push(b'.');
        bytes.extend_from_slice(self.body);
        bytes
    }
}

/// The `webhook-signature` value: one `v1,…` or `v1a,…` entry per key, in key order,
/// separated by single spaces. Empty when `keys` is empty (then send no header at all).
pub fn signature_header<'a>(
    keys: impl IntoIterator<Item = &'a SigningKey>,
    message_id: &str,
    timestamp_seconds: i64,
    body: &[u8],
) -> String {
    let content = SignedContent::new(message_id, timestamp_seconds, body);
    keys.into_iter().map(|key| key.sign(&content)).collect::<Vec<_>>().join(" ")
}

/// Checks an inbound `webhook-signature` value against `keys`.
///
/// The timestamp passes when it is at most `tolerance_seconds` away from `now_seconds`, in
/// either direction (exactly at the tolerance passes).
pub fn verify(
    keys: &[VerifyingKey],
    message_id: &str,
    timestamp_seconds: i64,
    body: &[u8],
    header_value: &str,
    now_seconds: i64,
    tolerance_seconds: u64,
) -> Result<(), VerifyError> {
    if header_value.trim().is_empty() {
        return Err(VerifyError::MissingSignature);
    }
    check_timestamp(timestamp_seconds, now_seconds, tolerance_seconds)?;
    let content = SignedContent::new(message_id, timestamp_seconds, body);
    let mut well_formed_entries = 0_usize;
    for entry in header_value.split_ascii_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else { continue };
        if version.is_empty() || encoded.is_empty() {
            continue;
        }
        well_formed_entries += 1;
        let Ok(signature) = LENIENT_BASE64.decode(encoded) else { continue };
        let matched = keys
            .iter()
            .filter(|key| key.version() == version)
            .any(|key| key.accepts(&content, &signature));
        if matched {
            return Ok(());
        }
    }
    if well_formed_entries == 0 {
        return Err(VerifyError::MalformedSignatureHeader);
    }
    Err(VerifyError::NoMatchingSignature)
}

fn check_timestamp(
    timestamp_seconds: i64,
    now_seconds: i64,
    tolerance_seconds: u64,
) -> Result<(), VerifyError> {
    let age = i128::from(now_seconds) - i128::from(timestamp_seconds);
    let tolerance = i128::from(tolerance_seconds);
    let saturate = |seconds: i128| u64::try_from(seconds).unwrap_or(u64::MAX);
    if age > tolerance {
        return Err(VerifyError::TimestampTooOld { age_seconds: saturate(age), tolerance_seconds });
    }
    if -age > tolerance {
        return Err(VerifyError::TimestampInFuture {
            ahead_seconds: saturate(-age),
            tolerance_seconds,
        });
    }
    Ok(())
}

// === key material ===

fn decode_material(encoded: &str) -> Result<Vec<u8>, MaterialProblem> {
    if encoded.is_empty() {
        return Err(MaterialProblem::Missing);
    }
    LENIENT_BASE64.decode(encoded).map_err(|_| MaterialProblem::Base64)
}

fn decode_symmetric(encoded: &str) -> Result<Vec<u8>, MaterialProblem> {
    decode_material(encoded)
}

fn decode_ed25519(encoded: &str) -> Result<[u8; ED25519_KEY_BYTES], MaterialProblem> {
    let bytes = decode_material(encoded)?;
    <[u8; ED25519_KEY_BYTES]>::try_from(bytes.as_slice())
        .map_err(|_| MaterialProblem::Length(bytes.len()))
}

fn key_error(prefix: &'static str, expected: &'static str, problem: MaterialProblem) -> KeyError {
    match problem {
        MaterialProblem::Missing => KeyError::MissingKeyMaterial { prefix },
        MaterialProblem::Base64 => KeyError::InvalidBase64 { prefix },
        MaterialProblem::Length(actual) => KeyError::WrongLength { prefix, actual, expected },
    }
}

#[cfg(test)]
mod tests;
