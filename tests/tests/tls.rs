//! HTTPS ingest (`server.tls`) against the real binary on loopback, with a test CA made here:
//! TLS 1.3 and 1.2, HTTP/2 by ALPN, plain HTTP refused, client certificates optional or
//! required, a source limited to one subject, certificates replaced on SIGHUP while an open
//! connection keeps working, the admin listener over TLS, and the CLI finding it from the
//! config and presenting a client certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use reqwest::StatusCode;
use switchyard_e2e::{TestHost, run_cli};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// The name the server certificate is for; the clients resolve it to the router's address.
const SERVER_NAME: &str = "switchyard.test";
const SOURCES: &str = "[sources.hooks]\n\n[sources.billing]\n\
                       client_cert = { subjects = [\"CN=billing\"] }\n";

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn authority(name: &str) -> Issuer {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate and key (PEM) signed by `issuer`.
fn issue(issuer: &Issuer, common_name: &str, purpose: ExtendedKeyUsagePurpose) -> (String, String) {
    let names = if purpose == ExtendedKeyUsagePurpose::ServerAuth {
        vec![SERVER_NAME.to_owned()]
    } else {
        Vec::new()
    };
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().unwrap();
    let certificate = params.signed_by(&key, issuer).unwrap();
    (certificate.pem(), key.serialize_pem())
}

/// The files the router reads: its certificate and key, and the client CA.
struct Files {
    directory: tempfile::TempDir,
}

impl Files {
    fn new(server_ca: &Issuer, client_ca: &Issuer) -> Self {
        let files = Self { directory: tempfile::tempdir().unwrap() };
        files.serve(server_ca);
        std::fs::write(files.path("ca.pem"), client_ca.pem()).unwrap();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    /// Writes a new server certificate signed by `issuer`.
    fn serve(&self, issuer: &Issuer) {
        let (certificate, key) = issue(issuer, SERVER_NAME, ExtendedKeyUsagePurpose::ServerAuth);
        std::fs::write(self.path("cert.pem"), certificate).unwrap();
        std::fs::write(self.path("key.pem"), key).unwrap();
    }

    fn server_extra(&self, client_auth: &str) -> String {
        let path = |name: &str| self.path(name).display().to_string();
        format!(
            "tls = {{ cert = \"{}\", key = \"{}\", client_ca = \"{}\", client_auth = \"{client_auth}\" }}",
            path("cert.pem"),
            path("key.pem"),
            path("ca.pem")
        )
    }
}

fn client(host: &TestHost, trusted: &Issuer, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(trusted.pem().as_bytes()).unwrap()])
        .resolve(SERVER_NAME, host.address)
        .timeout(Duration::from_secs(30));
    if let Some((certificate, key)) = identity {
        let pem = format!("{certificate}\n{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn url(host: &TestHost, source: &str) -> String {
    format!("https://{SERVER_NAME}:{}/webhooks/{source}", host.address.port())
}

async fn post(
    client: &reqwest::Client,
    host: &TestHost,
    source: &str,
) -> reqwest::Result<reqwest::Response> {
    client.post(url(host, source)).body(r#"{"type":"tls.test"}"#).send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_ingest_with_optional_client_certificates_and_a_subject_limited_source() {
    let (server_ca, client_ca) = (authority("server ca"), authority("client ca"));
    let files = Files::new(&server_ca, &client_ca);
    let host = TestHost::start(&files.server_extra("optional"), SOURCES).await.unwrap();

    // No client certificate: accepted where the source does not ask for one, over HTTP/2.
    let anonymous = client(&host, &server_ca, None);
    let answer = post(&anonymous, &host, "hooks").await.unwrap();
    assert_eq!(
        (answer.status(), answer.version()),
        (StatusCode::ACCEPTED, reqwest::Version::HTTP_2)
    );
    // TLS 1.2 too.
    let older = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap()])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .resolve(SERVER_NAME, host.address)
        .build()
        .unwrap();
    assert_eq!(post(&older, &host, "hooks").await.unwrap().status(), StatusCode::ACCEPTED);

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .post(format!("http://{}/webhooks/hooks", host.address))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // The billing source: its subject accepted, another subject or none refused.
    let (billing_certificate, billing_key) =
        issue(&client_ca, "billing", ExtendedKeyUsagePurpose::ClientAuth);
    let billing = client(&host, &server_ca, Some((&billing_certificate, &billing_key)));
    assert_eq!(post(&billing, &host, "billing").await.unwrap().status(), StatusCode::ACCEPTED);
    let (other_certificate, other_key) =
        issue(&client_ca, "other", ExtendedKeyUsagePurpose::ClientAuth);
    let other = client(&host, &server_ca, Some((&other_certificate, &other_key)));
    let refused = post(&other, &host, "billing").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "client_certificate_refused");
    assert_eq!(
        body["detail"],
        "source `billing` accepts client certificates with subject `CN=billing`, not `CN=other`"
    );
    let refused = post(&anonymous, &host, "billing").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A certificate from a CA the router does not trust fails the handshake.
    let stranger_ca = authority("stranger ca");
    let (stranger_certificate, stranger_key) =
        issue(&stranger_ca, "billing", ExtendedKeyUsagePurpose::ClientAuth);
    let stranger = client(&host, &server_ca, Some((&stranger_certificate, &stranger_key)));
    assert!(post(&stranger, &host, "billing").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_refuses_clients_without_one() {
    let (server_ca, client_ca) = (authority("server ca"), authority("client ca"));
    let files = Files::new(&server_ca, &client_ca);
    let host = TestHost::start(&files.server_extra("required"), SOURCES).await.unwrap();
    let anonymous = client(&host, &server_ca, None);
    let refused = post(&anonymous, &host, "hooks").await;
    assert!(refused.is_err(), "a client without a certificate was answered: {refused:?}");
    let (certificate, key) = issue(&client_ca, "other", ExtendedKeyUsagePurpose::ClientAuth);
    let identified = client(&host, &server_ca, Some((&certificate, &key)));
    assert_eq!(post(&identified, &host, "hooks").await.unwrap().status(), StatusCode::ACCEPTED);
}

/// One HTTP/1.1 request on an open TLS stream; answers the status code.
async fn request_on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> u16 {
    let body = r#"{"type":"tls.reload"}"#;
    let head = format!(
        "POST /webhooks/hooks HTTP/1.1\r\nhost: {SERVER_NAME}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

async fn open_tls(
    host: &TestHost,
    trusted: &Issuer,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(host.address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_after_sighup_and_open_connections_go_on() {
    let (first_ca, client_ca) = (authority("first ca"), authority("client ca"));
    let files = Files::new(&first_ca, &client_ca);
    let host = TestHost::start(&files.server_extra("optional"), SOURCES).await.unwrap();
    let mut open = open_tls(&host, &first_ca).await;
    assert_eq!(request_on(&mut open).await, 202);

    let second_ca = authority("second ca");
    files.serve(&second_ca);
    std::process::Command::new("kill").arg("-HUP").arg(host.pid().to_string()).status().unwrap();
    let logs = host.logs.clone();
    let reloaded = tokio::task::spawn_blocking(move || {
        logs.wait_for(Duration::from_secs(30), |line| {
            line.contains("config reloaded").then_some(())
        })
    });
    assert!(reloaded.await.unwrap().is_some(), "no reload in the log");

    // New connections get the new certificate: trusted by the second CA only.
    let second = client(&host, &second_ca, None);
    assert_eq!(post(&second, &host, "hooks").await.unwrap().status(), StatusCode::ACCEPTED);
    let first = client(&host, &first_ca, None);
    assert!(post(&first, &host, "hooks").await.is_err(), "the old certificate is still served");
    // The connection opened before the reload still works.
    assert_eq!(request_on(&mut open).await, 202);
}

/// `server.admin_listen` speaks TLS with the same certificate: the admin API over HTTPS
/// there, and plain HTTP to it gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_serves_tls_too() {
    let (server_ca, client_ca) = (authority("server ca"), authority("client ca"));
    let files = Files::new(&server_ca, &client_ca);
    let server_extra = format!(
        "{}\nadmin_listen = \"127.0.0.1:0\"\nadmin_token = {{ value = \"tls-admin\" }}",
        files.server_extra("optional")
    );
    let host = TestHost::start(&server_extra, SOURCES).await.unwrap();
    let admin = host.admin_address().await;
    let secure = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap()])
        .resolve(SERVER_NAME, admin)
        .build()
        .unwrap();
    let answer = secure
        .get(format!("https://{SERVER_NAME}:{}/v1/admin/endpoints", admin.port()))
        .bearer_auth("tls-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let plain = reqwest::Client::new()
        .get(format!("http://{admin}/v1/admin/endpoints"))
        .bearer_auth("tls-admin")
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered on the admin listener: {plain:?}");
}

/// Without `--url`, `switchyard reload` and `replay` call the admin API where the config puts
/// it: on `server.admin_listen`, over HTTPS, trusting the configured self-signed certificate
/// and asking for the name it is for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_finds_the_admin_listener_over_tls_from_the_config() {
    let directory = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).unwrap();
    let certificate = params.self_signed(&key).unwrap();
    let (cert, key_path) = (directory.path().join("cert.pem"), directory.path().join("key.pem"));
    std::fs::write(&cert, certificate.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let server_extra = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}\nadmin_listen = \"127.0.0.1:0\"\n\
         admin_token = {{ value = \"tls-admin\" }}",
        cert.display(),
        key_path.display()
    );
    let host = TestHost::start(&server_extra, "[sources.hooks]\n").await.unwrap();
    let admin = host.admin_address().await;
    write_cli_config(&host, Some(admin));

    let reload = run_cli(&host.config_dir(), &["reload", "-c", "cli.toml"], &[]);
    assert_eq!(reload.code, Some(0), "{}", reload.stderr);
    assert!(reload.stdout.starts_with("config reloaded: 0 routes"), "{}", reload.stdout);
    let replay = run_cli(&host.config_dir(), &["replay", "-c", "cli.toml", "--dry-run"], &[]);
    assert_eq!(replay.code, Some(0), "{}", replay.stderr);
    assert_eq!(replay.stdout, "would replay 0 deliveries\n");
}

/// Writes `cli.toml`, a copy of the router's config holding the ports it took, for the CLI.
fn write_cli_config(host: &TestHost, admin: Option<std::net::SocketAddr>) {
    let mut config = std::fs::read_to_string(host.config_dir().join("switchyard.toml")).unwrap();
    if let Some(admin) = admin {
        config = config
            .replace("admin_listen = \"127.0.0.1:0\"", &format!("admin_listen = \"{admin}\""));
    }
    let config =
        config.replace("\nlisten = \"127.0.0.1:0\"", &format!("\nlisten = \"{}\"", host.address));
    std::fs::write(host.config_dir().join("cli.toml"), config).unwrap();
}

/// A router that requires client certificates: `reload` without one says which flags to pass,
/// and with `--client-cert` and `--client-key` it goes through, as does `replay`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_presents_a_client_certificate_where_the_router_requires_one() {
    let (server_ca, client_ca) = (authority("server ca"), authority("client ca"));
    let files = Files::new(&server_ca, &client_ca);
    // The router serves its chain; the CLI trusts what `server.tls.cert` holds, the CA included.
    let leaf = std::fs::read_to_string(files.path("cert.pem")).unwrap();
    std::fs::write(files.path("cert.pem"), format!("{leaf}{}", server_ca.pem())).unwrap();
    let server_extra =
        format!("{}\nadmin_token = {{ value = \"tls-admin\" }}", files.server_extra("required"));
    let host = TestHost::start(&server_extra, "[sources.hooks]\n").await.unwrap();
    write_cli_config(&host, None);

    let anonymous = run_cli(&host.config_dir(), &["reload", "-c", "cli.toml"], &[]);
    assert_eq!(anonymous.code, Some(1), "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("pass one with `--client-cert` and `--client-key`"),
        "{}",
        anonymous.stderr
    );

    let (certificate, key) = issue(&client_ca, "operator", ExtendedKeyUsagePurpose::ClientAuth);
    std::fs::write(files.path("operator.pem"), certificate).unwrap();
    std::fs::write(files.path("operator.key"), key).unwrap();
    let (certificate, key) = (files.path("operator.pem"), files.path("operator.key"));
    let identity = ["--client-cert", certificate.to_str().unwrap(), "--client-key"];
    let identity = [&identity[..], &[key.to_str().unwrap()]].concat();
    let reload =
        run_cli(&host.config_dir(), &[&["reload", "-c", "cli.toml"], &identity[..]].concat(), &[]);
    assert_eq!(reload.code, Some(0), "{}", reload.stderr);
    assert!(reload.stdout.starts_with("config reloaded: 0 routes"), "{}", reload.stdout);
    let replay = ["replay", "-c", "cli.toml", "--dry-run"];
    let replay = run_cli(&host.config_dir(), &[&replay[..], &identity[..]].concat(), &[]);
    assert_eq!(replay.code, Some(0), "{}", replay.stderr);

    let half =
        run_cli(&host.config_dir(), &["reload", "-c", "cli.toml", "--client-cert", "x.pem"], &[]);
    assert_eq!(half.code, Some(2), "a certificate without its key is a usage error");
}
