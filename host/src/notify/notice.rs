//! The operational event types of the built-in `switchyard` source and their JSON bodies.
//!
//! Owns the type names users route on and the exact shape of each body (what a plugin such as
//! a Slack reshaper reads). Pure: it builds values from what it is given; it decides nothing
//! about when a notification is due (that is [`super::guard`]) and sends nothing.

use serde_json::{Map, Value, json};

/// What an operational event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NoticeKind {
    /// An endpoint's attempts kept failing past the threshold.
    EndpointFailing,
    /// An endpoint was disabled (410 Gone, or auto-disable); its deliveries are parked.
    EndpointDisabled,
    /// An endpoint that was failing delivered again.
    EndpointRecovered,
    /// An endpoint's circuit breaker opened.
    BreakerOpened,
    /// An endpoint's circuit breaker closed again.
    BreakerClosed,
    /// A delivery used up its retries and became a dead letter.
    DeliveryDeadLettered,
    /// A source answered senders 429 (its ingest rate limit).
    SourceRateLimited,
}

impl NoticeKind {
    pub const ALL: [Self; 7] = [
        Self::EndpointFailing,
        Self::EndpointDisabled,
        Self::EndpointRecovered,
        Self::BreakerOpened,
        Self::BreakerClosed,
        Self::DeliveryDeadLettered,
        Self::SourceRateLimited,
    ];

    /// The event type, as routes match it.
    pub const fn event_type(self) -> &'static str {
        match self {
            Self::EndpointFailing => "switchyard.endpoint.failing",
            Self::EndpointDisabled => "switchyard.endpoint.disabled",
            Self::EndpointRecovered => "switchyard.endpoint.recovered",
            Self::BreakerOpened => "switchyard.breaker.opened",
            Self::BreakerClosed => "switchyard.breaker.closed",
            Self::DeliveryDeadLettered => "switchyard.delivery.dead_lettered",
            Self::SourceRateLimited => "switchyard.source.rate_limited",
        }
    }

    /// Whether it is about a source (else about an endpoint).
    pub const fn about_source(self) -> bool {
        matches!(self, Self::SourceRateLimited)
    }
}

/// One operational event to ingest: its kind, what it is about and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The endpoint id, or the source id for [`NoticeKind::SourceRateLimited`].
    pub about: String,
    pub body: Value,
}

/// What a notification says beyond its kind and subject; every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub consecutive_failures: Option<u32>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// The delivery the notification was raised by, and its event.
    pub delivery: Option<(u64, String)>,
    /// Attempts the delivery made (dead letters).
    pub attempts: Option<u32>,
    /// Anything else the raiser wants to say (breaker cooldown, rate…), merged at the top.
    pub extra: Map<String, Value>,
}

/// The body of a notification. `occurrences` counts how many times the condition arose since
/// the last notification of this kind about this subject, this one included (the storm guard
/// folds the others into it). `at` is unix milliseconds.
pub fn body(kind: NoticeKind, about: &str, details: &Details, occurrences: u32, at: u64) -> Value {
    let mut body = Map::new();
    body.insert("type".into(), Value::from(kind.event_type()));
    // A source has no admin resource of its own: its events are.
    let (name, admin) = if kind.about_source() {
        ("source", format!("/v1/admin/events?source={about}"))
    } else {
        ("endpoint", format!("/v1/admin/endpoints/{about}"))
    };
    body.insert(name.into(), json!({ "id": about, "admin": admin }));
    body.insert("occurrences".into(), Value::from(occurrences));
    if let Some(failures) = details.consecutive_failures {
        body.insert("consecutive_failures".into(), Value::from(failures));
    }
    if let Some(error) = &details.last_error {
        body.insert("last_error".into(), Value::from(error.as_str()));
    }
    if let Some(status) = details.last_status {
        body.insert("last_status".into(), Value::from(status));
    }
    if let Some((delivery, event)) = &details.delivery {
        let mut delivery_body = json!({
            "id": delivery.to_string(),
            "event": event,
            "admin": format!("/v1/admin/deliveries/{delivery}"),
        });
        if let Some(attempts) = details.attempts {
            delivery_body["attempts"] = Value::from(attempts);
        }
        body.insert("delivery".into(), delivery_body);
    }
    for (key, value) in &details.extra {
        body.entry(key.clone()).or_insert_with(|| value.clone());
    }
    body.insert("at".into(), Value::from(at));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_under_the_switchyard_prefix_and_distinct() {
        let types: std::collections::BTreeSet<_> =
            NoticeKind::ALL.iter().map(|kind| kind.event_type()).collect();
        assert_eq!(types.len(), NoticeKind::ALL.len());
        assert!(types.iter().all(|name| name.starts_with("switchyard.")));
    }

    #[test]
    fn a_dead_letter_body_names_the_endpoint_the_delivery_and_their_admin_resources() {
        let details = Details {
            consecutive_failures: Some(3),
            last_error: Some("HTTP 500".into()),
            last_status: Some(500),
            delivery: Some((42, "evt_01".into())),
            attempts: Some(3),
            extra: Map::new(),
        };
        let body = body(NoticeKind::DeliveryDeadLettered, "billing", &details, 2, 1_700);
        assert_eq!(
            body,
            json!({
                "type": "switchyard.delivery.dead_lettered",
                "endpoint": {"id": "billing", "admin": "/v1/admin/endpoints/billing"},
                "occurrences": 2,
                "consecutive_failures": 3,
                "last_error": "HTTP 500",
                "last_status": 500,
                "delivery": {
                    "id": "42",
                    "event": "evt_01",
                    "admin": "/v1/admin/deliveries/42",
                    "attempts": 3,
                },
                "at": 1_700,
            })
        );
    }

    #[test]
    fn a_source_notice_is_about_the_source_and_extra_fields_never_overwrite() {
        let mut extra = Map::new();
        extra.insert("rate".into(), Value::from("100/s"));
        extra.insert("type".into(), Value::from("forged"));
        let details = Details { extra, ..Details::default() };
        let body = body(NoticeKind::SourceRateLimited, "github", &details, 1, 5);
        assert_eq!(body["type"], "switchyard.source.rate_limited");
        assert_eq!(body["source"]["admin"], "/v1/admin/events?source=github");
        assert_eq!(body["rate"], "100/s");
        assert!(body.get("endpoint").is_none());
    }
}
