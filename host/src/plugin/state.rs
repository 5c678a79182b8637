//! What a plugin's `Store` holds: the capability-free WASI context, the memory limiter, the
//! per-call log, and the binding (config map and the secrets it may name).
//!
//! Owns the host side of the `host` and `crypto` imports. Secret bytes are read here and
//! never written into guest memory: the guest passes a name, the host answers a boolean.
//! MACs are compared in constant time by the `hmac` crate's `verify_slice`. Standard Webhooks
//! keys (`whsec_`, `whpk_`) are decoded by [`crate::signing`], so a key that signs deliveries
//! verifies in a plugin too, and one refused there is refused here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::LogLevel;
use super::bindings::switchyard::plugin::{crypto, host, types};
use crate::config::Secret;
use crate::signing::{self, VerifyingKey};

/// The most log bytes one call may record; stdout and stderr count too.
pub const MAX_LOG_BYTES_PER_CALL: usize = 4096;
/// The most elements a table may grow to: plenty for real guests, bounded for hostile ones.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// A plugin as configured: what its calls may read.
#[derive(Debug)]
pub struct Binding {
    pub id: String,
    pub config: BTreeMap<String, String>,
    /// The secrets the binding lists, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Every configured secret name, so an unlisted one is `not-allowed`, not `unknown`.
    pub known_secrets: BTreeSet<String>,
}

/// One recorded log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// The lines one call wrote, within [`MAX_LOG_BYTES_PER_CALL`].
#[derive(Debug, Default)]
pub struct CallLog {
    pub lines: Vec<LogLine>,
    /// Lines (or their ends) not recorded because the budget was spent.
    pub dropped: usize,
    bytes: usize,
}

impl CallLog {
    fn push(&mut self, level: LogLevel, message: &str) {
        let room = MAX_LOG_BYTES_PER_CALL.saturating_sub(self.bytes);
        if room == 0 {
            self.dropped += 1;
            return;
        }
        let mut end = message.len().min(room);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        if end < message.len() {
            self.dropped += 1;
        }
        self.bytes += end;
        self.lines.push(LogLine { level, message: message[..end].to_owned() });
    }
}

/// The log shared between the `log` import and the guest's stdout and stderr.
pub type SharedLog = Arc<Mutex<CallLog>>;

/// Grants memory up to the binding's cap and records the peak; growth past the cap traps
/// (a guest that could catch the failure, as JS engines do, could otherwise limp on).
#[derive(Debug)]
pub struct MemoryLimiter {
    pub cap: u64,
    pub peak: u64,
    /// Set when a growth was refused, so the trap reads as a memory limit.
    pub exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.cap {
            self.exceeded = true;
            return Err(wasmtime::format_err!("memory limit of {} bytes exceeded", self.cap));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::format_err!("table limit of {MAX_TABLE_ELEMENTS} exceeded"));
        }
        Ok(true)
    }
}

/// The data of one plugin `Store`.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub binding: Arc<Binding>,
    pub log: SharedLog,
    /// What `now-ms` answers during this call; `None` is the real clock.
    pub now_override: Option<u64>,
}

impl std::fmt::Debug for CallState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CallState").field("binding", &self.binding.id).finish()
    }
}

impl CallState {
    pub fn new(binding: Arc<Binding>, memory_cap: u64) -> Self {
        let log = SharedLog::default();
        // No preopens, no environment, no arguments, no sockets (they are off by default):
        // stdin is empty and stdout/stderr land in the call's log.
        let wasi = WasiCtxBuilder::new()
            .stdout(LogSink { log: log.clone(), level: LogLevel::Info })
            .stderr(LogSink { log: log.clone(), level: LogLevel::Warn })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { cap: memory_cap, peak: 0, exceeded: false },
            binding,
            log,
            now_override: None,
        }
    }

    /// Takes what the call logged, leaving an empty log for the next call.
    pub fn take_log(&mut self) -> CallLog {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, level: LogLevel, message: &str) {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).push(level, message);
    }

    fn secret(&self, name: &str) -> Result<&Secret, crypto::CryptoError> {
        match self.binding.secrets.get(name) {
            Some(secret) => Ok(secret),
            None if self.binding.known_secrets.contains(name) => {
                Err(crypto::CryptoError::NotAllowed(name.to_owned()))
            }
            None => Err(crypto::CryptoError::UnknownSecret(name.to_owned())),
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

// === impl host and crypto imports ===

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: host::Level, message: String) {
        let level = match level {
            host::Level::Trace => LogLevel::Trace,
            host::Level::Debug => LogLevel::Debug,
            host::Level::Info => LogLevel::Info,
            host::Level::Warn => LogLevel::Warn,
            host::Level::Error => LogLevel::Error,
        };
        self.record(level, &message);
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.binding.config.get(&key).cloned()
    }

    fn now_ms(&mut self) -> u64 {
        self.now_override.unwrap_or_else(crate::event::now_millis)
    }
}

impl crypto::Host for CallState {
    fn hmac_sha256_verify(
        &mut self,
        secret: String,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> Result<bool, crypto::CryptoError> {
        let key = self.secret(&secret)?.expose();
        Ok(hmac_matches::<Hmac<Sha256>>(key, &data, &mac))
    }

    fn hmac_sha1_verify(
        &mut self,
        secret: String,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> Result<bool, crypto::CryptoError> {
        let key = self.secret(&secret)?.expose();
        Ok(hmac_matches::<Hmac<sha1::Sha1>>(key, &data, &mac))
    }

    fn hmac_sha256_verify_with(
        &mut self,
        secret: String,
        encoding: crypto::KeyEncoding,
        data: Vec<u8>,
        mac: Vec<u8>,
    ) -> Result<bool, crypto::CryptoError> {
        let bytes = self.secret(&secret)?.expose();
        match encoding {
            crypto::KeyEncoding::Raw => Ok(hmac_matches::<Hmac<Sha256>>(bytes, &data, &mac)),
            crypto::KeyEncoding::StandardWebhooks => {
                let key = standard_webhooks_key(bytes, signing::SYMMETRIC_PREFIX)
                    .filter(|key| matches!(key, VerifyingKey::Symmetric(_)))
                    .ok_or_else(|| {
                        crypto::CryptoError::BadInput(format!(
                            "secret `{secret}` is not a Standard Webhooks key (`whsec_` + base64 \
                             of 24 to 64 bytes)"
                        ))
                    })?;
                Ok(key.accepts_message(&data, &mac))
            }
        }
    }

    fn ed25519_verify(
        &mut self,
        public_key: String,
        data: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<bool, crypto::CryptoError> {
        let bytes = self.secret(&public_key)?.expose();
        let key = standard_webhooks_key(bytes, signing::PUBLIC_KEY_PREFIX)
            .filter(|key| matches!(key, VerifyingKey::Ed25519(_)))
            .ok_or_else(|| {
                crypto::CryptoError::BadInput(format!(
                    "secret `{public_key}` is not an ed25519 public key (`whpk_` + base64)"
                ))
            })?;
        Ok(key.accepts_message(&data, &signature))
    }

    fn sha256(&mut self, data: Vec<u8>) -> Vec<u8> {
        Sha256::digest(&data).to_vec()
    }
}

fn hmac_matches<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], mac: &[u8]) -> bool {
    let Ok(mut hasher) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return false;
    };
    hasher.update(data);
    hasher.verify_slice(mac).is_ok()
}

/// A Standard Webhooks key as `signing` parses it; the `prefix` may be left out, as the
/// Standard Webhooks libraries allow.
fn standard_webhooks_key(bytes: &[u8], prefix: &str) -> Option<VerifyingKey> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.starts_with(prefix) {
        VerifyingKey::parse(text).ok()
    } else {
        VerifyingKey::parse(&format!("{prefix}{text}")).ok()
    }
}

/// A guest's stdout or stderr, written into the call's log line by line. Writes past the
/// budget are accepted and dropped: a guest whose `println!` failed would panic.
#[derive(Clone)]
struct LogSink {
    log: SharedLog,
    level: LogLevel,
}

impl LogSink {
    fn write_bytes(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            log.push(self.level, line);
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
        bytes: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.write_bytes(bytes);
        std::task::Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_log_keeps_its_budget() {
        let mut log = CallLog::default();
        log.push(LogLevel::Info, &"a".repeat(3000));
        log.push(LogLevel::Info, &"é".repeat(1000));
        log.push(LogLevel::Info, "gone");
        let bytes: usize = log.lines.iter().map(|line| line.message.len()).sum();
        assert!((MAX_LOG_BYTES_PER_CALL - 1..=MAX_LOG_BYTES_PER_CALL).contains(&bytes));
        assert_eq!((log.lines.len(), log.dropped), (2, 2));
    }

    /// A call state whose plugin may read `key` under the name `key`.
    fn state_with_key(key: &str) -> CallState {
        let binding = Binding {
            id: "verify".into(),
            config: BTreeMap::new(),
            secrets: BTreeMap::from([("key".to_owned(), Secret::new(key.as_bytes().to_vec()))]),
            known_secrets: BTreeSet::from(["key".to_owned()]),
        };
        CallState::new(Arc::new(binding), 1 << 20)
    }

    /// What a plugin's `hmac-sha256-verify-with(standard-webhooks)` answers for the tag
    /// `signing` puts on a delivery of `body` signed with `key`.
    fn plugin_accepts_outbound_signature(key: &str, body: &[u8]) -> Result<bool, String> {
        let signing_key = crate::signing::SigningKey::parse(key).map_err(|e| e.to_string())?;
        let header = crate::signing::signature_header([&signing_key], "msg_1", 1_700_000_000, body);
        let tag = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            header.strip_prefix("v1,").unwrap(),
        )
        .unwrap();
        let signed = [b"msg_1.1700000000.".as_slice(), body].concat();
        let mut state = state_with_key(key);
        crypto::Host::hmac_sha256_verify_with(
            &mut state,
            "key".into(),
            crypto::KeyEncoding::StandardWebhooks,
            signed,
            tag,
        )
        .map_err(|error| format!("{error:?}"))
    }

    #[test]
    fn an_unpadded_whsec_key_signs_and_verifies_alike() {
        // 24 bytes encode without padding; 25 bytes need `==`, written here without it.
        let padded = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA==";
        let unpadded = padded.trim_end_matches('=');
        for key in [padded, unpadded, "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"] {
            assert_eq!(plugin_accepts_outbound_signature(key, b"{}"), Ok(true), "{key}");
        }
    }

    #[test]
    fn plugin_verification_refuses_the_keys_signing_refuses() {
        // 16 bytes: too short to sign, so too short to verify with.
        let short = "whsec_AAECAwQFBgcICQoLDA0ODw==";
        assert!(crate::signing::SigningKey::parse(short).is_err());
        let mut state = state_with_key(short);
        let answer = crypto::Host::hmac_sha256_verify_with(
            &mut state,
            "key".into(),
            crypto::KeyEncoding::StandardWebhooks,
            b"data".to_vec(),
            vec![0; 32],
        );
        assert!(matches!(answer, Err(crypto::CryptoError::BadInput(_))));
        // The prefix may be left out, as Standard Webhooks libraries allow.
        let key = standard_webhooks_key(b"C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "whsec_");
        assert!(matches!(key, Some(VerifyingKey::Symmetric(_))));
        assert!(standard_webhooks_key(b"whsec_!!", "whsec_").is_none());
    }

    #[test]
    fn macs_are_checked_against_the_github_vector() {
        let mac = hex::decode("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
            .unwrap();
        let key = b"It's a Secret to Everybody";
        assert!(hmac_matches::<Hmac<Sha256>>(key, b"Hello, World!", &mac));
        assert!(!hmac_matches::<Hmac<Sha256>>(key, b"Hello, World?", &mac));
        assert!(!hmac_matches::<Hmac<Sha256>>(key, b"Hello, World!", &mac[..31]));
    }
}
