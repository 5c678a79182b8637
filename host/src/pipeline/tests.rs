//! The `on_error` matrix: every plugin stage × every policy × every kind of failure, run through
//! the real plugin runtime with the `hostile` fixture plugin, asserting what the sender is told
//! and which deliveries are stored, sent or dead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;

use super::*;
use crate::config::{self, ProcessEnvironment};
use crate::plugin::RuntimeOptions;

/// The fixture, relative to the workspace root; `cargo xtask plugins` builds it.
const FIXTURE: &str = "plugins/target/wasm32-wasip2/release/hostile.wasm";

const POLICIES: [&str; 3] = ["fail-closed", "fail-open", "dead-letter"];

/// How the fixture plugin fails.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// It panics: a trap.
    Trap,
    /// It answers `failure::fatal("boom")`.
    Fatal,
    /// It spins past its 50 ms deadline.
    Timeout,
    /// It answers `failure::retry("not ready")`.
    Retry,
}

const KINDS: [Kind; 4] = [Kind::Trap, Kind::Fatal, Kind::Timeout, Kind::Retry];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Trap => "trap",
            Kind::Fatal => "fatal",
            Kind::Timeout => "timeout",
            Kind::Retry => "retry",
        }
    }

    /// The fixture's `mode` that fails this way.
    fn mode(self) -> &'static str {
        match self {
            Kind::Trap => "panic",
            Kind::Fatal => "fatal",
            Kind::Timeout => "loop",
            Kind::Retry => "retry",
        }
    }

    fn timeout(self) -> &'static str {
        match self {
            Kind::Timeout => "50ms",
            _ => "10s",
        }
    }

    /// How the failure's reason begins (a trap's text carries the guest's panic message).
    fn reason(self) -> &'static str {
        match self {
            Kind::Trap => "trapped: ",
            Kind::Fatal => "fatal: boom",
            Kind::Timeout => "timed out after 50ms",
            Kind::Retry => "not ready",
        }
    }
}

/// The plugin stage the failing plugin sits in.
#[derive(Debug, Clone, Copy)]
enum At {
    Verify,
    Route,
    Endpoint,
}

/// What the pipeline must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `StageError::Retry`: a 503, nothing stored, whatever the policy.
    Retry,
    /// `StageError::Closed`: a 503, nothing stored.
    Closed,
    /// The stage is skipped; the event goes on unchanged.
    Unchanged,
    /// The deliveries the stage would have fed are stored dead, carrying the error.
    DeadLetter,
}

/// The policy and failure kind → outcome table; the same for every stage.
const MATRIX: [(Kind, &str, Expect); 12] = [
    (Kind::Trap, "fail-closed", Expect::Closed),
    (Kind::Trap, "fail-open", Expect::Unchanged),
    (Kind::Trap, "dead-letter", Expect::DeadLetter),
    (Kind::Fatal, "fail-closed", Expect::Closed),
    (Kind::Fatal, "fail-open", Expect::Unchanged),
    (Kind::Fatal, "dead-letter", Expect::DeadLetter),
    (Kind::Timeout, "fail-closed", Expect::Closed),
    (Kind::Timeout, "fail-open", Expect::Unchanged),
    (Kind::Timeout, "dead-letter", Expect::DeadLetter),
    (Kind::Retry, "fail-closed", Expect::Retry),
    (Kind::Retry, "fail-open", Expect::Retry),
    (Kind::Retry, "dead-letter", Expect::Retry),
];

fn plugin_id(kind: Kind, policy: &str) -> String {
    format!("{}-{policy}", kind.name())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the host crate is in a workspace").into()
}

/// One fixture plugin per failure kind and policy.
fn plugins_config() -> String {
    let mut text = String::new();
    for kind in KINDS {
        for policy in POLICIES {
            text.push_str(&format!(
                "[plugins.{id}]\npath = \"{FIXTURE}\"\nconfig = {{ mode = \"{mode}\" }}\n\
                 timeout = \"{timeout}\"\non_error = \"{policy}\"\n\n",
                id = plugin_id(kind, policy),
                mode = kind.mode(),
                timeout = kind.timeout(),
            ));
        }
    }
    text
}

/// Source `web` feeds route `main` → endpoint `hook` and route `side` → endpoint `audit`;
/// `plugin` runs in route `main` or as `hook`'s transform (verify stages are called directly).
fn topology(at: At, plugin: &str) -> Topology {
    assert!(
        workspace_root().join(FIXTURE).is_file(),
        "the `hostile` fixture plugin is missing at `{FIXTURE}`: run `cargo xtask plugins` first"
    );
    let route_plugins = match at {
        At::Route => format!("plugins = [\"{plugin}\"]\n"),
        At::Verify | At::Endpoint => String::new(),
    };
    let transform = match at {
        At::Endpoint => format!("transform = \"{plugin}\"\n"),
        At::Verify | At::Route => String::new(),
    };
    let text = format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n\n{plugins}\
         [sources.web]\ntype = \"http\"\n\n\
         [endpoints.hook]\nurl = \"http://127.0.0.1:9/hook\"\n{transform}\n\
         [endpoints.audit]\nurl = \"http://127.0.0.1:9/audit\"\n\n\
         [routes.main]\nfrom = [\"web\"]\n{route_plugins}to = [\"hook\"]\n\n\
         [routes.side]\nfrom = [\"web\"]\nto = [\"audit\"]\n",
        plugins = plugins_config(),
    );
    config::parse(&text, &workspace_root(), &ProcessEnvironment)
        .unwrap_or_else(|errors| panic!("the test config is invalid:\n{errors}"))
}

/// The runtime with every fixture plugin, loaded once for all tests (compiled once, through a
/// cache that is removed once the plugins are loaded).
fn host() -> Arc<PluginHost> {
    static HOST: OnceLock<Arc<PluginHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        let topology = topology(At::Verify, "none");
        let plugins: Vec<_> = topology.plugins.values().cloned().collect();
        let cache = tempfile::tempdir().expect("a temporary cache directory");
        let options = RuntimeOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            threads: 2,
            count_instructions: false,
            emit_logs: false,
        };
        let host = PluginHost::load(&plugins, &topology.secrets, &options)
            .unwrap_or_else(|error| panic!("the fixture plugins do not load: {error}"));
        Arc::new(host)
    })
    .clone()
}

fn pipeline(topology: &Topology) -> Pipeline {
    let routes =
        RouteTable::new(topology.routes.values().map(|route| route.spec.clone()).collect());
    Pipeline::new(topology, Arc::new(ArcSwap::from_pointee(routes)), Some(host()), Metrics::new())
}

fn event() -> Event {
    Event {
        id: EventId::generate(),
        source: "web".into(),
        event_type: "order.created".into(),
        subject: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from_static(br#"{"order":7}"#),
        received_at: 0,
        dedupe_key: None,
        metadata: Vec::new(),
    }
}

/// `event` delivered to `endpoint` as it is, dead with `dead_letter` if given.
fn delivery(endpoint: &str, event: &Event, dead_letter: Option<&str>) -> NewDelivery {
    NewDelivery {
        endpoint: endpoint.into(),
        event: event.id,
        payload: Payload {
            body: event.body.clone(),
            content_type: Some("application/json".into()),
            subject: None,
        },
        dead_letter: dead_letter.map(str::to_owned),
        order_key: None,
    }
}

fn sorted(mut deliveries: Vec<NewDelivery>) -> Vec<NewDelivery> {
    deliveries.sort_by(|left, right| left.endpoint.cmp(&right.endpoint));
    deliveries
}

/// Checks that `reason` is the dead-letter error for `plugin` failing as `kind`.
fn assert_dead_letter_reason(reason: &str, plugin: &str, kind: Kind, case: &str) {
    let expected = format!("plugin `{plugin}` failed: {}", kind.reason());
    assert!(
        reason.starts_with(&expected),
        "{case}: dead-letter error `{reason}`, expected `{expected}…`"
    );
}

/// Checks a 503 answer for `plugin` failing as `kind`.
fn assert_stage_error(error: &StageError, expect: Expect, plugin: &str, kind: Kind, case: &str) {
    match (expect, error) {
        (Expect::Retry, StageError::Retry { plugin: failed, message }) => {
            assert_eq!(failed, plugin, "{case}");
            assert_eq!(message, "not ready", "{case}");
        }
        (Expect::Closed, StageError::Closed { plugin: failed, reason }) => {
            assert_eq!(failed, plugin, "{case}");
            assert!(
                reason.starts_with(kind.reason()),
                "{case}: reason `{reason}`, expected `{}…`",
                kind.reason()
            );
        }
        _ => panic!("{case}: expected {expect:?}, the pipeline answered the error `{error}`"),
    }
}

#[tokio::test]
async fn verify_stage_obeys_on_error() {
    for (kind, policy, expect) in MATRIX {
        let plugin = plugin_id(kind, policy);
        let case = format!("verify, `{plugin}`");
        let pipeline = pipeline(&topology(At::Verify, &plugin));
        let received = event();
        let verified = pipeline.verify(std::slice::from_ref(&plugin), received.clone()).await;
        match (expect, verified) {
            (Expect::Retry | Expect::Closed, Err(error)) => {
                assert_stage_error(&error, expect, &plugin, kind, &case);
            }
            (Expect::Unchanged, Ok(Verified::Accept(accepted))) => {
                assert_eq!(accepted, received, "{case}");
            }
            (Expect::DeadLetter, Ok(Verified::DeadLetter(failed, reason))) => {
                assert_eq!(failed, received, "{case}");
                assert_dead_letter_reason(&reason, &plugin, kind, &case);
                // Every delivery routing gives the event is stored dead; no plugin runs.
                let fan_out = pipeline.dead_letters(&failed, &reason);
                assert_eq!(
                    sorted(fan_out.deliveries),
                    vec![
                        delivery("audit", &received, Some(&reason)),
                        delivery("hook", &received, Some(&reason)),
                    ],
                    "{case}"
                );
                assert!(fan_out.derived.is_empty(), "{case}");
            }
            (_, answer) => panic!("{case}: expected {expect:?}, the pipeline answered {answer:?}"),
        }
    }
}

/// Runs the matrix with the failing plugin at `at` (a route plugin or a transform feeding
/// `hook` only): `audit`'s delivery never depends on it, except that a 503 stores nothing.
async fn fan_out_obeys_on_error(at: At) {
    for (kind, policy, expect) in MATRIX {
        let plugin = plugin_id(kind, policy);
        let case = format!("{at:?}, `{plugin}`");
        let pipeline = pipeline(&topology(at, &plugin));
        let received = event();
        let fanned = pipeline.fan_out(&received, None).await;
        match (expect, fanned) {
            (Expect::Retry | Expect::Closed, Err(error)) => {
                assert_stage_error(&error, expect, &plugin, kind, &case);
            }
            (Expect::Unchanged, Ok(fan_out)) => {
                assert_eq!(fan_out.routes_matched, 2, "{case}");
                assert!(fan_out.derived.is_empty(), "{case}");
                assert_eq!(
                    sorted(fan_out.deliveries),
                    vec![delivery("audit", &received, None), delivery("hook", &received, None)],
                    "{case}"
                );
            }
            (Expect::DeadLetter, Ok(fan_out)) => {
                assert_eq!(fan_out.routes_matched, 2, "{case}");
                assert!(fan_out.derived.is_empty(), "{case}");
                let deliveries = sorted(fan_out.deliveries);
                let reason = deliveries
                    .iter()
                    .find(|delivery| delivery.endpoint == "hook")
                    .and_then(|delivery| delivery.dead_letter.clone())
                    .unwrap_or_else(|| {
                        panic!("{case}: no dead delivery to `hook` in {deliveries:?}")
                    });
                assert_dead_letter_reason(&reason, &plugin, kind, &case);
                assert_eq!(
                    deliveries,
                    vec![
                        delivery("audit", &received, None),
                        delivery("hook", &received, Some(&reason))
                    ],
                    "{case}"
                );
            }
            (_, answer) => panic!("{case}: expected {expect:?}, the pipeline answered {answer:?}"),
        }
    }
}

#[tokio::test]
async fn route_plugin_stage_obeys_on_error() {
    fan_out_obeys_on_error(At::Route).await;
}

#[tokio::test]
async fn endpoint_transform_stage_obeys_on_error() {
    fan_out_obeys_on_error(At::Endpoint).await;
}

#[tokio::test]
async fn each_delivery_carries_its_endpoints_order_key() {
    let text = "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n[sources.web]\n\
                [endpoints.by-order]\nurl = \"http://127.0.0.1:9/a\"\nordered_by = { json = \"/order\" }\n\
                [endpoints.by-header]\nurl = \"http://127.0.0.1:9/b\"\nordered_by = { header = \"x-key\" }\n\
                [endpoints.plain]\nurl = \"http://127.0.0.1:9/c\"\n\
                [endpoints.listed]\nurl = \"http://127.0.0.1:9/d\"\n\
                [routes.all]\nto = [\"by-order\", \"by-header\", \"plain\", \"listed\"]\n";
    let topology = config::parse(text, Path::new("."), &ProcessEnvironment).unwrap();
    // Dynamic endpoints' orderings travel with the route table.
    let orderings = HashMap::from([("listed".to_owned(), OrderedBy::All)]);
    let routes =
        RouteTable::new(topology.routes.values().map(|route| route.spec.clone()).collect())
            .with_orderings(orderings);
    let pipeline =
        Pipeline::new(&topology, Arc::new(ArcSwap::from_pointee(routes)), None, Metrics::new());
    let fan_out = pipeline.fan_out(&event(), None).await.unwrap();
    let mut keys: Vec<(String, Option<String>)> = fan_out
        .deliveries
        .into_iter()
        .map(|delivery| (delivery.endpoint, delivery.order_key))
        .collect();
    keys.sort();
    let expected =
        [("by-header", None), ("by-order", Some("7")), ("listed", Some("")), ("plain", None)]
            .map(|(endpoint, key)| (endpoint.to_owned(), key.map(str::to_owned)));
    assert_eq!(keys, expected);
}
