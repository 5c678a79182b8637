//! Golden fixtures for plugins: event and verdict files, the binding file, and comparison.
//!
//! Owns the fixture formats of DESIGN §7.4. Pure: parsing, rendering and comparing JSON
//! values; reading files is the caller's business.
//!
//! Decisions the design leaves open:
//! - an event's `id` must be `evt_<ULID>` or absent (a fixed id is used then), since the host
//!   owns ids;
//! - expected `body` and `body_base64` compare byte for byte, `body_json` as parsed JSON;
//! - in `replace` and `split` events, `id`, `source` and `received_at` are not compared (the
//!   host overrides them); in a patch, an omitted list is empty;
//! - a `reject`'s or failure's `message`, when omitted, is not compared.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::{Event, EventId};
use crate::verdict::{GuestEvent, GuestFailure, Patch, Verdict};

/// The id of fixture events that give none.
const FIXTURE_EVENT_ID: &str = "evt_00000000000000000000000000";
/// `received_at` of fixture events that give none (2022-04-07T21:39:13Z).
const FIXTURE_RECEIVED_AT: u64 = 1_649_367_553_000;

/// Name/value pairs written either as a JSON object or as a list of pairs; order is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pairs(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(r#"an object {"name": "value"} or a list of ["name", "value"]"#)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    pairs.push(entry);
                }
                Ok(Pairs(pairs))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = seq.next_element::<(String, String)>()? {
                    pairs.push(entry);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_any(PairsVisitor)
    }
}

/// A body in one of its three spellings.
#[derive(Debug, Clone, Default, PartialEq)]
struct BodyFixture {
    pub body: Option<String>,
    pub body_base64: Option<String>,
    pub body_json: Option<Value>,
}

/// `*.event.json`, and the events inside `replace` and `split` verdicts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFixture {
    pub id: Option<String>,
    pub source: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub subject: Option<String>,
    #[serde(default)]
    pub headers: Pairs,
    pub body: Option<String>,
    pub body_base64: Option<String>,
    pub body_json: Option<Value>,
    pub received_at: Option<u64>,
    #[serde(default)]
    pub metadata: Pairs,
}

/// A patch inside a `modify` verdict.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchFixture {
    #[serde(default)]
    pub set_headers: Pairs,
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    pub set_metadata: Pairs,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub body_base64: Option<String>,
    pub body_json: Option<Value>,
}

impl PatchFixture {
    fn body(&self) -> BodyFixture {
        BodyFixture {
            body: self.body.clone(),
            body_base64: self.body_base64.clone(),
            body_json: self.body_json.clone(),
        }
    }
}

/// `*.verdict.json`: a verdict or a failure.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictFixture {
    pub verdict: Option<String>,
    pub patch: Option<PatchFixture>,
    pub event: Option<EventFixture>,
    pub events: Option<Vec<EventFixture>>,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub failure: Option<String>,
}

/// `plugin.toml` beside the fixtures: the binding the plugin runs under in tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingFixture {
    /// What `now-ms` answers; absent means the real clock.
    pub now_ms: Option<u64>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Test-only secret values, by name; the plugin may use all of them.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub timeout: Option<String>,
    pub memory: Option<String>,
}

// === impl BodyFixture ===

impl BodyFixture {
    /// The bytes; `None` when no spelling is given.
    fn bytes(&self) -> Result<Option<Bytes>, String> {
        match (&self.body, &self.body_base64, &self.body_json) {
            (None, None, None) => Ok(None),
            (Some(text), None, None) => Ok(Some(Bytes::from(text.clone()))),
            (None, Some(encoded), None) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(|bytes| Some(Bytes::from(bytes)))
                .map_err(|error| format!("`body_base64` is not base64: {error}")),
            (None, None, Some(value)) => Ok(Some(Bytes::from(value.to_string()))),
            _ => Err("give one of `body`, `body_base64` and `body_json`, not several".into()),
        }
    }

    /// Whether `actual` is the body this fixture describes (`None`: no body expected).
    fn matches(&self, actual: Option<&[u8]>) -> Result<bool, String> {
        if let Some(expected) = &self.body_json {
            let parsed = actual.and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok());
            return Ok(parsed.as_ref() == Some(expected));
        }
        Ok(self.bytes()?.as_deref() == actual)
    }
}

// === impl EventFixture ===

impl EventFixture {
    fn body(&self) -> BodyFixture {
        BodyFixture {
            body: self.body.clone(),
            body_base64: self.body_base64.clone(),
            body_json: self.body_json.clone(),
        }
    }

    /// The event a plugin receives.
    pub fn to_event(&self) -> Result<Event, String> {
        let id = self.id.as_deref().unwrap_or(FIXTURE_EVENT_ID);
        let id: EventId = id.parse().map_err(|error| format!("`id`: {error}"))?;
        let body = self.body().bytes()?.unwrap_or_default();
        Ok(Event {
            id,
            source: self.source.clone().unwrap_or_else(|| "fixture".into()),
            event_type: self.event_type.clone().ok_or("`type` is missing")?,
            subject: self.subject.clone(),
            headers: lower_case(&self.headers.0),
            body,
            received_at: self.received_at.unwrap_or(FIXTURE_RECEIVED_AT),
            dedupe_key: None,
            metadata: self.metadata.0.clone(),
        })
    }

    fn differences(&self, actual: &GuestEvent, at: &str, out: &mut Vec<String>) {
        compare(
            out,
            &format!("{at}.type"),
            &self.event_type.as_deref(),
            &Some(actual.event_type.as_str()),
        );
        compare(
            out,
            &format!("{at}.subject"),
            &self.subject.as_deref(),
            &actual.subject.as_deref(),
        );
        compare(out, &format!("{at}.headers"), &lower_case(&self.headers.0), &actual.headers);
        compare(out, &format!("{at}.metadata"), &self.metadata.0, &actual.metadata);
        body_differences(&self.body(), Some(&actual.body), &format!("{at}.body"), out);
    }
}

// === impl VerdictFixture ===

impl VerdictFixture {
    /// Every way `actual` differs from this expectation; empty when it matches.
    pub fn differences(&self, actual: &Result<Verdict, GuestFailure>) -> Vec<String> {
        let mut out = Vec::new();
        let expected_kind = match (&self.verdict, &self.failure) {
            (Some(verdict), None) => verdict.as_str(),
            (None, Some(failure)) => failure.as_str(),
            _ => return vec!["give exactly one of `verdict` and `failure`".into()],
        };
        let actual_kind = kind(actual);
        if expected_kind != actual_kind {
            out.push(format!("expected `{expected_kind}`, got `{actual_kind}`"));
            return out;
        }
        match actual {
            Ok(Verdict::Drop | Verdict::Pass) => {}
            Ok(Verdict::Modify(patch)) => {
                let expected = self.patch.clone().unwrap_or_default();
                compare(
                    &mut out,
                    "patch.set_headers",
                    &lower_case(&expected.set_headers.0),
                    &patch.set_headers,
                );
                compare(
                    &mut out,
                    "patch.remove_headers",
                    &expected.remove_headers,
                    &patch.remove_headers,
                );
                compare(
                    &mut out,
                    "patch.set_metadata",
                    &expected.set_metadata.0,
                    &patch.set_metadata,
                );
                compare(
                    &mut out,
                    "patch.type",
                    &expected.event_type.as_deref(),
                    &patch.event_type.as_deref(),
                );
                compare(
                    &mut out,
                    "patch.subject",
                    &expected.subject.as_deref(),
                    &patch.subject.as_deref(),
                );
                body_differences(&expected.body(), patch.body.as_deref(), "patch.body", &mut out);
            }
            Ok(Verdict::Replace(event)) => match &self.event {
                Some(expected) => expected.differences(event, "event", &mut out),
                None => out.push("`replace` expects an `event`".into()),
            },
            Ok(Verdict::Split(events)) => {
                let expected = self.events.clone().unwrap_or_default();
                if expected.len() != events.len() {
                    out.push(format!("expected {} events, got {}", expected.len(), events.len()));
                } else {
                    for (index, (expected, actual)) in expected.iter().zip(events).enumerate() {
                        expected.differences(actual, &format!("events[{index}]"), &mut out);
                    }
                }
            }
            Ok(Verdict::Reject(rejection)) => {
                compare(&mut out, "status", &self.status, &Some(rejection.status));
                compare(&mut out, "code", &self.code.as_deref(), &Some(rejection.code.as_str()));
                if self.message.is_some() {
                    compare(
                        &mut out,
                        "message",
                        &self.message.as_deref(),
                        &Some(rejection.message.as_str()),
                    );
                }
            }
            Err(GuestFailure::Retry(message) | GuestFailure::Fatal(message)) => {
                if self.message.is_some() {
                    compare(&mut out, "message", &self.message.as_deref(), &Some(message.as_str()));
                }
            }
        }
        out
    }
}

fn kind(answer: &Result<Verdict, GuestFailure>) -> &'static str {
    match answer {
        Ok(Verdict::Drop) => "drop",
        Ok(Verdict::Pass) => "pass",
        Ok(Verdict::Modify(_)) => "modify",
        Ok(Verdict::Replace(_)) => "replace",
        Ok(Verdict::Split(_)) => "split",
        Ok(Verdict::Reject(_)) => "reject",
        Err(GuestFailure::Retry(_)) => "retry",
        Err(GuestFailure::Fatal(_)) => "fatal",
    }
}

fn compare<T: PartialEq + fmt::Debug + ?Sized>(
    out: &mut Vec<String>,
    at: &str,
    expected: &T,
    actual: &T,
) {
    if expected != actual {
        out.push(format!("{at}: expected {expected:?}, got {actual:?}"));
    }
}

fn body_differences(
    expected: &BodyFixture,
    actual: Option<&[u8]>,
    at: &str,
    out: &mut Vec<String>,
) {
    match expected.matches(actual) {
        Ok(true) => {}
        Ok(false) => out.push(format!(
            "{at}: expected {}, got {}",
            describe_expected(expected),
            actual.map_or_else(|| "none".to_owned(), describe_bytes)
        )),
        Err(problem) => out.push(format!("{at}: {problem}")),
    }
}

fn describe_expected(expected: &BodyFixture) -> String {
    if let Some(value) = &expected.body_json {
        return format!("JSON {value}");
    }
    match expected.bytes() {
        Ok(Some(bytes)) => describe_bytes(&bytes),
        Ok(None) => "none".into(),
        Err(problem) => problem,
    }
}

fn describe_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.len() <= 200 => format!("{text:?}"),
        Ok(text) => {
            format!("{:?}… ({} bytes)", &text[..text.floor_char_boundary(200)], bytes.len())
        }
        Err(_) => format!("{} bytes of binary", bytes.len()),
    }
}

fn lower_case(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect()
}

/// A verdict or failure as JSON, in the fixture format (what `plugin run` prints).
pub fn answer_json(answer: &Result<Verdict, GuestFailure>) -> Value {
    match answer {
        Ok(Verdict::Drop) => json!({"verdict": "drop"}),
        Ok(Verdict::Pass) => json!({"verdict": "pass"}),
        Ok(Verdict::Modify(patch)) => json!({"verdict": "modify", "patch": patch_json(patch)}),
        Ok(Verdict::Replace(event)) => json!({"verdict": "replace", "event": event_json(event)}),
        Ok(Verdict::Split(events)) => {
            json!({"verdict": "split", "events": events.iter().map(event_json).collect::<Vec<_>>()})
        }
        Ok(Verdict::Reject(rejection)) => json!({
            "verdict": "reject",
            "status": rejection.status,
            "code": rejection.code,
            "message": rejection.message,
        }),
        Err(GuestFailure::Retry(message)) => json!({"failure": "retry", "message": message}),
        Err(GuestFailure::Fatal(message)) => json!({"failure": "fatal", "message": message}),
    }
}

fn patch_json(patch: &Patch) -> Value {
    let mut value = json!({
        "set_headers": patch.set_headers,
        "remove_headers": patch.remove_headers,
        "set_metadata": patch.set_metadata,
    });
    let object = value.as_object_mut().expect("a JSON object literal");
    if let Some(event_type) = &patch.event_type {
        object.insert("type".into(), json!(event_type));
    }
    if let Some(subject) = &patch.subject {
        object.insert("subject".into(), json!(subject));
    }
    if let Some(body) = &patch.body {
        let (key, body) = body_json(body);
        object.insert(key.into(), body);
    }
    value
}

fn event_json(event: &GuestEvent) -> Value {
    let (key, body) = body_json(&event.body);
    let mut value = json!({
        "type": event.event_type,
        "headers": event.headers,
        "metadata": event.metadata,
    });
    let object = value.as_object_mut().expect("a JSON object literal");
    if let Some(subject) = &event.subject {
        object.insert("subject".into(), json!(subject));
    }
    object.insert(key.into(), body);
    value
}

/// `body` for UTF-8, `body_base64` for anything else.
fn body_json(body: &[u8]) -> (&'static str, Value) {
    match std::str::from_utf8(body) {
        Ok(text) => ("body", json!(text)),
        Err(_) => ("body_base64", json!(base64::engine::general_purpose::STANDARD.encode(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Rejection;

    fn verdict(text: &str) -> VerdictFixture {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn events_parse_in_every_spelling() {
        let map: EventFixture = serde_json::from_str(
            r#"{"type":"t","headers":{"X-A":"1","b":"2"},"body_json":{"a":1}}"#,
        )
        .unwrap();
        let event = map.to_event().unwrap();
        assert_eq!(event.headers, vec![("x-a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(event.body.as_ref(), br#"{"a":1}"#);
        assert_eq!(event.id.to_string(), FIXTURE_EVENT_ID);
        let pairs: EventFixture = serde_json::from_str(
            r#"{"type":"t","headers":[["a","1"],["a","2"]],"body_base64":"AP8="}"#,
        )
        .unwrap();
        let event = pairs.to_event().unwrap();
        assert_eq!(event.headers.len(), 2);
        assert_eq!(event.body.as_ref(), &[0, 255]);
        let both: EventFixture =
            serde_json::from_str(r#"{"type":"t","body":"x","body_base64":"eA=="}"#).unwrap();
        assert!(both.to_event().is_err());
        let bad_id: EventFixture = serde_json::from_str(r#"{"id":"evt_1","type":"t"}"#).unwrap();
        assert!(bad_id.to_event().unwrap_err().contains("`id`"));
    }

    #[test]
    fn comparison_follows_the_rules() {
        let patch = Patch {
            set_metadata: vec![("dedupe-key".into(), "d1".into())],
            body: Some(Bytes::from_static(br#"{"a": 1}"#)),
            ..Patch::default()
        };
        let modify = Ok(Verdict::Modify(patch));
        assert!(
            verdict(r#"{"verdict":"modify","patch":{"set_metadata":[["dedupe-key","d1"]],"body_json":{"a":1}}}"#)
                .differences(&modify)
                .is_empty()
        );
        assert_eq!(
            verdict(r#"{"verdict":"modify","patch":{"body":"{\"a\":1}"}}"#)
                .differences(&modify)
                .len(),
            2,
            "bytes compare exactly and metadata must match"
        );
        let reject = Ok(Verdict::Reject(Rejection {
            status: 401,
            code: "bad_signature".into(),
            message: "no".into(),
        }));
        assert!(
            verdict(r#"{"verdict":"reject","status":401,"code":"bad_signature"}"#)
                .differences(&reject)
                .is_empty()
        );
        assert_eq!(
            verdict(r#"{"verdict":"reject","status":401,"code":"bad_signature","message":"yes"}"#)
                .differences(&reject)
                .len(),
            1
        );
        assert_eq!(
            verdict(r#"{"verdict":"pass"}"#).differences(&reject),
            vec!["expected `pass`, got `reject`".to_owned()]
        );
        let fatal = Err(GuestFailure::Fatal("boom".into()));
        assert!(verdict(r#"{"failure":"fatal"}"#).differences(&fatal).is_empty());
        assert!(!verdict(r#"{"failure":"retry"}"#).differences(&fatal).is_empty());
    }

    #[test]
    fn answers_render_in_the_fixture_format() {
        let split = Ok(Verdict::Split(vec![GuestEvent {
            event_type: "t".into(),
            subject: None,
            headers: vec![],
            body: Bytes::from_static(&[0xff]),
            metadata: vec![],
        }]));
        let rendered = answer_json(&split);
        assert_eq!(rendered["events"][0]["body_base64"], "/w==");
        let parsed: VerdictFixture = serde_json::from_value(rendered).unwrap();
        assert!(parsed.differences(&split).is_empty());
    }
}
