//! From a NATS message to what the accept path takes: headers, body, subject, and the event
//! type and dedupe key the message itself declares (DESIGN §8).
//!
//! Pure. The CloudEvents rules (binary and structured mode) are [`crate::cloudevents`]'s; a
//! message that is no CloudEvent is a plain message: its type comes from the source's
//! `event_type` rule, else the subject. The dedupe key is `Nats-Msg-Id`, else the CloudEvent
//! id. A malformed CloudEvent is refused with a reason: redelivering it would never succeed.

use bytes::Bytes;

pub use crate::cloudevents::Malformed;

/// Header names as NATS carries them, before lower-casing.
const MESSAGE_ID_HEADER: &str = "nats-msg-id";

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

/// Reads what `message` declares, or why it is malformed.
pub fn declared(message: &NatsMessage) -> Result<Declared, Malformed> {
    let message_id = message
        .headers
        .iter()
        .find(|(name, value)| name == MESSAGE_ID_HEADER && !value.is_empty())
        .map(|(_, value)| value.clone());
    let cloudevent = crate::cloudevents::read(&message.headers, &message.payload)?;
    Ok(match cloudevent {
        Some(cloudevent) => Declared {
            event_type: Some(cloudevent.event_type),
            dedupe_key: message_id.or(Some(cloudevent.id)),
        },
        None => Declared { event_type: None, dedupe_key: message_id },
    })
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
