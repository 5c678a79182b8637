//! `[server]`, `[egress]` and `[nats]`: listen address, storage, tokens, the egress policy
//! and the NATS connection.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::Validator;
use crate::config::Secret;
use crate::config::raw;
use crate::config::topology::*;
use crate::egress::{EgressPolicy, EgressProxy};
use crate::seal::StoreKey;

impl Validator<'_> {
    pub(super) fn server(&mut self, server: raw::ServerConfig) -> Server {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let listen = match server.listen.as_deref() {
            None => default_listen,
            Some(text) => text.parse().unwrap_or_else(|_| {
                self.error(
                    "server.listen",
                    format!("`{text}` is not an IP address and port"),
                    "listen = \"127.0.0.1:8080\"",
                );
                default_listen
            }),
        };
        let durability = match server.durability.as_deref() {
            None | Some("fsync") => Durability::Fsync,
            Some("os") => Durability::Os,
            Some(other) => {
                self.error(
                    "server.durability",
                    format!("`{other}` is not a durability level; expected `fsync` or `os`"),
                    "durability = \"fsync\"",
                );
                Durability::Fsync
            }
        };
        let admin_token =
            server.admin_token.and_then(|token| self.secret("server.admin_token", token));
        let publish_token =
            server.publish_token.and_then(|token| self.secret("server.publish_token", token));
        Server {
            listen,
            data_dir: self.resolve_path(server.data_dir.as_deref().unwrap_or("switchyard-data")),
            durability,
            retention: self.duration(
                "server.retention",
                server.retention.as_deref(),
                DEFAULT_RETENTION,
            ),
            admin_token,
            publish_token,
            max_body: self.size("server.max_body", server.max_body.as_deref(), DEFAULT_MAX_BODY),
            // Named by `server.store_key`, resolved once `[secrets]` is read: see `store_key`.
            store_key: None,
        }
    }

    /// The store key `server.store_key` names: a `[secrets]` entry holding 32 bytes in base64.
    pub(super) fn store_key(
        &mut self,
        name: Option<String>,
        ids: &[String],
        secrets: &BTreeMap<String, Secret>,
    ) -> Option<StoreKey> {
        let example = "store_key = \"store-key\"";
        // Without one, the start warns (where it knows whether dynamic endpoints exist).
        let name = name?;
        if !ids.contains(&name) {
            self.references("server.store_key", std::slice::from_ref(&name), ids, "secret");
            return None;
        }
        // A secret that could not be read has its own error already.
        let secret = secrets.get(&name)?;
        match StoreKey::from_secret(&name, secret) {
            Ok(key) => Some(key),
            Err(error) => {
                self.error("server.store_key", error.to_string(), example);
                None
            }
        }
    }

    pub(super) fn egress(&mut self, egress: raw::EgressConfig) -> EgressPolicy {
        let mut allow_networks = Vec::new();
        for (index, text) in egress.allow_networks.iter().enumerate() {
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(|network| network.trunc());
            match parsed {
                Ok(network) => allow_networks.push(network),
                Err(_) => self.error(
                    format!("egress.allow_networks[{index}]"),
                    format!("`{text}` is not a network in CIDR notation"),
                    "allow_networks = [\"127.0.0.0/8\"]",
                ),
            }
        }
        if egress.proxy.is_none() && !egress.no_proxy.is_empty() {
            self.error(
                "egress.no_proxy",
                "`no_proxy` lists targets that bypass `proxy`, and there is no `proxy`",
                "proxy = \"http://proxy.internal:3128\"",
            );
        }
        let proxy = egress.proxy.and_then(|text| self.egress_proxy(&text, egress.no_proxy));
        EgressPolicy { allow_networks, https_only: egress.https_only, proxy }
    }

    /// `egress.proxy`: an `http://host:port` URL, without credentials or a path; and
    /// `egress.no_proxy`, the targets that bypass it.
    fn egress_proxy(&mut self, text: &str, no_proxy: Vec<String>) -> Option<EgressProxy> {
        let example = "proxy = \"http://proxy.internal:3128\"";
        let url = match url::Url::parse(text) {
            Ok(url) => url,
            Err(error) => {
                self.error("egress.proxy", format!("`{text}` is not a URL: {error}"), example);
                return None;
            }
        };
        let mut problems = Vec::new();
        if url.scheme() != "http" {
            // `proxy:3128` parses with the scheme `proxy`: what else is wrong is noise then.
            let message =
                format!("`{text}`: the scheme is `{}`; a proxy is `http://`", url.scheme());
            self.error("egress.proxy", message, example);
            return None;
        }
        if url.host().is_none() {
            problems.push("it has no host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            problems.push("credentials in the proxy URL are not supported".to_owned());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            problems.push("a proxy URL has no path, query or fragment".to_owned());
        }
        for problem in &problems {
            self.error("egress.proxy", format!("`{text}`: {problem}"), example);
        }
        for (index, entry) in no_proxy.iter().enumerate() {
            let valid = !entry.trim().is_empty()
                && !entry.contains(',')
                && !entry.chars().any(char::is_whitespace);
            if !valid {
                self.error(
                    format!("egress.no_proxy[{index}]"),
                    format!("`{entry}` is not a host name, address or network"),
                    "no_proxy = [\"billing.internal\", \"10.0.0.0/8\"]",
                );
            }
        }
        problems.is_empty().then_some(EgressProxy { url, no_proxy })
    }

    pub(super) fn nats(&mut self, nats: raw::NatsConfig) -> Option<Nats> {
        let url = match nats.url {
            Some(url) => {
                let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme));
                if !scheme_ok {
                    self.error(
                        "nats.url",
                        format!("`{url}` is not a NATS URL (nats://, tls://, ws:// or wss://)"),
                        "url = \"nats://127.0.0.1:4222\"",
                    );
                }
                url
            }
            None => {
                self.error("nats.url", "missing field `url`", "url = \"nats://127.0.0.1:4222\"");
                String::new()
            }
        };
        let credentials = nats.credentials.and_then(|s| self.secret("nats.credentials", s));
        let nkey = nats.nkey.and_then(|s| self.secret("nats.nkey", s));
        let token = nats.token.and_then(|s| self.secret("nats.token", s));
        let password = nats.password.and_then(|s| self.secret("nats.password", s));
        let mut methods = Vec::new();
        if let Some(secret) = credentials {
            methods.push(NatsAuth::Credentials(secret));
        }
        if let Some(secret) = nkey {
            methods.push(NatsAuth::Nkey(secret));
        }
        if let Some(secret) = token {
            methods.push(NatsAuth::Token(secret));
        }
        match (nats.user, password) {
            (Some(user), Some(password)) => methods.push(NatsAuth::UserPassword { user, password }),
            (None, None) => {}
            (Some(_), None) => self.error(
                "nats.password",
                "`user` needs a `password`",
                "password = { env = \"NATS_PASSWORD\" }",
            ),
            (None, Some(_)) => {
                self.error("nats.user", "`password` needs a `user`", "user = \"switchyard\"")
            }
        }
        if methods.len() > 1 {
            self.error(
                "nats",
                "set one way to authenticate: `credentials`, `nkey`, `token` or `user` + `password`",
                "credentials = { file = \"switchyard.creds\" }",
            );
        }
        Some(Nats { url, auth: methods.pop().unwrap_or(NatsAuth::None), outcomes: nats.outcomes })
    }
}
