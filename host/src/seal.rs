//! Sealed text: what a dynamic endpoint's stored record becomes under `server.store_key`.
//!
//! Owns [`StoreKey`] (32 bytes from a `[secrets]` entry, base64) and the sealed format:
//!
//! ```text
//! sealed:v1:<key id, 16 hex digits>:<base64 of nonce (24 bytes) and ciphertext with tag>
//! ```
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce per seal (so random nonces never collide in
//! practice). The key id is the first 8 bytes of SHA-256 over a fixed label and the key: it
//! names the key a text was sealed with, so a wrong key is told apart from damaged data without
//! revealing anything of the key. The associated data is the format prefix and a caller's
//! context (the endpoint id), so a sealed text moved to another endpoint does not open.
//!
//! Pure apart from the nonce's randomness ([`StoreKey::seal_with_nonce`] takes one); it never
//! reads the store and never logs.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// What every sealed text starts with; the version names the format and the cipher.
const PREFIX: &str = "sealed:v1:";
/// Bytes of a store key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
/// Mixed into the key id, so it is no digest of the bare key anyone else computes.
const KEY_ID_LABEL: &[u8] = b"switchyard store key id\0";

/// A key that seals stored secrets. `Debug` shows its name and id only.
#[derive(Clone)]
pub struct StoreKey {
    name: String,
    id: String,
    cipher: XChaCha20Poly1305,
}

/// Why a key could not be taken, or a text could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("secret `{name}` is not base64 (expected 32 random bytes in base64)")]
    KeyEncoding { name: String },
    #[error("secret `{name}` holds {length} bytes after base64 decoding; a store key is 32")]
    KeyLength { name: String, length: usize },
    #[error("the stored text is not in the sealed format `sealed:v1:<key id>:<base64>`")]
    Format,
    #[error("sealed with key id `{sealed_with}`, but the store key `{key_name}` has id `{key_id}`")]
    WrongKey { sealed_with: String, key_name: String, key_id: String },
    #[error(
        "the sealed text does not open with key `{key_name}`: damaged, or moved from another record"
    )]
    Damaged { key_name: String },
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

/// Whether `text` is sealed (by any key).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// The id of the key `text` was sealed with, if it is sealed.
pub fn sealed_key_id(text: &str) -> Option<&str> {
    text.strip_prefix(PREFIX).and_then(|rest| rest.split_once(':')).map(|(id, _)| id)
}

// === impl StoreKey ===

impl StoreKey {
    /// The key `secret` (the `[secrets]` entry `name`) holds: base64 of exactly 32 bytes,
    /// standard or URL-safe alphabet, padded or not.
    pub fn from_secret(name: &str, secret: &Secret) -> Result<Self, SealError> {
        let text = String::from_utf8_lossy(secret.expose());
        let text = text.trim();
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| SealError::KeyEncoding { name: name.to_owned() })?;
        let key: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyLength { name: name.to_owned(), length: bytes.len() })?;
        Ok(Self::from_bytes(name, key))
    }

    pub fn from_bytes(name: &str, key: [u8; KEY_BYTES]) -> Self {
        let digest = Sha256::new().chain_update(KEY_ID_LABEL).chain_update(key).finalize();
        Self {
            name: name.to_owned(),
            id: hex::encode(&digest[..8]),
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// The `[secrets]` entry the key came from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// 16 hex digits naming the key (not the secret's name): the same bytes, the same id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain` for `context` with a fresh random nonce.
    pub fn seal(&self, context: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|error| SealError::Random(error.to_string()))?;
        Ok(self.seal_with_nonce(context, plain, nonce))
    }

    /// Seals `plain` for `context` with `nonce`, which must never be used twice with this key.
    pub fn seal_with_nonce(&self, context: &str, plain: &str, nonce: [u8; NONCE_BYTES]) -> String {
        let header = format!("{PREFIX}{}:", self.id);
        let aad = associated_data(&header, context);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain.as_bytes(), aad: &aad })
            .expect("XChaCha20-Poly1305 encrypts any input shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        format!("{header}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed))
    }

    /// Opens `sealed`, sealed for `context` by this key.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::Format)?;
        let (key_id, body) = rest.split_once(':').ok_or(SealError::Format)?;
        if key_id != self.id {
            return Err(SealError::WrongKey {
                sealed_with: key_id.to_owned(),
                key_name: self.name.clone(),
                key_id: self.id.clone(),
            });
        }
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Format)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Format);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let header = format!("{PREFIX}{key_id}:");
        let aad = associated_data(&header, context);
        let damaged = || SealError::Damaged { key_name: self.name.clone() };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map_err(|_| damaged())
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StoreKey")
            .field("name", &self.name)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for StoreKey {
    /// Keys are equal when their bytes are (the id stands for them) and their names are.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.id == other.id
    }
}

impl Eq for StoreKey {}

/// The format header, then the context: both bound to the ciphertext.
fn associated_data(header: &str, context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 1 + context.len());
    aad.extend_from_slice(header.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, byte: u8) -> StoreKey {
        StoreKey::from_bytes(name, [byte; KEY_BYTES])
    }

    #[test]
    fn seals_and_opens() {
        let key = key("store", 7);
        let sealed = key.seal("ep_1", "whsec_top-secret").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("top-secret"));
        assert_eq!(sealed_key_id(&sealed), Some(key.id()));
        assert_eq!(key.open("ep_1", &sealed).unwrap(), "whsec_top-secret");
        // A fresh nonce each time: the same text seals differently.
        assert_ne!(key.seal("ep_1", "whsec_top-secret").unwrap(), sealed);
    }

    #[test]
    fn the_format_is_stable() {
        let sealed = key("store", 1).seal_with_nonce("ep_1", "hello", [2; NONCE_BYTES]);
        let id = key("store", 1).id().to_owned();
        assert_eq!(id.len(), 16);
        assert!(sealed.starts_with(&format!("sealed:v1:{id}:")), "{sealed}");
        // Nonce (24) + text (5) + tag (16), in base64 without padding.
        let body = sealed.rsplit(':').next().unwrap();
        assert_eq!(body.len(), (24 + 5 + 16) * 4 / 3);
    }

    #[test]
    fn a_wrong_key_is_named_not_mistaken_for_damage() {
        let sealed = key("old", 1).seal("ep_1", "x").unwrap();
        let error = key("new", 2).open("ep_1", &sealed).unwrap_err();
        let SealError::WrongKey { sealed_with, key_name, key_id } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(sealed_with, key("old", 1).id());
        assert_eq!(key_name, "new");
        assert_eq!(key_id, key("new", 2).id());
        assert!(error.to_string().starts_with("sealed with key id `"), "{error}");
    }

    #[test]
    fn damage_and_another_context_do_not_open() {
        let key = key("store", 3);
        let sealed = key.seal("ep_1", "secret text").unwrap();
        assert_eq!(
            key.open("ep_2", &sealed).unwrap_err(),
            SealError::Damaged { key_name: "store".into() }
        );
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(matches!(key.open("ep_1", &flipped), Err(SealError::Damaged { .. })));
        assert_eq!(key.open("ep_1", "{\"settings\":{}}"), Err(SealError::Format));
        assert_eq!(key.open("ep_1", "sealed:v1:nocolon"), Err(SealError::Format));
        let id = key.id().to_owned();
        assert_eq!(key.open("ep_1", &format!("sealed:v1:{id}:AA")), Err(SealError::Format));
    }

    #[test]
    fn keys_come_from_base64_of_32_bytes() {
        let bytes = [9u8; KEY_BYTES];
        let standard = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        for text in [standard.clone(), format!("{standard}\n"), url_safe] {
            let parsed = StoreKey::from_secret("k", &Secret::new(text.into_bytes())).unwrap();
            assert_eq!(parsed.id(), StoreKey::from_bytes("k", bytes).id());
        }
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert_eq!(
            StoreKey::from_secret("k", &Secret::new(short.into_bytes())).unwrap_err().to_string(),
            "secret `k` holds 16 bytes after base64 decoding; a store key is 32"
        );
        assert_eq!(
            StoreKey::from_secret("k", &Secret::new(b"not base64!".to_vec()))
                .unwrap_err()
                .to_string(),
            "secret `k` is not base64 (expected 32 random bytes in base64)"
        );
        let shown = format!("{:?}", key("k", 1));
        assert!(shown.starts_with("StoreKey { name: \"k\", id: \"") && !shown.contains("cipher"));
    }
}
