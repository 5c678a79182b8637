//! From a NATS message to what the accept path takes: headers, body, subject, and the event
//! type and dedupe key the message itself declares (DESIGN §8).
//!
//! Pure. Owns the CloudEvents rules:
//! - binary mode: `ce-specversion` present; `ce-id`, `ce-source` and `ce-type` are then
//!   required; the payload is the data and is kept as received;
//! - structured mode: `content-type: application/cloudevents+json`; the payload must be a JSON
//!   object with `specversion`, `id`, `source` and `type` strings, and is kept whole;
//! - anything else is a plain message: its type comes from the source's `event_type` rule,
//!   else the subject.
//!
//! The dedupe key is `Nats-Msg-Id`, else the CloudEvent id. A malformed CloudEvent is refused
//! with a reason: redelivering it would never succeed.

use bytes::Bytes;
use serde::Deserialize;

/// Header names as NATS carries them, before lower-casing.
const MESSAGE_ID_HEADER: &str = "nats-msg-id";
const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The attributes every CloudEvent must carry (besides `specversion`).
const REQUIRED_ATTRIBUTES: [&str; 3] = ["id", "source", "type"];

/// A NATS message, reduced to what Switchyard reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsMessage {
    pub subject: String,
    /// Names lower-cased; NATS does not keep header order, so names are sorted.
    pub headers: Vec<(String, String)>,
    pub payload: Bytes,
}

/// What the message declares about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The CloudEvent type, if the message is a CloudEvent.
    pub event_type: Option<String>,
    /// `Nats-Msg-Id`, else the CloudEvent id.
    pub dedupe_key: Option<String>,
}

/// Why a message cannot become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("structured CloudEvent is not a JSON object: {0}")]
    NotJson(String),
    #[error("CloudEvent lacks the required attribute `{0}` (or it is not a non-empty string)")]
    MissingAttribute(&'static str),
}

impl Malformed {
    /// A short label for the metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "cloudevent_not_json",
            Self::MissingAttribute(_) => "cloudevent_missing_attribute",
        }
    }
}

/// Reads what `message` declares, or why it is malformed.
pub fn declared(message: &NatsMessage) -> Result<Declared, Malformed> {
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let message_id = header(MESSAGE_ID_HEADER).map(str::to_owned);
    if header("ce-specversion").is_some() {
        for attribute in REQUIRED_ATTRIBUTES {
            if header(&format!("ce-{attribute}")).is_none() {
                return Err(Malformed::MissingAttribute(attribute));
            }
        }
        return Ok(Declared {
            event_type: header("ce-type").map(str::to_owned),
            dedupe_key: message_id.or_else(|| header("ce-id").map(str::to_owned)),
        });
    }
    let structured = header("content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(STRUCTURED_CONTENT_TYPE))
    });
    if structured {
        let attributes = structured_attributes(&message.payload)?;
        return Ok(Declared {
            event_type: Some(attributes.event_type),
            dedupe_key: message_id.or(Some(attributes.id)),
        });
    }
    Ok(Declared { event_type: None, dedupe_key: message_id })
}

struct Attributes {
    id: String,
    event_type: String,
}

fn structured_attributes(payload: &[u8]) -> Result<Attributes, Malformed> {
    #[derive(Deserialize)]
    struct Envelope {
        specversion: Option<serde_json::Value>,
        id: Option<serde_json::Value>,
        source: Option<serde_json::Value>,
        #[serde(rename = "type")]
        event_type: Option<serde_json::Value>,
    }
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|error| Malformed::NotJson(error.to_string()))?;
    let text = |value: Option<serde_json::Value>, name: &'static str| match value {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Ok(text),
        _ => Err(Malformed::MissingAttribute(name)),
    };
    text(envelope.specversion, "specversion")?;
    text(envelope.source, "source")?;
    Ok(Attributes { id: text(envelope.id, "id")?, event_type: text(envelope.event_type, "type")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &[(&str, &str)], payload: &str) -> NatsMessage {
        NatsMessage {
            subject: "orders.eu.created".into(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            payload: Bytes::from(payload.to_owned()),
        }
    }

    #[test]
    fn cloudevents_and_plain_messages() {
        let binary = [
            ("ce-id", "a1"),
            ("ce-source", "/shop"),
            ("ce-specversion", "1.0"),
            ("ce-type", "order.created"),
        ];
        let structured =
            r#"{"specversion":"1.0","id":"b2","source":"/shop","type":"order.paid","data":{}}"#;
        let cloudevents = [("content-type", "application/cloudevents+json; charset=utf-8")];
        let table: Vec<(NatsMessage, Result<Declared, Malformed>)> = vec![
            (
                message(&binary, "{}"),
                Ok(Declared {
                    event_type: Some("order.created".into()),
                    dedupe_key: Some("a1".into()),
                }),
            ),
            (
                message(&[("nats-msg-id", "m1"), binary[0], binary[1], binary[2], binary[3]], "{}"),
                Ok(Declared {
                    event_type: Some("order.created".into()),
                    dedupe_key: Some("m1".into()),
                }),
            ),
            (
                message(&[binary[0], binary[2], binary[3]], "{}"),
                Err(Malformed::MissingAttribute("source")),
            ),
            (
                message(&cloudevents, structured),
                Ok(Declared {
                    event_type: Some("order.paid".into()),
                    dedupe_key: Some("b2".into()),
                }),
            ),
            (
                message(&cloudevents, r#"{"specversion":"1.0","id":"x","source":"/s","type":""}"#),
                Err(Malformed::MissingAttribute("type")),
            ),
            (
                message(&cloudevents, r#"{"specversion":"1.0","id":7,"source":"/s","type":"t"}"#),
                Err(Malformed::MissingAttribute("id")),
            ),
            (
                message(&[("nats-msg-id", "m2")], "plain"),
                Ok(Declared { event_type: None, dedupe_key: Some("m2".into()) }),
            ),
            (message(&[], ""), Ok(Declared { event_type: None, dedupe_key: None })),
        ];
        for (message, expected) in table {
            assert_eq!(declared(&message), expected, "{message:?}");
        }
        assert!(matches!(
            declared(&message(&cloudevents, "{not json")),
            Err(Malformed::NotJson(_))
        ));
    }
}
