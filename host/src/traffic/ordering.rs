//! Ordering per key: which key an event's delivery is ordered by, and which deliveries of
//! one endpoint may start.
//!
//! Owns [`OrderedBy`] (an endpoint's `ordered_by`: a JSON pointer into the body, a header, or
//! `all`), [`OrderedBy::key_of`] (the key a delivery is stored with, computed once at ingest)
//! and [`KeyGate`] (per key, the line of unfinished deliveries in delivery id order, that is
//! ingest order, and the one released from it). "In order" means: for one endpoint and one
//! key, delivery `n + 1` starts only after delivery `n` succeeded or became a dead letter, so
//! the first successful arrival of each event follows ingest order; retries hold the key, not
//! the endpoint. A delivery sent again later (a dead letter redriven, one resent alone) joins
//! its key's line at its id's place: it goes before the key's newer deliveries not yet
//! started and after the one holding the key (under way or waiting for its retry), and
//! cannot undo arrivals already made. The cost: one line per key with unfinished
//! deliveries (a set of ids), one map lookup per delivery queued or finished. Must not:
//! read a clock, do I/O, or know the store; the due-queues apply what the gate decides.

use std::collections::{BTreeSet, HashMap};

use crate::store::DeliveryId;

/// The longest order key kept; a longer value is cut (at a character boundary).
pub const MAX_KEY_BYTES: usize = 256;

/// What an endpoint's deliveries are ordered by; stored (a dynamic endpoint's settings) as
/// written: `"all"`, `{"json": "/pointer"}` or `{"header": "name"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderedBy {
    /// One line for every delivery of the endpoint.
    All,
    /// The value at this JSON pointer (RFC 6901) of the body: a string, number or boolean.
    Json(String),
    /// The value of this header, its name in lower case.
    Header(String),
}

impl OrderedBy {
    /// The key of an event with `body` and `headers`; `None` (unordered) when it has none.
    pub fn key_of(&self, body: &[u8], headers: &[(String, String)]) -> Option<String> {
        let key = match self {
            Self::All => return Some(String::new()),
            Self::Json(pointer) => {
                let value: serde_json::Value = serde_json::from_slice(body).ok()?;
                match value.pointer(pointer)? {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Number(number) => number.to_string(),
                    serde_json::Value::Bool(flag) => flag.to_string(),
                    _ => return None,
                }
            }
            Self::Header(name) => crate::event::header_value(headers, name)?.to_owned(),
        };
        Some(cut(key))
    }

    /// As written in the config file and the admin API.
    pub fn describe(&self) -> String {
        match self {
            Self::All => "all".to_owned(),
            Self::Json(pointer) => format!("json:{pointer}"),
            Self::Header(name) => format!("header:{name}"),
        }
    }
}

fn cut(mut key: String) -> String {
    if key.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

/// One endpoint's lines of ordered deliveries, one per key.
#[derive(Debug, Default)]
pub struct KeyGate {
    lines: HashMap<String, Line>,
}

#[derive(Debug, Default)]
struct Line {
    /// Unfinished deliveries of the key, the released one included.
    waiting: BTreeSet<DeliveryId>,
    /// The one that may be attempted (under way, or waiting for its retry).
    released: Option<DeliveryId>,
}

impl KeyGate {
    /// Puts `delivery` in `key`'s line; answers whether it may be attempted now (it is the
    /// released one). A delivery already in the line keeps its place.
    pub fn admit(&mut self, key: &str, delivery: DeliveryId) -> bool {
        let line = self.lines.entry(key.to_owned()).or_default();
        line.waiting.insert(delivery);
        match line.released {
            Some(released) => released == delivery,
            None => {
                // Nothing released: the line was empty, so this is its first.
                line.released = Some(delivery);
                true
            }
        }
    }

    /// `delivery` is finished (delivered, dead letter, parked or forgotten): it leaves its
    /// line. Answers the delivery released in its place, which may now be attempted.
    pub fn settle(&mut self, key: &str, delivery: DeliveryId) -> Option<DeliveryId> {
        let line = self.lines.get_mut(key)?;
        line.waiting.remove(&delivery);
        if line.released != Some(delivery) {
            return None;
        }
        line.released = line.waiting.first().copied();
        if line.released.is_none() {
            self.lines.remove(key);
            return None;
        }
        line.released
    }

    /// Forgets every line (the endpoint's queue was emptied).
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// Keys with unfinished deliveries.
    pub fn keys(&self) -> usize {
        self.lines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> DeliveryId {
        DeliveryId::new(n)
    }

    #[test]
    fn the_first_of_a_key_goes_and_the_next_waits_for_it() {
        let mut gate = KeyGate::default();
        assert!(gate.admit("a", id(1)));
        assert!(!gate.admit("a", id(2)));
        assert!(!gate.admit("a", id(3)));
        // Another key is not held.
        assert!(gate.admit("b", id(4)));
        // A retry of the released one may go again; the others still wait.
        assert!(gate.admit("a", id(1)));
        assert!(!gate.admit("a", id(2)));
        assert_eq!(gate.settle("a", id(1)), Some(id(2)));
        assert_eq!(gate.settle("a", id(2)), Some(id(3)));
        assert_eq!(gate.settle("a", id(3)), None);
        assert_eq!(gate.keys(), 1);
        assert_eq!(gate.settle("b", id(4)), None);
        assert_eq!(gate.keys(), 0);
    }

    #[test]
    fn the_line_follows_delivery_ids_not_arrival() {
        let mut gate = KeyGate::default();
        assert!(gate.admit("k", id(5)));
        // An older delivery sent again queues behind the one under way, before newer ones.
        assert!(!gate.admit("k", id(9)));
        assert!(!gate.admit("k", id(2)));
        assert_eq!(gate.settle("k", id(5)), Some(id(2)));
        assert_eq!(gate.settle("k", id(2)), Some(id(9)));
    }

    #[test]
    fn settling_one_that_waits_releases_nothing() {
        let mut gate = KeyGate::default();
        assert!(gate.admit("k", id(1)));
        assert!(!gate.admit("k", id(2)));
        assert!(!gate.admit("k", id(3)));
        assert_eq!(gate.settle("k", id(2)), None);
        assert_eq!(gate.settle("k", id(1)), Some(id(3)));
        assert_eq!(gate.settle("unknown", id(7)), None);
        gate.clear();
        assert!(gate.admit("k", id(3)));
    }

    #[test]
    fn keys_come_from_the_body_or_a_header() {
        let body = br#"{"customer":{"id":"c-1","n":7,"flag":true,"list":[1]}}"#;
        let headers = vec![("x-order-key".to_owned(), "h-1".to_owned())];
        let cases = [
            (OrderedBy::Json("/customer/id".into()), Some("c-1")),
            (OrderedBy::Json("/customer/n".into()), Some("7")),
            (OrderedBy::Json("/customer/flag".into()), Some("true")),
            (OrderedBy::Json("/customer/list".into()), None),
            (OrderedBy::Json("/missing".into()), None),
            (OrderedBy::Header("x-order-key".into()), Some("h-1")),
            (OrderedBy::Header("x-other".into()), None),
            (OrderedBy::All, Some("")),
        ];
        for (ordered_by, expected) in cases {
            assert_eq!(ordered_by.key_of(body, &headers).as_deref(), expected, "{ordered_by:?}");
        }
        assert_eq!(OrderedBy::Json("/a".into()).key_of(b"not json", &headers), None);
        let long = format!(r#"{{"a":"{}"}}"#, "é".repeat(200));
        let key = OrderedBy::Json("/a".into()).key_of(long.as_bytes(), &[]).unwrap();
        assert!(key.len() <= MAX_KEY_BYTES && key.len() >= MAX_KEY_BYTES - 1);
    }
}
