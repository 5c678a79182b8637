//! An endpoint's own TLS settings: a private CA to trust, a client certificate to present.
//!
//! Owns [`EndpointTls`]: PEM text checked once by [`EndpointTls::new`] (the same check, in the
//! same words, for the config file and the admin API) and what it adds to a reqwest client.
//! With `ca`, only that CA is trusted for the endpoint (not the system's roots as well): a
//! private CA names the receivers it vouches for. It never reads files (callers hand it their
//! bytes) and never shows the client key: `Debug` names what is set, no more.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An endpoint's TLS settings; cheap to clone. Equal settings share one client.
#[derive(Clone)]
pub struct EndpointTls(Arc<Material>);

#[derive(PartialEq, Eq, Hash)]
struct Material {
    /// PEM: the certificates trusted instead of the system's roots.
    ca: Option<Vec<u8>>,
    /// PEM: the client certificate (and chain), then its private key.
    identity: Option<Vec<u8>>,
}

/// Which setting a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsField {
    Ca,
    ClientCert,
    ClientKey,
}

impl TlsField {
    /// The key's name, as the config file and the admin API spell it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::ClientCert => "client_cert",
            Self::ClientKey => "client_key",
        }
    }
}

/// One problem with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProblem {
    pub field: TlsField,
    /// Either about the setting's content (`holds no PEM certificate…`: the caller says whose,
    /// see [`TlsProblem::describe`]) or a whole sentence (`` `client_cert` needs… ``).
    pub message: String,
}

impl TlsProblem {
    /// The message about `what` (`the file`, `the key`, `the text`).
    pub fn describe(&self, what: &str) -> String {
        if self.message.starts_with('`') {
            self.message.clone()
        } else {
            format!("{what} {}", self.message)
        }
    }
}

/// What PEM text holds, by the kind of each section.
#[derive(Debug, Default)]
struct Sections {
    certificates: usize,
    private_keys: usize,
}

// === impl EndpointTls ===

impl EndpointTls {
    /// Checks the settings, each given as PEM bytes, and answers every problem at once: each
    /// must hold what its name says, a certificate and its key come together and must fit.
    pub fn new(
        ca: Option<&[u8]>,
        client_cert: Option<&[u8]>,
        client_key: Option<&[u8]>,
    ) -> Result<Self, Vec<TlsProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field, message: String| problems.push(TlsProblem { field, message });
        if let Some(ca) = ca {
            match sections(ca) {
                Ok(found) if found.certificates > 0 && found.private_keys == 0 => {}
                Ok(found) if found.private_keys > 0 => problem(
                    TlsField::Ca,
                    "holds a private key; a CA file holds certificates only".to_owned(),
                ),
                Ok(_) => problem(TlsField::Ca, no_certificate()),
                Err(reason) => problem(TlsField::Ca, reason),
            }
        }
        if let Some(certificate) = client_cert {
            match sections(certificate) {
                Ok(found) if found.certificates > 0 && found.private_keys == 0 => {}
                Ok(found) if found.private_keys > 0 => problem(
                    TlsField::ClientCert,
                    "holds a private key; give it as `client_key`, a secret".to_owned(),
                ),
                Ok(_) => problem(TlsField::ClientCert, no_certificate()),
                Err(reason) => problem(TlsField::ClientCert, reason),
            }
        }
        if let Some(key) = client_key {
            match sections(key) {
                Ok(found) if found.private_keys == 1 && found.certificates == 0 => {}
                Ok(found) if found.private_keys > 1 => {
                    problem(TlsField::ClientKey, "holds more than one private key".to_owned())
                }
                Ok(_) => problem(
                    TlsField::ClientKey,
                    "holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, PKCS#8; or \
                     PKCS#1 RSA, or SEC1 EC)"
                        .to_owned(),
                ),
                Err(reason) => problem(TlsField::ClientKey, reason),
            }
        }
        match (client_cert, client_key) {
            (Some(_), None) => {
                problem(TlsField::ClientKey, "`client_cert` needs its `client_key`".to_owned())
            }
            (None, Some(_)) => {
                problem(TlsField::ClientCert, "`client_key` needs its `client_cert`".to_owned())
            }
            _ => {}
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let identity = match (client_cert, client_key) {
            (Some(certificate), Some(key)) => {
                let mut pem = certificate.to_vec();
                if !pem.ends_with(b"\n") {
                    pem.push(b'\n');
                }
                pem.extend_from_slice(key);
                Some(pem)
            }
            _ => None,
        };
        let tls = Self(Arc::new(Material { ca: ca.map(<[u8]>::to_vec), identity }));
        // What parsing cannot see (a key that does not fit its certificate, an unsupported
        // algorithm) shows when a client is built with them.
        tls.apply(reqwest::Client::builder())
            .and_then(|builder| {
                builder.build().map_err(|error| super::error_chain(&error)).map(drop)
            })
            .map_err(|reason| {
                let field =
                    if tls.0.identity.is_some() { TlsField::ClientKey } else { TlsField::Ca };
                let message = match field {
                    TlsField::ClientKey => {
                        format!("does not fit `client_cert`, or is refused: {reason}")
                    }
                    _ => format!("is refused: {reason}"),
                };
                vec![TlsProblem { field, message }]
            })?;
        Ok(tls)
    }

    /// Whether a client certificate is presented.
    pub fn has_client_cert(&self) -> bool {
        self.0.identity.is_some()
    }

    /// Whether a private CA replaces the system's roots.
    pub fn has_ca(&self) -> bool {
        self.0.ca.is_some()
    }

    /// `builder` with these settings.
    pub(super) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        if let Some(ca) = &self.0.ca {
            let certificates = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|error| super::error_chain(&error))?;
            builder = builder.tls_certs_only(certificates);
        }
        if let Some(identity) = &self.0.identity {
            let identity = reqwest::Identity::from_pem(identity)
                .map_err(|error| super::error_chain(&error))?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

impl PartialEq for EndpointTls {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for EndpointTls {}

impl Hash for EndpointTls {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for EndpointTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("EndpointTls")
            .field("ca", &self.has_ca())
            .field("client_cert", &self.has_client_cert())
            .finish()
    }
}

fn no_certificate() -> String {
    "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)".to_owned()
}

/// Counts the sections of `pem`; text outside sections is allowed (comments), broken
/// sections are not.
fn sections(pem: &[u8]) -> Result<Sections, String> {
    use rustls_pki_types::pem::{self, SectionKind};
    let mut found = Sections::default();
    let mut reader = std::io::Cursor::new(pem);
    loop {
        match pem::from_buf(&mut reader) {
            Ok(Some((SectionKind::Certificate, _))) => found.certificates += 1,
            Ok(Some((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            ))) => found.private_keys += 1,
            Ok(Some(_)) => {}
            Ok(None) => return Ok(found),
            Err(error) => return Err(format!("is not valid PEM: {}", pem_error(&error))),
        }
    }
}

/// A PEM error in words (the library's own show bytes as numbers).
fn pem_error(error: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(end_marker);
            format!("a section has no `-----END {}-----` line", label.trim())
        }
        Error::IllegalSectionStart { line } => {
            format!("`{}` does not start a section", String::from_utf8_lossy(line).trim())
        }
        Error::Base64Decode(reason) => format!("a section is not base64: {reason}"),
        other => other.to_string(),
    }
}
