//! Table tests of the config validator: raw TOML in, the problems reported (or the typed
//! values) out; and the endpoint rules rendered for the file and for the admin API side by
//! side.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::admin::model::{CheckContext, EndpointInput, RetryInput, check_endpoint};
use crate::config::{ConfigErrors, EndpointTarget, Environment, Topology, parse};
use crate::nats::template::SubjectFields;

/// Variables and files held in memory; every path under `plugins/` is a file.
#[derive(Default)]
struct Fixed {
    variables: BTreeMap<String, String>,
}

impl Environment for Fixed {
    fn var(&self, name: &str) -> Option<String> {
        self.variables.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        Err(io::Error::new(io::ErrorKind::NotFound, format!("no file `{}`", path.display())))
    }

    fn is_file(&self, path: &Path) -> bool {
        path.starts_with("plugins")
    }
}

fn environment() -> Fixed {
    let variables = [
        ("SIGNING", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
        ("UNPADDED", "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGA"),
        ("NOT_A_KEY", "hunter2"),
    ];
    Fixed {
        variables: variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

fn load(text: &str) -> Result<Topology, ConfigErrors> {
    parse(text, Path::new(""), &environment())
}

/// Every problem of `text`, as `path: message` lines.
fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => Vec::new(),
        Err(errors) => {
            errors.0.iter().map(|error| format!("{}: {}", error.path, error.message)).collect()
        }
    }
}

const ROUTE: &str = "\n[routes.all]\nto = [\"e\"]\n";

fn endpoint(settings: &str) -> String {
    format!("[endpoints.e]\n{settings}\n{ROUTE}")
}

#[test]
fn endpoint_settings_are_held_to_the_shared_limits() {
    let url = "url = \"https://example.com/hook\"\n";
    let table: Vec<(String, Vec<&str>)> = vec![
        (endpoint(&format!("{url}timeout = \"5m\"")), vec![]),
        (
            endpoint(&format!("{url}timeout = \"0s\"")),
            vec![
                "endpoints.e.timeout: `0s` is out of range; a timeout is more than 0 and at most 5m",
            ],
        ),
        (
            endpoint(&format!("{url}timeout = \"10m\"")),
            vec![
                "endpoints.e.timeout: `10m` is out of range; a timeout is more than 0 and at most 5m",
            ],
        ),
        (
            endpoint(&format!("{url}retry = {{ schedule = [\"5s\", \"8d\"] }}")),
            vec!["endpoints.e.retry.schedule[1]: `8d` is longer than 7d, the longest step"],
        ),
        (
            endpoint(&format!("{url}retry = {{ schedule = [{}] }}", vec!["\"1s\""; 51].join(", "))),
            vec!["endpoints.e.retry.schedule: more than 50 steps"],
        ),
        (
            endpoint("url = \"https://user:pass@example.com/hook\""),
            vec!["endpoints.e.url: credentials in the URL are not allowed; use headers"],
        ),
        (
            endpoint(&format!("{url}max_in_flight = 4097")),
            vec!["endpoints.e.max_in_flight: `4097` is out of range 1..=4096"],
        ),
        (
            endpoint(&format!("url = \"https://example.com/{}\"", "a".repeat(2048))),
            vec!["endpoints.e.url: the URL is longer than 2048 bytes"],
        ),
        (
            endpoint(&format!("{url}headers = {{ \"x-long\" = \"{}\" }}", "v".repeat(4097))),
            vec!["endpoints.e.headers: the value of header `x-long` is longer than 4096 bytes"],
        ),
        (
            endpoint(&format!("{url}retry = \"fast\"")),
            vec![
                "endpoints.e.retry: `fast` is not a retry policy; expected `standard` or a schedule",
            ],
        ),
    ];
    for (text, expected) in table {
        assert_eq!(problems(&text), expected, "{text}");
    }
}

#[test]
fn ordered_by_takes_all_a_json_pointer_or_a_header() {
    let url = "url = \"https://example.com/hook\"\n";
    let table: Vec<(String, Vec<&str>)> = vec![
        (endpoint(&format!("{url}ordered_by = \"all\"")), vec![]),
        (endpoint(&format!("{url}ordered_by = {{ json = \"/customer/id\" }}")), vec![]),
        (endpoint(&format!("{url}ordered_by = {{ header = \"x-order-key\" }}")), vec![]),
        (
            endpoint(&format!("{url}ordered_by = {{ json = \"customer.id\" }}")),
            vec![
                "endpoints.e.ordered_by.json: `customer.id` is not a JSON pointer; expected `/` then keys, e.g. `/customer/id`",
            ],
        ),
        (
            endpoint(&format!("{url}ordered_by = {{ json = \"/id\", header = \"x-key\" }}")),
            vec!["endpoints.e.ordered_by: give either `json` or `header`, not both"],
        ),
        (
            endpoint(&format!("{url}ordered_by = {{ header = \"x key\" }}")),
            vec!["endpoints.e.ordered_by.header: `x key` is not a header name"],
        ),
        (
            endpoint(&format!("{url}ordered_by = \"customer\"")),
            vec![
                "endpoints.e.ordered_by: `customer` is not an ordering; expected `all`, `{ json = \"/pointer\" }` or `{ header = \"name\" }`",
            ],
        ),
        (
            endpoint(&format!("{url}ordered_by = {{ path = \"/id\" }}")),
            vec![
                "endpoints.e.ordered_by.path: unknown field `path`, expected one of `json`, `header`",
            ],
        ),
        (
            endpoint(&format!("{url}ordered_by = {{}}")),
            vec!["endpoints.e.ordered_by: give `json` or `header`"],
        ),
        (
            endpoint(&format!("{url}ordered_by = true")),
            vec!["endpoints.e.ordered_by: `true` is not an ordering"],
        ),
    ];
    for (text, expected) in table {
        assert_eq!(problems(&text), expected, "{text}");
    }
}

#[test]
fn keys_that_belong_to_another_type_are_named() {
    let table: Vec<(&str, Vec<&str>)> = vec![
        (
            "[sources.s]\ntype = \"api\"\nqueue_group = \"q\"\n",
            vec!["sources.s.queue_group: `queue_group` is only for `type = \"nats\"` sources"],
        ),
        (
            "[endpoints.e]\nurl = \"https://example.com/\"\njetstream = true\n[routes.all]\nto = [\"e\"]\n",
            vec!["endpoints.e.jetstream: `jetstream` is only for `type = \"nats\"` endpoints"],
        ),
        (
            "[nats]\nurl = \"nats://127.0.0.1:4222\"\n[endpoints.e]\ntype = \"nats\"\n\
             subject = \"audit.{type}\"\nurl = \"https://example.com/\"\n[routes.all]\nto = [\"e\"]\n",
            vec!["endpoints.e.url: `url` is only for `type = \"http\"` endpoints"],
        ),
    ];
    for (text, expected) in table {
        assert_eq!(problems(text), expected, "{text}");
    }
}

#[test]
fn sources_and_routes_report_every_problem() {
    let table: Vec<(&str, Vec<&str>)> = vec![
        (
            "[sources.s]\nevent_type = { json = \"type\" }\ndedupe = { header = \"bad header\" }\n",
            vec![
                "sources.s.event_type.json: `type` is not a JSON pointer; it starts with `/`",
                "sources.s.dedupe.header: `bad header` is not a header name",
            ],
        ),
        (
            "[sources.s]\nevent_type = { prefix = \"x.\", value = \"t\" }\n",
            vec!["sources.s.event_type.prefix: `prefix` goes with `header` only"],
        ),
        (
            "[sources.s]\nevent_type = { header = \"x-type\", json = \"/type\" }\n",
            vec![
                "sources.s.event_type: set exactly one of `header`, `json` or `value` (non-empty)",
            ],
        ),
        (
            "[sources.s]\ntype = \"nats\"\nsubject = \"a.b\"\njetstream = { stream = \"S\", \
             durable = \"d\", max_ack_pending = 0 }\n",
            vec![
                "sources.s.type: nats sources need a `[nats]` section",
                "sources.s.jetstream.max_ack_pending: `0` is out of range 1..=65536",
            ],
        ),
        (
            "[routes.r]\ntypes = [\"\"]\nfrom = [\"nope\"]\n",
            vec![
                "routes.r.from: unknown source `nope` (none is defined)",
                "routes.r.to: a route needs at least one endpoint",
                "routes.r.types[0]: an event-type pattern must not be empty",
            ],
        ),
    ];
    for (text, expected) in table {
        let found = problems(text);
        assert_eq!(found.len(), expected.len(), "{text}: {found:#?}");
        for line in expected {
            assert!(found.iter().any(|problem| problem.starts_with(line)), "{line} in {found:#?}");
        }
    }
}

#[test]
fn signing_keys_and_subject_templates_are_parsed_once_into_the_topology() {
    let text = "[nats]\nurl = \"nats://127.0.0.1:4222\"\n\
        [secrets]\nold = { env = \"SIGNING\" }\nnew = { env = \"UNPADDED\" }\n\
        [endpoints.hook]\nurl = \"https://example.com/\"\nsecrets = [\"new\", \"old\"]\n\
        [endpoints.audit]\ntype = \"nats\"\nsubject = \"audit.{source}.{type}\"\n\
        [routes.all]\nto = [\"hook\", \"audit\"]\n";
    let topology = load(text).unwrap();
    let hook = &topology.endpoints["hook"];
    assert_eq!(hook.secrets, ["new", "old"]);
    assert_eq!(hook.signing_keys.len(), 2);
    assert!(hook.signing_keys.iter().all(|key| key.version() == "v1"));
    let EndpointTarget::Nats { subject, .. } = &topology.endpoints["audit"].target else {
        panic!("a nats target");
    };
    let fields =
        SubjectFields { source: "github", event_type: "push", subject: None, metadata: &[] };
    assert_eq!(subject.render(&fields), "audit.github.push");
    assert_eq!(subject.to_string(), "audit.{source}.{type}");

    let broken = "[nats]\nurl = \"nats://127.0.0.1:4222\"\n[secrets]\nk = { env = \"NOT_A_KEY\" }\n\
        [endpoints.e]\ntype = \"nats\"\nsubject = \"audit.{nope}\"\nsecret = \"k\"\n";
    let found = problems(&format!("{broken}{ROUTE}"));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("endpoints.e.subject: `{nope}` is not a placeholder"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("endpoints.e.secrets: secret `k` is not a signing key"),
        "{found:#?}"
    );
}

/// One endpoint setting, written in the file and in a request.
struct Case {
    toml: &'static str,
    input: EndpointInput,
}

fn input(url: &str) -> EndpointInput {
    EndpointInput { url: url.to_owned(), ..EndpointInput::default() }
}

#[test]
fn the_file_and_the_admin_api_refuse_the_same_settings_in_the_same_words() {
    let url = "https://example.com/hook";
    let schedule = |steps: &[&str]| {
        Some(RetryInput::Schedule { schedule: steps.iter().map(|s| s.to_string()).collect() })
    };
    let cases = vec![
        Case {
            toml: "timeout = \"0s\"",
            input: EndpointInput { timeout: Some("0s".into()), ..input(url) },
        },
        Case {
            toml: "timeout = \"10m\"",
            input: EndpointInput { timeout: Some("10m".into()), ..input(url) },
        },
        Case {
            toml: "timeout = \"soon\"",
            input: EndpointInput { timeout: Some("soon".into()), ..input(url) },
        },
        Case {
            toml: "retry = { schedule = [\"8d\"] }",
            input: EndpointInput { retry: schedule(&["8d"]), ..input(url) },
        },
        Case {
            toml: "retry = \"fast\"",
            input: EndpointInput { retry: Some(RetryInput::Named("fast".into())), ..input(url) },
        },
        Case {
            toml: "headers = { \"webhook-id\" = \"x\", \"bad name\" = \"y\" }",
            input: EndpointInput {
                headers: BTreeMap::from([
                    ("webhook-id".into(), "x".into()),
                    ("bad name".into(), "y".into()),
                ]),
                ..input(url)
            },
        },
        Case {
            toml: "max_in_flight = 5000",
            input: EndpointInput { max_in_flight: Some(5000), ..input(url) },
        },
    ];
    let url_cases = [
        "https://user:secret@example.com/hook",
        "http://example.com/plain",
        "ftp://example.com/drop",
        "/relative",
    ];
    let mut all: Vec<(String, EndpointInput)> = cases
        .into_iter()
        .map(|case| (format!("url = \"{url}\"\n{}", case.toml), case.input))
        .collect();
    all.extend(url_cases.iter().map(|url| (format!("url = \"{url}\""), input(url))));
    for (settings, request) in all {
        let text = format!("[egress]\nhttps_only = true\n{}", endpoint(&settings));
        let file: Vec<String> = match load(&text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.into_iter().map(|error| error.message).collect(),
        };
        let topology = load("[egress]\nhttps_only = true\n").unwrap();
        let api: Vec<String> = match check_endpoint(&request, CheckContext { topology: &topology })
        {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|error| error.detail).collect(),
        };
        assert!(!file.is_empty(), "{settings} passed the file");
        assert_eq!(file, api, "{settings}");
    }
}

#[test]
fn the_store_section_defaults_to_sqlite_and_names_every_problem_at_once() {
    let topology = load("").unwrap();
    assert_eq!(topology.store, crate::config::StoreSettings::Sqlite);
    assert_eq!(
        problems(
            "[server]\ndurability = \"fsync\"\n\
             [store]\nbackend = \"jetstream\"\nreplicas = 7\nprefix = \"a.b\"\n\
             monitor_urls = [\"ftp://x\"]\n"
        ),
        [
            "store.replicas: `7` replicas: JetStream keeps 1 to 5 copies",
            "store.prefix: `a.b` cannot start stream names: use 1 to 32 letters, digits and `_`",
            "store.monitor_urls[0]: `ftp://x` is not an http:// or https:// URL",
            "store.backend: the `jetstream` backend needs a `[nats]` section naming the \
             cluster's servers",
        ]
    );
    assert_eq!(
        problems("[store]\nbackend = \"jetstream\"\n[nats]\nurl = \"nats://127.0.0.1:4222\"\n"),
        ["store.monitor_urls: `server.durability = \"fsync\"` with the `jetstream` backend \
             needs the servers' monitoring URLs, to check at start that each one runs \
             `sync_interval: always`; or set `server.durability = \"os\"` to accept the \
             servers' own setting"]
    );
    assert_eq!(
        problems("[store]\nbackend = \"etcd\"\nreplicas = 3\n"),
        [
            "store.backend: `etcd` is not a store backend; expected `sqlite` or `jetstream`",
            "store.replicas: only the `jetstream` backend uses it",
        ]
    );
}

#[test]
fn a_jetstream_store_takes_every_server_of_the_cluster() {
    let topology = load(
        "[server]\ndurability = \"os\"\n[store]\nbackend = \"jetstream\"\nprefix = \"sy_1\"\n\
         [nats]\nurls = [\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\"]\n",
    )
    .unwrap();
    let crate::config::StoreSettings::JetStream(store) = &topology.store else {
        panic!("{:?}", topology.store)
    };
    assert_eq!((store.replicas, store.prefix.as_str()), (3, "sy_1"));
    assert_eq!(store.snapshot_every, crate::config::DEFAULT_SNAPSHOT_EVERY);
    assert_eq!(store.snapshot_entries, crate::config::DEFAULT_SNAPSHOT_ENTRIES);
    let nats = topology.nats.as_ref().unwrap();
    assert_eq!(nats.url, "nats://127.0.0.1:4222");
    assert_eq!(nats.urls, ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]);
    assert_eq!(
        problems("[nats]\nurls = [\"http://x\"]\n"),
        ["nats.urls[0]: `http://x` is not a NATS URL (nats://, tls://, ws:// or wss://)"]
    );
    assert_eq!(problems("[nats]\n"), ["nats.url: missing field `url` (or `urls`)"]);
}

#[test]
fn snapshots_are_timed_and_counted_for_the_jetstream_store_only() {
    let cluster = "[server]\ndurability = \"os\"\n[nats]\nurl = \"nats://127.0.0.1:4222\"\n\
                   [store]\nbackend = \"jetstream\"\n";
    let topology =
        load(&format!("{cluster}snapshot_every = \"30s\"\nsnapshot_entries = 500\n")).unwrap();
    let crate::config::StoreSettings::JetStream(store) = &topology.store else {
        panic!("{:?}", topology.store)
    };
    assert_eq!(store.snapshot_every, std::time::Duration::from_secs(30));
    assert_eq!(store.snapshot_entries, 500);
    assert_eq!(
        problems(&format!("{cluster}snapshot_every = \"100ms\"\nsnapshot_entries = 0\n")),
        [
            "store.snapshot_every: `100ms` is too often: snapshots are at least `1s` apart",
            "store.snapshot_entries: `0` entries: must be at least 1",
        ]
    );
    assert_eq!(
        problems("[store]\nsnapshot_every = \"10m\"\nsnapshot_entries = 10\n"),
        [
            "store.snapshot_every: only the `jetstream` backend uses it",
            "store.snapshot_entries: only the `jetstream` backend uses it",
        ]
    );
}
