//! Table tests of what the admin API accepts for a dynamic endpoint and what it makes of it.

use std::path::Path;

use super::*;
use crate::config::ProcessEnvironment;

fn topology() -> Topology {
    let text = "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n[sources.github]\n";
    crate::config::parse(text, Path::new("."), &ProcessEnvironment).unwrap()
}

fn input(url: &str) -> EndpointInput {
    EndpointInput { url: url.to_owned(), ..EndpointInput::default() }
}

fn problems(input: &EndpointInput) -> Vec<(String, String)> {
    let topology = topology();
    match check_endpoint(input, CheckContext { topology: &topology }) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|error| (error.field, error.detail)).collect(),
    }
}

#[test]
fn a_good_request_becomes_settings_with_defaults() {
    let topology = topology();
    let request = EndpointInput {
        headers: BTreeMap::from([("X-Tenant".to_owned(), "acme".to_owned())]),
        retry: Some(RetryInput::Schedule { schedule: vec!["5s".into(), "1500ms".into()] }),
        sources: vec!["github".into()],
        types: vec!["github.*".into()],
        ..input("http://127.0.0.1:9/hook")
    };
    let settings = check_endpoint(&request, CheckContext { topology: &topology }).unwrap();
    assert_eq!(settings.headers, BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]));
    assert_eq!((settings.timeout_ms, settings.max_in_flight), (15_000, 16));
    assert_eq!(settings.retry_ms, Some(vec![5_000, 1_500]));
    let standard =
        check_endpoint(&input("https://example.com/"), CheckContext { topology: &topology });
    assert_eq!(standard.unwrap().retry_ms, None, "absent retry is the standard schedule");
}

#[test]
fn what_only_the_api_has_is_checked_field_by_field() {
    let table: Vec<(EndpointInput, Vec<(&str, &str)>)> = vec![
        (
            EndpointInput { sources: vec!["nope".into()], ..input("https://example.com/") },
            vec![("sources[0]", "`nope` is not a configured source")],
        ),
        (
            // The built-in source of operational events is never declared, yet subscribable.
            EndpointInput {
                sources: vec!["switchyard".into(), "github".into()],
                ..input("https://example.com/")
            },
            vec![],
        ),
        (
            EndpointInput {
                types: vec!["ok.*".into(), String::new()],
                ..input("https://example.com/")
            },
            vec![("types[1]", "an event-type pattern must not be empty, e.g. `github.*`")],
        ),
        (
            EndpointInput { description: Some("d".repeat(1025)), ..input("https://example.com/") },
            vec![("description", "longer than 1024 bytes")],
        ),
        (
            EndpointInput { sources: vec!["github".into(); 101], ..input("https://example.com/") },
            vec![("sources", "more than 100 entries")],
        ),
        (
            EndpointInput {
                secret: Some(SecretText("whpk_AAAA".into())),
                ..input("https://example.com/")
            },
            vec![(
                "secret",
                "a `whpk_` key is public and cannot sign; use the matching `whsk_` secret key",
            )],
        ),
        (
            EndpointInput {
                max_in_flight: Some(0),
                timeout: Some("0s".into()),
                ..input("http://10.0.0.1/")
            },
            vec![
                (
                    "url",
                    "`10.0.0.1` is not a public address (private) and is outside `egress.allow_networks`",
                ),
                ("max_in_flight", "`0` is out of range 1..=4096"),
                ("timeout", "`0s` is out of range; a timeout is more than 0 and at most 5m"),
            ],
        ),
    ];
    for (request, expected) in table {
        let found = problems(&request);
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(field, detail)| (field.to_owned(), detail.to_owned()))
            .collect();
        assert_eq!(found, expected, "{request:?}");
    }
    let filter = problems(&EndpointInput {
        filter: Some("body.amount >".into()),
        ..input("https://example.com/")
    });
    assert_eq!(filter.len(), 1);
    assert_eq!(filter[0].0, "filter");
}

#[test]
fn a_record_gives_the_workers_their_runtime_and_route() {
    let record = EndpointRecord {
        settings: EndpointSettings {
            url: "https://example.com/hook".into(),
            description: None,
            sources: vec!["github".into()],
            types: vec!["github.*".into()],
            filter: Some("body.ok == true".into()),
            headers: BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]),
            timeout_ms: 2_500,
            max_in_flight: 4,
            retry_ms: None,
            traffic: TrafficRecord::default(),
            ordered_by: None,
            tls: None,
        },
        keys: vec![
            KeyRecord { secret: generate_secret().unwrap(), created_at: 1, expires_at: None },
            KeyRecord {
                secret: SecretText("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into()),
                created_at: 0,
                expires_at: Some(10),
            },
        ],
        verification: None,
    };
    let runtime = record.runtime("ep_1").unwrap();
    assert_eq!(runtime.timeout, Duration::from_millis(2_500));
    assert_eq!(runtime.schedule.delays(), STANDARD_RETRY_DELAYS);
    assert_eq!(runtime.signing_keys.len(), 2);
    assert_eq!(runtime.signing_keys[1].expires_at, Some(10));
    let route = record.route("ep_1").unwrap();
    assert_eq!(
        (route.id.as_str(), route.endpoints.as_slice()),
        ("ep_1", ["ep_1".to_owned()].as_slice())
    );
    assert!(route.filter.is_some());
    assert_eq!(record.live_keys(9).count(), 2);
    assert_eq!(record.live_keys(10).count(), 1, "a key stops signing when its overlap ends");
}

#[test]
fn durations_and_headers_as_the_api_shows_them() {
    assert_eq!(format_duration(Duration::from_secs(15)), "15s");
    assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
    let headers = BTreeMap::from([
        ("Authorization".to_owned(), "Bearer x".to_owned()),
        ("x-api-key".to_owned(), "k".to_owned()),
        ("x-tenant".to_owned(), "acme".to_owned()),
    ]);
    let shown = shown_headers(&headers);
    assert_eq!(shown["Authorization"], "[redacted]");
    assert_eq!(shown["x-api-key"], "[redacted]");
    assert_eq!(shown["x-tenant"], "acme");
    assert!(new_endpoint_id().starts_with(ENDPOINT_ID_PREFIX));
    assert!(SigningKey::parse(&generate_secret().unwrap().0).is_ok());
}

#[test]
fn traffic_settings_are_checked_stored_and_read_back() {
    let topology = topology();
    let input = EndpointInput {
        url: "https://example.com/hook".into(),
        rate: Some("50/s".into()),
        burst: Some(5),
        breaker: Some(BreakerInput::Settings(BreakerSettingsInput {
            failures: Some(3),
            cooldown: Some("2s".into()),
            max_cooldown: None,
        })),
        adaptive: Some(false),
        disable_after: Some("off".into()),
        ..EndpointInput::default()
    };
    let settings = check_endpoint(&input, CheckContext { topology: &topology }).unwrap();
    let stored = serde_json::to_string(&settings).unwrap();
    let read: EndpointSettings = serde_json::from_str(&stored).unwrap();
    let traffic = read.traffic.settings().unwrap();
    assert_eq!(traffic.rate.unwrap().rate.to_string(), "50/s");
    assert_eq!(traffic.rate.unwrap().burst, 5);
    assert_eq!(traffic.breaker.unwrap().failures, 3);
    assert!(!traffic.adaptive && traffic.disable_after.is_none());
    // A record stored before traffic control reads as the defaults.
    let mut old: serde_json::Value = serde_json::from_str(&stored).unwrap();
    old.as_object_mut().unwrap().remove("traffic");
    let old: EndpointSettings = serde_json::from_value(old).unwrap();
    assert_eq!(
        old.traffic.settings().unwrap(),
        crate::traffic::endpoint::TrafficSettings::default()
    );
    // Wrong values name their fields.
    let wrong = EndpointInput {
        url: "https://example.com/hook".into(),
        rate: Some("lots".into()),
        breaker: Some(BreakerInput::Named("on".into())),
        ..EndpointInput::default()
    };
    let errors = check_endpoint(&wrong, CheckContext { topology: &topology }).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    assert_eq!(fields, ["rate", "breaker"]);
}

#[test]
fn a_record_without_a_check_is_verified_and_one_with_a_pending_check_waits() {
    use crate::store::lifecycle::Ownership;
    // Records stored before ownership checks existed read back as verified.
    let stored = r#"{"settings":{"url":"https://example.com/","description":null,"sources":[],
        "types":[],"filter":null,"headers":{},"timeout_ms":1000,"max_in_flight":1,
        "retry_ms":null},"keys":[]}"#;
    let mut record: EndpointRecord = serde_json::from_str(stored).unwrap();
    assert_eq!((record.ownership(), record.awaits_owner()), (Ownership::Verified, false));
    let check = new_verification(1_000, Duration::from_secs(2)).unwrap();
    assert_eq!((check.started_at, check.deadline), (1_000, 3_000));
    assert!(check.challenge.len() >= 32, "{} characters", check.challenge.len());
    assert!(!format!("{check:?}").contains(&check.challenge), "the challenge is never logged");
    record.verification = Some(check);
    assert_eq!((record.ownership(), record.awaits_owner()), (Ownership::PendingVerification, true));
    let text = serde_json::to_string(&record).unwrap();
    assert!(text.contains(r#""state":"pending_verification""#), "{text}");
}

#[test]
fn ordered_by_is_checked_by_the_shared_rule_and_kept() {
    let ordered = |ordered_by: OrderedByInput| EndpointInput {
        ordered_by: Some(ordered_by),
        ..input("https://example.com/")
    };
    let settings = |json: Option<&str>, header: Option<&str>| {
        OrderedByInput::Settings(OrderedBySettingsInput {
            json: json.map(str::to_owned),
            header: header.map(str::to_owned),
        })
    };
    let table = [
        (
            ordered(settings(Some("customer/id"), None)),
            vec![(
                "ordered_by.json",
                "`customer/id` is not a JSON pointer; expected `/` then keys, e.g. `/customer/id`",
            )],
        ),
        (
            ordered(settings(Some("/id"), Some("x-key"))),
            vec![("ordered_by", "give either `json` or `header`, not both")],
        ),
        (ordered(settings(None, None)), vec![("ordered_by", "give `json` or `header`")]),
        (
            ordered(OrderedByInput::Named("each".into())),
            vec![(
                "ordered_by",
                "`each` is not an ordering; expected `all`, `{ json = \"/pointer\" }` or `{ header = \"name\" }`",
            )],
        ),
    ];
    for (request, expected) in table {
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(field, detail)| (field.to_owned(), detail.to_owned()))
            .collect();
        assert_eq!(problems(&request), expected, "{request:?}");
    }
    let topology = topology();
    let request = ordered(settings(None, Some("X-Order-Key")));
    let checked = check_endpoint(&request, CheckContext { topology: &topology }).unwrap();
    assert_eq!(checked.ordered_by, Some(OrderedBy::Header("x-order-key".into())));
    // Stored as written, read back the same.
    let stored = serde_json::to_value(&checked).unwrap();
    assert_eq!(stored["ordered_by"], serde_json::json!({"header": "x-order-key"}));
    let read: EndpointSettings = serde_json::from_value(stored).unwrap();
    assert_eq!(read.ordered_by, checked.ordered_by);
    let all = ordered(OrderedByInput::Named("all".into()));
    let checked = check_endpoint(&all, CheckContext { topology: &topology }).unwrap();
    assert_eq!(serde_json::to_value(&checked).unwrap()["ordered_by"], "all");
}
