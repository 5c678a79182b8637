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
            admin_token,
            publish_token,
            max_body: self.size("server.max_body", server.max_body.as_deref(), DEFAULT_MAX_BODY),
        }
    }

    /// `[store]`; `has_nats` and `durability` are what the JetStream backend depends on.
    pub(super) fn store(
        &mut self,
        store: raw::StoreConfig,
        has_nats: bool,
        durability: Durability,
    ) -> StoreSettings {
        let jetstream = match store.backend.as_deref() {
            None | Some("sqlite") => false,
            Some("jetstream") => true,
            Some(other) => {
                self.error(
                    "store.backend",
                    format!("`{other}` is not a store backend; expected `sqlite` or `jetstream`"),
                    "backend = \"jetstream\"",
                );
                false
            }
        };
        let replicas = match store.replicas {
            None => DEFAULT_STORE_REPLICAS,
            Some(replicas @ 1..=5) => replicas as usize,
            Some(other) => {
                self.error(
                    "store.replicas",
                    format!("`{other}` replicas: JetStream keeps 1 to 5 copies"),
                    "replicas = 3",
                );
                DEFAULT_STORE_REPLICAS
            }
        };
        let prefix = store.prefix.unwrap_or_else(|| DEFAULT_STORE_PREFIX.to_owned());
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !prefix_ok {
            self.error(
                "store.prefix",
                format!(
                    "`{prefix}` cannot start stream names: use 1 to 32 letters, digits and `_`"
                ),
                "prefix = \"switchyard\"",
            );
        }
        let mut monitor_urls = Vec::new();
        for (index, text) in store.monitor_urls.iter().enumerate() {
            match url::Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => monitor_urls.push(url),
                _ => self.error(
                    format!("store.monitor_urls[{index}]"),
                    format!("`{text}` is not an http:// or https:// URL"),
                    "monitor_urls = [\"http://127.0.0.1:8222\"]",
                ),
            }
        }
        if !jetstream {
            for (key, set) in [
                ("store.replicas", store.replicas.is_some()),
                ("store.monitor_urls", !store.monitor_urls.is_empty()),
            ] {
                if set {
                    self.error(
                        key,
                        "only the `jetstream` backend uses it",
                        "backend = \"jetstream\"",
                    );
                }
            }
            return StoreSettings::Sqlite;
        }
        if !has_nats {
            self.error(
                "store.backend",
                "the `jetstream` backend needs a `[nats]` section naming the cluster's servers",
                "[nats]\nurls = [\"nats://10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]",
            );
        }
        if durability == Durability::Fsync && store.monitor_urls.is_empty() {
            self.error(
                "store.monitor_urls",
                "`server.durability = \"fsync\"` with the `jetstream` backend needs the servers' \
                 monitoring URLs, to check at start that each one runs `sync_interval: always`; \
                 or set `server.durability = \"os\"` to accept the servers' own setting",
                "monitor_urls = [\"http://10.0.0.1:8222\", \"http://10.0.0.2:8222\"]",
            );
        }
        StoreSettings::JetStream(JetStreamStore { replicas, prefix, monitor_urls })
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
        let mut urls = Vec::new();
        let named = nats.url.iter().map(|url| ("nats.url".to_owned(), url));
        let listed =
            nats.urls.iter().enumerate().map(|(index, url)| (format!("nats.urls[{index}]"), url));
        for (path, url) in named.chain(listed) {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|scheme| url.starts_with(scheme));
            if !scheme_ok {
                self.error(
                    path,
                    format!("`{url}` is not a NATS URL (nats://, tls://, ws:// or wss://)"),
                    "url = \"nats://127.0.0.1:4222\"",
                );
            }
            urls.push(url.clone());
        }
        if urls.is_empty() {
            self.error(
                "nats.url",
                "missing field `url` (or `urls`)",
                "url = \"nats://127.0.0.1:4222\"",
            );
        }
        let url = urls.first().cloned().unwrap_or_default();
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
        Some(Nats {
            url,
            urls,
            auth: methods.pop().unwrap_or(NatsAuth::None),
            outcomes: nats.outcomes,
        })
    }
}
