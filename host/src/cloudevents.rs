//! CloudEvents 1.0, as Switchyard reads them from NATS messages and from the publish API.
//!
//! Pure: headers and payload in, what the event declares out. Owns the two modes' rules:
//! - binary mode: `ce-specversion` present; `ce-id`, `ce-source` and `ce-type` are then
//!   required; the payload is the data and is kept as received;
//! - structured mode: `content-type: application/cloudevents+json` (parameters allowed); the
//!   payload must be a JSON object with `specversion`, `id`, `source` and `type` strings, and
//!   is kept whole.
//!
//! Must not: know a transport. Which header carries a transport's own message id
//! (`Nats-Msg-Id`, `idempotency-key`) and whether it wins over the CloudEvent id is the
//! caller's rule. A malformed CloudEvent is refused with a reason.

use serde::Deserialize;

const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The attributes every CloudEvent must carry (besides `specversion`).
const REQUIRED_ATTRIBUTES: [&str; 3] = ["id", "source", "type"];

/// What a CloudEvent declares that Switchyard uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent {
    /// The `id` attribute: a dedupe key within its `source`.
    pub id: String,
    /// The `type` attribute: the event type.
    pub event_type: String,
}

/// Why a message that says it is a CloudEvent is not one.
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

/// A CloudEvent in either mode; `None` when the message does not claim to be one.
/// `headers` have lower-case names.
pub fn read(headers: &[(String, String)], payload: &[u8]) -> Result<Option<CloudEvent>, Malformed> {
    if header(headers, "ce-specversion").is_some() {
        return binary(headers).map(Some);
    }
    structured(headers, payload)
}

/// A structured-mode CloudEvent; `None` when the content type is not
/// `application/cloudevents+json`.
pub fn structured(
    headers: &[(String, String)],
    payload: &[u8],
) -> Result<Option<CloudEvent>, Malformed> {
    let is_structured = header(headers, "content-type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(STRUCTURED_CONTENT_TYPE))
    });
    if !is_structured {
        return Ok(None);
    }
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
    let id = text(envelope.id, "id")?;
    let event_type = text(envelope.event_type, "type")?;
    Ok(Some(CloudEvent { id, event_type }))
}

fn binary(headers: &[(String, String)]) -> Result<CloudEvent, Malformed> {
    for attribute in REQUIRED_ATTRIBUTES {
        if header(headers, &format!("ce-{attribute}")).is_none() {
            return Err(Malformed::MissingAttribute(attribute));
        }
    }
    let attribute = |name| header(headers, name).map(str::to_owned).unwrap_or_default();
    Ok(CloudEvent { id: attribute("ce-id"), event_type: attribute("ce-type") })
}

/// The first non-empty value of header `name`.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    const STRUCTURED: &str =
        r#"{"specversion":"1.0","id":"b2","source":"/shop","type":"order.paid","data":{}}"#;

    #[test]
    fn structured_mode_is_chosen_by_content_type_only() {
        let cloudevent = Some(CloudEvent { id: "b2".into(), event_type: "order.paid".into() });
        let json = headers(&[("content-type", "Application/CloudEvents+JSON; charset=utf-8")]);
        assert_eq!(structured(&json, STRUCTURED.as_bytes()), Ok(cloudevent));
        let plain = headers(&[("content-type", "application/json"), ("ce-specversion", "1.0")]);
        assert_eq!(structured(&plain, STRUCTURED.as_bytes()), Ok(None));
        assert_eq!(structured(&[], STRUCTURED.as_bytes()), Ok(None));
    }

    #[test]
    fn binary_mode_wins_and_needs_its_attributes() {
        let binary = headers(&[
            ("ce-id", "a1"),
            ("ce-source", "/shop"),
            ("ce-specversion", "1.0"),
            ("ce-type", "order.created"),
            ("content-type", "application/cloudevents+json"),
        ]);
        let expected = CloudEvent { id: "a1".into(), event_type: "order.created".into() };
        assert_eq!(read(&binary, b"not json"), Ok(Some(expected)));
        let no_source: Vec<_> =
            binary.into_iter().filter(|(name, _)| name != "ce-source").collect();
        assert_eq!(read(&no_source, b""), Err(Malformed::MissingAttribute("source")));
    }
}
