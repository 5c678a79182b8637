//! Admin API bodies: any bytes for a new endpoint, a subscription or a replay are read and
//! checked field by field; accepted endpoint settings always give a runnable worker and route.

use std::path::Path;
use std::sync::OnceLock;

use switchyard::admin::ReplayRequest;
use switchyard::admin::model::{
    self, CheckContext, EndpointInput, EndpointRecord, SubscriptionInput,
};
use switchyard::config::{self, ProcessEnvironment, Topology};

use crate::{Target, hash_of};

pub const TARGET: Target = Target {
    name: "admin_json",
    run,
    dictionary: &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"url\"",
        "\"https://example.com/hook\"",
        "\"http://127.0.0.1/\"",
        "\"http://10.0.0.1/\"",
        "\"sources\"",
        "\"types\"",
        "\"filter\"",
        "\"headers\"",
        "\"timeout\"",
        "\"max_in_flight\"",
        "\"retry\"",
        "\"schedule\"",
        "\"standard\"",
        "\"secret\"",
        "\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
        "\"description\"",
        "\"app\"",
        "\"order.*\"",
        "\"15s\"",
        "\"1d\"",
        "\"since\"",
        "\"until\"",
        "\"endpoint\"",
        "\"dry_run\"",
        "true",
        "null",
        "-1",
        "\"body.a == 1\"",
        "\"authorization\"",
        "\"host\"",
    ],
    max_len: 4096,
};

fn topology() -> &'static Topology {
    static TOPOLOGY: OnceLock<Topology> = OnceLock::new();
    TOPOLOGY.get_or_init(|| {
        let text = "[sources.app]\ntype = \"http\"\n[sources.billing]\ntype = \"http\"\n";
        config::parse(text, Path::new("."), &ProcessEnvironment).expect("the fuzz config is valid")
    })
}

/// The first byte picks the body's kind; the rest is the body.
fn run(input: &[u8]) -> u64 {
    let Some((&kind, body)) = input.split_first() else { return 0 };
    let input = match kind % 3 {
        0 => serde_json::from_slice::<EndpointInput>(body),
        1 => serde_json::from_slice::<SubscriptionInput>(body).map(EndpointInput::from),
        _ => {
            let replay = serde_json::from_slice::<ReplayRequest>(body);
            let outcome = replay.map(drop).map_err(|error| format!("{:?}", error.classify()));
            return hash_of(("replay", outcome));
        }
    };
    let input = match input {
        Ok(input) => input,
        Err(error) => return hash_of(("unreadable", format!("{:?}", error.classify()))),
    };
    match model::check_endpoint(&input, CheckContext { topology: topology() }) {
        Ok(settings) => {
            let record = EndpointRecord { settings, keys: Vec::new(), verification: None };
            let runtime = record.runtime("ep_fuzz");
            assert!(runtime.is_ok(), "accepted settings do not run: {runtime:?}");
            let route = record.route("ep_fuzz");
            assert!(route.is_ok(), "accepted settings give no route: {:?}", route.err());
            hash_of("accepted")
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal names a field");
            // The top-level field, not the keys or indexes the input put under it.
            let top = |field: &str| field.split(['.', '[']).next().unwrap_or_default().to_owned();
            let fields: Vec<String> =
                errors.iter().take(3).map(|error| top(&error.field)).collect();
            hash_of(("refused", fields))
        }
    }
}
