//! What pages show, read from the admin API's JSON answers: rows of the lists, and how
//! times, sizes and bodies are written out. Pure.

use std::borrow::Borrow;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// An event as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct EventRow {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub subject: Option<String>,
    pub received_at: u64,
    pub dedupe_key: Option<String>,
    pub parent: Option<String>,
    pub body_size: u64,
}

/// A delivery as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event: String,
    pub endpoint: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttemptRow {
    pub attempted_at: u64,
    pub duration_ms: f64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub response: String,
    pub response_encoding: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EndpointRow {
    pub id: String,
    pub origin: String,
    pub target: String,
    pub url: Option<String>,
    pub subject: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    pub timeout: String,
    pub max_in_flight: u32,
    #[serde(default)]
    pub retry_schedule: Vec<String>,
    #[serde(default)]
    pub signing_keys: Vec<KeyRow>,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub expires_at: Option<u64>,
}

impl EndpointRow {
    /// Where it delivers: the URL or the subject.
    pub fn target_text(&self) -> &str {
        self.url.as_deref().or(self.subject.as_deref()).unwrap_or("")
    }
}

/// A list of rows from a page answer's `data`, skipping rows that do not fit.
pub fn rows<T: for<'de> Deserialize<'de>>(value: &Value) -> Vec<T> {
    value
        .get("data")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|item| T::deserialize(item).ok()).collect())
        .unwrap_or_default()
}

/// `value[key]` as text, if it is a string.
pub fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Whether `text` looks like an endpoint id (`[A-Za-z0-9_-]`, 1 to 128): only such text is
/// echoed from a query string into a notice.
pub fn is_plain_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Unix ms as an HTTP date in UTC: `Sun, 06 Dec 2026 12:00:00 GMT`.
pub fn time(unix_ms: impl Borrow<u64>) -> String {
    let unix_ms = *unix_ms.borrow();
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(unix_ms))
}

/// Bytes as `512 B`, `1.5 KiB`, `2.0 MiB`.
pub fn size(bytes: impl Borrow<u64>) -> String {
    let bytes = *bytes.borrow();
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// How a body is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyView {
    /// Indented JSON when it is JSON, else as received.
    Pretty,
    Raw,
    Base64,
}

impl BodyView {
    pub fn parse(text: Option<&str>) -> Self {
        match text {
            Some("raw") => Self::Raw,
            Some("base64") => Self::Base64,
            _ => Self::Pretty,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Pretty => "pretty",
            Self::Raw => "raw",
            Self::Base64 => "base64",
        }
    }
}

/// A body as the admin API gave it (`text` in `encoding`, `utf8` or `base64`), shown as asked.
/// The result is plain text; the template escapes it.
pub fn show_body(text: &str, encoding: &str, view: BodyView) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = if encoding == "base64" {
        engine.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    match view {
        BodyView::Base64 => engine.encode(&bytes),
        BodyView::Raw => String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned()),
        BodyView::Pretty => match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
            Err(_) => String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_three_ways() {
        let json = r#"{"a":[1,2]}"#;
        assert_eq!(
            show_body(json, "utf8", BodyView::Pretty),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(show_body(json, "utf8", BodyView::Raw), json);
        assert_eq!(show_body("hi", "utf8", BodyView::Base64), "aGk=");
        assert_eq!(show_body("not json <b>", "utf8", BodyView::Pretty), "not json <b>");
        assert_eq!(show_body("/w==", "base64", BodyView::Base64), "/w==");
        assert_eq!(BodyView::parse(Some("raw")), BodyView::Raw);
        assert_eq!(BodyView::parse(Some("junk")).name(), "pretty");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(size(10_u64), "10 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1_048_576), "3.0 MiB");
        assert_eq!(time(0_u64), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
