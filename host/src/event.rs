//! The event as the host holds it, and its id.
//!
//! Owns [`Event`], [`EventId`] (`evt_` + ULID, stable forever) and the rule every event type
//! follows ([`EventType`]). The body is the raw bytes as received; nothing here parses it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use ulid::Ulid;

const ID_PREFIX: &str = "evt_";
/// The length of an id's text: the prefix and 26 base32 characters.
const ID_TEXT_LEN: usize = ID_PREFIX.len() + ulid::ULID_LEN;

/// `evt_<ULID>`: sortable by creation time, never contains `.` (it is signed as
/// `{id}.{timestamp}.{body}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(Ulid);

impl EventId {
    pub fn generate() -> Self {
        Self(Ulid::new())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(Ulid::from_bytes(bytes))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    /// The id's text held inline: what `to_string` gives, without allocating.
    pub fn text(self) -> EventIdText {
        let mut ulid = [0; ulid::ULID_LEN];
        self.0.array_to_str(&mut ulid);
        let mut bytes = [0; ID_TEXT_LEN];
        let (prefix, rest) = bytes.split_at_mut(ID_PREFIX.len());
        prefix.copy_from_slice(ID_PREFIX.as_bytes());
        rest.copy_from_slice(&ulid);
        EventIdText(bytes)
    }
}

/// An [`EventId`]'s text, `evt_` and 26 base32 characters, in a fixed array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventIdText([u8; ID_TEXT_LEN]);

impl EventIdText {
    pub fn as_str(&self) -> &str {
        // Always ASCII: the prefix and Crockford base32.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{ID_PREFIX}{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event id; expected `evt_` and 26 base32 characters")]
pub struct ParseEventIdError(String);

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.strip_prefix(ID_PREFIX)
            .and_then(|ulid| Ulid::from_string(ulid).ok())
            .map(Self)
            .ok_or_else(|| ParseEventIdError(text.to_owned()))
    }
}

/// An event type that follows the rule: not empty, at most [`EventType::MAX_LENGTH`] bytes
/// (types end up in URLs, subjects and metric labels). Whoever sets an event's type, the
/// accept path or a plugin, checks it here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

/// Why a text is not an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEventType {
    #[error("the event type is empty")]
    Empty,
    #[error("the event type is longer than {} bytes", EventType::MAX_LENGTH)]
    TooLong,
}

impl EventType {
    /// The longest event type, in bytes.
    pub const MAX_LENGTH: usize = 256;

    pub fn new(text: impl Into<String>) -> Result<Self, InvalidEventType> {
        let text = text.into();
        if text.is_empty() {
            Err(InvalidEventType::Empty)
        } else if text.len() > Self::MAX_LENGTH {
            Err(InvalidEventType::TooLong)
        } else {
            Ok(Self(text))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An event: what a source received, plus what the pipeline decided about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub source: String,
    pub event_type: String,
    pub subject: Option<String>,
    /// Lower-cased names, in the order received.
    pub headers: Vec<(String, String)>,
    /// Exactly the bytes received.
    pub body: Bytes,
    /// Unix milliseconds.
    pub received_at: u64,
    pub dedupe_key: Option<String>,
    /// A string map carried between stages.
    pub metadata: Vec<(String, String)>,
}

impl Event {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// The first value of header `name` (lower case) in a header list.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// The current time in unix milliseconds.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_round_trip() {
        let id = EventId::generate();
        let text = id.to_string();
        assert!(text.starts_with("evt_") && text.len() == 30 && !text.contains('.'));
        assert_eq!(text.parse::<EventId>(), Ok(id));
        assert_eq!(id.text().as_str(), text);
        assert_eq!(EventId::from_bytes(id.to_bytes()), id);
        assert!("evt_nope".parse::<EventId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<EventId>().is_err());
    }

    #[test]
    fn event_types_are_not_empty_and_at_most_256_bytes() {
        assert_eq!(
            EventType::new("github.push").map(EventType::into_string),
            Ok("github.push".into())
        );
        assert!(EventType::new("x".repeat(256)).is_ok());
        assert_eq!(EventType::new("x".repeat(257)), Err(InvalidEventType::TooLong));
        assert_eq!(EventType::new(""), Err(InvalidEventType::Empty));
        assert_eq!(
            InvalidEventType::TooLong.to_string(),
            "the event type is longer than 256 bytes"
        );
    }
}
