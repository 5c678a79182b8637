//! How `switchyard replay` and `switchyard reload` reach the running router's admin API.
//!
//! Owns where those calls go and what they trust; the commands own what they send.
//!
//! - **Where**: `--url` when given. Otherwise the config's address: `server.admin_listen` when
//!   set (the admin API answers only there then), else `server.listen`. An unspecified
//!   address (`0.0.0.0`, `[::]`) is called on this machine's loopback.
//! - **TLS** (`server.tls`): the call is HTTPS and trusts the certificates in
//!   `server.tls.cert` beside the system's roots, so a self-signed certificate works. A
//!   certificate names hosts, rarely the loopback address the call goes to, so the call asks
//!   for the first DNS name the certificate holds (a wildcard's `*` taken as `switchyard`) and
//!   connects to the config's address for it; when the certificate names that address itself,
//!   or no host, the address is asked for.
//! - **Client certificate**: presented when given (`--client-cert`, `--client-key`), which a
//!   router with `client_auth = "required"` asks of every caller; without one, a failed call
//!   says so.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::Secret;
use crate::config::topology::{ClientAuth, Server};
use crate::listener::subject::{CertificateNames, names_of};

/// How long a call waits for its connection (and TLS handshake) to the router.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a call goes: the URL's base, and the address its host stands for when the host is a
/// name rather than the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub base: String,
    pub resolve: Option<(String, SocketAddr)>,
}

/// The target without `--url`: the router's admin address, over TLS when `certificate` (the
/// names of the certificate the router serves) is given.
pub fn default_target(
    server_address: SocketAddr,
    certificate: Option<&CertificateNames>,
) -> Target {
    let address = callable(server_address);
    let plain = |scheme: &str| Target { base: format!("{scheme}://{address}"), resolve: None };
    let Some(names) = certificate else {
        return plain("http");
    };
    let name = names.dns.first().filter(|_| !names.ips.contains(&address.ip()));
    let Some(name) = name else {
        return plain("https");
    };
    let host = match name.strip_prefix("*.") {
        Some(domain) => format!("switchyard.{domain}"),
        None => name.clone(),
    };
    Target { base: format!("https://{host}:{}", address.port()), resolve: Some((host, address)) }
}

/// `address`, its unspecified IP (listening on every interface) replaced by loopback.
fn callable(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, address.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, address.port()).into(),
        _ => address,
    }
}

/// A client for the admin API of the router `server` describes.
#[derive(Debug)]
pub struct AdminClient {
    base: String,
    client: reqwest::Client,
    /// Said when a call fails: the router wants a certificate and none was given.
    lacks_client_certificate: bool,
}

impl AdminClient {
    /// `url` overrides the config's address; the TLS trust comes from the config either way.
    /// `identity` is the client certificate and key files to present.
    pub fn new(
        server: &Server,
        url: Option<String>,
        identity: Option<(PathBuf, PathBuf)>,
    ) -> anyhow::Result<Self> {
        // No overall timeout: a reload that compiles plugins takes as long as they take. An
        // address that never answers should not hold the command for the system's TCP timeout.
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some((certificate, key)) = &identity {
            builder = builder.identity(client_identity(certificate, key)?);
        }
        let mut certificate_names = None;
        if let Some(tls) = &server.tls {
            let pem = std::fs::read(&tls.cert).with_context(|| {
                format!("cannot read `server.tls.cert` (`{}`)", tls.cert.display())
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "`server.tls.cert` (`{}`) holds no readable certificate",
                    tls.cert.display()
                )
            })?;
            certificate_names = Some(leaf_names(&pem));
            builder = builder.tls_certs_merge(certificates);
        }
        let base = match url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let address = server.admin_listen.unwrap_or(server.listen);
                let target = default_target(address, certificate_names.as_ref());
                if let Some((host, address)) = &target.resolve {
                    builder = builder.resolve(host, *address);
                }
                target.base
            }
        };
        let lacks_client_certificate = identity.is_none()
            && server.tls.as_ref().is_some_and(|tls| tls.client_auth == ClientAuth::Required);
        let client = builder.build().context("cannot set up the HTTP client")?;
        Ok(Self { base, client, lacks_client_certificate })
    }

    /// POSTs `body` (JSON, when given) to `path` with `token`: the answer's status and text.
    pub async fn post(
        &self,
        path: &str,
        token: &Secret,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let url = format!("{}{path}", self.base);
        let token = String::from_utf8_lossy(token.expose()).into_owned();
        let mut request = self.client.post(&url).bearer_auth(token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let mut sent = request.send().await.with_context(|| {
            format!("cannot reach the router at `{url}`; is it running? (`--url` sets where)")
        });
        if self.lacks_client_certificate {
            sent = sent.context(
                "the router requires client certificates (`server.tls.client_auth`): pass one \
                 with `--client-cert` and `--client-key`",
            );
        }
        let response = sent?;
        let status = response.status();
        Ok((status, response.text().await?))
    }
}

/// The client certificate in `certificate` with its private key in `key`, both PEM.
fn client_identity(certificate: &Path, key: &Path) -> anyhow::Result<reqwest::Identity> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
    };
    let mut pem = read(certificate)?;
    pem.push(b'\n');
    pem.extend(read(key)?);
    reqwest::Identity::from_pem(&pem).with_context(|| {
        format!(
            "`{}` and `{}` are not a PEM certificate and its private key",
            certificate.display(),
            key.display()
        )
    })
}

/// The names of the first certificate in `pem` (the one the router serves); none when it
/// cannot be read, so the address itself is asked for.
fn leaf_names(pem: &[u8]) -> CertificateNames {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .next()
        .and_then(Result::ok)
        .and_then(|leaf| names_of(&leaf))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dns: &[&str], ips: &[IpAddr]) -> CertificateNames {
        CertificateNames {
            dns: dns.iter().map(|name| (*name).to_owned()).collect(),
            ips: ips.to_vec(),
        }
    }

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn plain_http_calls_the_address_on_loopback_when_it_listens_everywhere() {
        let target = |listen| default_target(address(listen), None).base;
        assert_eq!(target("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(target("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(target("[::]:9090"), "http://[::1]:9090");
        assert_eq!(target("192.0.2.7:8080"), "http://192.0.2.7:8080");
    }

    #[test]
    fn over_tls_the_certificates_name_is_asked_for_at_the_address() {
        let tls = |listen, certificate: &CertificateNames| {
            default_target(address(listen), Some(certificate))
        };
        let named = names(&["hooks.example", "other.example"], &[]);
        assert_eq!(
            tls("0.0.0.0:8443", &named),
            Target {
                base: "https://hooks.example:8443".into(),
                resolve: Some(("hooks.example".into(), address("127.0.0.1:8443"))),
            }
        );
        let wildcard = tls("127.0.0.1:8443", &names(&["*.hooks.example"], &[]));
        assert_eq!(wildcard.base, "https://switchyard.hooks.example:8443");
        assert_eq!(wildcard.resolve.unwrap().0, "switchyard.hooks.example");
        let for_the_address = names(&["hooks.example"], &[[127, 0, 0, 1].into()]);
        assert_eq!(
            tls("127.0.0.1:8443", &for_the_address),
            Target { base: "https://127.0.0.1:8443".into(), resolve: None }
        );
        assert_eq!(tls("127.0.0.1:8443", &names(&[], &[])).base, "https://127.0.0.1:8443");
    }

    #[test]
    fn a_client_certificate_that_cannot_be_used_is_named() {
        let directory = tempfile::tempdir().unwrap();
        let (certificate, key) = (directory.path().join("c.pem"), directory.path().join("k.pem"));
        let error = format!("{:#}", client_identity(&certificate, &key).unwrap_err());
        assert!(error.starts_with("cannot read `") && error.contains("c.pem"), "{error}");
        std::fs::write(&certificate, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let error = format!("{:#}", client_identity(&certificate, &key).unwrap_err());
        assert!(error.contains("are not a PEM certificate and its private key"), "{error}");
    }
}
