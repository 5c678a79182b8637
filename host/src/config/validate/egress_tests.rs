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

/// A CA certificate, a client certificate it signed, that certificate's key, and another key.
struct Pem {
    ca: String,
    client_cert: String,
    client_key: String,
    other_key: String,
}

fn pem() -> Pem {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["switchyard".to_owned()]).unwrap();
    let client_cert = params.signed_by(&client_key, &issuer).unwrap().pem();
    Pem {
        ca,
        client_cert,
        client_key: client_key.serialize_pem(),
        other_key: KeyPair::generate().unwrap().serialize_pem(),
    }
}

fn with_files(files: &[(&str, &str)]) -> Fixed {
    let mut environment = environment();
    for (name, text) in files {
        environment.files.insert(PathBuf::from(name), text.as_bytes().to_vec());
    }
    environment
}

fn endpoint_with(url: &str, tls: &str) -> String {
    format!(
        "[egress]\nallow_networks = [\"127.0.0.0/8\"]\n[secrets]\nstore = {{ env = \"STORE_KEY\" }}\n\
         [endpoints.billing]\nurl = \"{url}\"\ntls = {tls}\n"
    )
}

#[test]
fn endpoint_tls_is_read_and_checked_with_every_problem_at_once() {
    let pem = pem();
    let environment = with_files(&[
        ("ca.pem", &pem.ca),
        ("client.pem", &pem.client_cert),
        ("client.key", &pem.client_key),
        ("other.key", &pem.other_key),
        ("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"),
    ]);
    let good =
        "{ ca = \"ca.pem\", client_cert = \"client.pem\", client_key = { file = \"client.key\" } }";
    let topology = load(&endpoint_with("https://127.0.0.1:8443/hook", good), &environment).unwrap();
    let tls = topology.endpoints["billing"].tls.as_ref().expect("tls settings");
    assert!(tls.has_ca() && tls.has_client_cert());
    assert_eq!(format!("{tls:?}"), "EndpointTls { ca: true, client_cert: true }");

    let table: [(&str, &str, Vec<&str>); 6] = [
        (
            "https://127.0.0.1/",
            "{ ca = \"missing.pem\", client_cert = \"client.key\", client_key = { file = \"nope.key\" } }",
            vec![
                "endpoints.billing.tls.ca: cannot read `missing.pem`: No such file or directory (os error 2)",
                "endpoints.billing.tls.client_key: cannot read secret file `nope.key`: No such file or directory (os error 2)",
                // What could be read is still checked.
                "endpoints.billing.tls.client_cert: the file holds a private key",
            ],
        ),
        (
            "https://127.0.0.1/",
            "{ ca = \"garbage.pem\", client_cert = \"client.key\", client_key = { file = \"ca.pem\" } }",
            vec![
                "endpoints.billing.tls.ca: the file is not valid PEM: a section has no \
                 `-----END CERTIFICATE-----` line",
                "endpoints.billing.tls.client_cert: the file holds a private key; give it as \
                 `client_key`, a secret",
                "endpoints.billing.tls.client_key: the key holds no PEM private key \
                 (`-----BEGIN PRIVATE KEY-----`, PKCS#8; or PKCS#1 RSA, or SEC1 EC)",
            ],
        ),
        (
            "https://127.0.0.1/",
            "{ client_cert = \"client.pem\" }",
            vec!["endpoints.billing.tls.client_key: `client_cert` needs its `client_key`"],
        ),
        (
            "https://127.0.0.1/",
            "{ client_cert = \"client.pem\", client_key = { file = \"other.key\" } }",
            vec![
                "endpoints.billing.tls.client_key: the key does not fit `client_cert`, or is refused",
            ],
        ),
        (
            "http://127.0.0.1/",
            "{ ca = \"ca.pem\" }",
            vec![
                "endpoints.billing.tls: `tls` applies to `https` URLs; the URL's scheme is `http`",
            ],
        ),
        (
            "https://127.0.0.1/",
            "{}",
            vec!["endpoints.billing.tls: set `ca`, or `client_cert` and `client_key`, or both"],
        ),
    ];
    for (url, tls, expected) in table {
        let found = problems(&endpoint_with(url, tls), &environment);
        assert_eq!(found.len(), expected.len(), "{tls}: {found:#?}");
        for (found, expected) in found.iter().zip(&expected) {
            assert!(
                found.starts_with(expected),
                "{tls}:\n  found    {found}\n  expected {expected}"
            );
        }
    }
    // Only for http endpoints.
    let nats = "[nats]\nurl = \"nats://127.0.0.1:4222\"\n[endpoints.audit]\ntype = \"nats\"\n\
                subject = \"audit\"\ntls = { ca = \"ca.pem\" }\n";
    assert_eq!(
        problems(nats, &environment),
        vec!["endpoints.audit.tls: `tls` is only for `type = \"http\"` endpoints".to_owned()]
    );
}

#[test]
fn the_proxy_is_an_http_url_and_no_proxy_needs_it() {
    let environment = environment();
    let topology = load(
        "[egress]\nproxy = \"http://proxy.internal:3128\"\nno_proxy = [\"billing.internal\", \"10.0.0.0/8\"]\n",
        &environment,
    )
    .unwrap();
    let proxy = topology.egress.proxy.expect("a proxy");
    assert_eq!(proxy.url.as_str(), "http://proxy.internal:3128/");
    assert_eq!(proxy.no_proxy, ["billing.internal", "10.0.0.0/8"]);

    let table: [(&str, Vec<&str>); 5] = [
        (
            "proxy = \"http://user:secret@proxy:3128/path\"\nno_proxy = [\"\", \"a b\"]",
            vec![
                "egress.proxy: `http://user:secret@proxy:3128/path`: credentials in the proxy URL are not supported",
                "egress.proxy: `http://user:secret@proxy:3128/path`: a proxy URL has no path, query or fragment",
                "egress.no_proxy[0]: `` is not a host name, address or network",
                "egress.no_proxy[1]: `a b` is not a host name, address or network",
            ],
        ),
        (
            "proxy = \"https://proxy:3128\"",
            vec!["egress.proxy: `https://proxy:3128`: the scheme is `https`; a proxy is `http://`"],
        ),
        (
            "proxy = \"proxy:3128\"",
            vec!["egress.proxy: `proxy:3128`: the scheme is `proxy`; a proxy is `http://`"],
        ),
        (
            "proxy = \"not a url\"",
            vec!["egress.proxy: `not a url` is not a URL: relative URL without a base"],
        ),
        (
            "no_proxy = [\"billing.internal\"]",
            vec![
                "egress.no_proxy: `no_proxy` lists targets that bypass `proxy`, and there is no `proxy`",
            ],
        ),
    ];
    for (egress, expected) in table {
        let found = problems(&format!("[egress]\n{egress}\n"), &environment);
        assert_eq!(found, expected, "{egress}");
    }
}
