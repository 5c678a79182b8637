//! `switchyard.toml` parsing and validation: any text gives a topology or a list of errors,
//! each saying what is wrong, and never a panic. No file or variable of this machine is read.

use std::io;
use std::path::Path;

use switchyard::config::{self, Environment};

use crate::{Target, hash_of, outcome_of};

pub const TARGET: Target = Target {
    name: "config",
    run,
    dictionary: &[
        "[server]\n",
        "[egress]\n",
        "[nats]\n",
        "[secrets]\n",
        "[sources.a]\n",
        "[endpoints.b]\n",
        "[routes.c]\n",
        "[plugins.d]\n",
        "[telemetry.otlp]\n",
        "listen = ",
        "retention = ",
        "audit_retention = ",
        "verify_endpoints = true\n",
        "verify_timeout = ",
        "max_body = ",
        "admin_token = { value = \"t\" }\n",
        "{ env = \"X\" }",
        "{ file = \"f\" }",
        "url = ",
        "\"http://127.0.0.1:1/\"",
        "from = [\"a\"]\n",
        "to = [\"b\"]\n",
        "filter = ",
        "\"1d\"",
        "\"1MiB\"",
        "type = \"http\"\n",
        "type = \"nats\"\n",
        "subject = ",
        "retry = ",
        "timeout = ",
        "allow_networks = [\"10.0.0.0/8\"]\n",
        "dedupe = { header = \"x\" }\n",
        "event_type = ",
        "secret = ",
        "secrets = [",
        "headers = {",
        "on_error = ",
        "\"dead-letter\"",
        "\n",
        "= ",
        "\"",
    ],
    max_len: 4096,
};

/// Every variable is set (to a short value) and no file exists.
struct NoMachine;

impl Environment for NoMachine {
    fn var(&self, name: &str) -> Option<String> {
        (!name.is_empty()).then(|| format!("value-of-{name}"))
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        Err(io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn is_file(&self, _path: &Path) -> bool {
        false
    }
}

fn run(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    match config::parse(&text, Path::new("."), &NoMachine) {
        Ok(topology) => {
            hash_of(("ok", topology.sources.len(), topology.endpoints.len(), topology.routes.len()))
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused config names at least one error");
            let first = &errors.0[0];
            assert!(!first.message.is_empty(), "an error says what is wrong: {first:?}");
            // The section and depth of the path, not the ids in it.
            let section = first.path.split('.').next().unwrap_or_default();
            let known = [
                "server",
                "egress",
                "nats",
                "secrets",
                "plugins",
                "sources",
                "endpoints",
                "routes",
                "telemetry",
            ];
            let section = known.iter().find(|known| **known == section);
            let depth = first.path.split('.').count();
            // A TOML error shows the input first and its reason on the last line.
            let reason = first.message.lines().next_back().unwrap_or_default();
            hash_of((errors.0.len().min(4), section, depth, outcome_of(reason)))
        }
    }
}
