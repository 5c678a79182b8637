//! The event as the host sends it to `handle-packed`: a `head` block, the body, and the time
//! of receipt.
//!
//! Owns the reading of the `head` block laid out in the `packed-plugin` world of
//! `sdk/wit/switchyard.wit`. The host packs an event this way because the canonical ABI would
//! otherwise cross into the sandbox once per string (about thirty times for an event with a
//! dozen headers); unpacking here costs only allocations inside the sandbox. Must not call the
//! host.

use crate::{Event, Failure};

/// The event `head`, `body` and `received_at` describe; a `head` that does not follow the
/// layout is a fatal failure (a host and SDK that disagree), never a panic.
///
/// ```
/// use switchyard_sdk::packed;
///
/// let mut head = Vec::new();
/// for text in ["evt_1", "github", "github.push"] {
///     head.extend_from_slice(&(text.len() as u32).to_le_bytes());
///     head.extend_from_slice(text.as_bytes());
/// }
/// head.extend_from_slice(&u32::MAX.to_le_bytes()); // no subject
/// head.extend_from_slice(&0u32.to_le_bytes()); // no headers
/// head.extend_from_slice(&0u32.to_le_bytes()); // no metadata
/// let event = packed::unpack(&head, b"{}".to_vec(), 7).unwrap();
/// assert_eq!((event.id.as_str(), event.type_.as_str()), ("evt_1", "github.push"));
/// assert_eq!((event.subject, event.received_at), (None, 7));
/// ```
pub fn unpack(head: &[u8], body: Vec<u8>, received_at: u64) -> Result<Event, Failure> {
    let mut reader = Reader { rest: head };
    let event = reader.event(body, received_at);
    match event {
        Some(event) if reader.rest.is_empty() => Ok(event),
        _ => Err(Failure::fatal("the host sent an event this SDK cannot read: update the SDK")),
    }
}

/// The `head` block of `event`, as the host packs it: for native tests that call the export
/// the way the host does.
///
/// ```
/// use switchyard_sdk::{Event, packed};
///
/// let event = Event::new("github", "github.push").with_header("x-github-event", "push");
/// assert_eq!(packed::unpack(&packed::pack(&event), Vec::new(), 0), Ok(event));
/// ```
pub fn pack(event: &Event) -> Vec<u8> {
    let mut head = Vec::new();
    for text in [&event.id, &event.source, &event.type_] {
        put_string(&mut head, text);
    }
    match &event.subject {
        Some(subject) => put_string(&mut head, subject),
        None => head.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
    for pairs in [&event.headers, &event.metadata] {
        put_length(&mut head, pairs.len());
        for (name, value) in pairs {
            put_string(&mut head, name);
            put_string(&mut head, value);
        }
    }
    head
}

fn put_string(head: &mut Vec<u8>, text: &str) {
    put_length(head, text.len());
    head.extend_from_slice(text.as_bytes());
}

/// Saturates: a field of 4 GiB cannot exist in a 32-bit sandbox anyway.
fn put_length(head: &mut Vec<u8>, length: usize) {
    head.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_le_bytes());
}

/// The bytes of `head` not read yet.
struct Reader<'head> {
    rest: &'head [u8],
}

impl Reader<'_> {
    fn event(&mut self, body: Vec<u8>, received_at: u64) -> Option<Event> {
        let id = self.string()?;
        let source = self.string()?;
        let type_ = self.string()?;
        let subject = match self.length()? {
            u32::MAX => None,
            length => Some(self.text(length)?),
        };
        let headers = self.pairs()?;
        let metadata = self.pairs()?;
        Some(Event { id, source, type_, subject, headers, body, received_at, metadata })
    }

    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let count = self.length()?;
        // Each pair takes at least its two lengths: a count beyond that is malformed, and
        // must not reserve memory before it is found out.
        if usize::try_from(count).ok()? > self.rest.len() / 8 {
            return None;
        }
        (0..count).map(|_| Some((self.string()?, self.string()?))).collect()
    }

    fn string(&mut self) -> Option<String> {
        let length = self.length()?;
        self.text(length)
    }

    fn text(&mut self, length: u32) -> Option<String> {
        let bytes = self.take(usize::try_from(length).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }

    fn length(&mut self) -> Option<u32> {
        let bytes = self.take(4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if count > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subject: Option<&str>) -> Event {
        Event {
            id: "evt_01".into(),
            source: "gh".into(),
            type_: "push".into(),
            subject: subject.map(Into::into),
            headers: vec![("via".into(), "a".into()), ("via".into(), "b".into())],
            body: b"{}".to_vec(),
            received_at: 42,
            metadata: vec![("tenant".into(), String::new())],
        }
    }

    fn head(subject: Option<&str>) -> Vec<u8> {
        pack(&event(subject))
    }

    #[test]
    fn every_field_is_read() {
        for subject in [Some("orders.eu"), Some(""), None] {
            let head = head(subject);
            assert_eq!(unpack(&head, b"{}".to_vec(), 42), Ok(event(subject)));
        }
    }

    #[test]
    fn the_layout_is_the_worlds() {
        let mut expected = Vec::new();
        for text in ["evt_01", "gh", "push"] {
            expected.extend_from_slice(&u32::try_from(text.len()).unwrap().to_le_bytes());
            expected.extend_from_slice(text.as_bytes());
        }
        expected.extend_from_slice(&[0xff; 4]);
        expected.extend_from_slice(b"\x02\0\0\0\x03\0\0\0via\x01\0\0\0a\x03\0\0\0via\x01\0\0\0b");
        expected.extend_from_slice(b"\x01\0\0\0\x06\0\0\0tenant\0\0\0\0");
        assert_eq!(head(None), expected);
    }

    #[test]
    fn a_head_that_does_not_follow_the_layout_is_a_fatal_failure() {
        let whole = head(None);
        let malformed = [
            whole[..whole.len() - 1].to_vec(),
            [whole.as_slice(), b"x"].concat(),
            Vec::new(),
            // A count of pairs far beyond the bytes left.
            [&whole[..whole.len() - 18], &u32::MAX.to_le_bytes()[..]].concat(),
        ];
        for head in malformed {
            assert!(matches!(unpack(&head, Vec::new(), 0), Err(Failure::Fatal(_))), "{head:?}");
        }
        let mut not_utf8 = head(None);
        not_utf8[4] = 0xff;
        assert!(unpack(&not_utf8, Vec::new(), 0).is_err());
    }
}
