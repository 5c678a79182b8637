//! Why a received signature fails: the core of the dashboard's signature helper.
//!
//! Given a scheme (Standard Webhooks `v1` or `v1a`, GitHub, Stripe), the key, the headers and the body
//! as received, [`diagnose`] recomputes the signature and names the part that differs: a
//! header missing or malformed, a timestamp beyond the tolerance, a secret that is not a key
//! or was used in another encoding by the signer, a body that is not the bytes that were
//! signed (a final newline, JSON re-serialised, CRLF line ends). It tries those likely
//! variants of secret and body and reports the one that matches; when none does, it says
//! that the secret or the body differ (the two cannot be told apart from a MAC).
//!
//! Standard Webhooks keys: `whsec_` checks `v1` (HMAC) entries; `whpk_` (the public key) or
//! `whsk_` checks `v1a` (ed25519) entries. A key of one version against a header holding only
//! the other's entries is named as such.
//!
//! Pure: the clock is an argument; no I/O. The secret never appears in a finding.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{SigningKey, VerifyingKey, check_timestamp, signature_header};

/// The schemes the helper knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
#[schema(as = SignatureScheme)]
pub enum Scheme {
    StandardWebhooks,
    Github,
    Stripe,
}

impl Scheme {
    pub const ALL: [Self; 3] = [Self::StandardWebhooks, Self::Github, Self::Stripe];

    pub fn name(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Github => "github",
            Self::Stripe => "stripe",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.name() == text)
    }
}

/// The part of a request a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SignaturePart)]
pub enum Part {
    Header,
    Timestamp,
    Secret,
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = SignatureFinding)]
pub struct Finding {
    pub part: Part,
    pub detail: String,
}

/// What the helper found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = SignatureDiagnosis)]
pub struct Diagnosis {
    pub scheme: Scheme,
    /// The request would be accepted: signature and timestamp both good.
    pub valid: bool,
    /// The signature matches the secret and body as given (whatever the timestamp).
    pub signature_matches: bool,
    /// The signature header value the secret gives for this body (and id and timestamp),
    /// when the secret is a valid key and the header has what it takes.
    pub expected: Option<String>,
    /// What differs, most likely cause first; empty when valid.
    pub findings: Vec<Finding>,
    /// With several keys tried (an endpoint's current and previous keys): which one matched,
    /// e.g. `the current key (created …)`, or that none did. Never the key itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What [`diagnose`] is given.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub now_seconds: i64,
    pub tolerance_seconds: u64,
}

impl Received<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }
}

/// Standard Webhooks' and Stripe's default tolerance.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// Recomputes the signature of `received` under `scheme` and `secret` and says what differs.
pub fn diagnose(scheme: Scheme, secret: &str, received: &Received<'_>) -> Diagnosis {
    let mut diagnosis = Diagnosis {
        scheme,
        valid: false,
        signature_matches: false,
        expected: None,
        findings: Vec::new(),
        key: None,
    };
    let parsed = match scheme {
        Scheme::StandardWebhooks => standard_webhooks(received),
        Scheme::Github => github(received),
        Scheme::Stripe => stripe(received),
    };
    let signed = match parsed {
        Ok(signed) => signed,
        Err(finding) => {
            diagnosis.findings.push(finding);
            return diagnosis;
        }
    };
    if let Some(timestamp) = signed.timestamp
        && let Err(error) =
            check_timestamp(timestamp, received.now_seconds, received.tolerance_seconds)
    {
        diagnosis.findings.push(Finding { part: Part::Timestamp, detail: error.to_string() });
    }
    let keys = match keys_of(scheme, secret) {
        Ok(keys) => keys,
        Err(detail) => {
            diagnosis.findings.insert(0, Finding { part: Part::Secret, detail });
            return diagnosis;
        }
    };
    let primary = &keys[0];
    if scheme == Scheme::StandardWebhooks {
        let version = primary.key.version();
        if !signed.versions.iter().any(|given| given == version) {
            let (given, wanted) = if version == super::ASYMMETRIC_VERSION {
                ("`v1` (HMAC)", "a `whsec_` secret")
            } else {
                ("`v1a` (ed25519)", "the signer's `whpk_` public key")
            };
            let detail = format!(
                "`webhook-signature` has only {given} entries and the key given checks \
                 `{version}`: check it with {wanted}"
            );
            diagnosis.findings.insert(0, Finding { part: Part::Secret, detail });
            return diagnosis;
        }
    }
    diagnosis.expected = signed.render(scheme, &primary.key, received.body);
    diagnosis.signature_matches = signed.matches(scheme, &primary.key, received.body);
    if diagnosis.signature_matches {
        diagnosis.valid = diagnosis.findings.is_empty();
        return diagnosis;
    }
    let cause = keys
        .iter()
        .flat_map(|key| body_variants(received.body).into_iter().map(move |body| (key, body)))
        .skip(1)
        .find(|(key, (_, body))| signed.matches(scheme, &key.key, body));
    let finding = match cause {
        Some((key, (_, _))) if key.note.is_some() => {
            Finding { part: Part::Secret, detail: key.note.clone().unwrap_or_default() }
        }
        Some((_, (note, _))) => Finding {
            part: Part::Body,
            detail: format!(
                "the body given is not the bytes that were signed: it matches {note}; verify \
                 the raw bytes as received, before any parsing"
            ),
        },
        None => Finding {
            part: Part::Secret,
            detail: format!(
                "the signature does not match: either the secret is not the one that signed, \
                 or the body was changed (no likely variant of either matches){}",
                signed.hint
            ),
        },
    };
    diagnosis.findings.insert(0, finding);
    diagnosis
}

/// One way to read the secret: the intended one first, then the signer's likely mistakes.
struct Key {
    key: KeyBytes,
    /// Why this reading would match (absent for the intended one).
    note: Option<String>,
}

enum KeyBytes {
    Standard(Box<SigningKey>),
    /// A `whpk_` key: checks `v1a` entries, cannot sign.
    Public(Box<VerifyingKey>),
    Raw(Vec<u8>),
}

fn keys_of(scheme: Scheme, secret: &str) -> Result<Vec<Key>, String> {
    let trimmed = secret.trim();
    let mut keys = Vec::new();
    match scheme {
        Scheme::StandardWebhooks => {
            if trimmed.starts_with("v1,") {
                return Err("the secret starts with `v1,`, the prefix of a signature; a secret \
                            starts with `whsec_`"
                    .to_owned());
            }
            if trimmed.starts_with(super::PUBLIC_KEY_PREFIX) {
                let key = VerifyingKey::parse(trimmed).map_err(|error| error.to_string())?;
                keys.push(Key { key: KeyBytes::Public(Box::new(key)), note: None });
                return Ok(keys);
            }
            if trimmed.starts_with(super::SECRET_KEY_PREFIX) {
                let key = SigningKey::parse(trimmed).map_err(|error| error.to_string())?;
                keys.push(Key { key: KeyBytes::Standard(Box::new(key)), note: None });
                return Ok(keys);
            }
            let text = if trimmed.starts_with(super::SYMMETRIC_PREFIX) {
                trimmed.to_owned()
            } else {
                format!("{}{trimmed}", super::SYMMETRIC_PREFIX)
            };
            let key = SigningKey::parse(&text).map_err(|error| error.to_string())?;
            keys.push(Key { key: KeyBytes::Standard(Box::new(key)), note: None });
            keys.push(Key {
                key: KeyBytes::Raw(trimmed.as_bytes().to_vec()),
                note: Some(
                    "the signer keyed the HMAC with the secret's text; Standard Webhooks keys it \
                     with the base64-decoded bytes after `whsec_`"
                        .to_owned(),
                ),
            });
        }
        Scheme::Github | Scheme::Stripe => {
            if trimmed.is_empty() {
                return Err("the secret is empty".to_owned());
            }
            keys.push(Key { key: KeyBytes::Raw(trimmed.as_bytes().to_vec()), note: None });
            if secret != trimmed {
                keys.push(Key {
                    key: KeyBytes::Raw(secret.as_bytes().to_vec()),
                    note: Some(
                        "the signer's secret has white space around it (a final newline?)"
                            .to_owned(),
                    ),
                });
            }
            if let Some(encoded) = trimmed.strip_prefix(super::SYMMETRIC_PREFIX)
                && let Ok(decoded) = super::LENIENT_BASE64.decode(encoded)
            {
                keys.push(Key {
                    key: KeyBytes::Raw(decoded),
                    note: Some(format!(
                        "the signer keyed the HMAC with the base64-decoded bytes after `whsec_`; \
                         {} keys it with the whole secret's text",
                        scheme.name()
                    )),
                });
            }
        }
    }
    Ok(keys)
}

/// The body as given, then the variants a receiver's framework likely produced.
fn body_variants(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut variants = vec![("the body as given".to_owned(), body.to_vec())];
    let mut push = |note: &str, bytes: Vec<u8>| {
        if !variants.iter().any(|(_, existing)| *existing == bytes) {
            variants.push((note.to_owned(), bytes));
        }
    };
    if let Some(stripped) = body.strip_suffix(b"\n") {
        push("it without its final newline", stripped.to_vec());
    } else {
        push("it with a final newline", [body, b"\n"].concat());
    }
    if body.windows(2).any(|pair| pair == b"\r\n") {
        let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
        push("it with CRLF line ends instead of LF", text.into_bytes());
    } else if body.contains(&b'\n') {
        let text = String::from_utf8_lossy(body).replace('\n', "\r\n");
        push("it with LF line ends instead of CRLF", text.into_bytes());
    }
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        let compact = respaced_json(body, "");
        push("its JSON without white space (the signed body had other spacing)", compact);
        let spaced = respaced_json(body, " ");
        push("its JSON with a space after `,` and `:` (as Python's `json.dumps` writes)", spaced);
    }
    variants
}

/// JSON text with the white space between tokens removed, then `gap` put after each `,` and
/// `:`; strings and member order are kept as they are (re-parsing would reorder members).
fn respaced_json(body: &[u8], gap: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &byte in body {
        if in_string {
            out.push(byte);
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                out.push(byte);
            }
            b',' | b':' => {
                out.push(byte);
                out.extend_from_slice(gap.as_bytes());
            }
            _ => out.push(byte),
        }
    }
    out
}

/// What the header says was signed.
struct Signed {
    /// Standard Webhooks' message id.
    message_id: String,
    timestamp: Option<i64>,
    /// The signatures given: base64 for Standard Webhooks `v1`, lowercase hex otherwise.
    signatures: Vec<String>,
    /// Standard Webhooks: the `webhook-signature` value, and the versions of its entries.
    header: String,
    versions: Vec<String>,
    /// More to say when nothing matches.
    hint: String,
}

impl Signed {
    fn mac(&self, scheme: Scheme, key: &KeyBytes, body: &[u8]) -> Option<String> {
        let raw = |key: &[u8], parts: &[&[u8]]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
            parts.iter().for_each(|part| mac.update(part));
            Some(mac.finalize().into_bytes().to_vec())
        };
        let timestamp = self.timestamp.unwrap_or_default().to_string();
        match (scheme, key) {
            (Scheme::StandardWebhooks, KeyBytes::Standard(key)) => {
                let header = signature_header(
                    [key.as_ref()],
                    &self.message_id,
                    self.timestamp.unwrap_or_default(),
                    body,
                );
                header.strip_prefix("v1,").map(str::to_owned)
            }
            (Scheme::StandardWebhooks, KeyBytes::Public(_)) => None,
            (Scheme::StandardWebhooks, KeyBytes::Raw(key)) => {
                let parts: [&[u8]; 5] =
                    [self.message_id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
                raw(key, &parts).map(|mac| base64::engine::general_purpose::STANDARD.encode(mac))
            }
            (Scheme::Github, key) => raw(key.bytes()?, &[body]).map(hex::encode),
            (Scheme::Stripe, key) => {
                raw(key.bytes()?, &[timestamp.as_bytes(), b".", body]).map(hex::encode)
            }
        }
    }

    fn matches(&self, scheme: Scheme, key: &KeyBytes, body: &[u8]) -> bool {
        let verifying = match key {
            KeyBytes::Standard(key) => Some(key.verifying_key()),
            KeyBytes::Public(key) => Some(key.as_ref().clone()),
            KeyBytes::Raw(_) => None,
        };
        if scheme == Scheme::StandardWebhooks
            && let Some(verifying) = verifying
        {
            // The router's own check (either version), with the timestamp taken as now: the
            // timestamp is judged apart.
            let timestamp = self.timestamp.unwrap_or_default();
            return super::verify(
                &[verifying],
                &self.message_id,
                timestamp,
                body,
                &self.header,
                timestamp,
                0,
            )
            .is_ok();
        }
        self.mac(scheme, key, body).is_some_and(|mac| {
            self.signatures.iter().any(|given| given.eq_ignore_ascii_case(&mac) || *given == mac)
        })
    }

    /// The header value this key gives; `None` for a public key (it cannot sign).
    fn render(&self, scheme: Scheme, key: &KeyBytes, body: &[u8]) -> Option<String> {
        if let (Scheme::StandardWebhooks, KeyBytes::Standard(key)) = (scheme, key) {
            let timestamp = self.timestamp.unwrap_or_default();
            return Some(signature_header([key.as_ref()], &self.message_id, timestamp, body));
        }
        if let KeyBytes::Public(_) = key {
            return None;
        }
        let mac = self.mac(scheme, key, body).unwrap_or_default();
        Some(match scheme {
            Scheme::StandardWebhooks => format!("v1,{mac}"),
            Scheme::Github => format!("sha256={mac}"),
            Scheme::Stripe => format!("t={},v1={mac}", self.timestamp.unwrap_or_default()),
        })
    }
}

impl KeyBytes {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Raw(bytes) => Some(bytes),
            Self::Standard(_) | Self::Public(_) => None,
        }
    }

    /// The Standard Webhooks version this key checks.
    fn version(&self) -> &'static str {
        match self {
            Self::Standard(key) => key.version(),
            Self::Public(key) => key.version(),
            Self::Raw(_) => super::SYMMETRIC_VERSION,
        }
    }
}

fn header_finding(detail: impl Into<String>) -> Finding {
    Finding { part: Part::Header, detail: detail.into() }
}

fn timestamp_of(name: &str, text: &str) -> Result<i64, Finding> {
    text.parse::<i64>().map_err(|_| {
        header_finding(format!("`{name}` is `{text}`, not unix seconds (a whole number)"))
    })
}

fn standard_webhooks(received: &Received<'_>) -> Result<Signed, Finding> {
    let required = |name: &str| {
        received
            .header(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| header_finding(format!("the `{name}` header is missing")))
    };
    let message_id = required("webhook-id")?.to_owned();
    let timestamp_text = required("webhook-timestamp")?;
    let timestamp = if timestamp_text.len() > 11 {
        return Err(header_finding(format!(
            "`webhook-timestamp` is `{timestamp_text}`: milliseconds? it is unix seconds"
        )));
    } else {
        timestamp_of("webhook-timestamp", timestamp_text)?
    };
    let value = required("webhook-signature")?;
    let signatures: Vec<String> = value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter(|signature| !signature.is_empty())
        .map(str::to_owned)
        .collect();
    let versions: Vec<String> = value
        .split_ascii_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, signature)| {
            [super::SYMMETRIC_VERSION, super::ASYMMETRIC_VERSION].contains(version)
                && !signature.is_empty()
        })
        .map(|(version, _)| version.to_owned())
        .collect();
    if versions.is_empty() {
        return Err(header_finding(
            "`webhook-signature` has no `v1,<base64>` nor `v1a,<base64>` entry \
             (space-separated, e.g. `v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=`)",
        ));
    }
    Ok(Signed {
        message_id,
        timestamp: Some(timestamp),
        signatures,
        header: value.to_owned(),
        versions,
        hint: "; the `webhook-id` is signed too".to_owned(),
    })
}

fn github(received: &Received<'_>) -> Result<Signed, Finding> {
    let Some(value) = received.header("x-hub-signature-256") else {
        let detail = if received.header("x-hub-signature").is_some() {
            "only `x-hub-signature` (SHA-1) is present; `x-hub-signature-256` is missing"
        } else {
            "the `x-hub-signature-256` header is missing"
        };
        return Err(header_finding(detail));
    };
    let Some(hex_mac) = value.strip_prefix("sha256=") else {
        return Err(header_finding("`x-hub-signature-256` does not start with `sha256=`"));
    };
    if hex_mac.len() != 64 || !hex_mac.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(header_finding(
            "`x-hub-signature-256` is not `sha256=` and 64 hexadecimal digits",
        ));
    }
    Ok(Signed {
        message_id: String::new(),
        timestamp: None,
        signatures: vec![hex_mac.to_ascii_lowercase()],
        header: String::new(),
        versions: Vec::new(),
        hint: String::new(),
    })
}

fn stripe(received: &Received<'_>) -> Result<Signed, Finding> {
    let Some(value) = received.header("stripe-signature") else {
        return Err(header_finding("the `stripe-signature` header is missing"));
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for pair in value.split(',') {
        match pair.trim().split_once('=') {
            Some(("t", text)) => timestamp = Some(timestamp_of("stripe-signature` `t", text)?),
            Some(("v1", signature)) => signatures.push(signature.to_ascii_lowercase()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(header_finding("`stripe-signature` has no `t=<unix seconds>` entry"));
    };
    if signatures.is_empty() {
        return Err(header_finding("`stripe-signature` has no `v1=<hex>` entry"));
    }
    Ok(Signed {
        message_id: String::new(),
        timestamp: Some(timestamp),
        signatures,
        header: String::new(),
        versions: Vec::new(),
        hint: String::new(),
    })
}

#[cfg(test)]
mod tests;
