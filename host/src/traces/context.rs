//! W3C trace context and the durable trace of an event: pure functions, no I/O.
//!
//! Owns the `traceparent` format (parse and print), where an event's trace context comes from
//! (a `traceparent` header, a `ce-traceparent` header, or the `traceparent` attribute of a
//! structured CloudEvent), the ids derived from an event id, and the sampling decision. It
//! must not export, allocate ids at random, or read the clock: the exporter and the hooks in
//! `traces` do that.

use crate::event::{EventId, header_value};

/// The W3C header name, on inbound requests and on deliveries.
pub const TRACEPARENT: &str = "traceparent";
/// The CloudEvents distributed-tracing extension in binary mode on NATS and HTTP.
const CLOUDEVENT_TRACEPARENT: &str = "ce-traceparent";

/// A parsed `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` value as W3C Trace Context level 1 reads it: version `00`
    /// exactly 55 characters, later versions at least that with `-` after the flags; lower-case
    /// hex; neither id all zeros; version `ff` refused.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = text.as_bytes();
        if bytes.len() < 55 || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let version = hex_bytes::<1>(&text[0..2])?[0];
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        if version != 0 && bytes.len() > 55 && bytes[55] != b'-' {
            return None;
        }
        let trace_id = hex_bytes::<16>(&text[3..35])?;
        let span_id = hex_bytes::<8>(&text[36..52])?;
        let flags = hex_bytes::<1>(&text[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, span_id, sampled: flags & 1 == 1 })
    }

    /// The header value, version `00`.
    pub fn format(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", hex::encode(self.trace_id), hex::encode(self.span_id))
    }
}

/// Decodes exactly `N` bytes of lower-case hex.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The trace context an event arrived with: the `traceparent` header, else `ce-traceparent`
/// (binary-mode CloudEvents), else the `traceparent` attribute of a structured CloudEvent
/// body. A value that does not parse counts as absent (W3C: restart the trace).
pub fn inbound(headers: &[(String, String)], body: &[u8]) -> Option<TraceParent> {
    if let Some(value) = header_value(headers, TRACEPARENT) {
        return TraceParent::parse(value);
    }
    if let Some(value) = header_value(headers, CLOUDEVENT_TRACEPARENT) {
        return TraceParent::parse(value);
    }
    let structured = header_value(headers, "content-type").is_some_and(|value| {
        value.trim_start().to_ascii_lowercase().starts_with("application/cloudevents+json")
    });
    if !structured {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Attribute<'a> {
        #[serde(borrow)]
        traceparent: Option<std::borrow::Cow<'a, str>>,
    }
    let attribute: Attribute<'_> = serde_json::from_slice(body).ok()?;
    TraceParent::parse(&attribute.traceparent?)
}

/// Where an event's spans hang, decided once from what is stored with the event, so that a
/// delivery attempt days later (after any number of restarts) lands in the same trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTrace {
    /// The sender's trace, or else the event id's 16 bytes (a ULID is a valid trace id).
    pub trace_id: [u8; 16],
    /// The span of the inbound request or message; every stage and attempt is its child.
    pub root_span_id: [u8; 8],
    /// The sender's span, the root span's parent; none when Switchyard started the trace.
    pub remote_parent: Option<[u8; 8]>,
    pub sampled: bool,
}

impl EventTrace {
    /// The trace of event `id` that arrived with `inbound` context, sampled at `ratio` when
    /// the sender did not decide (parent-based: a sender's decision wins).
    pub fn of(id: EventId, inbound: Option<TraceParent>, ratio: f64) -> Self {
        let root_span_id = root_span_id(id);
        match inbound {
            Some(parent) => Self {
                trace_id: parent.trace_id,
                root_span_id,
                remote_parent: Some(parent.span_id),
                sampled: parent.sampled,
            },
            None => {
                let trace_id = id.to_bytes();
                Self {
                    trace_id,
                    root_span_id,
                    remote_parent: None,
                    sampled: sampled(trace_id, ratio),
                }
            }
        }
    }
}

/// The root span id of event `id`: the last 8 bytes of its ULID (random bits), never zero.
pub fn root_span_id(id: EventId) -> [u8; 8] {
    let bytes = id.to_bytes();
    let mut span = [0u8; 8];
    span.copy_from_slice(&bytes[8..]);
    if span == [0; 8] {
        span[7] = 1;
    }
    span
}

/// The trace-id ratio decision of the OpenTelemetry specification (`TraceIdRatioBased`):
/// the low 8 bytes of the trace id, shifted right by one, below `ratio × 2⁶³`. The same
/// trace id always gets the same answer, in every process and after every restart.
pub fn sampled(trace_id: [u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 || ratio.is_nan() {
        return false;
    }
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn traceparent_parsing_follows_the_w3c_rules() {
        let parsed = TraceParent::parse(VALID).unwrap();
        assert_eq!(hex::encode(parsed.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(parsed.span_id), "00f067aa0ba902b7");
        assert!(parsed.sampled);
        assert_eq!(parsed.format(), VALID);
        let table: &[(&str, bool)] = &[
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true),
            // Upper-case hex, zero ids, version ff, a version 00 with a tail: refused.
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", false),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false),
            ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false),
            // A later version may carry more fields after a dash.
            ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true),
            ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false),
            ("", false),
            ("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false),
        ];
        for (text, valid) in table {
            assert_eq!(TraceParent::parse(text).is_some(), *valid, "{text}");
        }
        let unsampled = TraceParent::parse(table[0].0).unwrap();
        assert!(!unsampled.sampled);
    }

    #[test]
    fn inbound_context_comes_from_headers_then_a_structured_cloudevent() {
        let other = "00-11111111111111111111111111111111-2222222222222222-00";
        type Case<'a> = (Vec<(String, String)>, &'a [u8], Option<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (headers(&[("traceparent", VALID)]), b"", Some(VALID)),
            (headers(&[("traceparent", VALID), ("ce-traceparent", other)]), b"", Some(VALID)),
            (headers(&[("ce-traceparent", other)]), b"", Some(other)),
            (headers(&[("traceparent", "garbage")]), b"", None),
            (
                headers(&[("content-type", "application/cloudevents+json; charset=utf-8")]),
                br#"{"specversion":"1.0","traceparent":"00-11111111111111111111111111111111-2222222222222222-00"}"#,
                Some(other),
            ),
            // Only a structured CloudEvent's attribute counts, not any JSON body's.
            (
                headers(&[("content-type", "application/json")]),
                br#"{"traceparent":"00-11111111111111111111111111111111-2222222222222222-00"}"#,
                None,
            ),
            (headers(&[]), b"", None),
        ];
        for (headers, body, expected) in cases {
            let expected = expected.and_then(TraceParent::parse);
            assert_eq!(inbound(&headers, body), expected, "{headers:?}");
        }
    }

    #[test]
    fn an_event_without_context_is_its_own_trace() {
        let id = EventId::generate();
        let trace = EventTrace::of(id, None, 1.0);
        assert_eq!(trace.trace_id, id.to_bytes());
        assert_eq!(trace.root_span_id, root_span_id(id));
        assert_eq!(trace.remote_parent, None);
        assert!(trace.sampled);
        assert!(!EventTrace::of(id, None, 0.0).sampled);
        // The same event gives the same trace: what makes a later retry land in it.
        assert_eq!(EventTrace::of(id, None, 0.5), EventTrace::of(id, None, 0.5));
    }

    #[test]
    fn a_senders_context_and_decision_win() {
        let id = EventId::generate();
        let parent = TraceParent::parse(VALID).unwrap();
        let trace = EventTrace::of(id, Some(parent), 0.0);
        assert_eq!(trace.trace_id, parent.trace_id);
        assert_eq!(trace.remote_parent, Some(parent.span_id));
        assert!(trace.sampled, "the sender sampled it; the ratio does not apply");
        let unsampled = TraceParent { sampled: false, ..parent };
        assert!(!EventTrace::of(id, Some(unsampled), 1.0).sampled);
    }

    #[test]
    fn the_ratio_keeps_about_that_share_of_traces_deterministically() {
        let mut kept = 0;
        for _ in 0..10_000 {
            let trace_id = EventId::generate().to_bytes();
            let decision = sampled(trace_id, 0.25);
            assert_eq!(decision, sampled(trace_id, 0.25));
            kept += usize::from(decision);
        }
        assert!((2_000..3_000).contains(&kept), "{kept} of 10000 kept at 0.25");
        let mut low = [0u8; 16];
        low[15] = 2;
        assert!(sampled(low, 0.0001));
        let high = [0xff; 16];
        assert!(!sampled(high, 0.9999));
        assert!(sampled(high, 1.0));
        assert!(!sampled(low, 0.0));
    }
}
