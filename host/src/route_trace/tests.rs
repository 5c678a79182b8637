//! Table tests of the trace: why routes do not match, verdicts in order, deliveries, policies.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;

use super::*;
use crate::config::{self, Environment};
use crate::verdict::{GuestEvent, Patch, Rejection};

/// Every plugin file exists; no variables.
struct Files;

impl Environment for Files {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
    fn read_file(&self, _path: &Path) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn is_file(&self, _path: &Path) -> bool {
        true
    }
}

const CONFIG: &str = r#"
[nats]
url = "nats://127.0.0.1:4222"

[egress]
allow_networks = ["127.0.0.0/8"]

[plugins.check]
path = "check.wasm"
[plugins.shape]
path = "shape.wasm"
on_error = "dead-letter"
[plugins.splitter]
path = "splitter.wasm"
on_error = "fail-open"

[sources.github]
type = "http"
verify = ["check"]
event_type = { header = "x-github-event", prefix = "github." }

[sources.orders]
type = "nats"
subject = "orders.>"

[endpoints.chat]
url = "http://127.0.0.1:9000/chat"
transform = "shape"

[endpoints.audit]
type = "nats"
subject = "audit.{source}.{type}"

[routes.a-pushes]
from = ["github"]
types = ["github.push"]
filter = 'body.private == false'
to = ["chat", "audit"]

[routes.b-split]
from = ["github"]
plugins = ["splitter"]
to = ["audit"]

[routes.c-orders]
from = ["orders"]
subjects = ["orders.*.created"]
to = ["audit"]
"#;

/// A plugin table: each plugin gives one fixed answer.
struct Answers(HashMap<&'static str, PluginAnswer>);

impl PluginCaller for Answers {
    fn call(&mut self, plugin: &str, _event: &Event) -> PluginAnswer {
        self.0.get(plugin).cloned().unwrap_or_else(|| Err(format!("`{plugin}` is unknown")))
    }
}

fn topology() -> Topology {
    config::parse(CONFIG, Path::new("/config"), &Files).expect("the test config is valid")
}

fn push(body: &str) -> Event {
    Event {
        id: "evt_00000000000000000000000000".parse().expect("a valid id"),
        source: "github".into(),
        event_type: "github.push".into(),
        subject: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(body.to_owned()),
        received_at: 0,
        dedupe_key: None,
        metadata: Vec::new(),
    }
}

fn body_patch(body: &str) -> Verdict {
    Verdict::Modify(Patch { body: Some(Bytes::from(body.to_owned())), ..Patch::default() })
}

fn part(body: &str) -> GuestEvent {
    GuestEvent {
        event_type: "github.part".into(),
        subject: None,
        headers: Vec::new(),
        body: Bytes::from(body.to_owned()),
        metadata: Vec::new(),
    }
}

fn answers(entries: &[(&'static str, PluginAnswer)]) -> Answers {
    Answers(entries.iter().cloned().collect())
}

#[test]
fn a_push_matches_its_route_and_each_endpoint_gets_the_first_routes_payload() {
    let mut plugins = answers(&[
        ("check", Ok(Ok(Verdict::Pass))),
        ("shape", Ok(Ok(body_patch("shaped")))),
        ("splitter", Ok(Ok(Verdict::Split(vec![part("one"), part("two")])))),
    ]);
    let trace = trace(&topology(), push(r#"{"private":false}"#), &mut plugins);
    assert_eq!(trace.outcome, Outcome::Accepted);
    assert_eq!(trace.verify[0].verdict, "pass");
    let a = &trace.routes[0];
    assert!(a.matched);
    let checks: Vec<(&str, bool)> = a.checks.iter().map(|c| (c.criterion, c.passed)).collect();
    assert_eq!(checks, [("source", true), ("type", true), ("filter", true)]);
    assert_eq!(a.plugins[0].plugin, "shape");
    let b = &trace.routes[1];
    assert_eq!(b.plugins[0].verdict, "split into 2");
    let c = &trace.routes[2];
    assert!(!c.matched);
    assert_eq!(c.checks[0].detail, "source `github` is not in `orders`");
    let deliveries: Vec<(&str, &str, Option<&str>)> = trace
        .deliveries
        .iter()
        .map(|d| (d.endpoint.as_str(), d.route.as_str(), d.body.as_deref()))
        .collect();
    assert_eq!(
        deliveries,
        [
            ("chat", "a-pushes", Some("shaped")),
            ("audit", "a-pushes", Some(r#"{"private":false}"#)),
            ("audit", "b-split", Some("one")),
            ("audit", "b-split", Some("two")),
        ]
    );
    assert_eq!(trace.deliveries[1].subject.as_deref(), Some("audit.github.github.push"));
    // Split parts get distinct, reproducible ids.
    assert_ne!(trace.deliveries[2].event, trace.deliveries[3].event);
    let again = super::trace(&topology(), push(r#"{"private":false}"#), &mut plugins);
    assert_eq!(again, trace);
}

#[test]
fn each_criterion_says_why_a_route_did_not_match() {
    let mut plugins =
        answers(&[("check", Ok(Ok(Verdict::Pass))), ("splitter", Ok(Ok(Verdict::Drop)))]);
    let filtered = trace(&topology(), push(r#"{"private":true}"#), &mut plugins);
    assert_eq!(filtered.routes[0].checks[2].detail, "`body.private == false` is false");
    assert!(!filtered.routes[0].matched);
    assert!(filtered.deliveries.is_empty(), "the split route's plugin dropped the event");

    let mut ping = push("{}");
    ping.event_type = "github.ping".into();
    let typed = trace(&topology(), ping, &mut plugins);
    assert_eq!(
        typed.routes[0].checks[1].detail,
        "type `github.ping` matches none of `github.push`"
    );

    let mut order = push("{}");
    order.source = "orders".into();
    order.subject = Some("orders.eu.paid".into());
    let subject = trace(&topology(), order.clone(), &mut plugins);
    assert_eq!(
        subject.routes[2].checks[1].detail,
        "subject `orders.eu.paid` matches none of `orders.*.created`"
    );
    order.subject = None;
    let none = trace(&topology(), order, &mut plugins);
    assert_eq!(
        none.routes[2].checks[1].detail,
        "the event has no subject; the route wants `orders.*.created`"
    );
}

#[test]
fn verify_outcomes_stop_the_event() {
    let cases: [(PluginAnswer, Outcome); 4] = [
        (Ok(Ok(Verdict::Drop)), Outcome::Dropped { plugin: "check".into() }),
        (
            Ok(Ok(Verdict::Reject(Rejection {
                status: 401,
                code: "bad_signature".into(),
                message: "no".into(),
            }))),
            Outcome::Rejected {
                plugin: "check".into(),
                status: 401,
                code: "bad_signature".into(),
                message: "no".into(),
            },
        ),
        (
            Ok(Err(GuestFailure::Retry("later".into()))),
            Outcome::Retry {
                plugin: "check".into(),
                reason: "plugin `check` asked for a retry: later".into(),
            },
        ),
        (
            Err("trapped".into()),
            Outcome::Retry {
                plugin: "check".into(),
                reason: "plugin `check` failed and fails closed: trapped".into(),
            },
        ),
    ];
    for (answer, expected) in cases {
        let mut plugins = answers(&[("check", answer)]);
        let trace = trace(&topology(), push("{}"), &mut plugins);
        assert_eq!(trace.outcome, expected);
        assert!(trace.routes.is_empty() && trace.deliveries.is_empty());
    }
}

#[test]
fn failed_plugins_follow_their_policy() {
    // `shape` dead-letters, `splitter` fails open.
    let mut plugins = answers(&[
        ("check", Ok(Ok(Verdict::Pass))),
        ("shape", Ok(Err(GuestFailure::Fatal("bad input".into())))),
        ("splitter", Err("out of fuel".into())),
    ]);
    let trace = trace(&topology(), push(r#"{"private":false}"#), &mut plugins);
    assert_eq!(trace.outcome, Outcome::Accepted);
    assert_eq!(trace.deliveries[0].endpoint, "chat");
    assert_eq!(
        trace.deliveries[0].dead_letter.as_deref(),
        Some("plugin `shape` failed: fatal: bad input")
    );
    assert_eq!(trace.routes[1].plugins[0].verdict, "failed (fail-open): out of fuel");
    // Fail-open: the split route delivers the event unchanged, and `audit` already has it.
    assert_eq!(trace.deliveries.len(), 2);
}
