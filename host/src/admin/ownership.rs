//! Endpoint ownership: a dynamic endpoint proves that its owner wants deliveries before it
//! gets any (`server.verify_endpoints`).
//!
//! Owns the challenge (a signed `switchyard.endpoint.verification` event sent to the endpoint),
//! the check of its answer ([`answers_challenge`], pure), and the task that disables endpoints
//! that never answer within `server.verify_timeout`. Which state the endpoint and its
//! deliveries take is [`crate::store::lifecycle`]'s; the store parks the deliveries (the
//! endpoint counts as disabled) and [`Registry`] keeps the store, workers and routes in step.
//! It never sends anything but the challenge, and never to a config endpoint.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::model::{EndpointRecord, VerificationRecord};
use super::registry::{DynamicEndpoint, Registry, RegistryError};
use crate::delivery::http::{AttemptOutcome, HttpSender, OutboundRequest, SenderError};
use crate::delivery::{Target, outbound_headers};
use crate::egress::EgressPolicy;
use crate::event::{EventId, now_millis};
use crate::store::Payload;
use crate::store::lifecycle::{Ownership, OwnershipEvent, next_ownership};

/// The type of the challenge event.
pub const VERIFICATION_EVENT_TYPE: &str = "switchyard.endpoint.verification";
/// Why an endpoint waiting for its owner is disabled (the store keeps it).
pub const PENDING_REASON: &str =
    "pending_verification: deliveries wait until the endpoint answers its challenge";
/// Why an endpoint that never answered is disabled.
pub const EXPIRED_REASON: &str =
    "verification_expired: the endpoint did not answer its challenge in time";
/// The longest the expiry task sleeps without looking again.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// The shortest, so that a burst of deadlines is not a busy loop.
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// How a challenge went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenged {
    /// The endpoint is verified (now or before).
    pub verified: bool,
    /// What the endpoint answered, in a few words (`HTTP 200 with the challenge`, `timeout`…).
    pub detail: String,
}

/// Sends challenges and expires endpoints that never answer. One per process.
#[derive(Debug)]
pub struct OwnershipService {
    sender: HttpSender,
    /// Wakes the expiry task when a new check starts.
    wake: Notify,
}

impl OwnershipService {
    /// The service, sending through the same egress guard as deliveries.
    pub fn new(egress: EgressPolicy) -> Result<Arc<Self>, SenderError> {
        let user_agent = format!("Switchyard/{}", env!("CARGO_PKG_VERSION"));
        Ok(Arc::new(Self { sender: HttpSender::new(egress, user_agent)?, wake: Notify::new() }))
    }

    /// Tells the expiry task that a check started (its deadline may be the nearest).
    pub fn started(&self) {
        self.wake.notify_one();
    }

    /// Sends endpoint `id` its challenge and, on a 2xx answer holding it, marks the endpoint
    /// verified and enables it (its parked deliveries go out). `None`: no such endpoint.
    pub async fn challenge(
        &self,
        registry: &Arc<Registry>,
        id: &str,
    ) -> Result<Option<Challenged>, RegistryError> {
        let Some(endpoint) = registry.get(id) else { return Ok(None) };
        let Some(check) = endpoint.record.verification.clone() else {
            return Ok(Some(Challenged { verified: true, detail: "verified".to_owned() }));
        };
        if check.state == Ownership::Verified {
            return Ok(Some(Challenged { verified: true, detail: "verified".to_owned() }));
        }
        let (with_challenge, detail) = self.send(&endpoint, &check).await;
        let event = OwnershipEvent::Answered { with_challenge };
        if next_ownership(check.state, event) != Ownership::Verified {
            tracing::info!(endpoint = %id, detail, "endpoint did not answer its challenge");
            return Ok(Some(Challenged { verified: false, detail }));
        }
        let now = now_millis();
        let verify = move |endpoint: &mut DynamicEndpoint| {
            if let Some(check) = endpoint.record.verification.as_mut() {
                check.state = next_ownership(check.state, event);
                check.verified_at.get_or_insert(now);
            }
        };
        if registry.update_ownership(id, verify).await?.is_none() {
            return Ok(None);
        }
        tracing::info!(endpoint = %id, "endpoint verified: its deliveries flow");
        Ok(Some(Challenged { verified: true, detail }))
    }

    /// Sends the challenge event, signed like any delivery; answers whether the answer held
    /// the challenge, and what it was.
    async fn send(&self, endpoint: &DynamicEndpoint, check: &VerificationRecord) -> (bool, String) {
        let runtime = match endpoint.record.runtime(&endpoint.id) {
            Ok(runtime) => runtime,
            Err(reason) => return (false, format!("the endpoint cannot run: {reason}")),
        };
        let Target::Http(url) = &runtime.target else {
            return (false, "not an HTTP endpoint".to_owned());
        };
        let event_id = EventId::generate();
        let body = json!({
            "type": VERIFICATION_EVENT_TYPE,
            "id": event_id.to_string(),
            "endpoint": endpoint.id,
            "challenge": check.challenge,
        });
        let payload = Payload {
            body: Bytes::from(body.to_string()),
            content_type: Some("application/json".to_owned()),
            subject: None,
        };
        let headers = outbound_headers(&runtime, event_id, now_millis(), &payload);
        let request = OutboundRequest {
            url: url.clone(),
            headers,
            body: payload.body,
            timeout: runtime.timeout,
            // The challenge goes as deliveries go: with the endpoint's own CA and certificate.
            tls: runtime.tls.clone(),
        };
        let result = self.sender.send(request).await;
        match result.outcome {
            AttemptOutcome::Status { code, .. } => {
                let answered = answers_challenge(code, &result.response_excerpt, &check.challenge);
                let with = if answered { "with" } else { "without" };
                (answered, format!("HTTP {code} {with} the challenge"))
            }
            AttemptOutcome::Timeout => (false, "timeout".to_owned()),
            AttemptOutcome::Connect(reason) => (false, format!("connection failed: {reason}")),
            AttemptOutcome::Dns(reason) => (false, format!("name not resolved: {reason}")),
            AttemptOutcome::Blocked(reason) => (false, format!("blocked: {reason}")),
        }
    }

    /// Until `stop`: disables every endpoint whose check is still pending at its deadline.
    pub async fn expire_unanswered(
        self: Arc<Self>,
        registry: Arc<Registry>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let now = now_millis();
            let mut nearest: Option<u64> = None;
            for endpoint in registry.list() {
                let Some(check) = pending_check(&endpoint.record) else { continue };
                if check.deadline <= now {
                    if let Err(error) = expire(&registry, &endpoint.id).await {
                        tracing::warn!(endpoint = %endpoint.id, %error, "verification not expired; trying again later");
                    }
                } else {
                    nearest = Some(nearest.map_or(check.deadline, |at| at.min(check.deadline)));
                }
            }
            let pause = nearest.map_or(MAX_PAUSE, |at| Duration::from_millis(at - now));
            let pause = pause.clamp(MIN_PAUSE, MAX_PAUSE);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }
}

fn pending_check(record: &EndpointRecord) -> Option<&VerificationRecord> {
    record.verification.as_ref().filter(|check| check.state == Ownership::PendingVerification)
}

/// Marks `id`'s check expired, which disables it for that reason (its deliveries stay
/// parked). One verified meanwhile stays verified.
async fn expire(registry: &Arc<Registry>, id: &str) -> Result<(), RegistryError> {
    let expired = |endpoint: &mut DynamicEndpoint| {
        if let Some(check) = endpoint.record.verification.as_mut() {
            check.state = next_ownership(check.state, OwnershipEvent::DeadlinePassed);
        }
    };
    let changed = registry.update_ownership(id, expired).await?;
    if changed.is_some_and(|endpoint| endpoint.record.ownership() == Ownership::Expired) {
        tracing::warn!(endpoint = %id, "endpoint disabled: it never answered its challenge");
    }
    Ok(())
}

/// Whether an answer proves ownership: a 2xx whose body is the challenge, as the bare string
/// (surrounding whitespace aside), a JSON string, or a JSON object `{"challenge": "…"}`.
pub fn answers_challenge(status: u16, body: &[u8], challenge: &str) -> bool {
    if !(200..300).contains(&status) || challenge.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let text = text.trim();
    if text == challenge {
        return true;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(answer)) => answer == challenge,
        Ok(serde_json::Value::Object(object)) => {
            object.get("challenge").and_then(serde_json::Value::as_str) == Some(challenge)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_2xx_holding_the_challenge_proves_ownership() {
        let challenge = "c2VjcmV0LWNoYWxsZW5nZQ";
        #[rustfmt::skip]
        let table: &[(u16, &[u8], bool)] = &[
            (200, b"c2VjcmV0LWNoYWxsZW5nZQ", true),
            (204, b"  c2VjcmV0LWNoYWxsZW5nZQ\n", true),
            (200, br#"{"challenge":"c2VjcmV0LWNoYWxsZW5nZQ"}"#, true),
            (200, br#"{"ok":true,"challenge":"c2VjcmV0LWNoYWxsZW5nZQ"}"#, true),
            (200, br#""c2VjcmV0LWNoYWxsZW5nZQ""#, true),
            (500, b"c2VjcmV0LWNoYWxsZW5nZQ", false),
            (302, b"c2VjcmV0LWNoYWxsZW5nZQ", false),
            (200, b"", false),
            (200, b"ok", false),
            (200, br#"{"challenge":"other"}"#, false),
            (200, br#"{"challenge":["c2VjcmV0LWNoYWxsZW5nZQ"]}"#, false),
            (200, b"c2VjcmV0LWNoYWxsZW5nZQ-and-more", false),
            (200, b"\xff\xfe", false),
        ];
        for &(status, body, expected) in table {
            let shown = String::from_utf8_lossy(body);
            assert_eq!(answers_challenge(status, body, challenge), expected, "{status} {shown}");
        }
        assert!(!answers_challenge(200, b"", ""), "an empty challenge proves nothing");
    }
}
