//! The two signature schemes a benchmark needs: GitHub's, to sign what the load generator
//! sends to a `verify-github` source, and Standard Webhooks, to check what the sink receives.
//!
//! Written here from the specs rather than borrowed from the router, so the sink is an
//! independent check of the router's signing.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The `x-hub-signature-256` value for `body` under `secret`: `sha256=<lowercase hex>`.
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in digest {
        text.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        text.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    text
}

/// A Standard Webhooks symmetric key (`whsec_<base64>`).
#[derive(Clone)]
pub struct WebhookKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("WebhookKey(..)")
    }
}

impl WebhookKey {
    pub fn parse(secret: &str) -> anyhow::Result<Self> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|error| anyhow::anyhow!("the signing secret is not base64: {error}"))?;
        Ok(Self { key })
    }

    /// Whether any `v1,<base64>` entry of `signatures` is the HMAC of
    /// `{id}.{timestamp}.{body}`.
    pub fn verify(&self, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        signatures.split_whitespace().filter_map(|entry| entry.strip_prefix("v1,")).any(|text| {
            STANDARD.decode(text).is_ok_and(|signature| {
                // Not constant time: the sink is a test receiver, not a verifier under attack.
                signature.as_slice() == expected.as_slice()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_known_answer() {
        assert_eq!(
            github_signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn standard_webhooks_known_answers() {
        let vectors = [
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                "1649367553",
                r#"{"email":"test@example.com","username":"test_user"}"#,
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                r#"{"test": 2432232314}"#,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        for (secret, id, timestamp, body, signature) in vectors {
            let key = WebhookKey::parse(secret).unwrap();
            assert!(key.verify(id, timestamp, body.as_bytes(), signature), "{id}");
            let rotated = format!("v1,AAAA {signature}");
            assert!(key.verify(id, timestamp, body.as_bytes(), &rotated), "{id} rotated");
            assert!(!key.verify(id, "1", body.as_bytes(), signature), "{id} other timestamp");
            assert!(!key.verify(id, timestamp, b"{}", signature), "{id} other body");
        }
    }
}
