//! What a plugin can answer, in host terms, and how an answer applies to an event.
//!
//! Owns the verdict types the pipeline works with (the plugin runtime converts the WIT types
//! into these), the limits on what a plugin may hand back (output size, split count, valid
//! headers, a rejection's status) and the pure application of an answer to an [`Event`]: a
//! patch, a replacement that keeps the host's id, a split whose events get new ids.
//! Pure: no I/O, no clocks but the ids it is given.

use bytes::Bytes;

use crate::event::{Event, EventId, EventType};

/// The most bytes a plugin may hand back in one answer (bodies, headers and metadata).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// The most events one `split` may produce.
pub const MAX_SPLIT_EVENTS: usize = 100;
/// The metadata key through which a verify plugin sets the event's dedupe key.
pub const DEDUPE_KEY_METADATA: &str = "dedupe-key";

/// An event a plugin wrote (`replace` and `split`); the host owns id, source and received-at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEvent {
    pub event_type: String,
    pub subject: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub metadata: Vec<(String, String)>,
}

/// A small edit of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub set_headers: Vec<(String, String)>,
    pub remove_headers: Vec<String>,
    pub set_metadata: Vec<(String, String)>,
    pub event_type: Option<String>,
    pub subject: Option<String>,
    pub body: Option<Bytes>,
}

/// A verify plugin's refusal: the status and `{code, detail}` the sender is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// What a plugin decided about one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    Pass,
    Modify(Patch),
    Replace(GuestEvent),
    Split(Vec<GuestEvent>),
    Reject(Rejection),
}

/// Why a plugin could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFailure {
    /// Transient: the sender is asked to retry.
    Retry(String),
    /// A bug or bad input: the binding's `on_error` applies.
    Fatal(String),
}

/// Where in the pipeline a plugin runs; some verdicts only make sense in some stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// On a source, before the event is accepted.
    Verify,
    /// On a route, in order.
    Route,
    /// On an endpoint, shaping its payload.
    Endpoint,
}

/// An answer the host refuses; the binding's `on_error` applies as for a trap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidVerdict {
    #[error("the answer holds {bytes} bytes; at most {MAX_OUTPUT_BYTES} are allowed")]
    TooLarge { bytes: usize },
    #[error("`split` produced {count} events; at most {MAX_SPLIT_EVENTS} are allowed")]
    TooManyEvents { count: usize },
    #[error("`split` is not allowed in the verify stage")]
    SplitInVerify,
    #[error("`reject` is only allowed in the verify stage")]
    RejectOutsideVerify,
    #[error("`reject` status {0} is not a 4xx status")]
    RejectStatus(u16),
    #[error("`reject` code `{0}` is not snake_case")]
    RejectCode(String),
    #[error("header name `{0}` is not a valid lower-case header name")]
    HeaderName(String),
    #[error("header `{0}` has a value that is not valid in HTTP")]
    HeaderValue(String),
    #[error("the event type is empty or longer than {} bytes", EventType::MAX_LENGTH)]
    EventType,
}

// === impl Verdict ===

impl Verdict {
    /// Checks the answer against the limits and against what `stage` allows.
    pub fn validate(&self, stage: Stage) -> Result<(), InvalidVerdict> {
        let bytes = self.output_bytes();
        if bytes > MAX_OUTPUT_BYTES {
            return Err(InvalidVerdict::TooLarge { bytes });
        }
        match self {
            Self::Drop | Self::Pass => Ok(()),
            Self::Modify(patch) => {
                check_headers(&patch.set_headers)?;
                patch.event_type.as_deref().map_or(Ok(()), check_event_type)
            }
            Self::Replace(event) => event.validate(),
            Self::Split(_) if stage == Stage::Verify => Err(InvalidVerdict::SplitInVerify),
            Self::Split(events) if events.len() > MAX_SPLIT_EVENTS => {
                Err(InvalidVerdict::TooManyEvents { count: events.len() })
            }
            Self::Split(events) => events.iter().try_for_each(GuestEvent::validate),
            Self::Reject(_) if stage != Stage::Verify => Err(InvalidVerdict::RejectOutsideVerify),
            Self::Reject(rejection) => rejection.validate(),
        }
    }

    /// How many bytes the answer carries, the quantity [`MAX_OUTPUT_BYTES`] bounds.
    pub fn output_bytes(&self) -> usize {
        match self {
            Self::Drop | Self::Pass => 0,
            Self::Modify(patch) => {
                pairs_bytes(&patch.set_headers)
                    + patch.remove_headers.iter().map(String::len).sum::<usize>()
                    + pairs_bytes(&patch.set_metadata)
                    + patch.event_type.as_ref().map_or(0, String::len)
                    + patch.subject.as_ref().map_or(0, String::len)
                    + patch.body.as_ref().map_or(0, Bytes::len)
            }
            Self::Replace(event) => event.bytes(),
            Self::Split(events) => events.iter().map(GuestEvent::bytes).sum(),
            Self::Reject(rejection) => rejection.code.len() + rejection.message.len(),
        }
    }
}

// === impl GuestEvent ===

impl GuestEvent {
    fn bytes(&self) -> usize {
        self.event_type.len()
            + self.subject.as_ref().map_or(0, String::len)
            + pairs_bytes(&self.headers)
            + self.body.len()
            + pairs_bytes(&self.metadata)
    }

    fn validate(&self) -> Result<(), InvalidVerdict> {
        check_event_type(&self.event_type)?;
        check_headers(&self.headers)
    }

    /// The event that takes `original`'s place: the plugin's fields with the host's id,
    /// source, received-at and dedupe key.
    pub fn replacing(self, original: &Event) -> Event {
        self.into_event(original, original.id)
    }

    /// One event of a split of `parent`, under a new `id`.
    pub fn split_from(self, parent: &Event, id: EventId) -> Event {
        let mut event = self.into_event(parent, id);
        event.dedupe_key = None;
        event
    }

    fn into_event(self, original: &Event, id: EventId) -> Event {
        Event {
            id,
            source: original.source.clone(),
            event_type: self.event_type,
            subject: self.subject,
            headers: self.headers,
            body: self.body,
            received_at: original.received_at,
            dedupe_key: original.dedupe_key.clone(),
            metadata: self.metadata,
        }
    }
}

// === impl Patch ===

impl Patch {
    /// Applies the patch: removals before settings; a set header replaces every earlier value
    /// of its name, a set metadata key its earlier value.
    pub fn apply(self, event: &mut Event) {
        event.headers.retain(|(name, _)| !self.remove_headers.contains(name));
        for (name, value) in self.set_headers {
            event.headers.retain(|(existing, _)| *existing != name);
            event.headers.push((name, value));
        }
        for (key, value) in self.set_metadata {
            match event.metadata.iter_mut().find(|(existing, _)| *existing == key) {
                Some(entry) => entry.1 = value,
                None => event.metadata.push((key, value)),
            }
        }
        if let Some(event_type) = self.event_type {
            event.event_type = event_type;
        }
        if let Some(subject) = self.subject {
            event.subject = Some(subject);
        }
        if let Some(body) = self.body {
            event.body = body;
        }
    }
}

// === impl Rejection ===

impl Rejection {
    fn validate(&self) -> Result<(), InvalidVerdict> {
        if !(400..500).contains(&self.status) {
            return Err(InvalidVerdict::RejectStatus(self.status));
        }
        let snake = !self.code.is_empty()
            && self.code.len() <= 64
            && self.code.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_');
        if !snake {
            return Err(InvalidVerdict::RejectCode(self.code.clone()));
        }
        Ok(())
    }
}

fn pairs_bytes(pairs: &[(String, String)]) -> usize {
    pairs.iter().map(|(name, value)| name.len() + value.len()).sum()
}

fn check_event_type(event_type: &str) -> Result<(), InvalidVerdict> {
    EventType::new(event_type).map(drop).map_err(|_| InvalidVerdict::EventType)
}

/// Header names must be lower-case HTTP tokens and values sendable in HTTP, since headers
/// such as `content-type` reach the outbound request.
fn check_headers(headers: &[(String, String)]) -> Result<(), InvalidVerdict> {
    for (name, value) in headers {
        let token = |byte: u8| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&byte)
        };
        if name.is_empty() || !name.bytes().all(token) {
            return Err(InvalidVerdict::HeaderName(name.clone()));
        }
        if value.bytes().any(|byte| (byte < 0x20 && byte != b'\t') || byte == 0x7f) {
            return Err(InvalidVerdict::HeaderValue(name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            id: EventId::generate(),
            source: "github".into(),
            event_type: "github.push".into(),
            subject: None,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
            ],
            body: Bytes::from_static(b"{}"),
            received_at: 7,
            dedupe_key: Some("d".into()),
            metadata: vec![("k".into(), "v".into())],
        }
    }

    fn guest(body: &'static [u8]) -> GuestEvent {
        GuestEvent {
            event_type: "t".into(),
            subject: Some("s".into()),
            headers: vec![],
            body: Bytes::from_static(body),
            metadata: vec![],
        }
    }

    #[test]
    fn patches_remove_then_set() {
        let mut subject = event();
        Patch {
            set_headers: vec![("x-a".into(), "3".into()), ("x-b".into(), "4".into())],
            remove_headers: vec!["content-type".into()],
            set_metadata: vec![("k".into(), "w".into()), ("n".into(), "1".into())],
            event_type: Some("github.other".into()),
            subject: Some("a.b".into()),
            body: Some(Bytes::from_static(b"[]")),
        }
        .apply(&mut subject);
        assert_eq!(
            subject.headers,
            vec![("x-a".to_owned(), "3".to_owned()), ("x-b".to_owned(), "4".to_owned())]
        );
        assert_eq!(
            subject.metadata,
            vec![("k".to_owned(), "w".to_owned()), ("n".to_owned(), "1".to_owned())]
        );
        assert_eq!(
            (subject.event_type.as_str(), subject.subject.as_deref()),
            ("github.other", Some("a.b"))
        );
        assert_eq!(subject.body.as_ref(), b"[]");
    }

    #[test]
    fn replacement_keeps_the_host_fields_and_splits_get_new_ids() {
        let original = event();
        let replaced = guest(b"x").replacing(&original);
        assert_eq!(
            (replaced.id, replaced.received_at, replaced.dedupe_key.as_deref()),
            (original.id, 7, Some("d"))
        );
        assert_eq!((replaced.event_type.as_str(), replaced.body.as_ref()), ("t", &b"x"[..]));
        let id = EventId::generate();
        let child = guest(b"y").split_from(&original, id);
        assert_eq!((child.id, child.source.as_str(), child.dedupe_key), (id, "github", None));
    }

    #[test]
    fn limits_and_stage_rules() {
        let big = Verdict::Modify(Patch {
            body: Some(Bytes::from(vec![0; MAX_OUTPUT_BYTES + 1])),
            ..Patch::default()
        });
        let reject =
            |status, code: &str| Rejection { status, code: code.into(), message: String::new() };
        let table = [
            (Verdict::Pass, Stage::Verify, Ok(())),
            (Verdict::Drop, Stage::Endpoint, Ok(())),
            (big, Stage::Route, Err(InvalidVerdict::TooLarge { bytes: MAX_OUTPUT_BYTES + 1 })),
            (
                Verdict::Split(vec![guest(b""); 101]),
                Stage::Route,
                Err(InvalidVerdict::TooManyEvents { count: 101 }),
            ),
            (Verdict::Split(vec![guest(b""); 100]), Stage::Route, Ok(())),
            (Verdict::Split(vec![guest(b"")]), Stage::Verify, Err(InvalidVerdict::SplitInVerify)),
            (
                Verdict::Reject(reject(401, "bad_signature")),
                Stage::Route,
                Err(InvalidVerdict::RejectOutsideVerify),
            ),
            (Verdict::Reject(reject(401, "bad_signature")), Stage::Verify, Ok(())),
            (
                Verdict::Reject(reject(200, "ok")),
                Stage::Verify,
                Err(InvalidVerdict::RejectStatus(200)),
            ),
            (
                Verdict::Reject(reject(403, "Bad Code")),
                Stage::Verify,
                Err(InvalidVerdict::RejectCode("Bad Code".into())),
            ),
            (
                Verdict::Modify(Patch {
                    set_headers: vec![("Content-Type".into(), "x".into())],
                    ..Patch::default()
                }),
                Stage::Route,
                Err(InvalidVerdict::HeaderName("Content-Type".into())),
            ),
            (
                Verdict::Modify(Patch {
                    set_headers: vec![("x-a".into(), "a\r\nb".into())],
                    ..Patch::default()
                }),
                Stage::Route,
                Err(InvalidVerdict::HeaderValue("x-a".into())),
            ),
            (
                Verdict::Replace(GuestEvent { event_type: String::new(), ..guest(b"") }),
                Stage::Route,
                Err(InvalidVerdict::EventType),
            ),
        ];
        for (verdict, stage, expected) in table {
            assert_eq!(verdict.validate(stage), expected, "{stage:?}");
        }
    }
}
