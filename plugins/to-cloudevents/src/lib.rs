//! `to-cloudevents`: wraps an event as a structured-mode CloudEvent (CloudEvents 1.0, JSON
//! event format), for receivers that expect `application/cloudevents+json`.
//!
//! The new body is one JSON object with, in this order:
//!
//! | attribute | value |
//! |---|---|
//! | `specversion` | `"1.0"` |
//! | `id` | the event id (`evt_…`), stable across retries and fan-out |
//! | `source` | the config value `source`, else `/sources/<source id>` |
//! | `type` | the event type, e.g. `github.push` |
//! | `subject` | the event's subject, when it has one |
//! | `time` | when the host received the event, RFC 3339 in UTC with milliseconds |
//! | `datacontenttype` | the `content-type` header, else `application/json` for a JSON body |
//! | `data` / `data_base64` | the body (see below); neither for an empty body |
//!
//! The body becomes `data` as JSON when the content type is JSON (`application/json`,
//! `…+json`, or no content type) and the body parses; as a string when it is `text/*` and
//! UTF-8; otherwise `data_base64`. A body that claims JSON but does not parse is carried as
//! `data_base64` with `datacontenttype` kept as received, so no byte is lost. JSON numbers keep
//! their exact text. The verdict is a `modify` setting that body and the `content-type`
//! header `application/cloudevents+json`; nothing else changes.

use switchyard_sdk::serde_json::{self, Map, Value};
use switchyard_sdk::{Event, Failure, host};

const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

#[switchyard_sdk::transform]
fn to_cloudevents(mut event: Event) -> Result<Event, Failure> {
    let source = host::config("source").unwrap_or_else(|| format!("/sources/{}", event.source));
    let envelope = envelope(&event, &source);
    event.set_body_json(&envelope)?;
    event.set_header("content-type", CLOUDEVENTS_JSON);
    Ok(event)
}

/// The CloudEvent for `event`, with `source` as its source attribute.
fn envelope(event: &Event, source: &str) -> Value {
    let mut object = Map::new();
    object.insert("specversion".into(), "1.0".into());
    object.insert("id".into(), event.id.clone().into());
    object.insert("source".into(), source.into());
    object.insert("type".into(), event.type_.clone().into());
    if let Some(subject) = &event.subject {
        object.insert("subject".into(), subject.clone().into());
    }
    object.insert("time".into(), rfc3339(event.received_at).into());
    let content_type = event.header("content-type").map(str::to_owned);
    if !event.body.is_empty() {
        let (data_content_type, key, data) = data(content_type.as_deref(), &event.body);
        object.insert("datacontenttype".into(), data_content_type.into());
        object.insert(key.into(), data);
    } else if let Some(content_type) = content_type {
        object.insert("datacontenttype".into(), content_type.into());
    }
    Value::Object(object)
}

/// `(datacontenttype, "data" | "data_base64", value)` for a non-empty body.
fn data(content_type: Option<&str>, body: &[u8]) -> (String, &'static str, Value) {
    let media_type = content_type
        .map(|value| value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let claims_json = media_type
        .as_deref()
        .is_none_or(|media| media == "application/json" || media.ends_with("+json"));
    if claims_json && let Ok(value) = serde_json::from_slice::<Value>(body) {
        let declared = content_type.unwrap_or("application/json").to_owned();
        return (declared, "data", value);
    }
    let declared = content_type.unwrap_or("application/octet-stream").to_owned();
    if media_type.as_deref().is_some_and(|media| media.starts_with("text/"))
        && let Ok(text) = std::str::from_utf8(body)
    {
        return (declared, "data", text.into());
    }
    (declared, "data_base64", encode_base64(body).into())
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        unix_ms % 1000
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01. Counts in 400-year eras (146,097 days
/// each) of years starting on 1 March, so the leap day falls at the end of a year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |group, (index, byte)| group | u32::from(*byte) << (16 - 8 * index));
        for index in 0..4 {
            if index <= chunk.len() {
                text.push(char::from(ALPHABET[(group >> (18 - 6 * index) & 63) as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_649_367_553_000), "2022-04-07T21:39:13.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn encodes_base64_with_padding() {
        for (bytes, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"\xff\xfe\xfd\xfc", "//79/A=="),
        ] {
            assert_eq!(encode_base64(bytes), text);
        }
    }

    #[test]
    fn chooses_data_by_content_type() {
        let (kind, key, value) = data(Some("application/json; charset=utf-8"), br#"{"a":1.50}"#);
        assert_eq!((kind.as_str(), key), ("application/json; charset=utf-8", "data"));
        assert_eq!(value.to_string(), r#"{"a":1.50}"#);
        assert_eq!(data(None, b"[1]").0, "application/json");
        assert_eq!(data(Some("text/plain"), b"hi"), ("text/plain".into(), "data", "hi".into()));
        assert_eq!(data(Some("application/json"), b"{oops").1, "data_base64");
        assert_eq!(data(None, b"\x00\x01").0, "application/octet-stream");
        assert_eq!(data(Some("application/x-www-form-urlencoded"), b"a=1").1, "data_base64");
    }
}
