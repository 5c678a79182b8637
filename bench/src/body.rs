//! Request bodies and headers the load generator sends, and what the sink reads back.
//!
//! Owns the template language (`{{seq}}`, `{{seq%N}}` (the sequence number modulo `N`, for keys
//! that cycle) and `{{sent_us}}` placeholders, nothing else) and the
//! one rule the sink relies on: a delivered body carries `"seq": N` and `"sent_us": N`
//! somewhere, possibly inside another gateway's envelope or as escaped JSON text. It does not
//! parse JSON: finding two numbers must stay cheap enough that the sink is never the
//! bottleneck.

use std::fmt::Write as _;

/// The placeholder replaced by the request's sequence number.
pub const SEQ_PLACEHOLDER: &str = "{{seq}}";
/// The start of `{{seq%N}}`: the sequence number modulo `N`.
pub const SEQ_MODULO_PREFIX: &str = "{{seq%";
/// The placeholder replaced by the send time, in microseconds since the Unix epoch.
pub const SENT_PLACEHOLDER: &str = "{{sent_us}}";
/// The size the default body is padded to, with a six-digit sequence number.
pub const DEFAULT_BODY_BYTES: usize = 1024;

/// A body or header value with placeholders, split once so rendering is a few copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Seq,
    SeqModulo(u64),
    SentMicros,
}

impl Template {
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let next = [(SEQ_PLACEHOLDER, Part::Seq), (SENT_PLACEHOLDER, Part::SentMicros)]
                .into_iter()
                .filter_map(|(placeholder, part)| {
                    Some((rest.find(placeholder)?, placeholder.len(), part))
                })
                .chain(seq_modulo(rest))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, length, part)) => {
                    if at > 0 {
                        parts.push(Part::Text(rest[..at].to_owned()));
                    }
                    parts.push(part);
                    rest = &rest[at + length..];
                }
                None => {
                    parts.push(Part::Text(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Self { parts }
    }

    /// Whether rendering depends on the send time (the body then has to be rendered at the
    /// last moment).
    pub fn uses_send_time(&self) -> bool {
        self.parts.contains(&Part::SentMicros)
    }

    pub fn render(&self, seq: u64, sent_micros: u64) -> String {
        let mut text = String::with_capacity(self.capacity_hint());
        for part in &self.parts {
            match part {
                Part::Text(literal) => text.push_str(literal),
                Part::Seq => {
                    let _ = write!(text, "{seq}");
                }
                Part::SeqModulo(modulus) => {
                    let _ = write!(text, "{}", seq % modulus);
                }
                Part::SentMicros => {
                    let _ = write!(text, "{sent_micros}");
                }
            }
        }
        text
    }

    fn capacity_hint(&self) -> usize {
        self.parts
            .iter()
            .map(|part| if let Part::Text(text) = part { text.len() } else { 20 })
            .sum()
    }
}

/// The first well-formed `{{seq%N}}` (N ≥ 1) in `text`: where, how long, and its part.
fn seq_modulo(text: &str) -> Option<(usize, usize, Part)> {
    let mut from = 0;
    while let Some(found) = text[from..].find(SEQ_MODULO_PREFIX) {
        let at = from + found;
        let digits_start = at + SEQ_MODULO_PREFIX.len();
        if let Some(end) = text[digits_start..].find("}}")
            && let Ok(modulus) = text[digits_start..digits_start + end].parse::<u64>()
            && modulus > 0
        {
            return Some((at, digits_start + end + 2 - at, Part::SeqModulo(modulus)));
        }
        from = digits_start;
    }
    None
}

/// The default body with its `customer` cycling over `keys` values (`cus_0` …): a key to
/// order or partition by, at the default body's size.
pub fn keyed_body_template(keys: u64) -> String {
    default_body_template().replacen(
        "\"customer\":\"cus_0123456789\"",
        &format!("\"customer\":\"cus_{{{{seq%{keys}}}}}\""),
        1,
    )
}

/// The default body: a JSON object of about [`DEFAULT_BODY_BYTES`] with a top-level `type`,
/// the two numbers the sink reads, a card number for redaction scenarios, and padding.
pub fn default_body_template() -> String {
    let head = format!(
        r#"{{"type":"bench.event","seq":{SEQ_PLACEHOLDER},"sent_us":{SENT_PLACEHOLDER},"data":{{"card":{{"number":"4242424242424242","expiry":"12/34"}},"customer":"cus_0123456789","note":""#
    );
    let tail = r#""}}"#;
    // Rendered sizes: a six-digit sequence number and a sixteen-digit timestamp.
    let rendered = head.len() - SEQ_PLACEHOLDER.len() - SENT_PLACEHOLDER.len() + 6 + 16;
    let padding = DEFAULT_BODY_BYTES.saturating_sub(rendered + tail.len());
    let filler: String = "lorem ipsum dolor sit amet ".chars().cycle().take(padding).collect();
    format!("{head}{filler}{tail}")
}

/// The unsigned integer after the JSON key `name` in `body`: `"name": 12` as well as the
/// escaped form `\"name\":12` of a body carried as a JSON string.
pub fn find_number(body: &[u8], name: &str) -> Option<u64> {
    let name = name.as_bytes();
    let mut from = 0;
    while let Some(found) = find(&body[from..], name) {
        let start = from + found;
        from = start + 1;
        let Some(after) = key_end(body, start, name.len()) else { continue };
        let mut index = after;
        while body.get(index).is_some_and(|byte| byte.is_ascii_whitespace()) {
            index += 1;
        }
        if body.get(index) != Some(&b':') {
            continue;
        }
        index += 1;
        while body.get(index).is_some_and(|byte| byte.is_ascii_whitespace()) {
            index += 1;
        }
        let digits = body[index..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let text = std::str::from_utf8(&body[index..index + digits]).ok()?;
        return text.parse().ok();
    }
    None
}

/// When the bytes at `start` (`length` long) are a quoted key, plain or escaped, the index just
/// after its closing quote.
fn key_end(body: &[u8], start: usize, length: usize) -> Option<usize> {
    let end = start + length;
    let before = start.checked_sub(1).map(|index| body[index]);
    if before != Some(b'"') {
        return None;
    }
    let escaped = start >= 2 && body[start - 2] == b'\\';
    match (escaped, body.get(end), body.get(end + 1)) {
        (false, Some(b'"'), _) => Some(end + 1),
        (true, Some(b'\\'), Some(b'"')) => Some(end + 2),
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut offset = 0;
    while offset + needle.len() <= haystack.len() {
        let position = haystack[offset..=haystack.len() - needle.len()]
            .iter()
            .position(|&byte| byte == first)?;
        let at = offset + position;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        offset = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_their_placeholders() {
        let template = Template::parse("a{{seq}}b{{sent_us}}{{seq}}");
        assert_eq!(template.render(7, 99), "a7b997");
        assert!(template.uses_send_time());
        assert!(!Template::parse("x-{{seq}}").uses_send_time());
        assert_eq!(Template::parse("plain").render(1, 2), "plain");
        assert_eq!(Template::parse("").render(1, 2), "");
    }

    #[test]
    fn keys_cycle_with_the_sequence_number() {
        let template = Template::parse("k{{seq%3}}-{{seq}}{{seq%0}}{{seq%x}}");
        assert_eq!(template.render(7, 0), "k1-7{{seq%0}}{{seq%x}}");
        let body = Template::parse(&keyed_body_template(1000)).render(123_456, 1);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["data"]["customer"], "cus_456");
        assert!(body.len().abs_diff(DEFAULT_BODY_BYTES) < 32, "{}", body.len());
    }

    #[test]
    fn the_default_body_is_about_one_kibibyte_of_json_the_sink_can_read() {
        let body = Template::parse(&default_body_template()).render(123_456, 1_700_000_000_000_000);
        assert_eq!(body.len(), DEFAULT_BODY_BYTES);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["seq"], 123_456);
        assert_eq!(value["type"], "bench.event");
        assert_eq!(find_number(body.as_bytes(), "seq"), Some(123_456));
        assert_eq!(find_number(body.as_bytes(), "sent_us"), Some(1_700_000_000_000_000));
    }

    #[test]
    fn numbers_are_found_plain_spaced_and_escaped() {
        let table: &[(&str, Option<u64>)] = &[
            (r#"{"seq":5}"#, Some(5)),
            (r#"{ "seq" : 42 , "x": 1}"#, Some(42)),
            (r#"{"payload":"{\"seq\":17,\"sent_us\":3}"}"#, Some(17)),
            (r#"{"subseq":1,"seq":2}"#, Some(2)),
            (r#"{"seqs":1}"#, None),
            (r#"{"seq":"7"}"#, None),
            (r#"{"note":"seq","seq":9}"#, Some(9)),
            ("", None),
            ("seq", None),
        ];
        for (body, expected) in table {
            assert_eq!(find_number(body.as_bytes(), "seq"), *expected, "{body}");
        }
    }
}
