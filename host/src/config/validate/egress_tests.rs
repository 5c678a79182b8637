//! Table tests of the egress-side keys: `server.store_key` (and, below, endpoint TLS and
//! `egress.proxy`), every problem reported at once with its path.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{ConfigErrors, Environment, Topology, parse};

/// Variables and files held in memory.
#[derive(Default)]
struct Fixed {
    variables: BTreeMap<String, String>,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl Environment for Fixed {
    fn var(&self, name: &str) -> Option<String> {
        self.variables.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files.get(path).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "No such file or directory (os error 2)")
        })
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(path)
    }
}

fn environment() -> Fixed {
    let variables = [
        // 32 bytes, 16 bytes, and not base64.
        ("STORE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        ("SHORT_KEY", "AAECAwQFBgcICQoLDA0ODw=="),
        ("NOT_A_KEY", "hunter2!"),
    ];
    Fixed {
        variables: variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        files: BTreeMap::new(),
    }
}

fn load(text: &str, environment: &Fixed) -> Result<Topology, ConfigErrors> {
    parse(text, Path::new(""), environment)
}

fn problems(text: &str, environment: &Fixed) -> Vec<String> {
    match load(text, environment) {
        Ok(_) => Vec::new(),
        Err(errors) => {
            errors.0.iter().map(|error| format!("{}: {}", error.path, error.message)).collect()
        }
    }
}

#[test]
fn the_store_key_is_a_secret_of_32_bytes_in_base64() {
    let environment = environment();
    let topology = load(
        "[server]\nstore_key = \"store\"\n[secrets]\nstore = { env = \"STORE_KEY\" }\n",
        &environment,
    )
    .unwrap();
    let key = topology.server.store_key.expect("a store key");
    assert_eq!((key.name(), key.id().len()), ("store", 16));
    assert!(load("", &environment).unwrap().server.store_key.is_none());

    let table = [
        (
            "[server]\nstore_key = \"missing\"\n[secrets]\nstore = { env = \"STORE_KEY\" }\n",
            "server.store_key: unknown secret `missing` (defined: `store`)",
        ),
        (
            "[server]\nstore_key = \"short\"\n[secrets]\nshort = { env = \"SHORT_KEY\" }\n",
            "server.store_key: secret `short` holds 16 bytes after base64 decoding; a store key is 32",
        ),
        (
            "[server]\nstore_key = \"text\"\n[secrets]\ntext = { env = \"NOT_A_KEY\" }\n",
            "server.store_key: secret `text` is not base64 (expected 32 random bytes in base64)",
        ),
    ];
    for (text, expected) in table {
        assert_eq!(problems(text, &environment), vec![expected.to_owned()], "{text}");
    }
    // An unreadable secret is reported once, where it is defined.
    assert_eq!(
        problems(
            "[server]\nstore_key = \"file\"\n[secrets]\nfile = { file = \"key.b64\" }\n",
            &environment
        ),
        vec![
            "secrets.file: cannot read secret file `key.b64`: No such file or directory (os error 2)"
                .to_owned()
        ]
    );
}
