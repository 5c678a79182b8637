//! TLS on the listeners (`server.tls`): rustls on the aws-lc-rs provider (the one the rest of
//! the process already uses), TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, and optional or
//! required client certificates verified against `client_ca`.
//!
//! Owns building a rustls server config from the files and [`Certificates`], the config that
//! handshakes use, replaced whole on reload: a handshake uses the config current when it
//! starts, and connections already open keep the session they have. It reads files only when
//! asked to (start and reload), and decides nothing about requests: the verified client
//! certificate's subject is handed on ([`super::subject`]) for the sources to check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

use crate::config::{ClientAuth, Tls};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls.{key}: cannot read `{}`: {error}", path.display())]
    Read { key: &'static str, path: PathBuf, error: String },
    #[error("server.tls.{key}: `{}` holds no {what}", path.display())]
    Empty { key: &'static str, path: PathBuf, what: &'static str },
    #[error("server.tls.client_ca: `{}` is not usable: {error}", path.display())]
    ClientCa { path: PathBuf, error: String },
    #[error("server.tls: `cert` and `key` do not make a usable certificate: {0}")]
    Certificate(rustls::Error),
}

/// The server config handshakes use; replaced on reload.
#[derive(Debug)]
pub struct Certificates {
    current: ArcSwap<ServerConfig>,
}

impl Certificates {
    pub fn load(tls: &Tls) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self { current: ArcSwap::from_pointee(server_config(tls)?) }))
    }

    /// Swaps in a config built by [`server_config`]: new handshakes use it.
    pub fn replace(&self, config: ServerConfig) {
        self.current.store(Arc::new(config));
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }
}

/// Reads the certificate chain, key and client CA of `tls` into a rustls server config.
pub fn server_config(tls: &Tls) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates("cert", &tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|error| TlsError::Read {
        key: "key",
        path: tls.key.clone(),
        error: error.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Certificate)?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates("client_ca", path)? {
                roots.add(certificate).map_err(|error| TlsError::ClientCa {
                    path: path.clone(),
                    error: error.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match tls.client_auth {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            };
            let verifier = verifier.build().map_err(|error| TlsError::ClientCa {
                path: path.clone(),
                error: error.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(TlsError::Certificate)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |error: rustls_pki_types::pem::Error| TlsError::Read {
        key,
        path: path.to_owned(),
        error: error.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if chain.is_empty() {
        return Err(TlsError::Empty { key, path: path.to_owned(), what: "certificate" });
    }
    Ok(chain)
}
