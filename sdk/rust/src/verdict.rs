//! Building answers: [`Patch`], [`Rejection`], [`Failure`], [`Verification`] and [`Verdict`].
//!
//! Owns the constructors plugins answer with, the three rejection codes every verifier shares,
//! and the translation of a changed event into the smallest verdict that describes the change
//! ([`Verdict::from_change`]). Must not call the host.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bindings::switchyard::plugin::crypto::CryptoError;
use crate::event::to_json;
use crate::{DEDUPE_KEY, Event, Failure, Patch, Rejection, Verdict};

// === impl Patch ===

impl Patch {
    /// An empty patch: it changes nothing.
    pub fn new() -> Patch {
        Patch::default()
    }

    /// This patch also setting the header `name` (stored lower case) to `value`; the host
    /// replaces every earlier value of that name.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Patch {
        self.set_headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// This patch also removing every value of the header `name` (before any header is set).
    pub fn without_header(mut self, name: &str) -> Patch {
        self.remove_headers.push(name.to_ascii_lowercase());
        self
    }

    /// This patch also setting the metadata key `key` to `value`.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Patch {
        self.set_metadata.push((key.into(), value.into()));
        self
    }

    /// This patch also giving the event the dedupe key `key` (the metadata key [`DEDUPE_KEY`]);
    /// it only has an effect in the verify stage.
    ///
    /// ```
    /// use switchyard_sdk::Patch;
    ///
    /// let patch = Patch::new().with_dedupe_key("72d3162e");
    /// assert_eq!(patch.set_metadata, [("dedupe-key".to_string(), "72d3162e".to_string())]);
    /// ```
    pub fn with_dedupe_key(self, key: impl Into<String>) -> Patch {
        self.with_metadata(DEDUPE_KEY, key)
    }

    /// This patch also setting the event type.
    pub fn with_type(mut self, event_type: impl Into<String>) -> Patch {
        self.type_ = Some(event_type.into());
        self
    }

    /// This patch also setting the subject.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Patch {
        self.subject = Some(subject.into());
        self
    }

    /// This patch also replacing the body. Set a `content-type` header when its format changes.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Patch {
        self.body = Some(body.into());
        self
    }

    /// This patch also replacing the body with `value` serialised as compact JSON.
    ///
    /// ```
    /// use switchyard_sdk::Patch;
    /// use switchyard_sdk::serde_json::json;
    ///
    /// let patch = Patch::new().with_body_json(&json!({"part": 1}))?;
    /// assert_eq!(patch.body.as_deref(), Some(&br#"{"part":1}"#[..]));
    /// # Ok::<(), switchyard_sdk::Failure>(())
    /// ```
    pub fn with_body_json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Patch, Failure> {
        self.body = Some(to_json(value)?);
        Ok(self)
    }

    /// Whether this patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Patch::default()
    }

    /// `pass` when this patch changes nothing, otherwise `modify` with it.
    ///
    /// ```
    /// use switchyard_sdk::{Patch, Verdict};
    ///
    /// assert_eq!(Patch::new().into_verdict(), Verdict::Pass);
    /// assert!(matches!(Patch::new().with_type("x").into_verdict(), Verdict::Modify(_)));
    /// ```
    pub fn into_verdict(self) -> Verdict {
        if self.is_empty() { Verdict::Pass } else { Verdict::Modify(self) }
    }
}

// === impl Rejection ===

impl Rejection {
    /// The status every signature rejection uses: 401 Unauthorized.
    pub const UNAUTHORIZED: u16 = 401;

    /// A rejection with any status from 400 to 499 (the host refuses others as an invalid
    /// verdict), a snake_case `code` and a sentence for the sender. Never put secrets or
    /// expected signatures in the message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Rejection {
        Rejection { status, code: code.into(), message: message.into() }
    }

    /// 401 `missing_signature`: the request lacks the signature headers, or they do not parse.
    ///
    /// ```
    /// use switchyard_sdk::Rejection;
    ///
    /// let rejection = Rejection::missing_signature("missing `x-hub-signature-256` header");
    /// assert_eq!((rejection.status, rejection.code.as_str()), (401, "missing_signature"));
    /// ```
    pub fn missing_signature(message: impl Into<String>) -> Rejection {
        Rejection::new(Rejection::UNAUTHORIZED, "missing_signature", message)
    }

    /// 401 `bad_signature`: no signature matches the body.
    pub fn bad_signature(message: impl Into<String>) -> Rejection {
        Rejection::new(Rejection::UNAUTHORIZED, "bad_signature", message)
    }

    /// 401 `stale_timestamp`: the signed timestamp is further from now than the tolerance, in
    /// the past or in the future.
    pub fn stale_timestamp(message: impl Into<String>) -> Rejection {
        Rejection::new(Rejection::UNAUTHORIZED, "stale_timestamp", message)
    }
}

// === impl Failure ===

impl Failure {
    /// A transient failure: the sender is asked to retry and nothing is stored.
    pub fn retry(message: impl Into<String>) -> Failure {
        Failure::Retry(message.into())
    }

    /// A bug or input the plugin cannot handle: the binding's `on_error` policy applies.
    pub fn fatal(message: impl Into<String>) -> Failure {
        Failure::Fatal(message.into())
    }

    /// The message, whichever kind of failure this is.
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(message) | Failure::Fatal(message) => message,
        }
    }
}

/// A crypto call that could not be made is a configuration problem (an unknown or unlisted
/// secret, a key that does not decode), so a fatal failure.
impl From<CryptoError> for Failure {
    fn from(error: CryptoError) -> Failure {
        Failure::Fatal(crate::crypto::describe(&error))
    }
}

// === impl Verification ===

/// What a verify plugin decided about an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The event is authentic; with a dedupe key, the host deduplicates on it.
    Accept {
        /// The provider's delivery id, or anything that names one delivery.
        dedupe_key: Option<String>,
    },
    /// The event is refused: the sender gets this status and code, and nothing is stored.
    Reject(Rejection),
}

impl Verification {
    /// The event is authentic; no dedupe key.
    pub fn accept() -> Verification {
        Verification::Accept { dedupe_key: None }
    }

    /// The event is authentic, and `key` names this delivery for deduplication.
    pub fn accept_with_dedupe_key(key: impl Into<String>) -> Verification {
        Verification::Accept { dedupe_key: Some(key.into()) }
    }

    /// The verdict the host sees: `pass`; `modify` setting [`DEDUPE_KEY`]; or `reject`.
    ///
    /// ```
    /// use switchyard_sdk::{Patch, Rejection, Verdict, Verification};
    ///
    /// assert_eq!(Verification::accept().into_verdict(), Verdict::Pass);
    /// assert_eq!(
    ///     Verification::accept_with_dedupe_key("d-1").into_verdict(),
    ///     Verdict::Modify(Patch::new().with_dedupe_key("d-1")),
    /// );
    /// let rejection = Rejection::bad_signature("no signature matches");
    /// let rejected = Verification::from(rejection.clone()).into_verdict();
    /// assert_eq!(rejected, Verdict::Reject(rejection));
    /// ```
    pub fn into_verdict(self) -> Verdict {
        match self {
            Verification::Accept { dedupe_key: None } => Verdict::Pass,
            Verification::Accept { dedupe_key: Some(key) } => {
                Verdict::Modify(Patch::new().with_dedupe_key(key))
            }
            Verification::Reject(rejection) => Verdict::Reject(rejection),
        }
    }
}

impl From<Rejection> for Verification {
    fn from(rejection: Rejection) -> Verification {
        Verification::Reject(rejection)
    }
}

// === impl Verdict ===

impl From<Rejection> for Verdict {
    fn from(rejection: Rejection) -> Verdict {
        Verdict::Reject(rejection)
    }
}

impl Verdict {
    /// The smallest verdict that turns `before` into `after`; what [`transform`](crate::transform)
    /// plugins answer.
    ///
    /// - nothing changed → `pass`;
    /// - the changes fit a [`Patch`] → `modify`, carrying only what changed (a body is sent
    ///   back only when it changed);
    /// - otherwise → `replace` with `after`. A patch cannot remove a metadata key, clear the
    ///   subject, or give a header several values, so those changes need a `replace`.
    ///
    /// The id, source and receipt time belong to the host and are not compared. Header names
    /// are compared case-insensitively; a change in header order alone is not a change (a
    /// patch cannot express it, and HTTP gives order meaning only between values of one name,
    /// which is kept).
    ///
    /// ```
    /// use switchyard_sdk::{Event, Patch, Verdict};
    ///
    /// let before = Event::new("s", "t").with_header("a", "1").with_body("{}");
    /// let mut after = before.clone();
    /// after.set_header("b", "2");
    /// let expected = Verdict::Modify(Patch::new().with_header("b", "2"));
    /// assert_eq!(Verdict::from_change(&before, after), expected);
    /// assert_eq!(Verdict::from_change(&before, before.clone()), Verdict::Pass);
    /// ```
    pub fn from_change(before: &Event, after: Event) -> Verdict {
        match patch_between(before, &after) {
            Some(patch) => patch.into_verdict(),
            None => Verdict::Replace(after),
        }
    }
}

/// The patch that turns `before` into `after`, or `None` when no patch can.
fn patch_between(before: &Event, after: &Event) -> Option<Patch> {
    let mut patch = Patch::new();

    if before.headers != after.headers {
        let old = group_headers(&before.headers);
        let new = group_headers(&after.headers);
        for (name, _) in &old {
            if !new.iter().any(|(other, _)| other == name) {
                patch.remove_headers.push(name.clone());
            }
        }
        for (name, values) in &new {
            let unchanged = old.iter().any(|(other, old)| other == name && old == values);
            match values.as_slice() {
                _ if unchanged => {}
                [value] => patch.set_headers.push((name.clone(), value.to_string())),
                _ => return None,
            }
        }
    }

    if before.metadata != after.metadata {
        let old: BTreeMap<&str, &str> =
            before.metadata.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
        let mut new = BTreeMap::new();
        for (key, value) in &after.metadata {
            if new.insert(key.as_str(), value.as_str()).is_some() {
                return None; // a key given twice: only a replace says which value was meant
            }
        }
        if old.keys().any(|key| !new.contains_key(key)) {
            return None;
        }
        for (key, value) in &after.metadata {
            if old.get(key.as_str()) != Some(&value.as_str()) {
                patch.set_metadata.push((key.clone(), value.clone()));
            }
        }
    }

    if before.type_ != after.type_ {
        patch.type_ = Some(after.type_.clone());
    }
    if before.subject != after.subject {
        patch.subject = Some(after.subject.clone()?);
    }
    if before.body != after.body {
        patch.body = Some(after.body.clone());
    }
    Some(patch)
}

/// Header values grouped by lower-cased name, names in order of first appearance.
fn group_headers(headers: &[(String, String)]) -> Vec<(String, Vec<&str>)> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match groups.iter_mut().find(|(group, _)| *group == name) {
            Some((_, values)) => values.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Event {
        Event::new("github", "github.push")
            .with_header("content-type", "application/json")
            .with_header("x-a", "1")
            .with_metadata("k", "v")
            .with_body(r#"{"a":1}"#)
    }

    #[test]
    fn an_unchanged_event_passes() {
        assert_eq!(Verdict::from_change(&base(), base()), Verdict::Pass);
    }

    #[test]
    fn host_owned_fields_are_not_compared() {
        let mut after = base();
        after.id = "evt_other".into();
        after.source = "other".into();
        after.received_at = 42;
        assert_eq!(Verdict::from_change(&base(), after), Verdict::Pass);
    }

    #[test]
    fn a_reordering_of_headers_alone_passes() {
        let mut after = base();
        after.headers.reverse();
        assert_eq!(Verdict::from_change(&base(), after), Verdict::Pass);
    }

    #[test]
    fn header_changes_become_sets_and_removals() {
        let mut after = base();
        after.remove_header("x-a");
        after.set_header("content-type", "text/plain");
        after.set_header("x-b", "2");
        let expected = Patch::new()
            .without_header("x-a")
            .with_header("content-type", "text/plain")
            .with_header("x-b", "2");
        assert_eq!(Verdict::from_change(&base(), after), Verdict::Modify(expected));
    }

    #[test]
    fn a_multi_valued_header_change_needs_a_replace() {
        let after = base().with_header("x-a", "2");
        assert_eq!(Verdict::from_change(&base(), after.clone()), Verdict::Replace(after));
    }

    #[test]
    fn an_untouched_multi_valued_header_does_not_force_a_replace() {
        let before = base().with_header("x-a", "2");
        let mut after = before.clone();
        after.set_header("x-b", "3");
        assert_eq!(
            Verdict::from_change(&before, after),
            Verdict::Modify(Patch::new().with_header("x-b", "3"))
        );
    }

    #[test]
    fn metadata_changes_become_sets() {
        let mut after = base();
        after.set_metadata("k", "w");
        after.set_metadata("new", "x");
        let expected = Patch::new().with_metadata("k", "w").with_metadata("new", "x");
        assert_eq!(Verdict::from_change(&base(), after), Verdict::Modify(expected));
    }

    #[test]
    fn a_removed_metadata_key_needs_a_replace() {
        let mut after = base();
        after.metadata.clear();
        assert_eq!(Verdict::from_change(&base(), after.clone()), Verdict::Replace(after));
    }

    #[test]
    fn a_duplicated_metadata_key_needs_a_replace() {
        let mut after = base();
        after.metadata.push(("k".into(), "again".into()));
        assert_eq!(Verdict::from_change(&base(), after.clone()), Verdict::Replace(after));
    }

    #[test]
    fn type_subject_and_body_changes_are_patched() {
        let mut after = base().with_subject("orders.1").with_body("{}");
        after.type_ = "github.other".into();
        let expected =
            Patch::new().with_type("github.other").with_subject("orders.1").with_body("{}");
        assert_eq!(Verdict::from_change(&base(), after), Verdict::Modify(expected));
    }

    #[test]
    fn clearing_the_subject_needs_a_replace() {
        let before = base().with_subject("orders.1");
        let mut after = before.clone();
        after.subject = None;
        assert_eq!(Verdict::from_change(&before, after.clone()), Verdict::Replace(after));
    }

    #[test]
    fn rejection_constructors_use_401_and_the_shared_codes() {
        for (rejection, code) in [
            (Rejection::missing_signature("m"), "missing_signature"),
            (Rejection::bad_signature("m"), "bad_signature"),
            (Rejection::stale_timestamp("m"), "stale_timestamp"),
        ] {
            assert_eq!(rejection, Rejection::new(401, code, "m"));
        }
    }

    #[test]
    fn failure_constructors_and_message() {
        assert_eq!(Failure::retry("later"), Failure::Retry("later".into()));
        assert_eq!(Failure::fatal("boom").message(), "boom");
    }

    #[test]
    fn crypto_errors_are_fatal() {
        let failure = Failure::from(CryptoError::UnknownSecret("github".into()));
        assert!(matches!(failure, Failure::Fatal(message) if message.contains("github")));
    }

    #[test]
    fn patch_emptiness() {
        assert!(Patch::new().is_empty());
        assert!(!Patch::new().without_header("a").is_empty());
    }
}
