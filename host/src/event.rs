//! The event as the host holds it, and its id.
//!
//! Owns [`Event`] and [`EventId`] (`evt_` + ULID, stable forever). The body is the raw bytes
//! as received; nothing here parses it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use ulid::Ulid;

const ID_PREFIX: &str = "evt_";

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
        assert_eq!(EventId::from_bytes(id.to_bytes()), id);
        assert!("evt_nope".parse::<EventId>().is_err());
        assert!("01ARZ3NDEKTSV4RRFFQ69G5FAV".parse::<EventId>().is_err());
    }
}
