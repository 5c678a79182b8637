//! Helpers on [`Event`]: header and metadata lookup, text and JSON bodies, and edits.
//!
//! Owns the reading and editing conventions every plugin shares: header names are compared
//! case-insensitively and stored lower case, lookups answer the first value, and setting a
//! header replaces all of its values in place. Must not call the host: these are plain
//! functions of the event, usable in native tests.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Event, Failure};

impl Event {
    /// A new event of `source` and `event_type` with no headers, body or metadata, received at
    /// time 0 and with an empty id: the host gives every event it keeps its own id and receipt
    /// time, so this is what a plugin that splits an event needs, and what tests start from.
    ///
    /// ```
    /// use switchyard_sdk::Event;
    ///
    /// let event = Event::new("github", "github.push")
    ///     .with_header("X-GitHub-Event", "push")
    ///     .with_body(r#"{"ref":"refs/heads/main"}"#);
    /// assert_eq!(event.header("x-github-event"), Some("push"));
    /// assert_eq!(event.body_text(), Some(r#"{"ref":"refs/heads/main"}"#));
    /// ```
    pub fn new(source: impl Into<String>, event_type: impl Into<String>) -> Event {
        Event {
            id: String::new(),
            source: source.into(),
            type_: event_type.into(),
            subject: None,
            headers: Vec::new(),
            body: Vec::new(),
            received_at: 0,
            metadata: Vec::new(),
        }
    }

    /// The first value of the header `name`, compared case-insensitively.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let event = Event::new("s", "t").with_header("x-hub-signature-256", "sha256=00");
    /// assert_eq!(event.header("X-Hub-Signature-256"), Some("sha256=00"));
    /// assert_eq!(event.header("x-missing"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of the header `name`, compared case-insensitively, in the order received.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let event = Event::new("s", "t").with_header("via", "a").with_header("Via", "b");
    /// assert_eq!(event.header_values("VIA").collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of the metadata key `key` (compared exactly).
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let event = Event::new("s", "t").with_metadata("dedupe-key", "abc");
    /// assert_eq!(event.metadata_value("dedupe-key"), Some("abc"));
    /// ```
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    /// The body as text, if it is valid UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body parsed as JSON into `T` (use [`serde_json::Value`] for any JSON).
    ///
    /// Fails with [`Failure::Fatal`] `body is not JSON: …` when the body does not parse as `T`,
    /// so `?` in a plugin hands bad input to the binding's `on_error` policy.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// use switchyard_sdk::serde_json::Value;
    ///
    /// let event = Event::new("s", "t").with_body(r#"{"ok":true}"#);
    /// let body: Value = event.body_json()?;
    /// assert_eq!(body["ok"], true);
    /// assert!(Event::new("s", "t").with_body("nope").body_json::<Value>().is_err());
    /// # Ok::<(), switchyard_sdk::Failure>(())
    /// ```
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_slice(&self.body)
            .map_err(|error| Failure::fatal(format!("body is not JSON: {error}")))
    }

    /// Sets the header `name` (stored lower case) to `value`, replacing every earlier value:
    /// the first existing entry keeps its position, the others are removed; a new header goes
    /// last.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let mut event = Event::new("s", "t").with_header("a", "1").with_header("b", "2");
    /// event.set_header("A", "3");
    /// assert_eq!(event.headers, [("a".into(), "3".into()), ("b".into(), "2".into())]);
    /// ```
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        let value = value.into();
        match self.headers.iter().position(|(header, _)| *header == name) {
            Some(first) => {
                self.headers[first].1 = value;
                let mut index = 0;
                self.headers.retain(|(header, _)| {
                    index += 1;
                    index - 1 == first || *header != name
                });
            }
            None => self.headers.push((name, value)),
        }
    }

    /// Removes every value of the header `name`, compared case-insensitively.
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(header, _)| !header.eq_ignore_ascii_case(name));
    }

    /// Sets the metadata key `key` to `value`, replacing the value of an existing key.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        match self.metadata.iter_mut().find(|(name, _)| *name == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key, value)),
        }
    }

    /// Replaces the body. Set a `content-type` header too when its format changes.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// Replaces the body with `value` serialised as compact JSON. Headers are left alone: set
    /// `content-type` too when the body was not JSON before.
    ///
    /// ```
    /// # use switchyard_sdk::Event;
    /// let mut event = Event::new("s", "t");
    /// event.set_body_json(&[1, 2, 3])?;
    /// assert_eq!(event.body, b"[1,2,3]");
    /// # Ok::<(), switchyard_sdk::Failure>(())
    /// ```
    pub fn set_body_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Failure> {
        self.body = to_json(value)?;
        Ok(())
    }

    /// This event with one more header `name: value` (name stored lower case), appended even
    /// when the name is already present.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Event {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// This event with the metadata key `key` set to `value`.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Event {
        self.set_metadata(key, value);
        self
    }

    /// This event with the subject `subject`.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Event {
        self.subject = Some(subject.into());
        self
    }

    /// This event with the body `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Event {
        self.body = body.into();
        self
    }
}

/// `value` as compact JSON bytes; a value serde cannot serialise (a map with non-string keys)
/// is a bug in the plugin, so a fatal failure.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(value)
        .map_err(|error| Failure::fatal(format!("cannot serialise JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_answers_the_first_value() {
        let event = Event::new("s", "t").with_header("Accept", "a").with_header("accept", "b");
        assert_eq!(event.header("ACCEPT"), Some("a"));
        assert_eq!(event.header_values("accept").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(event.header("accep"), None);
    }

    #[test]
    fn set_header_keeps_the_first_position_and_drops_other_values() {
        let mut event = Event::new("s", "t")
            .with_header("a", "1")
            .with_header("b", "2")
            .with_header("a", "3")
            .with_header("c", "4");
        event.set_header("A", "new");
        assert_eq!(event.headers, pairs(&[("a", "new"), ("b", "2"), ("c", "4")]));
        event.set_header("D", "5");
        assert_eq!(event.headers, pairs(&[("a", "new"), ("b", "2"), ("c", "4"), ("d", "5")]));
    }

    #[test]
    fn remove_header_removes_every_value() {
        let mut event = Event::new("s", "t").with_header("a", "1").with_header("b", "2");
        event.headers.push(("A".into(), "3".into()));
        event.remove_header("a");
        assert_eq!(event.headers, pairs(&[("b", "2")]));
    }

    #[test]
    fn set_metadata_replaces_an_existing_key() {
        let mut event = Event::new("s", "t").with_metadata("k", "1").with_metadata("j", "2");
        event.set_metadata("k", "3");
        assert_eq!(event.metadata, pairs(&[("k", "3"), ("j", "2")]));
        assert_eq!(event.metadata_value("j"), Some("2"));
        assert_eq!(event.metadata_value("K"), None);
    }

    #[test]
    fn body_json_failure_is_fatal_and_names_the_problem() {
        let event = Event::new("s", "t").with_body("{not json");
        match event.body_json::<serde_json::Value>() {
            Err(Failure::Fatal(message)) => assert!(message.starts_with("body is not JSON: ")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn body_text_refuses_invalid_utf8() {
        assert_eq!(Event::new("s", "t").with_body(vec![0xff, 0xfe]).body_text(), None);
        assert_eq!(Event::new("s", "t").with_body("hé").body_text(), Some("hé"));
    }

    #[test]
    fn set_body_json_writes_compact_json() {
        let mut event = Event::new("s", "t");
        event.set_body_json(&serde_json::json!({"a": [1, "x"]})).unwrap();
        assert_eq!(event.body, br#"{"a":[1,"x"]}"#);
    }
}
