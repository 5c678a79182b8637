//! `[server]`, `[egress]` and `[nats]`: listen address, storage, tokens, the egress policy
//! and the NATS connection.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use super::Validator;
use crate::config::raw;
use crate::config::topology::*;
use crate::egress::EgressPolicy;

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
            notify_every: self.duration(
                "server.notify_every",
                server.notify_every.as_deref(),
                crate::notify::DEFAULT_NOTIFY_EVERY,
            ),
            admin_token,
            publish_token,
            max_body: self.size("server.max_body", server.max_body.as_deref(), DEFAULT_MAX_BODY),
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
        EgressPolicy { allow_networks, https_only: egress.https_only }
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
