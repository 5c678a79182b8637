//! `endpoints.<id>.tls`: an HTTPS endpoint's private CA and client certificate, read from their
//! files and secret, and checked by [`EndpointTls::new`] (the admin API's check too).

use super::Validator;
use crate::config::raw::EndpointTlsConfig;
use crate::config::topology::EndpointTarget;
use crate::delivery::http::{EndpointTls, TlsField};

const EXAMPLE: &str = "tls = { ca = \"ca.pem\", client_cert = \"client.pem\", client_key = { file = \"client.key\" } }";

impl Validator<'_> {
    /// The endpoint's TLS settings; `None` when anything is wrong (every problem recorded).
    pub(super) fn endpoint_tls(
        &mut self,
        at: &dyn Fn(&str) -> String,
        tls: EndpointTlsConfig,
        is_http: bool,
        target: &EndpointTarget,
    ) -> Option<EndpointTls> {
        let mut usable = true;
        if !is_http {
            self.only_for(at, "http", "endpoints", &[("tls", true)]);
            usable = false;
        } else if let EndpointTarget::Http { url } = target
            && url.scheme() != "https"
            && url.host_str() != Some("invalid.invalid")
        {
            self.error(
                at("tls"),
                format!("`tls` applies to `https` URLs; the URL's scheme is `{}`", url.scheme()),
                "url = \"https://billing.internal/hook\"",
            );
            usable = false;
        }
        let path = |key: &str| at(&format!("tls.{key}"));
        let ca = tls.ca.map(|file| self.pem_file(&path("ca"), &file));
        let client_cert = tls.client_cert.map(|file| self.pem_file(&path("client_cert"), &file));
        let client_key = tls.client_key.map(|secret| self.secret(&path("client_key"), secret));
        if ca.is_none() && client_cert.is_none() && client_key.is_none() {
            self.error(at("tls"), "set `ca`, or `client_cert` and `client_key`, or both", EXAMPLE);
            return None;
        }
        // A file or secret that could not be read has its error already; what was read is
        // still checked, so that every problem shows at once.
        let unread = [
            (TlsField::Ca, matches!(ca, Some(None))),
            (TlsField::ClientCert, matches!(client_cert, Some(None))),
            (TlsField::ClientKey, matches!(client_key, Some(None))),
        ];
        let checked = EndpointTls::new(
            ca.flatten().as_deref(),
            client_cert.flatten().as_deref(),
            client_key.flatten().as_ref().map(|key| key.expose()),
        );
        let problems = match checked {
            Ok(tls) if !unread.iter().any(|(_, unread)| *unread) => {
                return usable.then_some(tls);
            }
            Ok(_) => return None,
            Err(problems) => problems,
        };
        for problem in problems {
            if unread.contains(&(problem.field, true)) {
                continue;
            }
            let message = match problem.field {
                TlsField::ClientKey => problem.describe("the key"),
                _ => problem.describe("the file"),
            };
            self.error(path(problem.field.key()), message, EXAMPLE);
        }
        None
    }

    /// The bytes of a PEM file named relative to the config file.
    fn pem_file(&mut self, path: &str, file: &str) -> Option<Vec<u8>> {
        match self.environment.read_file(&self.resolve_path(file)) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                self.error(path, format!("cannot read `{file}`: {error}"), "");
                None
            }
        }
    }
}
