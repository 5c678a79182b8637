//! What the egress tests share: a test CA with a server and client certificates (rcgen), an
//! HTTPS receiver on loopback (tokio-rustls) that demands a client certificate from that CA,
//! records what arrives, and answers 200; and a CONNECT proxy on 127.0.0.1 that counts what it
//! is asked and tunnels to loopback targets only.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// PEM text of one certificate and its key.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// A CA with a server certificate for `127.0.0.1` and `127.0.0.2` and a client certificate
/// (`CN=switchyard`),
/// plus a second, unrelated CA, written as files into a directory of their own.
pub struct TestPki {
    pub ca: String,
    pub server: Pair,
    pub client: Pair,
    /// A CA that signed nothing here.
    pub other_ca: String,
    pub directory: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let (ca, issuer) = new_ca("Switchyard test CA");
        let (other_ca, _) = new_ca("Another test CA");
        let server = leaf(&issuer, "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf(&issuer, "switchyard", ExtendedKeyUsagePurpose::ClientAuth);
        let directory = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("ca.pem", &ca),
            ("other-ca.pem", &other_ca),
            ("client.pem", &client.cert),
            ("client.key", &client.key),
        ] {
            std::fs::write(directory.path().join(name), text).unwrap();
        }
        Self { ca, server, client, other_ca, directory }
    }

    /// The absolute path of one of the written files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), Issuer::new(params, key))
}

fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str, usage: ExtendedKeyUsagePurpose) -> Pair {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    if let Ok(address) = name.parse::<IpAddr>() {
        params.subject_alt_names.push(SanType::IpAddress(address));
        params.subject_alt_names.push(SanType::IpAddress(Ipv4Addr::new(127, 0, 0, 2).into()));
    }
    params.extended_key_usages = vec![usage];
    let certificate = params.signed_by(&key, issuer).unwrap();
    Pair { cert: certificate.pem(), key: key.serialize_pem() }
}

/// One request as the receiver read it.
#[derive(Debug)]
pub struct TlsRequest {
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTPS receiver on 127.0.0.1 that requires a client certificate issued by the test CA.
pub struct TlsReceiver {
    pub address: SocketAddr,
    requests: mpsc::UnboundedReceiver<TlsRequest>,
    server: tokio::task::JoinHandle<()>,
}

impl TlsReceiver {
    pub async fn start(pki: &TestPki) -> Self {
        Self::start_on(pki, Ipv4Addr::LOCALHOST).await
    }

    /// On another loopback address (the whole of 127.0.0.0/8 is loopback).
    pub async fn start_on(pki: &TestPki, ip: Ipv4Addr) -> Self {
        assert!(ip.is_loopback(), "tests listen on loopback only");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate_der(&pki.ca)).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![certificate_der(&pki.server.cert)], key_der(&pki.server.key))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, requests) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    // A handshake without a client certificate fails here: nothing is recorded.
                    let Ok(mut stream) = acceptor.accept(stream).await else { return };
                    while let Some(request) = read_request(&mut stream).await {
                        let _ = sender.send(request);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { address, requests, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }

    pub async fn next(&mut self, timeout: std::time::Duration) -> Option<TlsRequest> {
        tokio::time::timeout(timeout, self.requests.recv()).await.ok().flatten()
    }

    pub fn drain(&mut self) -> Vec<TlsRequest> {
        let mut requests = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            requests.push(request);
        }
        requests
    }
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A CONNECT proxy on 127.0.0.1: records every request line it is sent, tunnels `CONNECT`s
/// to loopback addresses (and refuses anything else with 403), answers other methods 405.
pub struct ConnectProxy {
    pub address: SocketAddr,
    asked: Arc<std::sync::Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl ConnectProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = asked.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(tunnel(stream, record.clone()));
            }
        });
        Self { address, asked, server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The request lines received so far, e.g. `CONNECT 127.0.0.2:4433 HTTP/1.1`.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    pub fn connects(&self) -> usize {
        self.asked().iter().filter(|line| line.starts_with("CONNECT ")).count()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn tunnel(mut client: tokio::net::TcpStream, asked: Arc<std::sync::Mutex<Vec<String>>>) {
    let Some(request) = read_request(&mut client).await else { return };
    let line = request.head.lines().next().unwrap_or_default().to_owned();
    asked.lock().unwrap().push(line.clone());
    let mut words = line.split(' ');
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        let _ =
            client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    // Traffic from tests goes to loopback only.
    let loopback = target.parse::<SocketAddr>().is_ok_and(|address| address.ip().is_loopback());
    if !loopback {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n").await;
        return;
    }
    let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Reads one HTTP/1.1 request with a `content-length` body; `None` at the end of the stream.
async fn read_request(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<TlsRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut chunk).await.ok().filter(|read| *read > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok().filter(|read| *read > 0)?;
        body.extend_from_slice(&chunk[..read]);
    }
    Some(TlsRequest { head, body })
}

pub fn certificate_der(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn key_der(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap())
}

/// Whether any file in `directory` holds `needle`.
pub fn any_file_holds(directory: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(directory).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|window| window == needle)
    })
}
